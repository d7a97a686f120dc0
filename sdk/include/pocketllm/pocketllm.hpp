// pocketllm.hpp — a thin C++17 layer over the C ABI (pocketllm.h): RAII handles and exceptions.
// Header-only; it calls nothing but pllm_* functions, so it works with the same libpocketllm.so.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include "pocketllm/pocketllm.h"

namespace pocketllm::sdk {

// A failed call: the status code and pllm_last_error()'s message.
class Error : public std::runtime_error {
 public:
  Error(pllm_status code, const std::string& what) : std::runtime_error(what), code_(code) {}
  pllm_status code() const { return code_; }

 private:
  pllm_status code_;
};

inline void check(pllm_status s) {
  if (s != PLLM_OK) throw Error(s, pllm_last_error());
}

inline std::string take_string(char* s) {
  std::string out = s ? s : "";
  pllm_free_string(s);
  return out;
}

class Model {
 public:
  explicit Model(const std::string& path, pllm_model_params params = pllm_model_default_params()) {
    check(pllm_model_load(path.c_str(), &params, &m_));
  }
  ~Model() { pllm_model_free(m_); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  Model(Model&& o) noexcept : m_(o.m_) { o.m_ = nullptr; }

  uint64_t n_params() const { return pllm_model_n_params(m_); }
  std::string id() const {
    char* s = nullptr;
    check(pllm_model_id(m_, &s));
    return take_string(s);
  }
  std::string generate(const std::string& prompt, pllm_generate_params params = pllm_generate_default_params()) {
    char* s = nullptr;
    check(pllm_generate(m_, prompt.c_str(), &params, nullptr, nullptr, &s));
    return take_string(s);
  }
  pllm_model* get() { return m_; }

 private:
  pllm_model* m_ = nullptr;
};

// A device of a federated task; see pllm_device_* in pocketllm.h.
class Device {
 public:
  explicit Device(const pllm_device_params& params) { check(pllm_device_open(&params, &d_)); }
  ~Device() { pllm_device_free(d_); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  Device(Device&& o) noexcept : d_(o.d_) { o.d_ = nullptr; }

  uint64_t sync() {
    uint64_t v = 0;
    check(pllm_device_sync(d_, &v));
    return v;
  }
  // True when the device submitted to the current round.
  bool run_round(uint64_t* round = nullptr) {
    bool submitted = false;
    check(pllm_device_run_round(d_, &submitted, round));
    return submitted;
  }
  void personalize(int32_t steps, float lr, uint64_t seed) { check(pllm_device_personalize(d_, steps, lr, seed)); }
  std::pair<double, double> eval(const std::string& data_path) {
    double loss = 0, acc = -1;
    check(pllm_device_eval(d_, data_path.c_str(), &loss, &acc));
    return {loss, acc};
  }
  std::string generate(const std::string& prompt, pllm_generate_params params = pllm_generate_default_params()) {
    char* s = nullptr;
    check(pllm_device_generate(d_, prompt.c_str(), &params, nullptr, nullptr, &s));
    return take_string(s);
  }
  uint64_t bytes_sent() const { return pllm_device_bytes_sent(d_); }
  uint64_t bytes_received() const { return pllm_device_bytes_received(d_); }

 private:
  pllm_device* d_ = nullptr;
};

}  // namespace pocketllm::sdk
