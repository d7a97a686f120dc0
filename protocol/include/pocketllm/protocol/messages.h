// The wire types of the federation API, version 1 (docs/protocol.md), with their JSON: the one definition
// of every field, written by the server and read by devices (and the other way round for requests).
// Readers check types and ranges and say which field is wrong; they never throw.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/status.h"
#include "pocketllm/protocol/error_code.h"

namespace pocketllm::protocol {

constexpr int kProtocolVersion = 1;

// Response headers of the binary log page and of snapshots.
constexpr const char* kVersionHeader = "X-Pocketllm-Version";  // the log's length (the latest version)
constexpr const char* kSinceHeader = "X-Pocketllm-Since";
constexpr const char* kNextHeader = "X-Pocketllm-Next";
constexpr const char* kSha256Header = "X-Pocketllm-Sha256";   // snapshots: hex SHA-256 of the body

// ---- endpoints (request targets) ----------------------------------------------------------------
std::string enrol_path();                                          // POST
std::string task_path(const std::string& task);                    // GET
std::string current_round_path(const std::string& task);           // GET
std::string round_path(const std::string& task, uint64_t round);   // GET
std::string submissions_path(const std::string& task, uint64_t round);  // POST
// Secure aggregation (docs/secagg.md §5): POST keys|shares|masked|unmask, GET roster|inbox|survivors.
std::string secagg_path(const std::string& task, uint64_t round, const std::string& step);
std::string log_path(const std::string& task, uint64_t since, uint64_t limit, bool binary);  // GET
std::string snapshot_path(const std::string& task);                // GET

// ---- errors ---------------------------------------------------------------------------------------
struct ErrorReply {
  ErrorCode code = ErrorCode::kUnknown;
  std::string code_name;   // as sent (kept when the code is unknown to this build)
  std::string message;
  std::optional<uint64_t> current_round, version;  // 409s carry them
};
nlohmann::json to_json(const ErrorReply& e);
// An error body, or nullopt when `body` is not one.
std::optional<ErrorReply> parse_error_reply(const std::string& body);
// A rejection before any state changed: the code and a message naming the field.
struct Rejection {
  ErrorCode code;
  std::string message;
};

// ---- enrolment ------------------------------------------------------------------------------------
struct EnrolRequest {
  std::string token;
};
struct EnrolReply {
  std::string device_id, credential;
};
nlohmann::json to_json(const EnrolRequest& r);
std::optional<Rejection> parse_enrol_request(const nlohmann::json& j, EnrolRequest* out);
nlohmann::json to_json(const EnrolReply& r);
Result<EnrolReply> parse_enrol_reply(const std::string& body);

// ---- tasks ----------------------------------------------------------------------------------------
// What a device trains with (the training spec of docs/training.md) and where the task stands.
// What a device does for its task's differential privacy (docs/privacy.md): the server publishes it
// in the task as "privacy": {"mode", "clip_norm", "noise_multiplier", …}.
struct DevicePrivacy {
  std::string mode = "off";     // "off", "central" (the server adds noise) or "local" (the device does)
  double clip_norm = 0;         // clip the round's tau-vector of scalars to this L2 norm before upload
  double noise_multiplier = 0;  // local: add N(0, (noise_multiplier * clip_norm)^2) to each scalar
  bool on() const { return mode != "off"; }
};

struct TaskInfo {
  std::string id, base_model_id, trainable = "*";
  Distribution dist = Distribution::kRademacher;
  double lr = 0, eps = 0;
  uint32_t batch_size = 0, tau = 0;
  nlohmann::json device = nlohmann::json::object();  // device-side settings (task kind, template, labels…)
  uint64_t version = 0, round = 0;                   // status: the log's length, the current round
  bool snapshots = false;
  DevicePrivacy privacy;
  // Secure aggregation (docs/secagg.md): "off", "masked" (devices send masked inputs through the round's
  // secagg phases, never plain scalars) or "plain" (devices submit as usual; the server sums fixed point).
  std::string secagg = "off";
};
// Writes the training-spec fields into `j` (the server adds its policy fields beside them).
void write_training_spec(const TaskInfo& t, nlohmann::json* j);
// Writes the status fields (version, round, snapshots).
void write_task_status(const TaskInfo& t, nlohmann::json* j);
Result<TaskInfo> parse_task_info(const std::string& body);

// ---- rounds ---------------------------------------------------------------------------------------
enum class RoundState { kOpen, kApplied, kAbandoned };
const char* round_state_name(RoundState s);
bool parse_round_state(const std::string& name, RoundState* out);

struct RoundInfo {
  std::string task;
  uint64_t round = 0, base_version = 0;
  RoundState state = RoundState::kOpen;
  // tau seeds; a task with seed groups (docs/protocol.md §5): the asking device's group's tau, or, read
  // without a device credential, every group's (group g's at [g·tau, g·tau + tau)).
  std::vector<uint64_t> seeds;
  uint32_t seed_groups = 1;       // groups of devices that get disjoint seeds (1: every device the same)
  std::optional<uint32_t> group;  // the asking device's group, when read with a device credential
  double lr = 0, eps = 0;
  uint32_t batch_size = 0;
  Distribution dist = Distribution::kRademacher;
  std::string trainable;
  int64_t deadline_ms = 0, server_time_ms = 0;
  uint64_t submissions = 0;
  std::optional<uint64_t> applied_version;  // applied rounds: the log length after their entries
  // Private tasks with device sampling: whether the asking device is sampled for this round (absent:
  // every device may take part).
  std::optional<bool> sampled;
  // A masked secure-aggregation round (docs/secagg.md §5): {"phase", "phase_deadline_ms", "config"}, the
  // config being the round's secagg parameters (read with secagg::parse_round_config). Null otherwise.
  nlohmann::json secagg;
  bool open() const { return state == RoundState::kOpen; }
};
// Seed groups: the group of `device_id` in round `round` of a task with `groups` groups — public, so a device
// and the server compute it alike: splitmix64(FNV-1a-64(device_id) XOR splitmix64(round)) mod groups.
uint32_t seed_group(const std::string& device_id, uint64_t round, uint32_t groups);
constexpr uint32_t kMaxSeedGroups = 256;
constexpr size_t kMaxRoundSeeds = 4096;  // seed_groups × tau
// A round of `task`: its id and training settings (lr, eps, batch size, distribution, trainable) filled in.
RoundInfo round_of(const TaskInfo& task);
nlohmann::json to_json(const RoundInfo& r);
Result<RoundInfo> parse_round_info(const std::string& body);

// ---- submissions ----------------------------------------------------------------------------------
constexpr size_t kMaxScalars = 256;               // no round has more seeds
constexpr uint64_t kMaxExamples = uint64_t{1} << 40;
struct SubmissionRequest {
  std::vector<float> coeffs;  // one per seed, in the round's order
  uint64_t examples = 0;
  uint64_t base_version = 0;  // the log version the scalars were computed from
  std::map<std::string, double> loss;  // optional statistics, e.g. {"mean": 2.31}
};
nlohmann::json to_json(const SubmissionRequest& s);
// Validates a submission body (types, unknown fields, finite float32 scalars, counts).
std::optional<Rejection> parse_submission(const nlohmann::json& j, SubmissionRequest* out);

struct SubmissionReceipt {
  std::string task;
  uint64_t round = 0;
  bool duplicate = false;     // 200: an identical resubmission; 201: new
  double weight = 0;
  uint64_t submissions = 0;   // in the round so far
};
nlohmann::json to_json(const SubmissionReceipt& r);
Result<SubmissionReceipt> parse_submission_receipt(const std::string& body);

}  // namespace pocketllm::protocol
