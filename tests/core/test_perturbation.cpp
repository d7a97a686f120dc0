#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "pocketllm/common/cpu_features.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/tensor_ops.h"

using namespace pocketllm;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

const Distribution kBoth[] = {Distribution::kRademacher, Distribution::kGaussian};

}  // namespace

TEST_CASE("z does not depend on how a range is split, nor on the thread count", "[core][perturbation]") {
  const size_t n = 3 * kTensorOpChunk + 1234;  // not a multiple of any block or SIMD width
  const uint64_t seed = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
  INFO("seed " << seed);
  for (Distribution dist : kBoth) {
    std::vector<float> whole(n);
    generate_z(dist, seed, tensor_tag("w"), 0, n, whole.data());

    std::mt19937 rng(static_cast<uint32_t>(seed));
    std::vector<float> pieces(n);
    size_t done = 0;
    while (done < n) {
      const size_t len = std::min<size_t>(n - done, 1 + rng() % 777);
      generate_z(dist, seed, tensor_tag("w"), done, len, pieces.data() + done);
      done += len;
    }
    CHECK(same_bits(whole, pieces));

    for (int threads : {1, 2, 3, 7}) {
      ThreadPool pool(threads);
      std::vector<float> out(n);
      fill_z(&pool, dist, seed, tensor_tag("w"), out.data(), n);
      INFO("threads " << threads);
      CHECK(same_bits(whole, out));
    }
  }
}

TEST_CASE("perturbing adds c*z element by element, in place or out of place", "[core][perturbation]") {
  const size_t n = 100003;
  const float c = 1e-3f;
  ThreadPool pool(2);
  for (Distribution dist : kBoth) {
    const auto theta = random_floats(n, 7);
    std::vector<float> z(n);
    generate_z(dist, 42, tensor_tag("t"), 0, n, z.data());
    std::vector<float> want(n);
    for (size_t i = 0; i < n; ++i) {
      volatile float cz = c * z[i];  // volatile: one rounding for the product, one for the sum
      want[i] = theta[i] + cz;
    }
    std::vector<float> in_place = theta;
    perturb_tensor(&pool, dist, 42, tensor_tag("t"), c, in_place.data(), n);
    CHECK(same_bits(in_place, want));
    std::vector<float> copy(n);
    perturb_tensor_copy(nullptr, dist, 42, tensor_tag("t"), c, theta.data(), copy.data(), n);
    CHECK(same_bits(copy, want));
    // Rademacher: theta +- c exactly.
    if (dist == Distribution::kRademacher) {
      for (size_t i = 0; i < n; i += 997) CHECK(in_place[i] == (z[i] > 0 ? theta[i] + c : theta[i] - c));
    }
  }
}

TEST_CASE("applying entries in one pass equals applying them one at a time", "[core][perturbation]") {
  const size_t n = 2 * kTensorOpChunk + 77;
  std::vector<UpdateEntry> entries;
  std::mt19937_64 rng(99);
  for (int i = 0; i < 150; ++i) entries.push_back({rng(), static_cast<float>((rng() % 2001) - 1000) * 1e-6f});
  ThreadPool pool(2);
  for (Distribution dist : kBoth) {
    auto one_by_one = random_floats(n, 3);
    auto batched = one_by_one;
    for (const auto& e : entries) apply_update_entry(nullptr, dist, e, tensor_tag("layer.weight"), one_by_one.data(), n);
    apply_update_entries(&pool, dist, entries.data(), entries.size(), tensor_tag("layer.weight"), batched.data(), n);
    CHECK(same_bits(one_by_one, batched));
  }
}

TEST_CASE("perturbing by +eps then -eps is not assumed to restore theta", "[core][perturbation]") {
  // Documents why pocketllm perturbs out of place: in float32, (theta + eps) - eps != theta in general.
  auto theta = random_floats(4096, 5);
  auto p = theta;
  perturb_tensor(nullptr, Distribution::kRademacher, 1, 2, 1e-3f, p.data(), p.size());
  perturb_tensor(nullptr, Distribution::kRademacher, 1, 2, -1e-3f, p.data(), p.size());
  size_t differ = 0;
  for (size_t i = 0; i < p.size(); ++i) differ += p[i] != theta[i];
  CHECK(differ > 0);
}

TEST_CASE("every vector path of the perturbation core gives the generic path's bytes", "[core][perturbation]") {
  // Ranges that start and end inside blocks, span batches of 16 blocks, and cross Rademacher block index 2^32
  // (the counter's high word changes inside a batch), for both distributions.
  struct Range {
    uint64_t start;
    size_t count;
  };
  const uint64_t wrap = (uint64_t{1} << 32) * kRademacherBlock;
  const Range ranges[] = {{0, 128},          {0, 127},          {5, 300},         {128, 16 * 128},
                          {77, 40 * 128 + 9}, {wrap - 5 * 128 - 3, 30 * 128}, {wrap - 16 * 128, 16 * 128 + 1},
                          {3, 100003}};
  const auto theta = random_floats(100003 + 256, 11);
  const PerturbationPath chosen = perturbation_path();
#if defined(__x86_64__)
  // The kernels are compiled into every x86-64 build: a CPU with the instructions must get them.
  if (cpu_features().avx2) CHECK(perturbation_path_supported(PerturbationPath::kAvx2));
  if (cpu_features().avx512f) CHECK(perturbation_path_supported(PerturbationPath::kAvx512));
#endif
  int checked = 0;
  for (PerturbationPath path : {PerturbationPath::kAvx2, PerturbationPath::kAvx512}) {
    if (!perturbation_path_supported(path)) {
      WARN("perturbation path " << perturbation_path_name(path) << ": not on this CPU, not checked");
      continue;
    }
    ++checked;
    for (const Range& r : ranges) {
      for (Distribution dist : kBoth) {
        INFO(perturbation_path_name(path) << " " << distribution_name(dist) << " start " << r.start << " count " << r.count);
        const float c = -3.0e-3f;
        std::vector<float> z_want(r.count), add_want(r.count), z_got(r.count), add_got(r.count);
        REQUIRE(set_perturbation_path(PerturbationPath::kGeneric));
        generate_z(dist, 0x1234'5678'9abc'def0ull, tensor_tag("w"), r.start, r.count, z_want.data());
        add_scaled_z(dist, 0x1234'5678'9abc'def0ull, tensor_tag("w"), r.start, r.count, c,
                     theta.data(), add_want.data());
        REQUIRE(set_perturbation_path(path));
        generate_z(dist, 0x1234'5678'9abc'def0ull, tensor_tag("w"), r.start, r.count, z_got.data());
        add_scaled_z(dist, 0x1234'5678'9abc'def0ull, tensor_tag("w"), r.start, r.count, c,
                     theta.data(), add_got.data());
        CHECK(same_bits(z_want, z_got));
        CHECK(same_bits(add_want, add_got));
        std::vector<float> in_place(theta.begin(), theta.begin() + static_cast<std::ptrdiff_t>(r.count));
        add_scaled_z(dist, 0x1234'5678'9abc'def0ull, tensor_tag("w"), r.start, r.count, c,
                     in_place.data(), in_place.data());
        CHECK(same_bits(add_want, in_place));
        // Both signs in every range checked (not a constant stream).
        CHECK(std::count_if(z_got.begin(), z_got.end(), [](float z) { return z < 0.0f; }) > 0);
        CHECK(std::count_if(z_got.begin(), z_got.end(), [](float z) { return z > 0.0f; }) > 0);
      }
    }
  }
  REQUIRE(set_perturbation_path(chosen));
  INFO("vector paths checked: " << checked);
  SUCCEED();
}
