#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>

#include "model_fixtures.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/common/tensor_ops.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"

using namespace pocketllm;

namespace {

using test::tensor_bytes;

std::vector<std::string> toy_sentences() {
  return {"the cat", "a cat at the bed", "he had a cat", "the bad cat", "a good cat", "the hat",
          "cat cat cat", "the cheese", "abc", "a bee and a cat", "that cat is good", "the end"};
}

FinetuneRequest toy_request(const std::string& model_dir, const std::string& data, const std::string& out, int steps) {
  FinetuneRequest r;
  r.out_dir = out;
  r.threads = 2;
  r.spec.model_path = model_dir;
  r.spec.data_path = data;
  r.spec.train.steps = steps;
  r.spec.train.batch_size = 4;
  r.spec.train.lr = 1e-3f;
  r.spec.train.eps = 1e-3f;
  r.spec.train.n_spsa = 2;
  r.spec.train.seed = 0xabcdef;
  r.spec.train.data_seed = 7;
  r.spec.snapshot_every = 5;
  r.spec.fsync_every = 3;
  r.spec.task.kind = "lm";
  return r;
}


}  // namespace

TEST_CASE("trained weights are bit-identical to replaying the run's log onto the base model", "[client][trainer][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 11);
  test::write_lines(dir + "/train.txt", toy_sentences());
  auto r = run_finetune(toy_request(dir, dir + "/train.txt", dir + "/run", 12));
  REQUIRE(r.is_ok());
  CHECK(r->steps_done == 12);
  auto run = RunDir::open(dir + "/run");
  REQUIRE(run.is_ok());
  const UpdateLog log = run->update_log();
  CHECK(log.size() == 24);  // 12 steps x 2 directions

  // Independently: the base model, the log, and common/'s replay.
  auto base = load_model(dir);
  REQUIRE(base.is_ok());
  REQUIRE(base->model->weights().make_trainable(NamePatterns("*")).is_ok());
  auto tensors = base->model->weights().trainable_tensors();
  replay_log(nullptr, Distribution::kRademacher, log, tensors);
  const auto trained = tensor_bytes(dir + "/run/snapshot.safetensors");
  size_t changed = 0;
  auto original = tensor_bytes(dir + "/model.safetensors");
  for (const auto& t : tensors) {
    INFO(t.name);
    REQUIRE(trained.count(t.name));
    CHECK(std::memcmp(trained.at(t.name).data(), t.data, t.numel * 4) == 0);
    changed += std::memcmp(original.at(t.name).data(), t.data, t.numel * 4) != 0;
  }
  CHECK(changed == tensors.size());  // every trainable tensor moved
}

TEST_CASE("a stopped or torn run resumes to exactly the uninterrupted weights", "[client][trainer][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 12);
  test::write_lines(dir + "/train.txt", toy_sentences());
  REQUIRE(run_finetune(toy_request(dir, dir + "/train.txt", dir + "/full", 20)).is_ok());

  // Stop after step 6 (Ctrl-C), leave a torn half line in the log, then resume.
  auto req = toy_request(dir, dir + "/train.txt", dir + "/cut", 20);
  auto stopped = run_finetune(req, [](const StepProgress& p) { return p.step < 6; });
  REQUIRE(stopped.is_ok());
  CHECK(stopped->stopped);
  CHECK(stopped->steps_done == 7);
  {
    std::ofstream log(dir + "/cut/log.jsonl", std::ios::app);
    log << R"({"step":7,"k":0,"seed":"00000000)";  // a write cut by kill -9
  }
  req.resume = true;
  auto resumed = run_finetune(req);
  REQUIRE(resumed.is_ok());
  CHECK(resumed->steps_done == 20);
  CHECK(tensor_bytes(dir + "/cut/snapshot.safetensors") == tensor_bytes(dir + "/full/snapshot.safetensors"));
  auto a = read_file(dir + "/cut/log.jsonl"), b = read_file(dir + "/full/log.jsonl");
  CHECK(a.value() == b.value());
}

TEST_CASE("a run refuses a different base model and changed data", "[client][trainer]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 13);
  test::write_lines(dir + "/train.txt", toy_sentences());
  auto req = toy_request(dir, dir + "/train.txt", dir + "/run", 3);
  REQUIRE(run_finetune(req).is_ok());
  req.resume = true;
  req.spec.train.steps = 6;
  SECTION("creating over an existing run") {
    req.resume = false;
    auto r = run_finetune(req);
    CHECK(r.status().message().find("already holds a run") != std::string::npos);
  }
  SECTION("changed data") {
    test::write_lines(dir + "/train.txt", {"other data"});
    auto r = run_finetune(req);
    CHECK(r.status().code() == StatusCode::kMismatch);
  }
  SECTION("different base model") {
    test::write_toy_model_dir(dir, 99);  // same shapes, other weights
    auto r = run_finetune(req);
    CHECK(r.status().code() == StatusCode::kMismatch);
    CHECK(r.status().message().find("base model") != std::string::npos);
  }
}

TEST_CASE("a step with a non-finite loss is skipped and never touches the weights", "[client][trainer]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 14);
  auto loaded = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  REQUIRE(loaded->model->weights().make_trainable(NamePatterns("*")).is_ok());
  Dataset ds;
  ds.path = "mem";
  for (const auto& s : toy_sentences()) ds.examples.push_back({s, "", "", 1});
  auto task = make_task(ds, *loaded->tokenizer, *loaded->model, TaskOptions{});
  REQUIRE(task.is_ok());
  TrainOptions o;
  o.batch_size = 12;  // every example, so the poisoned token below is in the batch
  // A NaN in the embedding row of "c": every loss that reads it is NaN.
  Weight* emb = loaded->model->weights().find_mutable("model.embed_tokens.weight");
  const int32_t c_id = loaded->tokenizer->token_id("c");
  REQUIRE(c_id > 0);
  emb->mutable_f32[static_cast<size_t>(c_id) * emb->cols()] = std::nanf("");
  ZoTrainer trainer(*loaded->model, *task.value(), k_shot_indices(*task.value(), 0, 0), o, nullptr);
  const Weight* w = loaded->model->weights().find("model.layers.0.mlp.up_proj.weight");
  const std::vector<float> before(w->mutable_f32, w->mutable_f32 + w->numel());
  auto rec = trainer.step(0);
  REQUIRE(rec.is_ok());
  CHECK(rec->skipped);
  CHECK(rec->entries.empty());
  trainer.apply(rec.value());
  CHECK(std::memcmp(before.data(), w->mutable_f32, before.size() * 4) == 0);
}

TEST_CASE("malformed training data is reported with its line number", "[client][data]") {
  DatasetOptions need_label;
  need_label.need_label = true;
  auto bad_utf8 = parse_dataset("fine\nbad \xff byte\n", "text", "d.txt", DatasetOptions{});
  CHECK(bad_utf8.status().message() == "d.txt:2: not valid UTF-8");
  auto missing = parse_dataset("sentence\tlabel\na\t1\nno label here\n", "tsv", "d.tsv", need_label);
  CHECK(missing.status().message().find("d.tsv:3: missing the label column") != std::string::npos);
  auto bad_json = parse_dataset("{\"text\": \"x\"}\n{\"text\": 5.5}\n", "jsonl", "d.jsonl", DatasetOptions{});
  CHECK(bad_json.status().message().find("d.jsonl:2") != std::string::npos);
  auto empty_lines = parse_dataset("a\n\n  \nb\n", "text", "d.txt", DatasetOptions{});
  REQUIRE(empty_lines.is_ok());
  CHECK(empty_lines->examples.size() == 2);
  CHECK(empty_lines->skipped_empty == 2);
  auto pc = parse_dataset(R"({"prompt": "Q: 2+2?", "completion": " 4"})" "\n", "jsonl", "d.jsonl", DatasetOptions{});
  REQUIRE(pc.is_ok());
  CHECK(pc->examples[0].completion == " 4");

  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 15);
  auto loaded = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  auto ds = parse_dataset("the cat\t1\nthe hat\t7\n", "tsv", "c.tsv", need_label);
  REQUIRE(ds.is_ok());
  TaskOptions to;
  to.kind = "classify";
  to.label_words = parse_label_words("0:cat,1:the").value();
  auto t = make_task(ds.value(), *loaded->tokenizer, *loaded->model, to);
  INFO(t.status().message());
  CHECK(t.status().message().find("c.tsv:2: unknown label '7'") != std::string::npos);
  CHECK_FALSE(parse_label_words("0:good").is_ok());
  CHECK_FALSE(parse_label_words("0:good,0:bad").is_ok());
}

TEST_CASE("over-long examples are truncated or skipped as asked, and counted", "[client][data]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 16);
  auto loaded = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  Dataset ds;
  ds.path = "mem";
  ds.examples = {{"the cat", "", "", 1}, {std::string(300, 'z'), "", "", 2}};
  TaskOptions to;
  to.max_length = 16;
  auto t = make_task(ds, *loaded->tokenizer, *loaded->model, to);
  REQUIRE(t.is_ok());
  CHECK(t.value()->truncated == 1);
  CHECK(t.value()->size() == 2);
  to.truncate = false;
  auto s = make_task(ds, *loaded->tokenizer, *loaded->model, to);
  REQUIRE(s.is_ok());
  CHECK(s.value()->skipped == 1);
  CHECK(s.value()->size() == 1);
}

TEST_CASE("weight decay is logged, skips norms, and resumes to the same bytes", "[client][trainer][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 17);
  test::write_lines(dir + "/train.txt", toy_sentences());
  auto with_wd = toy_request(dir, dir + "/train.txt", dir + "/wd", 10);
  with_wd.spec.train.weight_decay = 0.1f;
  with_wd.spec.train.lr = 1e-2f;
  REQUIRE(run_finetune(with_wd).is_ok());
  // The same run stopped half-way and resumed.
  auto cut = toy_request(dir, dir + "/train.txt", dir + "/wd_cut", 10);
  cut.spec.train.weight_decay = 0.1f;
  cut.spec.train.lr = 1e-2f;
  REQUIRE(run_finetune(cut, [](const StepProgress& p) { return p.step < 4; }).is_ok());
  cut.resume = true;
  REQUIRE(run_finetune(cut).is_ok());
  CHECK(tensor_bytes(dir + "/wd_cut/snapshot.safetensors") == tensor_bytes(dir + "/wd/snapshot.safetensors"));
  auto log = read_file(dir + "/wd/log.jsonl");
  CHECK(log->find("\"decay\"") != std::string::npos);
  CHECK(weight_decay_applies("model.layers.0.mlp.up_proj.weight"));
  CHECK_FALSE(weight_decay_applies("model.layers.0.input_layernorm.weight"));
  CHECK_FALSE(weight_decay_applies("model.decoder.layers.0.fc1.bias"));
  // Decay shrinks the matrices: with the same seeds, the decayed run's up_proj has a smaller norm.
  auto plain = toy_request(dir, dir + "/train.txt", dir + "/plain", 10);
  plain.spec.train.lr = 1e-2f;
  REQUIRE(run_finetune(plain).is_ok());
  auto norm_of = [&](const std::string& path, const std::string& name) {
    const std::string b = tensor_bytes(path).at(name);
    double s = 0;
    for (size_t i = 0; i < b.size(); i += 4) {
      float v;
      std::memcpy(&v, b.data() + i, 4);
      s += double(v) * v;
    }
    return s;
  };
  const std::string up = "model.layers.0.mlp.up_proj.weight", ln = "model.layers.0.input_layernorm.weight";
  CHECK(norm_of(dir + "/wd/snapshot.safetensors", up) < norm_of(dir + "/plain/snapshot.safetensors", up));
  (void)ln;
  // apply_step alone: a norm keeps its values, a matrix is scaled by (1 - decay) exactly.
  std::vector<float> norm_w = {1.5f, -2.0f}, mat = {1.5f, -2.0f};
  apply_step(nullptr, Distribution::kRademacher, 0.25f, {},
             {{"model.norm.weight", norm_w.data(), 2}, {"lm_head.weight", mat.data(), 2}});
  CHECK(norm_w == std::vector<float>{1.5f, -2.0f});
  CHECK(mat == std::vector<float>{1.5f * 0.75f, -2.0f * 0.75f});
}

TEST_CASE("trainable shorthands and classification presets expand as documented", "[client][trainer]") {
  const NamePatterns last2(expand_trainable("last:2", 5));
  CHECK(last2.matches("model.layers.4.mlp.up_proj.weight"));
  CHECK(last2.matches("model.layers.3.self_attn.q_proj.weight"));
  CHECK_FALSE(last2.matches("model.layers.2.self_attn.q_proj.weight"));
  CHECK_FALSE(last2.matches("model.layers.13.self_attn.q_proj.weight"));
  CHECK(last2.matches("transformer.h.4.attn.c_attn.weight"));
  const NamePatterns attn(expand_trainable("attention", 5));
  CHECK(attn.matches("model.layers.0.self_attn.o_proj.weight"));
  CHECK(attn.matches("roberta.encoder.layer.0.attention.self.query.weight"));
  CHECK_FALSE(attn.matches("model.layers.0.mlp.up_proj.weight"));
  CHECK(NamePatterns(expand_trainable("norms", 5)).matches("model.layers.0.input_layernorm.weight"));
  CHECK(expand_trainable("model.norm.weight", 5) == "model.norm.weight");
  // Shorthands inside a list expand on their own; plain patterns stay as given.
  const NamePatterns mixed(expand_trainable("norms,model.embed_tokens.weight", 5));
  CHECK(mixed.matches("model.layers.2.post_attention_layernorm.weight"));
  CHECK(mixed.matches("model.embed_tokens.weight"));
  CHECK_FALSE(mixed.matches("model.layers.2.mlp.up_proj.weight"));
  CHECK(expand_trainable("last:1,model.norm.weight", 5) == "*.layers.4.*,*.layer.4.*,*.h.4.*,model.norm.weight");
  CHECK(expand_trainable("", 5).empty());
  std::string tmpl, labels;
  REQUIRE(classification_preset("sst2", &tmpl, &labels));
  CHECK(tmpl == "{text} It was");
  CHECK(parse_label_words(labels).value().size() == 2);
  REQUIRE(classification_preset("agnews", &tmpl, &labels));
  CHECK(parse_label_words(labels).value().size() == 4);
  CHECK_FALSE(classification_preset("imdb", &tmpl, &labels));
}

TEST_CASE("packed LM batches score every token once and fill their windows", "[client][data]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 18);
  auto loaded = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  Dataset ds;
  ds.path = "mem";
  for (const auto& s : toy_sentences()) ds.examples.push_back({s, "", "", 1});
  TaskOptions padded;
  auto plain = make_task(ds, *loaded->tokenizer, *loaded->model, padded);
  REQUIRE(plain.is_ok());
  std::vector<size_t> all_plain(plain.value()->size());
  for (size_t i = 0; i < all_plain.size(); ++i) all_plain[i] = i;
  auto lp = plain.value()->loss(nullptr, *loaded->model, all_plain, Perturbation{});
  REQUIRE(lp.is_ok());
  TaskOptions packed;
  packed.pack = true;
  packed.max_length = 128;  // the whole stream fits one window: every example's targets, nothing across them
  auto one = make_task(ds, *loaded->tokenizer, *loaded->model, packed);
  REQUIRE(one.is_ok());
  CHECK(one.value()->size() == 1);
  auto l1 = one.value()->loss(nullptr, *loaded->model, {0}, Perturbation{});
  REQUIRE(l1.is_ok());
  CHECK(l1->count == lp->count);
  packed.max_length = 16;
  auto many = make_task(ds, *loaded->tokenizer, *loaded->model, packed);
  REQUIRE(many.is_ok());
  CHECK(many.value()->size() > 1);
}

TEST_CASE("balanced batches take the labels in turn and stay a pure function of (data seed, step)", "[client][trainer][data]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 17);
  auto loaded = load_model(dir, LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  REQUIRE(loaded->model->weights().make_trainable(NamePatterns("*")).is_ok());
  std::string tsv = "sentence\tlabel\n";
  const auto sentences = toy_sentences();
  for (size_t i = 0; i < sentences.size(); ++i) tsv += sentences[i] + "\t" + (i % 2 ? "1" : "0") + "\n";
  DatasetOptions need_label;
  need_label.need_label = true;
  auto ds = parse_dataset(tsv, "tsv", "b.tsv", need_label);
  REQUIRE(ds.is_ok());
  TaskOptions to;
  to.kind = "classify";
  to.label_words = parse_label_words("0:cat,1:the").value();
  auto task = make_task(ds.value(), *loaded->tokenizer, *loaded->model, to);
  REQUIRE(task.is_ok());
  const std::vector<int> labels = task.value()->labels();
  const auto train = k_shot_indices(*task.value(), 0, 0);
  REQUIRE(train.size() == 12);

  auto shares = [&](const std::vector<size_t>& batch) {
    int ones = 0;
    for (size_t i : batch) ones += labels[i];
    return ones;
  };
  TrainOptions o;
  o.batch_size = 4;
  o.data_seed = 5;
  ZoTrainer plain(*loaded->model, *task.value(), train, o, nullptr);
  o.balanced = true;
  ZoTrainer balanced(*loaded->model, *task.value(), train, o, nullptr);
  int unequal_plain = 0;
  std::vector<std::vector<size_t>> seen;
  for (int t = 0; t < 30; ++t) {  // 10 epochs of 3 batches
    const auto& pb = plain.batch_for_step(t);
    unequal_plain += shares(pb) != 2;
    const auto& bb = balanced.batch_for_step(t);
    CHECK(shares(bb) == 2);
    seen.push_back(bb);
    if (t % 3 == 2) {  // each epoch still visits every training example once
      std::vector<size_t> epoch;
      for (int k = t - 2; k <= t; ++k) epoch.insert(epoch.end(), seen[k].begin(), seen[k].end());
      std::sort(epoch.begin(), epoch.end());
      CHECK(epoch == train);
    }
  }
  CHECK(unequal_plain > 0);           // the default order does mix unequal shares
  CHECK(seen[0] != seen[3]);          // epochs are reshuffled
  ZoTrainer fresh(*loaded->model, *task.value(), train, o, nullptr);
  CHECK(fresh.batch_for_step(17) == seen[17]);  // resume needs no state
  CHECK(fresh.batch_for_step(4) == seen[4]);
}

TEST_CASE("a finished constant-lr run extends to exactly the longer run: others are refused", "[client][trainer][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 18);
  test::write_lines(dir + "/train.txt", toy_sentences());
  REQUIRE(run_finetune(toy_request(dir, dir + "/train.txt", dir + "/long", 16)).is_ok());

  auto req = toy_request(dir, dir + "/train.txt", dir + "/short", 9);
  REQUIRE(run_finetune(req).is_ok());
  req.resume = true;
  req.extend_to_steps = 5;
  auto shorter = run_finetune(req);
  CHECK(shorter.status().message().find("extended, not shortened") != std::string::npos);
  req.extend_to_steps = 16;
  auto extended = run_finetune(req);
  REQUIRE(extended.is_ok());
  CHECK(extended->steps_done == 16);
  CHECK(tensor_bytes(dir + "/short/snapshot.safetensors") == tensor_bytes(dir + "/long/snapshot.safetensors"));
  CHECK(read_file(dir + "/short/log.jsonl").value() == read_file(dir + "/long/log.jsonl").value());
  CHECK(RunDir::open(dir + "/short").value().spec().train.steps == 16);

  auto cosine = toy_request(dir, dir + "/train.txt", dir + "/cosine", 4);
  cosine.spec.train.schedule = LrSchedule::kCosine;
  REQUIRE(run_finetune(cosine).is_ok());
  cosine.resume = true;
  cosine.extend_to_steps = 8;
  auto refused = run_finetune(cosine);
  CHECK(refused.status().message().find("only a constant-lr run can be extended") != std::string::npos);
  CHECK(RunDir::open(dir + "/cosine").value().spec().train.steps == 4);
}

TEST_CASE("step scales: the run trains theta = s * phi, replays from its log with them and resumes to the same bytes",
          "[client][trainer][e2e]") {
  const std::string dir = test::temp_dir("");
  test::write_toy_model_dir(dir, 23);
  test::write_lines(dir + "/train.txt", toy_sentences());
  const std::string scales = "model.embed_tokens.weight=0.5,norms=4";
  auto scaled = toy_request(dir, dir + "/train.txt", dir + "/scaled", 10);
  scaled.spec.step_scales = scales;
  REQUIRE(run_finetune(scaled).is_ok());
  auto run = RunDir::open(dir + "/scaled");
  REQUIRE(run.is_ok());
  CHECK(run->spec().step_scales == scales);  // recorded in spec.json

  // Replayed onto the base model with the run's scales: the run's bytes. Without them: different bytes.
  auto replayed = [&](bool with_scales) {
    auto base = load_model(dir);
    REQUIRE(base.is_ok());
    REQUIRE(base->model->weights().make_trainable(NamePatterns("*")).is_ok());
    if (with_scales) REQUIRE(apply_step_scales(*base->model, scales).is_ok());
    auto tensors = base->model->weights().trainable_tensors();
    replay_log(nullptr, Distribution::kRademacher, run->update_log(), tensors);
    std::map<std::string, std::string> out;
    for (const auto& t : tensors) out[t.name] = std::string(reinterpret_cast<const char*>(t.data), t.numel * 4);
    return out;
  };
  const auto trained = tensor_bytes(dir + "/scaled/snapshot.safetensors");
  const auto with = replayed(true), without = replayed(false);
  const std::string emb = "model.embed_tokens.weight", norm = "model.layers.0.input_layernorm.weight",
                    up = "model.layers.0.mlp.up_proj.weight";
  for (const auto& [name, bytes] : with) {
    INFO(name);
    CHECK(trained.at(name) == bytes);
  }
  CHECK(without.at(emb) != trained.at(emb));
  CHECK(without.at(norm) != trained.at(norm));
  CHECK(without.at(up) == trained.at(up));  // scale 1: untouched by the option

  // Stopped half-way and resumed: the same bytes (the scales come back from spec.json).
  auto cut = toy_request(dir, dir + "/train.txt", dir + "/cut", 10);
  cut.spec.step_scales = scales;
  REQUIRE(run_finetune(cut, [](const StepProgress& p) { return p.step < 4; }).is_ok());
  cut.resume = true;
  cut.spec.step_scales.clear();  // a resumed run reads its own spec
  REQUIRE(run_finetune(cut).is_ok());
  CHECK(tensor_bytes(dir + "/cut/snapshot.safetensors") == trained);

  // One entry on a tensor of scale s moves it by (coeff * s) * z: the update of an entry with that coeff.
  std::vector<float> a(37, 0.25f), b = a;
  const UpdateEntry e{0x1234, 0.3f};
  const UpdateEntry scaled_entry{0x1234, 0.3f * 4.0f};
  apply_update_entries(nullptr, Distribution::kRademacher, &e, 1, 99, a.data(), a.size(), 4.0f);
  apply_update_entry(nullptr, Distribution::kRademacher, scaled_entry, 99, b.data(), b.size());
  CHECK(a == b);

  // Bad scales are refused before anything trains.
  auto base = load_model(dir);
  REQUIRE(base.is_ok());
  REQUIRE(base->model->weights().make_trainable(NamePatterns("*norm*")).is_ok());
  for (const char* bad : {"norms", "norms=0", "norms=-1", "norms=abc", "norms=inf", "norms=2000", "=2",
                          "model.embed_tokens.weight=2" /* not trainable here */, "nothing*=2"}) {
    INFO(bad);
    CHECK_FALSE(apply_step_scales(*base->model, bad).is_ok());
  }
  CHECK(apply_step_scales(*base->model, "").is_ok());
  auto refused = toy_request(dir, dir + "/train.txt", dir + "/refused", 3);
  refused.spec.step_scales = "mlp=0";
  CHECK_FALSE(run_finetune(refused).is_ok());
}
