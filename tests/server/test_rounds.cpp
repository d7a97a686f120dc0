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

TEST_CASE("stale submissions: refused by default, accepted down-weighted within the task's bound", "[server][rounds]") {
  RoundPolicy p = policy(2);
  p.min_submissions = 1;
  p.goal_submissions = 1;
  TaskRounds strict(5, p);
  REQUIRE(strict.open_round(0).is_ok());
  REQUIRE(strict.submit(1, {"a", {1.0f, 1.0f}, 1, 1.0, 0}).is_ok());
  REQUIRE(strict.tick(1).value().size() == 2);
  REQUIRE(strict.open_round(2).is_ok());  // round 2 starts from version 2
  CHECK(strict.submit(2, {"b", {1.0f, 1.0f}, 1, 1.0, 0}).status().code() == StatusCode::kMismatch);
  CHECK(strict.submit(2, {"b", {1.0f, 1.0f}, 1, 1.0, 3}).status().code() == StatusCode::kMismatch);  // ahead

  p.max_staleness = 2;
  p.goal_submissions = 2;
  TaskRounds lenient(5, p);
  REQUIRE(lenient.open_round(0).is_ok());
  REQUIRE(lenient.submit(1, {"a", {1.0f, 1.0f}, 1, 1.0, 0}).is_ok());
  REQUIRE(lenient.submit(1, {"z", {1.0f, 1.0f}, 1, 1.0, 0}).is_ok());
  REQUIRE(lenient.tick(1).value().size() == 2);
  REQUIRE(lenient.open_round(2).is_ok());
  REQUIRE(lenient.submit(2, {"fresh", {3.0f, 3.0f}, 1, 1.0, 2}).is_ok());
  REQUIRE(lenient.submit(2, {"stale", {0.0f, 0.0f}, 1, 1.0, 0}).is_ok());  // 2 versions behind = 1 round
  CHECK(lenient.round(2)->submissions.at("stale").weight == Approx(0.5));
  auto applied = lenient.tick(3);
  REQUIRE(applied.value().size() == 2);
  CHECK(applied.value()[0].coeff == Approx(3.0 * 1 / 1.5));  // (3*1 + 0*0.5) / (1 + 0.5)
  lenient.withdraw(2, "stale");  // closed rounds keep what they applied from; withdraw is for the open one
}

TEST_CASE("restore rebuilds a task from stored rounds and log, and refuses inconsistent state", "[server][rounds]") {
  TaskRounds a(9, policy(2));
  REQUIRE(a.open_round(0).is_ok());
  REQUIRE(a.submit(1, {"x", {1.0f, 2.0f}, 1}).is_ok());
  REQUIRE(a.submit(1, {"y", {3.0f, 4.0f}, 1}).is_ok());
  REQUIRE(a.tick(1000).value().size() == 2);
  REQUIRE(a.open_round(1000).is_ok());
  REQUIRE(a.submit(2, {"x", {5.0f, 6.0f}, 1, 1.0, 2}).is_ok());

  TaskRounds b(9, policy(2));
  REQUIRE(b.restore(a.rounds(), a.log()).is_ok());
  CHECK(b.version() == 2);
  CHECK(b.current()->id == 2);
  CHECK(b.submit(2, {"x", {5.0f, 6.0f}, 1, 1.0, 2}).value() == SubmitOutcome::kDuplicate);
  b.withdraw(2, "x");
  CHECK(b.submit(2, {"x", {7.0f, 6.0f}, 1, 1.0, 2}).value() == SubmitOutcome::kAccepted);

  auto bad = a.rounds();
  bad[0].id = 5;
  TaskRounds c(9, policy(2));
  CHECK(c.restore(bad, a.log()).code() == StatusCode::kCorrupt);
  CHECK(c.restore(a.rounds(), UpdateLog()).code() == StatusCode::kCorrupt);  // round 2 starts at version 2
}

TEST_CASE("a closed round's submissions can be released from memory, keeping their count", "[server][rounds]") {
  TaskRounds task(7, policy(1));
  REQUIRE(task.open_round(0).is_ok());
  for (const char* d : {"a", "b", "c"}) REQUIRE(task.submit(1, {d, {0.5f}, 1}).is_ok());
  task.release_submissions(1);  // open: nothing is released
  CHECK(task.round(1)->submissions.size() == 3);
  REQUIRE(task.tick(1000).value().size() == 1);
  task.release_submissions(1);
  CHECK(task.round(1)->submissions.empty());
  CHECK(task.round(1)->submission_count() == 3);
}
