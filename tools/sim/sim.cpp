// pocketllm-sim: N virtual devices of a federation on one machine, against a real server on loopback
// or an in-process one. Devices share one base model in memory; each holds only its data shard, its
// credential and its version. Writes per-round CSV/JSON and an SVG plot.
#include <openssl/rand.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "../../client/cli/args.h"
#include "in_process_transport.h"
#include "plot.h"
#include "pocketllm/client/federated_device.h"
#include "pocketllm/client/federated_setup.h"
#include "pocketllm/client/generate.h"
#include "pocketllm/client/partition.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/seeds.h"
#include "pocketllm/common/sha256.h"

using namespace pocketllm;
using nlohmann::json;

namespace {

constexpr const char* kHelp =
    "usage: pocketllm-sim --model PATH --data FILE [--eval-data FILE] [options]\n"
    "\n"
    "Simulates a federation of N devices fine-tuning one model with zeroth-order rounds. Each device\n"
    "trains on a private shard of --data and uploads only its tau scalars.\n"
    "\n"
    "federation:\n"
    "  --devices N (8)  --rounds R (10)\n"
    "  --mode inprocess|loopback   an in-process server (default), or a real one over HTTPS:\n"
    "  --server URL --ca FILE --admin-token-file FILE   (loopback)\n"
    "  --participation P (1.0)     fraction of devices asked per round (seeded)\n"
    "  --dropout P (0)             fraction of asked devices that train but never submit\n"
    "  --straggler P (0)           fraction that submit after the round closed (refused with 409)\n"
    "  --partition iid|contiguous|dirichlet:ALPHA (iid)   how --data is split across devices\n"
    "  --seed S (0)                partition, data order, participation and the round seeds\n"
    "task (sent to the server):\n"
    "  --task lm|classify (lm)  --template T  --labels L  --preset sst2|agnews  --max-length N (128)\n"
    "  --tau K (8)  --batch-size B (8)  --lr LR (1e-4)  --eps EPS (1e-3)  --trainable P (*)\n"
    "  --strategy weighted_mean|median|trimmed_mean (weighted_mean)  --clip C (0)  --task-id ID\n"
    "output:\n"
    "  --out DIR (sim-out)  rounds.csv, rounds.json, plot.svg, task.json\n"
    "  --sample PROMPT      greedy sample from the shared model before and after\n"
    "  --save-shared FILE   write the final shared trainable tensors (safetensors, as devices keep them)\n"
    "  --threads N          worker threads (default: all cores)\n";

struct VirtualDevice {
  std::string id, credential;
  std::vector<size_t> shard;
  uint64_t data_seed = 0;
  uint64_t version = 0;
  uint64_t bytes_up = 0, bytes_down = 0;
};

double uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  return static_cast<double>(splitmix64(seed ^ splitmix64(a ^ splitmix64(b ^ splitmix64(c)))) >> 11) / 9007199254740992.0;
}

size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

int fail(const std::string& m) {
  std::fprintf(stderr, "pocketllm-sim: %s\n", m.c_str());
  return 1;
}

std::string sample(ThreadPool* pool, DeviceModel& m, const std::string& prompt) {
  auto ids = m.loaded.tokenizer->encode(prompt, true, false);
  if (!ids) return "(" + ids.status().message() + ")";
  GenerateOptions o;
  o.max_new_tokens = 40;
  auto r = generate(pool, *m.loaded.model, ids.value(), o);
  if (!r) return "(" + r.status().message() + ")";
  std::vector<int32_t> out(r->tokens.begin() + static_cast<long>(r->prompt_tokens), r->tokens.end());
  return prompt + m.loaded.tokenizer->decode(out);
}

}  // namespace

int main(int argc, char** argv) {
  cli::Args args({"model", "data", "eval-data", "devices", "rounds", "mode", "server", "ca", "admin-token-file", "participation",
                  "dropout", "straggler", "partition", "seed", "task", "template", "labels", "preset", "max-length", "tau",
                  "batch-size", "lr", "eps", "trainable", "strategy", "clip", "task-id", "out", "sample", "threads", "save-shared"},
                 {"help"});
  if (Status s = args.parse(std::vector<std::string>(argv + 1, argv + argc)); !s) {
    std::fprintf(stderr, "pocketllm-sim: %s\n\n%s", s.message().c_str(), kHelp);
    return 2;
  }
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  auto usage = [](const std::string& m) {
    std::fprintf(stderr, "pocketllm-sim: %s (see --help)\n", m.c_str());
    return 2;
  };
  if (!args.has("model") || !args.has("data")) return usage("--model and --data are required");
  auto devices_n = args.get_u64("devices", 8), rounds_n = args.get_u64("rounds", 10), threads = args.get_u64("threads", 0);
  auto tau = args.get_u64("tau", 8), batch = args.get_u64("batch-size", 8), max_len = args.get_u64("max-length", 128);
  auto participation = args.get_double("participation", 1.0), dropout = args.get_double("dropout", 0),
       straggler = args.get_double("straggler", 0), lr = args.get_double("lr", 1e-4), eps = args.get_double("eps", 1e-3),
       clip = args.get_double("clip", 0);
  if (!devices_n || devices_n.value() < 1 || devices_n.value() > 100000) return usage("--devices must be 1..100000");
  if (!rounds_n || rounds_n.value() < 1) return usage("--rounds must be a positive integer");
  if (!tau || tau.value() < 1 || tau.value() > 256) return usage("--tau must be 1..256");
  if (!batch || batch.value() < 1 || !max_len || max_len.value() < 2 || !threads) return usage("bad --batch-size, --max-length or --threads");
  for (auto* p : {&participation, &dropout, &straggler})
    if (!*p || p->value() < 0 || p->value() > 1) return usage("--participation, --dropout and --straggler must be in [0, 1]");
  if (!lr || !eps || eps.value() <= 0 || !clip || clip.value() < 0) return usage("bad --lr, --eps or --clip");
  uint64_t seed = 0;
  if (!parse_seed_text(args.get("seed", "0"), &seed)) return usage("--seed must be 0x<hex> or decimal");
  auto partition = parse_partition(args.get("partition", "iid"), seed);
  if (!partition) return usage(partition.status().message());
  const std::string mode = args.get("mode", "inprocess");
  if (mode != "inprocess" && mode != "loopback") return usage("--mode must be inprocess or loopback");
  const std::string out_dir = args.get("out", "sim-out");
  std::filesystem::create_directories(out_dir);
  const int N = static_cast<int>(devices_n.value());

  // The model, loaded once and shared by every virtual device.
  ThreadPool pool(static_cast<int>(threads.value()));
  LoadOptions lo;
  lo.require_tokenizer = true;
  auto loaded = load_model(args.get("model"), lo);
  if (!loaded) return fail(loaded.status().to_string());
  const std::string model_id = loaded->model->weights().compute_model_id();

  // The server and an admin channel to it.
  std::unique_ptr<server::Service> service;
  std::string admin_token, url = args.get("server");
  auto make_transport = [&]() -> Result<std::unique_ptr<Transport>> {
    if (service) return std::unique_ptr<Transport>(std::make_unique<sim::InProcessTransport>(*service));
    net::ClientOptions o;
    o.url = url;
    o.ca_file = args.get("ca");
    auto c = net::HttpClient::create(o);
    if (!c) return c.status();
    return make_https_transport(std::move(c.value()));
  };
  if (mode == "inprocess") {
    unsigned char raw[16];
    RAND_bytes(raw, sizeof raw);
    admin_token = to_hex(raw, sizeof raw);
    server::ServiceOptions so;
    so.store_path = out_dir + "/sim-store.db";
    std::filesystem::remove(so.store_path);
    std::filesystem::remove(so.store_path + "-wal");
    std::filesystem::remove(so.store_path + "-shm");
    so.durability = server::Durability::kNormal;
    so.admin_token_sha256 = to_hex(sha256(admin_token));
    so.device_rate_per_s = 0;
    auto s = server::Service::open(so);
    if (!s) return fail(s.status().to_string());
    service = std::move(s.value());
    url = "inprocess:";
  } else {
    if (url.empty() || !args.has("admin-token-file")) return usage("--mode loopback needs --server and --admin-token-file");
    auto t = read_file(args.get("admin-token-file"), 4096);
    if (!t) return fail(t.status().to_string());
    admin_token = t->substr(0, t->find('\n'));
  }
  auto admin_t = make_transport();  // admin endpoints (raw requests)
  if (!admin_t) return fail(admin_t.status().to_string());
  auto reader_t = make_transport();  // the task and its log, read through the protocol client
  if (!reader_t) return fail(reader_t.status().to_string());
  auto reader = FederationClient::with_credential(std::move(reader_t.value()), "admin", admin_token, 0);
  auto admin = [&](const std::string& method, const std::string& target, const std::string& body) -> Result<json> {
    auto r = admin_t.value()->request(method, target, body, admin_token);
    if (!r) return r.status();
    if (r->status >= 300) return invalid_argument(method + " " + target + ": HTTP " + std::to_string(r->status) + " " + r->body);
    return json::parse(r->body);
  };

  // The task.
  json device = {{"task", args.get("task", "lm")}, {"max_length", max_len.value()}};
  if (args.has("template")) device["template"] = args.get("template");
  if (args.has("labels")) device["labels"] = args.get("labels");
  if (args.has("preset")) device["preset"] = args.get("preset");
  char key[17];
  std::snprintf(key, sizeof key, "%016llx", static_cast<unsigned long long>(splitmix64(seed)));
  const std::string task_id = args.get("task-id", "sim-" + std::string(key).substr(0, 8));
  json spec = {{"id", task_id}, {"base_model_id", model_id}, {"trainable", args.get("trainable", "*")}, {"lr", lr.value()},
               {"eps", eps.value()}, {"batch_size", batch.value()}, {"tau", tau.value()}, {"round_seconds", 3600},
               {"min_submissions", 1}, {"max_extensions", 0}, {"strategy", args.get("strategy", "weighted_mean")},
               {"clip", clip.value()}, {"seed_key", key}, {"device", device}};
  if (Status s = write_file_atomic(out_dir + "/task.json", spec.dump(1) + "\n"); !s) return fail(s.to_string());
  auto created = admin("POST", "/v1/admin/tasks", spec.dump());
  if (!created) return fail(created.status().to_string());
  TaskInfo info;
  {
    auto ti = reader->task(task_id);
    if (!ti) return fail(ti.status().to_string());
    info = ti.value();
  }
  auto dm = prepare_device_model(std::move(loaded.value()), model_id, info);
  if (!dm) return fail(dm.status().to_string());
  auto task = load_device_task(dm.value(), args.get("data"));
  if (!task) return fail(task.status().to_string());
  std::unique_ptr<Task> eval;
  if (args.has("eval-data")) {
    auto e = load_device_task(dm.value(), args.get("eval-data"));
    if (!e) return fail(e.status().to_string());
    eval = std::move(e.value());
  }
  LanguageModel& model = *dm->loaded.model;
  const std::vector<NamedTensor> tensors = model.weights().trainable_tensors();
  std::vector<std::vector<float>> shared;  // the one copy of the shared trainable weights
  for (const auto& t : tensors) shared.emplace_back(t.data, t.data + t.numel);
  auto restore_shared = [&] {
    for (size_t i = 0; i < tensors.size(); ++i) std::memcpy(tensors[i].data, shared[i].data(), shared[i].size() * 4);
  };

  // Devices: enrol, shard the data.
  std::vector<size_t> all(task.value()->size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto shards = partition_examples(all, task.value()->labels(), N, partition.value());
  if (!shards) return fail(shards.status().to_string());
  const size_t rss_before = rss_bytes();
  auto token = admin("POST", "/v1/admin/enrolment-tokens", json{{"uses", N}}.dump());
  if (!token) return fail(token.status().to_string());
  std::vector<VirtualDevice> devices(static_cast<size_t>(N));
  for (int i = 0; i < N; ++i) {
    auto t = make_transport();
    if (!t) return fail(t.status().to_string());
    auto c = FederationClient::open(std::move(t.value()), url, "", (*token)["token"].get<std::string>(), 3, 100);
    if (!c) return fail("enrolling device " + std::to_string(i) + ": " + c.status().to_string());
    VirtualDevice& d = devices[static_cast<size_t>(i)];
    d.id = c.value()->device_id();
    d.credential = c.value()->credential();
    d.shard = std::move(shards.value()[static_cast<size_t>(i)]);
    d.data_seed = device_data_seed(seed, i);
  }
  const double per_device = static_cast<double>(rss_bytes() - std::min(rss_bytes(), rss_before)) / N;
  double accounted = 0;
  for (const auto& d : devices) accounted += static_cast<double>(sizeof d + d.shard.capacity() * sizeof(size_t) + d.id.capacity() + d.credential.capacity());
  accounted /= N;
  std::printf("pocketllm-sim: %d devices (%s mode), task %s, %zu training examples, %zu trainable parameters\n", N, mode.c_str(),
              task_id.c_str(), all.size(), model.weights().trainable_numel());
  std::printf("memory per virtual device: %.2f KiB held (data shard indices, credential, counters), %.1f KiB measured RSS growth; the model is shared\n",
              accounted / 1024, per_device / 1024);
  std::string sample_before;
  if (args.has("sample")) sample_before = sample(&pool, dm.value(), args.get("sample"));

  json rows = json::array();
  std::ofstream csv(out_dir + "/rounds.csv");
  csv << "round,asked,submitted,dropped,late,accepted,version,eval_loss,eval_accuracy,bytes_up_per_device,bytes_down_per_device,"
         "cumulative_bytes_up_per_device,wall_seconds\n";
  double eval_loss0 = NAN, eval_acc0 = -1;
  auto evaluate = [&](double* loss, double* acc) -> Status {
    if (!eval) return Status::ok();
    auto e = eval->evaluate(&pool, model, 32);
    if (!e) return e.status();
    *loss = e->loss;
    *acc = e->accuracy;
    return Status::ok();
  };
  if (Status s = evaluate(&eval_loss0, &eval_acc0); !s) return fail(s.to_string());
  if (eval) std::printf("round 0: eval loss %.4f%s\n", eval_loss0, eval_acc0 >= 0 ? (", accuracy " + std::to_string(100 * eval_acc0) + "%").c_str() : "");
  double cumulative_up = 0;
  uint64_t version = 0;
  const auto t_start = std::chrono::steady_clock::now();
  for (uint64_t r = 1; r <= rounds_n.value(); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    int asked = 0, submitted = 0, dropped = 0, late = 0, accepted = 0;
    uint64_t up = 0, down = 0;
    std::vector<std::pair<size_t, LocalRound>> stragglers;
    RoundInfo round;
    for (size_t i = 0; i < devices.size(); ++i) {
      VirtualDevice& d = devices[i];
      if (uniform(seed, r, i, 1) >= participation.value() || d.shard.empty()) continue;
      ++asked;
      auto t = make_transport();
      if (!t) return fail(t.status().to_string());
      auto c = FederationClient::with_credential(std::move(t.value()), d.id, d.credential, 3, 100);
      auto ri = c->round(task_id);
      if (!ri) return fail(ri.status().to_string());
      round = ri.value();
      if (d.version < round.base_version) {  // the device syncs the entries it missed (bytes down)
        auto log = c->log_since(task_id, d.version);
        if (!log) return fail(log.status().to_string());
        d.version += log->size();
      }
      restore_shared();
      auto local = run_local_round(model, *task.value(), d.shard, round, d.data_seed, &pool);
      if (!local) return fail(local.status().to_string());
      if (uniform(seed, r, i, 2) < dropout.value()) {
        ++dropped;
      } else if (uniform(seed, r, i, 3) < straggler.value()) {
        stragglers.emplace_back(i, local.value());
      } else {
        auto reply = c->submit(task_id, round.round, local->coeffs, local->examples, round.base_version, local->mean_loss);
        if (!reply) return fail(reply.status().to_string());
        ++submitted;
        accepted += reply->accepted;
      }
      d.bytes_up += c->bytes_sent();
      d.bytes_down += c->bytes_received();
      up += c->bytes_sent();
      down += c->bytes_received();
    }
    restore_shared();
    if (asked > 0) {
      auto closed = admin("POST", "/v1/admin/tasks/" + task_id + "/rounds/" + std::to_string(round.round) + "/close", "");
      if (!closed) return fail(closed.status().to_string());
    }
    for (auto& [i, local] : stragglers) {  // too late: the server refuses them with 409
      VirtualDevice& d = devices[i];
      auto t = make_transport();
      if (!t) return fail(t.status().to_string());
      auto c = FederationClient::with_credential(std::move(t.value()), d.id, d.credential, 3, 100);
      auto reply = c->submit(task_id, round.round, local.coeffs, local.examples, round.base_version, local.mean_loss);
      if (!reply) return fail(reply.status().to_string());
      late += reply->status == 409;
      d.bytes_up += c->bytes_sent();
      up += c->bytes_sent();
      down += c->bytes_received();
    }
    // The shared model follows the log (one replay for all devices).
    {
      auto log = reader->log_since(task_id, version);
      if (!log) return fail(log.status().to_string());
      replay_log(&pool, info.dist, log.value(), tensors);
      version += log->size();
      for (size_t i = 0; i < tensors.size(); ++i) std::memcpy(shared[i].data(), tensors[i].data, shared[i].size() * 4);
    }
    double loss = NAN, acc = -1;
    if (Status s = evaluate(&loss, &acc); !s) return fail(s.to_string());
    const double participants = std::max(1, asked);
    cumulative_up += static_cast<double>(up) / N;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    json row = {{"round", r}, {"asked", asked}, {"submitted", submitted}, {"dropped", dropped}, {"late", late}, {"accepted", accepted},
                {"version", version}, {"eval_loss", eval ? json(loss) : json(nullptr)}, {"eval_accuracy", acc >= 0 ? json(acc) : json(nullptr)},
                {"bytes_up_per_device", static_cast<double>(up) / participants}, {"bytes_down_per_device", static_cast<double>(down) / participants},
                {"cumulative_bytes_up_per_device", cumulative_up}, {"wall_seconds", wall}};
    rows.push_back(row);
    csv << r << "," << asked << "," << submitted << "," << dropped << "," << late << "," << accepted << "," << version << ","
        << (eval ? std::to_string(loss) : "") << "," << (acc >= 0 ? std::to_string(acc) : "") << "," << static_cast<double>(up) / participants
        << "," << static_cast<double>(down) / participants << "," << cumulative_up << "," << wall << "\n";
    csv.flush();
    std::printf("round %llu: %d asked, %d submitted (%d accepted), %d dropped, %d late; version %llu; %s%.0f B up / %.0f B down per device; %.2f s\n",
                static_cast<unsigned long long>(r), asked, submitted, accepted, dropped, late, static_cast<unsigned long long>(version),
                eval ? ("eval loss " + std::to_string(loss) + (acc >= 0 ? " acc " + std::to_string(100 * acc) + "%" : "") + "; ").c_str() : "",
                static_cast<double>(up) / participants, static_cast<double>(down) / participants, wall);
    std::fflush(stdout);
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  json summary = {{"devices", N}, {"mode", mode}, {"task", spec}, {"memory_per_device_bytes", accounted}, {"rss_growth_per_device_bytes", per_device}, {"seconds", total},
                  {"eval_loss_start", eval ? json(eval_loss0) : json(nullptr)}, {"eval_accuracy_start", eval_acc0 >= 0 ? json(eval_acc0) : json(nullptr)},
                  {"rounds", rows}};
  if (Status s = write_file_atomic(out_dir + "/rounds.json", summary.dump(1) + "\n"); !s) return fail(s.to_string());
  sim::Series a, b;
  const bool use_acc = eval && eval_acc0 >= 0;
  a.x_label = "round";
  b.x_label = "bytes uploaded per device (cumulative)";
  a.y_label = b.y_label = use_acc ? "eval accuracy" : "eval loss";
  if (eval) {
    a.x.push_back(0);
    b.x.push_back(0);
    a.y.push_back(use_acc ? eval_acc0 : eval_loss0);
    b.y.push_back(a.y.back());
  }
  for (const auto& row : rows) {
    if (!eval) break;
    a.x.push_back(row["round"].get<double>());
    b.x.push_back(row["cumulative_bytes_up_per_device"].get<double>());
    a.y.push_back(use_acc ? row["eval_accuracy"].get<double>() : row["eval_loss"].get<double>());
    b.y.push_back(a.y.back());
  }
  const std::string svg = sim::svg_charts("pocketllm-sim: " + std::to_string(N) + " devices, task " + task_id, a, b);
  if (Status s = write_file_atomic(out_dir + "/plot.svg", svg); !s) return fail(s.to_string());
  if (args.has("save-shared")) {
    std::vector<TensorToWrite> out;
    for (const auto& t : tensors) out.push_back({t.name, DType::kF32, {static_cast<int64_t>(t.numel)}, t.data});
    if (Status s = write_safetensors(args.get("save-shared"), out, {{"version", std::to_string(version)}}); !s) return fail(s.to_string());
  }
  if (args.has("sample")) {
    std::printf("\nsample before: %s\nsample after:  %s\n", sample_before.c_str(), sample(&pool, dm.value(), args.get("sample")).c_str());
  }
  std::printf("\n%llu rounds in %.1f s; log version %llu; wrote %s/rounds.csv, rounds.json, plot.svg\n",
              static_cast<unsigned long long>(rounds_n.value()), total, static_cast<unsigned long long>(version), out_dir.c_str());
  return 0;
}
