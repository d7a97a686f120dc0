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

typedef enum pllm_distribution {
  PLLM_DIST_RADEMACHER = 0,
  PLLM_DIST_GAUSSIAN = 1,
  PLLM_DIST_FORCE_INT32 = 0x7fffffff /* not a distribution: makes any int a valid value to pass (and refuse) */
} pllm_distribution;

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
  int32_t max_length;        /* tokens per example; default 256 */
  uint64_t memory_budget_bytes; /* 0: no limit; otherwise a run whose estimate exceeds it is refused
                                   (PLLM_ERR_MEMORY_BUDGET, the estimate in the message) */
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

/* ---- private examples ---------------------------------------------------------------------------
 * An app collects the user's examples in memory and writes them (JSONL, mode 0600, atomically) to a
 * file in its private storage; that path is then the data_path of fine-tuning, evaluation or a device.
 * A pllm_examples handle may be used by one thread at a time. */

typedef struct pllm_examples pllm_examples;
PLLM_API pllm_examples* pllm_examples_new(void);
PLLM_API void pllm_examples_free(pllm_examples* examples);
/* Plain text (causal LM on all of it). */
PLLM_API pllm_status pllm_examples_add_text(pllm_examples* examples, const char* text);
/* A prompt and its completion (the loss is on the completion only). */
PLLM_API pllm_status pllm_examples_add_completion(pllm_examples* examples, const char* prompt, const char* completion);
/* A text with a class label (classification with label words). */
PLLM_API pllm_status pllm_examples_add_labelled(pllm_examples* examples, const char* text, const char* label);
PLLM_API uint64_t pllm_examples_count(const pllm_examples* examples);
PLLM_API pllm_status pllm_examples_write(const pllm_examples* examples, const char* path);

/* ---- evaluation and export ------------------------------------------------------------------------ */

/* Evaluates a model (model_path) or a fine-tuning run's current weights (run_dir; takes precedence)
 * on data_path: mean loss, and accuracy for classification (else -1). task/labels/prompt_template as
 * in pllm_finetune_params (NULL: the run's, or "lm"). Thread-safe. */
PLLM_API pllm_status pllm_evaluate(const char* model_path, const char* run_dir, const char* data_path, const char* task,
                                   const char* labels, const char* prompt_template, double* out_loss, double* out_accuracy);
/* Writes a run's fine-tuned model as a Hugging Face directory (safetensors, config, tokenizer). */
PLLM_API pllm_status pllm_export(const char* run_dir, const char* out_dir);

/* ---- federation --------------------------------------------------------------------------------
 * A device of a federated task (docs/protocol.md): it trains on its own data along the server's seeds
 * and uploads only scalars. Network calls time out (timeout_ms) and are retried with backoff;
 * submissions are idempotent, so a retry after a lost reply is safe. A pllm_device handle may be used
 * by one thread at a time; different handles are independent. */

typedef struct pllm_device pllm_device;

typedef struct pllm_device_params {
  const char* server_url;       /* https://host:port */
  const char* ca_file;          /* NULL: the system CA store */
  const char* pinned_sha256;    /* NULL, or the server certificate's SHA-256 (hex of its DER form) */
  const char* credentials_path; /* the file that keeps this device's credential (written with mode 0600) */
  const char* enrolment_token;  /* used once, when credentials_path holds no credential yet */
  const char* task_id;
  const char* model_path;       /* the task's base model */
  const char* data_path;        /* this device's private examples (.txt, .jsonl, .tsv) */
  const char* state_dir;        /* shared weights, version and the personal log (created) */
  int32_t timeout_ms;           /* per request; default 30000 */
  int32_t n_threads;            /* 0: all cores */
  uint64_t memory_budget_bytes; /* 0: no limit; otherwise refused when the task's rounds would exceed it */
} pllm_device_params;

PLLM_API pllm_device_params pllm_device_default_params(void);

/* Connects (enrolling when needed), checks the model is the task's base model, loads the data and the
 * device state. On success *out owns the device; free it with pllm_device_free. */
PLLM_API pllm_status pllm_device_open(const pllm_device_params* params, pllm_device** out);
PLLM_API void pllm_device_free(pllm_device* device);

/* Brings the shared weights to the server's latest version (log replay, or a snapshot when far behind);
 * the personal adaptation is re-applied on top. *out_version (may be NULL) receives the version. */
PLLM_API pllm_status pllm_device_sync(pllm_device* device, uint64_t* out_version);

/* Takes part in the task's current round when it is open and this device has not yet submitted to it:
 * tau local steps, then the scalars are submitted. *out_submitted tells whether it did; *out_round
 * (may be NULL) receives the round id. */
PLLM_API pllm_status pllm_device_run_round(pllm_device* device, bool* out_submitted, uint64_t* out_round);

/* Local personalisation: steps of ZO fine-tuning on the device's data with its own seeds, kept in the
 * state directory and re-applied after every sync. Never uploaded. */
PLLM_API pllm_status pllm_device_personalize(pllm_device* device, int32_t steps, float lr, uint64_t seed);

/* Evaluates the device's current weights (shared + personal) on data_path. */
PLLM_API pllm_status pllm_device_eval(pllm_device* device, const char* data_path, double* out_loss, double* out_accuracy);
PLLM_API pllm_status pllm_device_generate(pllm_device* device, const char* prompt, const pllm_generate_params* params,
                                          pllm_token_callback on_token, void* user, char** out_text);
/* Bytes this device has sent and received (TLS records included). */
PLLM_API uint64_t pllm_device_bytes_sent(const pllm_device* device);
PLLM_API uint64_t pllm_device_bytes_received(const pllm_device* device);

#ifdef __cplusplus
}
#endif

#endif /* POCKETLLM_H */
