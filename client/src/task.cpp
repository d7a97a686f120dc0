#include "pocketllm/client/task.h"

#include "pocketllm/common/cancel.h"
#include "pocketllm/common/work_progress.h"

#include <algorithm>
#include <cmath>

#include "pocketllm/common/seeds.h"
#include "pocketllm/common/split.h"

namespace pocketllm {
namespace {

struct Encoded {
  std::vector<int32_t> tokens;
  int loss_start = 1;  // LM: first position whose token is a target
  std::vector<uint8_t> target;  // LM, packed: target[t] = token t is scored (overrides loss_start)
  int label = -1;      // classify: class index
  size_t source = 0;   // classify: index of the dataset example it encodes
};

// Scores the first n examples of `task` in order, batch by batch, at the unperturbed weights, handing
// each batch's indices and loss to `fn`.
template <class Fn>
Status for_each_eval_batch(Task& task, const std::vector<size_t>& examples, ThreadPool* pool, LanguageModel& model, int batch_size,
                           Fn fn) {
  const size_t bs = static_cast<size_t>(std::max(1, batch_size));
  const size_t n = examples.size();
  for (size_t i = 0; i < n; i += bs) {
    throw_if_cancelled();
    std::vector<size_t> idx(examples.begin() + static_cast<long>(i), examples.begin() + static_cast<long>(std::min(n, i + bs)));
    auto l = task.loss(pool, model, idx, Perturbation{});
    if (!l) return l.status();
    fn(idx, l.value());
    report_work_progress(std::min(n, i + bs), n);
  }
  return Status::ok();
}

class LmTask : public Task {
 public:
  explicit LmTask(std::vector<Encoded> ex) : ex_(std::move(ex)) {}
  const char* kind() const override { return "lm"; }
  size_t size() const override { return ex_.size(); }
  const std::vector<int32_t>& example_tokens(size_t i) const override { return ex_.at(i).tokens; }

  Result<LossResult> loss(ThreadPool* pool, LanguageModel& model, const std::vector<size_t>& idx,
                          const Perturbation& p) override {
    build(idx);
    return model.token_loss(pool, batch_, targets_, p);
  }
  void prepare(const std::vector<size_t>& idx) override { build(idx); }
  Result<LossResult> prepared_loss(ThreadPool* pool, LanguageModel& model, const Perturbation& p) const override {
    return model.token_loss(pool, batch_, targets_, p);
  }

  Result<EvalResult> evaluate_examples(ThreadPool* pool, LanguageModel& model, const std::vector<size_t>& examples,
                                       int batch_size) override {
    EvalResult r;
    double sum = 0;
    size_t count = 0;
    POCKETLLM_RETURN_IF_ERROR(for_each_eval_batch(*this, examples, pool, model, batch_size, [&](const std::vector<size_t>&, const LossResult& l) {
      sum += l.sum;
      count += l.count;
    }));
    r.loss = count ? sum / static_cast<double>(count) : 0;
    r.count = examples.size();
    return r;
  }

 private:
  void build(const std::vector<size_t>& idx) {
    batch_.assign(idx.size(), [&](size_t i) -> const std::vector<int32_t>& { return ex_[idx[i]].tokens; }, 0);
    targets_.assign(batch_.tokens.size(), -1);
    for (size_t b = 0; b < idx.size(); ++b) {
      const Encoded& e = ex_[idx[b]];
      // Position t predicts token t+1; it is scored when token t+1 is part of the target text.
      for (int t = std::max(0, e.loss_start - 1); t + 1 < static_cast<int>(e.tokens.size()); ++t)
        if (e.target.empty() || e.target[static_cast<size_t>(t) + 1])
          targets_[b * static_cast<size_t>(batch_.seq_len) + t] = e.tokens[t + 1];
    }
  }
  std::vector<Encoded> ex_;
  TokenBatch batch_;
  std::vector<int32_t> targets_;
};

class ClassifyTask : public Task {
 public:
  ClassifyTask(std::vector<Encoded> ex, std::vector<int32_t> candidates) : ex_(std::move(ex)), cand_(std::move(candidates)) {}
  const char* kind() const override { return "classify"; }
  size_t size() const override { return ex_.size(); }
  std::vector<int> labels() const override {
    std::vector<int> l;
    for (const auto& e : ex_) l.push_back(e.label);
    return l;
  }
  const std::vector<int32_t>& example_tokens(size_t i) const override { return ex_.at(i).tokens; }
  std::vector<int32_t> answer_tokens() const override { return cand_; }

  Result<LossResult> loss(ThreadPool* pool, LanguageModel& model, const std::vector<size_t>& idx,
                          const Perturbation& p) override {
    build(idx);
    return model.choice_loss(pool, batch_, targets_, cand_, p, &logits_);
  }
  void prepare(const std::vector<size_t>& idx) override { build(idx); }
  Result<LossResult> prepared_loss(ThreadPool* pool, LanguageModel& model, const Perturbation& p) const override {
    return model.choice_loss(pool, batch_, targets_, cand_, p, nullptr);
  }

  Status predict(ThreadPool* pool, LanguageModel& model, int batch_size, std::vector<Prediction>* out) override {
    std::vector<size_t> all(ex_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    out->clear();
    const size_t k = cand_.size();
    return for_each_eval_batch(*this, all, pool, model, batch_size, [&](const std::vector<size_t>& idx, const LossResult&) {
      for (size_t b = 0; b < idx.size(); ++b) {
        const float* row = logits_.data() + b * k;
        Prediction p;
        p.source = ex_[idx[b]].source;
        p.label = ex_[idx[b]].label;
        const double top = *std::max_element(row, row + k);
        double z = 0;
        for (size_t c = 0; c < k; ++c) z += std::exp(static_cast<double>(row[c]) - top);
        for (size_t c = 0; c < k; ++c) p.probabilities.push_back(std::exp(static_cast<double>(row[c]) - top) / z);
        p.predicted = static_cast<int>(std::max_element(row, row + k) - row);  // the first of ties, as accuracy counts
        out->push_back(std::move(p));
      }
    });
  }

  Result<EvalResult> evaluate_examples(ThreadPool* pool, LanguageModel& model, const std::vector<size_t>& examples,
                                       int batch_size) override {
    EvalResult r;
    if (examples.empty()) return r;
    double sum = 0;
    size_t correct = 0;
    const size_t k = cand_.size();
    r.confusion.assign(k, std::vector<size_t>(k, 0));
    POCKETLLM_RETURN_IF_ERROR(for_each_eval_batch(*this, examples, pool, model, batch_size, [&](const std::vector<size_t>& idx, const LossResult& l) {
      sum += l.sum;
      for (size_t b = 0; b < idx.size(); ++b) {
        const float* row = logits_.data() + b * k;
        const int pred = static_cast<int>(std::max_element(row, row + k) - row);
        correct += pred == ex_[idx[b]].label;
        ++r.confusion[static_cast<size_t>(ex_[idx[b]].label)][static_cast<size_t>(pred)];
      }
    }));
    r.count = examples.size();
    r.loss = sum / static_cast<double>(r.count);
    r.accuracy = static_cast<double>(correct) / static_cast<double>(r.count);
    return r;
  }

 private:
  void build(const std::vector<size_t>& idx) {
    targets_.clear();
    for (size_t b = 0; b < idx.size(); ++b) {
      const Encoded& e = ex_[idx[b]];
      targets_.push_back({static_cast<int>(b), e.loss_start, e.label});
    }
    batch_.assign(idx.size(), [&](size_t i) -> const std::vector<int32_t>& { return ex_[idx[i]].tokens; }, pad_);
  }

 public:
  int32_t pad_ = 0;

 private:
  std::vector<Encoded> ex_;
  std::vector<int32_t> cand_;
  TokenBatch batch_;
  std::vector<ChoiceTarget> targets_;
  std::vector<float> logits_;
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  size_t at = 0;
  while ((at = s.find(from, at)) != std::string::npos) {
    s.replace(at, from.size(), to);
    at += to.size();
  }
  return s;
}

}  // namespace

double EvalResult::perplexity() const { return std::exp(loss); }

Status Task::predict(ThreadPool*, LanguageModel&, int, std::vector<Prediction>*) {
  return invalid_argument(std::string("predictions are made by classification tasks, not by a '") + kind() + "' task");
}

bool classification_preset(const std::string& name, std::string* prompt_template, std::string* labels) {
  if (name == "sst2") {
    *prompt_template = "{text} It was";
    *labels = "0:bad,1:good";  // MeZO's template; bad / good measured better than its terrible / great (README)
    return true;
  }
  if (name == "agnews") {
    *prompt_template = "{text} This is about";
    *labels = "World:world,Sports:sports,Business:business,Sci/Tech:technology";
    return true;
  }
  return false;
}

namespace {

std::string expand_trainable_item(const std::string& spec, int num_layers) {
  if (spec == "all") return "*";
  if (spec == "attention") return "*self_attn.*,*.attn.*,*.attention.*";
  if (spec == "mlp") return "*.mlp.*,*.fc1.*,*.fc2.*,*.intermediate.*,*.output.dense.*";
  if (spec == "norms") return "*norm*,*LayerNorm*,*.ln_*,*ln_f.*";
  if (spec == "biases") return "*.bias";
  if (spec.rfind("last:", 0) == 0) {
    const int k = std::atoi(spec.c_str() + 5);
    if (k <= 0) return spec;
    std::string out;
    for (int l = std::max(0, num_layers - k); l < num_layers; ++l) {
      const std::string n = std::to_string(l);
      out += (out.empty() ? "" : ",") + ("*.layers." + n + ".*,*.layer." + n + ".*,*.h." + n + ".*");
    }
    return out;
  }
  return spec;
}

}  // namespace

std::string expand_trainable(const std::string& spec, int num_layers) {
  std::string out;
  for (const std::string& item : split_list(spec, ','))
    if (!item.empty()) out += (out.empty() ? "" : ",") + expand_trainable_item(item, num_layers);
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> parse_label_words(const std::string& spec) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& item : split_list(spec, ',')) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos) return invalid_argument("label words: '" + item + "' is not LABEL:WORD");
    auto trim = [](std::string s) {
      while (!s.empty() && s.front() == ' ') s.erase(s.begin());
      while (!s.empty() && s.back() == ' ') s.pop_back();
      return s;
    };
    std::string label = trim(item.substr(0, colon)), word = trim(item.substr(colon + 1));
    if (label.empty() || word.empty()) return invalid_argument("label words: empty label or word in '" + item + "'");
    for (const auto& [l, w] : out)
      if (l == label) return invalid_argument("label words: label '" + label + "' given twice");
    out.emplace_back(label, " " + word);
  }
  if (out.size() < 2) return invalid_argument("label words: need at least two labels, e.g. \"0:terrible,1:great\"");
  return out;
}

// long: tokenises every example kind (text, completion, labelled) with one length policy; to be split per kind.
Result<std::unique_ptr<Task>> make_task(const Dataset& data, const Tokenizer& tok, const LanguageModel& model,
                                        const TaskOptions& o) {
  if (o.max_length < 2) return invalid_argument("max length must be at least 2 tokens");
  const int limit = std::min(o.max_length, model.config().max_position_embeddings);
  std::vector<Encoded> ex;
  int truncated = 0, skipped = 0;
  if (o.kind == "lm") {
    for (const auto& e : data.examples) {
      Encoded enc;
      auto prompt = tok.encode(e.text, true, false);
      if (!prompt) return Status(prompt.status().code(), data.path + ":" + std::to_string(e.line) + ": " + prompt.status().message());
      enc.tokens = prompt.value();
      if (!e.completion.empty()) {
        auto full = tok.encode(e.text + e.completion, true, false);
        if (!full) return full.status();
        // The completion starts where the prompt's tokens stop matching.
        size_t common = 0;
        while (common < prompt->size() && common < full->size() && (*prompt)[common] == (*full)[common]) ++common;
        enc.tokens = full.value();
        enc.loss_start = static_cast<int>(std::max<size_t>(common, 1));
      }
      if (static_cast<int>(enc.tokens.size()) > limit) {
        if (!o.truncate) {
          ++skipped;
          continue;
        }
        enc.tokens.resize(static_cast<size_t>(limit));
        ++truncated;
      }
      if (enc.tokens.size() < 2 || enc.loss_start >= static_cast<int>(enc.tokens.size())) {
        ++skipped;
        continue;
      }
      ex.push_back(std::move(enc));
    }
    if (o.pack && !ex.empty()) {
      // One stream: each example keeps its BOS; the completion-only masks carry over per token.
      std::vector<int32_t> stream;
      std::vector<uint8_t> scored;
      for (const auto& e : ex) {
        for (size_t i = 0; i < e.tokens.size(); ++i) {
          stream.push_back(e.tokens[i]);
          scored.push_back(static_cast<int>(i) >= e.loss_start ? 1 : 0);
        }
      }
      std::vector<Encoded> packed;
      for (size_t at = 0; at + 1 < stream.size(); at += static_cast<size_t>(limit)) {
        const size_t end = std::min(stream.size(), at + static_cast<size_t>(limit));
        Encoded w;
        w.tokens.assign(stream.begin() + static_cast<std::ptrdiff_t>(at), stream.begin() + static_cast<std::ptrdiff_t>(end));
        w.target.assign(scored.begin() + static_cast<std::ptrdiff_t>(at), scored.begin() + static_cast<std::ptrdiff_t>(end));
        w.loss_start = 1;
        if (w.tokens.size() >= 2) packed.push_back(std::move(w));
      }
      ex = std::move(packed);
    }
    if (ex.empty()) return invalid_argument(data.path + ": no usable examples (all empty or over-long)");
    auto t = std::make_unique<LmTask>(std::move(ex));
    t->truncated = truncated;
    t->skipped = skipped;
    return std::unique_ptr<Task>(std::move(t));
  }
  if (o.kind != "classify") return invalid_argument("task must be lm or classify, not '" + o.kind + "'");
  if (o.label_words.size() < 2) return invalid_argument("classify: give at least two label words");
  if (o.prompt_template.find("{text}") == std::string::npos)
    return invalid_argument("classify: the template must contain {text}");
  // Masked LMs (RoBERTa) answer at the <mask> token of the template; causal LMs at the last prompt token.
  const bool masked = !model.is_causal();
  const std::string mask_text = "<mask>";
  if (masked) {
    if (tok.mask_id() < 0) return invalid_argument("classify: this masked LM's tokenizer has no <mask> token");
    if (o.prompt_template.find(mask_text) == std::string::npos)
      return invalid_argument("classify: a masked LM needs <mask> in the template, e.g. \"{text} It was<mask>.\"");
  }
  // Candidate token of each label word: the first token it adds after the prompt (causal), or the
  // first token of the word itself (masked: it fills the <mask> slot).
  std::vector<int32_t> candidates;
  if (masked) {
    for (const auto& [label, word] : o.label_words) {
      auto ids = tok.encode(word, false, false);
      if (!ids || ids->empty()) return invalid_argument("classify: label word '" + word + "' has no tokens");
      if (std::find(candidates.begin(), candidates.end(), (*ids)[0]) != candidates.end())
        return invalid_argument("classify: label words share their first token; choose words that start differently");
      candidates.push_back((*ids)[0]);
    }
  } else {
    const std::string probe = replace_all(o.prompt_template, "{text}", "x");
    auto probe_ids = tok.encode(probe, true, false);
    if (!probe_ids) return probe_ids.status();
    for (const auto& [label, word] : o.label_words) {
      auto ids = tok.encode(probe + word, true, false);
      if (!ids) return ids.status();
      size_t common = 0;
      while (common < probe_ids->size() && common < ids->size() && (*probe_ids)[common] == (*ids)[common]) ++common;
      if (common >= ids->size()) return invalid_argument("classify: label word '" + word + "' adds no token after the prompt");
      const int32_t id = (*ids)[common];
      if (std::find(candidates.begin(), candidates.end(), id) != candidates.end())
        return invalid_argument("classify: label words share their first token (" + std::to_string(id) +
                                "); choose words that start differently");
      candidates.push_back(id);
    }
  }
  for (const auto& e : data.examples) {
    const std::string where = data.path + ":" + std::to_string(e.line);
    int label = -1;
    for (size_t i = 0; i < o.label_words.size(); ++i)
      if (o.label_words[i].first == e.label) label = static_cast<int>(i);
    if (label < 0) return invalid_argument(where + ": unknown label '" + e.label + "' (the label words cover " +
                                           std::to_string(o.label_words.size()) + " labels)");
    auto ids = tok.encode(replace_all(o.prompt_template, "{text}", e.text), true, masked);
    if (!ids) return Status(ids.status().code(), where + ": " + ids.status().message());
    Encoded enc;
    enc.tokens = ids.value();
    enc.label = label;
    enc.source = static_cast<size_t>(&e - data.examples.data());
    if (masked) {
      auto at = std::find(enc.tokens.begin(), enc.tokens.end(), tok.mask_id());
      if (at == enc.tokens.end()) return invalid_argument(where + ": the prompt lost its <mask> token");
      enc.loss_start = static_cast<int>(at - enc.tokens.begin());  // the answer position
      if (static_cast<int>(enc.tokens.size()) > limit) {
        if (!o.truncate || enc.loss_start >= limit) {
          ++skipped;
          continue;
        }
        enc.tokens.resize(static_cast<size_t>(limit));
        ++truncated;
      }
      ex.push_back(std::move(enc));
      continue;
    }
    if (static_cast<int>(enc.tokens.size()) > limit) {
      if (!o.truncate) {
        ++skipped;
        continue;
      }
      // Keep BOS and the end of the prompt (the template's tail and the answer position).
      std::vector<int32_t> cut = {enc.tokens[0]};
      cut.insert(cut.end(), enc.tokens.end() - (limit - 1), enc.tokens.end());
      enc.tokens = std::move(cut);
      ++truncated;
    }
    enc.loss_start = static_cast<int>(enc.tokens.size()) - 1;  // the answer position: the last prompt token
    ex.push_back(std::move(enc));
  }
  if (ex.empty()) return invalid_argument(data.path + ": no usable examples");
  auto t = std::make_unique<ClassifyTask>(std::move(ex), std::move(candidates));
  t->pad_ = tok.pad_id() >= 0 ? tok.pad_id() : 0;
  t->truncated = truncated;
  t->skipped = skipped;
  return std::unique_ptr<Task>(std::move(t));
}

Result<EvalResult> Task::evaluate(ThreadPool* pool, LanguageModel& model, int batch_size) {
  std::vector<size_t> all(size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  return evaluate_examples(pool, model, all, batch_size);
}

Status carve_validation(const Task& task, int n, uint64_t seed, std::vector<size_t>* train, std::vector<size_t>* validation) {
  validation->clear();
  if (n <= 0) return Status::ok();
  const auto labels = task.labels();
  std::vector<size_t> order = *train;
  std::sort(order.begin(), order.end());  // the draw depends on the sample, not on how it was listed
  philox_shuffle(order, seed, 0x76616c69u, 0x64u);  // "valid"
  std::map<int, int> taken, total;
  for (size_t i : order) ++total[labels.empty() ? 0 : labels[i]];
  std::vector<size_t> kept;
  for (size_t i : order) {
    const int label = labels.empty() ? 0 : labels[i];
    if (taken[label] < n) {
      ++taken[label];
      validation->push_back(i);
    } else {
      kept.push_back(i);
    }
  }
  for (const auto& [label, count] : total) {
    if (count > n) continue;
    validation->clear();
    const std::string what = labels.empty() ? "the training sample has " : "label " + std::to_string(label) + " has ";
    return invalid_argument("a validation split of " + std::to_string(n) + (labels.empty() ? "" : " per label") +
                            " (--validation, validation_examples) leaves nothing to train on: " + what + std::to_string(count) +
                            " example(s) in the training sample");
  }
  std::sort(kept.begin(), kept.end());
  std::sort(validation->begin(), validation->end());
  *train = std::move(kept);
  return Status::ok();
}

std::vector<size_t> k_shot_indices(const Task& task, int k, uint64_t seed) {
  std::vector<size_t> all(task.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const auto labels = task.labels();
  if (k <= 0) return all;
  philox_shuffle(all, seed, 0x73686f74u, 0x6bu);  // "kshot"
  if (labels.empty()) {
    if (all.size() > static_cast<size_t>(k)) all.resize(static_cast<size_t>(k));
    std::sort(all.begin(), all.end());
    return all;
  }
  std::map<int, int> taken;
  std::vector<size_t> out;
  for (size_t i : all)
    if (taken[labels[i]]++ < k) out.push_back(i);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace pocketllm
