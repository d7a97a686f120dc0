// pocketllm federate: this machine as one device of a federation (docs/protocol.md).
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <thread>

#include "args.h"
#include "commands.h"
#include "pocketllm/client/federated_device.h"
#include "pocketllm/client/federated_setup.h"
#include "pocketllm/client/partition.h"

namespace pocketllm::cli {
namespace {

constexpr const char* kHelp =
    "usage: pocketllm federate --server URL --task ID --model PATH --data FILE --state DIR [options]\n"
    "\n"
    "Takes part in federated zeroth-order fine-tuning: per round, tau local steps along the server's\n"
    "seeds on this device's data, then only tau scalars (+ example count, mean loss) are uploaded; the\n"
    "shared update log is replayed onto the model. Private text never leaves the device.\n"
    "\n"
    "  --server URL          https://host:port of the aggregation server\n"
    "  --ca FILE             trust this CA (PEM) instead of the system store\n"
    "  --pin SHA256          or trust exactly this server certificate (SHA-256 of its DER form)\n"
    "  --enrol-token T       one-time token from the operator, used when there is no credential yet\n"
    "  --credentials FILE    the device credential (default STATE/credentials.json; mode 0600)\n"
    "  --state DIR           device state: shared weights, version, personal log (created)\n"
    "  --task ID             the federated task\n"
    "  --model PATH          the task's base model (HF directory or llama2.c checkpoint)\n"
    "  --data FILE           this device's private examples (format as for finetune)\n"
    "  --shard I/N           use only shard I of N of --data (simulations; see --partition)\n"
    "  --partition P         iid | contiguous | dirichlet:ALPHA (default iid)\n"
    "  --partition-seed S    seed of the split and of the data order (default 0)\n"
    "  --rounds N            rounds to take part in (default 1), then sync and exit\n"
    "  --eval-data FILE      evaluate the shared model after each round\n"
    "  --wait S              give up when no new round opens within S seconds (default 600)\n"
    "  --threads N           worker threads (default: all cores)\n";

}  // namespace

int cmd_federate(const std::vector<std::string>& argv) {
  Args args({"server", "ca", "pin", "enrol-token", "credentials", "state", "task", "model", "data", "shard", "partition",
             "partition-seed", "rounds", "eval-data", "wait", "threads"},
            {"help"});
  if (Status s = args.parse(argv); !s) {
    std::fprintf(stderr, "pocketllm federate: %s\n\n%s", s.message().c_str(), kHelp);
    return 2;
  }
  if (args.has("help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  auto usage = [](const std::string& m) {
    std::fprintf(stderr, "pocketllm federate: %s (see --help)\n", m.c_str());
    return 2;
  };
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "pocketllm federate: %s\n", s.to_string().c_str());
    return 1;
  };
  for (const char* need : {"server", "task", "model", "data", "state"})
    if (!args.has(need)) return usage(std::string("--") + need + " is required");
  auto rounds = args.get_u64("rounds", 1);
  auto wait_s = args.get_double("wait", 600);
  auto threads = args.get_u64("threads", 0);
  uint64_t partition_seed = 0;
  if (!rounds || rounds.value() == 0) return usage("--rounds must be a positive integer");
  if (!wait_s || wait_s.value() <= 0) return usage("--wait must be a positive number of seconds");
  if (!threads) return usage("--threads must be an integer");
  if (!parse_seed_text(args.get("partition-seed", "0"), &partition_seed)) return usage("--partition-seed must be 0x<hex> or decimal");
  int shard = 0, shards = 1;
  if (args.has("shard") && (std::sscanf(args.get("shard").c_str(), "%d/%d", &shard, &shards) != 2 || shards < 1 || shard < 0 || shard >= shards))
    return usage("--shard must be I/N with 0 <= I < N");
  auto partition = parse_partition(args.get("partition", "iid"), partition_seed);
  if (!partition) return usage(partition.status().message());

  const std::string state = args.get("state");
  ServerConnection conn;
  conn.url = args.get("server");
  conn.ca_file = args.get("ca");
  conn.pinned_sha256 = args.get("pin");
  std::filesystem::create_directories(state);
  auto client = FederationClient::open(conn, args.get("credentials", state + "/credentials.json"), args.get("enrol-token"));
  if (!client) return fail(client.status());
  const std::string task_id = args.get("task");
  auto info = client.value()->task(task_id);
  if (!info) return fail(info.status());
  auto dm = load_device_model(args.get("model"), info.value());
  if (!dm) return fail(dm.status());
  auto task = load_device_task(dm.value(), args.get("data"));
  if (!task) return fail(task.status());
  std::unique_ptr<Task> eval;
  if (args.has("eval-data")) {
    auto e = load_device_task(dm.value(), args.get("eval-data"));
    if (!e) return fail(e.status());
    eval = std::move(e.value());
  }
  std::vector<size_t> all(task.value()->size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  auto parts = partition_examples(all, task.value()->labels(), shards, partition.value());
  if (!parts) return fail(parts.status());
  std::vector<size_t> mine = parts.value()[static_cast<size_t>(shard)];
  ThreadPool pool(static_cast<int>(threads.value()));
  FederatedDeviceOptions fo;
  fo.task_id = task_id;
  fo.state_dir = state;
  fo.data_seed = device_data_seed(partition_seed, shard);
  auto device = FederatedDevice::open(*dm->loaded.model, dm->model_id, *task.value(), mine, *client.value(), fo, &pool);
  if (!device) return fail(device.status());
  FederatedDevice& d = *device.value();
  std::printf("device %s: task %s, %zu private examples, shared version %llu\n", client.value()->device_id().c_str(), task_id.c_str(),
              mine.size(), static_cast<unsigned long long>(d.version()));
  if (Status s = d.sync(); !s) return fail(s);

  uint64_t done = 0, last_round = 0;
  auto waited_since = std::chrono::steady_clock::now();
  while (done < rounds.value()) {
    auto round = client.value()->round(task_id);
    if (!round) return fail(round.status());
    if (round->state != "open" || round->round <= last_round) {
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - waited_since).count() > wait_s.value())
        return fail(io_error("no new round opened within " + args.get("wait", "600") + " s"));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    auto p = d.participate(round.value());
    if (!p) return fail(p.status());
    last_round = round->round;
    std::printf("round %llu: %s (local mean loss %.4f over %llu examples)\n", static_cast<unsigned long long>(round->round),
                p->outcome.c_str(), p->local.mean_loss, static_cast<unsigned long long>(p->local.examples));
    std::fflush(stdout);
    if (!p->submitted) continue;
    // Wait for the round to close, then sync the shared update.
    for (;;) {
      auto r = client.value()->round(task_id, round->round);
      if (!r) return fail(r.status());
      if (r->state != "open") {
        std::printf("round %llu %s\n", static_cast<unsigned long long>(r->round), r->state.c_str());
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (Status s = d.sync(); !s) return fail(s);
    ++done;
    waited_since = std::chrono::steady_clock::now();
    if (eval) {
      auto e = eval->evaluate(&pool, *dm->loaded.model, 32);
      if (!e) return fail(e.status());
      std::printf("shared version %llu: eval loss %.4f%s\n", static_cast<unsigned long long>(d.version()), e->loss,
                  e->accuracy >= 0 ? (", accuracy " + std::to_string(100 * e->accuracy) + "%").c_str() : "");
    }
  }
  std::printf("done: %llu rounds, shared version %llu, sent %llu bytes, received %llu bytes\n", static_cast<unsigned long long>(done),
              static_cast<unsigned long long>(d.version()), static_cast<unsigned long long>(client.value()->bytes_sent()),
              static_cast<unsigned long long>(client.value()->bytes_received()));
  return 0;
}

}  // namespace pocketllm::cli
