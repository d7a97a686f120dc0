// pocketllm federate: this machine as one device of a federation (docs/protocol.md). argv -> a
// DeviceConfig; the device session does the rest.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "commands.h"
#include "pocketllm/cli/command.h"
#include "pocketllm/cli/stop_signal.h"
#include "pocketllm/common/cancel.h"
#include "pocketllm/federation/device_session.h"
#include "pocketllm/federation/https_transport.h"
#include "pocketllm/sim/partition.h"

namespace pocketllm::cli {
namespace {

constexpr const char* kFederateHelp =
    "usage: pocketllm federate --server URL --task ID --model PATH --data FILE --state DIR [options]\n"
    "\n"
    "Takes part in federated zeroth-order fine-tuning: per round, tau local steps along the server's\n"
    "seeds on this device's data, then only tau scalars (+ example count, mean loss) are uploaded; the\n"
    "shared update log is replayed onto the model. Private text never leaves the device.\n"
    "\n"
    "  --server URL          https://host:port of the aggregation server\n"
    "  --ca FILE             trust this CA (PEM) instead of the system store\n"
    "  --pin PINS            or trust exactly these: sha256/BASE64 of the server's public key (the key\n"
    "                        pin pocketllm-server logs; survives renewals that keep the key) or a\n"
    "                        certificate's SHA-256 (64 hex of DER); several separated by commas\n"
    "  --enrol-token T       one-time token from the operator, used when there is no credential yet\n"
    "  --credentials FILE    the device credential (default STATE/credentials.json; mode 0600)\n"
    "  --state DIR           device state: shared weights, version, personal log (created)\n"
    "  --task ID             the federated task\n"
    "  --model PATH          the task's base model (HF directory or llama2.c checkpoint)\n"
    "  --data FILE           this device's private examples (format as for finetune)\n"
    "  --shard I/N           simulations: use only shard I of N of --data, ordered as pocketllm-sim's\n"
    "                        device I (see --partition); without it the data order follows the device id\n"
    "  --partition P         iid | contiguous | dirichlet:ALPHA (default iid)\n"
    "  --partition-seed S    seed of the split and of the data order (default 0)\n"
    "  --rounds N            rounds to take part in (default 1), then sync and exit\n"
    "  --eval-data FILE      evaluate the shared model after each round\n"
    "  --wait S              give up when no new round opens within S seconds (default 600)\n"
    "  --threads N           worker threads (default: all cores)\n"
    "\n"
    "Ctrl-C (or SIGTERM) stops at the next safe point — between training steps, requests or polls — with\n"
    "the device state saved (exit status 130); run the same command again to go on. A second one quits at\n"
    "once.\n";

// The --shard/--partition options as the session's example selection.
int configure_shard(const Command& cmd, const Args& args, DeviceConfig* c) {
  if (!args.has("shard")) return 0;
  uint64_t seed = 0;
  if (!parse_seed_text(args.get("partition-seed", "0"), &seed)) return cmd.usage("--partition-seed must be 0x<hex> or decimal");
  int shard = 0, shards = 1;
  if (std::sscanf(args.get("shard").c_str(), "%d/%d", &shard, &shards) != 2 || shards < 1 || shard < 0 || shard >= shards)
    return cmd.usage("--shard must be I/N with 0 <= I < N");
  auto partition = parse_partition(args.get("partition", "iid"), seed);
  if (!partition) return cmd.usage(partition.status().message());
  c->partition_seed = seed;
  c->shard = shard;
  c->select_examples = [spec = partition.value(), shard, shards](const Task& task) -> Result<std::vector<size_t>> {
    std::vector<size_t> all(task.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    auto parts = partition_examples(all, task.labels(), shards, spec);
    if (!parts) return parts.status();
    return std::move(parts.value()[static_cast<size_t>(shard)]);
  };
  return 0;
}

// Rounds until `rounds` were submitted: wait for a new open round, take part, wait for it to close, sync.
int run_rounds(const Command& cmd, DeviceSession& s, uint64_t rounds, double wait_s, const std::string& eval_data) {
  uint64_t done = 0;
  auto waited_since = std::chrono::steady_clock::now();
  while (done < rounds) {
    auto round = s.current_round();
    if (!round) return cmd.fail(round.status());
    if (!s.is_new(round.value())) {
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - waited_since).count() > wait_s)
        return cmd.fail(io_error("no new round opened within " + std::to_string(static_cast<long long>(wait_s)) + " s"));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      throw_if_cancelled();
      continue;
    }
    const RoundInfo& r = round.value();
    auto p = s.take_part(r);
    if (!p) return cmd.fail(p.status());
    const std::string group = r.group ? ", seed group " + std::to_string(*r.group) + " of " + std::to_string(r.seed_groups) : "";
    std::printf("round %llu: %s (local mean loss %.4f over %llu examples%s)\n", static_cast<unsigned long long>(r.round),
                p->describe().c_str(), p->local.mean_loss, static_cast<unsigned long long>(p->local.examples), group.c_str());
    std::fflush(stdout);
    if (!p->submitted()) continue;
    auto closed = s.wait_until_closed(r.round);
    if (!closed) return cmd.fail(closed.status());
    std::printf("round %llu %s\n", static_cast<unsigned long long>(r.round), protocol::round_state_name(closed->state));
    if (Status st = s.device().sync(); !st) return cmd.fail(st);
    ++done;
    waited_since = std::chrono::steady_clock::now();
    if (eval_data.empty()) continue;
    auto e = s.evaluate(eval_data);
    if (!e) return cmd.fail(e.status());
    std::printf("shared version %llu: eval loss %.4f%s\n", static_cast<unsigned long long>(s.device().version()), e->loss,
                e->accuracy >= 0 ? (", accuracy " + std::to_string(100 * e->accuracy) + "%").c_str() : "");
  }
  std::printf("done: %llu rounds, shared version %llu, sent %llu bytes, received %llu bytes\n", static_cast<unsigned long long>(done),
              static_cast<unsigned long long>(s.device().version()), static_cast<unsigned long long>(s.client().bytes_sent()),
              static_cast<unsigned long long>(s.client().bytes_received()));
  return 0;
}

}  // namespace

int cmd_federate(const std::vector<std::string>& argv) {
  Command cmd("pocketllm federate", kFederateHelp,
              {"server", "ca", "pin", "enrol-token", "credentials", "state", "task", "model", "data", "shard", "partition",
               "partition-seed", "rounds", "eval-data", "wait", "threads"});
  return cmd.run(argv, [&](const Args& args) {
    for (const char* need : {"server", "task", "model", "data", "state"})
      if (!args.has(need)) return cmd.usage(std::string("--") + need + " is required");
    auto rounds = args.get_u64("rounds", 1);
    auto wait_s = args.get_double("wait", 600);
    auto threads = args.get_u64("threads", 0);
    if (!rounds || rounds.value() == 0) return cmd.usage("--rounds must be a positive integer");
    if (!wait_s || wait_s.value() <= 0) return cmd.usage("--wait must be a positive number of seconds");
    if (!threads || threads.value() > 1024) return cmd.usage("--threads must be an integer from 0 to 1024");
    DeviceConfig c;
    if (int code = configure_shard(cmd, args, &c); code != 0) return code;
    ServerConnection conn;
    conn.url = args.get("server");
    conn.ca_file = args.get("ca");
    conn.pinned_sha256 = args.get("pin");
    auto transport = make_https_transport(conn);
    if (!transport) return cmd.fail(transport.status());
    c.transport = std::move(transport.value());
    c.server_url = conn.url;
    c.state_dir = args.get("state");
    c.credentials_file = args.get("credentials", c.state_dir + "/credentials.json");
    c.enrolment_token = args.get("enrol-token");
    c.task_id = args.get("task");
    c.model_path = args.get("model");
    c.data_path = args.get("data");
    c.threads = static_cast<int>(threads.value());
    c.retry.on_retry = [](const RetryNotice& n) {  // a server that is down or busy is not silence
      std::fprintf(stderr, "%s: %s; retry %d of %d in %.1f s\n", n.request.c_str(), n.why.c_str(), n.retry, n.retries,
                   n.wait_ms / 1000.0);
    };
    // Ctrl-C cancels through the engine's cancellation points, which leave the device state consistent.
    const std::atomic<bool>& stop = stop_on_signals("\npocketllm federate: stopping at the next safe point (again to quit now)\n");
    CancelScope stop_on_signal(&stop);
    const std::string state_dir = c.state_dir;
    int code = 1;
    try {
      code = [&] {
        auto session = DeviceSession::open(std::move(c));
        if (!session) return cmd.fail(session.status());
        DeviceSession& s = *session.value();
        std::printf("device %s: task %s, %zu private examples, shared version %llu\n", s.client().device_id().c_str(),
                    s.task_id().c_str(), s.examples(), static_cast<unsigned long long>(s.device().version()));
        if (Status st = s.device().sync(); !st) return cmd.fail(st);
        return run_rounds(cmd, s, rounds.value(), wait_s.value(), args.get("eval-data"));
      }();
    } catch (const Cancelled&) {
    }
    if (code == 0 || !stop.load()) return code;
    std::fflush(stdout);  // a stop reported as a failed call (a cancelled request) is a stop too
    std::fprintf(stderr, "stopped; the device state in %s is saved: run the same command again to go on\n", state_dir.c_str());
    return 130;
  });
}

}  // namespace pocketllm::cli
