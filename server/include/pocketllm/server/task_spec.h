// A federated task as the operator creates it: the training spec devices follow and the round policy
// the server runs. Parsed from and written to JSON (docs/protocol.md, "Tasks"); parsing validates
// every field and names the one that is wrong.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/status.h"
#include "pocketllm/protocol/messages.h"
#include "pocketllm/server/rounds.h"

namespace pocketllm::server {

struct TaskSpec {
  std::string id;             // [A-Za-z0-9_.-]{1,64}
  std::string base_model_id;  // 64 hex digits: SHA-256 model id of the base model (docs/training.md)
  std::string trainable = "*";
  Distribution dist = Distribution::kRademacher;
  double eps = 1e-3;
  double lr = 1e-4;
  uint32_t batch_size = 16;
  nlohmann::json device;      // device-side task settings passed through (task kind, template, labels, …)
  std::string base_weights;   // optional: server-side safetensors of the trainable tensors, for snapshots
  bool has_seed_key = false;  // the operator fixed the round-seed key (else the server draws one)
  uint64_t seed_key = 0;
  RoundPolicy policy;
  uint32_t max_per_token = 0;  // Sybil limit: submissions per round from devices of one enrolment token; 0 = off
};

Result<TaskSpec> parse_task_spec(const nlohmann::json& j);
nlohmann::json task_spec_to_json(const TaskSpec& spec);
// The part of the spec devices train with, as the protocol carries it.
protocol::TaskInfo training_spec(const TaskSpec& spec);

bool valid_task_id(const std::string& id);

}  // namespace pocketllm::server
