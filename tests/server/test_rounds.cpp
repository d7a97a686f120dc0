#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "pocketllm/server/rounds.h"

using namespace pocketllm;
using namespace pocketllm::server;

namespace {
RoundPolicy policy(uint32_t tau = 3) {
  RoundPolicy p;
  p.tau = tau;
  p.duration_ms = 1000;
  p.min_submissions = 2;
  p.max_extensions = 1;
  return p;
}
}  // namespace

TEST_CASE("a round applies the weighted mean of its submissions as tau log entries", "[server][rounds]") {
  TaskRounds task(0xabc, policy());
  auto r = task.open_round(0);
  REQUIRE(r.is_ok());
  CHECK(r->seeds.size() == 3);
  CHECK(r->seeds[0] == TaskRounds::round_seed(0xabc, 1, 0));
  CHECK(r->seeds[0] != r->seeds[1]);
  CHECK(task.submit(1, {"a", {1.0f, 2.0f, 3.0f}, 1}).value() == SubmitOutcome::kAccepted);
  CHECK(task.submit(1, {"b", {3.0f, 2.0f, 1.0f}, 3}).value() == SubmitOutcome::kAccepted);
  CHECK(task.tick(999).value().empty());  // before the deadline, below no goal
  auto applied = task.tick(1000);
  REQUIRE(applied.is_ok());
  REQUIRE(applied->size() == 3);
  CHECK((*applied)[0].seed == r->seeds[0]);
  CHECK((*applied)[0].coeff == Approx((1.0 + 9.0) / 4));
  CHECK(task.version() == 3);
  CHECK(task.round(1)->state == RoundState::kApplied);
  auto r2 = task.open_round(1500);
  REQUIRE(r2.is_ok());
  CHECK(r2->base_version == 3);
  CHECK(r2->seeds[0] == TaskRounds::round_seed(0xabc, 2, 0));
}

TEST_CASE("resubmissions are idempotent, late and malformed ones are refused", "[server][rounds]") {
  TaskRounds task(1, policy(2));
  REQUIRE(task.open_round(0).is_ok());
  CHECK(task.submit(1, {"a", {0.5f, 0.25f}, 2}).value() == SubmitOutcome::kAccepted);
  CHECK(task.submit(1, {"a", {0.5f, 0.25f}, 2}).value() == SubmitOutcome::kDuplicate);
  CHECK(task.submit(1, {"a", {0.5f, 0.5f}, 2}).status().code() == StatusCode::kMismatch);
  CHECK(task.submit(1, {"b", {0.5f}, 2}).status().code() == StatusCode::kInvalidArgument);
  CHECK(task.submit(1, {"b", {std::nanf(""), 0.0f}, 2}).status().code() == StatusCode::kInvalidArgument);
  CHECK(task.submit(1, {"b", {0.1f, 0.1f}, 0}).status().code() == StatusCode::kInvalidArgument);
  CHECK(task.submit(7, {"b", {0.1f, 0.1f}, 1}).status().code() == StatusCode::kNotFound);
  CHECK(task.submit(1, {"b", {0.1f, 0.1f}, 1}).is_ok());
  REQUIRE(task.tick(1000).value().size() == 2);
  // The round is closed: a late submission gets the "conflict" status.
  CHECK(task.submit(1, {"c", {0.1f, 0.1f}, 1}).status().code() == StatusCode::kMismatch);
}

TEST_CASE("a short round is extended, then abandoned, never applied from one device", "[server][rounds]") {
  TaskRounds task(2, policy(1));
  REQUIRE(task.open_round(0).is_ok());
  REQUIRE(task.submit(1, {"only", {1.0f}, 1}).is_ok());
  CHECK(task.tick(1000).value().empty());
  CHECK(task.round(1)->state == RoundState::kOpen);
  CHECK(task.round(1)->extensions == 1);
  CHECK(task.round(1)->deadline_ms == 2000);
  CHECK(task.tick(2000).value().empty());
  CHECK(task.round(1)->state == RoundState::kAbandoned);
  CHECK(task.version() == 0);
  CHECK(task.open_round(2100).is_ok());
}

TEST_CASE("a round closes early at its goal count", "[server][rounds]") {
  RoundPolicy p = policy(1);
  p.goal_submissions = 3;
  TaskRounds task(3, p);
  REQUIRE(task.open_round(0).is_ok());
  CHECK_FALSE(task.open_round(10).is_ok());  // one open round at a time
  for (const char* d : {"a", "b"}) REQUIRE(task.submit(1, {d, {1.0f}, 1}).is_ok());
  CHECK(task.tick(10).value().empty());
  REQUIRE(task.submit(1, {"c", {4.0f}, 1}).is_ok());
  auto applied = task.tick(20);
  REQUIRE(applied.value().size() == 1);
  CHECK(applied.value()[0].coeff == Approx(2.0));
}
