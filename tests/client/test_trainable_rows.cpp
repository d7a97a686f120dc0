// Trainable rows (--trainable-rows): only the listed rows of a tensor are perturbed and updated, with the
// perturbation spec's z unchanged for them; "sample" resolves to the token ids a training sample uses.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>

#include "model_fixtures.h"
#include "run_fixtures.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/client/trainable_rows.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/tensor_ops.h"

using namespace pocketllm;

namespace {

const char* kEmb = "model.embed_tokens.weight";

std::vector<std::string> sentences() {
  return {"the cat", "a cat at the bed", "he had a cat", "the cheese", "a bee and a cat", "the hat", "cat cat cat", "the end"};
}

FinetuneRequest request(const std::string& model_dir, const std::string& out, int steps) {
  FinetuneRequest r = test::toy_lm_request(model_dir, out, steps);
  r.spec.train.seed = 0x5eed;
  r.spec.train.data_seed = 3;
  return r;
}

// The float32 rows [r, r + 1) of a [rows, cols] tensor's bytes.
std::string row_bytes(const std::string& bytes, size_t cols, size_t r) { return bytes.substr(r * cols * 4, cols * 4); }

}  // namespace

TEST_CASE("trainable rows: only the listed rows move, the run replays from its log and resumes to the same bytes",
          "[client][trainer][rows][e2e]") {
  const std::string dir = test::temp_dir("");
  const ModelConfig c = test::write_toy_model_dir(dir, 31);
  test::write_lines(dir + "/train.txt", sentences());
  const std::string rows = std::string(kEmb) + "=2-5,9,260-270";
  auto req = request(dir, dir + "/run", 8);
  req.spec.trainable = "norms,model.embed_tokens.weight";
  req.spec.trainable_rows = rows;
  REQUIRE(run_finetune(req).is_ok());
  auto run = RunDir::open(dir + "/run");
  REQUIRE(run.is_ok());
  CHECK(run->spec().trainable_rows == rows);  // recorded in spec.json

  const auto base = test::tensor_bytes(dir + "/model.safetensors");
  const auto trained = test::tensor_bytes(dir + "/run/snapshot.safetensors");
  const size_t d = static_cast<size_t>(c.hidden_size);
  std::set<size_t> listed = {2, 3, 4, 5, 9};
  for (size_t r = 260; r <= 270; ++r) listed.insert(r);
  size_t moved = 0;
  for (size_t r = 0; r < static_cast<size_t>(c.vocab_size); ++r) {
    const bool same = row_bytes(trained.at(kEmb), d, r) == row_bytes(base.at(kEmb), d, r);
    if (!listed.count(r)) {
      INFO("row " << r);
      CHECK(same);  // never perturbed into an update
    } else {
      moved += !same;
    }
  }
  CHECK(moved == listed.size());
  CHECK(trained.at("model.norm.weight") != base.at("model.norm.weight"));  // the norms train whole

  // Replayed onto the base with the run's rows: the run's bytes. Over whole tensors: other bytes.
  auto replayed = [&](bool with_rows) {
    auto m = load_model(dir);
    REQUIRE(m.is_ok());
    REQUIRE(m->model->weights().make_trainable(NamePatterns(run->spec().trainable)).is_ok());
    if (with_rows) REQUIRE(apply_trainable_rows(*m->model, rows).is_ok());
    auto tensors = m->model->weights().trainable_tensors();
    replay_log(nullptr, Distribution::kRademacher, run->update_log(), tensors);
    std::map<std::string, std::string> out;
    for (const auto& t : tensors) out[t.name] = std::string(reinterpret_cast<const char*>(t.data), t.numel * 4);
    return out;
  };
  const auto with = replayed(true), without = replayed(false);
  for (const auto& [name, bytes] : with) {
    INFO(name);
    CHECK(trained.at(name) == bytes);
  }
  CHECK(without.at(kEmb) != trained.at(kEmb));
  // The listed rows' z is the spec's own: the whole-tensor replay agrees with the run on exactly those rows.
  for (size_t r : listed) CHECK(row_bytes(without.at(kEmb), d, r) == row_bytes(trained.at(kEmb), d, r));

  // Stopped half-way and resumed: the same bytes (the rows come back from spec.json).
  auto cut = request(dir, dir + "/cut", 8);
  cut.spec.trainable = req.spec.trainable;
  cut.spec.trainable_rows = rows;
  REQUIRE(run_finetune(cut, [](const StepProgress& p) { return p.step < 3; }).is_ok());
  cut.resume = true;
  cut.spec.trainable_rows.clear();  // a resumed run reads its own spec
  REQUIRE(run_finetune(cut).is_ok());
  CHECK(test::tensor_bytes(dir + "/cut/snapshot.safetensors") == trained);
}

TEST_CASE("trainable rows: the perturbed forward pass reads theta + c z on the listed rows only", "[client][trainer][rows]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 32);
  DatasetOptions o;
  auto ds = parse_dataset("the cat\na cat at the bed\nhe had a cat\nthe hat\n", "txt", "t.txt", o);
  REQUIRE(ds.is_ok());
  const std::string rows = std::string(kEmb) + "=0-40,265-270";
  const float c = 0.05f;
  const UpdateEntry shift{0x77, -c};  // theta - (-c) z = theta + c z
  auto loss = [&](bool masked, bool perturbed) {
    auto m = load_model(dir, LoadOptions::with_tokenizer());
    REQUIRE(m.is_ok());
    REQUIRE(m->model->weights().make_trainable(NamePatterns(kEmb)).is_ok());
    if (masked) REQUIRE(apply_trainable_rows(*m->model, rows).is_ok());
    auto task = make_task(ds.value(), *m->tokenizer, *m->model, TaskOptions{});
    REQUIRE(task.is_ok());
    Perturbation p;
    if (perturbed) {
      p = Perturbation{true, Distribution::kRademacher, shift.seed, c};
    } else {  // the same shift written into the weights (through the spans when masked)
      auto tensors = m->model->weights().trainable_tensors();
      replay_entries(nullptr, Distribution::kRademacher, &shift, 1, tensors);
    }
    auto l = task.value()->loss(nullptr, *m->model, {0, 1, 2, 3}, p);
    REQUIRE(l.is_ok());
    return l->sum;
  };
  const double on_the_fly = loss(true, true), written = loss(true, false);
  CHECK(on_the_fly == written);
  CHECK(loss(false, true) == loss(false, false));
  CHECK(on_the_fly != loss(false, true));  // the mask changes what the forward pass reads
}

TEST_CASE("trainable rows: 'sample' is the token ids of the sample and the label words", "[client][trainer][rows]") {
  const std::string dir = test::temp_dir("");
  const ModelConfig c = test::write_toy_model_dir(dir, 33);
  auto m = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(m.is_ok());
  REQUIRE(m->model->weights().make_trainable(NamePatterns(expand_trainable("norms,model.embed_tokens.weight", 2))).is_ok());
  const std::vector<std::string> texts = {"a hat", "he had a bee", "a dab", "he said abc"};  // no " cat", no " the"
  std::string tsv = "sentence\tlabel\n";
  for (size_t i = 0; i < texts.size(); ++i) tsv += texts[i] + "\t" + (i % 2 ? "1" : "0") + "\n";
  DatasetOptions need_label;
  need_label.need_label = true;
  auto ds = parse_dataset(tsv, "tsv", "s.tsv", need_label);
  REQUIRE(ds.is_ok());
  TaskOptions to;
  to.kind = "classify";
  to.label_words = parse_label_words("0:cat,1:the").value();
  auto task = make_task(ds.value(), *m->tokenizer, *m->model, to);
  INFO(task.status().message());
  REQUIRE(task.is_ok());

  // Independently: the tokenizer on each prompt, and the first token each label word adds after a prompt.
  auto encode = [&](const std::string& text) { return m->tokenizer->encode(text, true, false).value(); };
  std::map<int32_t, int> count;
  for (const auto& t : texts)
    for (int32_t id : encode(t + " It was")) ++count[id];
  const std::vector<int32_t> probe = encode("x It was"), cat = encode("x It was cat"), the = encode("x It was the");
  REQUIRE(cat.size() > probe.size());
  REQUIRE(the.size() > probe.size());
  const int32_t label0 = cat[probe.size()], label1 = the[probe.size()];
  REQUIRE(label0 != label1);
  REQUIRE(count.count(label0) == 0);  // the label words' rows come from the task, not the sample
  REQUIRE(count.count(label1) == 0);
  auto flags = [&](const std::string& spec, const std::vector<size_t>& sample) {
    auto resolved = resolve_trainable_rows(*m->model, spec, task.value().get(), sample);
    REQUIRE(resolved.is_ok());
    REQUIRE(apply_trainable_rows(*m->model, resolved.value()).is_ok());
    std::set<int32_t> on;
    for (const auto& w : m->model->weights().all())
      if (w->name == kEmb)
        for (size_t r = 0; r < w->row_mask.size(); ++r)
          if (w->row_mask[r]) on.insert(static_cast<int32_t>(r));
    return on;
  };
  std::set<int32_t> want = {label0, label1};
  for (const auto& [id, n] : count) want.insert(id);
  CHECK(flags(std::string(kEmb) + "=sample", {0, 1, 2, 3}) == want);

  std::set<int32_t> twice = {label0, label1};
  for (const auto& [id, n] : count)
    if (n >= 2) twice.insert(id);
  REQUIRE(twice.size() < want.size());
  CHECK(flags(std::string(kEmb) + "=sample:2", {0, 1, 2, 3}) == twice);
  CHECK(flags(std::string(kEmb) + "=sample:1000", {0, 1, 2, 3}) == std::set<int32_t>{label0, label1});

  // Only the sample counts: the first example alone.
  std::set<int32_t> first = {label0, label1};
  for (int32_t id : encode("a hat It was")) first.insert(id);
  CHECK(flags(std::string(kEmb) + "=sample", {0}) == first);

  // The norms keep every row; the trainable count follows the mask.
  CHECK(m->model->weights().trainable_numel() ==
        first.size() * static_cast<size_t>(c.hidden_size) + static_cast<size_t>(c.hidden_size) * (2 * c.num_layers + 1));
}

TEST_CASE("trainable rows: bad specs are refused with a reason", "[client][trainer][rows]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 34);
  auto m = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(m.is_ok());
  REQUIRE(m->model->weights().make_trainable(NamePatterns(expand_trainable("norms,model.embed_tokens.weight", 2))).is_ok());
  const std::string e = kEmb;
  for (const std::string& bad : std::vector<std::string>{e, e + "=", "=1-2", e + "=5-2", e + "=1-", e + "=-3", e + "=a", e + "=1,,2", e + "=279",
                                 e + "=0-99999999999999", "model.layers.0.mlp.up_proj.weight=0" /* not trainable */,
                                 e + "=sample" /* unresolved */}) {
    INFO(bad);
    CHECK_FALSE(apply_trainable_rows(*m->model, bad).is_ok());
  }
  CHECK(apply_trainable_rows(*m->model, "").is_ok());
  CHECK(apply_trainable_rows(*m->model, e + "=0,278").is_ok());
  // "sample" needs the data, a count >= 1, and rows that are token ids.
  CHECK_FALSE(resolve_trainable_rows(*m->model, e + "=sample", nullptr, {}).is_ok());
  DatasetOptions o;
  auto ds = parse_dataset("the cat\n", "txt", "t.txt", o);
  auto task = make_task(ds.value(), *m->tokenizer, *m->model, TaskOptions{});
  REQUIRE(task.is_ok());
  CHECK_FALSE(resolve_trainable_rows(*m->model, e + "=sample:0", task.value().get(), {0}).is_ok());
  CHECK_FALSE(resolve_trainable_rows(*m->model, e + "=sample:x", task.value().get(), {0}).is_ok());
  auto norm = resolve_trainable_rows(*m->model, "norms=sample", task.value().get(), {0});
  REQUIRE_FALSE(norm.is_ok());
  CHECK(norm.status().message().find("not token ids") != std::string::npos);
  CHECK(resolve_trainable_rows(*m->model, e + "=3-4", task.value().get(), {0}).value() == e + "=3-4");  // lists pass through

  // A run with bad rows is refused before it trains, and leaves no run directory.
  test::write_lines(dir + "/train.txt", {"the cat", "a hat"});
  auto req = request(dir, dir + "/refused", 3);
  req.spec.trainable = "norms";
  req.spec.trainable_rows = "norms=sample";
  CHECK_FALSE(run_finetune(req).is_ok());
  CHECK_FALSE(std::ifstream(dir + "/refused/spec.json").good());
}
