// Federated devices against an in-process server (the real Service, a test clock): what leaves a
// device, network faults, a device offline for a week, snapshots, and personalisation over syncs.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "pocketllm/sim/in_process_transport.h"
#include "pocketllm/federation/federated_device.h"
#include "pocketllm/federation/device_model.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/name_pattern.h"
#include "pocketllm/client/lora.h"
#include "test_paths.h"
#include "service_fixture.h"

using namespace pocketllm;
using namespace pocketllm::server::test;
using nlohmann::json;

namespace {

const std::string kModel = pocketllm::test::stories260k_dir();
const std::string kCanary = "ZQXJ-private-diary-entry-7731";

// Fails requests on a schedule: before delivery (the server never sees it), or after delivery (the
// server acted, the reply is lost).
class FlakyTransport : public Transport {
 public:
  FlakyTransport(server::Service& s, std::set<int> fail_before, std::set<int> fail_after)
      : inner_(s), before_(std::move(fail_before)), after_(std::move(fail_after)) {}
  // Failure schedule counted from the next request.
  void arm(const std::set<int>& fail_before, const std::set<int>& fail_after) {
    before_.clear();
    after_.clear();
    for (int n : fail_before) before_.insert(count_ + n);
    for (int n : fail_after) after_.insert(count_ + n);
  }
  Result<TransportReply> request(const std::string& m, const std::string& t, const std::string& b, const std::string& bearer) override {
    const int n = count_++;
    if (before_.count(n)) return io_error("connection reset (before delivery)");
    auto r = inner_.request(m, t, b, bearer);
    if (after_.count(n)) return io_error("connection reset (reply lost)");
    return r;
  }
  uint64_t bytes_sent() const override { return inner_.bytes_sent(); }
  uint64_t bytes_received() const override { return inner_.bytes_received(); }
  int count_ = 0;

 private:
  sim::InProcessTransport inner_;
  std::set<int> before_, after_;
};

struct Device {
  std::unique_ptr<FederationClient> client;
  DeviceModel model;
  std::unique_ptr<Task> task;
  std::unique_ptr<FederatedDevice> fed;
  std::string state_dir;
};

std::string write_data(const std::string& dir, const std::string& name, bool with_canary) {
  const std::string path = dir + "/" + name;
  std::ofstream f(path);
  const char* lines[] = {"the little cat sat on the warm mat", "a boy found a shiny red ball in the park",
                         "the bird sang a happy song every morning", "she liked to read books about the sea",
                         "the dog ran fast to catch the stick", "they built a big castle out of sand"};
  for (int rep = 0; rep < 4; ++rep)
    for (const char* l : lines) f << l << (with_canary ? " " + kCanary : std::string()) << "\n";
  return path;
}

struct World {
  Fixture server;  // in-process Service with a test clock
  std::string model_id;
  std::string data;

  World() {
    data = write_data(server.dir, "private.txt", true);
    LoadOptions lo;
    lo.require_tokenizer = true;
    auto m = load_model(kModel, lo);
    REQUIRE(m.is_ok());
    model_id = m->model->weights().compute_model_id();
  }
  void create_task(const std::string& id, const std::string& extra = "") {
    const std::string body = R"({"id":")" + id + R"(","base_model_id":")" + model_id +
                             R"(","trainable":"norms","tau":3,"batch_size":4,"lr":0.001,"round_seconds":3600,"min_submissions":1,)"
                             R"("device":{"task":"lm","max_length":24})" + extra + "}";
    auto r = server.admin("POST", "/v1/admin/tasks", body);
    REQUIRE(r.status == 201);
  }
  Device device(const std::string& task_id, const std::string& name, std::unique_ptr<Transport> transport = nullptr) {
    Device d;
    d.state_dir = server.dir + "/" + name;
    auto tok = server.json_of(server.admin("POST", "/v1/admin/enrolment-tokens", R"({"uses":1})"))["token"].get<std::string>();
    if (!transport) transport = std::make_unique<sim::InProcessTransport>(*server.svc);
    auto c = FederationClient::open(std::move(transport), "inprocess:", "", tok, RetryPolicy{6, 1, {}});
    REQUIRE(c.is_ok());
    d.client = std::move(c.value());
    auto info = d.client->task(task_id);
    REQUIRE(info.is_ok());
    auto m = load_device_model(kModel, info.value());
    REQUIRE(m.is_ok());
    d.model = std::move(m.value());
    auto t = load_device_task(d.model, data);
    REQUIRE(t.is_ok());
    d.task = std::move(t.value());
    std::vector<size_t> all(d.task->size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    FederatedDeviceOptions o;
    o.task_id = task_id;
    o.state_dir = d.state_dir;
    o.data_seed = device_data_seed(name);
    auto f = FederatedDevice::open(*d.model.loaded.model, d.model.model_id, *d.task, all, *d.client, o, nullptr);
    REQUIRE(f.is_ok());
    d.fed = std::move(f.value());
    return d;
  }
  // Runs one round with the given devices and closes it.
  void round(const std::string& task, std::vector<Device*> devices) {
    auto r = server.json_of(server.admin("GET", "/v1/tasks/" + task + "/round"));
    for (Device* d : devices) {
      auto ri = d->client->round(task);
      REQUIRE(ri.is_ok());
      auto p = d->fed->participate(ri.value());
      REQUIRE(p.is_ok());
      REQUIRE(p->submitted());
    }
    REQUIRE(server.admin("POST", "/v1/admin/tasks/" + task + "/rounds/" + std::to_string(r["round"].get<int>()) + "/close").status == 200);
    server.advance(3600'000 * 24 * 7 / 40);  // rounds spread over a week
  }
};

std::string weights_of(LanguageModel& m) {
  std::string out;
  for (const auto& t : m.weights().trainable_tensors()) out.append(reinterpret_cast<const char*>(t.data), t.numel * 4);
  return out;
}

}  // namespace

TEST_CASE("federation: nothing but seeds' scalars, counts and loss statistics leaves the device", "[federation]") {
  World w;
  w.create_task("privacy");
  Device d = w.device("privacy", "dev");
  std::vector<std::tuple<std::string, std::string, std::string>> sent;
  d.client->set_request_observer([&](const std::string& m, const std::string& t, const std::string& b) { sent.emplace_back(m, t, b); });
  w.round("privacy", {&d});
  REQUIRE(d.fed->sync().is_ok());
  CHECK(d.fed->version() == 3);
  REQUIRE_FALSE(sent.empty());
  int submissions = 0;
  for (const auto& [method, target, body] : sent) {
    INFO(method << " " << target << " " << body);
    CHECK(target.find(kCanary) == std::string::npos);
    CHECK(body.find(kCanary) == std::string::npos);
    CHECK(body.find("cat") == std::string::npos);  // no word of the private text either
    if (method == "GET") {
      CHECK(body.empty());
      continue;
    }
    REQUIRE(method == "POST");
    REQUIRE(target.find("/submissions") != std::string::npos);
    ++submissions;
    const json j = json::parse(body);
    std::set<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
    CHECK(keys == std::set<std::string>{"coeffs", "examples", "base_version", "loss"});
    CHECK(j["coeffs"].size() == 3);
    for (const auto& c : j["coeffs"]) CHECK(c.is_number());
    CHECK(j["loss"].size() == 1);
    CHECK(j["loss"]["mean"].is_number());
    CHECK(j["examples"] == 12);
  }
  CHECK(submissions == 1);
}

TEST_CASE("federation: lost requests and lost replies are retried: the submission counts once", "[federation]") {
  World w;
  w.create_task("faults");
  auto flaky = std::make_unique<FlakyTransport>(*w.server.svc, std::set<int>{}, std::set<int>{});
  FlakyTransport* raw = flaky.get();
  Device d = w.device("faults", "flaky", std::move(flaky));
  // From here: request 0 (round) fails before delivery, 1 is its retry; 2 (submit) is delivered but
  // its reply lost, 3 is the retry the server answers as a duplicate.
  raw->arm({0}, {2});
  const int before = raw->count_;
  auto ri = d.client->round("faults");  // first attempt fails before delivery, the retry succeeds
  REQUIRE(ri.is_ok());
  auto p = d.fed->participate(ri.value());  // the submission's reply is lost once: retried, a duplicate
  REQUIRE(p.is_ok());
  CHECK(p->submitted());
  CHECK(raw->count_ - before == 4);
  auto detail = w.server.json_of(w.server.admin("GET", "/v1/admin/tasks/faults/rounds/1"));
  CHECK(detail["submission_list"].size() == 1);
  // A device that cannot reach the server at all gets an error after its retries, not a hang.
  auto dead = std::make_unique<FlakyTransport>(*w.server.svc, std::set<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, std::set<int>{});
  std::vector<RetryNotice> notices;
  RetryPolicy told{3, 1, [&](const RetryNotice& n) { notices.push_back(n); }};
  auto c = FederationClient::with_credential(std::move(dead), d.client->device_id(), d.client->credential(), told);
  auto r = c->round("faults");
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().message().find("after 4 attempts") != std::string::npos);
  // Each retry was announced before its wait: which one of how many, the request and the failure.
  REQUIRE(notices.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(notices[i].retry == i + 1);
    CHECK(notices[i].retries == 3);
    CHECK(notices[i].request == "GET " + protocol::current_round_path("faults"));
    CHECK_FALSE(notices[i].why.empty());
  }
}

TEST_CASE("federation: a device offline for a week syncs to the exact shared weights, by log or by snapshot", "[federation]") {
  World w;
  // The server holds the base values of the trainable tensors, so it can serve snapshots.
  LoadOptions lo;
  lo.require_tokenizer = true;
  auto base = load_model(kModel, lo);
  REQUIRE(base.is_ok());
  REQUIRE(base->model->weights().make_trainable(NamePatterns(expand_trainable("norms", base->model->config().num_layers))).is_ok());
  std::vector<TensorToWrite> tw;
  for (const auto& t : base->model->weights().trainable_tensors()) tw.push_back({t.name, DType::kF32, {static_cast<int64_t>(t.numel)}, t.data});
  const std::string weights = w.server.dir + "/base.safetensors";
  REQUIRE(write_safetensors(weights, tw).is_ok());
  w.create_task("week", R"(,"base_weights":")" + weights + "\"");
  Device stay = w.device("week", "stay"), away_log = w.device("week", "away_log"), away_snap = w.device("week", "away_snap");
  w.round("week", {&stay, &away_log, &away_snap});
  for (int r = 0; r < 40; ++r) {
    w.round("week", {&stay});
    REQUIRE(stay.fed->sync().is_ok());
  }
  CHECK(stay.fed->version() == 41 * 3);
  REQUIRE(away_log.fed->sync().is_ok());  // 120 entries behind: replays the log
  CHECK(away_log.fed->version() == stay.fed->version());
  CHECK(weights_of(*away_log.model.loaded.model) == weights_of(*stay.model.loaded.model));
  // The same return, downloading a snapshot instead (the device's threshold is below the gap).
  FederatedDeviceOptions o;
  o.task_id = "week";
  o.state_dir = away_snap.state_dir;
  o.snapshot_after = 10;
  std::vector<size_t> all(away_snap.task->size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto reopened = FederatedDevice::open(*away_snap.model.loaded.model, away_snap.model.model_id, *away_snap.task, all, *away_snap.client, o, nullptr);
  REQUIRE(reopened.is_ok());
  const uint64_t down_before = away_snap.client->bytes_received();
  REQUIRE(reopened.value()->sync().is_ok());
  CHECK(reopened.value()->version() == stay.fed->version());
  CHECK(weights_of(*away_snap.model.loaded.model) == weights_of(*stay.model.loaded.model));
  CHECK(away_snap.client->bytes_received() > down_before);
  // The device can take part again at once.
  w.round("week", {&stay, &away_log});
}

TEST_CASE("federation: personal adaptation is kept on top of each newer shared base, across restarts", "[federation]") {
  World w;
  w.create_task("personal");
  Device d = w.device("personal", "me"), other = w.device("personal", "other");
  TrainOptions t;
  t.batch_size = 4;
  t.lr = 1e-3f;
  t.seed = 99;
  REQUIRE(d.fed->personalize(t, 4).is_ok());
  CHECK(d.fed->personal_log().size() == 4);
  // Rounds start from the exact shared weights, not the personalised ones.
  w.round("personal", {&d, &other});
  REQUIRE(d.fed->sync().is_ok());
  REQUIRE(other.fed->sync().is_ok());
  // other has no personal log: its weights are the shared ones. d's = shared + its personal log.
  auto shared = SafetensorsFile::open(d.state_dir + "/shared.safetensors");
  REQUIRE(shared.is_ok());
  std::vector<std::vector<float>> expect;
  std::vector<NamedTensor> named;
  for (const auto& t2 : d.model.loaded.model->weights().trainable_tensors()) {
    expect.emplace_back(t2.numel);
    REQUIRE(shared->read_f32(*shared->find(t2.name), 0, t2.numel, expect.back().data()).is_ok());
  }
  std::string shared_bytes;
  for (auto& e : expect) shared_bytes.append(reinterpret_cast<const char*>(e.data()), e.size() * 4);
  CHECK(shared_bytes == weights_of(*other.model.loaded.model));
  size_t i = 0;
  for (const auto& t2 : d.model.loaded.model->weights().trainable_tensors()) named.push_back({t2.name, expect[i++].data(), t2.numel});
  replay_log(nullptr, Distribution::kRademacher, d.fed->personal_log(), named);
  std::string personal_bytes;
  for (auto& e : expect) personal_bytes.append(reinterpret_cast<const char*>(e.data()), e.size() * 4);
  CHECK(personal_bytes == weights_of(*d.model.loaded.model));
  CHECK(personal_bytes != shared_bytes);
  // A restart (a new model, the same state directory) comes back to shared + personal.
  Device again = w.device("personal", "me");
  CHECK(again.fed->personal_log().size() == 4);
  CHECK(weights_of(*again.model.loaded.model) == personal_bytes);
}

TEST_CASE("federation: a task with an adapter trains kilobytes of LoRA on every device and serves them as snapshots", "[federation][lora]") {
  World w;
  // The task's device settings name the adapter; the trainable set is the adapter alone.
  LoraConfig lora;
  lora.rank = 2;
  lora.targets = "q_proj,v_proj";
  lora.init_seed = 0x1234;
  // base_weights: the adapters at their seeded start, as `pocketllm base-weights` writes them.
  auto base = load_model(kModel);
  REQUIRE(base.is_ok());
  REQUIRE(select_trainable(*base->model, "none", lora).is_ok());
  std::vector<TensorToWrite> tw;
  size_t adapter_numel = 0;
  for (const Weight* t : base->model->weights().trainable()) {
    CHECK(is_lora_tensor_name(t->name));
    tw.push_back({t->name, DType::kF32, t->shape, t->data});
    adapter_numel += t->numel();
  }
  const std::string weights = w.server.dir + "/adapters.safetensors";
  REQUIRE(write_safetensors(weights, tw).is_ok());
  const std::string body = R"({"id":"lora","base_model_id":")" + w.model_id +
                           R"(","trainable":"none","tau":3,"batch_size":4,"lr":0.01,"round_seconds":3600,"min_submissions":1,)"
                           R"("base_weights":")" + weights + R"(","device":{"task":"lm","max_length":24,"adapter":)" + lora.to_json().dump() + "}}";
  REQUIRE(w.server.admin("POST", "/v1/admin/tasks", body).status == 201);
  Device a = w.device("lora", "a"), b = w.device("lora", "b"), late = w.device("lora", "late");
  CHECK(a.model.loaded.model->weights().trainable_numel() == adapter_numel);
  CHECK(adapter_numel * 4 < 64 * 1024);  // the trainable state is kilobytes
  const std::string start = weights_of(*a.model.loaded.model);
  for (int r = 0; r < 4; ++r) {
    w.round("lora", {&a, &b});
    REQUIRE(a.fed->sync().is_ok());
    REQUIRE(b.fed->sync().is_ok());
  }
  CHECK(weights_of(*a.model.loaded.model) == weights_of(*b.model.loaded.model));
  CHECK(weights_of(*a.model.loaded.model) != start);  // the adapters moved
  // A device away for the 4 rounds, reopened with a low snapshot threshold, takes the server's snapshot
  // of the adapters (built from base_weights) instead of the log.
  CHECK(weights_of(*late.model.loaded.model) == start);
  FederatedDeviceOptions o;
  o.task_id = "lora";
  o.state_dir = late.state_dir;
  o.snapshot_after = 2;
  std::vector<size_t> all(late.task->size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto fed = FederatedDevice::open(*late.model.loaded.model, late.model.model_id, *late.task, all, *late.client, o, nullptr);
  REQUIRE(fed.is_ok());
  const uint64_t down_before = late.client->bytes_received();
  REQUIRE(fed.value()->sync().is_ok());
  CHECK(late.client->bytes_received() > down_before);
  CHECK(weights_of(*late.model.loaded.model) == weights_of(*a.model.loaded.model));
}

namespace {

// The log of a task with the given secagg mode after one round of three devices taking part at once
// (threads: each blocks in its round's phases while the others move), the server ticking every 2 ms.
// `sent` collects what left the devices.
std::vector<UpdateEntry> secure_round(World& w, const std::string& task, const std::string& mode,
                                      std::vector<std::tuple<std::string, std::string, std::string>>* sent) {
  w.create_task(task, R"(,"seed_key":"00000000000abcde","goal_submissions":3,"min_submissions":2,"secagg":{"mode":")" + mode +
                          R"(","bound":0.05})");
  std::vector<Device> devices;
  for (const char* name : {"s0", "s1", "s2"}) devices.push_back(w.device(task, name));
  std::mutex mu;
  for (Device& d : devices)
    d.client->set_request_observer([&](const std::string& m, const std::string& t, const std::string& b) {
      std::lock_guard<std::mutex> lock(mu);
      sent->emplace_back(m, t, b);
    });
  std::atomic<bool> stop{false};
  std::thread ticker([&] {
    while (!stop) {
      w.server.svc->tick();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  std::vector<Result<Participation>> results(devices.size(), Status(StatusCode::kInternal, "not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < devices.size(); ++i)
    threads.emplace_back([&, i] {
      auto ri = devices[i].client->round(task);
      results[i] = ri ? devices[i].fed->participate(ri.value()) : Result<Participation>(ri.status());
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 500 && w.server.json_of(w.server.admin("GET", "/v1/tasks/" + task))["version"] == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop = true;
  ticker.join();
  for (auto& r : results) {
    INFO(r.status().to_string());
    REQUIRE(r.is_ok());
    INFO(r->describe());
    CHECK(r->submitted());
  }
  auto log = devices[0].client->log_since(task, 0);
  REQUIRE(log.is_ok());
  return log->entries();
}

}  // namespace

TEST_CASE("federation: a masked secure round applies the same bits as the plain fixed-point sum, and no scalar leaves a device",
          "[federation][secagg]") {
  World a, b;  // two servers: the same device names (data orders) on each
  std::vector<std::tuple<std::string, std::string, std::string>> masked_sent, plain_sent;
  const auto masked = secure_round(a, "sa", "masked", &masked_sent);
  const auto plain = secure_round(b, "sa", "plain", &plain_sent);
  REQUIRE(masked.size() == 3);
  REQUIRE(plain.size() == 3);
  for (size_t k = 0; k < 3; ++k) {
    CHECK(masked[k].seed == plain[k].seed);
    CHECK(std::memcmp(&masked[k].coeff, &plain[k].coeff, 4) == 0);
    CHECK(masked[k].coeff != 0.0f);
  }
  // Masked: every upload is a secagg phase message (keys, shares, masked words, revealed shares).
  std::set<std::string> steps;
  for (const auto& [method, target, body] : masked_sent) {
    if (method != "POST") continue;
    CHECK(target.find("/submissions") == std::string::npos);
    CHECK(body.find("coeffs") == std::string::npos);
    CHECK(body.find(kCanary) == std::string::npos);
    steps.insert(target.substr(target.rfind('/') + 1));
  }
  CHECK(steps == std::set<std::string>{"keys", "shares", "masked", "unmask"});
  // Plain: the scalars themselves (the comparison the masked protocol is checked against).
  bool plain_scalars = false;
  for (const auto& [method, target, body] : plain_sent) plain_scalars |= body.find("coeffs") != std::string::npos;
  CHECK(plain_scalars);
}
