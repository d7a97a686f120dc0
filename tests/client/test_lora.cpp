// Low-rank adapters: the forward pass equals the merged weights', the initial adapter changes nothing,
// the base model's id ignores adapters, a LoRA run replays and resumes bit for bit, and bad configs fail
// with errors that name what is wrong.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>

#include "model_fixtures.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/safetensors.h"
#include "test_paths.h"

using namespace pocketllm;

namespace {

// Logits of every position of a small padded batch.
std::vector<float> all_logits(LanguageModel& m, int) {
  return test::all_position_logits(m, {{1, 5, 9, 3, 7, 2, 11}, {1, 4, 6}, {1, 8, 8, 8, 10}});
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) { return test::max_relative_error(a, b); }

// Random B (A keeps its seeded initial values), so the adapter changes the output.
void randomise_b(WeightStore& ws, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 0.3f);
  for (const Weight* w : ws.trainable())
    if (w->name.find(".lora_B.") != std::string::npos)
      for (size_t i = 0; i < w->numel(); ++i) w->mutable_f32[i] = n(rng);
}

// The merged weights, written into a second copy of the model by the test's own loop (double sums):
// W[o, i] += scale * sum_k B[o, k] A[k, i] (Conv1D layout: W[i, o]).
void merge_into(const WeightStore& adapted, LanguageModel& plain, bool in_out) {
  REQUIRE(plain.weights().make_trainable(NamePatterns("*")).is_ok());
  for (const auto& w : adapted.all()) {
    if (w->lora_a == nullptr) continue;
    Weight* dst = plain.weights().find_mutable(w->name);
    REQUIRE(dst != nullptr);
    const Weight& A = *w->lora_a;
    const Weight& B = *w->lora_b;
    const size_t r = A.rows(), in = A.cols(), out = B.rows();
    REQUIRE(B.cols() == r);
    const float* a = static_cast<const float*>(A.data);
    const float* b = static_cast<const float*>(B.data);
    for (size_t o = 0; o < out; ++o)
      for (size_t i = 0; i < in; ++i) {
        double acc = 0;
        for (size_t k = 0; k < r; ++k) acc += static_cast<double>(b[o * r + k]) * a[k * in + i];
        dst->mutable_f32[in_out ? i * out + o : o * in + i] += static_cast<float>(w->lora_scale * acc);
      }
  }
}

}  // namespace

TEST_CASE("lora: the adapted forward equals the merged weights', on every architecture", "[client][lora]") {
  struct Case {
    std::string label, dir, targets;
    size_t expect_modules;
  };
  const std::string llama_dir = test::temp_dir("");
  const ModelConfig lc = test::write_toy_model_dir(llama_dir, 21, /*tied=*/false);
  const std::string arch = test::fixtures_dir() + "/arch/";
  std::vector<Case> cases = {{"llama", llama_dir, "all-linear", 7u * lc.num_layers},
                             {"llama", llama_dir, "q_proj,v_proj", 2u * lc.num_layers},
                             {"opt", arch + "opt", "q_proj,v_proj,fc1", 0},
                             {"roberta", arch + "roberta", "query,value,output.dense", 0},
                             {"gpt2", arch + "gpt2", "c_attn,mlp.c_proj", 0}};
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.label << " " << c.targets) {
      auto adapted = load_model(c.dir);
      auto plain = load_model(c.dir);
      REQUIRE(adapted.is_ok());
      REQUIRE(plain.is_ok());
      const int vocab = adapted->model->config().vocab_size;
      const std::vector<float> base = all_logits(*plain->model, vocab);
      LoraConfig lora;
      lora.rank = 3;
      lora.alpha = 5;
      lora.targets = c.targets;
      lora.init_seed = 0x5eed;
      auto added = add_lora_adapters(adapted->model->weights(), adapted->model->config(), lora);
      REQUIRE(added.is_ok());
      if (c.expect_modules) CHECK(added.value() == c.expect_modules);
      CHECK(added.value() > 0);
      // Fresh adapters (B = 0) leave the model as it was, to the bit.
      CHECK(all_logits(*adapted->model, vocab) == base);
      randomise_b(adapted->model->weights(), 3);
      const std::vector<float> with_adapter = all_logits(*adapted->model, vocab);
      CHECK(max_rel_diff(with_adapter, base) > 1e-3);  // the adapter does change the output
      merge_into(adapted->model->weights(), *plain->model, adapted->model->config().arch == Architecture::kGpt2);
      CHECK(max_rel_diff(with_adapter, all_logits(*plain->model, vocab)) < 1e-5);
      // The library's own merge (what exports write) agrees with the test's.
      for (const auto& w : adapted->model->weights().all()) {
        if (w->lora_a == nullptr) continue;
        const auto merged = merged_weight(*w, adapted->model->config().arch == Architecture::kGpt2);
        const Weight* p = plain->model->weights().find(w->name);
        for (size_t i = 0; i < merged.size(); ++i) REQUIRE(std::fabs(merged[i] - p->mutable_f32[i]) <= 1e-6f * (1 + std::fabs(merged[i])));
      }
    }
  }
}

TEST_CASE("lora: names, initial values and the base model id follow docs/training.md", "[client][lora]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 22);
  auto m = load_model(dir);
  REQUIRE(m.is_ok());
  const std::string id = m->model->weights().compute_model_id();
  LoraConfig lora;
  lora.rank = 4;
  lora.init_seed = 77;
  REQUIRE(add_lora_adapters(m->model->weights(), m->model->config(), lora).is_ok());
  CHECK(m->model->weights().compute_model_id() == id);
  const std::string a_name = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight";
  const Weight* a = m->model->weights().find(a_name);
  const Weight* b = m->model->weights().find("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  const ModelConfig& c = m->model->config();
  CHECK(a->shape == std::vector<int64_t>{4, c.hidden_size});
  CHECK(b->shape == std::vector<int64_t>{int64_t(c.num_kv_heads) * c.head_dim, 4});
  CHECK(a->trainable);
  CHECK(b->trainable);
  // A = z_gaussian(init seed, tag(name)) / sqrt(in), element by element; B = 0.
  std::vector<float> z(a->numel());
  generate_z(Distribution::kGaussian, 77, tensor_tag(a_name), 0, z.size(), z.data());
  const float inv = 1.0f / std::sqrt(static_cast<float>(c.hidden_size));
  for (size_t i = 0; i < z.size(); ++i) REQUIRE(a->mutable_f32[i] == 0.0f + inv * z[i]);
  for (size_t i = 0; i < b->numel(); ++i) REQUIRE(b->mutable_f32[i] == 0.0f);
  CHECK(m->model->weights().find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") != nullptr);
  CHECK(m->model->weights().find("base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight") == nullptr);
  CHECK(is_lora_tensor_name(a_name));
  CHECK_FALSE(is_lora_tensor_name("model.layers.1.self_attn.v_proj.weight"));
  // The base weights stay frozen: only the adapters are trainable.
  CHECK(m->model->weights().trainable().size() == 2u * 2 * c.num_layers);
}

TEST_CASE("lora: bad configurations are refused with the reason", "[client][lora]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 23);
  auto m = load_model(dir);
  REQUIRE(m.is_ok());
  LoraConfig lora;
  lora.rank = 2;
  lora.targets = "query,value";
  auto none = add_lora_adapters(m->model->weights(), m->model->config(), lora);
  REQUIRE_FALSE(none.is_ok());
  CHECK(none.status().message().find("'query,value' match no linear layer") != std::string::npos);
  lora.targets = "embed_tokens,lm_head";  // never targeted: not linear layers inside the blocks
  CHECK_FALSE(add_lora_adapters(m->model->weights(), m->model->config(), lora).is_ok());
  lora.targets = "q_proj";
  REQUIRE(add_lora_adapters(m->model->weights(), m->model->config(), lora).is_ok());
  auto twice = add_lora_adapters(m->model->weights(), m->model->config(), lora);
  CHECK(twice.status().message().find("already has adapters") != std::string::npos);

  using nlohmann::json;
  CHECK(LoraConfig::from_json(json{{"rank", 8}, {"alpha", 16}, {"targets", "q_proj"}, {"init_seed", "00000000000000ff"}}, "t").is_ok());
  auto bad = [](const json& j) { return LoraConfig::from_json(j, "t").status().message(); };
  CHECK(bad(json{{"rank", 0}}).find("rank") != std::string::npos);
  CHECK(bad(json{{"rank", 5000}}).find("rank") != std::string::npos);
  CHECK(bad(json{{"rank", 2.5}}).find("rank") != std::string::npos);
  CHECK(bad(json{{"alpha", 1}}).find("rank") != std::string::npos);
  CHECK(bad(json{{"rank", 2}, {"alpha", -1}}).find("alpha") != std::string::npos);
  CHECK(bad(json{{"rank", 2}, {"targets", " , "}}).find("targets") != std::string::npos);
  CHECK(bad(json{{"rank", 2}, {"init_seed", 5}}).find("init_seed") != std::string::npos);
  CHECK(bad(json{{"rank", 2}, {"dropout", 0.1}}).find("unknown adapter field 'dropout'") != std::string::npos);
  CHECK(bad(json::array()).find("object") != std::string::npos);
  LoraConfig round;
  round.rank = 4;
  round.alpha = 8;
  round.targets = "all-linear";
  round.init_seed = 0x1234;
  auto back = LoraConfig::from_json(round.to_json(), "t");
  REQUIRE(back.is_ok());
  CHECK(back->rank == 4);
  CHECK(back->alpha == 8);
  CHECK(back->targets == "all-linear");
  CHECK(back->init_seed == 0x1234);
}

TEST_CASE("lora: a run trains only the adapters, replays from its log and resumes bit for bit", "[client][lora][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 24);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the bad cat", "a good cat", "the hat"});
  FinetuneRequest r;
  r.threads = 2;
  r.spec.model_path = dir;
  r.spec.data_path = dir + "/train.txt";
  r.spec.train.steps = 14;
  r.spec.train.batch_size = 3;
  r.spec.train.lr = 5e-2f;
  r.spec.train.n_spsa = 2;
  r.spec.train.seed = 0xfeed;
  r.spec.snapshot_every = 4;
  r.spec.trainable = "norms";  // adapters beside the norms
  r.spec.lora.rank = 2;
  r.spec.lora.targets = "q_proj,v_proj,down_proj";
  r.spec.lora.init_seed = 9;
  r.out_dir = dir + "/full";
  REQUIRE(run_finetune(r).is_ok());
  r.out_dir = dir + "/cut";
  auto stopped = run_finetune(r, [](const StepProgress& p) { return p.step < 5; });
  REQUIRE(stopped.is_ok());
  r.resume = true;
  REQUIRE(run_finetune(r).is_ok());

  auto snap_full = SafetensorsFile::open(dir + "/full/snapshot.safetensors");
  auto snap_cut = SafetensorsFile::open(dir + "/cut/snapshot.safetensors");
  REQUIRE(snap_full.is_ok());
  REQUIRE(snap_cut.is_ok());
  // Replayed independently: base + adapters at their initial values + the log.
  auto base = load_model(dir);
  REQUIRE(base.is_ok());
  const std::string base_id = base->model->weights().compute_model_id();
  auto run = RunDir::open(dir + "/full");
  REQUIRE(run.is_ok());
  CHECK(run->spec().model_id == base_id);
  CHECK(run->spec().lora.rank == 2);
  REQUIRE(select_trainable(*base->model, "norms", run->spec().lora).is_ok());
  replay_log(nullptr, Distribution::kRademacher, run->update_log(), base->model->weights().trainable_tensors());
  size_t adapters = 0, moved_b = 0;
  for (const auto& t : base->model->weights().trainable_tensors()) {
    INFO(t.name);
    const TensorInfo* full = snap_full->find(t.name);
    const TensorInfo* cut = snap_cut->find(t.name);
    REQUIRE(full != nullptr);
    REQUIRE(cut != nullptr);
    CHECK(std::memcmp(snap_full->raw(*full), t.data, t.numel * 4) == 0);
    CHECK(std::memcmp(snap_cut->raw(*cut), t.data, t.numel * 4) == 0);
    if (is_lora_tensor_name(t.name)) {
      ++adapters;
      if (t.name.find("lora_B") != std::string::npos)
        for (size_t i = 0; i < t.numel; ++i) moved_b += t.data[i] != 0.0f;
    }
  }
  CHECK(adapters == 2u * 3 * 2);  // 3 targets x 2 layers, A and B
  CHECK(moved_b > 0);             // B left zero: the adapters learned
  // The run reopens to the same weights through the library (what eval and export use).
  auto reopened = load_run_model(dir + "/cut");
  REQUIRE(reopened.is_ok());
  for (const auto& t : reopened->model->weights().trainable_tensors()) {
    const TensorInfo* full = snap_full->find(t.name);
    REQUIRE(full != nullptr);
    CHECK(std::memcmp(snap_full->raw(*full), t.data, t.numel * 4) == 0);
  }
}
