// Training objectives over a tokenized dataset: causal-LM fine-tuning (loss on all tokens, or on the
// completion only) and prompt-based classification (cross-entropy over label words at the answer
// position, MeZO-style).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pocketllm/client/dataset.h"
#include "pocketllm/client/model.h"
#include "pocketllm/client/tokenizer.h"

namespace pocketllm {

struct TaskOptions {
  std::string kind = "lm";  // "lm" or "classify"
  int max_length = 256;     // tokens per example, BOS included
  bool truncate = true;     // over-long examples: truncate (true) or skip (false)
  bool pack = false;        // lm: concatenate the examples and cut the stream into max_length windows
  // classify: the prompt ({text} is replaced by the example) and the word each label maps to.
  std::string prompt_template = "{text} It was";
  std::vector<std::pair<std::string, std::string>> label_words;  // (label, word), in class order
};

// Built-in classification setups for the shared datasets: "sst2" (MeZO's template, bad / good) and
// "agnews" (the four AG News classes). Returns false for an unknown name.
bool classification_preset(const std::string& name, std::string* prompt_template, std::string* labels);

// Expands trainable-set shorthands into name patterns: "all", "attention", "mlp", "norms",
// "last:K" (the last K layers, given the layer count), each item of a comma-separated list on its own
// ("norms,model.embed_tokens.weight"); other items are returned unchanged.
std::string expand_trainable(const std::string& spec, int num_layers);

// "0: terrible, 1: great" -> {("0", " terrible"), ("1", " great")}: the word gets a leading space.
Result<std::vector<std::pair<std::string, std::string>>> parse_label_words(const std::string& spec);

struct EvalResult {
  double loss = 0;        // mean loss per scored position
  size_t count = 0;       // examples
  double accuracy = -1;   // classification only
  // Classification: confusion[true label][predicted label], labels in label-word order.
  std::vector<std::vector<size_t>> confusion;
  double perplexity() const;
};

// A classification task's answer for one example: the probability of each label (softmax over the
// label words' logits at the answer position, in label-word order) and the most probable label.
struct Prediction {
  size_t source = 0;    // the example's index in the dataset the task was made from
  int label = -1;       // the example's own label (index into the label words)
  int predicted = -1;
  std::vector<double> probabilities;
};

class Task {
 public:
  virtual ~Task() = default;
  virtual const char* kind() const = 0;
  virtual size_t size() const = 0;
  // Mean loss over the given examples with the model's weights perturbed by p.
  virtual Result<LossResult> loss(ThreadPool* pool, LanguageModel& model, const std::vector<size_t>& examples,
                                  const Perturbation& p) = 0;
  // The same in two parts, for the two passes of a ZO step: prepare() lays out the examples' batch once,
  // then prepared_loss() may run any number of times, also on two threads at once (it only reads the
  // task; each thread with its own model, e.g. a model and its twin).
  virtual void prepare(const std::vector<size_t>& examples) = 0;
  virtual Result<LossResult> prepared_loss(ThreadPool* pool, LanguageModel& model, const Perturbation& p) const = 0;
  // Unperturbed mean loss (and accuracy) over the given examples, or over every example.
  virtual Result<EvalResult> evaluate_examples(ThreadPool* pool, LanguageModel& model, const std::vector<size_t>& examples,
                                               int batch_size) = 0;
  Result<EvalResult> evaluate(ThreadPool* pool, LanguageModel& model, int batch_size);
  // Classification: every example's prediction with the unperturbed weights, in example order (an
  // example the task left out — over-long — has none). Other tasks: an error.
  virtual Status predict(ThreadPool* pool, LanguageModel& model, int batch_size, std::vector<Prediction>* out);
  // Labels of examples (classification; empty for LM), for k-shot sampling.
  virtual std::vector<int> labels() const { return {}; }
  // The token ids example i feeds the model, BOS included (for --trainable-rows sample).
  virtual const std::vector<int32_t>& example_tokens(size_t i) const = 0;
  // The token ids the task reads its answer from: the label words (classification), or none.
  virtual std::vector<int32_t> answer_tokens() const { return {}; }

  int truncated = 0;  // examples cut to max_length
  int skipped = 0;    // examples dropped (over-long with truncate = false)
};

Result<std::unique_ptr<Task>> make_task(const Dataset& data, const Tokenizer& tokenizer, const LanguageModel& model,
                                        const TaskOptions& options);

// A class-balanced sample of k examples per label (seeded); all examples when k <= 0 or no labels.
std::vector<size_t> k_shot_indices(const Task& task, int k, uint64_t seed);

// Carves a validation split out of a training sample (docs/training.md, "Validation and the best step"):
// `n` examples of every label (classification) or `n` in all (LM) move from `train` to `validation`,
// drawn by a Philox shuffle of the sample keyed by `seed` (stream "valid"); both come back sorted. Errors
// when a label (or the LM sample) would keep fewer than one training example.
Status carve_validation(const Task& task, int n, uint64_t seed, std::vector<size_t>* train, std::vector<size_t>* validation);

}  // namespace pocketllm
