// The library itself: versions, status names, system information, the log hook, cancellation flags,
// and the stateless spec functions (z generation, replay).
#include "pocketllm/client/kernels_info.h"
#include <thread>

#include <nlohmann/json.hpp>

#include "abi.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/cpu_features.h"
#include "pocketllm/common/perturbation.h"

using namespace pllm_abi;

extern "C" {

const char* pllm_version(void) { return PLLM_VERSION_STRING; }
uint32_t pllm_version_number(void) { return PLLM_VERSION_NUMBER; }
int32_t pllm_perturbation_spec_version(void) { return pocketllm::kPerturbationSpecVersion; }
const char* pllm_last_error(void) { return last_error().c_str(); }
void pllm_free_string(char* s) { std::free(s); }

const char* pllm_status_string(pllm_status status) {
  switch (status) {
    case PLLM_OK: return "ok";
    case PLLM_ERR_INVALID_ARGUMENT: return "invalid argument";
    case PLLM_ERR_NOT_FOUND: return "not found";
    case PLLM_ERR_IO: return "i/o error";
    case PLLM_ERR_CORRUPT: return "corrupt";
    case PLLM_ERR_MISMATCH: return "mismatch";
    case PLLM_ERR_UNSUPPORTED: return "unsupported";
    case PLLM_ERR_OUT_OF_RANGE: return "out of range";
    case PLLM_ERR_CANCELLED: return "cancelled";
    case PLLM_ERR_INTERNAL: return "internal error";
    case PLLM_ERR_MEMORY_BUDGET: return "over the memory budget";
    case PLLM_ERR_BUSY: return "busy";
    case PLLM_STATUS_FORCE_INT32: break;
  }
  return "unknown status";
}

pllm_status pllm_system_info(char** out_json) {
  return guarded([&] {
    if (!out_json) return fail(PLLM_ERR_INVALID_ARGUMENT, "out_json is required");
    nlohmann::json j;
    j["version"] = PLLM_VERSION_STRING;
    j["perturbation_spec"] = pocketllm::kPerturbationSpecVersion;
#ifdef POCKETLLM_MOBILE_BUILD
    j["profile"] = "mobile";
    j["builtin_https"] = false;
#else
    j["profile"] = "desktop";
    j["builtin_https"] = true;
#endif
    j["isa"] = POCKETLLM_ISA_NAME;
#if defined(__aarch64__)
    j["arch"] = "aarch64";
    j["cpu_dotprod"] = pocketllm::cpu_features().arm_dotprod;
    j["cpu_i8mm"] = pocketllm::cpu_features().arm_i8mm;
#elif defined(__x86_64__)
    j["arch"] = "x86_64";
    j["cpu_avx2"] = static_cast<bool>(__builtin_cpu_supports("avx2"));
    j["cpu_avx512f"] = static_cast<bool>(__builtin_cpu_supports("avx512f"));
#else
    j["arch"] = "other";
#endif
    j["cores"] = std::thread::hardware_concurrency();
    j["kernels"] = pocketllm::kernel_paths();
    *out_json = dup_string(j.dump());
    return PLLM_OK;
  });
}

void pllm_set_log_callback(pllm_log_callback callback, void* user, pllm_log_level min_level) {
  set_log_callback(callback, user, min_level);
}

pllm_cancel* pllm_cancel_new(void) { return new (std::nothrow) pllm_cancel(); }
void pllm_cancel_request(pllm_cancel* c) {
  if (c) c->requested.store(true);
}
void pllm_cancel_reset(pllm_cancel* c) {
  if (c) c->requested.store(false);
}
bool pllm_cancel_is_requested(const pllm_cancel* c) { return c && c->requested.load(); }
void pllm_cancel_free(pllm_cancel* c) { delete c; }

pllm_control pllm_control_default(void) { return pllm_control{sizeof(pllm_control), nullptr, nullptr, nullptr}; }

pllm_status pllm_generate_z(uint64_t seed, const char* tensor_name, uint64_t start, uint64_t count, pllm_distribution dist,
                            float* out) {
  return guarded([&] {
    if (!tensor_name || (!out && count > 0)) return fail(PLLM_ERR_INVALID_ARGUMENT, "tensor_name and out are required");
    if (dist != PLLM_DIST_RADEMACHER && dist != PLLM_DIST_GAUSSIAN) return fail(PLLM_ERR_INVALID_ARGUMENT, "unknown distribution");
    if (start > UINT64_MAX - count) return fail(PLLM_ERR_OUT_OF_RANGE, "start + count overflows");
    pocketllm::generate_z(static_cast<pocketllm::Distribution>(dist), seed, pocketllm::tensor_tag(tensor_name), start,
                          static_cast<size_t>(count), out);
    return PLLM_OK;
  });
}

pllm_status pllm_replay_tensor(const char* log_path, const char* tensor_name, pllm_distribution dist, float* data,
                               uint64_t count) {
  return guarded([&] {
    if (!log_path || !tensor_name || (!data && count > 0)) return fail(PLLM_ERR_INVALID_ARGUMENT, "missing argument");
    if (dist != PLLM_DIST_RADEMACHER && dist != PLLM_DIST_GAUSSIAN) return fail(PLLM_ERR_INVALID_ARGUMENT, "unknown distribution");
    auto log = pocketllm::load_replayable_log(log_path);
    if (!log) return fail(log.status());
    const std::vector<pocketllm::NamedTensor> tensors = {{tensor_name, data, static_cast<size_t>(count)}};
    pocketllm::replay_steps(nullptr, static_cast<pocketllm::Distribution>(dist), log->steps, 0, log->steps.size(), tensors);
    return PLLM_OK;
  });
}

pllm_status pllm_export(const char* run_dir, const char* out_dir) {
  return guarded([&] {
    if (!run_dir || !out_dir) return fail(PLLM_ERR_INVALID_ARGUMENT, "run_dir and out_dir are required");
    auto step = pocketllm::export_run(run_dir, out_dir);
    if (!step) return fail(step.status());
    return PLLM_OK;
  });
}

pllm_status pllm_export_as(const char* run_dir, const char* out, const char* format, const char* type) {
  return guarded([&] {
    if (!run_dir || !out) return fail(PLLM_ERR_INVALID_ARGUMENT, "run_dir and out are required");
    pocketllm::ExportFormat f;
    const std::string name = format ? format : "hf";
    if (name != "hf" && name != "gguf" && name != "peft") return fail(PLLM_ERR_INVALID_ARGUMENT, "format must be hf, gguf or peft, not '" + name + "'");
    f.gguf = name == "gguf";
    f.peft = name == "peft";
    if (type && (!f.gguf || !pocketllm::parse_gguf_type(type, &f.gguf_type)))
      return fail(PLLM_ERR_INVALID_ARGUMENT, "type needs format gguf and is one of f32, f16, bf16, q8_0, q4_0");
    auto step = pocketllm::export_run(run_dir, out, 0, f);
    if (!step) return fail(step.status());
    return PLLM_OK;
  });
}

}  // extern "C"
