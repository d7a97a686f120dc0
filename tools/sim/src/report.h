// What a simulation reports: per-round lines on stdout, OUT/rounds.csv (flushed every round),
// OUT/rounds.json (a summary with every round) and OUT/plot.svg.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/sim/simulation.h"

namespace pocketllm::sim {

class VirtualDevice;

struct RoundRow {
  uint64_t round = 0;
  int asked = 0, submitted = 0, dropped = 0, late = 0, accepted = 0;
  uint64_t up = 0, down = 0;  // bytes, all participants
  uint64_t version = 0;
  double eval_loss = NAN, eval_accuracy = -1;
  double wall_seconds = 0;
  double epsilon = NAN;       // a private task's epsilon spent after the round
  bool budget_spent = false;  // no further round fits in its budget
};

class Report {
 public:
  Report(const SimOptions& o, nlohmann::json task, bool has_eval) : o_(o), task_(std::move(task)), has_eval_(has_eval) {}
  // Memory per virtual device: what it holds, and the RSS growth measured while enrolling.
  void memory(const std::vector<std::unique_ptr<VirtualDevice>>& devices, size_t rss_growth);
  void print_memory() const;
  Status start(double eval_loss, double eval_accuracy);
  void add(const RoundRow& row);
  Status finish();  // rounds.json and plot.svg
  double seconds() const { return seconds_; }

 private:
  const SimOptions& o_;
  nlohmann::json task_;
  bool has_eval_;
  double held_ = 0, rss_ = 0;
  double loss0_ = NAN, acc0_ = -1, cumulative_up_ = 0, seconds_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::ofstream csv_;
  nlohmann::json rows_ = nlohmann::json::array();
};

}  // namespace pocketllm::sim
