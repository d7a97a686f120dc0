#include "pocketllm/secagg/local_round.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>

#include "pocketllm/secagg/device_round.h"

namespace pocketllm::secagg {
namespace {

double cpu_now() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

bool reaches(DropAfter d, DropAfter phase) {
  return d == DropAfter::kNever || static_cast<int>(d) >= static_cast<int>(phase);
}

struct Timer {
  double* acc;
  double start = cpu_now();
  ~Timer() { *acc += cpu_now() - start; }
};

double wall_now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The server's CPU and its wall time (its unmasking uses every core).
struct ServerTimer {
  double* cpu;
  double* wall;
  double c0 = cpu_now(), w0 = wall_now();
  ~ServerTimer() {
    *cpu += cpu_now() - c0;
    *wall += wall_now() - w0;
  }
};

constexpr double kKey = 32, kIndex = 4, kWord = 8;

}  // namespace

std::vector<uint64_t> plain_sum(const RoundConfig& config, const std::vector<LocalDevice>& devices,
                                const std::vector<std::string>& survivors) {
  std::vector<uint64_t> sum(input_length(config.input), 0);
  for (const LocalDevice& d : devices)
    if (std::find(survivors.begin(), survivors.end(), d.id) != survivors.end())
      for (size_t k = 0; k < sum.size(); ++k) sum[k] += d.input[k];
  return sum;
}

// long: one round's four phases in sequence, with the byte and CPU accounting beside each message.
Result<LocalRoundResult> run_local_round(const RoundConfig& config, const std::vector<LocalDevice>& devices) {
  LocalRoundResult out;
  double server_cpu = 0, server_wall = 0;
  std::unique_ptr<AggregatorRound> server;
  {
    ServerTimer t{&server_cpu, &server_wall};
    auto s = AggregatorRound::create(config, static_cast<uint32_t>(devices.size()));
    if (!s) return s.status();
    server = std::move(*s);
  }
  const size_t n = devices.size();
  std::vector<std::unique_ptr<DeviceRound>> dev(n);
  std::vector<double> up(n, 0), down(n, 0), cpu(n, 0);
  std::vector<bool> alive(n, false);
  std::vector<double> phase_start(n, 0);
  double critical = 0;
  auto begin_phase = [&]() { phase_start = cpu; };
  auto end_phase = [&]() {
    double slowest = 0;
    for (size_t i = 0; i < n; ++i) slowest = std::max(slowest, cpu[i] - phase_start[i]);
    critical += slowest;
  };
  auto refused = [&](size_t i) {
    alive[i] = false;
    ++out.refusals;
  };
  auto abandoned = [&]() {
    out.completed = false;
    out.abandon_reason = server->abandon_reason();
    return out;
  };
  begin_phase();
  for (size_t i = 0; i < n; ++i) {
    if (!reaches(devices[i].drop, DropAfter::kAdvertise)) continue;
    AdvertiseKeys keys;
    {
      Timer t{&cpu[i]};
      auto d = DeviceRound::create(config);
      if (!d) return d.status();
      dev[i] = std::move(*d);
      keys = dev[i]->advertise();
    }
    up[i] += 2 * kKey;
    ServerTimer t{&server_cpu, &server_wall};
    POCKETLLM_RETURN_IF_ERROR(server->advertise(devices[i].id, keys));
    alive[i] = true;
  }
  end_phase();
  {
    ServerTimer t{&server_cpu, &server_wall};
    if (!server->close_advertise().is_ok()) return abandoned();
  }
  begin_phase();
  for (size_t i = 0; i < n; ++i) {
    if (!alive[i]) continue;
    Result<Roster> roster = [&]() { ServerTimer t{&server_cpu, &server_wall}; return server->roster(devices[i].id); }();
    if (!roster) return roster.status();
    down[i] += 3 * kIndex + roster->neighbours.size() * (kIndex + 2 * kKey);
    if (!reaches(devices[i].drop, DropAfter::kShareKeys)) {
      alive[i] = false;
      continue;
    }
    Result<ShareKeys> msg = [&]() { Timer t{&cpu[i]}; return dev[i]->share_keys(*roster); }();
    if (!msg) {
      refused(i);
      continue;
    }
    up[i] += msg->shares.size() * (kIndex + kSealedShareSize);
    ServerTimer t{&server_cpu, &server_wall};
    POCKETLLM_RETURN_IF_ERROR(server->share_keys(devices[i].id, *msg));
  }
  end_phase();
  {
    ServerTimer t{&server_cpu, &server_wall};
    if (!server->close_share_keys().is_ok()) return abandoned();
  }
  begin_phase();
  for (size_t i = 0; i < n; ++i) {
    if (!alive[i]) continue;
    Result<std::vector<EncryptedShare>> inbox = [&]() { ServerTimer t{&server_cpu, &server_wall}; return server->inbox(devices[i].id); }();
    if (!inbox) return inbox.status();
    down[i] += inbox->size() * (kIndex + kSealedShareSize);
    if (!reaches(devices[i].drop, DropAfter::kMaskedInput)) {
      alive[i] = false;
      continue;
    }
    Result<MaskedInput> msg = [&]() { Timer t{&cpu[i]}; return dev[i]->masked_input(devices[i].input, *inbox); }();
    if (!msg) {
      refused(i);
      continue;
    }
    up[i] += msg->y.size() * kWord;
    ServerTimer t{&server_cpu, &server_wall};
    POCKETLLM_RETURN_IF_ERROR(server->masked_input(devices[i].id, *msg));
  }
  end_phase();
  {
    ServerTimer t{&server_cpu, &server_wall};
    if (!server->close_masked_input().is_ok()) return abandoned();
  }
  begin_phase();
  for (uint32_t s : server->survivors()) out.survivors.push_back(server->id_of(s));
  for (size_t i = 0; i < n; ++i) {
    if (!alive[i]) continue;
    Result<SurvivorList> list = [&]() { ServerTimer t{&server_cpu, &server_wall}; return server->survivors_for(devices[i].id); }();
    if (!list) return list.status();
    down[i] += (list->survivors.size() + 1) * kIndex;  // itself, its surviving neighbours, the count
    if (devices[i].drop != DropAfter::kNever) {
      alive[i] = false;
      continue;
    }
    Result<Unmask> msg = [&]() { Timer t{&cpu[i]}; return dev[i]->unmask(*list); }();
    if (!msg) {
      refused(i);
      continue;
    }
    up[i] += msg->shares.size() * (kIndex + 1 + 32);
    ServerTimer t{&server_cpu, &server_wall};
    POCKETLLM_RETURN_IF_ERROR(server->unmask(devices[i].id, *msg));
  }
  end_phase();
  Result<std::vector<uint64_t>> sum = [&]() { ServerTimer t{&server_cpu, &server_wall}; return server->finish(); }();
  out.stats.server_cpu_seconds = server_cpu;
  out.stats.server_wall_seconds = server_wall;
  out.stats.critical_path_seconds = server_wall + critical;
  if (!sum) return abandoned();
  out.completed = true;
  out.sum = std::move(*sum);
  uint32_t finishers = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!alive[i]) continue;
    ++finishers;
    out.stats.device_bytes_up += up[i];
    out.stats.device_bytes_down += down[i];
    out.stats.device_cpu_seconds += cpu[i];
  }
  if (finishers > 0) {
    out.stats.device_bytes_up /= finishers;
    out.stats.device_bytes_down /= finishers;
    out.stats.device_cpu_seconds /= finishers;
  }
  out.stats.survivors = static_cast<uint32_t>(out.survivors.size());
  return out;
}

}  // namespace pocketllm::secagg
