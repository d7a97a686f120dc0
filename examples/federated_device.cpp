// A phone app's federated loop in C++, through pocketllm.hpp (the C ABI underneath): join a task,
// take part in rounds while the device is idle and charging, keep a personal touch on top of the shared
// model, and use it. Usage:
//   federated_device SERVER_URL CA_FILE ENROLMENT_TOKEN TASK MODEL DATA STATE_DIR [ROUNDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "pocketllm/pocketllm.hpp"

int main(int argc, char** argv) {
  if (argc < 8) {
    std::fprintf(stderr, "usage: %s SERVER_URL CA_FILE ENROLMENT_TOKEN TASK MODEL DATA STATE_DIR [ROUNDS]\n", argv[0]);
    return 2;
  }
  const std::string state = argv[7];
  const std::string credentials = state + ".credentials.json";
  pllm_device_params p = pllm_device_default_params();
  p.server_url = argv[1];
  p.ca_file = argv[2];
  p.enrolment_token = argv[3];
  p.task_id = argv[4];
  p.data_path = argv[6];
  p.state_dir = state.c_str();
  p.credentials_path = credentials.c_str();
  p.timeout_ms = 10000;
  const int rounds = argc > 8 ? std::atoi(argv[8]) : 3;
  try {
    pocketllm::sdk::Model model(argv[5]);
    pocketllm::sdk::Device device(model, p);
    std::printf("synced to version %llu\n", static_cast<unsigned long long>(device.sync()));
    device.personalize(5, 1e-4f, 42);  // the user's own adaptation: stays on the phone
    for (int done = 0; done < rounds;) {
      uint64_t round = 0;
      if (device.run_round(&round)) {
        std::printf("submitted to round %llu\n", static_cast<unsigned long long>(round));
        ++done;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      device.sync();
    }
    auto [loss, acc] = device.eval(argv[6]);
    std::printf("loss on the device's own data: %.4f; sent %llu bytes, received %llu bytes\n", loss,
                static_cast<unsigned long long>(device.bytes_sent()), static_cast<unsigned long long>(device.bytes_received()));
    std::printf("sample: %s\n", device.generate("Once upon a time").c_str());
  } catch (const pocketllm::sdk::Error& e) {
    std::fprintf(stderr, "pocketllm error %d: %s\n", static_cast<int>(e.code()), e.what());
    return 1;
  }
  return 0;
}
