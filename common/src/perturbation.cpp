// Generation of z, exactly as docs/perturbation.md defines it. This file is compiled with
// -ffp-contract=off and without fast-math (see common/CMakeLists.txt): the Gaussian path's bit-exactness
// across CPUs rests on every float operation being a separately rounded IEEE-754 binary32 operation.
#include "pocketllm/common/perturbation.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "bits.h"
#include "perturbation_paths.h"

#include "pocketllm/common/philox.h"

namespace pocketllm {
namespace {

// The Gaussian path is compiled once generically and once per x86 vector ISA (target attributes on thin
// wrappers, below); everything it calls must be inlined into each wrapper for the wrapper's ISA to apply.
#if defined(__GNUC__) || defined(__clang__)
#define PLLM_INLINE __attribute__((always_inline)) inline
#else
#define PLLM_INLINE inline
#endif

inline uint32_t bits_of(float f) { return bits::of(f); }
inline float float_of(uint32_t u) { return bits::to_float(u); }

// Philox over kBatch consecutive block counters at once, structure-of-arrays so compilers vectorize
// the 32x32->64 multiplies. Output word w of block (first + i) is out[w][i]: identical to calling
// philox4x32_10 per block.
constexpr size_t kBatch = 16;
struct PhiloxBatch {
  uint32_t w[4][kBatch];
};

PLLM_INLINE void philox_batch(uint64_t first_block, uint64_t tag, PhiloxKey key, PhiloxBatch* out, size_t n = kBatch) {
  // Only the first n blocks are needed; short ranges (a row segment of a weight tile) need one or two.
  if (n < kBatch) {
    for (size_t i = 0; i < n; ++i) {
      const uint64_t b = first_block + i;
      const PhiloxBlock x = philox4x32_10({static_cast<uint32_t>(b), static_cast<uint32_t>(b >> 32),
                                           static_cast<uint32_t>(tag), static_cast<uint32_t>(tag >> 32)},
                                          key);
      for (int w = 0; w < 4; ++w) out->w[w][i] = x[w];
    }
    return;
  }
  uint32_t c0[kBatch], c1[kBatch], c2[kBatch], c3[kBatch];
  for (size_t i = 0; i < kBatch; ++i) {
    const uint64_t b = first_block + i;
    c0[i] = static_cast<uint32_t>(b);
    c1[i] = static_cast<uint32_t>(b >> 32);
    c2[i] = static_cast<uint32_t>(tag);
    c3[i] = static_cast<uint32_t>(tag >> 32);
  }
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kPhiloxW0;
      k1 += kPhiloxW1;
    }
    for (size_t i = 0; i < kBatch; ++i) {
      const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c0[i];
      const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c2[i];
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[i] ^ k0;
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[i] ^ k1;
      c1[i] = static_cast<uint32_t>(p1);
      c3[i] = static_cast<uint32_t>(p0);
      c0[i] = n0;
      c2[i] = n2;
    }
  }
  std::memcpy(out->w[0], c0, sizeof c0);
  std::memcpy(out->w[1], c1, sizeof c1);
  std::memcpy(out->w[2], c2, sizeof c2);
  std::memcpy(out->w[3], c3, sizeof c3);
}

// ---- Rademacher ------------------------------------------------------------------------------------
// emit(k, sign) is called for every element k (relative to start) with sign = 0x80000000 when
// z = -1 and 0 when z = +1.
template <class Emit>
inline void for_each_rademacher_sign(uint64_t seed, uint64_t tag, uint64_t start, size_t count, Emit&& emit) {
  if (count == 0) return;
  const PhiloxKey key = philox_key_from_seed(seed);
  const uint64_t end = start + count;
  const uint64_t first_block = start / kRademacherBlock;
  const uint64_t last_block = (end - 1) / kRademacherBlock;
  PhiloxBatch batch;
  for (uint64_t b0 = first_block; b0 <= last_block; b0 += kBatch) {
    const uint64_t nb = std::min<uint64_t>(kBatch, last_block - b0 + 1);
    philox_batch(b0, tag, key, &batch, static_cast<size_t>(nb));
    for (uint64_t i = 0; i < nb; ++i) {
      const uint64_t block_start = (b0 + i) * kRademacherBlock;
      const uint64_t lo = std::max(start, block_start);
      const uint64_t hi = std::min(end, block_start + kRademacherBlock);
      if (lo == block_start && hi == block_start + kRademacherBlock) {
        const size_t base = static_cast<size_t>(block_start - start);
        for (int w = 0; w < 4; ++w) {
          const uint32_t word = batch.w[w][i];
          for (uint32_t t = 0; t < 32; ++t) emit(base + w * 32 + t, ((word >> t) & 1u) << 31);
        }
      } else {
        for (uint64_t e = lo; e < hi; ++e) {
          const uint32_t j = static_cast<uint32_t>(e - block_start);
          const uint32_t word = batch.w[j >> 5][i];
          emit(static_cast<size_t>(e - start), ((word >> (j & 31)) & 1u) << 31);
        }
      }
    }
  }
}

// ---- Gaussian --------------------------------------------------------------------------------------
// Constants of docs/perturbation.md section 5, as binary32 hex literals.
constexpr float kSqrt2 = 0x1.6a09e6p+0f;
constexpr float kLn2 = 0x1.62e430p-1f;
constexpr float kHalfPi = 0x1.921fb6p+0f;
constexpr float kLogC[6] = {0x1.745d18p-4f /*1/11*/, 0x1.c71c72p-4f /*1/9*/, 0x1.24924ap-3f /*1/7*/,
                            0x1.99999ap-3f /*1/5*/,  0x1.555556p-2f /*1/3*/, 0x1p+0f /*1*/};
constexpr float kSinC[7] = {0x1.612462p-33f /*1/13!*/, -0x1.ae6456p-26f /*-1/11!*/, 0x1.71de3ap-19f /*1/9!*/,
                            -0x1.a01a02p-13f /*-1/7!*/, 0x1.111112p-7f /*1/5!*/,  -0x1.555556p-3f /*-1/3!*/,
                            0x1p+0f};
constexpr float kCosC[8] = {-0x1.93974ap-37f /*-1/14!*/, 0x1.1eed8ep-29f /*1/12!*/, -0x1.27e4fcp-22f /*-1/10!*/,
                            0x1.a01a02p-16f /*1/8!*/,    -0x1.6c16c2p-10f /*-1/6!*/, 0x1.555556p-5f /*1/4!*/,
                            -0x1p-1f /*-1/2!*/,          0x1p+0f};

// Box–Muller on exact float32 operations over arrays (structure of arrays, branch-free, so compilers
// vectorize it; vectorized IEEE add/mul/div/sqrt round exactly like scalar ones). For each k, two
// 32-bit words x0[k], x1[k] give two normals z0[k], z1[k].
constexpr size_t kPairs = 2 * kBatch;

PLLM_INLINE void box_muller_batch(const uint32_t* x0, const uint32_t* x1, float* z0, float* z1) {
  for (size_t k = 0; k < kPairs; ++k) {
    // u1 in (0, 1], u2 in [0, 1): 24-bit integers, exactly representable.
    const float u1 = static_cast<float>(static_cast<int32_t>((x0[k] >> 8) + 1u)) * 0x1p-24f;
    const float u2 = static_cast<float>(static_cast<int32_t>(x1[k] >> 8)) * 0x1p-24f;

    // ln(u1): u1 = m * 2^e with m in [1, 2), folded to [sqrt(2)/2, sqrt(2)].
    const uint32_t b = bits_of(u1);
    const int32_t e0 = static_cast<int32_t>((b >> 23) & 0xffu) - 127;
    const float m0 = float_of((b & 0x7fffffu) | 0x3f800000u);
    // Selections are bit masks rather than branches or ?: so that compilers vectorise the loop for any ISA
    // (with ?: GCC 12 if-converted it only for AVX-512). m0 * 0.5 is exact.
    const uint32_t fold = 0u - static_cast<uint32_t>(m0 > kSqrt2);  // all ones when m0 > sqrt(2)
    const float m = float_of((bits_of(m0) & ~fold) | (bits_of(m0 * 0.5f) & fold));
    const int32_t e = e0 + static_cast<int32_t>(fold & 1u);
    const float s = (m - 1.0f) / (m + 1.0f);
    const float s2 = s * s;
    float p = kLogC[0];
    p = p * s2 + kLogC[1];
    p = p * s2 + kLogC[2];
    p = p * s2 + kLogC[3];
    p = p * s2 + kLogC[4];
    p = p * s2 + kLogC[5];
    const float ln_u1 = static_cast<float>(e) * kLn2 + (2.0f * s) * p;
    const float r = std::sqrt(-2.0f * ln_u1);

    // Angle 2*pi*u2: quadrant q and a in [0, pi/2).
    const float t = u2 * 4.0f;
    const int32_t q = static_cast<int32_t>(t);
    const float a = (t - static_cast<float>(q)) * kHalfPi;
    const float a2 = a * a;
    float sp = kSinC[0];
    sp = sp * a2 + kSinC[1];
    sp = sp * a2 + kSinC[2];
    sp = sp * a2 + kSinC[3];
    sp = sp * a2 + kSinC[4];
    sp = sp * a2 + kSinC[5];
    sp = sp * a2 + kSinC[6];
    const float sin_a = a * sp;
    float cp = kCosC[0];
    cp = cp * a2 + kCosC[1];
    cp = cp * a2 + kCosC[2];
    cp = cp * a2 + kCosC[3];
    cp = cp * a2 + kCosC[4];
    cp = cp * a2 + kCosC[5];
    cp = cp * a2 + kCosC[6];
    cp = cp * a2 + kCosC[7];
    const float cos_a = cp;
    // Quadrant rotation: q=0 (cos, sin), 1 (-sin, cos), 2 (-cos, -sin), 3 (sin, -cos).
    // Negation flips the sign bit, which is exactly IEEE negation.
    // q is 0..3 (u2 < 1). neg_c: q = 1 or 2; neg_s: q = 2 or 3.
    const uint32_t swap = 0u - static_cast<uint32_t>(q & 1);
    const uint32_t neg_c = (static_cast<uint32_t>((q + 1) >> 1) & 1u) << 31;
    const uint32_t neg_s = (static_cast<uint32_t>(q >> 1) & 1u) << 31;
    const uint32_t cos_b = bits_of(cos_a), sin_b = bits_of(sin_a);
    const float c = float_of(((cos_b & ~swap) | (sin_b & swap)) ^ neg_c);
    const float sn = float_of(((sin_b & ~swap) | (cos_b & swap)) ^ neg_s);
    z0[k] = r * c;
    z1[k] = r * sn;
  }
}

// philox16: a vector Philox for the batches (perturbation_paths.h), or nullptr for philox_batch.
template <class Emit>
PLLM_INLINE void for_each_gaussian(uint64_t seed, uint64_t tag, uint64_t start, size_t count,
                                   perturb_paths::Philox16Fn philox16, Emit&& emit) {
  if (count == 0) return;
  const PhiloxKey key = philox_key_from_seed(seed);
  const uint64_t end = start + count;
  const uint64_t first_block = start / kGaussianBlock;
  const uint64_t last_block = (end - 1) / kGaussianBlock;
  PhiloxBatch batch;
  uint32_t x0[kPairs], x1[kPairs];
  float z0[kPairs], z1[kPairs];
  float z[kBatch * kGaussianBlock];
  for (uint64_t b0 = first_block; b0 <= last_block; b0 += kBatch) {
    if (philox16 != nullptr) philox16(key, tag, b0, batch.w);
    else philox_batch(b0, tag, key, &batch);
    // Pair 2i is (w0, w1) of block i -> elements 4i, 4i+1; pair 2i+1 is (w2, w3) -> 4i+2, 4i+3.
    for (size_t i = 0; i < kBatch; ++i) {
      x0[2 * i] = batch.w[0][i];
      x1[2 * i] = batch.w[1][i];
      x0[2 * i + 1] = batch.w[2][i];
      x1[2 * i + 1] = batch.w[3][i];
    }
    box_muller_batch(x0, x1, z0, z1);
    for (size_t k = 0; k < kPairs; ++k) {
      z[2 * k] = z0[k];
      z[2 * k + 1] = z1[k];
    }
    const uint64_t batch_start = b0 * kGaussianBlock;
    const uint64_t lo = std::max(start, batch_start);
    const uint64_t hi = std::min(end, batch_start + kBatch * kGaussianBlock);
    for (uint64_t e = lo; e < hi; ++e) emit(static_cast<size_t>(e - start), z[e - batch_start]);
  }
}

// dst = src + c*z (src == nullptr: dst = z) over [start, start + count) of the Gaussian stream. The product
// and the sum are two roundings, never fused (this file is compiled with -ffp-contract=off).
PLLM_INLINE void gaussian_body(uint64_t seed, uint64_t tag, uint64_t start, size_t count, float c, const float* src,
                               float* dst, perturb_paths::Philox16Fn philox16) {
  if (src == nullptr) {
    for_each_gaussian(seed, tag, start, count, philox16, [dst](size_t k, float z) { dst[k] = z; });
  } else {
    for_each_gaussian(seed, tag, start, count, philox16, [src, dst, c](size_t k, float z) {
      const float cz = c * z;
      dst[k] = src[k] + cz;
    });
  }
}

using GaussianFn = void (*)(uint64_t, uint64_t, uint64_t, size_t, float, const float*, float*);

void gaussian_generic(uint64_t seed, uint64_t tag, uint64_t start, size_t count, float c, const float* src, float* dst) {
  gaussian_body(seed, tag, start, count, c, src, dst, nullptr);
}

// The same source compiled for AVX2 and AVX-512 (the compiler vectorises Box–Muller 8 or 16 wide), with
// Philox from the explicit vector kernels of perturbation_x86.cpp (GCC 12 left it scalar in these clones).
// IEEE add, multiply, divide, sqrt and int <-> float conversions round the same in any vector width, and no
// multiply-add is contracted, so the bytes are the generic path's (the golden vectors check it per path).
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) void gaussian_avx2(uint64_t seed, uint64_t tag, uint64_t start, size_t count, float c,
                                                   const float* src, float* dst) {
  gaussian_body(seed, tag, start, count, c, src, dst, perturb_paths::philox_batch_avx2());
}
__attribute__((target("avx512f"))) void gaussian_avx512(uint64_t seed, uint64_t tag, uint64_t start, size_t count,
                                                        float c, const float* src, float* dst) {
  gaussian_body(seed, tag, start, count, c, src, dst, perturb_paths::philox_batch_avx512());
}
#endif

// ---- Path choice ---------------------------------------------------------------------------------------
perturb_paths::RademacherBlocksFn blocks_fn(PerturbationPath path) {
  switch (path) {
    case PerturbationPath::kAvx512: return perturb_paths::rademacher_avx512();
    case PerturbationPath::kAvx2: return perturb_paths::rademacher_avx2();
    case PerturbationPath::kGeneric: break;
  }
  return nullptr;
}

PerturbationPath widest_path() {
  if (blocks_fn(PerturbationPath::kAvx512) != nullptr) return PerturbationPath::kAvx512;
  if (blocks_fn(PerturbationPath::kAvx2) != nullptr) return PerturbationPath::kAvx2;
  return PerturbationPath::kGeneric;
}

PerturbationPath default_path() {
  const char* env = std::getenv("POCKETLLM_PERTURB");
  if (env != nullptr) {
    PerturbationPath want = widest_path();
    if (std::strcmp(env, "generic") == 0) want = PerturbationPath::kGeneric;
    else if (std::strcmp(env, "avx2") == 0) want = PerturbationPath::kAvx2;
    else if (std::strcmp(env, "avx512") == 0) want = PerturbationPath::kAvx512;
    if (perturbation_path_supported(want)) return want;
  }
  return widest_path();
}

std::atomic<int> g_path{-1};

// The kernels of each path, looked up once (CPU features included) instead of on every call: generate_z and
// add_scaled_z run once per weight tile of every forward.
struct PathKernels {
  perturb_paths::RademacherBlocksFn rademacher;  // nullptr: the generic loop
  GaussianFn gaussian;
};

const PathKernels& kernels_of(PerturbationPath path) {
  static const PathKernels table[3] = {
      {nullptr, gaussian_generic},
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
      // A path is only ever chosen when the CPU has it (perturbation_path_supported).
      {blocks_fn(PerturbationPath::kAvx2), gaussian_avx2},
      {blocks_fn(PerturbationPath::kAvx512), gaussian_avx512},
#else
      {nullptr, gaussian_generic},
      {nullptr, gaussian_generic},
#endif
  };
  return table[static_cast<int>(path)];
}

// src + c*z (src == nullptr: c*z) over [start, start + count) of the Rademacher stream: whole blocks through
// the chosen vector path, the partial blocks at either end through the generic one.
void rademacher_range(uint64_t seed, uint64_t tag, uint64_t start, size_t count, uint32_t c_bits, const float* src,
                      float* dst) {
  auto generic = [&](uint64_t at, size_t n, size_t off) {
    const float* s = src != nullptr ? src + off : nullptr;
    float* d = dst + off;
    if (s != nullptr) {
      for_each_rademacher_sign(seed, tag, at, n, [s, d, c_bits](size_t k, uint32_t sign) { d[k] = s[k] + float_of(c_bits ^ sign); });
    } else {
      for_each_rademacher_sign(seed, tag, at, n, [d, c_bits](size_t k, uint32_t sign) { d[k] = float_of(c_bits ^ sign); });
    }
  };
  const perturb_paths::RademacherBlocksFn fn = kernels_of(perturbation_path()).rademacher;
  const uint64_t end = start + count;
  const uint64_t first_full = (start + kRademacherBlock - 1) / kRademacherBlock, end_full = end / kRademacherBlock;
  if (fn == nullptr || end_full <= first_full) {
    generic(start, count, 0);
    return;
  }
  const size_t head = static_cast<size_t>(first_full * kRademacherBlock - start);
  const size_t body = static_cast<size_t>((end_full - first_full) * kRademacherBlock);
  if (head > 0) generic(start, head, 0);
  fn(philox_key_from_seed(seed), tag, first_full, end_full - first_full, c_bits, src != nullptr ? src + head : nullptr,
     dst + head);
  if (head + body < count) generic(start + head + body, count - head - body, head + body);
}

}  // namespace

PerturbationPath perturbation_path() {
  int p = g_path.load(std::memory_order_relaxed);
  if (p < 0) {
    p = static_cast<int>(default_path());
    g_path.store(p, std::memory_order_relaxed);
  }
  return static_cast<PerturbationPath>(p);
}

bool perturbation_path_supported(PerturbationPath path) {
  return path == PerturbationPath::kGeneric || blocks_fn(path) != nullptr;
}

bool set_perturbation_path(PerturbationPath path) {
  if (!perturbation_path_supported(path)) return false;
  g_path.store(static_cast<int>(path), std::memory_order_relaxed);
  return true;
}

const char* perturbation_path_name(PerturbationPath path) {
  switch (path) {
    case PerturbationPath::kAvx512: return "AVX-512";
    case PerturbationPath::kAvx2: return "AVX2";
    case PerturbationPath::kGeneric: break;
  }
  return "generic (build ISA)";
}

const char* distribution_name(Distribution dist) {
  return dist == Distribution::kGaussian ? "gaussian" : "rademacher";
}

bool parse_distribution(std::string_view text, Distribution* out) {
  if (text == "rademacher") {
    *out = Distribution::kRademacher;
    return true;
  }
  if (text == "gaussian") {
    *out = Distribution::kGaussian;
    return true;
  }
  return false;
}

uint64_t fnv1a64(const void* data, size_t size, uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

uint64_t tensor_tag(std::string_view canonical_name) { return fnv1a64(canonical_name.data(), canonical_name.size()); }

void generate_z(Distribution dist, uint64_t seed, uint64_t tag, uint64_t start, size_t count, float* out) {
  if (dist == Distribution::kRademacher) {
    rademacher_range(seed, tag, start, count, 0x3f800000u /* 1.0f */, nullptr, out);
  } else {
    kernels_of(perturbation_path()).gaussian(seed, tag, start, count, 0.0f, nullptr, out);
  }
}

void add_scaled_z(Distribution dist, uint64_t seed, uint64_t tag, uint64_t start, size_t count, float c,
                  const float* src, float* dst) {
  if (dist == Distribution::kRademacher) {
    // src + c*z with z = ±1 is src + (±c): flipping the sign bit of c is exact.
    rademacher_range(seed, tag, start, count, bits_of(c), src, dst);
  } else {
    kernels_of(perturbation_path()).gaussian(seed, tag, start, count, c, src, dst);
  }
}

}  // namespace pocketllm
