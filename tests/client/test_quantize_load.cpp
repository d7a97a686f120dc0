// LoadOptions::quantize: frozen matrices quantized in memory at load hold exactly the bytes ggml's
// quantizer writes into a GGUF file, work on every architecture, and runs record and reuse the choice.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "model_fixtures.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/quant.h"
#include "test_paths.h"

using namespace pocketllm;

namespace {

std::vector<float> logits_of(LanguageModel& m) { return test::all_position_logits(m, {{1, 5, 9, 3, 7, 2, 11, 4}, {1, 4, 6}}); }

double rel(const std::vector<float>& a, const std::vector<float>& b) { return test::max_relative_error(a, b); }

// A random Llama with d = 64 and ff = 96 (every matrix has rows of whole 32-element blocks) and a toy
// tokenizer, as a Hugging Face directory.
void write_blocky_llama(const std::string& dir) {
  test::write_toy_tokenizer(dir + "/tokenizer.bin", {" a", " b"});
  ModelConfig c = test::tiny_llama_config(261, 64, 2, 4, 2, 96, /*tied=*/false);
  const auto tensors = test::random_llama_tensors(c, 31);
  std::vector<TensorToWrite> tw;
  for (const auto& t : tensors) tw.push_back({t.name, DType::kF32, t.shape, t.values.data()});
  REQUIRE(write_safetensors(dir + "/model.safetensors", tw).is_ok());
  std::ofstream(dir + "/config.json") << nlohmann::json{{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", 261},
                                                         {"hidden_size", 64}, {"intermediate_size", 96}, {"num_hidden_layers", 2},
                                                         {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"tie_word_embeddings", false}}
                                             .dump();
}

}  // namespace

TEST_CASE("quantize at load: the same bytes as a GGUF conversion, on every matrix with whole blocks", "[client][quantize]") {
  const std::string dir = test::temp_dir("");
  write_blocky_llama(dir);
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    DYNAMIC_SECTION(dtype_name(t)) {
      LoadOptions lo;
      lo.quantize = t;
      auto q = load_model(dir, lo);
      REQUIRE(q.is_ok());
      REQUIRE(convert_to_gguf(dir, dir + "/m.gguf", t).is_ok());
      auto g = load_model(dir + "/m.gguf");
      REQUIRE(g.is_ok());
      size_t quantized = 0;
      for (const auto& w : q->model->weights().all()) {
        INFO(w->name);
        if (w->shape.size() != 2) {
          CHECK(w->dtype == DType::kF32);
          continue;
        }
        REQUIRE(w->dtype == t);
        ++quantized;
        const Weight* gw = g->model->weights().find(w->name);
        REQUIRE(gw != nullptr);
        REQUIRE(gw->dtype == t);
        CHECK(std::memcmp(w->data, gw->data, dtype_bytes(t, w->numel())) == 0);
      }
      CHECK(quantized == 2 + 7 * 2u);
      // The forward reads what was quantized: the same logits as the float model whose matrices hold the
      // dequantized values (written by the test through ggml's format, test_quant.cpp's reading of it).
      auto f = load_model(dir);
      REQUIRE(f.is_ok());
      const std::vector<float> float_logits = logits_of(*f->model);
      REQUIRE(f->model->weights().make_trainable(NamePatterns("*")).is_ok());
      for (const auto& w : q->model->weights().all()) {
        if (w->dtype != t) continue;
        Weight* fw = f->model->weights().find_mutable(w->name);
        dequantize(t, w->data, w->numel(), fw->mutable_f32);
      }
      const std::vector<float> ql = logits_of(*q->model);
      CHECK(rel(ql, logits_of(*f->model)) < 1e-4);
      CHECK(rel(ql, float_logits) > 1e-4);  // quantization did change the model
    }
  }
}

TEST_CASE("quantize at load: a LoRA run over a 4-bit base records the choice and resumes with it", "[client][quantize][lora]") {
  const std::string dir = test::temp_dir("");
  write_blocky_llama(dir);
  test::write_lines(dir + "/train.txt", {"a b a", "b b a a", "a a a", "b a b"});
  FinetuneRequest r;
  r.threads = 1;
  r.out_dir = dir + "/run";
  r.spec.model_path = dir;
  r.spec.data_path = dir + "/train.txt";
  r.spec.train.steps = 6;
  r.spec.train.batch_size = 2;
  r.spec.train.lr = 1e-2f;
  r.spec.trainable = "none";
  r.spec.lora.rank = 2;
  r.spec.quantize = DType::kQ4_0;
  REQUIRE(run_finetune(r, [](const StepProgress& p) { return p.step < 2; }).is_ok());
  {
    auto run = RunDir::open(dir + "/run");
    REQUIRE(run.is_ok());
    CHECK(run->spec().quantize == DType::kQ4_0);
    CHECK(run->spec().to_json()["model"]["quantize"] == "Q4_0");
  }
  r.resume = true;
  auto done = run_finetune(r);
  REQUIRE(done.is_ok());
  CHECK(done->steps_done == 6);
  auto reopened = load_run_model(dir + "/run");
  REQUIRE(reopened.is_ok());
  const Weight* q = reopened->model->weights().find("model.layers.0.self_attn.q_proj.weight");
  REQUIRE(q != nullptr);
  CHECK(q->dtype == DType::kQ4_0);
  CHECK(q->lora_a != nullptr);
  LoadOptions bad;
  bad.quantize = DType::kBF16;
  CHECK(load_model(dir, bad).status().message().find("q8_0 or q4_0") != std::string::npos);
}
