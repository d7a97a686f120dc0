// pocketllm-sim: argv -> SimOptions; the simulation library (simulation.h) does the rest.
#include <cstdio>

#include "pocketllm/cli/command.h"
#include "pocketllm/cli/lora_args.h"
#include "pocketllm/cli/stop_signal.h"
#include "pocketllm/client/task.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/update_log.h"
#include "pocketllm/sim/simulation.h"

using namespace pocketllm;

namespace {

// A decimal count (digits only, at most 9 of them).
bool parse_count(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 9) return false;
  uint64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  *out = v;
  return true;
}

// --device-range A:B (distributed workers): "" when fine (or absent), else the usage message.
std::string read_device_range(const cli::Args& args, sim::SimOptions* o) {
  if (!args.has("device-range")) return "";
  const std::string range = args.get("device-range");
  const size_t colon = range.find(':');
  uint64_t a = 0, b = 0;
  if (colon == std::string::npos || !parse_count(range.substr(0, colon), &a) || !parse_count(range.substr(colon + 1), &b) || a >= b ||
      b > static_cast<uint64_t>(o->devices))
    return "--device-range must be A:B with 0 <= A < B <= --devices (devices A..B-1)";
  if (o->in_process) return "--device-range needs --mode loopback: the workers share a real server";
  if (o->dp != "off" || o->secagg != "off")
    return "--device-range runs plain rounds: --dp (the server samples devices) and --secagg (phases) need one process";
  if (!args.has("task-id")) return "--device-range needs --task-id, the same in every worker";
  o->range_begin = static_cast<int>(a);
  o->range_end = static_cast<int>(b);
  return "";
}

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
    "  --dropout P (0)             fraction of asked devices that train but never submit (with --secagg: that\n"
    "                              leave after a phase drawn from --seed, the last one after sending their input)\n"
    "  --straggler P (0)           fraction that submit after the round closed (refused with 409)\n"
    "  --partition iid|contiguous|dirichlet:ALPHA (iid)   how --data is split across devices\n"
    "  --seed S (0)                partition, data order, participation and the round seeds\n"
    "task (sent to the server):\n"
    "  --task lm|classify (lm)  --template T  --labels L  --preset sst2|agnews  --max-length N (128)\n"
    "  --tau K (8)  --batch-size B (8)  --lr LR (1e-4)  --eps EPS (1e-3)  --trainable P (*)\n"
    "  --strategy weighted_mean|median|trimmed_mean (weighted_mean)  --clip C (0: automatic)  --task-id ID\n"
    "  --min-submissions N (1)     the task's minimum per round (the server's default is 3)\n"
    "  --seed-groups G (1)         devices fall into G groups a round, each with its own tau seeds (docs/protocol.md\n"
    "                              section 5): n devices explore up to n directions; 1 = every device the same seeds.\n"
    "                              Groups follow the device ids the server issues: runs differ in who shares a group\n"
    "  --lora-rank R               devices train LoRA adapters of rank R (the task's device settings carry\n"
    "                              the adapter: --lora-alpha A, --lora-targets T (q_proj,v_proj), --lora-init-seed S);\n"
    "                              --trainable then defaults to none\n"
    "robustness:\n"
    "  --device-range A:B          distributed: this worker simulates devices A..B-1 of --devices (same --seed,\n"
    "                              --task-id and options in every worker; the one with A = 0 creates the task\n"
    "                              and closes the rounds; plain rounds only, --mode loopback)\n"
    "  --byzantine F (0)           fraction of devices (drawn from --seed) that attack\n"
    "  --attack A                  flt_max | sign_flip | random | inner_product\n"
    "  --dp central|local          a differentially private task (docs/privacy.md) with --clip-norm C,\n"
    "                              --target-epsilon E, --delta D (1e-5), --sampling-rate Q (1: the server's\n"
    "                              Poisson sampling), --noise-multiplier S (default: calibrated to E over --rounds)\n"
    "  --secagg                    secure aggregation (docs/secagg.md): the server learns only each round's sum\n"
    "  --secagg-plain              the same fixed-point sum without masks (a check: same log, byte for byte)\n"
    "  --secagg-bound B (1)        the per-scalar clip of the secure sum (a private task: its --clip-norm)\n"
    "output:\n"
    "  --out DIR (sim-out)  rounds.csv, rounds.json, plot.svg, task.json, log.jsonl (the shared update log)\n"
    "  --sample PROMPT      sample from the shared model before and after (temperature 0.8, top-p 0.9,\n"
    "                       repetition penalty 1.2, seed 0, 40 tokens)\n"
    "  --save-shared FILE   write the final shared trainable tensors (safetensors, as devices keep them)\n"
    "  --threads N          worker threads (default: all cores)\n"
    "\n"
    "Ctrl-C (or SIGTERM) stops after the round in progress and still writes every output for the rounds\n"
    "done (exit status 130); a second one quits at once (rounds.csv is written round by round).\n";

// Numeric options with their ranges; returns a usage message or "".
std::string read_numbers(const cli::Args& args, sim::SimOptions* o) {
  auto devices = args.get_u64("devices", 8), rounds = args.get_u64("rounds", 10), threads = args.get_u64("threads", 0);
  auto groups = args.get_u64("seed-groups", 1);
  auto tau = args.get_u64("tau", 8), batch = args.get_u64("batch-size", 8), max_len = args.get_u64("max-length", 128);
  auto participation = args.get_double("participation", 1.0), dropout = args.get_double("dropout", 0),
       straggler = args.get_double("straggler", 0), lr = args.get_double("lr", 1e-4), eps = args.get_double("eps", 1e-3),
       clip = args.get_double("clip", 0);
  if (!devices || devices.value() < 1 || devices.value() > 100000) return "--devices must be 1..100000";
  if (!rounds || rounds.value() < 1) return "--rounds must be a positive integer";
  if (!tau || tau.value() < 1 || tau.value() > 256) return "--tau must be 1..256";
  if (!groups || groups.value() < 1 || groups.value() > 256 || groups.value() * tau.value() > 4096)
    return "--seed-groups must be 1..256, with --seed-groups x --tau at most 4096";
  if (!batch || batch.value() < 1 || batch.value() > 65536 || !max_len || max_len.value() < 2 || max_len.value() > (1u << 20) || !threads ||
      threads.value() > 1024)
    return "bad --batch-size, --max-length or --threads";
  for (auto* p : {&participation, &dropout, &straggler})
    if (!*p || p->value() < 0 || p->value() > 1) return "--participation, --dropout and --straggler must be in [0, 1]";
  if (!lr || !eps || eps.value() <= 0 || !clip || clip.value() < 0) return "bad --lr, --eps or --clip";
  o->devices = static_cast<int>(devices.value());
  o->rounds = rounds.value();
  o->threads = static_cast<int>(threads.value());
  o->tau = static_cast<uint32_t>(tau.value());
  o->seed_groups = static_cast<uint32_t>(groups.value());
  o->batch_size = static_cast<uint32_t>(batch.value());
  o->device["max_length"] = max_len.value();
  o->participation = participation.value();
  o->dropout = dropout.value();
  o->straggler = straggler.value();
  o->lr = lr.value();
  o->eps = eps.value();
  o->clip = clip.value();
  return "";
}

// The devices' task settings. A preset is written out: the task names its template and label words,
// whatever a device's own preset table says (docs/protocol.md, task field `device`).
std::string read_device_task(const cli::Args& args, nlohmann::json* device) {
  (*device)["task"] = args.get("task", "lm");
  for (const char* k : {"template", "labels"})
    if (args.has(k)) (*device)[k] = args.get(k);
  if (args.has("preset")) {
    std::string tmpl, labels;
    if (!classification_preset(args.get("preset"), &tmpl, &labels)) return "--preset must be sst2 or agnews";
    if (!args.has("template")) (*device)["template"] = tmpl;
    if (!args.has("labels")) (*device)["labels"] = labels;
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  cli::Command cmd("pocketllm-sim", kHelp,
                   {"model", "data", "eval-data", "devices", "rounds", "mode", "server", "ca", "admin-token-file", "participation",
                    "dropout", "straggler", "partition", "seed", "task", "template", "labels", "preset", "max-length", "tau",
                    "batch-size", "lr", "eps", "trainable", "strategy", "clip", "task-id", "device-range", "out", "sample", "threads", "save-shared", "min-submissions", "seed-groups", "byzantine", "attack",
                    "dp", "clip-norm", "noise-multiplier", "sampling-rate", "target-epsilon", "delta",
                    "lora-rank", "lora-alpha", "lora-targets", "lora-init-seed", "secagg-bound"},
                   {"secagg", "secagg-plain"});
  return cmd.run(std::vector<std::string>(argv + 1, argv + argc), [&](const cli::Args& args) {
    if (!args.has("model") || !args.has("data")) return cmd.usage("--model and --data are required");
    sim::SimOptions o;
    if (std::string m = read_numbers(args, &o); !m.empty()) return cmd.usage(m);
    if (!parse_seed_text(args.get("seed", "0"), &o.seed)) return cmd.usage("--seed must be 0x<hex> or decimal");
    const std::string mode = args.get("mode", "inprocess");
    if (mode != "inprocess" && mode != "loopback") return cmd.usage("--mode must be inprocess or loopback");
    o.in_process = mode == "inprocess";
    if (!o.in_process) {
      if (!args.has("server") || !args.has("admin-token-file")) return cmd.usage("--mode loopback needs --server and --admin-token-file");
      auto t = read_file(args.get("admin-token-file"), 4096);
      if (!t) return cmd.fail(t.status());
      o.admin_token = t->substr(0, t->find('\n'));
      o.server_url = args.get("server");
      o.ca_file = args.get("ca");
    }
    o.model_path = args.get("model");
    o.data_path = args.get("data");
    o.eval_data_path = args.get("eval-data");
    o.partition = args.get("partition", "iid");
    if (std::string m = read_device_task(args, &o.device); !m.empty()) return cmd.usage(m);
    LoraConfig lora;
    if (std::string m = cli::read_lora_args(args, &lora); !m.empty()) return cmd.usage(m);
    if (lora.enabled()) o.device["adapter"] = lora.to_json();
    o.trainable = args.get("trainable", lora.enabled() ? "none" : "*");
    o.strategy = args.get("strategy", "weighted_mean");
    o.task_id = args.get("task-id");
    auto min_subs = args.get_u64("min-submissions", 1);
    auto byz = args.get_double("byzantine", 0);
    if (!min_subs || min_subs.value() < 1 || min_subs.value() > 1000000) return cmd.usage("--min-submissions must be 1..1000000");
    if (!byz || byz.value() < 0 || byz.value() > 1) return cmd.usage("--byzantine must be in [0, 1]");
    o.min_submissions = static_cast<int>(min_subs.value());
    o.byzantine = byz.value();
    o.attack = args.get("attack", o.byzantine > 0 ? "" : "none");
    std::vector<float> probe{1.0f};
    uint64_t probe_examples = 1;
    if (Status a = sim::apply_attack(o.attack, 0, &probe, &probe_examples); !a) return cmd.usage(a.message());
    o.dp = args.get("dp", "off");
    if (o.dp != "off" && o.dp != "central" && o.dp != "local") return cmd.usage("--dp must be off, central or local");
    if (o.dp != "off") {
      auto clip_norm = args.get_double("clip-norm", 0), noise = args.get_double("noise-multiplier", 0),
           q = args.get_double("sampling-rate", 1), target = args.get_double("target-epsilon", 0), delta = args.get_double("delta", 1e-5);
      for (auto* v : {&clip_norm, &noise, &q, &target, &delta})
        if (!*v) return cmd.usage(v->status().message());
      if (!(clip_norm.value() > 0) || !(target.value() > 0)) return cmd.usage("--dp needs --clip-norm C > 0 and --target-epsilon E > 0");
      o.dp_clip_norm = clip_norm.value();
      o.dp_noise_multiplier = noise.value();
      o.dp_sampling_rate = q.value();
      o.dp_target_epsilon = target.value();
      o.dp_delta = delta.value();
    }
    if (args.has("secagg") && args.has("secagg-plain")) return cmd.usage("--secagg and --secagg-plain exclude each other");
    o.secagg = args.has("secagg") ? "masked" : args.has("secagg-plain") ? "plain" : "off";
    auto bound = args.get_double("secagg-bound", 1.0);
    if (!bound || !(bound.value() > 0) || bound.value() > 1e6) return cmd.usage("--secagg-bound must be in (0, 1e6]");
    o.secagg_bound = bound.value();
    if (o.secagg != "off" && o.strategy != "weighted_mean") return cmd.usage("--secagg needs --strategy weighted_mean (the server sees only sums)");
    if (o.secagg != "off" && o.dp == "local") return cmd.usage("--secagg composes with --dp central (the devices add the noise in shares)");
    if (o.secagg == "plain" && o.dp != "off") return cmd.usage("--secagg-plain is the unmasked check: without --dp");
    if (std::string m = read_device_range(args, &o); !m.empty()) return cmd.usage(m);
    o.out_dir = args.get("out", "sim-out");
    o.sample_prompt = args.get("sample");
    o.save_shared = args.get("save-shared");
    // The first Ctrl-C (or SIGTERM) stops after the round in progress and writes the outputs.
    o.stop = &cli::stop_on_signals("\npocketllm-sim: stopping after the round in progress (again to quit now)\n");
    auto outcome = sim::run_simulation(o);
    if (!outcome) return cmd.fail(outcome.status());
    return outcome->stopped ? 130 : 0;
  });
}
