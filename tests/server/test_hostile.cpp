// Hostile requests through the in-process service: each was a crash or a gap found by the red-team run
// (issue 14); each must be refused cleanly with state unchanged.
#include <catch2/catch.hpp>

#include "service_fixture.h"

using namespace pocketllm;
using namespace pocketllm::server;
using namespace pocketllm::server::test;
using nlohmann::json;

namespace {
std::string nested(const std::string& open, const std::string& close, const std::string& inner, int depth) {
  std::string s;
  s.reserve((open.size() + close.size()) * depth + inner.size());
  for (int i = 0; i < depth; ++i) s += open;
  s += inner;
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}
const std::string kModelId(64, 'e');
}  // namespace

TEST_CASE("hostile: a 100000-deep JSON body is refused with 400, never a crash", "[server][hostile]") {
  Fixture f;
  const std::string device = nested("{\"a\":", "}", "1", 100000);
  auto r = f.admin("POST", "/v1/admin/tasks", R"({"id":"deep","base_model_id":")" + kModelId + R"(","device":)" + device + "}");
  CHECK(r.status == 400);
  CHECK(f.json_of(r)["error"]["code"] == "malformed_json");
  const std::string cred = f.enrol();
  REQUIRE(f.admin("POST", "/v1/admin/tasks", R"({"id":"t","base_model_id":")" + kModelId + R"(","tau":1})").status == 201);
  auto s = f.call("POST", "/v1/tasks/t/rounds/1/submissions", nested("[", "]", "0", 100000), cred);
  CHECK(s.status == 400);
  auto e = f.call("POST", "/v1/enrol", nested("{\"t\":", "}", "\"x\"", 100000));
  CHECK(e.status == 400);
  // Nothing was created: the task list holds only t.
  CHECK(f.json_of(f.admin("GET", "/v1/tasks"))["tasks"].size() == 1);
}
