// A whole secure-aggregation round in one process: n DeviceRounds and one AggregatorRound exchanging their
// messages directly, with devices leaving at chosen phases (and, as real ones do, when a step of theirs is
// refused — say too few neighbours shared keys). The tests check the protocol with it, the
// benchmark measures its cost, and the simulator's in-process mode uses it; the server and the device
// client run the same state machines over HTTP.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pocketllm/secagg/aggregator_round.h"

namespace pocketllm::secagg {

// The last phase a device completes before it vanishes.
enum class DropAfter { kNever, kNothing /* never advertises */, kAdvertise, kShareKeys, kMaskedInput };

struct LocalDevice {
  std::string id;
  std::vector<uint64_t> input;  // input_length words (encode_input)
  DropAfter drop = DropAfter::kNever;
};

struct LocalRoundStats {
  // Per device that took part to the end: bytes it sent and received (the wire sizes of docs/secagg.md §6:
  // 32-byte keys, sealed shares, 8-byte words, indices as 4 bytes), and CPU seconds in its state machine.
  double device_bytes_up = 0, device_bytes_down = 0, device_cpu_seconds = 0;  // means over those devices
  double server_cpu_seconds = 0;   // the aggregator's state machine, all phases (CPU of all its threads)
  double server_wall_seconds = 0;  // the same in wall time
  // The round's compute on its critical path: the server's wall time plus, per phase, the slowest
  // device's CPU (devices work in parallel). Network time is not in it.
  double critical_path_seconds = 0;
  uint32_t survivors = 0;
};

struct LocalRoundResult {
  bool completed = false;
  std::string abandon_reason;
  std::vector<uint64_t> sum;       // when completed
  std::vector<std::string> survivors;  // the devices whose inputs are in the sum
  uint32_t refusals = 0;  // devices that left because a step was refused (too few neighbours' shares, …)
  LocalRoundStats stats;
};

Result<LocalRoundResult> run_local_round(const RoundConfig& config, const std::vector<LocalDevice>& devices);

// The plain sum of the inputs of the given devices (a completed round's survivors): what the secure sum
// must equal exactly.
std::vector<uint64_t> plain_sum(const RoundConfig& config, const std::vector<LocalDevice>& devices,
                                const std::vector<std::string>& survivors);

}  // namespace pocketllm::secagg
