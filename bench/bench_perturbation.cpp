// z generation and update-apply throughput on a large tensor, next to memory-bandwidth baselines
// measured in the same run over the same bytes (copy, in-place add, triad). Medians of repeated runs.
//
//   build/bin/bench_perturbation [--elements N] [--reps R] [--json FILE]
#include "bench_args.h"
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "pocketllm/common/tensor_ops.h"

using namespace pocketllm;

namespace {

template <class Fn>
double median_seconds(int reps, Fn&& fn) {
  std::vector<double> t;
  fn();  // warm-up: page faults, thread start
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 100'000'000;
  int reps = 7;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--elements" && i + 1 < argc) n = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--reps" && i + 1 < argc) reps = static_cast<int>(pocketllm::bench::int_arg("--reps", argv[++i], 1, 100000));
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_perturbation [--elements N] [--reps R] [--json FILE]\n");
      return 2;
    }
  }
  std::vector<float> a(n, 0.5f), b(n, 0.25f), c(n, 0.0f);
  const double gb = static_cast<double>(n) * 4 / 1e9;
  std::printf("tensor: %zu float32 elements (%.2f GB); median of %d runs; Rademacher path: %s "
              "(POCKETLLM_PERTURB=generic|avx2|avx512)\n\n",
              n, gb, reps, perturbation_path_name(perturbation_path()));
  std::printf("%-8s %-34s %10s %12s %10s\n", "threads", "operation", "ms", "G elem/s", "GB/s");
  std::string json = "{\"elements\":" + std::to_string(n) + ",\"path\":\"" + perturbation_path_name(perturbation_path()) +
                     "\",\"results\":[";
  bool first = true;
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    auto report = [&](const char* name, double secs, double bytes_moved) {
      std::printf("%-8d %-34s %10.2f %12.2f %10.1f\n", threads, name, secs * 1e3, static_cast<double>(n) / secs / 1e9,
                  bytes_moved / secs / 1e9);
      json += std::string(first ? "" : ",") + "{\"threads\":" + std::to_string(threads) + ",\"op\":\"" + name +
              "\",\"ms\":" + std::to_string(secs * 1e3) + "}";
      first = false;
      return secs;
    };
    const double copy = report("baseline copy (c=a)", median_seconds(reps, [&] {
      for_each_chunk(&pool, n, [&](size_t o, size_t len) { std::memcpy(c.data() + o, a.data() + o, len * 4); });
    }), 2 * gb * 1e9);
    const double add = report("baseline in-place add (a+=s)", median_seconds(reps, [&] {
      for_each_chunk(&pool, n, [&](size_t o, size_t len) {
        float* p = a.data() + o;
        for (size_t i = 0; i < len; ++i) p[i] += 1e-7f;
      });
    }), 2 * gb * 1e9);
    const double triad = report("baseline triad (c=a+s*b)", median_seconds(reps, [&] {
      for_each_chunk(&pool, n, [&](size_t o, size_t len) {
        const float* pa = a.data() + o;
        const float* pb = b.data() + o;
        float* pc = c.data() + o;
        for (size_t i = 0; i < len; ++i) pc[i] = pa[i] + 0.5f * pb[i];
      });
    }), 3 * gb * 1e9);
    const double fill = report("baseline fill (c=s), write only", median_seconds(reps, [&] {
      for_each_chunk(&pool, n, [&](size_t o, size_t len) { std::fill(c.data() + o, c.data() + o + len, 0.125f); });
    }), gb * 1e9);
    // The generator's own speed: each task writes its z chunk into a buffer that stays in L2.
    std::vector<std::vector<float>> scratch(static_cast<size_t>(threads), std::vector<float>(kTensorOpChunk));
    std::vector<float*> scratch_of_task((n + kTensorOpChunk - 1) / kTensorOpChunk);
    const double gen_cache = report("rademacher generate z (L2-resident)", median_seconds(reps, [&] {
      thread_local int slot = -1;
      static std::atomic<int> next_slot{0};
      for_each_chunk(&pool, n, [&](size_t o, size_t len) {
        if (slot < 0) slot = next_slot++ % threads;
        generate_z(Distribution::kRademacher, 42, 7, o, len, scratch[static_cast<size_t>(slot)].data());
      });
    }), gb * 1e9);
    const double gen_r = report("rademacher generate z", median_seconds(reps, [&] {
      fill_z(&pool, Distribution::kRademacher, 42, 7, c.data(), n);
    }), gb * 1e9);
    const double apply_r = report("rademacher apply update (in place)", median_seconds(reps, [&] {
      apply_update_entry(&pool, Distribution::kRademacher, {42, 1e-6f}, 7, a.data(), n);
    }), 2 * gb * 1e9);
    const double perturb_copy = report("rademacher perturb copy (c=a+ez)", median_seconds(reps, [&] {
      perturb_tensor_copy(&pool, Distribution::kRademacher, 42, 7, 1e-3f, a.data(), c.data(), n);
    }), 2 * gb * 1e9);
    const double gen_g = report("gaussian generate z", median_seconds(reps, [&] {
      fill_z(&pool, Distribution::kGaussian, 42, 7, c.data(), n);
    }), gb * 1e9);
    const double apply_g = report("gaussian apply update (in place)", median_seconds(reps, [&] {
      apply_update_entry(&pool, Distribution::kGaussian, {42, 1e-6f}, 7, a.data(), n);
    }), 2 * gb * 1e9);
    std::printf("  ratios: rademacher apply / in-place add = %.2f, / triad = %.2f, / copy = %.2f; "
                "perturb-copy / copy = %.2f; gaussian apply / in-place add = %.2f\n",
                apply_r / add, apply_r / triad, apply_r / copy, perturb_copy / copy, apply_g / add);
    std::printf("  rademacher generation: %.2f G elem/s per thread into DRAM (fill baseline %.2f), %.2f G elem/s per "
                "thread L2-resident\n\n",
                static_cast<double>(n) / gen_r / 1e9 / threads, static_cast<double>(n) / fill / 1e9 / threads,
                static_cast<double>(n) / gen_cache / 1e9 / threads);
    (void)gen_g;
  }
  json += "]}";
  if (!json_path.empty()) {
    FILE* f = std::fopen(json_path.c_str(), "w");
    if (f) {
      std::fputs(json.c_str(), f);
      std::fclose(f);
    }
  }
  // Keep the compiler from discarding the work.
  double checksum = 0;
  for (size_t i = 0; i < n; i += 4096) checksum += a[i] + c[i];
  std::printf("(checksum %g)\n", checksum);
  return 0;
}
