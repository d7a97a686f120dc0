// The SDK's federation calls (pocketllm.h, and pocketllm.hpp over it) against the real server over TLS,
// through the built-in HTTPS client and through an app-supplied transport callback.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <list>
#include <thread>

#include "pocketllm/net/http_client.h"
#include "pocketllm/pocketllm.hpp"
#include "test_paths.h"
#include "server_process.h"

using namespace pocketllm::server::test;
using nlohmann::json;

namespace {
const std::string kModel = pocketllm::test::stories260k_dir();

// "The app's HTTP stack": the test's own HTTPS client behind pllm_transport_fn.
pllm_status app_transport(const char* method, const char* path, const char* body, size_t body_len, const char* bearer,
                          pllm_http_reply* reply, void* user) {
  auto* client = static_cast<pocketllm::net::HttpClient*>(user);
  auto r = client->request(method, path, std::string(body, body_len), bearer);
  if (!r) return r.status().code() == pocketllm::StatusCode::kMismatch ? PLLM_ERR_MISMATCH : PLLM_ERR_IO;
  return pllm_http_reply_set(reply, r->status, r->body.data(), r->body.size());
}

pllm_model* load_model() {
  pllm_model* m = nullptr;
  pllm_model_params mp = pllm_model_default_params();
  mp.n_threads = 1;
  REQUIRE(pllm_model_load(kModel.c_str(), &mp, nullptr, &m) == PLLM_OK);
  return m;
}

json body_of(const pocketllm::Result<pocketllm::net::HttpResult>& r) {
  REQUIRE(r.is_ok());
  return json::parse(r->body);
}
}  // namespace

TEST_CASE("sdk: devices join a task, run a round, sync: errors are status codes with messages", "[sdk][federation][e2e]") {
  const std::string dir = temp_dir("sdkfed");
  make_test_cert(dir);
  ServerProcess server(POCKETLLM_SERVER_BIN, dir);
  server.start();
  auto admin = server.client();
  pllm_model* m = load_model();
  char* id = nullptr;
  REQUIRE(pllm_model_id(m, &id) == PLLM_OK);
  const std::string model_id = id;
  pllm_free_string(id);
  const std::string task = R"({"id":"sdk","base_model_id":")" + model_id +
                           R"(","trainable":"norms","tau":2,"batch_size":2,"lr":0.001,"round_seconds":60,"goal_submissions":2,"min_submissions":2,"device":{"task":"lm","max_length":16}})";
  REQUIRE(admin->request("POST", "/v1/admin/tasks", task, kAdminToken)->status == 201);
  const std::string other = R"({"id":"other","base_model_id":")" + std::string(64, 'a') + R"("})";
  REQUIRE(admin->request("POST", "/v1/admin/tasks", other, kAdminToken)->status == 201);
  const std::string token = body_of(admin->request("POST", "/v1/admin/enrolment-tokens", R"({"uses":4})", kAdminToken))["token"];
  std::ofstream(dir + "/a.txt") << "the cat sat on the mat\nthe dog ran in the park\na bird sang a song\n";
  std::ofstream(dir + "/b.txt") << "she read a book by the sea\nhe found a red ball\nthey ate cake at noon\n";
  const std::string url = server.url(), ca = dir + "/server.crt";
  auto params = [&](const std::string& name, const char* task_id) {
    pllm_device_params p = pllm_device_default_params();
    static std::list<std::string> keep;  // the C strings must outlive the call (a list never moves them)
    keep.push_back(dir + "/" + name + ".cred");
    const char* cred = keep.back().c_str();
    keep.push_back(dir + "/" + name + ".txt");
    const char* data = keep.back().c_str();
    keep.push_back(dir + "/" + name + "-state");
    const char* state = keep.back().c_str();
    p.server_url = url.c_str();
    p.ca_file = ca.c_str();
    p.enrolment_token = token.c_str();
    p.task_id = task_id;
    p.credentials_path = cred;
    p.data_path = data;
    p.state_dir = state;
    p.timeout_ms = 5000;
    return p;
  };

  // Errors first: missing fields, a task for another base model, a budget below the rounds' estimate.
  pllm_device* bad = nullptr;
  pllm_device_params empty = pllm_device_default_params();
  CHECK(pllm_device_open(m, &empty, nullptr, &bad) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(std::string(pllm_last_error()).find("required") != std::string::npos);
  const pllm_device_params wrong_task = params("a", "other");
  CHECK(pllm_device_open(m, &wrong_task, nullptr, &bad) == PLLM_ERR_MISMATCH);
  CHECK(std::string(pllm_last_error()).find("base model") != std::string::npos);
  CHECK(bad == nullptr);
  pllm_device_params tiny = params("c", "sdk");
  tiny.memory_budget_bytes = 100000;  // stories260K's weights alone are ~1 MiB
  CHECK(pllm_device_open(m, &tiny, nullptr, &bad) == PLLM_ERR_MEMORY_BUDGET);
  CHECK(std::string(pllm_last_error()).find("over the memory budget of 100000 bytes") != std::string::npos);
  CHECK_FALSE(pllm_model_is_trained(m));  // refused devices leave the model as it was, usable
  char* text = nullptr;
  REQUIRE(pllm_generate(m, "Once upon a time", nullptr, nullptr, nullptr, nullptr, &text) == PLLM_OK);
  pllm_free_string(text);

  // Device a over the built-in HTTPS client, device b over the app's own transport.
  auto app_http = pocketllm::net::HttpClient::create({url, ca, "", 5000, 5000});
  REQUIRE(app_http.is_ok());
  pllm_model* mb = load_model();
  pllm_device *a = nullptr, *b = nullptr;
  const pllm_device_params pa = params("a", "sdk");
  pllm_device_params pb = params("b", "sdk");
  pb.transport = app_transport;
  pb.transport_user = app_http.value().get();
  REQUIRE(pllm_device_open(m, &pa, nullptr, &a) == PLLM_OK);
  REQUIRE(pllm_device_open(mb, &pb, nullptr, &b) == PLLM_OK);
  CHECK(pllm_generate(m, "x", nullptr, nullptr, nullptr, nullptr, &text) == PLLM_ERR_BUSY);  // the device has the model
  pllm_session_params sp = pllm_session_default_params();
  sp.run_dir = "/tmp/never-created";
  pllm_session* session = nullptr;
  CHECK(pllm_session_open(m, &sp, nullptr, &session) == PLLM_ERR_BUSY);
  bool submitted = false;
  uint64_t round = 0;
  REQUIRE(pllm_device_run_round(a, nullptr, &submitted, &round) == PLLM_OK);
  CHECK(submitted);
  CHECK(round == 1);
  REQUIRE(pllm_device_run_round(a, nullptr, &submitted, &round) == PLLM_OK);
  CHECK_FALSE(submitted);  // already in this round
  REQUIRE(pllm_device_run_round(b, nullptr, &submitted, &round) == PLLM_OK);
  CHECK(submitted);
  uint64_t va = 0, vb = 0;
  for (int i = 0; i < 100 && va < 2; ++i) {
    REQUIRE(pllm_device_sync(a, nullptr, &va) == PLLM_OK);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(pllm_device_sync(b, nullptr, &vb) == PLLM_OK);
  CHECK(va == 2);
  CHECK(vb == 2);
  double la = 0, lb = 0, acc = 0;
  REQUIRE(pllm_device_eval(a, (dir + "/b.txt").c_str(), nullptr, &la, &acc) == PLLM_OK);
  REQUIRE(pllm_device_eval(b, (dir + "/b.txt").c_str(), nullptr, &lb, &acc) == PLLM_OK);
  CHECK(la == lb);  // the same shared weights on both devices, whichever transport carried them
  CHECK(std::isfinite(la));
  CHECK(pllm_device_bytes_sent(a) > 0);
  CHECK(pllm_device_bytes_received(b) > 0);
  REQUIRE(pllm_device_generate(a, "Once upon a time", nullptr, nullptr, nullptr, nullptr, &text) == PLLM_OK);
  CHECK(text != nullptr);
  pllm_free_string(text);
  int32_t label = 0;
  CHECK(pllm_device_classify(a, "a fine film", nullptr, &label, nullptr, 0, nullptr) == PLLM_ERR_INVALID_ARGUMENT);  // an lm task
  CHECK(std::string(pllm_last_error()).find("not a classification") != std::string::npos);
  REQUIRE(pllm_device_personalize(a, 2, 1e-3f, 7, nullptr) == PLLM_OK);
  REQUIRE(pllm_device_eval(a, (dir + "/b.txt").c_str(), nullptr, &la, &acc) == PLLM_OK);
  CHECK(la != lb);  // personal steps changed device a only
  CHECK(pllm_device_personalize(a, 2, -1.0f, 7, nullptr) == PLLM_ERR_INVALID_ARGUMENT);
  pllm_device_free(a);
  pllm_device_free(b);

  // A classification task: the device classifies with its task's template and label words — at the
  // shared version 0 what pllm_classify gives the base model with the preset — and with what it learnt.
  const std::string cls = R"({"id":"cls","base_model_id":")" + model_id +
                          R"(","trainable":"norms","tau":2,"batch_size":2,"lr":0.5,"round_seconds":60,"goal_submissions":1,"min_submissions":1,"device":{"task":"classify","preset":"sst2","max_length":32}})";
  REQUIRE(admin->request("POST", "/v1/admin/tasks", cls, kAdminToken)->status == 201);
  std::ofstream(dir + "/c.tsv") << "a wonderful and moving film\t1\na dull and tiresome film\t0\nthe best movie of the year\t1\nthe worst mess\t0\n";
  pllm_model* mc = load_model();
  pllm_evaluate_params preset = pllm_evaluate_default_params();
  preset.preset = "sst2";
  float base[2] = {0, 0}, dev[2] = {0, 0};
  int32_t base_label = -1;
  size_t n = 0;
  REQUIRE(pllm_classify(mc, "a fine film", &preset, nullptr, &base_label, base, 2, &n) == PLLM_OK);
  pllm_device_params pc = params("c", "cls");
  const std::string ctsv = dir + "/c.tsv";
  pc.data_path = ctsv.c_str();
  pllm_device* c = nullptr;
  REQUIRE(pllm_device_open(mc, &pc, nullptr, &c) == PLLM_OK);
  REQUIRE(pllm_device_classify(c, "a fine film", nullptr, &label, dev, 2, &n) == PLLM_OK);
  CHECK(n == 2);
  CHECK(label == base_label);
  CHECK(dev[1] == Approx(base[1]).margin(1e-6));
  REQUIRE(pllm_device_personalize(c, 4, 0.5f, 7, nullptr) == PLLM_OK);
  REQUIRE(pllm_device_classify(c, "a fine film", nullptr, &label, dev, 2, &n) == PLLM_OK);
  CHECK(std::fabs(dev[1] - base[1]) > 1e-5);  // the personal steps moved it
  CHECK(dev[0] + dev[1] == Approx(1.0).margin(1e-5));
  pllm_device_free(c);
  pllm_model_free(mc);
  // The models are back with the device's weights.
  double lm = 0;
  REQUIRE(pllm_model_evaluate(m, (dir + "/b.txt").c_str(), nullptr, nullptr, &lm, &acc) == PLLM_OK);
  CHECK(lm == la);
  CHECK(pllm_model_is_trained(m));
  pllm_model_free(m);
  pllm_model_free(mb);

  // The C++ layer turns the same failures into exceptions, and reopens a device from its state.
  pllm_model_params one_thread = pllm_model_default_params();
  one_thread.n_threads = 1;  // as devices a and b: the same reduction order, the same bits
  pocketllm::sdk::Model model(kModel, one_thread);
  CHECK_THROWS_AS(pocketllm::sdk::Device(model, pllm_device_default_params()), pocketllm::sdk::Error);
  pocketllm::sdk::Device again(model, pa);
  pocketllm::sdk::Cancel cancel;
  cancel.request();
  const pllm_control cancelled = cancel.control();
  try {  // the device's long calls take a control too: cancelled before any request
    again.sync(&cancelled);
    FAIL("a cancelled sync returned");
  } catch (const pocketllm::sdk::Error& e) {
    CHECK(e.code() == PLLM_ERR_CANCELLED);
  }
  CHECK(again.sync() == 2);
  auto [loss, accuracy] = again.eval(dir + "/b.txt");
  CHECK(loss == la);  // shared + the personal steps, restored from the state directory
  (void)accuracy;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST_CASE("sdk: pllm_device_run_round takes a masked secure round through its phases, over either transport",
          "[sdk][federation][e2e][secagg]") {
  const std::string dir = temp_dir("sdksecagg");
  make_test_cert(dir);
  ServerProcess server(POCKETLLM_SERVER_BIN, dir);
  server.start();
  auto admin = server.client();
  pllm_model* ma = load_model();
  pllm_model* mb = load_model();
  char* id = nullptr;
  REQUIRE(pllm_model_id(ma, &id) == PLLM_OK);
  const std::string model_id = id;
  pllm_free_string(id);
  const std::string task = R"({"id":"sa","base_model_id":")" + model_id +
                           R"(","trainable":"norms","tau":2,"batch_size":2,"lr":0.001,"round_seconds":60,"goal_submissions":2,)"
                           R"("min_submissions":2,"device":{"task":"lm","max_length":16},"secagg":{"mode":"masked","bound":0.1}})";
  REQUIRE(admin->request("POST", "/v1/admin/tasks", task, kAdminToken)->status == 201);
  const std::string token = body_of(admin->request("POST", "/v1/admin/enrolment-tokens", R"({"uses":2})", kAdminToken))["token"];
  std::ofstream(dir + "/a.txt") << "the cat sat on the mat\nthe dog ran in the park\na bird sang a song\n";
  std::ofstream(dir + "/b.txt") << "she read a book by the sea\nhe found a red ball\nthey ate cake at noon\n";
  const std::string url = server.url(), ca = dir + "/server.crt";
  std::list<std::string> keep;
  auto params = [&](const std::string& name) {
    pllm_device_params p = pllm_device_default_params();
    keep.push_back(dir + "/" + name + ".cred");
    p.credentials_path = keep.back().c_str();
    keep.push_back(dir + "/" + name + ".txt");
    p.data_path = keep.back().c_str();
    keep.push_back(dir + "/" + name + "-state");
    p.state_dir = keep.back().c_str();
    p.server_url = url.c_str();
    p.ca_file = ca.c_str();
    p.enrolment_token = token.c_str();
    p.task_id = "sa";
    p.timeout_ms = 5000;
    return p;
  };
  auto app_http = pocketllm::net::HttpClient::create({url, ca, "", 5000, 5000});
  REQUIRE(app_http.is_ok());
  pllm_device_params pa = params("a"), pb = params("b");
  pb.transport = app_transport;
  pb.transport_user = app_http.value().get();
  pllm_device *a = nullptr, *b = nullptr;
  REQUIRE(pllm_device_open(ma, &pa, nullptr, &a) == PLLM_OK);
  REQUIRE(pllm_device_open(mb, &pb, nullptr, &b) == PLLM_OK);
  // Each call blocks in the round's phases until the other device has done its part: two threads.
  bool sa = false, sb = false;
  pllm_status ra = PLLM_ERR_INTERNAL, rb = PLLM_ERR_INTERNAL;
  std::thread ta([&] { ra = pllm_device_run_round(a, nullptr, &sa, nullptr); });
  std::thread tb([&] { rb = pllm_device_run_round(b, nullptr, &sb, nullptr); });
  ta.join();
  tb.join();
  CHECK(ra == PLLM_OK);
  CHECK(rb == PLLM_OK);
  CHECK(sa);
  CHECK(sb);
  uint64_t va = 0, vb = 0;
  for (int i = 0; i < 100 && va < 2; ++i) {
    REQUIRE(pllm_device_sync(a, nullptr, &va) == PLLM_OK);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(pllm_device_sync(b, nullptr, &vb) == PLLM_OK);
  CHECK(va == 2);
  CHECK(vb == 2);
  // The server holds the round's result and nothing per device.
  const json r = body_of(admin->request("GET", "/v1/admin/tasks/sa/rounds/1", "", kAdminToken));
  CHECK(r["state"] == "applied");
  CHECK(r["submission_list"].empty());
  pllm_device_free(a);
  pllm_device_free(b);
  pllm_model_free(ma);
  pllm_model_free(mb);
}
