// Private examples collected in memory and written (mode 0600, atomically) for training.
#include <nlohmann/json.hpp>

#include "abi.h"
#include "pocketllm/client/dataset.h"
#include "pocketllm/common/file_util.h"

using namespace pllm_abi;

struct pllm_examples {
  std::string jsonl;
  uint64_t count = 0;
};

extern "C" {

pllm_examples* pllm_examples_new(void) {
  try {
    return new pllm_examples();
  } catch (...) {
    return nullptr;
  }
}
void pllm_examples_free(pllm_examples* e) { delete e; }
uint64_t pllm_examples_count(const pllm_examples* e) { return e ? e->count : 0; }

namespace {
pllm_status add_example(pllm_examples* e, const nlohmann::json& j, std::initializer_list<const char*> fields) {
  if (!e) return fail(PLLM_ERR_INVALID_ARGUMENT, "examples is required");
  for (const char* f : fields) {
    if (!f) return fail(PLLM_ERR_INVALID_ARGUMENT, "every field of an example is required");
    if (!pocketllm::is_valid_utf8(f)) return fail(PLLM_ERR_INVALID_ARGUMENT, "an example is not valid UTF-8");
  }
  e->jsonl += j.dump() + "\n";
  ++e->count;
  return PLLM_OK;
}
}  // namespace

pllm_status pllm_examples_add_text(pllm_examples* e, const char* text) {
  return guarded([&] {
    if (!text || !*text) return fail(PLLM_ERR_INVALID_ARGUMENT, "text is required and must not be empty");
    if (!pocketllm::is_valid_utf8(text)) return fail(PLLM_ERR_INVALID_ARGUMENT, "text is not valid UTF-8");
    return add_example(e, {{"text", text}}, {text});
  });
}

pllm_status pllm_examples_add_completion(pllm_examples* e, const char* prompt, const char* completion) {
  return guarded([&] {
    if (!prompt || !completion || !*completion) return fail(PLLM_ERR_INVALID_ARGUMENT, "prompt and a non-empty completion are required");
    if (!pocketllm::is_valid_utf8(prompt) || !pocketllm::is_valid_utf8(completion)) return fail(PLLM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
    return add_example(e, {{"prompt", prompt}, {"completion", completion}}, {prompt, completion});
  });
}

pllm_status pllm_examples_add_labelled(pllm_examples* e, const char* text, const char* label) {
  return guarded([&] {
    if (!text || !*text || !label || !*label) return fail(PLLM_ERR_INVALID_ARGUMENT, "text and label are required");
    if (!pocketllm::is_valid_utf8(text) || !pocketllm::is_valid_utf8(label)) return fail(PLLM_ERR_INVALID_ARGUMENT, "not valid UTF-8");
    return add_example(e, {{"text", text}, {"label", label}}, {text, label});
  });
}

pllm_status pllm_examples_write(const pllm_examples* e, const char* path) {
  return guarded([&] {
    if (!e || !path) return fail(PLLM_ERR_INVALID_ARGUMENT, "examples and path are required");
    if (e->count == 0) return fail(PLLM_ERR_INVALID_ARGUMENT, "no examples to write");
    if (pllm_status s = check_text(path, "path", false); s != PLLM_OK) return s;
    // Private data: created with mode 0600, never readable by others even for a moment.
    if (pocketllm::Status s = pocketllm::write_file_atomic(path, e->jsonl, 0600); !s) return fail(s);
    return PLLM_OK;
  });
}

}  // extern "C"
