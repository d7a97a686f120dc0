// Decode-shaped products with block-quantized weights: one activation row times an N x K matrix of each
// block type (random blocks, finite scales), one thread, the direct kernel pocketllm picks for the type
// on this CPU — against, in the same run, the per-row path (the row dequantized into scratch, then a float
// dot product: what every type but Q8_0/Q4_0 took before its direct kernel). Prints one JSON line per type:
// median ns per weight of both, the ratio, and weight bytes read per second by the kernel; where the CPU has
// the packed int8 kernels (AVX-512 VNNI: Q8_0, Q4_0, Q4_K, Q5_K, Q6_K; arm64 i8mm / dotprod: Q8_0, Q4_0) also those, on the repacked copy,
// which is what the engine runs for these types there.
//   bench_quant_dot [--rows N] [--cols K] [--reps R]
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels_kquant.h"
#include "kernels_quant.h"
#include "kernels_quant_packed.h"
#include "pocketllm/common/quant.h"

using namespace pocketllm;

namespace {

// Byte offsets of a block's f16 scales (docs/gguf.md §4).
std::vector<size_t> scale_offsets(DType t) {
  switch (t) {
    case DType::kQ8_0: case DType::kQ4_0: case DType::kQ5_0: return {0};
    case DType::kQ4_1: case DType::kQ5_1: case DType::kQ4_K: case DType::kQ5_K: return {0, 2};
    case DType::kQ2_K: return {80, 82};
    case DType::kQ3_K: return {108};
    case DType::kQ6_K: return {208};
    default: return {};
  }
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 3072, k = 768;
  int reps = 200;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> long {
      if (i + 1 >= argc) std::exit((std::fprintf(stderr, "%s needs a value\n", a.c_str()), 2));
      char* end = nullptr;
      const long v = std::strtol(argv[++i], &end, 10);
      if (*end || v <= 0 || v > 1 << 20) std::exit((std::fprintf(stderr, "%s must be a positive integer up to 2^20, got %s\n", a.c_str(), argv[i]), 2));
      return v;
    };
    if (a == "--rows") n = static_cast<size_t>(next());
    else if (a == "--cols") k = static_cast<size_t>(next());
    else if (a == "--reps") reps = static_cast<int>(next());
    else {
      std::printf("usage: bench_quant_dot [--rows N] [--cols K (a multiple of 256)] [--reps R]\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (k % 256) return std::fprintf(stderr, "--cols must be a multiple of 256\n"), 2;
  if (n * k > (size_t{1} << 26)) return std::fprintf(stderr, "--rows times --cols must be at most 2^26\n"), 2;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(k), y(n);
  for (auto& v : x) v = nd(rng);
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ2_K, DType::kQ3_K, DType::kQ4_K,
                  DType::kQ5_K, DType::kQ6_K}) {
    std::vector<uint8_t> q(dtype_bytes(t, n * k));
    for (auto& b : q) b = static_cast<uint8_t>(rng());
    std::uniform_real_distribution<float> scale(-0.02f, 0.02f);
    for (size_t at = 0; at < q.size(); at += dtype_block_bytes(t))
      for (size_t off : scale_offsets(t)) {
        const uint16_t h = f32_to_f16(scale(rng));
        std::memcpy(&q[at + off], &h, 2);
      }
    Weight w;
    w.name = "w";
    w.shape = {static_cast<int64_t>(n), static_cast<int64_t>(k)};
    w.dtype = t;
    w.data = q.data();
    const uint64_t row_bytes = dtype_bytes(t, k);
    std::vector<float> tmp(k), y2(n);
    auto per_row = [&] {  // the row into scratch, then 8 float lanes (as the engine's fallback)
      for (size_t j = 0; j < n; ++j) {
        convert_to_f32(t, q.data() + j * row_bytes, k, tmp.data());
        float acc[8] = {};
        for (size_t i = 0; i < k; i += 8)
          for (int l = 0; l < 8; ++l) acc[l] += tmp[i + l] * x[i + l];
        float s = 0;
        for (float a : acc) s += a;
        y2[j] = s;
      }
    };
    auto portable = [&] {  // the portable kernel where the type has one (arm64's decode path)
      for (size_t j = 0; j < n; ++j) y2[j] = kquant::dot_portable(t, q.data() + j * row_bytes, x.data(), k / dtype_block_size(t));
    };
    const bool has_portable = kquant::has_portable_kernel(t);
    WeightStore packed_store;  // the engine's repacked copy where the packed kernels take the type
    packed_store.add_view("w", w.shape, t, q.data());
    const bool has_packed = pack_quantized_weights(&packed_store, nullptr) == 1;
    std::vector<float> yp(n);
    std::vector<double> ns, base, port, packed;
    for (int r = 0; r < reps; ++r) {  // alternating, so all see the same machine
      auto t0 = std::chrono::steady_clock::now();
      linear_quantized(nullptr, x.data(), 1, k, w, y.data());
      ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
      t0 = std::chrono::steady_clock::now();
      per_row();
      base.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
      if (has_packed) {
        t0 = std::chrono::steady_clock::now();
        linear_packed(nullptr, x.data(), 1, k, *packed_store.find("w"), yp.data());
        packed.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
      }
      if (!has_portable) continue;
      t0 = std::chrono::steady_clock::now();
      portable();
      port.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
    }
    per_row();  // y2 = the per-row products again, for the comparison below
    std::sort(ns.begin(), ns.end());
    std::sort(base.begin(), base.end());
    const double med = ns[ns.size() / 2], med_base = base[base.size() / 2];
    double worst = 0;  // the two paths compute the same products
    for (size_t j = 0; j < n; ++j) worst = std::max(worst, static_cast<double>(std::fabs(y[j] - y2[j]) / (std::fabs(y2[j]) + 1.0f)));
    std::string port_field;
    if (has_portable) {
      std::sort(port.begin(), port.end());
      const double med_port = port[port.size() / 2];
      char buf[96];
      std::snprintf(buf, sizeof buf, ",\"portable_ns_per_weight\":%.3f,\"portable_speedup\":%.2f", med_port / static_cast<double>(n * k),
                    med_base / med_port);
      port_field = buf;
    }
    if (has_packed) {  // 8-bit activations: compared with the per-row float products like the direct kernel
      std::sort(packed.begin(), packed.end());
      double worst_packed = 0;
      for (size_t j = 0; j < n; ++j)
        worst_packed = std::max(worst_packed, static_cast<double>(std::fabs(yp[j] - y2[j]) / (std::fabs(y2[j]) + 1.0f)));
      char buf[160];
      std::snprintf(buf, sizeof buf, ",\"packed_ns_per_weight\":%.3f,\"packed_vs_direct\":%.2f,\"packed_max_rel_diff\":%.1e",
                    packed[packed.size() / 2] / static_cast<double>(n * k), med / packed[packed.size() / 2], worst_packed);
      port_field += buf;
    }
    std::printf("{\"bench\":\"quant_dot\",\"type\":\"%s\",\"rows\":%zu,\"cols\":%zu,\"ns_per_weight\":%.3f,"
                "\"per_row_ns_per_weight\":%.3f,\"speedup\":%.2f%s,\"weight_gb_per_s\":%.2f,\"max_rel_diff\":%.1e}\n",
                dtype_name(t), n, k, med / static_cast<double>(n * k), med_base / static_cast<double>(n * k), med_base / med,
                port_field.c_str(), static_cast<double>(q.size()) / med, worst);
  }
  return 0;
}
