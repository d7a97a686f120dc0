// GGUF files: the container (metadata, tensor table, bounds), the model built from it (names, shapes,
// hyper-parameters, the tokenizer) and a forward pass over whatever weights it accepted.
#include "fuzz_input.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/common/gguf.h"
#include "pocketllm/common/thread_pool.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)pocketllm::gguf::File::parse(data, size, "fuzz.gguf", nullptr);
  const std::string path = pocketllm::fuzz::input_file(data, size, ".gguf");
  auto loaded = pocketllm::load_gguf(path, pocketllm::LoadOptions{});
  if (!loaded) return 0;
  auto& m = *loaded->model;
  if (loaded->tokenizer) {
    auto ids = loaded->tokenizer->encode("Once upon a time", true, false);
    if (ids) (void)loaded->tokenizer->decode(ids.value());
  }
  if (m.config().vocab_size >= 2 && m.config().hidden_size <= 256 && m.config().num_layers <= 4) {
    std::vector<float> hidden, logits;
    if (m.forward_hidden(nullptr, pocketllm::TokenBatch::from_sequences({{0, 1}}), {}, nullptr, &hidden).is_ok())
      m.logits(nullptr, hidden.data(), {1}, {}, &logits);
  }
  return 0;
}
