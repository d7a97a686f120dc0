// Seed groups (docs/protocol.md section 5): devices of a round fall into groups by a public hash of their
// id, each group trains on its own tau seeds, and each non-empty group's weighted mean is appended.
#include <catch2/catch.hpp>

#include <set>

#include "pocketllm/common/seeds.h"
#include "pocketllm/server/aggregation.h"
#include "pocketllm/server/rounds.h"
#include "pocketllm/server/task_spec.h"
#include "service_fixture.h"

using namespace pocketllm;
using namespace pocketllm::server;
using nlohmann::json;

namespace {

RoundPolicy grouped(uint32_t tau, uint32_t groups) {
  RoundPolicy p;
  p.tau = tau;
  p.seed_groups = groups;
  p.duration_ms = 1000;
  p.min_submissions = 2;
  p.max_extensions = 0;
  return p;
}

// Device ids that land in the wanted groups of round `round` (searched, so the test does not depend on
// which names happen to hash where).
std::string device_in(uint32_t group, uint64_t round, uint32_t groups, int* counter) {
  for (;; ++*counter) {
    std::string id = "device-" + std::to_string(*counter);
    if (protocol::seed_group(id, round, groups) == group) {
      ++*counter;
      return id;
    }
  }
}

json task_json(const std::string& extra) {
  return json::parse(R"({"id":"g","base_model_id":")" + std::string(64, 'c') + R"(","tau":4)" + extra + "}");
}

}  // namespace

TEST_CASE("seed groups: the public group of a device has known answers", "[server][seed_groups]") {
  // Computed independently (Python: FNV-1a-64 of the UTF-8 id, SplitMix64 as in docs/training.md).
  CHECK(protocol::seed_group("dev-a", 1, 7) == 4);
  CHECK(protocol::seed_group("phone-42", 3, 256) == 211);
  CHECK(protocol::seed_group("", 5, 2) == 0);
  CHECK(protocol::seed_group("anything", 9, 1) == 0);
  // Groups move between rounds: over 200 devices and two rounds, most change group.
  int moved = 0;
  std::set<uint32_t> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string id = "d" + std::to_string(i);
    moved += protocol::seed_group(id, 1, 8) != protocol::seed_group(id, 2, 8);
    seen.insert(protocol::seed_group(id, 1, 8));
  }
  CHECK(moved > 150);
  CHECK(seen.size() == 8);
}

TEST_CASE("seed groups: every group of a round gets its own seeds, group 0 the ungrouped ones", "[server][seed_groups]") {
  TaskRounds task(0x5eed, grouped(3, 4));
  auto r = task.open_round(0);
  REQUIRE(r.is_ok());
  REQUIRE(r->seeds.size() == 12);
  CHECK(std::set<uint64_t>(r->seeds.begin(), r->seeds.end()).size() == 12);
  for (uint32_t k = 0; k < 3; ++k) {
    CHECK(r->seeds[k] == TaskRounds::round_seed(0x5eed, 1, k));
    CHECK(r->seeds[2 * 3 + k] == step_seed(splitmix64(0x5eedull ^ splitmix64(0x67726f7570ull + 2)), 1, k));
  }
  int counter = 0;
  const std::string d = device_in(3, 1, 4, &counter);
  CHECK(task.group_seeds(*r, protocol::seed_group(d, 1, 4)) == std::vector<uint64_t>(r->seeds.begin() + 9, r->seeds.end()));
  // One group: the round is what it always was.
  TaskRounds plain(0x5eed, grouped(3, 1));
  auto p = plain.open_round(0);
  REQUIRE(p.is_ok());
  CHECK(p->seeds == std::vector<uint64_t>(r->seeds.begin(), r->seeds.begin() + 3));
}

TEST_CASE("seed groups: a round appends each non-empty group's weighted mean on its own seeds", "[server][seed_groups]") {
  TaskRounds task(0x77, grouped(2, 4));
  auto r = task.open_round(0);
  REQUIRE(r.is_ok());
  int counter = 0;
  const std::string a = device_in(1, 1, 4, &counter), b = device_in(1, 1, 4, &counter), c = device_in(3, 1, 4, &counter);
  // A device sends tau scalars, not one per seed of the round.
  CHECK_FALSE(task.submit(1, {a, {1, 2, 3, 4, 5, 6, 7, 8}, 1}).is_ok());
  CHECK(task.submit(1, {a, {1.0f, 2.0f}, 1}).is_ok());
  CHECK(task.submit(1, {b, {3.0f, 4.0f}, 3}).is_ok());
  CHECK(task.submit(1, {c, {-1.0f, 0.5f}, 2}).is_ok());
  auto applied = task.tick(1000);
  REQUIRE(applied.is_ok());
  REQUIRE(applied->size() == 4);  // groups 1 and 3; groups 0 and 2 had nobody
  CHECK((*applied)[0].seed == r->seeds[2]);
  CHECK((*applied)[1].seed == r->seeds[3]);
  CHECK((*applied)[2].seed == r->seeds[6]);
  CHECK((*applied)[3].seed == r->seeds[7]);
  CHECK((*applied)[0].coeff == Approx((1.0 * 1 + 3.0 * 3) / 4));
  CHECK((*applied)[1].coeff == Approx((2.0 * 1 + 4.0 * 3) / 4));
  CHECK((*applied)[2].coeff == Approx(-1.0));
  CHECK((*applied)[3].coeff == Approx(0.5));
  CHECK(task.version() == 4);
  auto r2 = task.open_round(1000);
  REQUIRE(r2.is_ok());
  CHECK(r2->base_version == 4);
  CHECK(r2->seeds.size() == 8);
}

TEST_CASE("seed groups: clipping pools a step's scalars over every group", "[server][seed_groups]") {
  AggregationOptions o;
  std::vector<Submission> subs;
  for (int i = 0; i < 5; ++i) subs.push_back({"d" + std::to_string(i), {1.0f}, 1});
  subs.push_back({"attacker", {1000.0f}, 1});
  // Each device alone in its group: the attacker's own group mean would be its 1000, but the bound comes
  // from all six step-0 scalars (median 1, MAD 0): 1 ± 5 × (0 + 1).
  auto r = aggregate_groups(subs, {0, 1, 2, 3, 4, 5}, 6, 1, o);
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == 6);
  CHECK((*r)[5] == std::vector<float>{6.0f});
  CHECK((*r)[0] == std::vector<float>{1.0f});
  // One group is aggregate(): the same bytes.
  subs[2].coeffs = {-3.0f};
  auto one = aggregate_groups(subs, std::vector<uint32_t>(subs.size(), 0), 1, 1, o);
  auto plain = aggregate(subs, 1, o);
  REQUIRE(one.is_ok());
  REQUIRE(plain.is_ok());
  CHECK((*one)[0] == plain.value());
  // A group index out of range or a missing one is an error, not a silent drop.
  CHECK_FALSE(aggregate_groups(subs, {0, 1, 2, 3, 4, 6}, 6, 1, o).is_ok());
  CHECK_FALSE(aggregate_groups(subs, {0, 1}, 6, 1, o).is_ok());
}

TEST_CASE("seed groups: the task spec refuses what groups cannot be combined with", "[server][seed_groups]") {
  auto ok = parse_task_spec(task_json(R"(,"seed_groups":16)"));
  REQUIRE(ok.is_ok());
  CHECK(ok->policy.seed_groups == 16);
  CHECK(task_spec_to_json(ok.value())["seed_groups"] == 16);
  CHECK(parse_task_spec(task_spec_to_json(ok.value())).value().policy.seed_groups == 16);
  CHECK_FALSE(task_spec_to_json(parse_task_spec(task_json("")).value()).contains("seed_groups"));
  for (const char* bad : {R"(,"seed_groups":0)", R"(,"seed_groups":257)", R"(,"seed_groups":"4")", R"(,"seed_groups":2.5)",
                          R"(,"seed_groups":2,"strategy":"median")", R"(,"seed_groups":2,"strategy":"trimmed_mean")",
                          R"(,"seed_groups":2,"secagg":{"mode":"masked","bound":1})",
                          R"(,"seed_groups":2,"privacy":{"mode":"central","clip_norm":1,"noise_multiplier":2,"sampling_rate":1,"target_epsilon":3,"delta":1e-5,"expected_participants":4})", R"(,"seed_groups":2,"secagg":{"mode":"plain","bound":1})"}) {
    auto r = parse_task_spec(task_json(bad));
    INFO(bad << " -> " << (r.is_ok() ? std::string("accepted") : r.status().message()));
    CHECK_FALSE(r.is_ok());
    if (!r.is_ok()) CHECK(r.status().message().find("seed_groups") != std::string::npos);
  }
  // seed_groups x tau bounded by what a round may publish.
  auto j = task_json(R"(,"seed_groups":64)");
  j["tau"] = 65;
  CHECK_FALSE(parse_task_spec(j).is_ok());
  j["tau"] = 64;
  CHECK(parse_task_spec(j).is_ok());
}

TEST_CASE("seed groups: a device reads its own group's seeds, and the log carries every group's", "[server][seed_groups]") {
  test::Fixture f;
  REQUIRE(f.admin("POST", "/v1/admin/tasks",
                  R"({"id":"gr","base_model_id":")" + std::string(64, 'b') +
                      R"(","tau":2,"seed_groups":8,"round_seconds":10,"min_submissions":2,"max_extensions":0,"lr":0.01})")
              .status == 201);
  struct Dev {
    std::string credential, id;
  };
  std::vector<Dev> devs;
  for (int i = 0; i < 6; ++i) {
    auto tok = f.json_of(f.admin("POST", "/v1/admin/enrolment-tokens", R"({"uses":1})"))["token"].get<std::string>();
    auto e = f.json_of(f.call("POST", "/v1/enrol", json{{"token", tok}}.dump()));
    devs.push_back({e["credential"].get<std::string>(), e["device_id"].get<std::string>()});
  }
  auto all = f.json_of(f.admin("GET", "/v1/tasks/gr/round"));  // read without a device credential
  CHECK(all["seed_groups"] == 8);
  CHECK(all["tau"] == 2);
  REQUIRE(all["seeds"].size() == 16);
  CHECK_FALSE(all.contains("group"));
  auto parsed_all = protocol::parse_round_info(all.dump());
  REQUIRE(parsed_all.is_ok());
  CHECK(parsed_all->seeds.size() == 16);
  std::map<uint32_t, std::vector<size_t>> members;
  for (size_t i = 0; i < devs.size(); ++i) {
    auto mine = f.json_of(f.call("GET", "/v1/tasks/gr/round", "", devs[i].credential));
    const uint32_t g = protocol::seed_group(devs[i].id, 1, 8);
    CHECK(mine["group"] == g);
    CHECK(mine["tau"] == 2);
    REQUIRE(mine["seeds"].size() == 2);
    CHECK(mine["seeds"][0] == all["seeds"][2 * g]);
    CHECK(mine["seeds"][1] == all["seeds"][2 * g + 1]);
    auto parsed = protocol::parse_round_info(mine.dump());
    REQUIRE(parsed.is_ok());
    CHECK(parsed->group == g);
    members[g].push_back(i);
    const json body = {{"coeffs", {0.5 + static_cast<double>(i), -0.25}}, {"examples", 4}, {"base_version", 0}};
    CHECK(f.call("POST", "/v1/tasks/gr/rounds/1/submissions", body.dump(), devs[i].credential).status == 201);
  }
  f.advance(10'000);
  auto log = f.json_of(f.call("GET", "/v1/tasks/gr/log?since=0", "", devs[0].credential));
  REQUIRE(log["entries"].size() == 2 * members.size());
  size_t e = 0;
  for (const auto& [g, who] : members) {  // groups in order, each its members' mean on its seeds
    double mean = 0;
    for (size_t i : who) mean += 0.5 + static_cast<double>(i);
    mean /= static_cast<double>(who.size());
    CHECK(log["entries"][e]["seed"] == all["seeds"][2 * g]);
    CHECK(log["entries"][e]["coeff"].get<double>() == Approx(mean));
    CHECK(log["entries"][e + 1]["seed"] == all["seeds"][2 * g + 1]);
    CHECK(log["entries"][e + 1]["coeff"].get<double>() == Approx(-0.25));
    e += 2;
  }
}

TEST_CASE("seed groups: a round message names a consistent group", "[protocol][seed_groups]") {
  protocol::RoundInfo r;
  r.task = "t";
  r.round = 2;
  r.seeds = {1, 2};
  r.seed_groups = 4;
  r.group = 3;
  r.lr = 0.1;
  r.eps = 0.001;
  r.batch_size = 8;
  json j = protocol::to_json(r);
  auto back = protocol::parse_round_info(j.dump());
  REQUIRE(back.is_ok());
  CHECK(back->seed_groups == 4);
  CHECK(back->group == 3u);
  j["group"] = 4;  // beyond the groups
  CHECK_FALSE(protocol::parse_round_info(j.dump()).is_ok());
  j["group"] = 0;
  j["seed_groups"] = 0;
  CHECK_FALSE(protocol::parse_round_info(j.dump()).is_ok());
  j["seed_groups"] = 257;
  CHECK_FALSE(protocol::parse_round_info(j.dump()).is_ok());
}
