#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

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
