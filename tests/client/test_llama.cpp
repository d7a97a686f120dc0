#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <sys/stat.h>

#include "test_paths.h"
#include "model_fixtures.h"
#include "kernels_gemm.h"
#include "pocketllm/client/generate.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/tensor_ops.h"

using namespace pocketllm;
using nlohmann::json;

namespace {

std::string stories_dir() { return test::stories260k_dir(); }

// log-softmax of row r of logits [rows, V] at index j, in double.
double log_prob(const std::vector<float>& logits, size_t V, size_t r, size_t j) {
  double mx = -1e300, s = 0;
  for (size_t i = 0; i < V; ++i) mx = std::max(mx, double(logits[r * V + i]));
  for (size_t i = 0; i < V; ++i) s += std::exp(double(logits[r * V + i]) - mx);
  return double(logits[r * V + j]) - mx - std::log(s);
}

std::vector<float> all_logits(LanguageModel& m, const TokenBatch& b, ThreadPool* pool, const Perturbation& p = {}) {
  std::vector<float> hidden, logits;
  REQUIRE(m.forward_hidden(pool, b, p, nullptr, &hidden).is_ok());
  std::vector<int> rows(b.tokens.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int>(i);
  m.logits(pool, hidden.data(), rows, p, &logits);
  return logits;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("stories260K generates the golden greedy continuation", "[client][llama][golden]") {
  if (!test::path_exists(stories_dir() + "/stories260K.bin")) {
    WARN("skipped: " << stories_dir() << " not found (set POCKETLLM_SHARED)");
    return;
  }
  std::ifstream in(test::shared_dir() + "/golden/stories260K_greedy_golden.json");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const json golden = json::parse(ss.str())["Once upon a time"];

  auto loaded = load_model(stories_dir(), LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  auto prompt = loaded->tokenizer->encode("Once upon a time", true, false);
  REQUIRE(prompt.is_ok());
  CHECK(prompt.value() == golden["prompt_tokens"].get<std::vector<int32_t>>());

  const auto want = golden["token_ids_incl_bos"].get<std::vector<int32_t>>();
  ThreadPool pool(2);
  GenerateOptions o;
  o.max_new_tokens = static_cast<int>(want.size() - prompt->size());
  auto result = generate(&pool, *loaded->model, prompt.value(), o);
  REQUIRE(result.is_ok());
  CHECK(result->tokens == want);
  CHECK(loaded->tokenizer->decode(result->tokens) == golden["text"].get<std::string>());

  // Top-5 logits after BOS.
  auto logits = all_logits(*loaded->model, TokenBatch::from_sequences({{1}}), &pool);
  for (const auto& pair : golden["logits_pos0_top5"]) {
    const int id = pair[0];
    const double value = pair[1];
    INFO("token " << id);
    CHECK(std::fabs(logits[id] - value) < 1e-4);
  }
}

TEST_CASE("generation stops where the context is full, and a prompt that fills it is refused", "[client][llama][generate]") {
  if (!test::path_exists(stories_dir() + "/stories260K.bin")) {
    WARN("skipped: " << stories_dir() << " not found (set POCKETLLM_SHARED)");
    return;
  }
  auto loaded = load_model(stories_dir(), LoadOptions::with_tokenizer());
  REQUIRE(loaded.is_ok());
  const int context = loaded->model->config().max_position_embeddings;
  REQUIRE(context == 512);
  auto story = loaded->tokenizer->encode("Once upon a time there was a little dog. The dog liked to play in the park.", true, false);
  REQUIRE(story.is_ok());
  std::vector<int32_t> prompt = story.value();
  while (prompt.size() < 500) prompt.push_back(prompt[1 + prompt.size() % (story->size() - 1)]);
  ThreadPool pool(2);
  GenerateOptions o;
  o.stop_at_eos = false;
  o.max_new_tokens = 12;  // exactly the room left
  auto fits = generate(&pool, *loaded->model, prompt, o);
  REQUIRE(fits.is_ok());
  CHECK(fits->tokens.size() == 512);
  CHECK_FALSE(fits->context_full);
  o.max_new_tokens = 64;  // more than the room: the same 12 tokens, then a stop
  auto capped = generate(&pool, *loaded->model, prompt, o);
  REQUIRE(capped.is_ok());
  CHECK(capped->tokens == fits->tokens);
  CHECK(capped->context_full);
  prompt.resize(512, prompt[1]);
  auto full = generate(&pool, *loaded->model, prompt, o);
  REQUIRE_FALSE(full.is_ok());
  CHECK(full.status().code() == StatusCode::kOutOfRange);
  CHECK(full.status().message().find("the prompt is 512 tokens") != std::string::npos);
  prompt.resize(511);
  o.max_new_tokens = 1;
  auto last = generate(&pool, *loaded->model, prompt, o);
  REQUIRE(last.is_ok());
  CHECK(last->tokens.size() == 512);
}

TEST_CASE("the same weights as a Hugging Face directory give the llama2.c logits", "[client][llama][loader]") {
  const std::string ckpt = stories_dir() + "/stories260K.bin";
  if (!test::path_exists(ckpt)) {
    WARN("skipped: " << ckpt << " not found");
    return;
  }
  // Convert the llama2.c file the way Hugging Face's conversion script does, independently of the
  // loader: read the raw floats, permute q/k rows with view(heads, hd/2, 2, dim).transpose(1, 2).
  auto bytes = read_file(ckpt);
  REQUIRE(bytes.is_ok());
  int32_t h[7];
  std::memcpy(h, bytes->data(), 28);
  const int dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kvh = h[4], vocab = h[5], seq = h[6];
  const int hd = dim / heads, kvd = kvh * hd;
  const float* p = reinterpret_cast<const float*>(bytes->data() + 28);
  auto take = [&](size_t n) { std::vector<float> v(p, p + n); p += n; return v; };
  auto emb = take(size_t(vocab) * dim), rms_att = take(size_t(layers) * dim), wq = take(size_t(layers) * dim * dim),
       wk = take(size_t(layers) * kvd * dim), wv = take(size_t(layers) * kvd * dim), wo = take(size_t(layers) * dim * dim),
       rms_ffn = take(size_t(layers) * dim), w1 = take(size_t(layers) * hidden * dim),
       w2 = take(size_t(layers) * dim * hidden), w3 = take(size_t(layers) * hidden * dim), norm = take(dim);
  auto hf_permute = [](const float* w, int n_heads, int rows, int cols) {
    std::vector<float> out(size_t(rows) * cols);
    const int half = rows / n_heads / 2;
    for (int a = 0; a < n_heads; ++a)
      for (int b = 0; b < half; ++b)
        for (int c = 0; c < 2; ++c)  // source index (a, b, c) -> destination (a, c, b)
          std::memcpy(&out[(size_t(a) * 2 * half + size_t(c) * half + b) * cols],
                      &w[(size_t(a) * 2 * half + size_t(b) * 2 + c) * cols], sizeof(float) * cols);
    return out;
  };
  std::vector<std::vector<float>> keep;
  std::vector<TensorToWrite> tensors;
  auto put = [&](const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
    keep.push_back(std::move(v));
    tensors.push_back({name, DType::kF32, std::move(shape), keep.back().data()});
  };
  keep.reserve(16 * layers + 4);
  put("model.embed_tokens.weight", {vocab, dim}, emb);
  put("model.norm.weight", {dim}, norm);
  for (int l = 0; l < layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    auto slice = [](const std::vector<float>& all, size_t i, size_t n) {
      return std::vector<float>(all.begin() + i * n, all.begin() + (i + 1) * n);
    };
    put(pre + "input_layernorm.weight", {dim}, slice(rms_att, l, dim));
    put(pre + "self_attn.q_proj.weight", {dim, dim}, hf_permute(wq.data() + size_t(l) * dim * dim, heads, dim, dim));
    put(pre + "self_attn.k_proj.weight", {kvd, dim}, hf_permute(wk.data() + size_t(l) * kvd * dim, kvh, kvd, dim));
    put(pre + "self_attn.v_proj.weight", {kvd, dim}, slice(wv, l, size_t(kvd) * dim));
    put(pre + "self_attn.o_proj.weight", {dim, dim}, slice(wo, l, size_t(dim) * dim));
    put(pre + "post_attention_layernorm.weight", {dim}, slice(rms_ffn, l, dim));
    put(pre + "mlp.gate_proj.weight", {hidden, dim}, slice(w1, l, size_t(hidden) * dim));
    put(pre + "mlp.down_proj.weight", {dim, hidden}, slice(w2, l, size_t(dim) * hidden));
    put(pre + "mlp.up_proj.weight", {hidden, dim}, slice(w3, l, size_t(hidden) * dim));
  }
  const std::string dir = test::temp_dir("hf");
  REQUIRE(write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}}).is_ok());
  write_text(dir + "/config.json", json{{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                                        {"vocab_size", vocab}, {"hidden_size", dim}, {"intermediate_size", hidden},
                                        {"num_hidden_layers", layers}, {"num_attention_heads", heads},
                                        {"num_key_value_heads", kvh}, {"max_position_embeddings", seq},
                                        {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0}, {"tie_word_embeddings", true},
                                        {"bos_token_id", 1}, {"eos_token_id", 2}}
                                       .dump());
  auto from_c = load_model(ckpt);
  auto from_hf = load_model(dir);
  REQUIRE(from_c.is_ok());
  REQUIRE(from_hf.is_ok());
  CHECK(from_hf->format == "huggingface");
  // Same canonical tensors, so the same model id.
  CHECK(from_c->model->weights().compute_model_id() == from_hf->model->weights().compute_model_id());
  ThreadPool pool(2);
  const TokenBatch batch = TokenBatch::from_sequences({{1, 403, 407, 261, 378, 432, 383}, {1, 300, 301, 302}});
  auto a = all_logits(*from_c->model, batch, &pool), b = all_logits(*from_hf->model, batch, &pool);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (batch.lengths[i / vocab / batch.seq_len] <= int(i / vocab % batch.seq_len)) continue;  // padding rows
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]) / std::max(1.0, std::fabs(double(a[i]))));
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("the streamed token loss equals cross-entropy computed from full logits", "[client][llama][loss]") {
  // Small: one vocabulary tile, a dozen rows. Large: 300 words (three tiles of the head, the last ragged)
  // and ~250 scored rows, so the float head runs its rows in several blocks per tile.
  for (bool large : {false, true})
  for (bool tied : {false, true}) {
    INFO("large " << large << " tied " << tied);
    const auto c = test::tiny_llama_config(large ? 300 : 67, 24, 2, 4, 2, 37, tied, /*qkv_bias=*/!tied);
    auto model = test::make_llama(c, test::random_llama_tensors(c, 5));
    std::vector<std::vector<int32_t>> seqs = {{1, 5, 9, 14, 20, 33, 40}, {1, 60, 61}, {1, 2, 3, 4, 5}};
    if (large) {
      std::mt19937 rng(11);
      seqs.clear();
      for (int b = 0; b < 6; ++b) {
        std::vector<int32_t> s(30 + 7 * b % 13);
        for (auto& t : s) t = static_cast<int32_t>(rng() % 300);
        seqs.push_back(s);
      }
    }
    const TokenBatch batch = TokenBatch::from_sequences(seqs);
    std::vector<int32_t> targets(batch.tokens.size(), -1);
    for (int b = 0; b < batch.batch; ++b)
      for (int t = 0; t + 1 < batch.lengths[b]; ++t)
        targets[b * batch.seq_len + t] = batch.tokens[b * batch.seq_len + t + 1];
    ThreadPool pool(2);
    auto loss = model->token_loss(&pool, batch, targets, Perturbation{});
    REQUIRE(loss.is_ok());
    auto logits = all_logits(*model, batch, &pool);
    double want = 0;
    size_t count = 0;
    for (size_t r = 0; r < targets.size(); ++r)
      if (targets[r] >= 0) {
        want -= log_prob(logits, c.vocab_size, r, targets[r]);
        ++count;
      }
    CHECK(loss->count == count);
    CHECK(loss->sum == Approx(want).epsilon(1e-5));

    // Label-word loss over two candidates at chosen positions.
    const std::vector<int32_t> cands = {11, 42};
    std::vector<ChoiceTarget> ct = {{0, 6, 1}, {1, 2, 0}, {2, 4, 1}};
    std::vector<float> cand_logits;
    auto closs = model->choice_loss(&pool, batch, ct, cands, Perturbation{}, &cand_logits);
    REQUIRE(closs.is_ok());
    double cwant = 0;
    for (size_t i = 0; i < ct.size(); ++i) {
      const size_t r = size_t(ct[i].row) * batch.seq_len + ct[i].position;
      const double l0 = logits[r * c.vocab_size + cands[0]], l1 = logits[r * c.vocab_size + cands[1]];
      CHECK(cand_logits[i * 2] == Approx(l0).epsilon(1e-5));
      const double mx = std::max(l0, l1), lse = mx + std::log(std::exp(l0 - mx) + std::exp(l1 - mx));
      cwant += lse - (ct[i].label_index ? l1 : l0);
    }
    CHECK(closs->sum == Approx(cwant).epsilon(1e-5));
  }
}

TEST_CASE("padding does not change a sequence's outputs, and the KV cache equals the full forward", "[client][llama]") {
  const auto c = test::tiny_llama_config();
  auto model = test::make_llama(c, test::random_llama_tensors(c, 9));
  ThreadPool pool(2);
  const std::vector<int32_t> short_seq = {1, 7, 8, 9}, long_seq = {1, 20, 21, 22, 23, 24, 25, 26, 27};
  auto alone = all_logits(*model, TokenBatch::from_sequences({short_seq}), &pool);
  auto padded = all_logits(*model, TokenBatch::from_sequences({long_seq, short_seq}), &pool);
  const size_t V = c.vocab_size, T = long_seq.size();
  for (size_t t = 0; t < short_seq.size(); ++t)
    for (size_t j = 0; j < V; ++j) REQUIRE(padded[(T + t) * V + j] == Approx(alone[t * V + j]).margin(1e-5));

  // Padded rows are not computed: their hidden states are zero. On the packed GEMM path a sequence's
  // hidden states are the same bytes alone or beside others (each sequence runs on its own rows).
  const std::vector<int32_t> mid_seq = {1, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39}, long2 = {1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
  std::vector<float> h_alone, h_batch;
  REQUIRE(model->forward_hidden(&pool, TokenBatch::from_sequences({mid_seq}), {}, nullptr, &h_alone).is_ok());
  REQUIRE(model->forward_hidden(&pool, TokenBatch::from_sequences({long2, mid_seq, short_seq}), {}, nullptr, &h_batch).is_ok());
  const size_t d = c.hidden_size, T2 = long2.size();
  for (size_t t = mid_seq.size(); t < T2; ++t)
    for (size_t e = 0; e < d; ++e) REQUIRE(h_batch[(T2 + t) * d + e] == 0.0f);
  for (size_t t = short_seq.size(); t < T2; ++t)
    for (size_t e = 0; e < d; ++e) REQUIRE(h_batch[(2 * T2 + t) * d + e] == 0.0f);
  if (gemm::chosen_path() != gemm::Path::kEigen)
    CHECK(std::memcmp(h_alone.data(), h_batch.data() + T2 * d, mid_seq.size() * d * sizeof(float)) == 0);
  for (size_t i = 0; i < mid_seq.size() * d; ++i) REQUIRE(h_batch[T2 * d + i] == Approx(h_alone[i]).margin(1e-5));

  // Incremental decoding: prompt, then one token at a time.
  auto full = all_logits(*model, TokenBatch::from_sequences({long_seq}), &pool);
  KVCache cache = model->make_cache(1, 16);
  std::vector<float> hidden, step_logits;
  REQUIRE(model->forward_hidden(&pool, TokenBatch::from_sequences({{long_seq.begin(), long_seq.begin() + 3}}), {}, &cache,
                                &hidden)
              .is_ok());
  for (size_t t = 3; t < long_seq.size(); ++t) {
    REQUIRE(model->forward_hidden(&pool, TokenBatch::from_sequences({{long_seq[t]}}), {}, &cache, &hidden).is_ok());
    model->logits(&pool, hidden.data(), {0}, {}, &step_logits);
    for (size_t j = 0; j < V; ++j) REQUIRE(step_logits[j] == Approx(full[t * V + j]).margin(1e-5));
  }
  CHECK(cache.length == int(long_seq.size()));
  CHECK_FALSE(model->forward_hidden(&pool, TokenBatch::from_sequences({std::vector<int32_t>(10, 3)}), {}, &cache, &hidden)
                  .is_ok());  // overflows the cache
}

TEST_CASE("a forward pass along +eps z equals the forward pass of the perturbed weights, bit for bit", "[client][llama][zo]") {
  const auto c = test::tiny_llama_config(67, 24, 2, 4, 2, 37, /*tied=*/true);
  const auto tensors = test::random_llama_tensors(c, 3);
  auto model = test::make_llama(c, tensors);
  REQUIRE(model->weights().make_trainable(NamePatterns("*")).is_ok());
  const Perturbation p{true, Distribution::kRademacher, 0xfeedULL, 1e-3f};
  const TokenBatch batch = TokenBatch::from_sequences({{1, 5, 6, 7, 8}, {1, 9, 10}});
  auto perturbed = all_logits(*model, batch, nullptr, p);

  auto shifted = test::make_llama(c, tensors);
  REQUIRE(shifted->weights().make_trainable(NamePatterns("*")).is_ok());
  for (auto& t : shifted->weights().trainable_tensors())
    perturb_tensor(nullptr, p.dist, p.seed, tensor_tag(t.name), p.scale, t.data, t.numel);
  auto direct = all_logits(*shifted, batch, nullptr);
  CHECK(std::memcmp(perturbed.data(), direct.data(), perturbed.size() * 4) == 0);
  // The base weights were not touched by the perturbed pass.
  auto base = all_logits(*model, batch, nullptr);
  CHECK(std::memcmp(base.data(), perturbed.data(), base.size() * 4) != 0);
}

TEST_CASE("wrong, truncated or inconsistent models are clear errors", "[client][loader]") {
  const std::string dir = test::temp_dir("bad");
  const auto c = test::tiny_llama_config();
  auto tensors = test::random_llama_tensors(c, 1);
  auto write_model = [&](const std::vector<test::TensorData>& ts) {
    std::vector<TensorToWrite> w;
    for (const auto& t : ts) w.push_back({t.name, DType::kF32, t.shape, t.values.data()});
    REQUIRE(write_safetensors(dir + "/model.safetensors", w).is_ok());
  };
  const json config = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"vocab_size", c.vocab_size},
                       {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                       {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads},
                       {"num_key_value_heads", c.num_kv_heads}, {"rms_norm_eps", 1e-5}};
  write_text(dir + "/config.json", config.dump());
  write_model(tensors);
  REQUIRE(load_model(dir).is_ok());

  SECTION("missing tensor") {
    auto ts = tensors;
    ts.erase(ts.begin() + 5);
    write_model(ts);
    auto r = load_model(dir);
    CHECK(r.status().code() == StatusCode::kNotFound);
    CHECK(r.status().message().find("missing tensor '" + tensors[5].name + "'") != std::string::npos);
  }
  SECTION("shape not matching the config") {
    json bad = config;
    bad["intermediate_size"] = c.intermediate_size + 1;
    write_text(dir + "/config.json", bad.dump());
    auto r = load_model(dir);
    CHECK(r.status().code() == StatusCode::kMismatch);
    CHECK(r.status().message().find("mlp.gate_proj.weight") != std::string::npos);
  }
  SECTION("unknown architecture") {
    json bad = config;
    bad["model_type"] = "mamba";
    write_text(dir + "/config.json", bad.dump());
    CHECK(load_model(dir).status().message().find("'mamba'") != std::string::npos);
  }
  SECTION("config missing a field") {
    json bad = config;
    bad.erase("hidden_size");
    write_text(dir + "/config.json", bad.dump());
    CHECK(load_model(dir).status().message().find("hidden_size") != std::string::npos);
  }
  SECTION("truncated llama2.c checkpoint") {
    const std::string ckpt = stories_dir() + "/stories260K.bin";
    if (!test::path_exists(ckpt)) return;
    auto b = read_file(ckpt);
    REQUIRE(write_file_atomic(dir + "/model.bin", b->substr(0, b->size() - 100)).is_ok());
    auto r = load_model(dir + "/model.bin");
    CHECK(r.status().code() == StatusCode::kCorrupt);
    CHECK(r.status().message().find("truncated") != std::string::npos);
  }
  SECTION("tokenizer whose vocabulary does not match the model") {
    const std::string ckpt = stories_dir() + "/stories260K.bin";
    const std::string big_tok = test::shared_dir() + "/hub/karpathy/llama2.c/tokenizer.bin";
    if (!test::path_exists(ckpt) || !test::path_exists(big_tok)) return;
    auto r = load_model(ckpt, LoadOptions::with_tokenizer(big_tok));
    CHECK(r.status().code() == StatusCode::kMismatch);
    CHECK(r.status().message().find("larger than the model's") != std::string::npos);
  }
  SECTION("token ids outside the vocabulary") {
    auto m = test::make_llama(c, tensors);
    std::vector<float> hidden;
    auto s = m->forward_hidden(nullptr, TokenBatch::from_sequences({{1, 2, c.vocab_size}}), {}, nullptr, &hidden);
    CHECK(s.code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("a small model over many sequences runs its layers per group of sequences, with one thread's bits",
          "[client][llama][threads]") {
  // Layers of ~49k weights: small enough for the grouped run on the packed GEMM paths.
  const auto c = test::tiny_llama_config(300, 64, 2, 4, 2, 192, /*tied=*/false);
  auto model = test::make_llama(c, test::random_llama_tensors(c, 41));
  REQUIRE(model->weights().make_trainable(NamePatterns("*")).is_ok());
  std::vector<std::vector<int32_t>> seqs;
  for (int len : {50, 37, 64, 21, 45, 58, 33}) {
    seqs.emplace_back();
    for (int t = 0; t < len; ++t) seqs.back().push_back((len * 31 + t * 17) % 300);
  }
  const TokenBatch batch = TokenBatch::from_sequences(seqs, 0);
  const Perturbation p{true, Distribution::kGaussian, 99, 1e-2f};
  std::vector<float> one, many;
  REQUIRE(model->forward_hidden(nullptr, batch, p, nullptr, &one).is_ok());
  CHECK(model->last_pass_groups() == 1);
  const bool packed = gemm::chosen_path() != gemm::Path::kEigen;
  for (int threads : {2, 3, 4}) {
    INFO(threads << " threads");
    ThreadPool pool(threads);
    REQUIRE(model->forward_hidden(&pool, batch, p, nullptr, &many).is_ok());
    CHECK(model->last_pass_groups() == (packed ? size_t(threads) : 1));
    REQUIRE(many.size() == one.size());
    CHECK(std::memcmp(many.data(), one.data(), one.size() * sizeof(float)) == 0);
  }
  // A group would hold fewer than 32 rows (50 + 21, 21 + 21): the pass runs op by op.
  ThreadPool pool(2);
  REQUIRE(model->forward_hidden(&pool, TokenBatch::from_sequences({seqs[0], seqs[2]}), p, nullptr, &many).is_ok());
  CHECK(model->last_pass_groups() == (packed ? 2 : 1));
  for (const auto& two : {std::vector<std::vector<int32_t>>{seqs[0], seqs[3]}, {seqs[3], seqs[3]}}) {
    REQUIRE(model->forward_hidden(&pool, TokenBatch::from_sequences(two), p, nullptr, &many).is_ok());
    CHECK(model->last_pass_groups() == 1);
  }
  // A layer of more weights than the grouped run takes stays op by op.
  const auto wide = test::tiny_llama_config(300, 128, 1, 4, 4, 512, /*tied=*/false);
  auto big = test::make_llama(wide, test::random_llama_tensors(wide, 42));
  REQUIRE(big->forward_hidden(&pool, batch, {}, nullptr, &many).is_ok());
  CHECK(big->last_pass_groups() == 1);
}
