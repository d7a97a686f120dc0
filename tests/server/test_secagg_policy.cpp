// A task's secure-aggregation settings: validated at creation with the reason for each refusal, round-
// tripped through the stored JSON, and each round's parameters derived from the task.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>

#include "pocketllm/secagg/aggregator_round.h"
#include "pocketllm/secagg/device_round.h"
#include "pocketllm/secagg/wire.h"
#include "pocketllm/server/task_spec.h"
#include "service_fixture.h"

using namespace pocketllm;
using namespace pocketllm::server;
using nlohmann::json;

namespace {

json task(json extra) {
  json t = {{"id", "s"}, {"base_model_id", std::string(64, 'a')}, {"tau", 4}, {"batch_size", 8}, {"min_submissions", 3}};
  for (auto& [k, v] : extra.items()) t[k] = v;
  return t;
}

json central() {
  return {{"mode", "central"}, {"clip_norm", 0.01}, {"noise_multiplier", 1.5}, {"sampling_rate", 1.0},
          {"target_epsilon", 50.0}, {"delta", 1e-5}, {"expected_participants", 20.0}};
}

std::string refusal(json extra) {
  auto s = parse_task_spec(task(std::move(extra)));
  return s ? std::string("accepted") : s.status().message();
}

}  // namespace

TEST_CASE("secagg: a masked task round-trips through its stored JSON and derives each round's parameters", "[server][secagg]") {
  auto s = parse_task_spec(task({{"secagg", {{"mode", "masked"}, {"bound", 0.25}, {"degree", 10}, {"phase_seconds", 2}}}}));
  REQUIRE(s.is_ok());
  const SecAggPolicy& p = s->policy.secagg;
  CHECK(p.mode == SecAggMode::kMasked);
  CHECK(p.bound == 0.25);
  CHECK(p.scale_bits == 40);
  CHECK(p.phase_ms == 2000);
  auto again = parse_task_spec(task_spec_to_json(s.value()));
  REQUIRE(again.is_ok());
  CHECK(again->policy.secagg.mode == SecAggMode::kMasked);
  CHECK(again->policy.secagg.bound == 0.25);
  CHECK(again->policy.secagg.degree == 10);
  CHECK(training_spec(again.value()).secagg == "masked");
  const secagg::RoundConfig r1 = secagg_round_config(s->policy, 77, 1), r2 = secagg_round_config(s->policy, 77, 2);
  CHECK(r1.round_id != r2.round_id);
  CHECK(r1.graph_seed != r2.graph_seed);
  CHECK(r1.round_id != secagg_round_config(s->policy, 78, 1).round_id);  // keyed by the task
  CHECK(r1.min_survivors == 3);
  CHECK(r1.input.tau == 4);
  CHECK(r1.input.max_weight == 32);  // tau x batch size
  CHECK_FALSE(r1.input.uniform_weights);
  CHECK(r1.input.noise_variance == 0);
}

TEST_CASE("secagg: a private task's devices add their share of the central noise, and it round-trips", "[server][secagg]") {
  auto s = parse_task_spec(task({{"privacy", central()}, {"secagg", {{"mode", "masked"}}}}));
  REQUIRE(s.is_ok());
  CHECK(s->policy.secagg.bound == 0.01);  // the clip norm
  CHECK(s->policy.secagg.scale_bits == 30);
  auto again = parse_task_spec(task_spec_to_json(s.value()));
  REQUIRE(again.is_ok());
  const secagg::RoundConfig c = secagg_round_config(again->policy, 1, 1);
  CHECK(c.input.uniform_weights);
  // t devices' shares add up to the central (sigma C 2^s)^2.
  const double total = std::pow(1.5 * 0.01 * std::ldexp(1.0, 30), 2);
  CHECK(c.input.noise_variance * c.min_survivors == Approx(total));
}

TEST_CASE("secagg: what cannot compose with a secure sum is refused at creation, with the reason", "[server][secagg]") {
  const json masked = {{"mode", "masked"}, {"bound", 1.0}};
  CHECK(refusal({{"strategy", "median"}, {"secagg", masked}}).find("median") != std::string::npos);
  CHECK(refusal({{"strategy", "trimmed_mean"}, {"secagg", masked}}).find("weighted_mean") != std::string::npos);
  CHECK(refusal({{"max_staleness", 2}, {"secagg", masked}}).find("max_staleness") != std::string::npos);
  CHECK(refusal({{"min_submissions", 1}, {"secagg", masked}}).find("at least 2") != std::string::npos);
  CHECK(refusal({{"clip", 0.5}, {"secagg", masked}}).find("clip") != std::string::npos);
  json local = central();
  local["mode"] = "local";
  local["noise_multiplier"] = 1.0;
  CHECK(refusal({{"privacy", local}, {"secagg", {{"mode", "masked"}}}}).find("central") != std::string::npos);
  CHECK(refusal({{"privacy", central()}, {"secagg", {{"mode", "plain"}}}}).find("plain") != std::string::npos);
  CHECK(refusal({{"secagg", {{"mode", "masked"}}}}).find("bound") != std::string::npos);  // required without DP
  CHECK(refusal({{"secagg", {{"mode", "sideways"}, {"bound", 1.0}}}}).find("masked or plain") != std::string::npos);
  CHECK(refusal({{"secagg", {{"mode", "masked"}, {"bound", 1.0}, {"colour", 1}}}}).find("unknown") != std::string::npos);
  CHECK(refusal({{"secagg", {{"mode", "masked"}, {"bound", 1.0}, {"degree", 300}}}}) != "accepted");
  // The sum must fit 64 bits for the largest round: a huge bound at a fine scale overflows.
  CHECK(refusal({{"secagg", {{"mode", "masked"}, {"bound", 1e6}, {"scale_bits", 52}}}}).find("overflow") != std::string::npos);
  CHECK(refusal({{"secagg", masked}}) == "accepted");  // the control: the same task without the conflict
}

TEST_CASE("secagg: with a runner the unmasking leaves the tick, and the round applies on the tick after it ran", "[server][secagg]") {
  auto spec = parse_task_spec(task({{"min_submissions", 2}, {"secagg", {{"mode", "masked"}, {"bound", 1.0}}}}));
  REQUIRE(spec.is_ok());
  RoundPolicy p = spec->policy;
  p.duration_ms = 1000;
  p.max_extensions = 0;
  TaskRounds t(42, p);
  std::vector<std::function<void()>> jobs;
  t.set_secagg_runner([&](std::function<void()> job) { jobs.push_back(std::move(job)); });
  REQUIRE(t.open_round(0).is_ok());
  secagg::AggregatorRound* a = t.secagg_round(1);
  REQUIRE(a);
  const secagg::RoundConfig c = t.secagg_config(1);
  std::vector<std::unique_ptr<secagg::DeviceRound>> dev;
  const std::vector<std::string> ids = {"a", "b", "c"};
  for (const auto& id : ids) {
    dev.push_back(secagg::DeviceRound::create(c).value());
    REQUIRE(a->advertise(id, dev.back()->advertise()));
  }
  REQUIRE(t.tick(1000).is_ok());  // the deadline: keys closed
  for (size_t i = 0; i < 3; ++i) REQUIRE(a->share_keys(ids[i], dev[i]->share_keys(a->roster(ids[i]).value()).value()));
  REQUIRE(t.tick(1001).is_ok());
  std::vector<float> coeffs = {0.25f, -0.5f, 0.125f, 0.0f};
  for (size_t i = 0; i < 3; ++i) {
    auto input = secagg::encode_input(c.input, coeffs, 8).value();
    REQUIRE(a->masked_input(ids[i], dev[i]->masked_input(input, a->inbox(ids[i]).value()).value()));
  }
  REQUIRE(t.tick(1002).is_ok());
  for (size_t i = 0; i < 3; ++i) REQUIRE(a->unmask(ids[i], dev[i]->unmask(a->survivors_for(ids[i]).value()).value()));
  auto none = t.tick(1003);  // phase 4 closes: the unmasking is handed to the runner, nothing applied yet
  REQUIRE(none.is_ok());
  CHECK(none->empty());
  REQUIRE(jobs.size() == 1);
  CHECK(t.current()->state == RoundState::kOpen);
  CHECK(a->phase() == secagg::AggregatorRound::Phase::kFinishing);
  CHECK(a->unmask("a", {}).code() == StatusCode::kMismatch);  // nothing more is taken
  CHECK(t.tick(1004)->empty());                                // not computed yet: still waiting
  jobs[0]();
  auto applied = t.tick(1005);
  REQUIRE(applied.is_ok());
  REQUIRE(applied->size() == 4);
  CHECK(t.current()->state == RoundState::kApplied);
  for (size_t k = 0; k < 4; ++k) CHECK((*applied)[k].coeff == coeffs[k]);  // three equal inputs: their mean
}

TEST_CASE("secagg: the Sybil limit holds for a masked round's keys", "[server][secagg]") {
  server::test::Fixture f;
  json t = task({{"max_per_token", 1}, {"min_submissions", 2}, {"secagg", {{"mode", "masked"}, {"bound", 1.0}}}});
  if (f.store.postgres()) {  // replicas on a shared store refuse masked rounds: their phase state is one server's memory
    auto refused = f.admin("POST", "/v1/admin/tasks", t.dump());
    CHECK(refused.status == 422);
    CHECK(refused.body.find("single server") != std::string::npos);
    t["secagg"]["mode"] = "plain";  // what a cluster offers instead
    CHECK(f.admin("POST", "/v1/admin/tasks", t.dump()).status == 201);
    return;
  }
  REQUIRE(f.admin("POST", "/v1/admin/tasks", t.dump()).status == 201);
  auto enrol_with = [&](const std::string& token) {
    auto r = f.call("POST", "/v1/enrol", json{{"token", token}}.dump());
    REQUIRE(r.status == 201);
    return f.json_of(r)["credential"].get<std::string>();
  };
  const std::string shared = f.json_of(f.admin("POST", "/v1/admin/enrolment-tokens", R"({"uses":2})"))["token"];
  const std::string a = enrol_with(shared), b = enrol_with(shared), c = f.enrol();
  auto keys = [] {
    secagg::AdvertiseKeys k{secagg::x25519_generate().value().public_key, secagg::x25519_generate().value().public_key};
    return secagg::to_json(k).dump();
  };
  CHECK(f.call("POST", "/v1/tasks/s/rounds/1/secagg/keys", keys(), a).status == 201);
  auto second = f.call("POST", "/v1/tasks/s/rounds/1/secagg/keys", keys(), b);
  CHECK(second.status == 403);
  CHECK(second.body.find("token_cap") != std::string::npos);
  CHECK(f.call("POST", "/v1/tasks/s/rounds/1/secagg/keys", keys(), c).status == 201);  // another token's device
  CHECK(f.json_of(f.admin("GET", "/v1/tasks/s/round"))["secagg"]["received"] == 2);
}
