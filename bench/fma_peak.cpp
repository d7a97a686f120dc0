// The FMA peak of one core: twelve independent multiply-adds per iteration on registers (no loads), 256-bit
// and, where the CPU has it, 512-bit. GEMM figures in README are quoted against it. Median of 5 rounds; one
// JSON line: {"bench":"fma_peak","ymm_gflops":..,"zmm_gflops":..} (zmm null without AVX-512).
//   g++ -O2 bench/fma_peak.cpp -o fma_peak && ./fma_peak     (bench/run_gemm_shootout.sh runs it)
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

namespace {

constexpr long kIters = 100'000'000;

__attribute__((target("avx2,fma"))) double ymm_round() {
  __m256 a[12];
  const __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(static_cast<float>(i));
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < kIters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  alignas(32) float sink[8];
  __m256 sum = a[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, a[i]);
  _mm256_store_ps(sink, sum);
  if (sink[0] == 1234.5f) std::puts("");  // keeps the loop
  return kIters * 12.0 * 16 / s / 1e9;
}

__attribute__((target("avx512f"))) double zmm_round() {
  __m512 a[12];
  const __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(static_cast<float>(i));
  const auto t0 = std::chrono::steady_clock::now();
  for (long it = 0; it < kIters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  __m512 sum = a[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_ps(sum, a[i]);
  if (_mm512_reduce_add_ps(sum) == 1234.5f) std::puts("");
  return kIters * 12.0 * 32 / s / 1e9;
}

template <class Fn>
double median_of_5(Fn fn) {
  std::vector<double> v;
  for (int r = 0; r < 5; ++r) v.push_back(fn());
  std::sort(v.begin(), v.end());
  return v[2];
}

}  // namespace

int main() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("{\"bench\":\"fma_peak\",\"ymm_gflops\":null,\"zmm_gflops\":null}\n");
    return 0;
  }
  const double ymm = median_of_5(ymm_round);
  if (__builtin_cpu_supports("avx512f")) {
    std::printf("{\"bench\":\"fma_peak\",\"ymm_gflops\":%.1f,\"zmm_gflops\":%.1f}\n", ymm, median_of_5(zmm_round));
  } else {
    std::printf("{\"bench\":\"fma_peak\",\"ymm_gflops\":%.1f,\"zmm_gflops\":null}\n", ymm);
  }
  return 0;
}
