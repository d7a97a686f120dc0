// Forward throughput, ZO step overhead and peak memory of the engine on a randomly initialised Llama.
//
//   bench_model (--preset 110m|stories260k|llama1b | --model PATH) [--batch B] [--seq T] [--threads N]
//               [--reps R] [--mode forward|classify|step|weights|gemm|prompt|decode] [--dtype f32|bf16]
//               [--trainable PATTERNS] [--lora-rank R [--lora-targets T]] [--write-gguf FILE --gguf-type f32|f16|bf16|q8_0|q4_0]
//
// forward: median time of one loss forward (next-token loss over every position) -> tokens/s
// classify: median time of one label-word loss forward (choice_loss, as classification training runs it:
//          each sequence read at its last token, two candidate words) -> tokens/s
// step:    median time of one ZO training step (two perturbed forwards + the update) and its ratio to
//          two forwards measured in the same process
// weights: builds the model only (the memory floor)
// gemm:    Eigen GEMM peak of this machine in the same binary
// prompt:  prompt processing as llama.cpp measures it: B sequences of T tokens through every layer, logits
//          of each sequence's last token only -> tokens/s
// decode:  single-token decoding with the KV cache after a 16-token prompt -> tokens/s
// --model loads any model file (GGUF, llama2.c, HF directory) instead of a random preset; --write-gguf
// writes the random preset (with a synthetic SentencePiece vocabulary) as GGUF and exits.
// Every mode prints ru_maxrss (peak RSS) last; run modes as separate processes to compare peaks.
#include "bench_args.h"
#include <sys/resource.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "arch/llama.h"
#include "kernels.h"
#include "kernels_gemm.h"
#include "pocketllm/client/generate.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/client/trainer.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/tensor_ops.h"

using namespace pocketllm;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <class Fn>
double seconds_of(Fn&& fn) {
  const double a = now();
  fn();
  return now() - a;
}

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <class Fn>
double median_of(int reps, Fn&& fn) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) t.push_back(seconds_of(fn));
  return median(t);
}

long peak_rss_kib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// Random weights in the requested storage type, generated tensor by tensor (no second copy).
std::unique_ptr<LlamaModel> random_model(const ModelConfig& c, bool bf16, std::vector<std::vector<uint16_t>>* bf16_store) {
  WeightStore ws;
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.0f, 0.02f);
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool norm) {
    size_t count = 1;
    for (auto d : shape) count *= static_cast<size_t>(d);
    std::vector<float> v(count);
    for (auto& x : v) x = norm ? 1.0f : n(rng);
    if (bf16 && !norm) {
      bf16_store->emplace_back(count);
      for (size_t i = 0; i < count; ++i) bf16_store->back()[i] = f32_to_bf16(v[i]);
      ws.add_view(name, shape, DType::kBF16, bf16_store->back().data());
    } else {
      ws.add_owned_f32(name, shape, std::move(v));
    }
  };
  const int64_t d = c.hidden_size, kvd = int64_t(c.num_kv_heads) * c.head_dim, ff = c.intermediate_size, V = c.vocab_size;
  add("model.embed_tokens.weight", {V, d}, false);
  add("model.norm.weight", {d}, true);
  if (!c.tie_word_embeddings) add("lm_head.weight", {V, d}, false);
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {d}, true);
    add(p + "self_attn.q_proj.weight", {d, d}, false);
    add(p + "self_attn.k_proj.weight", {kvd, d}, false);
    add(p + "self_attn.v_proj.weight", {kvd, d}, false);
    add(p + "self_attn.o_proj.weight", {d, d}, false);
    add(p + "post_attention_layernorm.weight", {d}, true);
    add(p + "mlp.gate_proj.weight", {ff, d}, false);
    add(p + "mlp.up_proj.weight", {ff, d}, false);
    add(p + "mlp.down_proj.weight", {d, ff}, false);
  }
  auto m = LlamaModel::create(c, std::move(ws));
  if (!m) {
    std::fprintf(stderr, "%s\n", m.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(m.value());
}

// <unk> <s> </s>, the 256 byte pieces, then "t<i>" pieces with falling scores: a vocabulary of any size
// that llama.cpp's tokenizer accepts.
std::unique_ptr<Tokenizer> synthetic_vocab(int vocab) {
  SpmVocab v;
  v.pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.pieces.push_back(name);
  }
  for (int i = static_cast<int>(v.pieces.size()); i < vocab; ++i) v.pieces.push_back("t" + std::to_string(i));
  v.pieces.resize(static_cast<size_t>(vocab));
  for (int i = 0; i < vocab; ++i) v.scores.push_back(i < 259 ? 0.0f : -static_cast<float>(i));
  return std::move(make_spm_tokenizer(std::move(v)).value());
}

double decode_tokens_per_s(ThreadPool* pool, LanguageModel& m, int reps) {
  std::vector<int32_t> prompt(16);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(3 + i * 7);
  auto timed = [&](int n) {
    GenerateOptions o;
    o.max_new_tokens = n;
    o.stop_at_eos = false;
    const double a = now();
    auto r = generate(pool, m, prompt, o);
    if (!r) std::exit(1);
    return now() - a;
  };
  timed(2);
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) t.push_back((timed(65) - timed(1)) / 64.0);  // 64 decode steps, prompt cost removed
  std::sort(t.begin(), t.end());
  return 1.0 / t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "110m", mode = "forward", dtype = "f32", model_path, write_gguf, gguf_type = "f32", trainable = "*";
  int batch = -1, seq = -1, threads = 1, reps = 5;
  LoraConfig lora;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--preset") preset = next();
    else if (a == "--mode") mode = next();
    else if (a == "--dtype") dtype = next();
    else if (a == "--batch") batch = static_cast<int>(pocketllm::bench::int_arg("--batch", next(), 1, 1 << 16));
    else if (a == "--seq") seq = static_cast<int>(pocketllm::bench::int_arg("--seq", next(), 1, 1 << 20));
    else if (a == "--threads") threads = static_cast<int>(pocketllm::bench::int_arg("--threads", next(), 1, 1024));
    else if (a == "--reps") reps = static_cast<int>(pocketllm::bench::int_arg("--reps", next(), 1, 100000));
    else if (a == "--model") model_path = next();
    else if (a == "--write-gguf") write_gguf = next();
    else if (a == "--gguf-type") gguf_type = next();
    else if (a == "--trainable") trainable = next();
    else if (a == "--lora-rank") lora.rank = static_cast<int>(pocketllm::bench::int_arg("--lora-rank", next(), 1, 4096));
    else if (a == "--lora-targets") lora.targets = next();
    else {
      std::fprintf(stderr, "usage: bench_model [--preset 110m|stories260k] [--mode forward|classify|step|weights|gemm] "
                           "[--batch B] [--seq T] [--threads N] [--reps R] [--dtype f32|bf16] [--model PATH] [--trainable P]\n"
                           "                   [--write-gguf FILE --gguf-type f32|f16|bf16|q8_0|q4_0] [--mode prompt|decode]\n");
      return 2;
    }
  }
  if (mode == "gemm") {
    // A large GEMM of the forward's shape class, single-threaded: Eigen, and the engine's linear().
    const int M = 1024, K = 768, N = 2048;
    Eigen::MatrixXf A = Eigen::MatrixXf::Random(M, K), B = Eigen::MatrixXf::Random(K, N), C(M, N);
    C.noalias() = A * B;
    const double t = median_of(reps, [&] { C.noalias() = A * B; });
    // The engine's linear() on the same shape, one thread: its run-time GEMM path (kernels_gemm.h).
    std::vector<float> x(size_t{M} * K), w(size_t{N} * K), y(size_t{M} * N);
    std::mt19937 rng(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& v : x) v = nd(rng);
    for (auto& v : w) v = nd(rng) * 0.02f;
    Weight W;
    W.name = "w";
    W.shape = {N, K};
    W.dtype = DType::kF32;
    W.data = w.data();
    linear(nullptr, x.data(), M, K, W, nullptr, Perturbation{}, y.data());
    const double te = median_of(reps, [&] { linear(nullptr, x.data(), M, K, W, nullptr, Perturbation{}, y.data()); });
    std::printf("{\"mode\":\"gemm\",\"m\":%d,\"n\":%d,\"k\":%d,\"gflops_1thread\":%.1f,\"engine_gflops_1thread\":%.1f,\"engine_path\":\"%s\",\"peak_rss_kib\":%ld}\n",
                M, N, K, 2.0 * M * K * N / t / 1e9, 2.0 * M * K * N / te / 1e9, gemm::path_name(gemm::chosen_path()), peak_rss_kib());
    return 0;
  }
  ModelConfig c;
  c.arch = Architecture::kLlama;
  c.max_position_embeddings = 2048;
  c.norm_eps = 1e-5f;
  if (preset == "110m") {
    c.vocab_size = 32000, c.hidden_size = 768, c.intermediate_size = 2048, c.num_layers = 12, c.num_heads = 12, c.num_kv_heads = 12;
    c.tie_word_embeddings = true;  // 110 M parameters
    if (batch < 0) batch = 8;
    if (seq < 0) seq = 128;
  } else if (preset == "llama1b") {  // Llama-3.2-1B's shapes (rope scaling left out: it changes no cost)
    c.vocab_size = 128256, c.hidden_size = 2048, c.intermediate_size = 8192, c.num_layers = 16, c.num_heads = 32, c.num_kv_heads = 8;
    c.tie_word_embeddings = true;
    c.rope_theta = 500000.0f;
    if (batch < 0) batch = 8;
    if (seq < 0) seq = 128;
  } else if (preset == "stories260k") {
    c.vocab_size = 512, c.hidden_size = 64, c.intermediate_size = 172, c.num_layers = 5, c.num_heads = 8, c.num_kv_heads = 4;
    c.tie_word_embeddings = true;
    if (batch < 0) batch = 32;
    if (seq < 0) seq = 64;
  } else {
    std::fprintf(stderr, "unknown preset %s\n", preset.c_str());
    return 2;
  }
  c.head_dim = c.hidden_size / c.num_heads;
  std::vector<std::vector<uint16_t>> bf16_store;
  std::unique_ptr<LanguageModel> model;
  LoadedModel loaded;
  if (!model_path.empty()) {
    auto l = load_model(model_path);
    if (!l) {
      std::fprintf(stderr, "%s\n", l.status().to_string().c_str());
      return 1;
    }
    loaded = std::move(l.value());
    model = std::move(loaded.model);
    c = model->config();
    preset = model_path.substr(model_path.find_last_of('/') + 1);
  } else {
    model = random_model(c, dtype == "bf16", &bf16_store);
  }
  if (!write_gguf.empty()) {
    LoadedModel out;
    out.model = std::move(model);
    out.tokenizer = synthetic_vocab(c.vocab_size);
    out.name = "random-" + preset;
    GgufExportOptions o;
    if (!parse_gguf_type(gguf_type, &o.type)) return 2;
    const Status st = export_gguf(out, write_gguf, o);
    if (!st) std::fprintf(stderr, "%s\n", st.to_string().c_str());
    return st ? 0 : 1;
  }
  if (!model_path.empty()) {
    // The storage of a loaded model, for the table: the dominant weight type.
    std::map<std::string, size_t> by;
    for (const auto& w : model->weights().all()) by[dtype_name(w->dtype)] += w->numel();
    dtype = std::max_element(by.begin(), by.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  }
  const size_t params = model->weights().total_numel();
  if (mode == "weights") {
    std::printf("{\"mode\":\"weights\",\"preset\":\"%s\",\"params\":%zu,\"peak_rss_kib\":%ld}\n", preset.c_str(), params,
                peak_rss_kib());
    return 0;
  }
  ThreadPool pool(threads);
  if (mode == "decode") {
    const double tps = decode_tokens_per_s(&pool, *model, reps);
    std::printf("{\"mode\":\"decode\",\"preset\":\"%s\",\"dtype\":\"%s\",\"threads\":%d,\"tokens_per_s\":%.1f,\"peak_rss_kib\":%ld}\n",
                preset.c_str(), dtype.c_str(), threads, tps, peak_rss_kib());
    return 0;
  }
  std::mt19937 rng(2);
  std::vector<std::vector<int32_t>> seqs(static_cast<size_t>(batch), std::vector<int32_t>(static_cast<size_t>(seq)));
  for (auto& s : seqs)
    for (auto& t : s) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size));
  const TokenBatch tb = TokenBatch::from_sequences(seqs);
  std::vector<int32_t> targets(tb.tokens.size());
  for (size_t i = 0; i < targets.size(); ++i) targets[i] = static_cast<int32_t>(rng() % static_cast<uint32_t>(c.vocab_size));
  const double tokens = static_cast<double>(batch) * seq;
  auto forward = [&](const Perturbation& p) {
    auto l = model->token_loss(&pool, tb, targets, p);
    if (!l) {
      std::fprintf(stderr, "%s\n", l.status().to_string().c_str());
      std::exit(1);
    }
  };
  if (mode == "prompt") {
    std::vector<float> hidden, logits;
    std::vector<int> last;
    for (int b = 0; b < batch; ++b) last.push_back(b * seq + seq - 1);
    auto pp = [&] {
      if (!model->forward_hidden(&pool, tb, Perturbation{}, nullptr, &hidden)) std::exit(1);
      model->logits(&pool, hidden.data(), last, Perturbation{}, &logits);
    };
    pp();
    const double t = median_of(reps, pp);
    const double dense = 2.0 * static_cast<double>(params - (c.tie_word_embeddings ? 0 : size_t(c.vocab_size) * c.hidden_size)) -
                         2.0 * double(c.vocab_size) * c.hidden_size;  // the head runs for B rows only
    const double flops = tokens * (dense + 4.0 * seq / 2.0 * c.hidden_size * c.num_layers) + 2.0 * batch * c.vocab_size * c.hidden_size;
    std::printf("{\"mode\":\"prompt\",\"preset\":\"%s\",\"dtype\":\"%s\",\"threads\":%d,\"batch\":%d,\"seq\":%d,"
                "\"ms\":%.2f,\"tokens_per_s\":%.1f,\"gflops\":%.1f,\"peak_rss_kib\":%ld}\n",
                preset.c_str(), dtype.c_str(), threads, batch, seq, t * 1e3, tokens / t, flops / t / 1e9, peak_rss_kib());
    return 0;
  }
  if (mode == "classify") {
    std::vector<ChoiceTarget> reads;
    for (int b = 0; b < batch; ++b) reads.push_back({b, seq - 1, b % 2});
    const std::vector<int32_t> words = {1, 2};
    std::vector<float> word_logits;
    auto pass = [&] {
      if (!model->choice_loss(&pool, tb, reads, words, Perturbation{}, &word_logits)) std::exit(1);
    };
    pass();
    const double t = median_of(reps, pass);
    std::printf("{\"mode\":\"classify\",\"preset\":\"%s\",\"dtype\":\"%s\",\"threads\":%d,\"batch\":%d,\"seq\":%d,"
                "\"params\":%zu,\"forward_ms\":%.2f,\"tokens_per_s\":%.1f,\"peak_rss_kib\":%ld}\n",
                preset.c_str(), dtype.c_str(), threads, batch, seq, params, t * 1e3, tokens / t, peak_rss_kib());
    return 0;
  }
  forward(Perturbation{});  // warm-up: buffers reach their size
  const double fwd = median_of(reps, [&] { forward(Perturbation{}); });
  // Matmul FLOPs per token: 2 x (params in the layers' matrices + head); attention adds 4 T d per layer.
  const double dense = 2.0 * (static_cast<double>(params) - static_cast<double>(c.vocab_size) * c.hidden_size * (c.tie_word_embeddings ? 0 : 1)) ;
  const double flops = tokens * (dense + 4.0 * seq / 2.0 * c.hidden_size * c.num_layers);
  if (mode == "forward") {
    std::printf("{\"mode\":\"forward\",\"preset\":\"%s\",\"dtype\":\"%s\",\"threads\":%d,\"batch\":%d,\"seq\":%d,"
                "\"params\":%zu,\"forward_ms\":%.2f,\"tokens_per_s\":%.1f,\"gflops\":%.1f,\"peak_rss_kib\":%ld}\n",
                preset.c_str(), dtype.c_str(), threads, batch, seq, params, fwd * 1e3, tokens / fwd, flops / fwd / 1e9,
                peak_rss_kib());
    return 0;
  }
  // step: the trainer's own step over a task-free loss: two perturbed forwards + the update pass. With
  // --lora-rank the trainable set is the adapters; "base_forward_ms" is the forward before they were added.
  if (!select_trainable(*model, lora.enabled() && trainable == "*" ? "none" : trainable, lora)) return 1;
  // The trainer's pairing (client/paired_forward.h): both passes at once on a twin, and for comparison
  // one after the other on all threads, timed in alternation.
  auto tensors = model->weights().trainable_tensors();
  PairedForward concurrent(*model, &pool, choose_pair(*model, &pool, PairMode::kConcurrent, batch, seq)),
      sequential(*model, &pool, choose_pair(*model, &pool, PairMode::kSequential, batch, seq));
  const PairChoice automatic = choose_pair(*model, &pool, PairMode::kAuto, batch, seq);
  uint64_t s = 0;
  auto zo_step = [&](PairedForward& pair) {
    const uint64_t seed = step_seed(7, s++, 0);
    LossResult lp, lm;
    const Status st = pair.run([&](ThreadPool* p, LanguageModel& m, const Perturbation& pert) { return m.token_loss(p, tb, targets, pert); },
                               Perturbation{true, Distribution::kRademacher, seed, 1e-3f},
                               Perturbation{true, Distribution::kRademacher, seed, -1e-3f}, &lp, &lm);
    if (!st) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      std::exit(1);
    }
    const UpdateEntry e{seed, static_cast<float>(1e-6 * (lp.mean() - lm.mean()) / 2e-3)};
    replay_entries(&pool, Distribution::kRademacher, &e, 1, tensors);
  };
  zo_step(concurrent);
  zo_step(sequential);
  const double fwd_trainable = median_of(reps, [&] { forward(Perturbation{}); });
  std::vector<double> t_conc, t_seq;
  for (int r = 0; r < reps; ++r) {
    t_conc.push_back(seconds_of([&] { zo_step(concurrent); }));
    t_seq.push_back(seconds_of([&] { zo_step(sequential); }));
  }
  const double step = median(t_conc), step_seq = median(t_seq);
  std::printf("{\"mode\":\"step\",\"preset\":\"%s\",\"threads\":%d,\"batch\":%d,\"seq\":%d,\"trainable\":\"%s\","
              "\"base_forward_ms\":%.2f,\"forward_ms\":%.2f,\"step_ms\":%.2f,\"overhead\":%.3f,\"step_over_2_base_forwards\":%.3f,"
              "\"pair\":\"%s\",\"step_sequential_ms\":%.2f,\"auto_pair\":\"%s\",\"peak_rss_kib\":%ld}\n",
              preset.c_str(), threads, batch, seq, lora.enabled() ? ("lora r" + std::to_string(lora.rank) + " " + lora.targets).c_str() : trainable.c_str(),
              fwd * 1e3, fwd_trainable * 1e3, step * 1e3, step / (2 * fwd_trainable), step / (2 * fwd), concurrent.why().c_str(),
              step_seq * 1e3, automatic.why.c_str(), peak_rss_kib());
  return 0;
}
