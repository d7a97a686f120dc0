// The device side of a private task: what leaves the device is clipped (and noised in local mode).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "pocketllm/federation/round_participant.h"

using namespace pocketllm;

TEST_CASE("privacy: devices clip their tau-vector to the bound, and add their own noise in local mode", "[privacy][federation]") {
  protocol::DevicePrivacy central;
  central.mode = "central";
  central.clip_norm = 0.5;
  std::vector<float> v = {3.0f, 4.0f};  // norm 5
  privatize(&v, central);
  CHECK(std::sqrt(v[0] * v[0] + v[1] * v[1]) <= 0.5);
  CHECK(v[0] / v[1] == Approx(0.75));  // the direction is kept
  std::vector<float> small = {0.1f, 0.2f};
  privatize(&small, central);
  CHECK(small == std::vector<float>{0.1f, 0.2f});  // within the bound: untouched
  protocol::DevicePrivacy local = central;
  local.mode = "local";
  local.noise_multiplier = 4.0;  // noise sd 2
  double sum2 = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> zero = {0.0f};
    privatize(&zero, local);
    sum2 += static_cast<double>(zero[0]) * zero[0];
  }
  CHECK(std::sqrt(sum2 / n) == Approx(2.0).epsilon(0.08));
}
