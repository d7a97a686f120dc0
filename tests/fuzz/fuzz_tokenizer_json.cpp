// Hugging Face tokenizer.json files; what loads must encode and decode text.
#include "fuzz_input.h"
#include "pocketllm/client/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = pocketllm::fuzz::input_file(data, size, ".json");
  auto tok = pocketllm::load_hf_tokenizer(path, "");
  if (!tok) return 0;
  auto ids = tok.value()->encode("Hello, wörld! 123 \xF0\x9F\x99\x82", true, false);
  if (ids) (void)tok.value()->decode(ids.value());
  return 0;
}
