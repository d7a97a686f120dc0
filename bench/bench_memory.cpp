// The PocketLLM memory table: peak RSS of inference and of one ZO training step for the paper's
// models at their real sizes (random weights; memory does not depend on the values).
// `bench_memory --help` lists the commands and options (kUsage below).
// `run` prints one JSON line with the forward/step time and ru_maxrss; run each mode as its own process.
#include "bench_args.h"
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/client/trainer.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/update_log.h"

using namespace pocketllm;
using nlohmann::json;

namespace {

const char kUsage[] =
    "The PocketLLM memory table: peak RSS of inference, generation and a ZO step (random weights).\n"
    "  bench_memory write --arch opt-1.3b|roberta-large|gpt2|opt-125m|qwen3-0.6b|gemma3-270m --dtype f32|bf16 --out DIR\n"
    "  bench_memory run --model DIR|FILE.gguf --mode infer|train --batch B --seq T [--threads N] [--trainable PATTERNS]\n"
    "                   [--lora-rank R [--lora-targets q_proj,v_proj]]   (train: LoRA adapters instead of PATTERNS)\n"
    "                   [--quantize q8_0|q4_0]   (frozen matrices quantized in memory at load)\n"
    "                   [--pair auto|concurrent|sequential]   (train: the two passes as the trainer runs them; default auto)\n"
    "  bench_memory run --model DIR --mode generate --seq T [--kv window|full]\n"
    "                   decodes T positions one token at a time (a 16-token prompt first) through a KV cache of T;\n"
    "                   --kv full gives every layer all T positions, as the cache did before sliding layers kept\n"
    "                   only their window (the comparison row); prints the cache's bytes and ms per token\n";

struct Spec {
  json config;
  std::vector<std::pair<std::string, std::vector<int64_t>>> tensors;
};

// A Llama-named layer's projections, q/k norms and gated MLP (Qwen3, Gemma 3), under prefix p.
void add_qk_norm_layer(Spec* s, const std::string& p, int64_t d, int64_t ff, int64_t H, int64_t KV, int64_t hd) {
  const std::vector<std::pair<std::string, std::vector<int64_t>>> t = {
      {"self_attn.q_proj.weight", {H * hd, d}}, {"self_attn.k_proj.weight", {KV * hd, d}}, {"self_attn.v_proj.weight", {KV * hd, d}},
      {"self_attn.o_proj.weight", {d, H * hd}}, {"self_attn.q_norm.weight", {hd}},         {"self_attn.k_norm.weight", {hd}},
      {"mlp.gate_proj.weight", {ff, d}},        {"mlp.up_proj.weight", {ff, d}},           {"mlp.down_proj.weight", {d, ff}}};
  for (const auto& [name, shape] : t) s->tensors.emplace_back(p + name, shape);
}

// Qwen3-0.6B's shape (its Hugging Face config): 28 layers, d 1024, 16 query heads and 8 key/value heads
// of 128 (so q is 2 048 wide), FFN 3 072, vocabulary 151 936, tied embeddings, per-head q/k norms.
Spec qwen3_0_6b_spec() {
  Spec s;
  const int64_t d = 1024, ff = 3072, L = 28, V = 151936, H = 16, KV = 8, hd = 128;
  s.config = {{"architectures", {"Qwen3ForCausalLM"}}, {"model_type", "qwen3"}, {"vocab_size", V}, {"hidden_size", d},
              {"intermediate_size", ff}, {"num_hidden_layers", L}, {"num_attention_heads", H}, {"num_key_value_heads", KV},
              {"head_dim", hd}, {"max_position_embeddings", 40960}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
              {"tie_word_embeddings", true}, {"attention_bias", false}, {"hidden_act", "silu"}, {"bos_token_id", 151643},
              {"eos_token_id", 151645}};
  auto add = [&](std::string n, std::vector<int64_t> shape) { s.tensors.emplace_back(std::move(n), std::move(shape)); };
  add("model.embed_tokens.weight", {V, d});
  add("model.norm.weight", {d});
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {d});
    add(p + "post_attention_layernorm.weight", {d});
    add_qk_norm_layer(&s, p, d, ff, H, KV, hd);
  }
  return s;
}

// Gemma 3 270M's shape (its Hugging Face config): 18 layers, d 640, 4 query heads and 1 key/value head of
// 256, FFN 2 048, a 262 144-token vocabulary (168 M of its 268 M parameters), tied embeddings, four norms
// per layer and q/k norms, five sliding-window layers (512 tokens) to one full.
Spec gemma3_270m_spec() {
  Spec s;
  const int64_t d = 640, ff = 2048, L = 18, V = 262144, H = 4, KV = 1, hd = 256;
  json types = json::array();
  for (int64_t l = 0; l < L; ++l) types.push_back((l + 1) % 6 == 0 ? "full_attention" : "sliding_attention");
  s.config = {{"architectures", {"Gemma3ForCausalLM"}}, {"model_type", "gemma3_text"}, {"vocab_size", V}, {"hidden_size", d},
              {"intermediate_size", ff}, {"num_hidden_layers", L}, {"num_attention_heads", H}, {"num_key_value_heads", KV},
              {"head_dim", hd}, {"max_position_embeddings", 32768}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
              {"rope_local_base_freq", 10000.0}, {"sliding_window", 512}, {"layer_types", types},
              {"query_pre_attn_scalar", 256}, {"hidden_activation", "gelu_pytorch_tanh"}, {"tie_word_embeddings", true},
              {"bos_token_id", 2}, {"eos_token_id", 1}, {"pad_token_id", 0}};
  auto add = [&](std::string n, std::vector<int64_t> shape) { s.tensors.emplace_back(std::move(n), std::move(shape)); };
  add("model.embed_tokens.weight", {V, d});
  add("model.norm.weight", {d});
  for (int64_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (const char* n : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"})
      add(p + n + ".weight", {d});
    add_qk_norm_layer(&s, p, d, ff, H, KV, hd);
  }
  return s;
}

Spec make_spec(const std::string& arch) {
  if (arch == "qwen3-0.6b") return qwen3_0_6b_spec();
  if (arch == "gemma3-270m") return gemma3_270m_spec();
  Spec s;
  auto add = [&](std::string n, std::vector<int64_t> shape) { s.tensors.emplace_back(std::move(n), std::move(shape)); };
  if (arch == "opt-1.3b" || arch == "opt-125m") {
    const bool big = arch == "opt-1.3b";
    const int64_t d = big ? 2048 : 768, ff = 4 * d, L = big ? 24 : 12, V = 50272, P = 2048;
    s.config = {{"architectures", {"OPTForCausalLM"}}, {"model_type", "opt"}, {"vocab_size", V}, {"hidden_size", d},
                {"ffn_dim", ff}, {"num_hidden_layers", L}, {"num_attention_heads", big ? 32 : 12},
                {"max_position_embeddings", P}, {"word_embed_proj_dim", d}, {"do_layer_norm_before", true},
                {"activation_function", "relu"}, {"pad_token_id", 1}, {"bos_token_id", 2}, {"eos_token_id", 2}};
    add("model.decoder.embed_tokens.weight", {V, d});
    add("model.decoder.embed_positions.weight", {P + 2, d});
    add("model.decoder.final_layer_norm.weight", {d});
    add("model.decoder.final_layer_norm.bias", {d});
    for (int64_t l = 0; l < L; ++l) {
      const std::string p = "model.decoder.layers." + std::to_string(l) + ".";
      for (const char* n : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        add(p + "self_attn." + n + ".weight", {d, d});
        add(p + "self_attn." + n + ".bias", {d});
      }
      for (const char* n : {"self_attn_layer_norm", "final_layer_norm"}) {
        add(p + n + ".weight", {d});
        add(p + n + ".bias", {d});
      }
      add(p + "fc1.weight", {ff, d});
      add(p + "fc1.bias", {ff});
      add(p + "fc2.weight", {d, ff});
      add(p + "fc2.bias", {d});
    }
  } else if (arch == "roberta-large") {
    const int64_t d = 1024, ff = 4096, L = 24, V = 50265, P = 514;
    s.config = {{"architectures", {"RobertaForMaskedLM"}}, {"model_type", "roberta"}, {"vocab_size", V},
                {"hidden_size", d}, {"intermediate_size", ff}, {"num_hidden_layers", L}, {"num_attention_heads", 16},
                {"max_position_embeddings", P}, {"type_vocab_size", 1}, {"layer_norm_eps", 1e-5}, {"hidden_act", "gelu"},
                {"pad_token_id", 1}};
    add("roberta.embeddings.word_embeddings.weight", {V, d});
    add("roberta.embeddings.position_embeddings.weight", {P, d});
    add("roberta.embeddings.token_type_embeddings.weight", {1, d});
    add("roberta.embeddings.LayerNorm.weight", {d});
    add("roberta.embeddings.LayerNorm.bias", {d});
    for (int64_t l = 0; l < L; ++l) {
      const std::string p = "roberta.encoder.layer." + std::to_string(l) + ".";
      for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
        add(p + n + ".weight", {d, d});
        add(p + n + ".bias", {d});
      }
      add(p + "intermediate.dense.weight", {ff, d});
      add(p + "intermediate.dense.bias", {ff});
      add(p + "output.dense.weight", {d, ff});
      add(p + "output.dense.bias", {d});
      for (const char* n : {"attention.output.LayerNorm", "output.LayerNorm"}) {
        add(p + n + ".weight", {d});
        add(p + n + ".bias", {d});
      }
    }
    add("lm_head.dense.weight", {d, d});
    add("lm_head.dense.bias", {d});
    add("lm_head.layer_norm.weight", {d});
    add("lm_head.layer_norm.bias", {d});
    add("lm_head.bias", {V});
  } else if (arch == "gpt2") {
    const int64_t d = 768, L = 12, V = 50257, P = 1024;
    s.config = {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"}, {"vocab_size", V}, {"n_embd", d},
                {"n_layer", L}, {"n_head", 12}, {"n_positions", P}, {"activation_function", "gelu_new"},
                {"layer_norm_epsilon", 1e-5}};
    add("transformer.wte.weight", {V, d});
    add("transformer.wpe.weight", {P, d});
    add("transformer.ln_f.weight", {d});
    add("transformer.ln_f.bias", {d});
    for (int64_t l = 0; l < L; ++l) {
      const std::string p = "transformer.h." + std::to_string(l) + ".";
      for (const char* n : {"ln_1", "ln_2"}) {
        add(p + n + ".weight", {d});
        add(p + n + ".bias", {d});
      }
      add(p + "attn.c_attn.weight", {d, 3 * d});
      add(p + "attn.c_attn.bias", {3 * d});
      add(p + "attn.c_proj.weight", {d, d});
      add(p + "attn.c_proj.bias", {d});
      add(p + "mlp.c_fc.weight", {d, 4 * d});
      add(p + "mlp.c_fc.bias", {4 * d});
      add(p + "mlp.c_proj.weight", {4 * d, d});
      add(p + "mlp.c_proj.bias", {d});
    }
  } else {
    std::fprintf(stderr, "unknown arch %s\n", arch.c_str());
    std::exit(2);
  }
  return s;
}

long peak_rss_kib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

int write_model(const std::string& arch, const std::string& dtype, const std::string& out) {
  Spec s = make_spec(arch);
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.0f, 0.02f);
  std::vector<std::vector<char>> data;
  std::vector<TensorToWrite> tensors;
  const bool bf16 = dtype == "bf16";
  for (const auto& [name, shape] : s.tensors) {
    size_t count = 1;
    for (auto d : shape) count *= static_cast<size_t>(d);
    const bool norm = name.find("norm") != std::string::npos || name.find("LayerNorm") != std::string::npos;
    const bool is_weight = name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0;
    data.emplace_back(count * (bf16 ? 2 : 4));
    for (size_t i = 0; i < count; ++i) {
      const float v = norm && is_weight ? 1.0f : n(rng);
      if (bf16) {
        const uint16_t b = f32_to_bf16(v);
        std::memcpy(&data.back()[2 * i], &b, 2);
      } else {
        std::memcpy(&data.back()[4 * i], &v, 4);
      }
    }
    tensors.push_back({name, bf16 ? DType::kBF16 : DType::kF32, shape, data.back().data()});
  }
  std::system(("mkdir -p '" + out + "'").c_str());
  if (Status st = write_safetensors(out + "/model.safetensors", tensors); !st) {
    std::fprintf(stderr, "%s\n", st.to_string().c_str());
    return 1;
  }
  std::ofstream(out + "/config.json") << s.config.dump(1);
  return 0;
}

// Token-by-token decoding of `seq` positions through a KV cache, as `pocketllm generate` runs it.
int run_generate(const std::string& dir, LanguageModel& m, int seq, int threads, bool full_cache, long rss_loaded) {
  ThreadPool pool(threads);
  const int prompt = std::min(16, seq);
  KVCache cache = m.make_cache(1, seq);
  if (full_cache)
    for (size_t l = 0; l < cache.k.size(); ++l) {
      cache.slots[l] = static_cast<size_t>(seq);
      cache.k[l].assign(static_cast<size_t>(seq) * m.config().num_kv_heads * m.config().head_dim, 0.0f);
      cache.v[l].assign(cache.k[l].size(), 0.0f);
    }
  std::mt19937 rng(3);
  const auto token = [&] { return static_cast<int32_t>(3 + rng() % static_cast<uint32_t>(m.config().vocab_size - 3)); };
  std::vector<int32_t> first(static_cast<size_t>(prompt));
  for (auto& t : first) t = token();
  std::vector<float> hidden;
  std::vector<double> ms;
  TokenBatch batch = TokenBatch::from_sequences({first});
  while (cache.length < seq) {
    const auto t0 = std::chrono::steady_clock::now();
    if (Status st = m.forward_hidden(&pool, batch, {}, &cache, &hidden); !st) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    batch = TokenBatch::from_sequences({{token()}});
  }
  // The last tenth of the decode: the cost of a token once the context is long.
  std::vector<double> tail(ms.end() - static_cast<std::ptrdiff_t>(std::max<size_t>(1, ms.size() / 10)), ms.end());
  std::sort(tail.begin(), tail.end());
  std::printf("{\"model\":\"%s\",\"mode\":\"generate\",\"kv\":\"%s\",\"seq\":%d,\"threads\":%d,\"kv_cache_bytes\":%zu,"
              "\"ms_per_token_last_tenth\":%.2f,\"rss_after_load_kib\":%ld,\"peak_rss_kib\":%ld}\n",
              dir.c_str(), full_cache ? "full" : "window", seq, threads, cache.bytes(), tail[tail.size() / 2], rss_loaded, peak_rss_kib());
  return 0;
}

int run(const std::string& dir, const std::string& mode, int batch, int seq, int threads, const std::string& trainable, const LoraConfig& lora,
        DType quantize, PairMode pair_mode, bool full_cache) {
  LoadOptions lo;
  lo.quantize = quantize;
  auto loaded = load_model(dir, lo);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.status().to_string().c_str());
    return 1;
  }
  LanguageModel& m = *loaded->model;
  const long rss_loaded = peak_rss_kib();
  if (mode == "generate") return run_generate(dir, m, seq, threads, full_cache, rss_loaded);
  ThreadPool pool(threads);
  std::mt19937 rng(3);
  const int V = m.config().vocab_size;
  std::vector<std::vector<int32_t>> seqs(static_cast<size_t>(batch), std::vector<int32_t>(static_cast<size_t>(seq)));
  for (auto& s : seqs)
    for (auto& t : s) t = static_cast<int32_t>(3 + rng() % static_cast<uint32_t>(V - 3));
  const TokenBatch tb = TokenBatch::from_sequences(seqs);
  std::vector<int32_t> targets(tb.tokens.size());
  for (auto& t : targets) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(V));
  std::vector<ChoiceTarget> choice;
  for (int b = 0; b < batch; ++b) choice.push_back({b, seq / 2, b % 2});
  auto loss_on = [&](ThreadPool* pl, LanguageModel& model, const Perturbation& p) {
    return model.is_causal() ? model.token_loss(pl, tb, targets, p) : model.choice_loss(pl, tb, choice, {100, 200}, p);
  };
  auto loss = [&](const Perturbation& p) {
    auto r = loss_on(&pool, m, p);
    if (!r) {
      std::fprintf(stderr, "%s\n", r.status().to_string().c_str());
      std::exit(1);
    }
    return r->mean();
  };
  std::string pair_why;
  const auto t0 = std::chrono::steady_clock::now();
  double seconds = 0;
  if (mode == "infer") {
    loss(Perturbation{});
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } else {
    auto selected = select_trainable(m, lora.enabled() && trainable == "*" ? "none" : trainable, lora);
    if (!selected) {
      std::fprintf(stderr, "%s\n", selected.status().to_string().c_str());
      return 1;
    }
    if (std::getenv("POCKETLLM_BENCH_DEBUG")) {
      std::ifstream statm("/proc/self/statm");
      long size = 0, resident = 0;
      statm >> size >> resident;
      std::fprintf(stderr, "after make_trainable: rss %ld KiB, peak %ld KiB\n", resident * 4, peak_rss_kib());
    }
    auto tensors = m.weights().trainable_tensors();
    const uint64_t seed = step_seed(1, 0, 0);
    // The two passes as the trainer runs them (paired_forward.h: auto unless --pair says otherwise).
    PairedForward pair(m, &pool, choose_pair(m, &pool, pair_mode, batch, seq));
    pair_why = pair.why();
    LossResult lp, lm;
    if (Status st = pair.run(loss_on, Perturbation{true, Distribution::kRademacher, seed, 1e-3f},
                             Perturbation{true, Distribution::kRademacher, seed, -1e-3f}, &lp, &lm);
        !st) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      return 1;
    }
    const UpdateEntry e{seed, static_cast<float>(1e-6 * (lp.mean() - lm.mean()) / 2e-3)};
    replay_entries(&pool, Distribution::kRademacher, &e, 1, tensors);
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (std::getenv("POCKETLLM_BENCH_DEBUG")) {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("Rss", 0) == 0 || line.rfind("VmHWM", 0) == 0) std::fprintf(stderr, "%s\n", line.c_str());
    std::ifstream smaps("/proc/self/smaps");
    std::string head;
    for (std::string line; std::getline(smaps, line);) {
      if (line.find(" kB") == std::string::npos && line.find("VmFlags") != 0) head = line;
      if (line.rfind("Rss:", 0) == 0 && std::atol(line.c_str() + 4) > 4096) std::fprintf(stderr, "%s | %s\n", head.c_str(), line.c_str());
    }
  }
  const std::string what = mode != "train" ? "" : lora.enabled() ? "lora r" + std::to_string(lora.rank) + " " + lora.targets : trainable;
  std::printf("{\"model\":\"%s\",\"mode\":\"%s\",\"trainable\":\"%s\",\"trainable_params\":%zu,\"quantize\":\"%s\",\"batch\":%d,\"seq\":%d,\"threads\":%d,\"params\":%zu,"
              "\"weight_bytes\":%zu,\"seconds\":%.2f,\"rss_after_load_kib\":%ld,\"peak_rss_kib\":%ld,\"pair\":\"%s\"}\n",
              dir.c_str(), mode.c_str(), what.c_str(), m.weights().trainable_numel(), quantize == DType::kF32 ? "" : dtype_name(quantize), batch, seq, threads, m.weights().total_numel(), m.weights().storage_bytes(),
              seconds, rss_loaded, peak_rss_kib(), pair_why.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "-h" || cmd == "--help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd != "write" && cmd != "run") {
    std::fprintf(stderr, "bench_memory: expected write or run (try --help)\n");
    return 2;
  }
  if (argc % 2 != 0) {
    std::fprintf(stderr, "bench_memory: %s needs a value (try --help)\n", argv[argc - 1]);
    return 2;
  }
  std::string arch, dtype = "f32", out, model, mode = "infer", trainable = "*";
  LoraConfig lora;
  DType quantize = DType::kF32;
  int batch = 16, seq = 128, threads = 2;
  PairMode pair = PairMode::kAuto;
  bool full_cache = false;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--arch") arch = v;
    else if (a == "--dtype") dtype = v;
    else if (a == "--out") out = v;
    else if (a == "--model") model = v;
    else if (a == "--mode") mode = v;
    else if (a == "--trainable") trainable = v;
    else if (a == "--lora-rank") lora.rank = static_cast<int>(pocketllm::bench::int_arg("--lora-rank", v, 1, 4096));
    else if (a == "--lora-targets") lora.targets = v;
    else if (a == "--quantize") {
      if (!parse_quantize_type(v, &quantize)) {
        std::fprintf(stderr, "--quantize must be q8_0 or q4_0\n");
        return 2;
      }
    }
    else if (a == "--batch") batch = static_cast<int>(pocketllm::bench::int_arg("--batch", v, 1, 1 << 16));
    else if (a == "--seq") seq = static_cast<int>(pocketllm::bench::int_arg("--seq", v, 1, 1 << 20));
    else if (a == "--threads") threads = static_cast<int>(pocketllm::bench::int_arg("--threads", v, 1, 1024));
    else if (a == "--kv") {
      if (v != "window" && v != "full") {
        std::fprintf(stderr, "--kv must be window or full\n");
        return 2;
      }
      full_cache = v == "full";
    }
    else if (a == "--pair") {
      if (!parse_pair_mode(v, &pair)) {
        std::fprintf(stderr, "--pair must be auto, concurrent or sequential\n");
        return 2;
      }
    }
    else {
      std::fprintf(stderr, "bench_memory: unknown option %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  if (cmd == "write") return write_model(arch, dtype, out);
  if (mode != "infer" && mode != "train" && mode != "generate") {
    std::fprintf(stderr, "--mode must be infer, train or generate\n");
    return 2;
  }
  return run(model, mode, batch, seq, threads, trainable, lora, quantize, pair, full_cache);
}
