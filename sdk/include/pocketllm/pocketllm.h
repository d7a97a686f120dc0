/*
 * pocketllm.h — the C ABI of pocketllm: on-device zeroth-order fine-tuning of language models.
 *
 * This header is the whole contract for apps (JNI, Swift, C). Conventions:
 *  - Opaque handles (pllm_model); parameter structs come from *_default_params() so callers set only
 *    what they change.
 *  - Every call that can fail returns a pllm_status; pllm_last_error() gives the message. No C++
 *    exception crosses this boundary.
 *  - Strings are UTF-8, NUL-terminated. Strings returned to the caller are freed with pllm_free_string.
 *  - Long work takes a progress callback; returning false from it stops the work cleanly.
 */
#ifndef POCKETLLM_H
#define POCKETLLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define PLLM_API __declspec(dllexport)
#else
#define PLLM_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pllm_status {
  PLLM_OK = 0,
  PLLM_ERR_INVALID_ARGUMENT = 1,
  PLLM_ERR_NOT_FOUND = 2,
  PLLM_ERR_IO = 3,
  PLLM_ERR_CORRUPT = 4,
  PLLM_ERR_MISMATCH = 5,
  PLLM_ERR_UNSUPPORTED = 6,
  PLLM_ERR_OUT_OF_RANGE = 7,
  PLLM_ERR_CANCELLED = 8,
  PLLM_ERR_INTERNAL = 9,
  PLLM_ERR_MEMORY_BUDGET = 10
} pllm_status;

typedef enum pllm_distribution { PLLM_DIST_RADEMACHER = 0, PLLM_DIST_GAUSSIAN = 1 } pllm_distribution;

/* "0.1.0". Thread-safe. */
PLLM_API const char* pllm_version(void);
/* Version of the perturbation spec (docs/perturbation.md) this library implements. Thread-safe. */
PLLM_API int32_t pllm_perturbation_spec_version(void);
/* Message of the last failed call on this thread ("" when none). Valid until the next call on this
 * thread. Thread-safe (per-thread). */
PLLM_API const char* pllm_last_error(void);
/* Frees a string returned by this library. NULL is allowed. */
PLLM_API void pllm_free_string(char* s);

/* Writes z(seed, tensor)[start .. start+count) to out (count floats, caller-owned): the golden generator
 * ports check themselves against. Thread-safe. */
PLLM_API pllm_status pllm_generate_z(uint64_t seed, const char* tensor_name, uint64_t start, uint64_t count,
                                     pllm_distribution dist, float* out);

/* ---- models ------------------------------------------------------------------------------------- */

typedef struct pllm_model pllm_model;

typedef struct pllm_model_params {
  const char* tokenizer_path;   /* NULL: found beside the model */
  int32_t n_threads;            /* 0: all cores */
  uint64_t memory_budget_bytes; /* 0: no limit; otherwise loading refuses a model whose estimate exceeds it */
} pllm_model_params;

PLLM_API pllm_model_params pllm_model_default_params(void);

/* Loads a Hugging Face directory or a llama2.c checkpoint. On success *out owns the model; free it with
 * pllm_model_free. A model handle may be used by one thread at a time. */
PLLM_API pllm_status pllm_model_load(const char* path, const pllm_model_params* params, pllm_model** out);
PLLM_API void pllm_model_free(pllm_model* model);
/* Parameter count and the base model id (64 hex characters; caller frees with pllm_free_string). */
PLLM_API uint64_t pllm_model_n_params(const pllm_model* model);
PLLM_API pllm_status pllm_model_id(const pllm_model* model, char** out_hex);

typedef struct pllm_generate_params {
  int32_t max_new_tokens; /* default 64 */
  bool greedy;            /* default true */
  float temperature;      /* default 1.0 */
  int32_t top_k;          /* 0: off */
  float top_p;            /* 1.0: off */
  uint64_t seed;
} pllm_generate_params;

PLLM_API pllm_generate_params pllm_generate_default_params(void);

/* Called with each new piece of text; return false to stop. */
typedef bool (*pllm_token_callback)(const char* piece, void* user);

/* Generates a continuation of prompt. *out_text (caller frees) receives the generated text only. */
PLLM_API pllm_status pllm_generate(pllm_model* model, const char* prompt, const pllm_generate_params* params,
                                   pllm_token_callback on_token, void* user, char** out_text);

/* ---- fine-tuning ------------------------------------------------------------------------------- */

/* Progress in [0, 1]; return false to stop after the current step (the run stays resumable). */
typedef bool (*pllm_progress_callback)(float progress, void* user);

typedef struct pllm_finetune_params {
  const char* model_path;    /* base model (path) */
  const char* data_path;     /* the private training data (.txt, .jsonl, .tsv) */
  const char* eval_data_path;/* optional held-out data */
  const char* run_dir;       /* where the run lives (log, snapshots); resumed if it exists and resume is set */
  bool resume;
  const char* task;          /* "lm" (default) or "classify" */
  const char* labels;        /* classify: "0:terrible,1:great" */
  const char* prompt_template; /* classify: default "{text} It was" */
  const char* trainable;     /* tensor-name patterns, default "*" */
  int32_t steps;             /* default 100 */
  int32_t batch_size;        /* default 16 */
  float lr;                  /* default 1e-4 */
  float eps;                 /* default 1e-3 */
  uint64_t seed;
  int32_t n_threads;
} pllm_finetune_params;

PLLM_API pllm_finetune_params pllm_finetune_default_params(void);

/* Runs (or resumes) a fine-tuning run to completion or until progress returns false
 * (PLLM_ERR_CANCELLED). *out_eval_loss (may be NULL) receives the final held-out loss, or NaN. */
PLLM_API pllm_status pllm_finetune(const pllm_finetune_params* params, pllm_progress_callback progress, void* user,
                                   double* out_eval_loss);

/* Applies an update log (JSON, binary, or a run directory) to a float32 buffer holding the tensor
 * tensor_name: theta <- theta - coeff * z for each entry, in order. The replay every device and the
 * server share. Thread-safe. */
PLLM_API pllm_status pllm_replay_tensor(const char* log_path, const char* tensor_name, pllm_distribution dist,
                                        float* data, uint64_t count);

#ifdef __cplusplus
}
#endif

#endif /* POCKETLLM_H */
