// Training data as a user hands it over. Byte 0 picks the format (text, TSV, JSONL), whether labels are
// required, the task (lm, packed or not, or classify with label words for "0" and "1"), truncation and
// a minimum word count; the rest is the file. What parses becomes a task on a tiny llama2.c model (its
// tokenizer has a few words and the byte fallback), a k-shot sample is drawn and a few examples are
// evaluated.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_input.h"
#include "pocketllm/client/dataset.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/task.h"
#include "pocketllm/common/thread_pool.h"

namespace {

void put_i32(std::string* s, int32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }
void put_f32(std::string* s, float v) { s->append(reinterpret_cast<const char*>(&v), 4); }

// The tokenizer: <unk>, <s>, </s>, the 256 byte-fallback pieces <0x00>..<0xFF> (ids 3..258, as llama2.c
// tokenizers have them), then a few words; every text encodes.
std::vector<std::string> tiny_pieces() {
  std::vector<std::string> p = {"<unk>", "<s>", "</s>"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    p.push_back(name);
  }
  for (const char* w : {" ", "a", "b", "ab", " a", "Once", " upon", "e", "t", " the", " cat", " sat"}) p.push_back(w);
  return p;
}

std::string tiny_tokenizer() {
  std::string s;
  put_i32(&s, 8);
  const auto pieces = tiny_pieces();
  for (size_t i = 0; i < pieces.size(); ++i) {
    put_f32(&s, i < 259 ? 0.0f : static_cast<float>(i));
    put_i32(&s, static_cast<int32_t>(pieces[i].size()));
    s += pieces[i];
  }
  return s;
}

// dim 8, hidden 16, 1 layer, 2 heads, 2 kv heads, the tokenizer's vocabulary, context 32; weights 0.01.
std::string tiny_checkpoint() {
  const int dim = 8, hidden = 16, layers = 1, heads = 2, kv = 2, seq = 32;
  const int vocab = static_cast<int>(tiny_pieces().size());
  std::string s;
  for (int v : {dim, hidden, layers, heads, kv, vocab, seq}) put_i32(&s, v);
  const int floats = vocab * dim + layers * dim + 4 * layers * dim * dim + layers * dim + 3 * layers * hidden * dim + dim +
                     seq * (dim / heads);
  for (int i = 0; i < floats; ++i) put_f32(&s, 0.01f);
  return s;
}

struct Fixture {
  pocketllm::LoadedModel loaded;
  pocketllm::ThreadPool pool{1};
  bool ok = false;
  Fixture() {
    const std::string ckpt = tiny_checkpoint(), tok = tiny_tokenizer();
    const std::string model_path = pocketllm::fuzz::input_file(reinterpret_cast<const uint8_t*>(ckpt.data()), ckpt.size(), "-model.bin");
    const std::string tok_path = pocketllm::fuzz::input_file(reinterpret_cast<const uint8_t*>(tok.data()), tok.size(), "-tok.bin");
    auto m = pocketllm::load_llama2c(model_path, pocketllm::LoadOptions::with_tokenizer(tok_path));
    if (!m) return;
    loaded = std::move(m.value());
    ok = true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture fixture;
  if (!fixture.ok) __builtin_trap();  // the harness's own model must load
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string content(reinterpret_cast<const char*>(data + 1), size - 1);
  static const char* kFormats[] = {"text", "tsv", "jsonl", "tsv"};
  pocketllm::DatasetOptions o;
  o.need_label = (mode & 4) != 0;
  o.skip_empty = (mode & 8) != 0;
  auto ds = pocketllm::parse_dataset(content, kFormats[mode & 3], "fuzz", o);
  if (!ds) return 0;
  if (mode & 16) {
    if (!pocketllm::drop_short_examples(&ds.value(), 2)) return 0;
  }
  pocketllm::TaskOptions to;
  to.kind = (mode & 32) ? "classify" : "lm";
  if (to.kind == "classify") {
    auto words = pocketllm::parse_label_words("0:a,1: upon");
    if (!words) __builtin_trap();
    to.label_words = words.value();
    to.prompt_template = "{text} ab";
  }
  to.pack = to.kind == "lm" && (mode & 128) != 0;
  to.max_length = 16;
  to.truncate = (mode & 64) == 0;
  auto task = pocketllm::make_task(ds.value(), *fixture.loaded.tokenizer, *fixture.loaded.model, to);
  if (!task) return 0;
  std::vector<size_t> sample = pocketllm::k_shot_indices(*task.value(), 2, mode);
  if (sample.size() > 4) sample.resize(4);
  if (!sample.empty()) (void)task.value()->evaluate_examples(&fixture.pool, *fixture.loaded.model, sample, 2);
  return 0;
}
