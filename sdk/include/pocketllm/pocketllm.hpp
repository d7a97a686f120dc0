// pocketllm.hpp — a thin C++17 layer over the C ABI (pocketllm.h): RAII handles and exceptions.
// Header-only; it calls nothing but pllm_* functions, so it works with the same libpocketllm.so.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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
  if (s != PLLM_OK) throw Error(s, std::string(pllm_status_string(s)) + ": " + pllm_last_error());
}

// s as a C string for the library; a NUL inside it would end that string early ("run\0x" naming the
// directory "run"), so such a string is refused instead.
inline const char* c_str(const std::string& s) {
  if (s.find('\0') != std::string::npos)
    throw Error(PLLM_ERR_INVALID_ARGUMENT, "invalid argument: a string passed to pocketllm contains a NUL character");
  return s.c_str();
}

inline std::string take_string(char* s) {
  std::string out = s ? s : "";
  pllm_free_string(s);
  return out;
}

// Receives each piece of generated text (whole UTF-8 characters) as it is generated; return false to
// stop (generate then throws Error PLLM_ERR_CANCELLED). An exception it throws stops generation and is
// rethrown from generate.
using TokenHandler = std::function<bool(const std::string& piece)>;

namespace detail {
// Calls fn (pllm_generate or pllm_device_generate) with a C trampoline to on_token that keeps the
// handler's exception from crossing the C ABI and rethrows it afterwards.
template <class Fn>
std::string generate_streamed(const TokenHandler& on_token, Fn&& fn) {
  struct Context {
    const TokenHandler* handler;
    std::exception_ptr error;
  } ctx{&on_token, nullptr};
  auto trampoline = [](const char* piece, void* user) -> bool {
    auto* c = static_cast<Context*>(user);
    try {
      return (*c->handler)(piece);
    } catch (...) {
      c->error = std::current_exception();
      return false;
    }
  };
  char* s = nullptr;
  const pllm_status status = fn(on_token ? +trampoline : nullptr, on_token ? &ctx : nullptr, &s);
  if (ctx.error) std::rethrow_exception(ctx.error);
  check(status);
  return take_string(s);
}

// Calls fn (pllm_classify or pllm_device_classify) with room for 16 labels, once more when there are more.
template <class Fn>
std::pair<int, std::vector<float>> classified(Fn&& fn) {
  std::vector<float> probabilities(16);
  int32_t label = -1;
  size_t n = 0;
  check(fn(&label, probabilities.data(), probabilities.size(), &n));
  if (n > probabilities.size()) {
    probabilities.resize(n);
    check(fn(&label, probabilities.data(), probabilities.size(), &n));
  }
  probabilities.resize(n);
  return {label, probabilities};
}

}  // namespace detail

// A cancellation flag another thread can raise (pllm_cancel), with the control that carries it.
class Cancel {
 public:
  Cancel() : c_(pllm_cancel_new()) {
    if (!c_) throw std::bad_alloc();
  }
  ~Cancel() { pllm_cancel_free(c_); }
  Cancel(const Cancel&) = delete;
  Cancel& operator=(const Cancel&) = delete;
  void request() { pllm_cancel_request(c_); }
  void reset() { pllm_cancel_reset(c_); }
  pllm_control control() const {
    pllm_control c = pllm_control_default();
    c.cancel = c_;
    return c;
  }

 private:
  pllm_cancel* c_;
};

class Model {
 public:
  explicit Model(const std::string& path, pllm_model_params params = pllm_model_default_params(),
                 const pllm_control* control = nullptr) {
    check(pllm_model_load(c_str(path), &params, control, &m_));
  }
  ~Model() { pllm_model_free(m_); }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  Model(Model&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}

  uint64_t n_params() const { return pllm_model_n_params(m_); }
  std::string id() const {
    char* s = nullptr;
    check(pllm_model_id(m_, &s));
    return take_string(s);
  }
  std::string generate(const std::string& prompt, pllm_generate_params params = pllm_generate_default_params(),
                       const pllm_control* control = nullptr) {
    return generate(prompt, params, TokenHandler(), control);
  }
  // The same, streamed: on_token hears each piece as it is generated.
  std::string generate(const std::string& prompt, pllm_generate_params params, const TokenHandler& on_token,
                       const pllm_control* control = nullptr) {
    const char* p = c_str(prompt);
    return detail::generate_streamed(on_token, [&](pllm_token_callback cb, void* user, char** out) {
      return pllm_generate(m_, p, &params, cb, user, control, out);
    });
  }
  // Mean loss and accuracy (-1 for a language-model task) of the current weights.
  std::pair<double, double> evaluate(const std::string& data_path, pllm_evaluate_params params = pllm_evaluate_default_params(),
                                     const pllm_control* control = nullptr) {
    double loss = 0, acc = -1;
    check(pllm_model_evaluate(m_, c_str(data_path), &params, control, &loss, &acc));
    return {loss, acc};
  }
  // The label index the current weights give `text` and every label's probability (params.labels or
  // params.preset required; pllm_classify).
  std::pair<int, std::vector<float>> classify(const std::string& text, pllm_evaluate_params params, const pllm_control* control = nullptr) {
    const char* t = c_str(text);
    return detail::classified([&](int32_t* label, float* probs, size_t capacity, size_t* n) {
      return pllm_classify(m_, t, &params, control, label, probs, capacity, n);
    });
  }
  // Whether a session or device has trained the weights since loading.
  bool is_trained() const { return pllm_model_is_trained(m_); }
  // pllm_model_info's JSON object: architecture, sizes, context_length, dtypes, adapter, id, ...
  std::string info() const {
    char* s = nullptr;
    check(pllm_model_info(m_, &s));
    return take_string(s);
  }
  int32_t context_length() const { return pllm_model_context_length(m_); }
  // Tokens text takes as a prompt (as generate encodes it).
  int32_t count_tokens(const std::string& text) const {
    int32_t n = 0;
    check(pllm_count_tokens(m_, c_str(text), &n));
    return n;
  }
  pllm_model* get() { return m_; }

  // What using the model at path for params' workload takes, from its configuration and file sizes alone.
  static pllm_memory_estimate estimate_memory(const std::string& path, pllm_model_params params = pllm_model_default_params()) {
    pllm_memory_estimate e{};
    e.struct_size = sizeof e;
    check(pllm_estimate_memory(c_str(path), &params, &e));
    return e;
  }

 private:
  pllm_model* m_ = nullptr;
};

// A fine-tuning run on a model (trained in place); see pllm_session_* in pocketllm.h.
class TrainingSession {
 public:
  TrainingSession(Model& model, const pllm_session_params& params, const pllm_control* control = nullptr) {
    check(pllm_session_open(model.get(), &params, control, &s_));
  }
  ~TrainingSession() { pllm_session_free(s_); }
  TrainingSession(const TrainingSession&) = delete;
  TrainingSession& operator=(const TrainingSession&) = delete;
  TrainingSession(TrainingSession&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}

  // Trains up to max_steps more steps (0: to the end); returns the held-out loss (NaN when none).
  double train(int32_t max_steps = 0, const pllm_control* control = nullptr) {
    double loss = 0;
    check(pllm_session_train(s_, max_steps, control, nullptr, &loss));
    return loss;
  }
  int32_t steps_done() const { return pllm_session_steps_done(s_); }
  int32_t total_steps() const { return pllm_session_total_steps(s_); }

 private:
  pllm_session* s_ = nullptr;
};

// A device of a federated task; see pllm_device_* in pocketllm.h.
class Device {
 public:
  Device(Model& model, const pllm_device_params& params, const pllm_control* control = nullptr) {
    check(pllm_device_open(model.get(), &params, control, &d_));
  }
  ~Device() { pllm_device_free(d_); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  Device(Device&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}

  // Every long call takes an optional control (cancellation from another thread, progress): a masked
  // round blocks until the round reaches this device's phases.
  uint64_t sync(const pllm_control* control = nullptr) {
    uint64_t v = 0;
    check(pllm_device_sync(d_, control, &v));
    return v;
  }
  // True when the device submitted to the current round.
  bool run_round(uint64_t* round = nullptr, const pllm_control* control = nullptr) {
    bool submitted = false;
    check(pllm_device_run_round(d_, control, &submitted, round));
    return submitted;
  }
  void personalize(int32_t steps, float lr, uint64_t seed, const pllm_control* control = nullptr) {
    check(pllm_device_personalize(d_, steps, lr, seed, control));
  }
  std::pair<double, double> eval(const std::string& data_path, const pllm_control* control = nullptr) {
    double loss = 0, acc = -1;
    check(pllm_device_eval(d_, c_str(data_path), control, &loss, &acc));
    return {loss, acc};
  }
  std::string generate(const std::string& prompt, pllm_generate_params params = pllm_generate_default_params(),
                       const pllm_control* control = nullptr) {
    return generate(prompt, params, TokenHandler(), control);
  }
  std::string generate(const std::string& prompt, pllm_generate_params params, const TokenHandler& on_token,
                       const pllm_control* control = nullptr) {
    const char* p = c_str(prompt);
    return detail::generate_streamed(on_token, [&](pllm_token_callback cb, void* user, char** out) {
      return pllm_device_generate(d_, p, &params, cb, user, control, out);
    });
  }
  // The label index the device's weights give `text` under its classification task, and every label's probability.
  std::pair<int, std::vector<float>> classify(const std::string& text, const pllm_control* control = nullptr) {
    const char* t = c_str(text);
    return detail::classified([&](int32_t* label, float* probs, size_t capacity, size_t* n) {
      return pllm_device_classify(d_, t, control, label, probs, capacity, n);
    });
  }
  uint64_t bytes_sent() const { return pllm_device_bytes_sent(d_); }
  uint64_t bytes_received() const { return pllm_device_bytes_received(d_); }

 private:
  pllm_device* d_ = nullptr;
};

// The user's private examples, collected in memory and written as JSONL (mode 0600, atomically).
class Examples {
 public:
  Examples() : e_(pllm_examples_new()) {
    if (!e_) throw std::bad_alloc();
  }
  ~Examples() { pllm_examples_free(e_); }
  Examples(const Examples&) = delete;
  Examples& operator=(const Examples&) = delete;
  Examples(Examples&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}

  Examples& add_text(const std::string& text) {
    check(pllm_examples_add_text(e_, c_str(text)));
    return *this;
  }
  Examples& add_completion(const std::string& prompt, const std::string& completion) {
    check(pllm_examples_add_completion(e_, c_str(prompt), c_str(completion)));
    return *this;
  }
  Examples& add_labelled(const std::string& text, const std::string& label) {
    check(pllm_examples_add_labelled(e_, c_str(text), c_str(label)));
    return *this;
  }
  uint64_t count() const { return pllm_examples_count(e_); }
  void write(const std::string& path) const { check(pllm_examples_write(e_, c_str(path))); }

 private:
  pllm_examples* e_ = nullptr;
};

// Writes a run's fine-tuned model: format "hf" (a directory), "gguf" (one file; type "f32" … "q4_0" or
// empty for the default) or "peft" (the adapters alone); see pllm_export_as.
inline void export_run(const std::string& run_dir, const std::string& out, const std::string& format = "hf",
                       const std::string& type = "") {
  check(pllm_export_as(c_str(run_dir), c_str(out), c_str(format), type.empty() ? nullptr : c_str(type)));
}

// The library's log lines at min_level and above go to `handler` (an empty function removes it). It runs
// on the thread making the pocketllm call and must not throw; returns once no call is inside the previous
// handler. One handler per process, as pllm_set_log_callback.
using LogHandler = std::function<void(pllm_log_level level, const std::string& message)>;
inline void set_log_handler(LogHandler handler, pllm_log_level min_level = PLLM_LOG_WARN) {
  static std::mutex mu;
  static LogHandler installed;  // replaced only with the library's hook switched off
  std::lock_guard<std::mutex> lock(mu);
  pllm_set_log_callback(nullptr, nullptr, PLLM_LOG_ERROR);
  installed = std::move(handler);
  if (!installed) return;
  pllm_set_log_callback(
      [](pllm_log_level level, const char* message, void* user) {
        try {
          (*static_cast<LogHandler*>(user))(level, message);
        } catch (...) {  // an exception must not cross the C library
        }
      },
      &installed, min_level);
}

}  // namespace pocketllm::sdk
