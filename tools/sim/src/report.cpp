#include "report.h"

#include <algorithm>
#include <cstdio>

#include "pocketllm/common/file_util.h"
#include "pocketllm/sim/plot.h"
#include "virtual_device.h"

namespace pocketllm::sim {

using nlohmann::json;

void Report::memory(const std::vector<std::unique_ptr<VirtualDevice>>& devices, size_t rss_growth) {
  const double n = static_cast<double>(std::max<size_t>(1, devices.size()));
  double held = 0;
  for (const auto& d : devices)
    held += static_cast<double>(sizeof *d + d->shard.capacity() * sizeof(size_t) + d->id.capacity() + d->credential.capacity());
  held_ = held / n;
  rss_ = static_cast<double>(rss_growth) / n;
}

void Report::print_memory() const {
  std::printf("memory per virtual device: %.2f KiB held (data shard indices, credential, counters), %.1f KiB measured RSS growth; the model is shared\n",
              held_ / 1024, rss_ / 1024);
}

Status Report::start(double eval_loss, double eval_accuracy) {
  loss0_ = eval_loss;
  acc0_ = eval_accuracy;
  start_ = std::chrono::steady_clock::now();
  csv_.open(o_.out_dir + "/rounds.csv");
  if (!csv_) return io_error(o_.out_dir + "/rounds.csv: cannot write");
  csv_ << "round,asked,submitted,dropped,late,accepted,version,eval_loss,eval_accuracy,bytes_up_per_device,bytes_down_per_device,"
          "cumulative_bytes_up_per_device,wall_seconds,epsilon\n";
  if (has_eval_)
    std::printf("round 0: eval loss %.4f%s\n", loss0_, acc0_ >= 0 ? (", accuracy " + std::to_string(100 * acc0_) + "%").c_str() : "");
  return Status::ok();
}

void Report::add(const RoundRow& r) {
  const double participants = std::max(1, r.asked);
  const double up = static_cast<double>(r.up) / participants, down = static_cast<double>(r.down) / participants;
  cumulative_up_ += static_cast<double>(r.up) / o_.devices;
  const bool acc = r.eval_accuracy >= 0;
  rows_.push_back({{"round", r.round}, {"asked", r.asked}, {"submitted", r.submitted}, {"dropped", r.dropped}, {"late", r.late},
                   {"accepted", r.accepted}, {"version", r.version}, {"eval_loss", has_eval_ ? json(r.eval_loss) : json(nullptr)},
                   {"eval_accuracy", acc ? json(r.eval_accuracy) : json(nullptr)}, {"bytes_up_per_device", up},
                   {"bytes_down_per_device", down}, {"cumulative_bytes_up_per_device", cumulative_up_}, {"wall_seconds", r.wall_seconds},
                   {"epsilon", std::isnan(r.epsilon) ? json(nullptr) : json(r.epsilon)}});
  csv_ << r.round << "," << r.asked << "," << r.submitted << "," << r.dropped << "," << r.late << "," << r.accepted << "," << r.version << ","
       << (has_eval_ ? std::to_string(r.eval_loss) : "") << "," << (acc ? std::to_string(r.eval_accuracy) : "") << "," << up << "," << down
       << "," << cumulative_up_ << "," << r.wall_seconds << "," << (std::isnan(r.epsilon) ? "" : std::to_string(r.epsilon)) << "\n";
  csv_.flush();
  const std::string eval = has_eval_ ? "eval loss " + std::to_string(r.eval_loss) + (acc ? " acc " + std::to_string(100 * r.eval_accuracy) + "%" : "") + "; " : "";
  const std::string eps = std::isnan(r.epsilon) ? "" : "; epsilon " + std::to_string(r.epsilon);
  std::printf("round %llu: %d asked, %d submitted (%d accepted), %d dropped, %d late; version %llu; %s%.0f B up / %.0f B down per device; %.2f s%s\n",
              static_cast<unsigned long long>(r.round), r.asked, r.submitted, r.accepted, r.dropped, r.late,
              static_cast<unsigned long long>(r.version), eval.c_str(), up, down, r.wall_seconds, eps.c_str());
  std::fflush(stdout);
}

Status Report::finish() {
  seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  json summary = {{"devices", o_.devices}, {"mode", o_.in_process ? "inprocess" : "loopback"}, {"task", task_},
                  {"memory_per_device_bytes", held_}, {"rss_growth_per_device_bytes", rss_}, {"seconds", seconds_},
                  {"eval_loss_start", has_eval_ ? json(loss0_) : json(nullptr)}, {"eval_accuracy_start", acc0_ >= 0 ? json(acc0_) : json(nullptr)},
                  {"rounds", rows_}};
  POCKETLLM_RETURN_IF_ERROR(write_file_atomic(o_.out_dir + "/rounds.json", summary.dump(1) + "\n"));
  Series a, b;
  const bool use_acc = has_eval_ && acc0_ >= 0;
  a.x_label = "round";
  b.x_label = "bytes uploaded per device (cumulative)";
  a.y_label = b.y_label = use_acc ? "eval accuracy" : "eval loss";
  if (has_eval_) {
    a.x.push_back(0);
    b.x.push_back(0);
    a.y.push_back(use_acc ? acc0_ : loss0_);
    b.y.push_back(a.y.back());
    for (const auto& row : rows_) {
      a.x.push_back(row["round"].get<double>());
      b.x.push_back(row["cumulative_bytes_up_per_device"].get<double>());
      a.y.push_back(use_acc ? row["eval_accuracy"].get<double>() : row["eval_loss"].get<double>());
      b.y.push_back(a.y.back());
    }
  }
  std::vector<Series> charts = {a, b};
  Series eps;  // a private task: the privacy budget spent, round by round
  eps.x_label = "round";
  eps.y_label = "epsilon spent";
  for (const auto& row : rows_)
    if (row.contains("epsilon") && row["epsilon"].is_number()) {
      eps.x.push_back(row["round"].get<double>());
      eps.y.push_back(row["epsilon"].get<double>());
    }
  if (!eps.x.empty()) charts.push_back(eps);
  const std::string svg = svg_charts("pocketllm-sim: " + std::to_string(o_.devices) + " devices, task " + task_["id"].get<std::string>(), charts);
  return write_file_atomic(o_.out_dir + "/plot.svg", svg);
}

}  // namespace pocketllm::sim
