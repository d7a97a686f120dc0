#include "abi.h"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "pocketllm/client/dataset.h"

namespace pllm_abi {
namespace {

thread_local std::string g_last_error;

struct LogHook {
  std::mutex mu;
  pllm_log_callback callback = nullptr;
  void* user = nullptr;
  pllm_log_level min_level = PLLM_LOG_ERROR;
};
LogHook& log_hook() {
  static LogHook hook;
  return hook;
}

}  // namespace

pllm_status fail(const pocketllm::Status& s) {
  g_last_error = s.message();
  log(PLLM_LOG_WARN, s.to_string());
  return static_cast<pllm_status>(static_cast<int>(s.code()));
}

pllm_status fail(pllm_status code, const std::string& message) {
  g_last_error = message;
  log(PLLM_LOG_WARN, std::string(pllm_status_string(code)) + ": " + message);
  return code;
}

const std::string& last_error() { return g_last_error; }

char* dup_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (!out) throw std::bad_alloc();
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

namespace {
// This thread is inside the log hook. A hook that calls into the library anyway (the header says it
// must not) would log again, or re-install the hook, with the hook's mutex held: such nested lines are
// dropped and such re-installs ignored instead of deadlocking.
thread_local bool in_hook = false;
}  // namespace

void log(pllm_log_level level, const std::string& message) {
  if (in_hook) return;
  LogHook& h = log_hook();
  std::lock_guard<std::mutex> lock(h.mu);
  if (!h.callback || level < h.min_level) return;
  struct Nested {
    Nested() { in_hook = true; }
    ~Nested() { in_hook = false; }
  } nested;
  h.callback(level, message.c_str(), h.user);
}

void release_model_hold(pllm_model* m) {
  m->holder = nullptr;
  if (m->free_pending) delete m;
}

void set_log_callback(pllm_log_callback cb, void* user, pllm_log_level min_level) {
  if (in_hook) return;
  LogHook& h = log_hook();
  std::lock_guard<std::mutex> lock(h.mu);
  h.callback = cb;
  h.user = user;
  h.min_level = min_level;
}

pllm_status check_text(const char* s, const char* what, bool allow_empty) {
  if (!s) return fail(PLLM_ERR_INVALID_ARGUMENT, std::string(what) + " is required");
  if (!allow_empty && !*s) return fail(PLLM_ERR_INVALID_ARGUMENT, std::string(what) + " must not be empty");
  if (!pocketllm::is_valid_utf8(s)) return fail(PLLM_ERR_INVALID_ARGUMENT, std::string(what) + " is not valid UTF-8");
  return PLLM_OK;
}

pllm_status check_optional_text(const char* s, const char* what) { return s ? check_text(s, what) : PLLM_OK; }

pllm_status check_model_free(const pllm_model* m) {
  if (!m) return fail(PLLM_ERR_INVALID_ARGUMENT, "model is required");
  if (m->holder) return fail(PLLM_ERR_BUSY, std::string("the model is in use by ") + m->holder + "; free that first");
  if (m->trained)
    return fail(PLLM_ERR_BUSY, "the model's weights were trained since it was loaded; load it again to start from its base weights");
  return PLLM_OK;
}

pllm_status check_model_usable(const pllm_model* m) {
  if (!m) return fail(PLLM_ERR_INVALID_ARGUMENT, "model is required");
  if (!m->loaded.model) return fail(PLLM_ERR_BUSY, std::string("the model is in use by ") + (m->holder ? m->holder : "another handle"));
  return PLLM_OK;
}

namespace {
thread_local std::vector<const pllm_model*> t_held;  // the models this thread's calls hold, innermost last
}  // namespace

ModelCall::ModelCall(const pllm_model* m) : m_(m) {
  if (!m) return;
  nested_ = std::find(t_held.begin(), t_held.end(), m) != t_held.end();
  if (nested_) return;
  unsigned idle = 0;
  taken_ = m->call_state.compare_exchange_strong(idle, pllm_model::kInCall);
  if (taken_) t_held.push_back(m);
}

ModelCall::~ModelCall() {
  if (!taken_) return;
  t_held.pop_back();
  const unsigned before = m_->call_state.fetch_and(~pllm_model::kInCall);
  if (!(before & pllm_model::kFreeRequested)) return;
  auto* m = const_cast<pllm_model*>(m_);  // pllm_model_free came during the call: now, or with its new holder
  if (m->holder) m->free_pending = true;
  else delete m;
}

pllm_status ModelCall::status() const {
  if (!m_ || taken_ || nested_) return PLLM_OK;
  return fail(PLLM_ERR_BUSY,
              "the model is in use by a call on another thread: a model, and the session or device on it, is used by one thread "
              "at a time (wait for that call, or cancel it)");
}

pllm_status check_threads(int32_t n) {
  if (n < 0 || n > 256) return fail(PLLM_ERR_INVALID_ARGUMENT, "n_threads must be 0 (all cores) or 1..256, not " + std::to_string(n));
  return PLLM_OK;
}

pllm_status guarded_impl(const pllm_control* control, pllm_status (*call)(void*), void* ctx) {
  g_last_error.clear();
  if (control && control->struct_size < sizeof(uint32_t) * 2)
    return fail(PLLM_ERR_INVALID_ARGUMENT, "pllm_control: struct_size is not set (start from pllm_control_default())");
  if (control && control->struct_size > sizeof(pllm_control))
    return fail(PLLM_ERR_UNSUPPORTED, "pllm_control: struct_size is larger than this library knows (a newer header?)");
  const std::atomic<bool>* flag = control && control->cancel ? &control->cancel->requested : nullptr;
  pocketllm::CancelScope scope(flag);
  try {
    if (flag && flag->load()) return fail(PLLM_ERR_CANCELLED, "cancelled before it started");
    return call(ctx);
  } catch (const pocketllm::Cancelled&) {
    return fail(PLLM_ERR_CANCELLED, "cancelled");
  } catch (const std::bad_alloc&) {
    return fail(PLLM_ERR_MEMORY_BUDGET, "out of memory");
  } catch (const std::exception& e) {
    return fail(PLLM_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(PLLM_ERR_INTERNAL, "internal error");
  }
}

pocketllm::ProgressSink progress_sink(const pllm_control* control) {
  return [control](size_t done, size_t total) {
    return report_progress(control, total == 0 ? 1.0f : static_cast<float>(static_cast<double>(done) / static_cast<double>(total)));
  };
}

bool report_progress(const pllm_control* control, float progress) {
  if (control && control->cancel && control->cancel->requested.load()) return false;
  return !(control && control->progress && !control->progress(progress, control->user));
}

}  // namespace pllm_abi
