// The golden vectors of docs/perturbation.md, produced by scripts/perturbation_reference.py (an
// independent Python implementation of the spec). This test runs in every build flavour: native,
// portable, -O0 and the aarch64 cross-build under qemu (scripts/check-targets.sh).
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "test_paths.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/philox.h"
#include "pocketllm/common/tensor_ops.h"

using namespace pocketllm;

namespace {

nlohmann::json load_golden() {
  std::ifstream in(test::fixtures_dir() + "/perturbation_golden.json");
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

uint64_t parse_hex64(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 16); }

void check_golden(const nlohmann::json& golden, ThreadPool* pool) {
  for (const auto& v : golden["vectors"]) {
    Distribution dist;
    REQUIRE(parse_distribution(v["distribution"].get<std::string>(), &dist));
    const uint64_t seed = parse_hex64(v["seed"]);
    const std::string name = v["tensor"];
    const uint64_t start = v["start"];
    INFO(v["distribution"].get<std::string>() << " seed " << v["seed"].get<std::string>() << " tensor " << name);
    CHECK(tensor_tag(name) == parse_hex64(v["tag"]));
    const auto& first = v["first"];
    std::vector<float> z(first.size());
    generate_z(dist, seed, tensor_tag(name), start, z.size(), z.data());
    for (size_t i = 0; i < z.size(); ++i) {
      const float want = static_cast<float>(std::strtod(first[i].get<std::string>().c_str(), nullptr));
      INFO("element " << start + i);
      CHECK(z[i] == want);
    }
    // The hash over 2^20 elements, generated through the threaded path in odd-sized pieces.
    const size_t n = v["count_hashed"];
    std::vector<float> all(n);
    size_t done = 0, piece = 1;
    while (done < n) {
      const size_t len = std::min(n - done, piece);
      generate_z(dist, seed, tensor_tag(name), start + done, len, all.data() + done);
      done += len;
      piece = piece * 3 + 7;
    }
    CHECK(fnv1a64(all.data(), n * sizeof(float)) == parse_hex64(v["fnv1a64_of_f32le"]));
    if (start == 0) {
      std::vector<float> threaded(n);
      fill_z(pool, dist, seed, tensor_tag(name), threaded.data(), n);
      CHECK(fnv1a64(threaded.data(), n * sizeof(float)) == parse_hex64(v["fnv1a64_of_f32le"]));
    }
  }
}

}  // namespace

// Every vector path of the perturbation core this CPU has (the generic one always; AVX2 and AVX-512 where
// the CPU has them) against the same golden vectors.
TEST_CASE("z matches the golden vectors of the reference implementation", "[core][golden]") {
  const auto golden = load_golden();
  REQUIRE(golden["spec_version"].get<int>() == kPerturbationSpecVersion);
  REQUIRE(golden["vectors"].size() >= 8);
  ThreadPool pool(2);
  const PerturbationPath chosen = perturbation_path();
  for (PerturbationPath path : {PerturbationPath::kGeneric, PerturbationPath::kAvx2, PerturbationPath::kAvx512}) {
    if (!set_perturbation_path(path)) {
      WARN("perturbation path " << perturbation_path_name(path) << ": not on this CPU, not checked");
      continue;
    }
    INFO("perturbation path " << perturbation_path_name(path));
    check_golden(golden, &pool);
  }
  REQUIRE(set_perturbation_path(chosen));
}
