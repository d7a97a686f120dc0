// SGEMM shoot-out over the shapes the 110M Llama forward runs: Y[M, N] = X[M, K] * W[N, K]^T (row-major,
// weights stored out x in as the engine stores them). One backend per binary (they define the same BLAS
// symbols): -DGEMM_EIGEN, -DGEMM_OPENBLAS, -DGEMM_BLIS, -DGEMM_ONEDNN, -DGEMM_POCKETLLM (the engine's packed kernels). bench/run_gemm_shootout.sh builds
// and runs them. Prints one JSON line per (shape, threads): median GFLOP/s of REPS.
//   gemm_shootout THREADS REPS [M]  (M: only that batch; NT=rows sets the W tile of the pocketllm backend, 128 by default)
#include "bench_args.h"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <cstdint>
#include <vector>

#if defined(GEMM_EIGEN)
#include <Eigen/Core>
static const char* kName = "eigen";
#elif defined(GEMM_OPENBLAS)
#include <cblas.h>
extern "C" void openblas_set_num_threads(int);
static const char* kName = "openblas";
#elif defined(GEMM_BLIS)
#include <blis.h>
static const char* kName = "blis";
#elif defined(GEMM_POCKETLLM)
#include "kernels_gemm.h"
static const char* kName = "pocketllm";
#elif defined(GEMM_ONEDNN)
#include <dnnl.h>
#include <omp.h>
static const char* kName = "onednn";
#endif

namespace {

void gemm(int threads, int m, int n, int k, const float* x, const float* w, float* y) {
#if defined(GEMM_EIGEN)
  // As the engine runs it: Eigen single-threaded per task, output columns split over the threads.
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using CMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
  using Map = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
  auto part = [&](int n0, int n1) {
    CMap xm(x, m, k, Eigen::OuterStride<>(k));
    CMap wm(w + static_cast<size_t>(n0) * k, n1 - n0, k, Eigen::OuterStride<>(k));
    Map ym(y + n0, m, n1 - n0, Eigen::OuterStride<>(n));
    ym.noalias() = xm * wm.transpose();
  };
  if (threads <= 1) {
    part(0, n);
  } else {
    std::vector<std::thread> ts;
    const int per = (n + threads - 1) / threads;
    for (int t = 0; t < threads; ++t) {
      const int n0 = t * per, n1 = std::min(n, n0 + per);
      if (n0 < n1) ts.emplace_back(part, n0, n1);
    }
    for (auto& t : ts) t.join();
  }
#elif defined(GEMM_POCKETLLM)
  // As the engine runs it: X packed once, tiles of W rows split over the threads; Eigen below kMinRows.
  namespace g = pocketllm::gemm;
  const g::Path path = g::chosen_path();
  // 64-byte aligned, as the engine's thread scratch is (a 64-byte panel load never splits a cache line).
  auto aligned = [](std::vector<float>& v, size_t floats) {
    v.resize(floats + 15);
    const size_t skip = (16 - reinterpret_cast<uintptr_t>(v.data()) / sizeof(float) % 16) % 16;
    return v.data() + skip;
  };
  static std::vector<float> packed_buffer;
  float* packed = aligned(packed_buffer, g::packed_x_floats(path, m, k));
  g::pack_x(path, x, m, k, packed);
  static const int nt = std::getenv("NT") && std::atoi(std::getenv("NT")) > 0 ? std::atoi(std::getenv("NT")) : 128;
  const int tiles = (n + nt - 1) / nt;
  auto part = [&](int t0) {
    std::vector<float> scratch_buffer;
    float* scratch = aligned(scratch_buffer, g::tile_scratch_floats(path, nt, k));
    for (int t = t0; t < tiles; t += threads) {
      const int n0 = t * nt, rows = std::min(nt, n - n0);
      g::multiply_tile(path, packed, m, k, w + static_cast<size_t>(n0) * k, rows, scratch, y + n0, n);
    }
  };
  if (threads <= 1) {
    part(0);
  } else {
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) ts.emplace_back(part, t);
    for (auto& t : ts) t.join();
  }
#elif defined(GEMM_OPENBLAS)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
#elif defined(GEMM_BLIS)
  float one = 1.0f, zero = 0.0f;
  bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, m, n, k, &one, const_cast<float*>(x), k, 1, const_cast<float*>(w), k, 1, &zero, y, n, 1);
#elif defined(GEMM_ONEDNN)
  // Row-major Y = X W^T is column-major Y^T = W X^T: dnnl_sgemm is row-major already.
  dnnl_sgemm('N', 'T', m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
#endif
  (void)threads;
}

void set_threads(int t) {
#if defined(GEMM_OPENBLAS)
  openblas_set_num_threads(t);
#elif defined(GEMM_BLIS)
  bli_thread_set_num_threads(t);
#elif defined(GEMM_ONEDNN)
  omp_set_num_threads(t);
#endif
  (void)t;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? static_cast<int>(pocketllm::bench::int_arg("threads", argv[1], 1, 1024)) : 1;
  const int reps = argc > 2 ? static_cast<int>(pocketllm::bench::int_arg("reps", argv[2], 1, 100000)) : 5;
  const int only_m = argc > 3 ? static_cast<int>(pocketllm::bench::int_arg("m", argv[3], 1, 1 << 20)) : 0;
  set_threads(threads);
  struct Shape { const char* name; int n, k; };
  const Shape shapes[] = {{"qkv_o", 768, 768}, {"ffn_up", 2048, 768}, {"ffn_down", 768, 2048}, {"lm_head", 32000, 768}};
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const std::vector<int> batches = only_m != 0 ? std::vector<int>{only_m} : std::vector<int>{1, 16, 128, 1024};
  for (int m : batches) {
    for (const Shape& s : shapes) {
#if defined(GEMM_POCKETLLM)
      if (static_cast<size_t>(m) < pocketllm::gemm::kMinRows) continue;  // the engine runs Eigen there
#endif
      std::vector<float> x(static_cast<size_t>(m) * s.k), w(static_cast<size_t>(s.n) * s.k), y(static_cast<size_t>(m) * s.n);
      for (auto& v : x) v = nd(rng);
      for (auto& v : w) v = nd(rng) * 0.02f;
      gemm(threads, m, s.n, s.k, x.data(), w.data(), y.data());
      const double flops = 2.0 * m * s.n * s.k;
      const int inner = std::max(1, static_cast<int>(2e9 / flops / 10));  // ~0.1-0.2 s per timed repetition
      std::vector<double> t;
      for (int r = 0; r < reps; ++r) {
        const auto a = std::chrono::steady_clock::now();
        for (int i = 0; i < inner; ++i) gemm(threads, m, s.n, s.k, x.data(), w.data(), y.data());
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count() / inner);
      }
      std::sort(t.begin(), t.end());
      std::printf("{\"bench\":\"gemm_shootout\",\"backend\":\"%s\",\"threads\":%d,\"m\":%d,\"shape\":\"%s\",\"n\":%d,\"k\":%d,\"gflops\":%.1f}\n",
                  kName, threads, m, s.name, s.n, s.k, flops / t[t.size() / 2] / 1e9);
      std::fflush(stdout);
    }
  }
  return 0;
}
