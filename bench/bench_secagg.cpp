// The cost of secure aggregation (issue 20, docs/secagg.md §6): one round of n devices in one process over
// the SecAgg+ graph, against the plain protocol (the same fixed-point inputs summed in the clear) in the
// same run. Per device: bytes up and down, CPU ms; server: CPU and wall time per round (its unmasking
// uses every core), and the round's compute on its critical path (server wall + the slowest device of
// each phase; network excluded). Also prints the CPU.
//   bench_secagg [--n 100,1000,10000] [--tau 8] [--dropout 0.2] [--repeat 3] [--json FILE]
// Dropouts leave after sharing keys (the costliest case: their pairwise masks must be rebuilt).
#include "bench_args.h"
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pocketllm/secagg/local_round.h"

using namespace pocketllm::secagg;

namespace {

double cpu_now() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<uint32_t> parse_list(const char* s) {
  std::vector<uint32_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(static_cast<uint32_t>(std::stoul(item)));
  return out;
}

void usage() {
  std::puts("bench_secagg [--n 100,1000,10000] [--tau 8] [--dropout 0.2] [--repeat 3] [--json FILE]\n"
            "  one secure-aggregation round of n in-process devices (SecAgg+ graph, default degree and\n"
            "  threshold) against the plain sum of the same inputs; dropouts leave after sharing keys.");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<uint32_t> sizes = {100, 1000, 10000};
  uint32_t tau = 8;
  double dropout = 0.2;
  int repeat = 3;
  std::string json;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "--help" || a == "-h") return usage(), 0;
    if (a == "--n" && has) sizes = parse_list(argv[++i]);
    else if (a == "--tau" && has) tau = static_cast<uint32_t>(std::stoul(argv[++i]));
    else if (a == "--dropout" && has) dropout = pocketllm::bench::number_arg("--dropout", argv[++i], 0.0, 1.0);
    else if (a == "--repeat" && has) repeat = std::stoi(argv[++i]);
    else if (a == "--json" && has) json = argv[++i];
    else {
      std::fprintf(stderr, "bench_secagg: unknown or incomplete option %s (--help)\n", a.c_str());
      return 2;
    }
  }
  {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line))
      if (line.rfind("model name", 0) == 0) {
        std::printf("CPU:%s, %u hardware threads\n", line.substr(line.find(':') + 1).c_str(), std::thread::hardware_concurrency());
        break;
      }
  }
  std::ofstream out;
  if (!json.empty()) out.open(json, std::ios::app);
  std::printf("%7s %6s %4s | %10s %10s %9s | %10s %10s %11s | %9s %10s\n", "n", "degree", "t_s", "dev up B", "dev down B", "dev ms",
              "server cpu", "server wall", "critical ms", "plain B", "plain ms");
  for (uint32_t n : sizes) {
    RoundConfig c;
    c.round_id = 1;
    c.graph_seed = 7;
    c.min_survivors = std::max<uint32_t>(2, n / 2);
    c.input.tau = tau;
    c.input.scale_bits = 40;
    c.input.bound = 1;
    c.input.max_weight = 128;
    std::mt19937_64 rng(n);
    std::vector<LocalDevice> devices(n);
    std::vector<float> coeffs(tau);
    for (uint32_t i = 0; i < n; ++i) {
      char id[16];
      std::snprintf(id, sizeof id, "d%06u", i);
      devices[i].id = id;
      for (auto& x : coeffs) x = std::uniform_real_distribution<float>(-1e-3f, 1e-3f)(rng);
      devices[i].input = encode_input(c.input, coeffs, 128).value();
      if (std::uniform_real_distribution<double>(0, 1)(rng) < dropout) devices[i].drop = DropAfter::kShareKeys;
    }
    std::vector<double> up, down, dev_ms, server_ms, server_wall_ms, critical_ms, plain_ms;
    for (int r = 0; r < repeat; ++r) {
      // The plain protocol's server: the sum of the survivors' fixed-point inputs.
      const double p0 = cpu_now();
      std::vector<uint64_t> plain(input_length(c.input), 0);
      for (const auto& d : devices)
        if (d.drop == DropAfter::kNever)
          for (size_t k = 0; k < plain.size(); ++k) plain[k] += d.input[k];
      plain_ms.push_back(1e3 * (cpu_now() - p0));
      auto res = run_local_round(c, devices);
      if (!res || !res->completed) {
        std::fprintf(stderr, "bench_secagg: n = %u: %s\n", n, res ? res->abandon_reason.c_str() : res.status().to_string().c_str());
        return 1;
      }
      if (res->sum != plain_sum(c, devices, res->survivors)) {
        std::fprintf(stderr, "bench_secagg: n = %u: the secure sum differs from the plain sum\n", n);
        return 1;
      }
      up.push_back(res->stats.device_bytes_up);
      down.push_back(res->stats.device_bytes_down);
      dev_ms.push_back(1e3 * res->stats.device_cpu_seconds);
      server_ms.push_back(1e3 * res->stats.server_cpu_seconds);
      server_wall_ms.push_back(1e3 * res->stats.server_wall_seconds);
      critical_ms.push_back(1e3 * res->stats.critical_path_seconds);
    }
    const auto shape = round_shape(c, n).value();
    const double plain_bytes = static_cast<double>(input_length(c.input)) * 8;
    std::printf("%7u %6u %4u | %10.0f %10.0f %9.2f | %10.1f %10.1f %11.1f | %9.0f %10.3f\n", n, shape.degree, shape.share_threshold,
                median(up), median(down), median(dev_ms), median(server_ms), median(server_wall_ms), median(critical_ms), plain_bytes,
                median(plain_ms));
    if (out) {
      char line[512];
      std::snprintf(line, sizeof line,
                    "{\"n\": %u, \"tau\": %u, \"dropout\": %.3f, \"degree\": %u, \"share_threshold\": %u, \"device_bytes_up\": %.0f, "
                    "\"device_bytes_down\": %.0f, \"device_cpu_ms\": %.3f, \"server_cpu_ms\": %.2f, \"server_wall_ms\": %.2f, \"critical_path_ms\": %.2f, "
                    "\"plain_bytes_up\": %.0f, \"plain_server_ms\": %.4f, \"repeat\": %d}\n",
                    n, tau, dropout, shape.degree, shape.share_threshold, median(up), median(down), median(dev_ms), median(server_ms),
                    median(server_wall_ms), median(critical_ms), plain_bytes, median(plain_ms), repeat);
      out << line;
    }
  }
  return 0;
}
