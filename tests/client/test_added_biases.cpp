// Added biases (--add-biases): zero output biases on bias-free linear layers, trained like any tensor.
#include <catch2/catch.hpp>

#include "model_fixtures.h"
#include "run_fixtures.h"
#include "pocketllm/client/added_biases.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/common/tensor_ops.h"

using namespace pocketllm;

namespace {

const std::vector<std::vector<int32_t>> kSeqs = {{1, 5, 9, 22, 40, 3}, {1, 60, 2, 17}};

FinetuneRequest request(const std::string& model_dir, const std::string& out, int steps) {
  FinetuneRequest r = test::toy_lm_request(model_dir, out, steps);
  r.spec.train.lr = 2e-2f;
  r.spec.train.seed = 0xb1a5;
  r.spec.train.data_seed = 2;
  r.spec.added_biases = "all-linear";
  r.spec.trainable = "norms,biases";
  return r;
}

}  // namespace

TEST_CASE("added biases start at zero, and once set compute what a checkpoint's own biases compute", "[client][biases]") {
  const ModelConfig with_bias = test::tiny_llama_config(67, 24, 2, 4, 2, 37, false, true);  // Qwen2: q, k, v biases
  const auto tensors = test::random_llama_tensors(with_bias, 41);
  std::vector<test::TensorData> no_bias;
  std::map<std::string, std::vector<float>> bias_values;
  for (const auto& t : tensors) {
    if (t.name.size() > 5 && t.name.compare(t.name.size() - 5, 5, ".bias") == 0) bias_values[t.name] = t.values;
    else no_bias.push_back(t);
  }
  REQUIRE(bias_values.size() == 6);
  const ModelConfig plain_config = test::tiny_llama_config(67, 24, 2, 4, 2, 37, false, false);
  auto reference = test::make_llama(with_bias, tensors);
  auto plain = test::make_llama(plain_config, no_bias);

  const auto before = test::all_position_logits(*plain, kSeqs);
  auto added = add_zero_biases(*plain, "q_proj,k_proj,v_proj");
  REQUIRE(added.is_ok());
  CHECK(added.value() == 6);
  CHECK(test::all_position_logits(*plain, kSeqs) == before);  // zero biases change nothing, bit for bit
  CHECK(test::all_position_logits(*plain, kSeqs) != test::all_position_logits(*reference, kSeqs));

  for (const auto& [name, values] : bias_values) {
    Weight* w = plain->weights().find_mutable(name);
    REQUIRE(w != nullptr);
    REQUIRE(w->numel() == values.size());
    std::copy(values.begin(), values.end(), w->mutable_f32);
  }
  CHECK(test::max_relative_error(test::all_position_logits(*plain, kSeqs), test::all_position_logits(*reference, kSeqs)) < 1e-6);

  // all-linear: every projection of every layer (7 per Llama layer); refusals name the reason.
  auto fresh = test::make_llama(plain_config, no_bias);
  CHECK(add_zero_biases(*fresh, "all-linear").value() == 14);
  CHECK(fresh->weights().find("model.layers.1.mlp.down_proj.bias")->numel() == 24);
  CHECK(add_zero_biases(*fresh, "all-linear").status().message().find("already has added biases") != std::string::npos);
  CHECK(add_zero_biases(*test::make_llama(plain_config, no_bias), "").value() == 0);
  CHECK_FALSE(add_zero_biases(*test::make_llama(plain_config, no_bias), "nothing_proj").is_ok());
  // A checkpoint's own biases are trained as they are: q/k/v of Qwen2 get none added.
  CHECK_FALSE(add_zero_biases(*test::make_llama(with_bias, tensors), "q_proj,k_proj,v_proj").is_ok());
  CHECK(add_zero_biases(*test::make_llama(with_bias, tensors), "all-linear").value() == 8);  // o, gate, up, down
}

TEST_CASE("added biases train, replay from the log and resume to the same bytes, and the forward pass perturbs them",
          "[client][biases][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 42);
  test::write_lines(dir + "/train.txt", {"the cat", "a cat at the bed", "he had a cat", "the hat", "the end", "a bee"});
  REQUIRE(run_finetune(request(dir, dir + "/run", 8)).is_ok());
  auto run = RunDir::open(dir + "/run");
  REQUIRE(run.is_ok());
  CHECK(run->spec().added_biases == "all-linear");
  const auto trained = test::tensor_bytes(dir + "/run/snapshot.safetensors");
  REQUIRE(trained.count("model.layers.1.mlp.down_proj.bias") == 1);
  CHECK(trained.at("model.layers.1.mlp.down_proj.bias") != std::string(24 * 4, '\0'));  // moved from zero
  CHECK(trained.count("model.layers.0.mlp.up_proj.weight") == 0);                      // frozen

  auto replayed = [&] {
    auto m = load_model(dir);
    REQUIRE(m.is_ok());
    REQUIRE(add_zero_biases(*m->model, "all-linear").is_ok());
    REQUIRE(m->model->weights().make_trainable(NamePatterns(run->spec().trainable)).is_ok());
    auto tensors = m->model->weights().trainable_tensors();
    replay_log(nullptr, Distribution::kRademacher, run->update_log(), tensors);
    std::map<std::string, std::string> out;
    for (const auto& t : tensors) out[t.name] = std::string(reinterpret_cast<const char*>(t.data), t.numel * 4);
    return out;
  }();
  CHECK(replayed == trained);

  auto cut = request(dir, dir + "/cut", 8);
  REQUIRE(run_finetune(cut, [](const StepProgress& p) { return p.step < 3; }).is_ok());
  cut.resume = true;
  cut.spec.added_biases.clear();  // a resumed run reads its own spec
  REQUIRE(run_finetune(cut).is_ok());
  CHECK(test::tensor_bytes(dir + "/cut/snapshot.safetensors") == trained);

  // The perturbed forward reads b + c z for an added bias: the same loss as the shift written into it.
  DatasetOptions o;
  auto ds = parse_dataset("the cat\nhe had a cat\n", "txt", "t.txt", o);
  REQUIRE(ds.is_ok());
  const float c = 0.1f;
  const UpdateEntry shift{0x99, -c};
  auto loss = [&](bool perturbed) {
    auto m = load_model(dir, LoadOptions::with_tokenizer());
    REQUIRE(m.is_ok());
    REQUIRE(add_zero_biases(*m->model, "all-linear").is_ok());
    REQUIRE(m->model->weights().make_trainable(NamePatterns("*.bias")).is_ok());
    auto task = make_task(ds.value(), *m->tokenizer, *m->model, TaskOptions{});
    REQUIRE(task.is_ok());
    Perturbation p;
    if (perturbed) p = Perturbation{true, Distribution::kRademacher, shift.seed, c};
    else replay_entries(nullptr, Distribution::kRademacher, &shift, 1, m->model->weights().trainable_tensors());
    auto l = task.value()->loss(nullptr, *m->model, {0, 1}, p);
    REQUIRE(l.is_ok());
    return l->sum;
  };
  const double a = loss(true), b = loss(false);
  CHECK(a == b);
}
