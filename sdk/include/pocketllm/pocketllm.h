/*
 * pocketllm.h — the C ABI of pocketllm: on-device zeroth-order fine-tuning of language models.
 *
 * This header is the whole contract for apps (JNI, Swift, C). It is model-centric: one pllm_model is
 * loaded once and used by generation, evaluation, training sessions and the federated device.
 *
 * Conventions
 *  - Opaque handles. Parameter structs come from pllm_*_default_params(), which set struct_size; a
 *    caller changes only the fields it needs. A struct_size of 0 or larger than this library knows is
 *    refused (PLLM_ERR_INVALID_ARGUMENT / PLLM_ERR_UNSUPPORTED); a smaller one (an app built against an
 *    older header) gets defaults for the fields it does not have.
 *  - Every call that can fail returns a pllm_status; pllm_last_error() gives the message of the last
 *    failure on the calling thread. No C++ exception crosses this boundary. On failure, out-parameters
 *    are left NULL/unchanged and nothing needs freeing.
 *  - Strings are UTF-8 and NUL-terminated; text that is not valid UTF-8 is refused. Strings returned to
 *    the caller are freed with pllm_free_string.
 *  - Blocking: every call runs on the calling thread and returns when done. Calls marked LONG can take
 *    seconds to minutes: never call them on an app's UI thread. They accept a pllm_control (NULL: none):
 *    a progress callback (called on the calling thread) and a pllm_cancel that any thread may trigger;
 *    a cancelled call returns PLLM_ERR_CANCELLED promptly and leaves every handle usable.
 *  - Threads: a handle (model, session, device, examples) is used by one thread at a time; different
 *    handles are independent. Functions without a handle are thread-safe.
 */
#ifndef POCKETLLM_H
#define POCKETLLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pocketllm/pocketllm_version.h"

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
  PLLM_ERR_MEMORY_BUDGET = 10,
  PLLM_ERR_BUSY = 11, /* the run directory or model is in use by another handle or process */
  PLLM_STATUS_FORCE_INT32 = 0x7fffffff /* not a status: makes any int a valid value to pass (and name "unknown") */
} pllm_status;

typedef enum pllm_distribution {
  PLLM_DIST_RADEMACHER = 0,
  PLLM_DIST_GAUSSIAN = 1,
  PLLM_DIST_FORCE_INT32 = 0x7fffffff /* not a distribution: makes any int a valid value to pass (and refuse) */
} pllm_distribution;

/* ---- the library ------------------------------------------------------------------------------- */

/* The library's version, "0.2.0"; compare with PLLM_VERSION_STRING of the headers. Thread-safe. */
PLLM_API const char* pllm_version(void);
/* major * 10000 + minor * 100 + patch of the library (PLLM_VERSION_NUMBER for the headers). */
PLLM_API uint32_t pllm_version_number(void);
/* Version of the perturbation spec (docs/perturbation.md) this library implements. Thread-safe. */
PLLM_API int32_t pllm_perturbation_spec_version(void);
/* A constant name for a status ("ok", "busy", …); "unknown status" for other values. Thread-safe. */
PLLM_API const char* pllm_status_string(pllm_status status);
/* Message of the last failed call on this thread ("" when none). Valid until the next call on this
 * thread. Thread-safe (per-thread). */
PLLM_API const char* pllm_last_error(void);
/* Frees a string returned by this library. NULL is allowed. */
PLLM_API void pllm_free_string(char* s);
/* What this build is and what it found at run time, as JSON: version, build profile ("mobile" or
 * "desktop"), instruction set, CPU cores and features (x86-64: cpu_avx2, cpu_avx512f; arm64:
 * cpu_dotprod, cpu_i8mm), the kernel paths chosen ("kernels"), whether the built-in HTTPS transport is
 * present. Caller frees. Thread-safe. */
PLLM_API pllm_status pllm_system_info(char** out_json);

typedef enum pllm_log_level { PLLM_LOG_DEBUG = 0, PLLM_LOG_INFO = 1, PLLM_LOG_WARN = 2, PLLM_LOG_ERROR = 3 } pllm_log_level;
/* Receives the library's log lines at or above the level set (default: nothing is logged). Called on
 * the thread doing the work, possibly several threads at once; must not call back into the library. */
typedef void (*pllm_log_callback)(pllm_log_level level, const char* message, void* user);
/* Installs (NULL: removes) the log hook. Thread-safe; takes effect for lines logged afterwards, and
 * returns once no other thread is inside the previous hook. Called from inside the hook it does nothing. */
PLLM_API void pllm_set_log_callback(pllm_log_callback callback, void* user, pllm_log_level min_level);

/* ---- control of long calls ----------------------------------------------------------------------- */

/* A cancellation flag: pllm_cancel_request may be called from any thread (it only sets an atomic
 * flag) while a LONG call that was given it runs; that call then returns PLLM_ERR_CANCELLED. Reset it
 * to reuse it. Free it only after every call using it has returned. */
typedef struct pllm_cancel pllm_cancel;
PLLM_API pllm_cancel* pllm_cancel_new(void);
PLLM_API void pllm_cancel_request(pllm_cancel* cancel);
PLLM_API void pllm_cancel_reset(pllm_cancel* cancel);
PLLM_API bool pllm_cancel_is_requested(const pllm_cancel* cancel);
PLLM_API void pllm_cancel_free(pllm_cancel* cancel);

/* Progress in [0, 1] of the call it was given to; return false to stop (the call returns
 * PLLM_ERR_CANCELLED; a training session stays resumable). Called on the calling thread. */
typedef bool (*pllm_progress_callback)(float progress, void* user);

typedef struct pllm_control {
  uint32_t struct_size;
  pllm_cancel* cancel;             /* NULL: not cancellable from another thread */
  pllm_progress_callback progress; /* NULL: no progress reports */
  void* user;                      /* passed to progress */
} pllm_control;
PLLM_API pllm_control pllm_control_default(void);

/* Writes z(seed, tensor)[start .. start+count) to out (count floats, caller-owned): the golden generator
 * ports check themselves against. Thread-safe. */
PLLM_API pllm_status pllm_generate_z(uint64_t seed, const char* tensor_name, uint64_t start, uint64_t count,
                                     pllm_distribution dist, float* out);
/* Applies an update log (JSON, binary, or a run directory) to a float32 buffer holding the tensor
 * tensor_name: theta <- theta - coeff * z for each entry, in order. The replay every device and the
 * server share. Thread-safe. */
PLLM_API pllm_status pllm_replay_tensor(const char* log_path, const char* tensor_name, pllm_distribution dist,
                                        float* data, uint64_t count);

/* ---- models ------------------------------------------------------------------------------------- */

typedef struct pllm_model pllm_model;

typedef struct pllm_model_params {
  uint32_t struct_size;
  const char* tokenizer_path;   /* NULL: found beside the model */
  int32_t n_threads;            /* 0: all cores; otherwise 1..256 */
  uint64_t memory_budget_bytes; /* 0: no limit; otherwise pllm_model_load refuses (before mapping any
                                   weight) a model whose pllm_estimate_memory exceeds it */
  int32_t batch_size;           /* the workload the estimate is for: sequences per forward (default 1) */
  int32_t max_length;           /* and tokens per sequence (default 256) */
} pllm_model_params;

PLLM_API pllm_model_params pllm_model_default_params(void);

typedef struct pllm_memory_estimate {
  uint32_t struct_size;
  uint64_t weights_bytes;     /* the weights as stored (mapped, not copied, when float32) */
  uint64_t activation_bytes;  /* one forward pass of batch_size x max_length tokens */
  uint64_t total_bytes;
} pllm_memory_estimate;

/* Estimates the memory of using the model at path with params' workload from its configuration and
 * file sizes only: nothing is mapped or read beyond headers. Thread-safe. */
PLLM_API pllm_status pllm_estimate_memory(const char* path, const pllm_model_params* params, pllm_memory_estimate* out);

/* LONG. Loads a Hugging Face directory or a llama2.c checkpoint and computes its model id (which reads
 * every weight once). On success *out owns the model; free it with pllm_model_free. */
PLLM_API pllm_status pllm_model_load(const char* path, const pllm_model_params* params, const pllm_control* control,
                                     pllm_model** out);
/* Frees the model. Free a session or device using it first; if one still holds it, the model stays
 * alive for it and is freed with it (a PLLM_LOG_WARN line says so) — the handle must not be used again. */
PLLM_API void pllm_model_free(pllm_model* model);
/* Parameter count. */
PLLM_API uint64_t pllm_model_n_params(const pllm_model* model);
/* The base model id (64 hex characters; caller frees): the identity federation and runs check. */
PLLM_API pllm_status pllm_model_id(const pllm_model* model, char** out_hex);
/* Whether the model's weights have been trained since it was loaded (by a session or a device). */
PLLM_API bool pllm_model_is_trained(const pllm_model* model);
/* What the model is, as one JSON object (caller frees; appended after 0.2.0): "format", "name",
 * "architecture", "hf_architecture", "model_type", "layers", "hidden_size", "intermediate_size", "heads",
 * "kv_heads", "head_dim", "vocab_size", "context_length" (positions: prompt + generated tokens at most),
 * "parameters", "tensors", "dtypes" ({dtype: elements}), "weights_bytes", "tokenizer" (bool),
 * "eos_token_id", "adapter" (null or {"rank", "alpha", "targets", "init_seed"}), "id" (as pllm_model_id),
 * "trained" (as pllm_model_is_trained). Fields may be added; none is removed within 0.x. */
PLLM_API pllm_status pllm_model_info(const pllm_model* model, char** out_json);
/* The model's context in positions (prompt + generated tokens at most); 0 for NULL. Fixed at load:
 * safe from any thread while the model lives. */
PLLM_API int32_t pllm_model_context_length(const pllm_model* model);
/* Tokens text takes as a prompt, as pllm_generate encodes it (the beginning-of-text token included):
 * with pllm_model_context_length, what an app needs to fit a prompt and its answer in the context.
 * Invalid UTF-8: PLLM_ERR_INVALID_ARGUMENT; no tokenizer: PLLM_ERR_NOT_FOUND. */
PLLM_API pllm_status pllm_count_tokens(const pllm_model* model, const char* text, int32_t* out_count);

typedef struct pllm_generate_params {
  uint32_t struct_size;
  int32_t max_new_tokens; /* default 64; 1..65536 */
  bool greedy;            /* default true */
  float temperature;      /* default 1.0; > 0 */
  int32_t top_k;          /* 0: off */
  float top_p;            /* 1.0: off; (0, 1] */
  uint64_t seed;
  /* Appended after 0.2.0 (an older struct_size leaves it at 1). The logit of every token already in the text,
   * prompt included, is divided by this (multiplied, when negative) before each choice: 1 off, 1.1-1.3
   * curbs loops; (0, 100]. */
  float repetition_penalty;
} pllm_generate_params;

PLLM_API pllm_generate_params pllm_generate_default_params(void);

/* Called on the calling thread with each new piece of text; return false to stop. A piece is whole
 * characters of valid UTF-8 (a character spread over several tokens arrives once its last byte is
 * generated; bytes the model emits that form no character arrive as U+FFFD), never empty, and the pieces
 * concatenated are the text. */
typedef bool (*pllm_token_callback)(const char* piece, void* user);

/* LONG. Generates a continuation of prompt with the model's current weights (trained ones included):
 * up to max_new_tokens tokens, fewer at the end-of-text token or where the model's context is full (a
 * prompt that fills the context by itself: PLLM_ERR_OUT_OF_RANGE). On PLLM_OK *out_text (may be NULL;
 * caller frees) receives the generated text. Stopped by on_token or cancelled: PLLM_ERR_CANCELLED and
 * *out_text is NULL. */
PLLM_API pllm_status pllm_generate(pllm_model* model, const char* prompt, const pllm_generate_params* params,
                                   pllm_token_callback on_token, void* user, const pllm_control* control, char** out_text);

typedef struct pllm_evaluate_params {
  uint32_t struct_size;
  const char* task;            /* "lm" (default) or "classify" */
  const char* labels;          /* classify: "0:terrible,1:great" */
  const char* prompt_template; /* classify: default "{text} It was" */
  int32_t max_length;          /* tokens per example; default 256 */
  int32_t batch_size;          /* default 32 */
  /* Appended after 0.2.0 (an older struct_size leaves it NULL): "sst2" or "agnews" sets task "classify"
   * and the preset's template and labels, as a session's preset does; labels / prompt_template given
   * beside it win. */
  const char* preset;
} pllm_evaluate_params;

PLLM_API pllm_evaluate_params pllm_evaluate_default_params(void);

/* LONG. Mean loss of the model's current weights on data_path (.txt, .jsonl, .tsv), and accuracy for
 * classification (else -1). The control's progress callback hears the share of examples scored after
 * each batch (returning false stops it: PLLM_ERR_CANCELLED). */
PLLM_API pllm_status pllm_model_evaluate(pllm_model* model, const char* data_path, const pllm_evaluate_params* params,
                                         const pllm_control* control, double* out_loss, double* out_accuracy);

/* LONG (a forward pass). The label the model's current weights give one text (classification with label words, scored as
 * pllm_model_evaluate scores it; a session trained with the same template and labels is what it
 * reads): params->labels or params->preset are required (task is taken as "classify"). *out_label
 * receives the index of the most probable label in the labels' order; probabilities (may be NULL)
 * receives each label's probability (softmax over the label words at the answer position), the first
 * `capacity` of them; *out_n_labels (may be NULL) the number of labels. A text whose answer position
 * falls beyond max_length (a masked LM's <mask>): PLLM_ERR_OUT_OF_RANGE. */
PLLM_API pllm_status pllm_classify(pllm_model* model, const char* text, const pllm_evaluate_params* params, const pllm_control* control,
                                   int32_t* out_label, float* probabilities, size_t capacity, size_t* out_n_labels);

/* ---- training sessions --------------------------------------------------------------------------
 * A session fine-tunes a model in place: the trained tensors are float32 copies beside the frozen
 * (mapped) base, so after pllm_session_train the model generates and evaluates with what it learnt —
 * no export and reload. Every step is logged to the run directory first, so a killed app resumes to
 * the exact same weights: open a session with the same run_dir on a freshly loaded model of the same
 * base. A run directory is locked while a session has it open (a second opener gets PLLM_ERR_BUSY).
 * Paths in it are stored relative to it: a run moved together with its model and data resumes. */

typedef struct pllm_session pllm_session;

typedef struct pllm_session_params {
  uint32_t struct_size;
  const char* run_dir;         /* required; resumed when it holds a run, created otherwise */
  const char* data_path;       /* the private training data (.txt, .jsonl, .tsv); on resume it may have moved */
  const char* eval_data_path;  /* optional held-out data, evaluated at the start and the end */
  const char* task;            /* "lm" (default; "classify" with a preset) or "classify" */
  const char* labels;          /* classify: "0:terrible,1:great" (NULL: the preset's) */
  const char* prompt_template; /* classify: NULL: the preset's, else "{text} It was" */
  const char* trainable;       /* tensor-name patterns or a shorthand (all, norms, ...); NULL: the recipe's (lm "*", classify norms) */
  int32_t steps;               /* default 100; 1..10^8 */
  int32_t batch_size;          /* 1..4096; 0 (default): the recipe's (lm 16, classify 256, or 2 with Adam) */
  float lr;                    /* > 0 and finite; 0 (default): the recipe's (lm 1e-4, classify 35.2 / d, or 3e-3
                                  with Adam). Both left at 0 on a classify set of at most 1 024 trainable
                                  elements: Adam over 1.25 (d + 1) directions a step (docs/training.md) */
  float eps;                   /* default 1e-3; > 0 */
  uint64_t seed;
  int32_t max_length;          /* tokens per example; default 256; 2..65536 */
  uint64_t memory_budget_bytes; /* 0: no limit; otherwise a session whose estimate exceeds it is refused
                                   (PLLM_ERR_MEMORY_BUDGET, the estimate in the message). With two threads
                                   or more a step runs its two forward passes at once when the budget also
                                   holds a second pass's activations, else one after the other (the same
                                   result; docs/training.md "The two passes at once"); without a budget the
                                   engine decides by the share of memory that costs */
  /* Appended after 0.2.0 (older callers set a smaller struct_size and get the defaults): LoRA adapters (docs/training.md section 4). lora_rank 0 (default): none; 1..1024: adapters
   * of that rank on lora_targets (default "q_proj,v_proj"; "all-linear"), output scale lora_alpha / rank
   * (0: alpha = rank), A seeded by lora_init_seed. The base stays frozen; `trainable` then selects what is
   * trained beside the adapters ("none" for the adapters alone, the default when lora_rank > 0 and
   * trainable is left at "*"). The model keeps the adapters after the session. */
  int32_t lora_rank;
  float lora_alpha;
  const char* lora_targets;
  uint64_t lora_init_seed;
  /* Also appended after 0.2.0: early stopping (docs/training.md, "Validation and the best step").
   * validation_examples -1 (default): the recipe's; 0: none; N > 0: N examples per label (lm: N in all) are held out of
   * data_path and validated every validate_every steps (0: steps / 20); after `patience` validations
   * without a better loss the run ends (0: never early). When the run ends the model holds the weights
   * of the step with the best validation loss (the run directory's best.safetensors). */
  int32_t validation_examples;
  int32_t validate_every;
  int32_t patience;
  /* Also appended after 0.2.0: the default recipes (docs/training.md, "Default recipes") and the k-shot draw.
   * A field left at its "recipe" value takes the recipe of the task and preset — the settings measured
   * best for them, the same as `pocketllm finetune` with no tuning options: batch_size 0, lr 0 (classify:
   * Adam at lr 3e-3 on pairs for up to 1 024 trainable elements, else 35.2 / the number of trainable
   * parameters on batches of 256, fixed at the start), trainable NULL (classify: the norms), schedule NULL,
   * balanced -1, min_words -1 and validation_examples -1. pllm_session_default_params() sets them so;
   * older callers that set batch_size, lr or trainable keep what they set.
   * preset: NULL, "sst2" or "agnews": the task defaults to "classify", prompt_template and labels left
   * NULL take the preset's, and its recipe the fields above.
   * schedule: "constant", "linear" or "cosine" (of the lr over the run). balanced (classify): 1 batches
   * take the labels in turn, 0 draw at random. min_words: training examples of fewer whitespace-separated
   * words are dropped before the k-shot draw (0: none). k_shot (classify): examples per label drawn from
   * data_path with data_seed (0: all of them). */
  const char* preset;
  const char* schedule;
  int32_t balanced;
  int32_t min_words;
  int32_t k_shot;
  uint64_t data_seed;
} pllm_session_params;

PLLM_API pllm_session_params pllm_session_default_params(void);

/* LONG (loads and tokenises the data; on resume replays the log). The model must not have been
 * trained yet (pllm_model_is_trained) and not be in use by another session or a device (BUSY). What
 * the data lost on the way — examples cut at max_length or at the model's context, dropped by min_words
 * — goes to the log hook as PLLM_LOG_WARN lines; the sample's size as one PLLM_LOG_INFO line. */
PLLM_API pllm_status pllm_session_open(pllm_model* model, const pllm_session_params* params, const pllm_control* control,
                                       pllm_session** out);
/* LONG. Trains up to max_steps more steps (0: to the end of the run). *out_steps_done (may be NULL)
 * receives the run's total steps so far; *out_eval_loss (may be NULL) the last held-out loss or NaN.
 * Cancelled or stopped by progress: PLLM_ERR_CANCELLED after the current step; call again to go on. */
PLLM_API pllm_status pllm_session_train(pllm_session* session, int32_t max_steps, const pllm_control* control,
                                        int32_t* out_steps_done, double* out_eval_loss);
/* Steps logged so far and the run's step count. */
PLLM_API int32_t pllm_session_steps_done(const pllm_session* session);
PLLM_API int32_t pllm_session_total_steps(const pllm_session* session);
/* Frees the session and unlocks the run directory. The model keeps the trained weights. */
PLLM_API void pllm_session_free(pllm_session* session);

/* Writes a run's fine-tuned model as a Hugging Face directory (safetensors, config, tokenizer). LONG. */
PLLM_API pllm_status pllm_export(const char* run_dir, const char* out_dir);
/* The same in a chosen format (appended after 0.2.0). format: NULL or "hf" (as pllm_export), "gguf" (one
 * file at `out`; type: NULL or "f32", "f16", "bf16", "q8_0", "q4_0" for its 2-D weights), or "peft" (the
 * run's LoRA adapters alone as a Hugging Face PEFT directory: adapter_config.json and
 * adapter_model.safetensors, kilobytes, for runs that trained adapters only). LONG. */
PLLM_API pllm_status pllm_export_as(const char* run_dir, const char* out, const char* format, const char* type);

/* ---- private examples ---------------------------------------------------------------------------
 * An app collects the user's examples in memory and writes them (JSONL, created with mode 0600,
 * atomically) to a file in its private storage; that path is then the data_path of a session, an
 * evaluation or a device. */

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

/* ---- federation ----------------------------------------------------------------------------------
 * A device of a federated task (docs/protocol.md): it trains its model on its own data along the
 * server's seeds and uploads only scalars. The device speaks the protocol over a transport:
 *  - an app's own HTTP stack (OkHttp, URLSession, java.net.http — the platform trust store): set
 *    pllm_device_params.transport; the library calls it on the calling thread for each request;
 *  - the built-in HTTPS client (desktop build only; PLLM_ERR_UNSUPPORTED in the mobile build): leave
 *    transport NULL and set server_url (ca_file, pinned_sha256, timeout_ms).
 * Requests are retried with backoff; submissions are idempotent, so a retry after a lost reply is
 * safe. The device takes its model over while it is open (other uses get PLLM_ERR_BUSY); after
 * pllm_device_free the model keeps the device's weights. */

/* A reply being filled in by a transport callback. */
typedef struct pllm_http_reply pllm_http_reply;
/* Sets the HTTP status and body (copied) of a reply. For transport callbacks only. */
PLLM_API pllm_status pllm_http_reply_set(pllm_http_reply* reply, int32_t http_status, const char* body, size_t body_len);

/* Performs one HTTPS request to the server: method ("GET", "POST"), path with query ("/v1/tasks/t"),
 * a JSON body (body_len bytes; may be 0), and a bearer credential ("" when none: send no Authorization
 * header; otherwise "Authorization: Bearer <bearer>"; Content-Type: application/json on POST). Return
 * PLLM_OK once the server replied (with any HTTP status, set through pllm_http_reply_set);
 * PLLM_ERR_IO when the request failed on the way (retried); PLLM_ERR_MISMATCH for a certificate
 * problem (not retried). */
typedef pllm_status (*pllm_transport_fn)(const char* method, const char* path, const char* body, size_t body_len,
                                         const char* bearer, pllm_http_reply* reply, void* user);

typedef struct pllm_device pllm_device;

typedef struct pllm_device_params {
  uint32_t struct_size;
  pllm_transport_fn transport;  /* the app's HTTP stack; NULL: the built-in HTTPS client */
  void* transport_user;
  const char* server_url;       /* https://host:port — identifies the server (credential file) */
  const char* ca_file;          /* built-in client: NULL = the system CA store */
  const char* pinned_sha256;    /* built-in client: NULL, or pins trusted instead of CAs, comma-separated:
                                 * "sha256/BASE64" of the server's public key (SPKI; survives a renewal
                                 * that keeps the key; add a backup key's pin) or the certificate's
                                 * SHA-256 (64 hex of DER; changes at every renewal) — net/cert_pins.h */
  int32_t timeout_ms;           /* built-in client: per request; default 30000 */
  const char* credentials_path; /* the file that keeps this device's credential (created with mode 0600) */
  const char* enrolment_token;  /* used once, when credentials_path holds no credential yet */
  const char* task_id;
  const char* data_path;        /* this device's private examples (.txt, .jsonl, .tsv) */
  const char* state_dir;        /* shared weights, version and the personal log (created, mode 0700) */
  uint64_t memory_budget_bytes; /* 0: no limit; otherwise refused when the task's rounds would exceed it;
                                   the two passes of a step run at once only if it holds both (as above) */
} pllm_device_params;

PLLM_API pllm_device_params pllm_device_default_params(void);

/* LONG. Connects (enrolling when needed), checks the model is the task's base model, loads the data and
 * the device state. The model must not have been trained (pllm_model_is_trained) nor be in use. */
PLLM_API pllm_status pllm_device_open(pllm_model* model, const pllm_device_params* params, const pllm_control* control,
                                      pllm_device** out);
/* Frees the device; its model becomes usable again, with the device's weights. */
PLLM_API void pllm_device_free(pllm_device* device);

/* LONG. Brings the shared weights to the server's latest version (log replay, or a snapshot when far
 * behind); the personal adaptation is re-applied on top. *out_version (may be NULL) gets the version. */
PLLM_API pllm_status pllm_device_sync(pllm_device* device, const pllm_control* control, uint64_t* out_version);
/* LONG. Takes part in the task's current round when it is open and this device has not yet submitted
 * to it: tau local steps, then the scalars are submitted. *out_submitted tells whether it did;
 * *out_round (may be NULL) receives the round id. A task with secure aggregation (docs/secagg.md):
 * instead of its scalars the device sends its keys, sealed shares, masked input and unmasking shares,
 * each when the round reaches that phase — the call blocks (polling the server every 0.5 s) until the
 * device has done its part or the round went on without it (PLLM_ERR_MISMATCH with the reason). The
 * mobile build too: it carries the cryptography built in. */
PLLM_API pllm_status pllm_device_run_round(pllm_device* device, const pllm_control* control, bool* out_submitted,
                                           uint64_t* out_round);
/* LONG. Local personalisation: steps of ZO fine-tuning on the device's data with its own seeds, kept in
 * the state directory and re-applied after every sync. Never uploaded. */
PLLM_API pllm_status pllm_device_personalize(pllm_device* device, int32_t steps, float lr, uint64_t seed,
                                             const pllm_control* control);
/* LONG. Evaluates the device's current weights (shared + personal) on data_path; progress by batch, as pllm_model_evaluate. */
PLLM_API pllm_status pllm_device_eval(pllm_device* device, const char* data_path, const pllm_control* control,
                                      double* out_loss, double* out_accuracy);
/* LONG (a forward pass). The label the device's current weights give one text, as pllm_classify, with the
 * template and label words of its task (a classification task; else PLLM_ERR_INVALID_ARGUMENT). */
PLLM_API pllm_status pllm_device_classify(pllm_device* device, const char* text, const pllm_control* control, int32_t* out_label,
                                          float* probabilities, size_t capacity, size_t* out_n_labels);
/* LONG. Generates with the device's current weights, as pllm_generate. */
PLLM_API pllm_status pllm_device_generate(pllm_device* device, const char* prompt, const pllm_generate_params* params,
                                          pllm_token_callback on_token, void* user, const pllm_control* control,
                                          char** out_text);
/* Bytes this device's requests and replies carried (bodies; TLS records included for the built-in client). */
PLLM_API uint64_t pllm_device_bytes_sent(const pllm_device* device);
PLLM_API uint64_t pllm_device_bytes_received(const pllm_device* device);

#ifdef __cplusplus
}
#endif

#endif /* POCKETLLM_H */
