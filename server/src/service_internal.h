// Service internals shared by service.cpp (state, rounds, persistence) and api.cpp (the endpoints).
#pragma once

#include <map>
#include <memory>
#include <set>
#include <mutex>
#include <string>
#include <vector>

#include "pocketllm/server/service.h"

namespace pocketllm::server {

struct Service::Task {
  TaskSpec spec;
  StoredTask stored;
  TaskRounds rounds;
  // What the status page shows of the latest rounds (memory only, since this server started; a replica
  // sees the devices that reached it): devices that fetched the round, those that submitted, submissions
  // refused as late, and the mean of the losses devices reported.
  struct Activity {
    std::set<std::string> fetched, submitted;
    uint64_t late = 0, loss_count = 0;
    double loss_sum = 0;
  };
  std::map<uint64_t, Activity> activity;  // by round id; the latest kActivityRounds
  static constexpr size_t kActivityRounds = 64, kActivityDevices = 100000;
  Activity& activity_of(uint64_t round) {
    Activity& a = activity[round];
    while (activity.size() > kActivityRounds) activity.erase(activity.begin());
    return a;
  }
  Task(TaskSpec s, StoredTask st)
      : spec(std::move(s)), stored(std::move(st)), rounds(stored.seed_key, spec.policy, stored.sampling_key) {}

  // Snapshots: the base weights of the trainable tensors and the latest materialised version.
  std::mutex snapshot_mu;
  bool has_weights = false;
  std::string weights_problem;  // why snapshots are unavailable, for the operator and the 404
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<float>> base, cache;
  uint64_t cache_version = 0;
  // The serialised snapshot of the latest version served, shared by every reply that sends it.
  std::shared_ptr<const std::string> latest_bytes;
  uint64_t latest_version = 0;
  std::string latest_sha256;
  // The trainable tensors as snapshot bytes (safetensors), and back (snapshots.cpp).
  Result<std::string> serialize(const std::vector<std::vector<float>>& tensors, uint64_t version) const;
  Status deserialize(const std::string& bytes, std::vector<std::vector<float>>* tensors) const;
};

// A snapshot request waiting for the snapshot threads.
struct Service::SnapshotJob {
  Task* task;
  uint64_t version;
  Done done;
};

// The reply to a submission once its commit is known: 201 new, 200 identical resubmission, 503 not saved.
HttpResponse submission_reply(int status, const StoredSubmission& s, size_t submissions_in_round);

// Random bytes from OpenSSL's CSPRNG as lower-case hex.
std::string random_hex(size_t bytes);
std::string sha256_hex(const std::string& text);
// Constant-time comparison of two equal-length strings.
bool same_secret(const std::string& a, const std::string& b);

}  // namespace pocketllm::server
