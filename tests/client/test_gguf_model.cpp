// GGUF models: stories260K round-trips .bin -> GGUF -> pocketllm with the same model id and the golden
// greedy text; quantized files load and stay quantized; malformed model metadata is refused by name.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kernels_quant.h"
#include "kernels_quant_packed.h"
#include "model_fixtures.h"
#include "test_paths.h"
#include "pocketllm/client/generate.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/tokenizer.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/gguf.h"

using namespace pocketllm;
using nlohmann::json;

namespace {

bool have_stories() { return test::path_exists(test::stories260k_dir() + "/stories260K.bin"); }

LoadedModel load_ok(const std::string& path) {
  auto l = load_model(path, LoadOptions::with_tokenizer());
  INFO(l.status().to_string());
  REQUIRE(l.is_ok());
  return std::move(l.value());
}

std::string convert(const std::string& from, const std::string& to, DType type) {
  LoadedModel l = load_ok(from);
  GgufExportOptions o;
  o.type = type;
  const Status s = export_gguf(l, to, o);
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  return to;
}

std::vector<float> bos_logits(LanguageModel& m) {
  std::vector<float> hidden, logits;
  ThreadPool pool(1);
  REQUIRE(m.forward_hidden(&pool, TokenBatch::from_sequences({{1}}), {}, nullptr, &hidden).is_ok());
  m.logits(&pool, hidden.data(), {0}, {}, &logits);
  return logits;
}

std::vector<int32_t> greedy(const LoadedModel& l, int n) {
  ThreadPool pool(1);
  GenerateOptions o;
  o.max_new_tokens = n;
  o.stop_at_eos = false;
  auto prompt = l.tokenizer->encode("Once upon a time", true, false);
  REQUIRE(prompt.is_ok());
  auto r = generate(&pool, *l.model, prompt.value(), o);
  REQUIRE(r.is_ok());
  return r->tokens;
}

// Copies a GGUF file with its metadata and tensors edited: `meta` may change or drop (return false)
// entries by rewriting them into the writer; `tensor` may drop one (return false).
void rewrite(const std::string& from, const std::string& to,
             const std::function<bool(const std::string&, gguf::Writer*)>& meta,
             const std::function<bool(const std::string&)>& keep_tensor = [](const std::string&) { return true; },
             const std::function<void(gguf::Writer*)>& extra_tensors = nullptr) {
  auto f = gguf::File::open(from);
  REQUIRE(f.is_ok());
  gguf::Writer w;
  for (const auto& [key, v] : f->metadata()) {
    if (meta(key, &w)) continue;  // edited or dropped by the caller
    switch (v.type) {
      case gguf::Type::kU32: w.set_u32(key, static_cast<uint32_t>(v.u)); break;
      case gguf::Type::kI32: w.set_i32(key, static_cast<int32_t>(v.i)); break;
      case gguf::Type::kF32: w.set_f32(key, static_cast<float>(v.f)); break;
      case gguf::Type::kBool: w.set_bool(key, v.u != 0); break;
      case gguf::Type::kString: w.set_string(key, std::string(v.str)); break;
      case gguf::Type::kArray:
        if (v.elem == gguf::Type::kString) {
          std::vector<std::string> s(v.strings.begin(), v.strings.end());
          w.set_string_array(key, s);
        } else if (v.elem == gguf::Type::kF32) {
          w.set_f32_array(key, f->get_float_array(key).value());
        } else {
          std::vector<int32_t> i;
          const auto ints = f->get_int_array(key);
          for (int64_t x : ints.value()) i.push_back(static_cast<int32_t>(x));
          w.set_i32_array(key, i);
        }
        break;
      default: FAIL("unexpected metadata type in the fixture");
    }
  }
  if (extra_tensors) extra_tensors(&w);
  auto keep = std::make_shared<gguf::File>(std::move(f.value()));
  for (const auto& t : keep->tensors()) {
    if (!keep_tensor(t.name)) continue;
    const gguf::TensorInfo* tp = &t;
    REQUIRE(w.add_tensor(t.name, t.dims, t.dtype, [tp, keep](uint8_t* out) {
      std::memcpy(out, tp->data, static_cast<size_t>(tp->nbytes));
      return Status::ok();
    }).is_ok());
  }
  REQUIRE(w.write(to).is_ok());
}

}  // namespace

TEST_CASE("stories260K as F32 GGUF has the .bin's model id and golden greedy text", "[client][gguf][golden]") {
  if (!have_stories()) {
    WARN("skipped: stories260K not found");
    return;
  }
  const std::string dir = test::temp_dir("gguf");
  const std::string path = convert(test::stories260k_dir(), dir + "/s.gguf", DType::kF32);
  LoadedModel bin = load_ok(test::stories260k_dir());
  LoadedModel g = load_ok(path);
  CHECK(g.format == "gguf");
  CHECK(g.model->weights().compute_model_id() == bin.model->weights().compute_model_id());

  std::ifstream in(test::shared_dir() + "/golden/stories260K_greedy_golden.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const json golden = json::parse(ss.str())["Once upon a time"];
  const auto want = golden["token_ids_incl_bos"].get<std::vector<int32_t>>();
  const auto got = greedy(g, static_cast<int>(want.size()) - 5);
  CHECK(got == want);
  CHECK(g.tokenizer->decode(got) == golden["text"].get<std::string>());
  CHECK(g.tokenizer->encode("Once upon a time", true, false).value() == golden["prompt_tokens"].get<std::vector<int32_t>>());

  // GGUF -> GGUF F32 and GGUF -> HF directory keep the id; two conversions write the same bytes.
  const std::string again = convert(path, dir + "/again.gguf", DType::kF32);
  CHECK(read_file(again).value() == read_file(path).value());
  LoadedModel g2 = load_ok(again);
  REQUIRE(export_hf_directory(g2, dir + "/hf").is_ok());
  LoadedModel hf = load_ok(dir + "/hf");
  CHECK(hf.model->weights().compute_model_id() == bin.model->weights().compute_model_id());
  CHECK(greedy(hf, 20) == greedy(bin, 20));
}

TEST_CASE("quantized GGUF files stay quantized and follow the F32 model", "[client][gguf][quant]") {
  if (!have_stories()) {
    WARN("skipped: stories260K not found");
    return;
  }
  const std::string dir = test::temp_dir("ggufq");
  LoadedModel f32 = load_ok(test::stories260k_dir());
  const auto ref = bos_logits(*f32.model);
  const auto ref_tokens = greedy(f32, 32);
  for (DType t : {DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    INFO(dtype_name(t));
    const std::string path = convert(test::stories260k_dir(), dir + "/" + dtype_name(t) + ".gguf", t);
    LoadedModel q = load_ok(path);
    const Weight* embed = q.model->weights().find("model.embed_tokens.weight");
    const Weight* down = q.model->weights().find("model.layers.0.mlp.down_proj.weight");
    const Weight* norm = q.model->weights().find("model.norm.weight");
    REQUIRE((embed && down && norm));
    CHECK(embed->dtype == t);
    // down_proj rows are 172 long: not whole 32-blocks, so a quantized file keeps it F16.
    CHECK(down->dtype == (dtype_is_quantized(t) ? DType::kF16 : t));
    CHECK(norm->dtype == DType::kF32);
    const auto logits = bos_logits(*q.model);
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, double(std::fabs(logits[i] - ref[i])));
    const double bound = t == DType::kQ4_0 ? 3.0 : t == DType::kQ8_0 ? 0.4 : t == DType::kBF16 ? 0.3 : 0.02;
    INFO("worst logit difference " << worst);
    CHECK(worst < bound);
    CHECK(worst > 0);  // the weights really are the quantized ones
    if (t != DType::kQ4_0) CHECK(greedy(q, 32) == ref_tokens);
    // Re-exporting as the same type copies the blocks: the same model id.
    const std::string again = convert(path, dir + "/again.gguf", t);
    CHECK(load_ok(again).model->weights().compute_model_id() == q.model->weights().compute_model_id());
  }
}

TEST_CASE("a quantized weight made trainable becomes its float32 dequantization", "[client][gguf][quant]") {
  if (!have_stories()) {
    WARN("skipped: stories260K not found");
    return;
  }
  const std::string dir = test::temp_dir("ggufT");
  LoadedModel q = load_ok(convert(test::stories260k_dir(), dir + "/q.gguf", DType::kQ8_0));
  WeightStore& ws = q.model->weights();
  const Weight* w = ws.find("model.layers.1.self_attn.v_proj.weight");
  REQUIRE(w->dtype == DType::kQ8_0);
  std::vector<float> expect(w->numel());
  REQUIRE(convert_to_f32(w->dtype, w->data, expect.size(), expect.data()));
  const auto before = bos_logits(*q.model);
  REQUIRE(ws.make_trainable(NamePatterns(std::string_view("model.layers.1.self_attn.v_proj.weight"))).is_ok());
  REQUIRE(w->dtype == DType::kF32);
  REQUIRE(w->trainable);
  CHECK(w->packed == nullptr);  // the float32 values are what the forward reads from now on
  CHECK(std::vector<float>(w->mutable_f32, w->mutable_f32 + w->numel()) == expect);
  // Same weight values; the float32 copy goes through the float GEMM instead of the quantized kernel
  // (which quantizes activations to 8 bits where the CPU has int8 dot products: AVX-512 VNNI, arm64
  // dotprod), so logits move slightly.
  const auto after = bos_logits(*q.model);
  double worst = 0;
  for (size_t i = 0; i < after.size(); ++i) worst = std::max(worst, double(std::fabs(after[i] - before[i])));
  CHECK(worst < (packed_quant_kernels_available() || direct_int8_kernels() ? 0.15 : 1e-4));
  // Training writes the float32 copy, and the forward reads what training wrote.
  std::fill(w->mutable_f32, w->mutable_f32 + w->numel(), 0.0f);
  const auto zeroed = bos_logits(*q.model);
  double moved = 0;
  for (size_t i = 0; i < zeroed.size(); ++i) moved = std::max(moved, double(std::fabs(zeroed[i] - after[i])));
  CHECK(moved > 0.01);
}

TEST_CASE("GGUF model files with bad metadata are refused by name", "[client][gguf][malformed]") {
  if (!have_stories()) {
    WARN("skipped: stories260K not found");
    return;
  }
  const std::string dir = test::temp_dir("ggufbad");
  const std::string good = convert(test::stories260k_dir(), dir + "/good.gguf", DType::kF32);
  auto expect_error = [&](const std::string& name, StatusCode code, const std::string& fragment,
                          const std::function<bool(const std::string&, gguf::Writer*)>& meta,
                          const std::function<bool(const std::string&)>& keep = [](const std::string&) { return true; }) {
    const std::string path = dir + "/" + name + ".gguf";
    rewrite(good, path, meta, keep);
    auto l = load_model(path, LoadOptions::with_tokenizer());
    INFO(name << ": " << l.status().to_string());
    REQUIRE_FALSE(l.is_ok());
    CHECK(l.status().code() == code);
    CHECK(l.status().message().find(fragment) != std::string::npos);
    CHECK(l.status().message().find(path) != std::string::npos);
  };
  auto none = [](const std::string&, gguf::Writer*) { return false; };
  expect_error("missing-key", StatusCode::kNotFound, "llama.block_count",
               [](const std::string& k, gguf::Writer*) { return k == "llama.block_count"; });
  expect_error("ffn", StatusCode::kMismatch, "model.layers.0.mlp.gate_proj.weight", [](const std::string& k, gguf::Writer* w) {
    if (k != "llama.feed_forward_length") return false;
    w->set_u32(k, 200);
    return true;
  });
  expect_error("arch", StatusCode::kUnsupported, "falcon", [](const std::string& k, gguf::Writer* w) {
    if (k != "general.architecture") return false;
    w->set_string(k, "falcon");
    return true;
  });
  expect_error("heads", StatusCode::kCorrupt, "head_count", [](const std::string& k, gguf::Writer* w) {
    if (k != "llama.attention.head_count") return false;
    w->set_u32(k, 0);
    return true;
  });
  // The head size: without attention.key_length it is the width over the heads (64 over 7 is not whole);
  // with it, attention.value_length must agree.
  expect_error("heads-width", StatusCode::kCorrupt, "no attention.key_length", [](const std::string& k, gguf::Writer* w) {
    if (k != "llama.attention.head_count") return false;
    w->set_u32(k, 7);
    return true;
  });
  expect_error("value-length", StatusCode::kUnsupported, "value_length 16 differs from key_length 8",
               [](const std::string& k, gguf::Writer* w) {
                 if (k != "llama.rope.freq_base") return false;
                 w->set_f32(k, 10000.0f);
                 w->set_u32("llama.attention.value_length", 16);
                 return true;
               });
  expect_error("missing-tensor", StatusCode::kNotFound, "model.layers.3.mlp.up_proj.weight", none,
               [](const std::string& n) { return n != "blk.3.ffn_up.weight"; });
  expect_error("vocab", StatusCode::kMismatch, "tokens", [](const std::string& k, gguf::Writer* w) {
    if (k != "tokenizer.ggml.tokens") return false;
    w->set_string_array(k, {"a", "b"});
    return true;
  });
  expect_error("scores", StatusCode::kCorrupt, "scores", [](const std::string& k, gguf::Writer* w) {
    if (k != "tokenizer.ggml.scores") return false;
    w->set_f32_array(k, {1.0f});
    return true;
  });
  expect_error("rope-type", StatusCode::kUnsupported, "yarn", [](const std::string& k, gguf::Writer* w) {
    if (k != "llama.rope.freq_base") return false;
    w->set_f32(k, 10000.0f);
    w->set_string("llama.rope.scaling.type", "yarn");
    return true;
  });
  expect_error("tokenizer-model", StatusCode::kUnsupported, "bert", [](const std::string& k, gguf::Writer* w) {
    if (k != "tokenizer.ggml.model") return false;
    w->set_string(k, "bert");
    return true;
  });
}

TEST_CASE("llama, qwen2 and qwen3 models with a byte-level BPE vocabulary round-trip through GGUF", "[client][gguf]") {
  const std::string gpt2 = test::shared_dir() + "/hub/openai-community/gpt2/tokenizer.json";
  if (!test::path_exists(gpt2)) {
    WARN("skipped: " << gpt2 << " not found");
    return;
  }
  const std::string dir = test::temp_dir("ggufbpe");
  auto tok = load_hf_tokenizer(gpt2, "");
  REQUIRE(tok.is_ok());
  const int V = tok.value()->vocab_size();
  const std::vector<std::string> texts = {"Hello world", "  two  spaces and\nnewlines\n\n", "numbers 12345 and 3.14159",
                                          "caf\xC3\xA9 na\xC3\xAFve \xE2\x80\x94 \xF0\x9F\x98\x80", "don't I'LL you've", "<|endoftext|>x"};
  for (const std::string type : {"llama", "qwen2", "qwen3"}) {
    INFO((type == "llama" ? "llama with q/k biases" : type));
    const bool qwen2 = type == "qwen2", qwen3 = type == "qwen3";
    ModelConfig c = test::tiny_llama_config(V, 24, 2, 4, 2, 40, /*tied=*/!qwen2, /*qkv_bias=*/!qwen3);
    c.model_type = type;  // llama with biases: the q/k bias rows are permuted too
    if (qwen3) {  // q/k norms, and heads of 8 in a 24-wide stream: 4 x 8 = 32 query rows
      c.qk_norm = true;
      c.head_dim = 8;
      c.hf_architecture = "Qwen3ForCausalLM";
    }
    LoadedModel src;
    src.model = test::make_llama(c, test::random_llama_tensors(c, qwen2 ? 5 : 6));
    src.tokenizer = std::move(load_hf_tokenizer(gpt2, "").value());
    src.path = dir + "/src";
    const std::string path = dir + "/" + type + ".gguf";
    const Status st = export_gguf(src, path);
    INFO(st.to_string());
    REQUIRE(st.is_ok());
    auto f = gguf::File::open(path);
    REQUIRE(f.is_ok());
    CHECK(f->get_string("general.architecture").value() == type);
    if (qwen3) {
      CHECK(f->tensor("blk.1.attn_k_norm.weight") != nullptr);
      CHECK(f->get_uint("qwen3.attention.key_length").value() == 8u);
    }
    CHECK(f->get_string("tokenizer.ggml.model").value() == "gpt2");
    CHECK(f->get_string("tokenizer.ggml.pre").value() == "gpt-2");  // llama.cpp's name for the GPT-2 regex
    CHECK(f->get_string_array("tokenizer.ggml.merges").value().size() == 50000);
    LoadedModel g = load_ok(path);
    CHECK(g.model->config().model_type == c.model_type);
    CHECK(g.model->config().qk_norm == qwen3);
    CHECK(g.model->config().head_dim == c.head_dim);
    CHECK(g.model->weights().compute_model_id() == src.model->weights().compute_model_id());
    // The same logits, and the tokenizer rebuilt from the file encodes and decodes as the original.
    std::vector<float> a, b, ha, hb;
    const TokenBatch batch = TokenBatch::from_sequences({{15496, 995, 11, 220, 50256}});
    REQUIRE(src.model->forward_hidden(nullptr, batch, {}, nullptr, &ha).is_ok());
    REQUIRE(g.model->forward_hidden(nullptr, batch, {}, nullptr, &hb).is_ok());
    src.model->logits(nullptr, ha.data(), {0, 4}, {}, &a);
    g.model->logits(nullptr, hb.data(), {0, 4}, {}, &b);
    REQUIRE(a.size() == b.size());
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, double(std::fabs(a[i] - b[i])));
    CHECK(worst < 1e-5);  // the same weights; buffers at other addresses may round GEMM partial sums differently
    for (const auto& t : texts) {
      INFO(t);
      auto want = src.tokenizer->encode(t, false, false);
      auto got = g.tokenizer->encode(t, false, false);
      REQUIRE((want.is_ok() && got.is_ok()));
      CHECK(got.value() == want.value());
      CHECK(g.tokenizer->decode(got.value()) == src.tokenizer->decode(want.value()));
    }
    CHECK(g.tokenizer->eos_id() == src.tokenizer->eos_id());
  }
  // A pre-tokenizer pocketllm does not know is refused by name.
  rewrite(dir + "/qwen2.gguf", dir + "/pre.gguf", [](const std::string& k, gguf::Writer* w) {
    if (k != "tokenizer.ggml.pre") return false;
    w->set_string(k, "mystery-pre");
    return true;
  });
  auto bad = load_model(dir + "/pre.gguf", LoadOptions::with_tokenizer());
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("mystery-pre") != std::string::npos);
}

TEST_CASE("Gemma 3 round-trips through GGUF: sandwich norm names, 1 + w norms, sliding window, no space prefix", "[client][gguf][gemma3]") {
  const std::string dir = test::temp_dir("ggufgemma");
  // Seven layers: the sixth is the full one; a window of 4 under 12 tokens; linear rope scaling.
  ModelConfig c = test::tiny_gemma3_config(67, 24, 7, 4, 1, 8, 40, 4);
  c.rope_scaling = {"linear", 4.0f};
  LoadedModel src;
  src.model = test::make_llama(c, test::random_llama_tensors(c, 12));
  SpmVocab v;
  for (int i = 0; i < 67; ++i) v.pieces.push_back(i < 3 ? std::string(i == 0 ? "<pad>" : i == 1 ? "</s>" : "<s>") : "p" + std::to_string(i));
  v.pieces[3] = "p";
  v.pieces[4] = "5";
  v.pieces[10] = " ";  // "p5" is piece 5
  v.scores.assign(67, 0.0f);
  v.bos = 2;
  v.eos = 1;
  v.add_space_prefix = false;
  src.tokenizer = std::move(make_spm_tokenizer(v).value());
  src.path = dir + "/src";
  const Status st = export_gguf(src, dir + "/g.gguf");
  INFO(st.to_string());
  REQUIRE(st.is_ok());
  auto f = gguf::File::open(dir + "/g.gguf");
  REQUIRE(f.is_ok());
  CHECK(f->get_string("general.architecture").value() == "gemma3");
  CHECK(f->get_uint("gemma3.attention.sliding_window").value() == 4u);
  CHECK(f->get_string("gemma3.rope.scaling.type").value() == "linear");
  CHECK(f->get_bool("tokenizer.ggml.add_space_prefix").value() == false);
  for (const char* name : {"blk.2.post_attention_norm.weight", "blk.2.ffn_norm.weight", "blk.2.post_ffw_norm.weight",
                           "blk.2.attn_q_norm.weight"})
    CHECK(f->tensor(name) != nullptr);
  // llama.cpp reads Gemma's norms as 1 + w: the file holds the stored weight plus one.
  const gguf::TensorInfo* pre = f->tensor("blk.2.ffn_norm.weight");
  const Weight* w = src.model->weights().find("model.layers.2.pre_feedforward_layernorm.weight");
  REQUIRE(pre != nullptr);
  REQUIRE(w != nullptr);
  CHECK(reinterpret_cast<const float*>(pre->data)[5] == Approx(static_cast<const float*>(w->data)[5] + 1.0f).epsilon(1e-6));

  LoadedModel g = load_ok(dir + "/g.gguf");
  const ModelConfig& gc = g.model->config();
  CHECK(gc.arch == Architecture::kGemma3);
  CHECK(gc.sliding_layers == c.sliding_layers);
  CHECK(gc.sliding_window == 4);
  CHECK(gc.rope_scaling.type == "linear");
  CHECK(gc.rope_scaling.factor == 4.0f);
  CHECK(gc.attention_scale == c.attention_scale);
  CHECK(gc.embed_scale == c.embed_scale);
  auto ids5 = g.tokenizer->encode("p5", false, false);
  REQUIRE(ids5.is_ok());
  CHECK(ids5.value() == std::vector<int32_t>{5});  // no leading space token (with the prefix: 10, 5)
  CHECK(src.tokenizer->encode("p5", false, false).value() == std::vector<int32_t>{5});
  REQUIRE(export_hf_directory(g, dir + "/hf").is_ok());
  LoadedModel hf = load_ok(dir + "/hf");
  CHECK(hf.model->config().sliding_layers == c.sliding_layers);
  std::vector<int32_t> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(3 + (i * 11) % 60);
  const auto a = test::all_row_logits(*src.model, TokenBatch::from_sequences({ids}));
  const auto b = test::all_row_logits(*g.model, TokenBatch::from_sequences({ids}));
  const auto h = test::all_row_logits(*hf.model, TokenBatch::from_sequences({ids}));
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max({worst, double(std::fabs(a[i] - b[i])), double(std::fabs(a[i] - h[i]))});
  CHECK(worst < 1e-4);  // (1 + w) - 1 in float32 rounds w by up to half an ulp of 1

  // A Gemma 3 that a gemma3 GGUF cannot describe is refused, not written to run differently.
  ModelConfig odd = c;
  odd.sliding_layers[5] = true;
  LoadedModel other;
  other.model = test::make_llama(odd, test::random_llama_tensors(odd, 12));
  other.tokenizer = std::move(make_spm_tokenizer(v).value());
  const Status refused = export_gguf(other, dir + "/odd.gguf");
  CHECK(refused.code() == StatusCode::kUnsupported);
  CHECK_THAT(refused.message(), Catch::Contains("layer types"));
}

TEST_CASE("Llama 3 rope scaling travels as rope_freqs.weight and comes back as config.json's rope_scaling", "[client][gguf]") {
  const std::string dir = test::temp_dir("ggufrope");
  ModelConfig c = test::tiny_llama_config(67, 64, 2, 2, 1, 48, /*tied=*/true);
  c.head_dim = 32;  // wavelengths from 6 to 1.4e6 positions: all three regimes of the scaling
  c.rope_theta = 500000.0f;
  c.rope_scaling = {"llama3", 32.0f, 1.0f, 4.0f, 8192};
  LoadedModel src;
  src.model = test::make_llama(c, test::random_llama_tensors(c, 9));
  SpmVocab v;
  for (int i = 0; i < 67; ++i) v.pieces.push_back(i < 3 ? std::string(i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>") : "p" + std::to_string(i));
  v.scores.assign(67, 0.0f);
  src.tokenizer = std::move(make_spm_tokenizer(v).value());
  src.path = dir + "/src";
  REQUIRE(export_gguf(src, dir + "/r.gguf").is_ok());
  auto f = gguf::File::open(dir + "/r.gguf");
  REQUIRE(f.is_ok());
  const gguf::TensorInfo* rf = f->tensor("rope_freqs.weight");
  REQUIRE(rf != nullptr);
  CHECK(rf->dims == std::vector<uint64_t>{16});
  LoadedModel g = load_ok(dir + "/r.gguf");
  const ModelConfig& gc = g.model->config();
  CHECK(gc.rope_scaling.type == "llama3");
  CHECK(gc.rope_scaling.factor == 32.0f);
  CHECK(gc.rope_scaling.original_max_position_embeddings == 8192);
  CHECK(g.model->weights().find("rope_freqs.weight") == nullptr);  // not a parameter
  CHECK(g.model->weights().compute_model_id() == src.model->weights().compute_model_id());
  REQUIRE(export_hf_directory(g, dir + "/hf").is_ok());
  LoadedModel hf = load_ok(dir + "/hf");
  CHECK(hf.model->config().rope_scaling.type == "llama3");
  // Positions far apart rotate alike in all three: the same logits at the last of 40 tokens.
  std::vector<int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(3 + (i * 7) % 60);
  auto last_logits = [&](LanguageModel& m) {
    std::vector<float> hidden, logits;
    REQUIRE(m.forward_hidden(nullptr, TokenBatch::from_sequences({ids}), {}, nullptr, &hidden).is_ok());
    m.logits(nullptr, hidden.data(), {39}, {}, &logits);
    return logits;
  };
  const auto a = last_logits(*src.model), b = last_logits(*g.model), h = last_logits(*hf.model);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max({worst, double(std::fabs(a[i] - b[i])), double(std::fabs(a[i] - h[i]))});
  CHECK(worst < 1e-5);
  // Without the scaling the logits differ: the check above can fail.
  ModelConfig plain = c;
  plain.rope_scaling = {};
  auto unscaled = test::make_llama(plain, test::random_llama_tensors(plain, 9));
  const auto u = last_logits(*unscaled);
  double moved = 0;
  for (size_t i = 0; i < a.size(); ++i) moved = std::max(moved, double(std::fabs(a[i] - u[i])));
  CHECK(moved > 1e-3);
  // Factors that no Llama 3 scaling produces are refused, not approximated.
  rewrite(
      dir + "/r.gguf", dir + "/odd-factors.gguf", [](const std::string&, gguf::Writer*) { return false; },
      [](const std::string& n) { return n != "rope_freqs.weight"; },
      [](gguf::Writer* w) {
        REQUIRE(w->add_tensor("rope_freqs.weight", {16}, DType::kF32, [](uint8_t* out) {
          for (int i = 0; i < 16; ++i) {
            const float x = 1.0f + 0.37f * static_cast<float>(i);
            std::memcpy(out + 4 * i, &x, 4);
          }
          return Status::ok();
        }).is_ok());
      });
  auto odd = load_model(dir + "/odd-factors.gguf", LoadOptions::with_tokenizer());
  REQUIRE_FALSE(odd.is_ok());
  CHECK(odd.status().code() == StatusCode::kUnsupported);
  CHECK(odd.status().message().find("rope_freqs.weight") != std::string::npos);
}
