// What every C entry point shares: the handle structs, the per-thread last error, status conversion,
// params-struct versioning, and guarded(), which runs a call under its pllm_control (cancellation
// scope, progress) and turns every exception into a status. Internal to the SDK library.
#pragma once

#include <atomic>
#include <cstring>
#include <memory>
#include <string>

#include "pocketllm/client/loader.h"
#include "pocketllm/common/cancel.h"
#include "pocketllm/common/status.h"
#include "pocketllm/common/thread_pool.h"
#include "pocketllm/common/work_progress.h"
#include "pocketllm/pocketllm.h"

namespace pocketllm {
class DeviceSession;
class FinetuneSession;
struct TaskOptions;
}  // namespace pocketllm

struct pllm_cancel {
  std::atomic<bool> requested{false};
};

struct pllm_model {
  pocketllm::LoadedModel loaded;
  std::unique_ptr<pocketllm::ThreadPool> pool;
  std::string model_id;  // computed once at load
  int n_threads = 0;
  bool trained = false;   // a session or device changed the weights
  const char* holder = nullptr;  // "a training session" / "a federated device" while one has it
  bool free_pending = false;     // pllm_model_free came while a holder had it: freed with the holder
  // ModelCall's state: kInCall while a call computes with it; kFreeRequested once pllm_model_free came
  // during such a call (the call's end frees it).
  static constexpr unsigned kInCall = 1, kFreeRequested = 2;
  mutable std::atomic<unsigned> call_state{0};
};

namespace pllm_abi {

pllm_status fail(const pocketllm::Status& s);
pllm_status fail(pllm_status code, const std::string& message);
char* dup_string(const std::string& s);
void log(pllm_log_level level, const std::string& message);
// A session or device lets go of its model (after it is itself destroyed); frees the model when the app
// already asked to.
void release_model_hold(pllm_model* m);
// A progress sink for the engine's own reports (common/work_progress.h): done / total to the control's
// callback; false (stop or cancel) unwinds the work as a cancellation.
pocketllm::ProgressSink progress_sink(const pllm_control* control);
void set_log_callback(pllm_log_callback cb, void* user, pllm_log_level min_level);
const std::string& last_error();

// A params struct from the caller: defaults overlaid with the caller's first struct_size bytes.
template <class T>
pllm_status read_params(const T* given, T defaults, T* out, const char* what) {
  *out = defaults;
  if (!given) return PLLM_OK;
  if (given->struct_size < sizeof(uint32_t))
    return fail(PLLM_ERR_INVALID_ARGUMENT, std::string(what) + ": struct_size is not set (start from the *_default_params() value)");
  if (given->struct_size > sizeof(T))
    return fail(PLLM_ERR_UNSUPPORTED, std::string(what) + ": struct_size " + std::to_string(given->struct_size) +
                                          " is larger than this library's " + std::to_string(sizeof(T)) + " (a newer header?)");
  std::memcpy(static_cast<void*>(out), given, given->struct_size);
  out->struct_size = sizeof(T);
  return PLLM_OK;
}

// A required, valid UTF-8 string argument.
pllm_status check_text(const char* s, const char* what, bool allow_empty = true);
// An optional one (NULL allowed).
pllm_status check_optional_text(const char* s, const char* what);
// A model a session or device may take (not held by another one, weights not trained).
pllm_status check_model_free(const pllm_model* m);
// A model that can generate or evaluate now (not taken over by a federated device).
pllm_status check_model_usable(const pllm_model* m);
pllm_status check_threads(int32_t n);

// A call that computes with a model — generate, evaluate, a session's or a device's work — holds it for
// its duration: the activations, KV cache and thread pool are the model's, so a second such call from
// another thread (a breach of the one-thread-per-handle rule, easy to make from a UI and a worker
// thread) would corrupt both results silently. It gets PLLM_ERR_BUSY instead. A call made on the same
// thread from inside one (a training session's progress callback sampling text between steps) goes on,
// as before. pllm_model_free during a call (another thread's, or from the call's own callback) leaves
// the model to the call, which frees it when it returns. A null model is left to the call's own checks.
class ModelCall {
 public:
  explicit ModelCall(const pllm_model* m);
  ~ModelCall();
  ModelCall(const ModelCall&) = delete;
  ModelCall& operator=(const ModelCall&) = delete;
  // PLLM_OK when the call has the model (or there is none to take).
  pllm_status status() const;

 private:
  const pllm_model* m_;
  bool taken_ = false, nested_ = false;
};

// Runs fn() with the control's cancellation flag installed for this thread; exceptions become statuses
// (a cancellation PLLM_ERR_CANCELLED, bad_alloc PLLM_ERR_MEMORY_BUDGET, anything else INTERNAL).
template <class Fn>
pllm_status guarded(const pllm_control* control, Fn&& fn);

pllm_status guarded_impl(const pllm_control* control, pllm_status (*call)(void*), void* ctx);

template <class Fn>
pllm_status guarded(const pllm_control* control, Fn&& fn) {
  return guarded_impl(control, [](void* f) { return (*static_cast<Fn*>(f))(); }, &fn);
}
template <class Fn>
pllm_status guarded(Fn&& fn) {
  return guarded(nullptr, std::forward<Fn>(fn));
}

pllm_status check_workload(int32_t batch, int32_t max_length);
pllm_status generate_with(pocketllm::ThreadPool* pool, pocketllm::LoadedModel& loaded, const char* prompt,
                          const pllm_generate_params* params, pllm_token_callback on_token, void* user, char** out_text);
// One text's label and label probabilities under task options; shared by pllm_classify and pllm_device_classify.
pllm_status classify_with(pocketllm::ThreadPool* pool, const pocketllm::LoadedModel& loaded, const char* text,
                          const pocketllm::TaskOptions& options, int32_t* out_label, float* probabilities, size_t capacity,
                          size_t* out_n_labels);

// The control's progress callback (true: go on).
bool report_progress(const pllm_control* control, float progress);

}  // namespace pllm_abi
