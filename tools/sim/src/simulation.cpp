#include "pocketllm/sim/simulation.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "pocketllm/client/generate.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"
#include "pocketllm/common/seeds.h"
#include "pocketllm/common/utf8.h"
#include "pocketllm/federation/device_model.h"
#include "pocketllm/federation/secure_submission.h"
#include "pocketllm/sim/partition.h"
#include "report.h"
#include "server_link.h"
#include "virtual_device.h"

namespace pocketllm::sim {
namespace {

using nlohmann::json;

// A uniform in [0, 1) from the simulation seed and three coordinates (round, device, purpose).
double uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  return static_cast<double>(splitmix64(seed ^ splitmix64(a ^ splitmix64(b ^ splitmix64(c)))) >> 11) / 9007199254740992.0;
}

size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

std::string sample(ThreadPool* pool, DeviceModel& m, const std::string& prompt) {
  auto ids = m.loaded.tokenizer->encode(prompt, true, false);
  if (!ids) return "(" + ids.status().message() + ")";
  GenerateOptions o;  // what a user would sample with (the demo prints these settings)
  o.max_new_tokens = 40;
  o.greedy = false;
  o.temperature = 0.8f;
  o.top_p = 0.9f;
  o.repetition_penalty = 1.2f;
  o.seed = 0;
  auto r = generate(pool, *m.loaded.model, ids.value(), o);
  if (!r) return "(" + r.status().message() + ")";
  std::vector<int32_t> out(r->tokens.begin() + static_cast<long>(r->prompt_tokens), r->tokens.end());
  return prompt + to_valid_utf8(m.loaded.tokenizer->decode(out));
}

// The task the simulation sends to the server (also written to OUT/task.json).
json task_spec(const SimOptions& o, const std::string& model_id, std::string* task_id) {
  char key[17];
  std::snprintf(key, sizeof key, "%016llx", static_cast<unsigned long long>(splitmix64(o.seed)));
  *task_id = o.task_id.empty() ? "sim-" + std::string(key).substr(0, 8) : o.task_id;
  json t = {{"id", *task_id}, {"base_model_id", model_id}, {"trainable", o.trainable}, {"lr", o.lr}, {"eps", o.eps},
            {"batch_size", o.batch_size}, {"tau", o.tau}, {"round_seconds", 3600}, {"min_submissions", o.min_submissions}, {"max_extensions", 0},
            {"strategy", o.strategy}, {"clip", o.clip}, {"seed_key", key}, {"device", o.device}};
  if (o.seed_groups > 1) t["seed_groups"] = o.seed_groups;
  if (o.dp != "off") {
    json p = {{"mode", o.dp}, {"clip_norm", o.dp_clip_norm}, {"sampling_rate", o.dp_sampling_rate},
              {"target_epsilon", o.dp_target_epsilon}, {"delta", o.dp_delta}};
    if (o.dp_noise_multiplier > 0) p["noise_multiplier"] = o.dp_noise_multiplier;
    else p["planned_rounds"] = o.rounds;
    if (o.dp == "central") p["expected_participants"] = std::max(1.0, o.dp_sampling_rate * o.devices);
    t["privacy"] = p;
    t.erase("clip");
  }
  if (o.secagg != "off") {
    t["secagg"] = {{"mode", o.secagg}};
    if (o.dp == "off") t["secagg"]["bound"] = o.secagg_bound;
    t["min_submissions"] = std::max(2, o.min_submissions);  // a sum of one device would be its input
  }
  return t;
}

// A device in a masked round's phases, and the last phase it completes (1 keys, 2 shares, 3 masked input,
// 4 all: it stays to the end).
struct SecureDevice {
  VirtualDevice* device;
  std::unique_ptr<SecureSubmission> submission;
  int leave_after;
};

// Everything one simulation holds: the server link, the shared model, the devices, the evaluation.
struct Simulation {
  const SimOptions& o;
  ThreadPool pool;
  std::unique_ptr<ServerLink> link;
  TaskInfo info;
  json spec;
  DeviceModel model;
  std::unique_ptr<Task> train, eval;
  std::unique_ptr<SharedWeights> shared;
  std::vector<std::unique_ptr<VirtualDevice>> devices;
  uint64_t version = 0;

  explicit Simulation(const SimOptions& options) : o(options), pool(options.threads) {}
  Status setup();
  Status enrol_devices();
  Result<RoundRow> run_round(uint64_t r);
  Status secure_phases(uint64_t round, std::vector<SecureDevice>* secure, RoundRow* row);
  Status upload(VirtualDevice& d, FederationClient& c, const RoundInfo& round, Participation p, int leave_after, RoundRow* row,
                std::vector<SecureDevice>* secure);
  Status submit_late(VirtualDevice& d, const RoundInfo& round, Participation p, RoundRow* row);
  Status wait_until_over(uint64_t round);
  // Distributed workers: the first index of this worker's devices, whether it coordinates, and how many
  // submissions round r should receive from all workers together.
  size_t first() const { return static_cast<size_t>(o.range_begin); }
  bool coordinator() const { return o.range_begin == 0; }
  uint64_t expected_in_time(uint64_t r) const;
  Status close_distributed(uint64_t r);
  Status wait_for_submissions(uint64_t round, uint64_t expected);
  Status wait_for_task(const std::string& task_id);
  std::vector<bool> shard_empty;  // every device's (all workers'), for expected_in_time
  Result<std::unique_ptr<FederationClient>> client_of(const VirtualDevice& d);
  Status evaluate(double* loss, double* acc);
};

Status Simulation::setup() {
  LoadOptions lo;
  lo.require_tokenizer = true;
  auto loaded = load_model(o.model_path, lo);  // once, shared by every virtual device
  if (!loaded) return loaded.status();
  const std::string model_id = loaded->model->weights().compute_model_id();
  auto l = ServerLink::open(o);
  if (!l) return l.status();
  link = std::move(l.value());
  std::string task_id;
  spec = task_spec(o, model_id, &task_id);
  POCKETLLM_RETURN_IF_ERROR(write_file_atomic(o.out_dir + "/task.json", spec.dump(1) + "\n"));
  if (coordinator()) {
    auto created = link->admin("POST", "/v1/admin/tasks", spec.dump());
    if (!created) return created.status();
    // The server's view of the privacy settings (a calibrated noise multiplier) is what the report records.
    if (created->contains("privacy")) spec["privacy"] = (*created)["privacy"];
  } else {
    POCKETLLM_RETURN_IF_ERROR(wait_for_task(task_id));
  }
  auto ti = link->reader().task(task_id);
  if (!ti) return ti.status();
  info = ti.value();
  auto dm = prepare_device_model(std::move(loaded.value()), model_id, info);
  if (!dm) return dm.status();
  model = std::move(dm.value());
  auto t = load_device_task(model, o.data_path);
  if (!t) return t.status();
  train = std::move(t.value());
  if (!o.eval_data_path.empty()) {
    auto e = load_device_task(model, o.eval_data_path);
    if (!e) return e.status();
    eval = std::move(e.value());
  }
  shared = std::make_unique<SharedWeights>(model.loaded.model->weights().trainable_tensors());
  return Status::ok();
}

Status Simulation::enrol_devices() {
  std::vector<size_t> all(train->size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto spec_p = parse_partition(o.partition, o.seed);
  if (!spec_p) return spec_p.status();
  auto shards = partition_examples(all, train->labels(), o.devices, spec_p.value());
  if (!shards) return shards.status();
  for (const auto& shard : shards.value()) shard_empty.push_back(shard.empty());
  const int end = o.range_end < 0 ? o.devices : o.range_end;
  auto token = link->admin("POST", "/v1/admin/enrolment-tokens", json{{"uses", std::max(1, end - o.range_begin)}}.dump());
  if (!token) return token.status();
  for (int i = o.range_begin; i < end; ++i) {
    auto t = link->transport();
    if (!t) return t.status();
    auto c = FederationClient::open(std::move(t.value()), link->url(), "", (*token)["token"].get<std::string>(), RetryPolicy{3, 100, {}});
    if (!c) return Status(c.status().code(), "enrolling device " + std::to_string(i) + ": " + c.status().message());
    auto d = std::make_unique<VirtualDevice>(*model.loaded.model, *train, &pool, *shared, info.id);
    d->id = c.value()->device_id();
    d->credential = c.value()->credential();
    d->shard = std::move(shards.value()[static_cast<size_t>(i)]);
    d->seed = device_data_seed(o.seed, i);
    d->byzantine = uniform(o.seed, 0x62797a, static_cast<uint64_t>(i), 4) < o.byzantine;  // "byz"
    d->privacy = info.privacy;
    devices.push_back(std::move(d));
  }
  return Status::ok();
}

Status Simulation::evaluate(double* loss, double* acc) {
  if (!eval) return Status::ok();
  auto e = eval->evaluate(&pool, *model.loaded.model, kDeviceEvalBatch);
  if (!e) return e.status();
  *loss = e->loss;
  *acc = e->accuracy;
  return Status::ok();
}

// One round: the asked devices train and submit (or drop out, or straggle), the round is closed, the
// stragglers are refused, and the shared model follows the log (one replay for all devices).
Result<RoundRow> Simulation::run_round(uint64_t r) {
  const auto t0 = std::chrono::steady_clock::now();
  RoundRow row;
  row.round = r;
  std::vector<std::pair<VirtualDevice*, Participation>> stragglers;
  std::vector<SecureDevice> secure;
  RoundInfo round;
  for (size_t local = 0; local < devices.size(); ++local) {
    VirtualDevice& d = *devices[local];
    const size_t i = first() + local;  // the device's index among all workers' devices: its draws
    if (uniform(o.seed, r, i, 1) >= o.participation || d.shard.empty()) continue;
    ++row.asked;
    auto t = link->transport();
    if (!t) return t.status();
    auto c = FederationClient::with_credential(std::move(t.value()), d.id, d.credential, RetryPolicy{3, 100, {}});
    d.client = c.get();
    auto ri = c->round(info.id);
    if (!ri) return ri.status();
    round = ri.value();
    auto p = d.train(round);
    if (!p) return p.status();
    if (p->outcome == Outcome::kNotSampled) {  // the server's Poisson sampling left this device out
      --row.asked;  // (its round fetch counts in its own bytes, not in the participants' per-device average)
      d.client = nullptr;
      d.bytes_down += c->bytes_received();
      continue;
    }
    const bool dropped = uniform(o.seed, r, i, 2) < o.dropout;
    // Under secure aggregation a dropped device leaves after a phase drawn from the seed (0: before its
    // keys … 3: after its masked input, which then counts); without it, before submitting.
    const int leave_after = !dropped ? 4 : o.secagg == "off" ? 0 : static_cast<int>(uniform(o.seed, r, i, 5) * 4);
    row.dropped += dropped;
    if (dropped && leave_after == 0) {
    } else if (!dropped && uniform(o.seed, r, i, 3) < o.straggler) {
      stragglers.emplace_back(&d, std::move(p.value()));
    } else {
      if (d.byzantine && p->outcome == Outcome::kTrained)
        POCKETLLM_RETURN_IF_ERROR(apply_attack(o.attack, o.seed ^ splitmix64(r * 1000003 + i), &p->local.coeffs, &p->local.examples));
      POCKETLLM_RETURN_IF_ERROR(upload(d, *c, round, std::move(p.value()), leave_after, &row, &secure));
    }
    d.client = nullptr;
    d.bytes_up += c->bytes_sent();
    d.bytes_down += c->bytes_received();
    row.up += c->bytes_sent();
    row.down += c->bytes_received();
  }
  if (!secure.empty()) POCKETLLM_RETURN_IF_ERROR(secure_phases(round.round, &secure, &row));
  if (o.range_end >= 0) {
    POCKETLLM_RETURN_IF_ERROR(close_distributed(r));
  } else if (row.asked > 0) {
    const std::string target = "/v1/admin/tasks/" + info.id + "/rounds/" + std::to_string(round.round) + "/close";
    auto closed = link->admin("POST", target + (o.secagg == "masked" ? "?phase=unmask" : ""), "");
    if (!closed && o.secagg != "masked") return closed.status();  // a masked round may be over already (applied or abandoned)
    if (o.secagg == "masked") POCKETLLM_RETURN_IF_ERROR(wait_until_over(round.round));
  }
  for (auto& [d, p] : stragglers) POCKETLLM_RETURN_IF_ERROR(submit_late(*d, round, std::move(p), &row));  // refused: 409
  auto log = link->reader().log_since(info.id, version);
  if (!log) return log.status();
  replay_log(&pool, info.dist, log.value(), shared->tensors());
  version += log->size();
  shared->capture();
  row.version = version;
  if (o.dp != "off") {
    auto t = link->admin("GET", "/v1/tasks/" + info.id, "");
    if (!t) return t.status();
    if (t->contains("privacy_status")) {
      row.epsilon = (*t)["privacy_status"].value("epsilon_spent", NAN);
      row.budget_spent = (*t)["privacy_status"].value("state", "") == "budget_spent";
    }
  }
  POCKETLLM_RETURN_IF_ERROR(evaluate(&row.eval_loss, &row.eval_accuracy));
  row.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return row;
}

// A trained device's upload: its keys into a masked round (it goes on through the phases later), or its
// scalars (plain) when it stays long enough to have sent its masked input.
Status Simulation::upload(VirtualDevice& d, FederationClient& c, const RoundInfo& round, Participation p, int leave_after, RoundRow* row,
                          std::vector<SecureDevice>* secure) {
  if (o.secagg == "masked" && p.outcome == Outcome::kTrained) {
    auto sub = SecureSubmission::create(round, d.privacy, p.local);
    if (!sub) return sub.status();
    auto moved = (*sub)->advance(c, info.id);  // its keys
    if (!moved) return moved.status();
    if ((*sub)->step() == SecureSubmission::Step::kFailed) std::fprintf(stderr, "device %s: %s\n", d.id.c_str(), (*sub)->failure().c_str());
    secure->push_back({&d, std::move(sub.value()), leave_after});
  } else if (leave_after >= 3) {
    auto s = d.submit(c, info.id, round, std::move(p));
    if (!s) return s.status();
    ++row->submitted;
    row->accepted += s->submitted();
  }
  return Status::ok();
}

// A straggler's upload after the round closed: the server refuses it (409), counted as late.
Status Simulation::submit_late(VirtualDevice& d, const RoundInfo& round, Participation p, RoundRow* row) {
  auto c = client_of(d);
  if (!c) return c.status();
  if (o.secagg == "masked") {
    auto sub = SecureSubmission::create(round, d.privacy, p.local);
    if (!sub) return sub.status();
    auto moved = (*sub)->advance(**c, info.id);
    if (!moved) return moved.status();
    row->late += (*sub)->step() == SecureSubmission::Step::kFailed;
  } else {
    auto s = d.submit(**c, info.id, round, std::move(p));
    if (!s) return s.status();
    row->late += s->reply.status == 409;
  }
  d.bytes_up += (*c)->bytes_sent();
  row->up += (*c)->bytes_sent();
  row->down += (*c)->bytes_received();
  return Status::ok();
}

// A real server unmasks on a thread of its own (phase finishing): the round is over when it is applied or
// abandoned, a moment after its last phase closed.
Status Simulation::wait_until_over(uint64_t round) {
  const std::string target = "/v1/admin/tasks/" + info.id + "/rounds/" + std::to_string(round);
  for (int i = 0; i < 60000; ++i) {
    auto r = link->admin("GET", target, "");
    if (!r) return r.status();
    if ((*r).value("state", "") != "open") return Status::ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cancelled("round " + std::to_string(round) + " was still unmasking after 5 minutes");
}

// The devices of round r that submit before it closes, over every worker: asked, with data, neither
// dropped nor straggling (run_round's draws for plain rounds; --device-range refuses DP and SecAgg).
// A distributed worker: the coordinator closes round r once all workers' due submissions are in; the
// others wait for that close (their stragglers submit after it, as in one process).
Status Simulation::close_distributed(uint64_t r) {
  if (!coordinator()) return wait_until_over(r);
  POCKETLLM_RETURN_IF_ERROR(wait_for_submissions(r, expected_in_time(r)));
  auto closed = link->admin("POST", "/v1/admin/tasks/" + info.id + "/rounds/" + std::to_string(r) + "/close", "");
  if (!closed) return closed.status();
  // The count it waited for includes submissions still in their group commit: then the close takes
  // effect at the server's next tick, not in this request. The round is over once it reads so.
  return wait_until_over(r);
}

uint64_t Simulation::expected_in_time(uint64_t r) const {
  uint64_t n = 0;
  for (size_t i = 0; i < shard_empty.size(); ++i) {
    if (uniform(o.seed, r, i, 1) >= o.participation || shard_empty[i]) continue;
    if (uniform(o.seed, r, i, 2) < o.dropout) continue;
    if (uniform(o.seed, r, i, 3) < o.straggler) continue;
    ++n;
  }
  return n;
}

Status Simulation::wait_for_submissions(uint64_t round, uint64_t expected) {
  const std::string target = "/v1/admin/tasks/" + info.id + "/rounds/" + std::to_string(round);
  for (int i = 0; i < 120000; ++i) {  // 10 minutes
    auto r = link->admin("GET", target, "");
    if (!r) return r.status();
    if ((*r).value("submissions", uint64_t{0}) >= expected) return Status::ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cancelled("round " + std::to_string(round) + ": the other workers' " + std::to_string(expected) +
                   " submissions did not all arrive within 10 minutes (is every --device-range running?)");
}

Status Simulation::wait_for_task(const std::string& task_id) {
  for (int i = 0; i < 1200; ++i) {  // 10 minutes
    auto t = link->admin("GET", "/v1/tasks/" + task_id, "");
    if (t) return Status::ok();
    if (t.status().code() != StatusCode::kNotFound) return t.status();
    if (i % 50 == 0) std::printf("waiting for the worker of --device-range 0:… to create task %s\n", task_id.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  return cancelled("task " + task_id + " was not created within 10 minutes (start the worker whose --device-range starts at 0)");
}

Result<std::unique_ptr<FederationClient>> Simulation::client_of(const VirtualDevice& d) {
  auto t = link->transport();
  if (!t) return t.status();
  return FederationClient::with_credential(std::move(t.value()), d.id, d.credential, RetryPolicy{3, 100, {}});
}

// A masked round after its keys: for each later phase the round is moved on (as its deadline would) and
// every device still there takes its step; a device leaves after its drawn phase.
Status Simulation::secure_phases(uint64_t round, std::vector<SecureDevice>* secure, RoundRow* row) {
  // Each close names the phase it ends: a server's own ticks may have ended it already (everyone answered).
  const std::string close = "/v1/admin/tasks/" + info.id + "/rounds/" + std::to_string(round) + "/close?phase=";
  const char* ending[] = {"", "", "advertise_keys", "share_keys", "masked_input"};
  for (int step = 2; step <= 4; ++step) {
    auto closed = link->admin("POST", close + ending[step], "");
    if (!closed) return closed.status();
    if ((*closed).value("state", "") != "open") {  // abandoned: too few in a phase
      std::fprintf(stderr, "round %llu abandoned before step %d: %s\n", static_cast<unsigned long long>(round), step, closed->dump().substr(0, 600).c_str());
      return Status::ok();
    }
    for (SecureDevice& s : *secure) {
      if (s.leave_after < step || s.submission->step() == SecureSubmission::Step::kFailed) continue;
      auto c = client_of(*s.device);
      if (!c) return c.status();
      auto moved = s.submission->advance(**c, info.id);
      if (!moved) return moved.status();
      if (s.submission->step() == SecureSubmission::Step::kFailed)
        std::fprintf(stderr, "round %llu: device %s left the secure round: %s\n", static_cast<unsigned long long>(round),
                     s.device->id.c_str(), s.submission->failure().c_str());
      s.device->bytes_up += (*c)->bytes_sent();
      s.device->bytes_down += (*c)->bytes_received();
      row->up += (*c)->bytes_sent();
      row->down += (*c)->bytes_received();
    }
  }
  for (const SecureDevice& s : *secure) {
    const auto st = s.submission->step();
    const bool sent_input = st == SecureSubmission::Step::kUnmask || st == SecureSubmission::Step::kDone;
    row->submitted += sent_input;
    row->accepted += sent_input;
  }
  return Status::ok();
}

Status save_shared(const std::string& path, const SharedWeights& shared, uint64_t version) {
  std::vector<TensorToWrite> out;
  for (const auto& t : shared.tensors()) out.push_back({t.name, DType::kF32, {static_cast<int64_t>(t.numel)}, t.data});
  return write_safetensors(path, out, {{"version", std::to_string(version)}});
}

// The shared update log, one entry a line: {"seed": 16 hex digits, "coeff": the float32 in 9 significant
// digits (exact: it reads back to the same bits)}.
Status write_log_jsonl(const std::string& path, Simulation& sim) {
  auto log = sim.link->reader().log_since(sim.info.id, 0);
  if (!log) return log.status();
  std::string text;
  char line[96];
  for (const UpdateEntry& e : log->entries()) {
    std::snprintf(line, sizeof line, "{\"seed\": \"%016llx\", \"coeff\": %.9g}\n", static_cast<unsigned long long>(e.seed),
                  static_cast<double>(e.coeff));
    text += line;
  }
  return write_file_atomic(path, text);
}

}  // namespace

Status apply_attack(const std::string& attack, uint64_t seed, std::vector<float>* coeffs, uint64_t* examples) {
  if (attack == "none") return Status::ok();
  for (size_t k = 0; k < coeffs->size(); ++k) {
    float& c = (*coeffs)[k];
    if (attack == "flt_max") c = k % 2 ? -std::numeric_limits<float>::max() : std::numeric_limits<float>::max();
    else if (attack == "sign_flip") c *= -100.0f;
    else if (attack == "random") c = static_cast<float>(2e6 * (uniform(seed, k, 0x72, 5) - 0.5));
    else if (attack == "inner_product") c *= -5.0f;
    else return invalid_argument("unknown attack '" + attack + "' (flt_max, sign_flip, random, inner_product)");
  }
  if (attack == "flt_max") *examples = protocol::kMaxExamples;
  return Status::ok();
}

Result<SimOutcome> run_simulation(const SimOptions& o) {
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) return io_error(o.out_dir + ": cannot create: " + ec.message());
  Simulation sim(o);
  POCKETLLM_RETURN_IF_ERROR(sim.setup());
  const size_t rss_before = rss_bytes();
  POCKETLLM_RETURN_IF_ERROR(sim.enrol_devices());
  Report report(o, sim.spec, sim.eval != nullptr);
  report.memory(sim.devices, rss_bytes() - std::min(rss_bytes(), rss_before));
  std::printf("pocketllm-sim: %d devices (%s mode), task %s, %zu training examples, %zu trainable parameters\n", o.devices,
              o.in_process ? "inprocess" : "loopback", sim.info.id.c_str(), sim.train->size(), sim.model.loaded.model->weights().trainable_numel());
  if (o.range_end >= 0)
    std::printf("worker for devices %d..%d of %d (%s)\n", o.range_begin, o.range_end - 1, o.devices,
                sim.coordinator() ? "coordinator: creates the task, closes the rounds" : "waits for the coordinator's closes");
  const auto no_data = std::count(sim.shard_empty.begin(), sim.shard_empty.end(), true);
  if (no_data > 0)
    std::printf("%td of %d devices hold no training example (%zu examples, --partition %s) and never take part\n", no_data,
                o.devices, sim.train->size(), o.partition.c_str());
  report.print_memory();
  std::string sample_before;
  if (!o.sample_prompt.empty()) sample_before = sample(&sim.pool, sim.model, o.sample_prompt);
  double loss0 = NAN, acc0 = -1;
  POCKETLLM_RETURN_IF_ERROR(sim.evaluate(&loss0, &acc0));
  POCKETLLM_RETURN_IF_ERROR(report.start(loss0, acc0));
  SimOutcome outcome;
  for (uint64_t r = 1; r <= o.rounds; ++r) {
    if (o.stop != nullptr && o.stop->load()) {
      outcome.stopped = true;
      std::printf("stopped after round %llu of %llu: the outputs cover the rounds done\n", static_cast<unsigned long long>(r - 1),
                  static_cast<unsigned long long>(o.rounds));
      break;
    }
    auto row = sim.run_round(r);
    if (!row) return row.status();
    report.add(row.value());
    outcome.rounds_done = r;
    if (row->budget_spent) {
      std::printf("the task's privacy budget is spent after round %llu (epsilon %.3f): the server opens no further round\n",
                  static_cast<unsigned long long>(r), row->epsilon);
      break;
    }
  }
  POCKETLLM_RETURN_IF_ERROR(report.finish());
  POCKETLLM_RETURN_IF_ERROR(write_log_jsonl(o.out_dir + "/log.jsonl", sim));
  if (!o.save_shared.empty()) POCKETLLM_RETURN_IF_ERROR(save_shared(o.save_shared, *sim.shared, sim.version));
  if (!o.sample_prompt.empty())
    std::printf("\nsample before: %s\nsample after:  %s\n", sample_before.c_str(), sample(&sim.pool, sim.model, o.sample_prompt).c_str());
  std::printf("\n%llu rounds in %.1f s; log version %llu; wrote %s/rounds.csv, rounds.json, plot.svg\n",
              static_cast<unsigned long long>(outcome.rounds_done), report.seconds(), static_cast<unsigned long long>(sim.version),
              o.out_dir.c_str());
  return outcome;
}

}  // namespace pocketllm::sim
