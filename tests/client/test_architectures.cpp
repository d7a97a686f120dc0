// OPT, GPT-2, RoBERTa, Qwen3 and Gemma 3 against logits PyTorch computes from each architecture's equations
// (tests/fixtures/make_arch_fixtures.py), with padding; plus cache and perturbation invariants.
#include <catch2/catch.hpp>

#include <set>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model_fixtures.h"
#include "test_paths.h"
#include "pocketllm/client/generate.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/common/tensor_ops.h"
#include "transformer_base.h"

using namespace pocketllm;

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

// choice_loss's label logits (the last layer run for the read positions alone) equal the full
// forward's logits at those positions.
void check_read_positions(LanguageModel& m, const TokenBatch& batch, const std::vector<ChoiceTarget>& targets) {
  const auto full = test::all_row_logits(m, batch);
  const size_t V = static_cast<size_t>(m.config().vocab_size);
  const std::vector<int32_t> cands = {7, 31};
  std::vector<float> cand_logits;
  REQUIRE(m.choice_loss(nullptr, batch, targets, cands, Perturbation{}, &cand_logits).is_ok());
  for (size_t i = 0; i < targets.size(); ++i)
    for (size_t j = 0; j < cands.size(); ++j) {
      const size_t row = static_cast<size_t>(targets[i].row) * batch.seq_len + targets[i].position;
      CHECK(cand_logits[i * 2 + j] == Approx(full[row * V + cands[j]]).margin(1e-5));
    }
  // The last layer ran on the read rows alone (every row for the full forward above).
  const auto* tm = dynamic_cast<const TransformerModel*>(&m);
  REQUIRE(tm != nullptr);
  CHECK(tm->last_layer_rows() == targets.size());
}

}  // namespace

TEST_CASE("OPT, GPT-2, RoBERTa, Qwen3 and Gemma 3 logits match the PyTorch reference, padding included", "[client][arch]") {
  for (const std::string name : {"opt", "opt_postln_proj", "gpt2", "roberta", "qwen3", "gemma3"}) {
    INFO("architecture fixture " << name);
    const std::string dir = test::fixtures_dir() + "/arch/" + name;
    auto loaded = load_model(dir);
    REQUIRE(loaded.is_ok());
    const auto expected = read_json(dir + "/expected.json");
    const auto seqs = expected["sequences"].get<std::vector<std::vector<int32_t>>>();
    const TokenBatch batch = TokenBatch::from_sequences(seqs, 1);
    auto logits = test::all_row_logits(*loaded->model, batch);
    const size_t V = static_cast<size_t>(loaded->model->config().vocab_size);
    double worst = 0;
    for (size_t b = 0; b < seqs.size(); ++b)
      for (size_t t = 0; t < seqs[b].size(); ++t)
        for (size_t j = 0; j < V; ++j) {
          const double want = expected["logits"][b][t][j];
          const double got = logits[(b * batch.seq_len + t) * V + j];
          worst = std::max(worst, std::fabs(got - want) / std::max(1.0, std::fabs(want)));
        }
    INFO("worst relative error " << worst);
    CHECK(worst < 1e-4);
  }
}

TEST_CASE("GPT-2, OPT, Qwen3 and Gemma 3 decode with a KV cache exactly like the full forward", "[client][arch]") {
  for (const std::string name : {"opt", "opt_postln_proj", "gpt2", "qwen3", "gemma3"}) {
    INFO(name);
    auto loaded = load_model(test::fixtures_dir() + "/arch/" + name);
    REQUIRE(loaded.is_ok());
    LanguageModel& m = *loaded->model;
    const std::vector<int32_t> seq = {2, 11, 23, 5, 9, 17, 3};
    auto full = test::all_row_logits(m, TokenBatch::from_sequences({seq}));
    KVCache cache = m.make_cache(1, 16);
    std::vector<float> hidden, step;
    const size_t V = static_cast<size_t>(m.config().vocab_size);
    REQUIRE(m.forward_hidden(nullptr, TokenBatch::from_sequences({{seq.begin(), seq.begin() + 2}}), {}, &cache, &hidden).is_ok());
    for (size_t t = 2; t < seq.size(); ++t) {
      REQUIRE(m.forward_hidden(nullptr, TokenBatch::from_sequences({{seq[t]}}), {}, &cache, &hidden).is_ok());
      m.logits(nullptr, hidden.data(), {0}, {}, &step);
      for (size_t j = 0; j < V; ++j) REQUIRE(step[j] == Approx(full[t * V + j]).margin(1e-5));
    }
  }
}

TEST_CASE("perturbed forwards equal forwards on perturbed weights for every architecture", "[client][arch][zo]") {
  for (const std::string name : {"opt_postln_proj", "gpt2", "roberta", "qwen3", "gemma3"}) {
    INFO(name);
    const std::string dir = test::fixtures_dir() + "/arch/" + name;
    auto a = load_model(dir), b = load_model(dir);
    REQUIRE(a.is_ok());
    REQUIRE(b.is_ok());
    REQUIRE(a->model->weights().make_trainable(NamePatterns("*")).is_ok());
    REQUIRE(b->model->weights().make_trainable(NamePatterns("*")).is_ok());
    const Perturbation p{true, Distribution::kRademacher, 0x77, 1e-3f};
    for (auto& t : b->model->weights().trainable_tensors())
      perturb_tensor(nullptr, p.dist, p.seed, tensor_tag(t.name), p.scale, t.data, t.numel);
    const TokenBatch batch = TokenBatch::from_sequences({{2, 11, 23, 5}, {2, 40}}, 1);
    auto x = test::all_row_logits(*a->model, batch, p), y = test::all_row_logits(*b->model, batch);
    CHECK(std::memcmp(x.data(), y.data(), x.size() * 4) == 0);
  }
}

TEST_CASE("the tiny random Hugging Face GPT-2 in shared/fixtures loads and runs", "[client][arch]") {
  const std::string dir = test::shared_dir() + "/fixtures/fake_gpt2_random";
  if (!test::path_exists(dir + "/model.safetensors")) {
    WARN("skipped: " << dir << " not found");
    return;
  }
  auto loaded = load_model(dir);
  REQUIRE(loaded.is_ok());
  CHECK(loaded->model->config().arch == Architecture::kGpt2);
  auto logits = test::all_row_logits(*loaded->model, TokenBatch::from_sequences({{15496, 995}}));
  CHECK(logits.size() == 2u * 50257u);
  size_t finite = 0;
  for (float v : logits) finite += std::isfinite(v);
  CHECK(finite == logits.size());
}

TEST_CASE("every architecture exports to a Hugging Face directory that loads back identically", "[client][arch][export]") {
  for (const std::string name : {"opt", "opt_postln_proj", "gpt2", "roberta", "qwen3", "gemma3"}) {
    INFO(name);
    auto loaded = load_model(test::fixtures_dir() + "/arch/" + name);
    REQUIRE(loaded.is_ok());
    const std::string out = test::temp_dir("export");
    REQUIRE(export_hf_directory(loaded.value(), out).is_ok());
    auto back = load_model(out);
    REQUIRE(back.is_ok());
    CHECK(back->model->weights().compute_model_id() == loaded->model->weights().compute_model_id());
    const TokenBatch batch = TokenBatch::from_sequences({{2, 11, 23, 5}}, 1);
    auto a = test::all_row_logits(*loaded->model, batch), b = test::all_row_logits(*back->model, batch);
    CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
  }
}

#include "arch/architecture.h"

TEST_CASE("the architecture registry: every architecture registered once, every model type found", "[client][arch]") {
  std::set<std::string> types, names;
  for (const ArchitectureSpec* a : architectures()) {
    CHECK(names.insert(a->name).second);
    CHECK(&architecture_spec(a->id) == a);
    CHECK(a->parse_config != nullptr);
    CHECK(a->create != nullptr);
    for (const std::string& t : a->model_types) {
      CHECK(types.insert(t).second);
      CHECK(architecture_for_model_type(t) == a);
    }
  }
  for (Architecture id : {Architecture::kLlama, Architecture::kOpt, Architecture::kGpt2, Architecture::kRoberta, Architecture::kGemma3})
    CHECK(architecture_spec(id).id == id);
  CHECK(architecture_for_model_type("mamba") == nullptr);
  CHECK(std::string(architecture_name(Architecture::kRoberta)) == "roberta");
}
TEST_CASE("OPT, GPT-2 and RoBERTa run the last layer for the read tokens alone, with the full pass's label logits",
          "[client][arch]") {
  // Sequences of three lengths (the unpadded layout), read positions at the end, inside and at the first
  // token; OPT with layer norms before and after (the second also projects in and out).
  for (const std::string name : {"opt", "opt_postln_proj", "gpt2", "roberta"}) {
    INFO("architecture fixture " << name);
    auto loaded = load_model(test::fixtures_dir() + "/arch/" + name);
    REQUIRE(loaded.is_ok());
    const TokenBatch batch = TokenBatch::from_sequences({{2, 11, 23, 5, 9, 17}, {2, 40, 41}, {3, 7, 8, 30}}, 1);
    check_read_positions(*loaded->model, batch, {{0, 5, 1}, {1, 1, 0}, {2, 0, 1}});
  }
}

TEST_CASE("Qwen3: the config names the q/k norms, the read-position path uses them, and what it lacks is refused",
          "[client][arch][qwen3]") {
  const std::string fixture = test::fixtures_dir() + "/arch/qwen3";
  auto loaded = load_model(fixture);
  REQUIRE(loaded.is_ok());
  const ModelConfig& c = loaded->model->config();
  CHECK(c.qk_norm);
  CHECK(c.head_dim == 6);  // not hidden_size / heads (16 / 4)
  CHECK(c.hf_architecture == "Qwen3ForCausalLM");

  // Classification reads one position per sentence and runs the last layer for it alone: the label
  // logits equal the full forward's at that position.
  check_read_positions(*loaded->model, TokenBatch::from_sequences({{2, 11, 23, 5, 9}, {2, 40, 41}}, 1), {{0, 4, 1}, {1, 2, 0}});

  // A checkpoint that turns on sliding-window attention, and one without its q/k norm tensors.
  const std::string dir = test::temp_dir("qwen3");
  nlohmann::json cfg = read_json(fixture + "/config.json");
  cfg["use_sliding_window"] = true;
  std::ofstream(dir + "/config.json") << cfg.dump();
  std::ifstream src(fixture + "/model.safetensors", std::ios::binary);
  std::ofstream(dir + "/model.safetensors", std::ios::binary) << src.rdbuf();
  auto windowed = load_model(dir);
  REQUIRE_FALSE(windowed.is_ok());
  CHECK(windowed.status().code() == StatusCode::kUnsupported);
  CHECK_THAT(windowed.status().message(), Catch::Contains("use_sliding_window"));

  const std::string llama_dir = test::temp_dir("qwen3-no-norms");
  test::write_toy_model_dir(llama_dir, 3);
  nlohmann::json lcfg = read_json(llama_dir + "/config.json");
  lcfg["model_type"] = "qwen3";
  std::ofstream(llama_dir + "/config.json") << lcfg.dump();
  auto missing = load_model(llama_dir);
  REQUIRE_FALSE(missing.is_ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("self_attn.q_norm.weight"));
}

namespace {

// The gemma3 fixture with its config.json edited by `edit`, in a temporary directory.
Result<LoadedModel> load_edited_gemma3(const std::function<void(nlohmann::json&)>& edit) {
  const std::string fixture = test::fixtures_dir() + "/arch/gemma3";
  const std::string dir = test::temp_dir("gemma3-edit");
  nlohmann::json cfg = read_json(fixture + "/config.json");
  edit(cfg);
  std::ofstream(dir + "/config.json") << cfg.dump();
  std::ifstream src(fixture + "/model.safetensors", std::ios::binary);
  std::ofstream(dir + "/model.safetensors", std::ios::binary) << src.rdbuf();
  return load_model(dir);
}

}  // namespace

TEST_CASE("Gemma 3: the config's layer types, scales and norms, the read position through a sliding last layer, refusals",
          "[client][arch][gemma3]") {
  auto loaded = load_model(test::fixtures_dir() + "/arch/gemma3");
  REQUIRE(loaded.is_ok());
  const ModelConfig& c = loaded->model->config();
  CHECK(c.arch == Architecture::kGemma3);
  CHECK(c.sliding_layers == std::vector<bool>{true, false, true});
  CHECK(c.sliding_window == 3);
  CHECK(c.norm_weight_offset == 1.0f);
  CHECK(c.embed_scale == 4.0f);  // sqrt(16)
  CHECK(c.attention_scale == Approx(1.0 / std::sqrt(12.0)));
  CHECK(c.rope_local_theta == 100.0f);
  CHECK(c.rope_scaling.type == "linear");
  CHECK(c.tie_word_embeddings);

  // Classification reads one position per sentence; the last layer (a sliding one) runs for it alone.
  const TokenBatch batch = TokenBatch::from_sequences({{2, 11, 23, 5, 9, 17, 3}, {2, 40, 41}}, 1);
  check_read_positions(*loaded->model, batch, {{0, 6, 1}, {1, 2, 0}});
  const auto full = test::all_row_logits(*loaded->model, batch);

  // The fixture's sequences are longer than the window, so the window changes the logits (a reader that
  // ignored it would fail the PyTorch comparison above).
  auto wide = load_edited_gemma3([](nlohmann::json& j) { j["sliding_window"] = 64; });
  REQUIRE(wide.is_ok());
  const auto unwindowed = test::all_row_logits(*wide->model, batch);
  double moved = 0;
  for (size_t i = 0; i < full.size(); ++i) moved = std::max(moved, double(std::fabs(full[i] - unwindowed[i])));
  CHECK(moved > 1e-2);

  // Without layer_types, every sixth layer is full (Gemma 3's pattern).
  auto pattern = load_edited_gemma3([](nlohmann::json& j) { j.erase("layer_types"); });
  REQUIRE(pattern.is_ok());
  CHECK(pattern->model->config().sliding_layers == std::vector<bool>{true, true, true});

  // What the engine does not run is refused by name.
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> bad = {
      {[](nlohmann::json& j) { j["final_logit_softcapping"] = 30.0; }, "final_logit_softcapping"},
      {[](nlohmann::json& j) { j["attn_logit_softcapping"] = 50.0; }, "attn_logit_softcapping"},
      {[](nlohmann::json& j) { j["hidden_activation"] = "gelu"; }, "hidden_activation"},
      {[](nlohmann::json& j) { j["layer_types"] = {"sliding_attention"}; }, "layer_types"},
      {[](nlohmann::json& j) { j["layer_types"][1] = "chunked_attention"; }, "layer_types[1]"},
      {[](nlohmann::json& j) { j["sliding_window"] = 0; }, "sliding_window"},
      {[](nlohmann::json& j) { j["query_pre_attn_scalar"] = -1; }, "query_pre_attn_scalar"},
      {[](nlohmann::json& j) { j["rope_scaling"] = {{"rope_type", "linear"}}; }, "rope_scaling factor"},
      {[](nlohmann::json& j) { j["use_bidirectional_attention"] = true; }, "use_bidirectional_attention"}};
  for (const auto& [edit, name] : bad) {
    INFO(name);
    auto refused = load_edited_gemma3(edit);
    REQUIRE_FALSE(refused.is_ok());
    CHECK_THAT(refused.status().message(), Catch::Contains(name));
  }
}

TEST_CASE("Gemma 3's sliding layers keep only their window in the KV cache and decode like the full forward",
          "[client][arch][gemma3]") {
  auto loaded = load_model(test::fixtures_dir() + "/arch/gemma3");  // window 3; layers sliding, full, sliding
  REQUIRE(loaded.is_ok());
  LanguageModel& m = *loaded->model;
  const size_t V = static_cast<size_t>(m.config().vocab_size), W = 3;
  // Two sequences of 40 tokens, fed in chunks of 1 to 9 positions: the 9-token chunk needs more than the
  // two windows a sliding layer starts with, the single tokens make it drop old keys again and again.
  std::vector<std::vector<int32_t>> seqs(2);
  for (int32_t t = 0; t < 40; ++t) {
    seqs[0].push_back(2 + (t * 7) % 45);
    seqs[1].push_back(3 + (t * 11 + 5) % 44);
  }
  const auto full = test::all_row_logits(m, TokenBatch::from_sequences(seqs));
  KVCache cache = m.make_cache(2, 40);
  CHECK(cache.slots == std::vector<size_t>{2 * W, 40, 2 * W});
  std::vector<size_t> chunks = {2, 1, 9, 1, 1, 4, 1, 1, 1, 3};
  chunks.resize(chunks.size() + 16, 1);  // to 40
  std::vector<float> hidden, logits;
  size_t at = 0, largest_sliding = 0;
  for (size_t n : chunks) {
    std::vector<std::vector<int32_t>> part = {{seqs[0].begin() + at, seqs[0].begin() + at + n},
                                              {seqs[1].begin() + at, seqs[1].begin() + at + n}};
    const Status st = m.forward_hidden(nullptr, TokenBatch::from_sequences(part), {}, &cache, &hidden);
    INFO("at " << at << ", chunk " << n << ": " << st.to_string());
    REQUIRE(st.is_ok());
    std::vector<int> rows(2 * n);
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int>(i);
    m.logits(nullptr, hidden.data(), rows, {}, &logits);
    for (size_t b = 0; b < 2; ++b)
      for (size_t t = 0; t < n; ++t)
        for (size_t j = 0; j < V; ++j) {
          INFO("sequence " << b << ", position " << at + t << ", token " << j);
          REQUIRE(logits[(b * n + t) * V + j] == Approx(full[(b * 40 + at + t) * V + j]).margin(1e-5));
        }
    at += n;
    largest_sliding = std::max({largest_sliding, cache.slots[0], cache.slots[2]});
  }
  REQUIRE(at == 40);
  CHECK(largest_sliding == W - 1 + 9);  // grown once, for the 9-token chunk, and never beyond
  CHECK(cache.first[0] > 0);            // old keys were dropped …
  CHECK(cache.first[0] + cache.slots[0] >= 40);
  CHECK(cache.first[1] == 0);  // … but never from the full layer
  CHECK(cache.slots[1] == 40);
  const size_t kv_row = 2 * sizeof(float) * static_cast<size_t>(m.config().num_kv_heads * m.config().head_dim);
  CHECK(cache.bytes() == 2 * kv_row * (40 + 2 * largest_sliding));
  // Past the end of the cache: refused, nothing written.
  const int before = cache.length;
  CHECK_FALSE(m.forward_hidden(nullptr, TokenBatch::from_sequences({{2}, {3}}), {}, &cache, &hidden).is_ok());
  CHECK(cache.length == before);
}

TEST_CASE("generate feeds a long prompt in pieces with the continuation of one pass", "[client][arch][gemma3][generate]") {
  auto loaded = load_model(test::fixtures_dir() + "/arch/gemma3");  // window 3: pieces pass through moved caches
  REQUIRE(loaded.is_ok());
  std::vector<int32_t> prompt = {2};
  for (int32_t t = 0; t < 29; ++t) prompt.push_back(4 + (t * 13) % 40);
  GenerateOptions whole;
  whole.max_new_tokens = 20;
  whole.stop_at_eos = false;
  auto one = generate(nullptr, *loaded->model, prompt, whole);
  REQUIRE(one.is_ok());
  REQUIRE(one->tokens.size() == prompt.size() + 20);
  for (int piece : {1, 4, 7, 29}) {
    INFO("pieces of " << piece);
    GenerateOptions o = whole;
    o.prefill_piece = piece;
    auto pieces = generate(nullptr, *loaded->model, prompt, o);
    REQUIRE(pieces.is_ok());
    CHECK(pieces->tokens == one->tokens);
    REQUIRE(pieces->first_logits.size() == one->first_logits.size());
    for (size_t j = 0; j < one->first_logits.size(); ++j) REQUIRE(pieces->first_logits[j] == Approx(one->first_logits[j]).margin(1e-5));
  }
  GenerateOptions none = whole;
  none.prefill_piece = 0;
  auto refused = generate(nullptr, *loaded->model, prompt, none);
  REQUIRE_FALSE(refused.is_ok());
  CHECK_THAT(refused.status().message(), Catch::Contains("prefill_piece"));
}

TEST_CASE("Gemma 3 multimodal checkpoints run as their language model, in both tensor layouts", "[client][arch][gemma3]") {
  const std::string fixture = test::fixtures_dir() + "/arch/gemma3";
  auto text = load_model(fixture);
  REQUIRE(text.is_ok());
  const TokenBatch batch = TokenBatch::from_sequences({{2, 11, 23, 5, 9, 17, 3}, {2, 40, 41}}, 1);
  const auto want = test::all_row_logits(*text->model, batch);
  const auto tensors = test::tensor_bytes(fixture + "/model.safetensors");
  for (const std::string prefix : {"language_model.", "model.language_model."}) {
    INFO(prefix);
    const std::string dir = test::temp_dir("gemma3-mm");
    // Gemma3ForConditionalGeneration's config: the text model's fields under text_config (here with the
    // sizes the defaults would get wrong), a vision config, and the vision tower's tensors beside.
    nlohmann::json cfg = {{"architectures", {"Gemma3ForConditionalGeneration"}}, {"model_type", "gemma3"},
                          {"text_config", read_json(fixture + "/config.json")},
                          {"vision_config", {{"model_type", "siglip_vision_model"}}}, {"eos_token_id", {1, 106}}};
    cfg["text_config"].erase("eos_token_id");
    std::ofstream(dir + "/config.json") << cfg.dump();
    std::vector<std::vector<float>> values;
    std::vector<TensorToWrite> w;
    for (const auto& [name, bytes] : tensors) {
      values.emplace_back(bytes.size() / 4);
      std::memcpy(values.back().data(), bytes.data(), bytes.size());
    }
    size_t i = 0;
    auto meta = SafetensorsFile::open(fixture + "/model.safetensors");
    REQUIRE(meta.is_ok());
    for (const auto& [name, bytes] : tensors) {
      const auto* t = meta->find(name);
      REQUIRE(t != nullptr);
      const std::string renamed = prefix == "language_model." ? prefix + name : prefix + name.substr(std::string("model.").size());
      w.push_back({renamed, DType::kF32, t->shape, values[i++].data()});
    }
    const std::vector<float> vision(16, 0.5f);
    const std::string tower = prefix == "language_model." ? "vision_tower." : "model.vision_tower.";
    w.push_back({tower + "vision_model.embeddings.patch_embedding.weight", DType::kF32, {4, 4}, vision.data()});
    w.push_back({"multi_modal_projector.mm_input_projection_weight", DType::kF32, {4, 4}, vision.data()});
    REQUIRE(write_safetensors(dir + "/model.safetensors", w).is_ok());
    auto mm = load_model(dir);
    INFO(mm.status().to_string());
    REQUIRE(mm.is_ok());
    CHECK(mm->model->config().model_type == "gemma3_text");
    CHECK(mm->model->config().eos_token_id == 1);
    CHECK(mm->model->weights().find("vision_tower.vision_model.embeddings.patch_embedding.weight") == nullptr);
    CHECK(mm->model->weights().compute_model_id() == text->model->weights().compute_model_id());
    const auto got = test::all_row_logits(*mm->model, batch);
    CHECK(std::memcmp(got.data(), want.data(), want.size() * 4) == 0);
  }
  // A gemma3 config without its text_config is refused by name.
  const std::string bad = test::temp_dir("gemma3-mm-bad");
  std::ofstream(bad + "/config.json") << nlohmann::json{{"model_type", "gemma3"}}.dump();
  std::ifstream src(fixture + "/model.safetensors", std::ios::binary);
  std::ofstream(bad + "/model.safetensors", std::ios::binary) << src.rdbuf();
  auto refused = load_model(bad);
  REQUIRE_FALSE(refused.is_ok());
  CHECK_THAT(refused.status().message(), Catch::Contains("text_config"));
}
