// Each fast kernel against its scalar reference on fresh random inputs, with sizes that are not
// multiples of any SIMD width.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels.h"
#include "kernels_gemm.h"
#include "attention_check.h"
#include "kernels_ref.h"
#include "arch/llama.h"
#include "pocketllm/common/tensor_ops.h"
#include <cstring>

using namespace pocketllm;

namespace {

std::mt19937& rng() {
  static std::mt19937 r(std::random_device{}());
  return r;
}

std::vector<float> randn(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng());
  return v;
}

double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

Weight view(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
  Weight w;
  w.name = name;
  w.shape = std::move(shape);
  w.dtype = DType::kF32;
  w.data = v.data();
  w.tag = tensor_tag(name);
  return w;
}

}  // namespace

TEST_CASE("linear matches the reference for odd sizes, threads and half-precision weights", "[client][kernels]") {
  ThreadPool pool(2);
  for (int trial = 0; trial < 4; ++trial) {
    const size_t m = 1 + rng()() % 37, k = 3 + rng()() % 101, n = 5 + rng()() % 203;
    auto x = randn(m * k), w = randn(n * k), b = randn(n);
    Weight W = view("w", {int64_t(n), int64_t(k)}, w), Bw = view("b", {int64_t(n)}, b);
    std::vector<float> fast(m * n), ref(m * n);
    linear(&pool, x.data(), m, k, W, &Bw, Perturbation{}, fast.data());
    ref::linear(x.data(), m, k, w.data(), n, b.data(), ref.data());
    INFO("m " << m << " k " << k << " n " << n);
    CHECK(rel_err(fast, ref) < 1e-5);

    // BF16-stored weights: the kernel converts per tile; compare with the reference on the rounded values.
    std::vector<uint16_t> wb(w.size());
    std::vector<float> w_rounded(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      wb[i] = f32_to_bf16(w[i]);
      w_rounded[i] = bf16_to_f32(wb[i]);
    }
    Weight Wb = W;
    Wb.dtype = DType::kBF16;
    Wb.data = wb.data();
    linear(nullptr, x.data(), m, k, Wb, nullptr, Perturbation{}, fast.data());
    ref::linear(x.data(), m, k, w_rounded.data(), n, nullptr, ref.data());
    CHECK(rel_err(fast, ref) < 1e-5);
  }
}

TEST_CASE("a perturbed linear equals a linear on weights perturbed in place", "[client][kernels]") {
  const size_t m = 9, k = 77, n = 131;
  auto x = randn(m * k), w = randn(n * k);
  Weight W = view("layer.w", {int64_t(n), int64_t(k)}, w);
  W.trainable = true;
  Perturbation p{true, Distribution::kRademacher, 0x1234, 1e-3f};
  std::vector<float> a(m * n), b(m * n);
  linear(nullptr, x.data(), m, k, W, nullptr, p, a.data());
  auto w2 = w;
  perturb_tensor(nullptr, p.dist, p.seed, W.tag, p.scale, w2.data(), w2.size());
  Weight W2 = view("layer.w", {int64_t(n), int64_t(k)}, w2);
  linear(nullptr, x.data(), m, k, W2, nullptr, Perturbation{}, b.data());
  CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
  // And a frozen weight is never perturbed.
  W.trainable = false;
  std::vector<float> c(m * n), d(m * n);
  linear(nullptr, x.data(), m, k, W, nullptr, p, c.data());
  linear(nullptr, x.data(), m, k, W, nullptr, Perturbation{}, d.data());
  CHECK(std::memcmp(c.data(), d.data(), c.size() * 4) == 0);
}

TEST_CASE("RMSNorm, LayerNorm, SwiGLU and softmax match their references", "[client][kernels]") {
  const size_t m = 1 + rng()() % 50, d = 3 + rng()() % 200;
  auto x = randn(m * d, 3.0f), g = randn(d), b = randn(d);
  Weight G = view("g", {int64_t(d)}, g), B = view("b", {int64_t(d)}, b);
  std::vector<float> fast(m * d), ref(m * d);
  ThreadPool pool(2);
  rms_norm(&pool, x.data(), m, d, G, 1e-5f, Perturbation{}, fast.data());
  ref::rms_norm(x.data(), m, d, g.data(), 1e-5f, ref.data());
  CHECK(rel_err(fast, ref) < 1e-6);
  layer_norm(&pool, x.data(), m, d, G, &B, 1e-5f, Perturbation{}, fast.data());
  ref::layer_norm(x.data(), m, d, g.data(), b.data(), 1e-5f, ref.data());
  CHECK(rel_err(fast, ref) < 1e-6);

  auto gate = randn(m * d, 2.0f), up = randn(m * d);
  auto gate_ref = gate;
  silu_mul(&pool, gate.data(), up.data(), gate.size());
  ref::silu_mul(gate_ref.data(), up.data(), gate_ref.size());
  CHECK(rel_err(gate, gate_ref) < 1e-6);
  gate = randn(m * d, 3.0f);
  gate_ref = gate;
  gated_mul(&pool, GateActivation::kGeluTanh, gate.data(), up.data(), gate.size());
  ref::gelu_tanh_mul(gate_ref.data(), up.data(), gate_ref.size());
  CHECK(rel_err(gate, gate_ref) < 1e-6);

  auto s = randn(m * d, 5.0f), s_ref = s;
  softmax_rows(s.data(), m, d);
  ref::softmax_rows(s_ref.data(), m, d);
  CHECK(rel_err(s, s_ref) < 1e-6);
}

TEST_CASE("GELU, tanh and erf forms, matches the formula in double and gives the same bytes on any threads",
          "[client][kernels]") {
  const size_t n = (size_t{1} << 15) + 37;  // two chunks of the threaded loop and a ragged tail
  auto x = randn(n, 3.0f);
  x[0] = 0.0f, x[1] = -12.0f, x[2] = 12.0f, x[3] = 1e-20f;
  for (bool tanh_form : {true, false}) {
    auto one = x, two = x;
    ThreadPool pool(2);
    (tanh_form ? gelu_tanh : gelu_erf)(nullptr, one.data(), n);
    (tanh_form ? gelu_tanh : gelu_erf)(&pool, two.data(), n);
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
      const double v = x[i];
      const double want = tanh_form ? 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
                                    : 0.5 * v * (1 + std::erf(v * 0.7071067811865476));
      // The float form 1 + erf(…) cancels for large negative x: errors are measured against max(1, |x|).
      worst = std::max(worst, std::fabs(one[i] - want) / std::max(1.0, std::fabs(v)));
    }
    INFO((tanh_form ? "tanh" : "erf") << " form, worst error " << worst);
    CHECK(worst < 1e-6);
    CHECK(one == two);
  }
}

TEST_CASE("rotary embedding matches the textbook rotation", "[client][kernels]") {
  const size_t m = 7, heads = 3, hd = 10;
  auto x = randn(m * heads * hd), x_ref = x;
  std::vector<int32_t> pos(m);
  for (size_t i = 0; i < m; ++i) pos[i] = static_cast<int32_t>(rng()() % 500);
  ModelConfig c;
  c.head_dim = hd;
  c.rope_theta = 10000.0f;
  auto inv = rope_inv_freq(c);
  rope(x.data(), m, heads, hd, pos.data(), inv.data());
  ref::rope(x_ref.data(), m, heads, hd, pos.data(), 10000.0);
  CHECK(rel_err(x, x_ref) < 1e-5);
}

TEST_CASE("a rope table grown over calls gives the bytes of the direct rotation", "[client][kernels]") {
  const size_t m = 9, heads = 2, hd = 16;
  ModelConfig c;
  c.head_dim = hd;
  c.rope_theta = 10000.0f;
  auto inv = rope_inv_freq(c);
  RopeTable table;
  RopeTable direct;  // grown to no position: rope() computes every angle's cosine and sine itself
  direct.ensure(nullptr, 0, inv.data(), hd / 2);
  std::vector<int32_t> early = {0, 1, 2, 3, 4, 5, 6, 7, 8}, late = {300, 7, 299, 0, 1000, 12, 13, 14, 999};
  std::vector<int32_t> beyond = {5000, 1, 4000, 2, 3, 4, 5, 6, 1000};  // not grown to: computed directly
  const std::vector<int32_t>* cases[] = {&early, &late, &beyond};
  for (const auto* pc : cases) {
    const auto& pos = *pc;
    if (pc != &beyond) table.ensure(pos.data(), m, inv.data(), hd / 2);
    auto a = randn(m * heads * hd), b = a, d = a;
    rope(a.data(), m, heads, hd, pos.data(), table);
    rope(d.data(), m, heads, hd, pos.data(), direct);
    // The table holds exactly std::cos / std::sin of the float angle, so both paths give the same bytes.
    CHECK(std::memcmp(a.data(), d.data(), a.size() * sizeof(float)) == 0);
    for (size_t r = 0; r < m; ++r) {  // the rotation written out, angle by angle
      const bool listed = pos[r] >= 0 && static_cast<size_t>(pos[r]) < table.positions;
      for (size_t i = 0; i < hd / 2; ++i) {
        const float angle = static_cast<float>(pos[r]) * inv[i], co = std::cos(angle), si = std::sin(angle);
        if (listed) {
          CHECK(table.cs[static_cast<size_t>(pos[r]) * hd + i] == co);
          CHECK(table.cs[static_cast<size_t>(pos[r]) * hd + hd / 2 + i] == si);
        }
        for (size_t h = 0; h < heads; ++h) {
          float* v = b.data() + r * heads * hd + h * hd;
          const float x0 = v[i], x1 = v[i + hd / 2];
          v[i] = x0 * co - x1 * si;
          v[i + hd / 2] = x1 * co + x0 * si;
        }
      }
    }
    // Whether the compiler fuses a * c - b * s into one FMA differs between this file and the kernel's,
    // so the written-out rotation is compared to within rounding.
    for (size_t j = 0; j < a.size(); ++j) CHECK(std::fabs(a[j] - b[j]) <= 1e-6f * (1.0f + std::fabs(b[j])));
  }
  CHECK(table.positions == 1001);
}

namespace {

// A causal attention of two sequences spanning several query blocks of 64: 150 queries without a
// cache, 70 after 30 cached positions (the first block already sees 94 keys); the second sequence is
// 9 keys short (padding).
struct LongAttention {
  AttentionShape s;
  std::vector<int32_t> len;
  std::vector<float> q, k, v;
  LongAttention(size_t head_dim, size_t past) {
    s.batch = 2;
    s.tq = past == 0 ? 150 : 70;
    s.tk = past + s.tq;
    s.heads = 4;
    s.kv_heads = 2;
    s.head_dim = head_dim;
    s.past = past;
    s.causal = true;
    len = {static_cast<int32_t>(s.tk), static_cast<int32_t>(s.tk) - 9};
    q = randn(s.batch * s.tq * s.heads * s.head_dim);
    k = randn(s.batch * s.tk * s.kv_heads * s.head_dim);
    v = randn(s.batch * s.tk * s.kv_heads * s.head_dim);
  }
};

}  // namespace

TEST_CASE("attention over several query blocks: long prompts, a cache offset and padding", "[client][kernels]") {
  for (size_t past : {size_t{0}, size_t{30}}) {
    const LongAttention a(8, past);
    INFO("past " << past);
    CHECK(test::attention_max_error(a.s, a.q, a.k, a.v, a.len) < 1e-5);
  }
}

TEST_CASE("sliding-window attention with its own scale: every block, a cache offset, narrow and wide heads",
          "[client][kernels]") {
  // Windows shorter and longer than a query block of 64, queries past the first block (the block's first
  // key moves), a cache offset, padding, and the narrow-head path (head 8) beside the general one (head 12).
  for (size_t hd : {size_t{8}, size_t{12}})
    for (size_t window : {size_t{5}, size_t{64}, size_t{100}})
      for (size_t past : {size_t{0}, size_t{30}}) {
        LongAttention a(hd, past);
        a.s.window = window;
        a.s.scale = 0.37f;
        INFO("head " << hd << " window " << window << " past " << past);
        CHECK(test::attention_max_error(a.s, a.q, a.k, a.v, a.len) < 1e-5);
        // A sequence shorter than where a later block's window starts (its padded queries see no key).
        LongAttention shorter = a;
        shorter.len[1] = 20;
        CHECK(test::attention_max_error(shorter.s, shorter.q, shorter.k, shorter.v, shorter.len) < 1e-5);
        if (past + a.s.tq <= window) continue;  // every query sees all its keys
        // The window is in force: without it the outputs differ.
        AttentionShape all = a.s;
        all.window = 0;
        std::vector<float> x(a.q.size()), y(a.q.size());
        attention(nullptr, a.s, a.q.data(), a.k.data(), a.v.data(), a.len.data(), x.data());
        attention(nullptr, all, a.q.data(), a.k.data(), a.v.data(), a.len.data(), y.data());
        CHECK(x != y);
      }
}

TEST_CASE("attention with GQA, causal and padding masks matches the reference", "[client][kernels]") {
  AttentionShape s;
  s.batch = 3;
  s.tq = 11;
  s.tk = 11;
  s.heads = 6;
  s.kv_heads = 2;
  s.head_dim = 5;
  s.causal = true;
  const std::vector<int32_t> len = {11, 4, 9};
  auto q = randn(s.batch * s.tq * s.heads * s.head_dim), k = randn(s.batch * s.tk * s.kv_heads * s.head_dim),
       v = randn(s.batch * s.tk * s.kv_heads * s.head_dim);
  std::vector<float> fast(q.size()), ref(q.size());
  ThreadPool pool(2);
  SECTION("causal") {
    attention(&pool, s, q.data(), k.data(), v.data(), len.data(), fast.data());
    ref::attention(s, q.data(), k.data(), v.data(), len.data(), ref.data());
    // Only rows inside each sequence are meaningful.
    for (size_t b = 0; b < s.batch; ++b)
      for (size_t t = 0; t < size_t(len[b]); ++t)
        for (size_t e = 0; e < s.heads * s.head_dim; ++e) {
          const size_t i = (b * s.tq + t) * s.heads * s.head_dim + e;
          REQUIRE(std::fabs(fast[i] - ref[i]) < 1e-5f);
        }
  }
  SECTION("bidirectional, with cache offset") {
    s.causal = false;
    s.past = 0;
    attention(&pool, s, q.data(), k.data(), v.data(), len.data(), fast.data());
    ref::attention(s, q.data(), k.data(), v.data(), len.data(), ref.data());
    CHECK(rel_err(fast, ref) < 1e-5);
  }
}

TEST_CASE("linear_shared_input gives each output the bytes of its own linear(), fused or not", "[client][kernels]") {
  // Fused on the packed path (x packed once, the weights' tiles as one set of tasks); one linear() after
  // another for few rows, or when a weight has an adapter-free path it cannot take (BF16 here is still
  // plain). Widths cross the 32-row panel and differ per output; one output has a bias.
  ThreadPool two(2), three(3);
  const size_t k = 70;
  for (size_t m : {3, 8, 40})
    for (bool perturbed : {false, true})
      for (bool bf16 : {false, true}) {
        const std::vector<size_t> widths = {100, 37, 64};
        std::vector<std::vector<float>> ws;
        std::vector<std::vector<uint16_t>> wb;
        std::vector<Weight> W;
        for (size_t i = 0; i < widths.size(); ++i) {
          ws.push_back(randn(widths[i] * k));
          wb.emplace_back(ws.back().size());
          for (size_t j = 0; j < ws.back().size(); ++j) wb.back()[j] = f32_to_bf16(ws.back()[j]);
        }
        for (size_t i = 0; i < widths.size(); ++i) {
          W.push_back(view("self_attn.proj" + std::to_string(i) + ".weight", {int64_t(widths[i]), int64_t(k)}, ws[i]));
          if (bf16) {
            W.back().dtype = DType::kBF16;
            W.back().data = wb[i].data();
          }
          W.back().trainable = perturbed;
        }
        auto bv = randn(widths[1]);
        Weight B = view("self_attn.proj1.bias", {int64_t(widths[1])}, bv);
        B.trainable = perturbed;
        auto x = randn(m * k);
        const Perturbation p{perturbed, Distribution::kRademacher, 0x51, 1e-2f};
        std::vector<std::vector<float>> want;
        for (size_t i = 0; i < widths.size(); ++i) {
          want.emplace_back(m * widths[i]);
          linear(nullptr, x.data(), m, k, W[i], i == 1 ? &B : nullptr, p, want.back().data());
        }
        for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two, &three}) {
          INFO("m " << m << " perturbed " << perturbed << " bf16 " << bf16 << " threads " << (pool ? pool->size() : 1));
          std::vector<std::vector<float>> got;
          std::vector<LinearOutput> outs;
          for (size_t i = 0; i < widths.size(); ++i) got.emplace_back(m * widths[i], -1.0f);
          for (size_t i = 0; i < widths.size(); ++i) outs.push_back({&W[i], i == 1 ? &B : nullptr, got[i].data()});
          linear_shared_input(pool, x.data(), m, k, outs.data(), outs.size(), p);
          for (size_t i = 0; i < widths.size(); ++i) CHECK(std::memcmp(got[i].data(), want[i].data(), want[i].size() * 4) == 0);
        }
      }
}

TEST_CASE("attention's wide heads: a query's output has the same bytes in any query block on the packed path",
          "[client][kernels]") {
  // Head width 64 (no narrow-head kernel): blocks of ≥ gemm::kMinRows queries run the packed GEMM, where
  // each score and output is one FMA chain, so query t's bytes do not depend on how many queries share
  // its block. The reference check bounds the error; this one pins the bytes.
  if (gemm::chosen_path() == gemm::Path::kEigen) {
    WARN("no packed GEMM path on this CPU: skipped");
    return;
  }
  AttentionShape s;
  s.batch = 1;
  s.tq = s.tk = 40;
  s.heads = 2;
  s.kv_heads = 1;
  s.head_dim = 64;
  const std::vector<int32_t> len = {40};
  auto q = randn(s.tq * s.heads * s.head_dim), k = randn(s.tk * s.kv_heads * s.head_dim), v = randn(s.tk * s.kv_heads * s.head_dim);
  std::vector<float> all(q.size());
  attention(nullptr, s, q.data(), k.data(), v.data(), len.data(), all.data());
  CHECK(test::attention_max_error(s, q, k, v, len) < 1e-5);
  // The first 16 queries alone (a block of 16 instead of 40): keys past query 15 never reach them.
  AttentionShape first = s;
  first.tq = first.tk = 16;
  const std::vector<int32_t> len16 = {16};
  std::vector<float> part(16 * s.heads * s.head_dim);
  attention(nullptr, first, q.data(), k.data(), v.data(), len16.data(), part.data());
  CHECK(std::memcmp(part.data(), all.data(), part.size() * 4) == 0);
}

TEST_CASE("the gated MLP has the bytes of linear_swiglu then the down projection, fused into its packed input or not",
          "[client][kernels]") {
  // Fused: packed path, plain gate/up/down (down perturbed or not, with or without its bias). Not fused: few
  // rows, a gate bias, a down adapter. Row counts cross the row blocks and the 12-row panels.
  ThreadPool two(2);
  for (GateActivation act : {GateActivation::kSilu, GateActivation::kGeluTanh})
    for (size_t m : {3, 8, 29, 64, 150})
      for (size_t n : {37, 250})
        for (int variant = 0; variant < 4; ++variant)  // 0 plain, 1 down bias, 2 gate bias, 3 down adapter
          for (bool perturbed : {false, true}) {
            const size_t k = 45, d = 70, r = 4;
            auto x = randn(m * k), g = randn(n * k), u = randn(n * k), w = randn(d * n), bg = randn(n), bd = randn(d);
            auto a = randn(r * n), b = randn(d * r);
            Weight G = view("mlp.gate_proj.weight", {int64_t(n), int64_t(k)}, g), U = view("mlp.up_proj.weight", {int64_t(n), int64_t(k)}, u);
            Weight D = view("mlp.down_proj.weight", {int64_t(d), int64_t(n)}, w), BD = view("mlp.down_proj.bias", {int64_t(d)}, bd);
            Weight BG = view("mlp.gate_proj.bias", {int64_t(n)}, bg);
            Weight A = view("mlp.down_proj.lora_A", {int64_t(r), int64_t(n)}, a), B = view("mlp.down_proj.lora_B", {int64_t(d), int64_t(r)}, b);
            if (variant == 3) {
              D.lora_a = &A;
              D.lora_b = &B;
              D.lora_scale = 0.5f;
            }
            G.trainable = U.trainable = D.trainable = BD.trainable = A.trainable = B.trainable = perturbed;
            const Weight* gate_bias = variant == 2 ? &BG : nullptr;
            const Weight* down_bias = variant == 1 ? &BD : nullptr;
            const Perturbation p{perturbed, Distribution::kRademacher, 0x78, 1e-2f};
            std::vector<float> h(m * n), up, want(m * d);
            linear_swiglu(nullptr, x.data(), m, k, G, gate_bias, U, nullptr, p, h.data(), &up, act);
            linear(nullptr, h.data(), m, n, D, down_bias, p, want.data());
            for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two}) {
              INFO("m " << m << " n " << n << " variant " << variant << " perturbed " << perturbed << " threads "
                        << (pool ? pool->size() : 1) << " gelu " << (act == GateActivation::kGeluTanh));
              std::vector<float> h2(m * n, 7.0f), up2, y(m * d, -1.0f);
              gated_mlp(pool, x.data(), m, k, G, gate_bias, U, nullptr, D, down_bias, p, h2.data(), &up2, act, y.data());
              CHECK(std::memcmp(y.data(), want.data(), y.size() * 4) == 0);
              // h is left alone only where the down projection reads the packed rows.
              const bool fused = gemm::chosen_path() != gemm::Path::kEigen && m >= gemm::kMinRows && variant < 2;
              CHECK((h2[0] == 7.0f) == fused);
            }
          }
}

TEST_CASE("the tiled SwiGLU / GeGLU layer has the bytes of two linears and the gated product, fused or not", "[client][kernels]") {
  // Fused: packed GEMM path, plain weights (perturbed or frozen, F32 or BF16 above the direct-kernel rows).
  // Not fused: few rows, a bias. Shapes cross the 32-row tile and the 8-wide vector tails.
  ThreadPool two(2), three(3);
  for (GateActivation act : {GateActivation::kSilu, GateActivation::kGeluTanh})
  for (size_t m : {3, 8, 29, 64})
    for (size_t n : {37, 100, 250})
      for (bool bias : {false, true})
        for (bool bf16 : {false, true})
          for (bool perturbed : {false, true}) {
            const size_t k = 45;
            auto x = randn(m * k), g = randn(n * k), u = randn(n * k), bg = randn(n), bu = randn(n);
            std::vector<uint16_t> gb(g.size()), ub(u.size());
            for (size_t i = 0; i < g.size(); ++i) {
              gb[i] = f32_to_bf16(g[i]);
              ub[i] = f32_to_bf16(u[i]);
            }
            Weight G = view("mlp.gate_proj.weight", {int64_t(n), int64_t(k)}, g), U = view("mlp.up_proj.weight", {int64_t(n), int64_t(k)}, u);
            Weight BG = view("mlp.gate_proj.bias", {int64_t(n)}, bg), BU = view("mlp.up_proj.bias", {int64_t(n)}, bu);
            if (bf16) {
              G.dtype = U.dtype = DType::kBF16;
              G.data = gb.data();
              U.data = ub.data();
            }
            G.trainable = U.trainable = BG.trainable = BU.trainable = perturbed && !bf16;
            const Perturbation p{perturbed, Distribution::kRademacher, 0x77, 1e-2f};
            std::vector<float> want(m * n), up(m * n);
            linear(nullptr, x.data(), m, k, G, bias ? &BG : nullptr, p, want.data());
            linear(nullptr, x.data(), m, k, U, bias ? &BU : nullptr, p, up.data());
            gated_mul(nullptr, act, want.data(), up.data(), m * n);
            for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two, &three}) {
              INFO("m " << m << " n " << n << " bias " << bias << " bf16 " << bf16 << " perturbed " << perturbed << " threads "
                        << (pool ? pool->size() : 1) << " gelu " << (act == GateActivation::kGeluTanh));
              std::vector<float> h(m * n), up_buffer;
              linear_swiglu(pool, x.data(), m, k, G, bias ? &BG : nullptr, U, bias ? &BU : nullptr, p, h.data(), &up_buffer, act);
              CHECK(std::memcmp(h.data(), want.data(), h.size() * 4) == 0);
              // The up product is held whole only where the layer is not fused.
              const bool fused = gemm::chosen_path() != gemm::Path::kEigen && m >= gemm::kMinRows && !bias;
              CHECK(up_buffer.empty() == fused);
            }
          }
}

TEST_CASE("log-sum-exp folded rows side by side keeps each row's bytes and matches the reference", "[client][kernels]") {
  for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{128}, size_t{300}})
    for (size_t rows : {size_t{1}, size_t{4}, size_t{7}}) {
      INFO("n " << n << " rows " << rows);
      auto x = randn(rows * n);
      for (auto& v : x) v *= 8.0f;
      std::vector<float> max_a(rows, -std::numeric_limits<float>::infinity()), sum_a(rows, 0.0f), max_b = max_a, sum_b = sum_a;
      // Two tiles per row, as the loss folds a row of the head tile by tile.
      const size_t half = n / 2;
      std::vector<float> first(rows * half), second(rows * (n - half));
      for (size_t r = 0; r < rows; ++r) {
        std::copy_n(x.data() + r * n, half, first.data() + r * half);
        std::copy_n(x.data() + r * n + half, n - half, second.data() + r * (n - half));
      }
      logsumexp_fold_rows(first.data(), rows, half, max_a.data(), sum_a.data());
      logsumexp_fold_rows(second.data(), rows, n - half, max_a.data(), sum_a.data());
      for (size_t r = 0; r < rows; ++r) {
        logsumexp_fold(first.data() + r * half, half, &max_b[r], &sum_b[r]);
        logsumexp_fold(second.data() + r * (n - half), n - half, &max_b[r], &sum_b[r]);
        double mx = -1e30, s = 0;
        for (size_t j = 0; j < n; ++j) mx = std::max(mx, double(x[r * n + j]));
        for (size_t j = 0; j < n; ++j) s += std::exp(double(x[r * n + j]) - mx);
        CHECK(double(max_a[r]) + std::log(double(sum_a[r])) == Approx(mx + std::log(s)).epsilon(1e-6));
      }
      CHECK(std::memcmp(max_a.data(), max_b.data(), rows * 4) == 0);
      CHECK(std::memcmp(sum_a.data(), sum_b.data(), rows * 4) == 0);
    }
}

TEST_CASE("RMSNorm gives the bytes of its documented arithmetic on every row, four rows at a time or alone, in place too",
          "[client][kernels]") {
  // The sum of squares in double over four interleaved partial sums added as (p0 + p1) + (p2 + p3), then
  // inv = 1 / sqrt(float(sum / d) + eps) and out = g * (x * inv): the same bytes on every build.
  ThreadPool pool(2);
  for (size_t d : {size_t{6}, size_t{64}, size_t{66}, size_t{768}})
    for (size_t m : {size_t{1}, size_t{7}, size_t{70}, size_t{133}}) {
      INFO("d " << d << " m " << m);
      auto x = randn(m * d, 3.0f), g = randn(d);
      Weight G = view("g", {int64_t(d)}, g);
      std::vector<float> want(m * d);
      for (size_t r = 0; r < m; ++r) {
        double part[4] = {0, 0, 0, 0};
        for (size_t i = 0; i < d; ++i) part[i % 4] += double(x[r * d + i]) * double(x[r * d + i]);
        const double sum = (part[0] + part[1]) + (part[2] + part[3]);
        const float inv = 1.0f / std::sqrt(static_cast<float>(sum / double(d)) + 1e-5f);
        for (size_t i = 0; i < d; ++i) want[r * d + i] = g[i] * (x[r * d + i] * inv);
      }
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
        std::vector<float> out(m * d);
        rms_norm(p, x.data(), m, d, G, 1e-5f, Perturbation{}, out.data());
        CHECK(std::memcmp(out.data(), want.data(), out.size() * 4) == 0);
        auto inplace = x;
        rms_norm(p, inplace.data(), m, d, G, 1e-5f, Perturbation{}, inplace.data());
        CHECK(std::memcmp(inplace.data(), want.data(), want.size() * 4) == 0);
      }
    }
}
