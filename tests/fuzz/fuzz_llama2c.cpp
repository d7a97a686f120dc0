// llama2.c checkpoints and tokenizer.bin files.
#include "fuzz_input.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pocketllm::fuzz::input_file(data, size, ".bin");
  (void)pocketllm::load_llama2c(path, pocketllm::LoadOptions{});
  if (auto tok = pocketllm::load_llama2c_tokenizer(path, 512)) {
    auto ids = tok.value()->encode("Once upon a time", true, false);
    if (ids) (void)tok.value()->decode(ids.value());
  }
  return 0;
}
