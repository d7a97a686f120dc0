// pocketllm-sim as a library: N virtual devices of a federation on one machine, against an in-process
// server or a real one over HTTPS. Devices share one base model in memory; each holds only its data
// shard, its credential and its version. Every device takes part through the federation module's round
// flow (RoundParticipant), so a simulated device trains exactly as a real one. Writes per-round
// rounds.csv / rounds.json, plot.svg, task.json and the shared update log (log.jsonl) to the output
// directory.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <string>

#include "pocketllm/common/status.h"

namespace pocketllm::sim {

struct SimOptions {
  std::string model_path, data_path, eval_data_path;
  int devices = 8;
  // Distributed simulation: this process simulates devices [range_begin, range_end) of `devices` (the
  // shards, seeds and draws of every device are computed identically in every worker). The worker whose
  // range starts at 0 creates the task and closes each round once every device of all workers that is
  // due in it has submitted; the others wait for the task and for each round to close. -1: all devices.
  int range_begin = 0, range_end = -1;
  uint64_t rounds = 10;
  bool in_process = true;            // else a real server: server_url, ca_file, admin_token
  std::string server_url, ca_file, admin_token;
  double participation = 1.0;        // fraction of devices asked per round (seeded)
  double dropout = 0;                // fraction of asked devices that train but never submit
  double straggler = 0;              // fraction that submit after the round closed (refused with 409)
  std::string partition = "iid";     // iid | contiguous | dirichlet:ALPHA
  uint64_t seed = 0;                 // partition, data order, participation and the round seeds
  nlohmann::json device = {{"task", "lm"}, {"max_length", 128}};  // the task's device settings
  uint32_t tau = 8, batch_size = 8;
  uint32_t seed_groups = 1;  // the task's seed groups (docs/protocol.md section 5)
  double lr = 1e-4, eps = 1e-3, clip = 0;
  std::string trainable = "*", strategy = "weighted_mean", task_id;  // task id: derived from the seed when empty
  int min_submissions = 1;           // the task's minimum (the server's own default is 3)
  // Byzantine devices (robustness benches): this fraction of the devices, drawn from the seed, trains
  // honestly and then submits what `attack` makes of its scalars.
  double byzantine = 0;
  std::string attack = "none";       // none | flt_max | sign_flip | random | inner_product
  std::string out_dir = "sim-out";
  std::string sample_prompt;         // sample (T 0.8, top-p 0.9, repetition penalty 1.2) before and after
  std::string save_shared;           // write the final shared trainable tensors (safetensors)
  int threads = 0;
  // Differential privacy of the task (docs/privacy.md): off, central or local. With it on, the server
  // samples the devices (Poisson, rate dp_sampling_rate) and every device is asked each round.
  std::string dp = "off";
  double dp_clip_norm = 0, dp_noise_multiplier = 0;  // noise 0: calibrated to the target over `rounds`
  double dp_sampling_rate = 1, dp_target_epsilon = 0, dp_delta = 1e-5;
  // Secure aggregation (docs/secagg.md): off, masked (devices go through the round's phases and the
  // server learns only the sum) or plain (the same fixed-point sum in the clear, for comparison). A
  // dropped device leaves after a phase drawn from the seed; under plain it submits iff it would have
  // sent its masked input. secagg_bound: the per-scalar clip.
  std::string secagg = "off";
  double secagg_bound = 1.0;
  // Set (e.g. by a SIGINT handler) to stop after the round in progress: the outputs then cover the
  // rounds done. Null: run every round.
  const std::atomic<bool>* stop = nullptr;
};

struct SimOutcome {
  uint64_t rounds_done = 0;
  bool stopped = false;  // by `stop` before the last round
};

// What a Byzantine device submits instead of its honest scalars (and example count): flt_max (±FLT_MAX
// with the largest example count the protocol allows), sign_flip (−100 × its scalars), random (uniform
// in ±1e6, seeded), inner_product (−5 × its scalars: pushes the mean along −g, Xie et al. 2020).
Status apply_attack(const std::string& attack, uint64_t seed, std::vector<float>* coeffs, uint64_t* examples);

Result<SimOutcome> run_simulation(const SimOptions& options);

}  // namespace pocketllm::sim
