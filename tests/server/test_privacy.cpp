// Differential privacy on the server: the task's privacy settings, the L2 bound at submission, Poisson
// sampling, the noisy sums over a fixed denominator, and a budget that no round may exceed, also after a
// restore from the store.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "pocketllm/privacy/accountant.h"
#include "pocketllm/server/rounds.h"
#include "pocketllm/server/task_spec.h"

using namespace pocketllm;
using namespace pocketllm::server;
using nlohmann::json;

namespace {

json private_task(json privacy) {
  return {{"id", "p"}, {"base_model_id", std::string(64, 'a')}, {"tau", 2}, {"privacy", std::move(privacy)}};
}

json central(double q = 1.0) {
  return {{"mode", "central"}, {"clip_norm", 1.0},     {"noise_multiplier", 2.0},         {"sampling_rate", q},
          {"target_epsilon", 3.0}, {"delta", 1e-5}, {"expected_participants", 4.0}};
}

// A submission computed from the task's current version.
Submission from(const TaskRounds& t, const std::string& device, std::vector<float> coeffs) {
  Submission s;
  s.device = device;
  s.coeffs = std::move(coeffs);
  s.base_version = t.version();
  return s;
}

RoundPolicy private_policy(double q = 1.0) {
  auto spec = parse_task_spec(private_task(central(q)));
  REQUIRE(spec.is_ok());
  RoundPolicy p = spec->policy;
  p.duration_ms = 1000;
  p.min_submissions = 1;
  p.max_extensions = 0;
  return p;
}

}  // namespace

TEST_CASE("privacy: a private task is validated at creation, with a clear error for each bad setting", "[server][privacy]") {
  auto ok = parse_task_spec(private_task(central()));
  REQUIRE(ok.is_ok());
  CHECK(ok->policy.privacy.mode == DpMode::kCentral);
  CHECK(ok->policy.privacy.denominator == 4.0);
  // The spec round-trips through its JSON (what the store keeps), noise multiplier included.
  auto again = parse_task_spec(task_spec_to_json(ok.value()));
  REQUIRE(again.is_ok());
  CHECK(again->policy.privacy.noise_multiplier == 2.0);
  CHECK(training_spec(again.value()).privacy.mode == "central");

  auto refused = [](json task, const std::string& words) {
    auto s = parse_task_spec(task);
    INFO(task.dump());
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().message().find(words) != std::string::npos);
  };
  json p = central();
  p["mode"] = "maybe";
  refused(private_task(p), "privacy.mode");
  p = central();
  p["delta"] = 0.5;  // absurd: protects nobody
  refused(private_task(p), "privacy.delta");
  p = central();
  p["target_epsilon"] = 0;
  refused(private_task(p), "privacy.target_epsilon");
  p = central();
  p["target_epsilon"] = 1e9;
  refused(private_task(p), "privacy.target_epsilon");
  p = central();
  p["noise_multiplier"] = 0.05;  // a single round already costs more than epsilon 3
  refused(private_task(p), "not even one round fits");
  p = central();
  p.erase("expected_participants");
  refused(private_task(p), "expected_participants");
  p = central();
  p.erase("clip_norm");
  refused(private_task(p), "clip_norm");
  p = central();
  p["clip_norm"] = -1;
  refused(private_task(p), "clip_norm");
  p = central();
  p["sampling_rate"] = 1e-300;  // below the range: its bounds in the message as they are, not "0.000000"
  refused(private_task(p), "privacy.sampling_rate: must be in [1e-09, 1]");
  p = central();
  p["surprise"] = 1;
  refused(private_task(p), "unknown field");
  p = central();
  p.erase("noise_multiplier");
  refused(private_task(p), "planned_rounds");
  json median = private_task(central());
  median["strategy"] = "median";
  refused(median, "cannot be combined with differential privacy");
  json trimmed = private_task(central());
  trimmed["strategy"] = "trimmed_mean";
  refused(trimmed, "cannot be combined with differential privacy");

  // Calibrated: the noise multiplier that makes planned_rounds fit the target exactly.
  p = central();
  p.erase("noise_multiplier");
  p["planned_rounds"] = 50;
  p["sampling_rate"] = 0.05;
  auto calibrated = parse_task_spec(private_task(p));
  REQUIRE(calibrated.is_ok());
  const double sigma = calibrated->policy.privacy.noise_multiplier;
  CHECK(privacy::epsilon_spent(0.05, sigma, 50, 1e-5).epsilon <= 3.0);
  CHECK(privacy::epsilon_spent(0.05, sigma, 51, 1e-5).epsilon > 3.0 - 0.1);
}

TEST_CASE("privacy: a submission beyond the clip norm, non-finite or from an unsampled device is refused, state unchanged",
          "[server][privacy]") {
  TaskRounds task(7, private_policy(), 99);
  REQUIRE(task.open_round(0).is_ok());
  protocol::ErrorCode code{};
  auto big = task.submit(1, {"a", {0.8f, 0.8f}, 1}, &code);  // norm 1.13 > C = 1
  REQUIRE_FALSE(big.is_ok());
  CHECK(code == protocol::ErrorCode::kInvalidSubmission);
  CHECK(big.status().message().find("clip norm") != std::string::npos);
  CHECK(task.round(1)->submission_count() == 0);
  auto nan = task.submit(1, {"a", {std::numeric_limits<float>::quiet_NaN(), 0.0f}, 1}, &code);
  REQUIRE_FALSE(nan.is_ok());
  CHECK(code == protocol::ErrorCode::kNonFinite);
  CHECK(task.submit(1, {"a", {0.6f, 0.8f}, 1}).is_ok());  // norm 1 exactly: accepted
  CHECK(task.round(1)->submission_count() == 1);

  // Poisson sampling at q = 0.3: about 30 % of device-round pairs, decided by the secret key.
  TaskRounds sampled(7, private_policy(0.3), 12345);
  int in = 0, total = 0;
  for (uint64_t r = 1; r <= 20; ++r)
    for (int d = 0; d < 200; ++d) {
      in += sampled.sampled(r, "d" + std::to_string(d)) ? 1 : 0;
      ++total;
    }
  const double rate = static_cast<double>(in) / total, sd = std::sqrt(0.3 * 0.7 / total);
  CHECK(std::fabs(rate - 0.3) < 5 * sd);
  TaskRounds other_key(7, private_policy(0.3), 54321);
  int differ = 0;
  for (int d = 0; d < 200; ++d) differ += sampled.sampled(1, "d" + std::to_string(d)) != other_key.sampled(1, "d" + std::to_string(d));
  CHECK(differ > 40);  // another key, another sample
  REQUIRE(sampled.open_round(0).is_ok());
  std::string outsider;
  for (int d = 0; outsider.empty(); ++d)
    if (!sampled.sampled(1, "d" + std::to_string(d))) outsider = "d" + std::to_string(d);
  auto refused = sampled.submit(1, {outsider, {0.1f, 0.1f}, 1}, &code);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(code == protocol::ErrorCode::kNotSampled);
}

TEST_CASE("privacy: central rounds add N(0, (sigma C)^2) to each per-seed sum and divide by the public denominator",
          "[server][privacy]") {
  // A fixed noise draw: the arithmetic exactly.
  TaskRounds task(7, private_policy(), 1);
  task.set_noise_source([] { return 0.5; });
  REQUIRE(task.open_round(0).is_ok());
  REQUIRE(task.submit(1, {"a", {0.6f, 0.0f}, 10}).is_ok());  // example counts do not weigh in: uniform weights
  REQUIRE(task.submit(1, {"b", {0.2f, -0.4f}, 1}).is_ok());
  auto applied = task.tick(1000);
  REQUIRE(applied.is_ok());
  REQUIRE(applied->size() == 2);
  CHECK((*applied)[0].coeff == Approx((0.8 + 2.0 * 1.0 * 0.5) / 4.0));
  CHECK((*applied)[1].coeff == Approx((-0.4 + 2.0 * 1.0 * 0.5) / 4.0));

  // The OS's noise: over many rounds the coefficient's spread is sigma C / denominator = 0.5.
  RoundPolicy p = private_policy();
  p.privacy.target_epsilon = 100;  // room for the rounds of this statistic
  p.privacy.noise_multiplier = 20;
  TaskRounds noisy(7, p, 1);
  double sum = 0, sum2 = 0;
  const int rounds = 400;
  for (int r = 1; r <= rounds; ++r) {
    REQUIRE(noisy.open_round(r * 2000).is_ok());
    auto s = noisy.submit(static_cast<uint64_t>(r), from(noisy, "a", {0.0f, 0.0f}));
    INFO("round " << r << ": " << s.status().message());
    REQUIRE(s.is_ok());
    auto a = noisy.tick(r * 2000 + 1000);
    REQUIRE(a.is_ok());
    REQUIRE(a->size() == 2);
    for (const auto& e : a.value()) {
      sum += e.coeff;
      sum2 += static_cast<double>(e.coeff) * e.coeff;
    }
  }
  const double n = 2.0 * rounds, mean = sum / n, sd = std::sqrt(sum2 / n - mean * mean);
  const double want = 20.0 * 1.0 / 4.0;
  CHECK(std::fabs(mean) < 5 * want / std::sqrt(n));
  CHECK(std::fabs(sd - want) < 0.13 * want);  // ~5 standard errors of the spread over 800 draws (p ~ 1e-7)
}

TEST_CASE("privacy: no round opens past the budget, and a restore from the stored rounds keeps it spent", "[server][privacy]") {
  RoundPolicy p = private_policy();
  p.privacy.noise_multiplier = 5;  // a few rounds fit in epsilon 3
  const uint64_t fit = privacy::max_rounds(p.privacy.target_epsilon, p.privacy.sampling_rate, p.privacy.noise_multiplier, p.privacy.delta);
  REQUIRE(fit >= 2);
  REQUIRE(fit < 50);
  TaskRounds task(7, p, 1);
  task.set_noise_source([] { return 0.0; });
  for (uint64_t r = 1; r <= fit; ++r) {
    auto opened = task.open_round(static_cast<int64_t>(r) * 2000);
    REQUIRE(opened.is_ok());
    REQUIRE(task.submit(r, from(task, "a", {0.1f, 0.1f})).is_ok());
    REQUIRE(task.tick(static_cast<int64_t>(r) * 2000 + 1000).is_ok());
    REQUIRE(task.round(r)->state == RoundState::kApplied);
  }
  const PrivacyStatus s = task.privacy();
  CHECK(s.rounds_applied == fit);
  CHECK(s.epsilon_spent <= p.privacy.target_epsilon);
  CHECK(s.exhausted);
  CHECK(s.rounds_left == 0);
  auto refused = task.open_round(1000000);
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().code() == StatusCode::kResourceExhausted);
  CHECK(refused.status().message().find("privacy budget") != std::string::npos);
  // An abandoned round releases nothing and costs nothing: a task one round short of its budget
  // still opens rounds after abandoning some.
  // What the store gives back after a restart: the same rounds, the same refusal.
  TaskRounds restored(7, p, 1);
  REQUIRE(restored.restore(task.rounds(), task.log()).is_ok());
  CHECK(restored.privacy().rounds_applied == fit);
  CHECK(restored.open_round(2000000).status().code() == StatusCode::kResourceExhausted);
}
