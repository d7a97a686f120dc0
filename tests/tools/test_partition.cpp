// Splitting a dataset across simulated devices: every example exactly once, the same split from the same
// seed (the simulator and separate device processes must agree), label skew under Dirichlet.
#include <catch2/catch.hpp>

#include <set>

#include "pocketllm/sim/partition.h"

using namespace pocketllm;

namespace {
std::vector<size_t> iota(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}
}  // namespace

TEST_CASE("partition: iid and contiguous shards cover every example once, deterministically", "[tools]") {
  const auto all = iota(103);
  for (const char* mode : {"iid", "contiguous"}) {
    auto spec = parse_partition(mode, 7);
    REQUIRE(spec.is_ok());
    auto a = partition_examples(all, {}, 5, spec.value());
    auto b = partition_examples(all, {}, 5, spec.value());
    REQUIRE(a.is_ok());
    CHECK(a.value() == b.value());
    std::multiset<size_t> seen;
    for (const auto& shard : a.value()) {
      CHECK(shard.size() >= 20);
      seen.insert(shard.begin(), shard.end());
    }
    CHECK(seen == std::multiset<size_t>(all.begin(), all.end()));
  }
  auto other = partition_examples(all, {}, 5, parse_partition("iid", 8).value());
  CHECK(other.value() != partition_examples(all, {}, 5, parse_partition("iid", 7).value()).value());
}

TEST_CASE("partition: dirichlet skews labels and rejects bad input", "[tools]") {
  const auto all = iota(400);
  std::vector<int> labels(400);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int>(i % 4);
  auto spec = parse_partition("dirichlet:0.1", 3);
  REQUIRE(spec.is_ok());
  CHECK(spec->alpha == Approx(0.1));
  auto shards = partition_examples(all, labels, 8, spec.value());
  REQUIRE(shards.is_ok());
  size_t total = 0;
  int skewed = 0;
  for (const auto& s : shards.value()) {
    total += s.size();
    std::set<int> kinds;
    for (size_t i : s) kinds.insert(labels[i]);
    skewed += !s.empty() && kinds.size() < 4;
  }
  CHECK(total == all.size());
  CHECK(skewed >= 1);  // with alpha 0.1 some device misses a label
  CHECK_FALSE(parse_partition("dirichlet:-1", 0).is_ok());
  CHECK_FALSE(parse_partition("random", 0).is_ok());
  CHECK_FALSE(partition_examples(all, {}, 8, spec.value()).is_ok());  // dirichlet needs labels
}
