// The SDK through its C ABI only (pocketllm.h), as an app sees it:
//   bench_sdk load MODEL                 load time and RSS after load (one load per process: run it N times)
//   bench_sdk cancel MODEL               latency from pllm_cancel_request to the call's return, for a load, an
//                                        evaluation, the tokenisation of a long prompt and an enrolment that retries
//   bench_sdk abort-cost MODEL [REPS]    evaluation with and without a cancellation flag installed (interleaved)
// Prints one JSON object per measurement; medians over repetitions are taken by bench/run_sdk_bench.sh.
#include "bench_args.h"
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "pocketllm/pocketllm.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

pllm_model* load(const char* path, int threads) {
  pllm_model_params p = pllm_model_default_params();
  p.n_threads = threads;
  pllm_model* m = nullptr;
  if (pllm_model_load(path, &p, nullptr, &m) != PLLM_OK) {
    std::fprintf(stderr, "load %s: %s\n", path, pllm_last_error());
    std::exit(1);
  }
  return m;
}

std::string write_data(int lines) {
  const std::string path = "/tmp/bench_sdk_data_" + std::to_string(::getpid()) + ".txt";
  std::ofstream f(path);
  for (int i = 0; i < lines; ++i) f << "Once upon a time there was a little girl who liked to play in the park with her dog every day.\n";
  return path;
}

// Runs call() on this thread; another thread raises the flag after delay_ms. Returns (request -> return) in ms.
double cancel_latency(const char* what, int delay_ms, const std::function<pllm_status(const pllm_control*)>& call) {
  pllm_cancel* c = pllm_cancel_new();
  pllm_control ctl = pllm_control_default();
  ctl.cancel = c;
  std::atomic<int64_t> requested_ns{0};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    requested_ns = Clock::now().time_since_epoch().count();
    pllm_cancel_request(c);
  });
  const pllm_status s = call(&ctl);
  const int64_t returned_ns = Clock::now().time_since_epoch().count();
  t.join();
  pllm_cancel_free(c);
  const double latency = (returned_ns - requested_ns.load()) / 1e6;
  std::printf("{\"mode\":\"cancel\",\"call\":\"%s\",\"status\":\"%s\",\"latency_ms\":%.2f}\n", what, pllm_status_string(s), latency);
  return latency;
}

pllm_status failing_transport(const char*, const char*, const char*, size_t, const char*, pllm_http_reply*, void*) { return PLLM_ERR_IO; }

int bench_cancel(const char* model_path) {
  cancel_latency("load", 5, [&](const pllm_control* c) {
    pllm_model* m = nullptr;
    const pllm_status s = pllm_model_load(model_path, nullptr, c, &m);
    pllm_model_free(m);
    return s;
  });
  pllm_model* m = load(model_path, 0);
  const std::string data = write_data(20000);
  cancel_latency("evaluate", 200, [&](const pllm_control* c) {
    double loss = 0, acc = 0;
    return pllm_model_evaluate(m, data.c_str(), nullptr, c, &loss, &acc);
  });
  std::string prompt;
  while (prompt.size() < 4000000) prompt += "the little dog ran to the park and played with a red ball. ";
  cancel_latency("tokenise", 100, [&](const pllm_control* c) {
    pllm_generate_params g = pllm_generate_default_params();
    g.max_new_tokens = 1;
    return pllm_generate(m, prompt.c_str(), &g, nullptr, nullptr, c, nullptr);
  });
  cancel_latency("enrol", 300, [&](const pllm_control* c) {
    pllm_device_params p = pllm_device_default_params();
    p.transport = failing_transport;
    p.server_url = "https://unreachable.invalid";
    p.credentials_path = "/tmp/bench_sdk_never.cred";
    p.enrolment_token = "t";
    p.task_id = "t";
    p.data_path = data.c_str();
    p.state_dir = "/tmp/bench_sdk_never_state";
    pllm_device* d = nullptr;
    return pllm_device_open(m, &p, c, &d);
  });
  std::remove(data.c_str());
  pllm_model_free(m);
  return 0;
}

int bench_abort_cost(const char* model_path, int reps) {
  pllm_model* m = load(model_path, 1);
  const std::string data = write_data(200);
  pllm_cancel* c = pllm_cancel_new();
  pllm_control ctl = pllm_control_default();
  ctl.cancel = c;
  std::vector<double> plain, flagged;
  for (int r = 0; r < reps; ++r) {
    for (int which = 0; which < 2; ++which) {
      double loss = 0, acc = 0;
      const auto t0 = Clock::now();
      if (pllm_model_evaluate(m, data.c_str(), nullptr, which ? &ctl : nullptr, &loss, &acc) != PLLM_OK) return 1;
      (which ? flagged : plain).push_back(ms_since(t0));
    }
  }
  std::sort(plain.begin(), plain.end());
  std::sort(flagged.begin(), flagged.end());
  const double p = plain[plain.size() / 2], f = flagged[flagged.size() / 2];
  std::printf("{\"mode\":\"abort-cost\",\"reps\":%d,\"evaluate_ms_without\":%.2f,\"evaluate_ms_with\":%.2f,\"ratio\":%.4f}\n", reps, p, f, f / p);
  std::remove(data.c_str());
  pllm_cancel_free(c);
  pllm_model_free(m);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_sdk load|cancel|abort-cost MODEL [REPS]\n");
    return 2;
  }
  const std::string mode = argv[1];
  const char* model = argv[2];
  if (mode == "load") {
    const long before = rss_kib();
    const auto t0 = Clock::now();
    pllm_model* m = load(model, 0);
    const double ms = ms_since(t0);
    std::printf("{\"mode\":\"load\",\"params\":%llu,\"load_ms\":%.1f,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"peak_rss_kib\":%ld}\n",
                static_cast<unsigned long long>(pllm_model_n_params(m)), ms, before, rss_kib(), peak_rss_kib());
    pllm_model_free(m);
    return 0;
  }
  if (mode == "cancel") return bench_cancel(model);
  if (mode == "abort-cost") return bench_abort_cost(model, argc > 3 ? static_cast<int>(pocketllm::bench::int_arg("abort-cost runs", argv[3], 1, 100000)) : 9);
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
