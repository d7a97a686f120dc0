#include "pocketllm/client/run_dir.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/json_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"

namespace pocketllm {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Paths in spec.json are stored relative to the run directory, so a run moved together with its model
// and data (an app container that the OS relocates) resumes; absolute paths of older runs still work.
std::string relative_to_run(const std::string& run_dir, const std::string& p) {
  if (p.empty()) return p;
  std::error_code ec;
  const fs::path rel = fs::relative(fs::absolute(p, ec), fs::absolute(run_dir, ec), ec);
  return ec || rel.empty() ? p : rel.generic_string();
}

std::string resolve_in_run(const std::string& run_dir, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(run_dir) / p).lexically_normal().generic_string();
}

// spec.json's text. Every string in it must be UTF-8 (JSON's text): a path, template or label word that
// is not (Linux file names are bytes) is refused here, before anything of the run exists.
Result<std::string> spec_text(const std::string& run_dir, const RunSpec& spec) {
  RunSpec stored = spec;
  stored.model_path = relative_to_run(run_dir, spec.model_path);
  stored.data_path = relative_to_run(run_dir, spec.data_path);
  try {
    return stored.to_json().dump(2) + "\n";
  } catch (const nlohmann::json::type_error&) {
    return invalid_argument(run_dir + ": the run's settings hold text that is not UTF-8 (a file or directory name, a template or a "
                            "label word); a run keeps them in spec.json, which is UTF-8");
  }
}

Status write_spec(const std::string& run_dir, const RunSpec& spec) {
  auto text = spec_text(run_dir, spec);
  if (!text) return text.status();
  return write_file_atomic(run_dir + "/spec.json", text.value(), 0600);
}

// One opener at a time: two processes (or two handles) appending to one log would interleave steps.
Result<int> lock_run(const std::string& run_dir) {
  const std::string p = run_dir + "/.lock";
  const int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return io_error(p + ": cannot open: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) return busy(run_dir + ": the run is open in another process or handle; close that one first");
    return io_error(p + ": cannot lock: " + std::strerror(err));
  }
  return fd;
}

Status write_all(int fd, const std::string& s, const std::string& what) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return io_error(what + ": write failed: " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

json labels_json(const std::vector<std::pair<std::string, std::string>>& lw) {
  json a = json::array();
  for (const auto& [l, w] : lw) a.push_back({l, w});
  return a;
}

}  // namespace

json RunSpec::to_json() const {
  json j{{"format", "pocketllm.run"},
              {"version", 1},
              {"perturbation_spec_version", kPerturbationSpecVersion},
              {"model", {{"path", model_path}, {"id", model_id}, {"format", model_format}}},
              {"trainable", trainable},
              {"distribution", distribution_name(train.dist)},
              {"eps", train.eps},
              {"lr", train.lr},
              {"schedule", lr_schedule_name(train.schedule)},
              {"warmup_steps", train.warmup_steps},
              {"steps", train.steps},
              {"batch_size", train.batch_size},
              {"n_spsa", train.n_spsa},
              {"clip", train.clip},
              {"weight_decay", train.weight_decay},
              {"seed", seed_to_hex(train.seed)},
              {"data_seed", seed_to_hex(train.data_seed)},
              {"balanced", train.balanced},
              {"task",
               {{"kind", task.kind},
                {"max_length", task.max_length},
                {"truncate", task.truncate},
                {"pack", task.pack},
                {"template", task.prompt_template},
                {"label_words", labels_json(task.label_words)}}},
              {"data", {{"path", data_path}, {"sha256", data_sha256}, {"k_shot", k_shot}}},
              {"snapshot_every", snapshot_every},
              {"fsync_every", fsync_every}};
  if (min_words > 0) j["data"]["min_words"] = min_words;     // absent in runs that keep every example
  if (!step_scales.empty()) j["step_scales"] = step_scales;  // absent in runs without them
  if (!trainable_rows.empty()) j["trainable_rows"] = trainable_rows;  // absent in runs that train whole tensors
  if (!added_biases.empty()) j["added_biases"] = added_biases;
  if (train.momentum > 0.0f) {  // absent in runs without momentum
    j["momentum"] = train.momentum;
    j["momentum_window"] = train.momentum_window;
  }
  if (train.optimizer == Optimizer::kAdam)  // absent in SPSA runs
    j["optimizer"] = {{"name", optimizer_name(train.optimizer)},
                      {"beta1", train.adam_beta1},
                      {"beta2", train.adam_beta2},
                      {"eps", train.adam_eps}};
  if (train.decay_to_start > 0.0f) j["optimizer"]["decay_to_start"] = train.decay_to_start;  // absent when off
  if (lora.enabled()) j["adapter"] = lora.to_json();
  if (validation.enabled())
    j["validation"] = {{"examples", validation.examples}, {"every", validation.every}, {"patience", validation.patience}};
  if (quantize != DType::kF32) j["model"]["quantize"] = dtype_name(quantize);
  return j;
}

Result<RunSpec> RunSpec::from_json(const json& j, const std::string& where) {
  try {
    if (j.value("format", "") != "pocketllm.run") return corrupt(where + ": not a pocketllm run spec");
    if (j.value("version", 0) != 1) return unsupported(where + ": run spec version " + j.value("version", json()).dump());
    if (j.value("perturbation_spec_version", 0) != kPerturbationSpecVersion)
      return unsupported(where + ": made with perturbation spec version " + j.value("perturbation_spec_version", json()).dump() +
                         "; this build implements version " + std::to_string(kPerturbationSpecVersion));
    RunSpec s;
    s.model_path = j.at("model").at("path");
    s.model_id = j.at("model").at("id");
    s.model_format = j.at("model").value("format", "");
    if (j.at("model").contains("quantize")) {
      if (!parse_quantize_type(j.at("model").at("quantize").get<std::string>(), &s.quantize))
        return corrupt(where + ": model.quantize must be Q8_0 or Q4_0");
    }
    s.trainable = j.at("trainable");
    s.step_scales = j.value("step_scales", std::string());
    s.trainable_rows = j.value("trainable_rows", std::string());
    s.added_biases = j.value("added_biases", std::string());
    if (j.contains("adapter")) {
      auto lora = LoraConfig::from_json(j["adapter"], where);
      if (!lora) return corrupt(lora.status().message());
      s.lora = lora.value();
    }
    if (!parse_distribution(j.at("distribution").get<std::string>(), &s.train.dist))
      return corrupt(where + ": unknown distribution");
    s.train.eps = j.at("eps");
    s.train.lr = j.at("lr");
    if (!parse_lr_schedule(j.at("schedule").get<std::string>(), &s.train.schedule)) return corrupt(where + ": unknown schedule");
    s.train.warmup_steps = j.at("warmup_steps");
    s.train.steps = j.at("steps");
    s.train.batch_size = j.at("batch_size");
    s.train.n_spsa = j.at("n_spsa");
    s.train.clip = j.at("clip");
    s.train.weight_decay = j.value("weight_decay", 0.0f);
    s.train.balanced = j.value("balanced", false);
    s.train.momentum = j.value("momentum", 0.0f);
    s.train.momentum_window = j.value("momentum_window", 0);
    if (j.contains("optimizer")) {
      const json& o = j.at("optimizer");
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string() || !parse_optimizer(o["name"].get<std::string>(), &s.train.optimizer))
        return corrupt(where + ": optimizer.name must be sgd or adam");
      s.train.adam_beta1 = o.value("beta1", s.train.adam_beta1);
      s.train.adam_beta2 = o.value("beta2", s.train.adam_beta2);
      s.train.adam_eps = o.value("eps", s.train.adam_eps);
      s.train.decay_to_start = o.value("decay_to_start", 0.0f);
    }
    if (Status ok = check_train_options(s.train); !ok) return corrupt(where + ": " + ok.message());
    if (!seed_from_hex(j.at("seed").get<std::string>(), &s.train.seed) ||
        !seed_from_hex(j.at("data_seed").get<std::string>(), &s.train.data_seed))
      return corrupt(where + ": seeds must be 16 hex digits");
    const json& t = j.at("task");
    s.task.kind = t.at("kind");
    s.task.max_length = t.at("max_length");
    s.task.truncate = t.at("truncate");
    s.task.pack = t.value("pack", false);
    s.task.prompt_template = t.at("template");
    for (const auto& p : t.at("label_words")) s.task.label_words.emplace_back(p.at(0), p.at(1));
    s.data_path = j.at("data").at("path");
    s.data_sha256 = j.at("data").at("sha256");
    s.k_shot = j.at("data").at("k_shot");
    s.min_words = j.at("data").value("min_words", 0);
    if (s.min_words < 0) return corrupt(where + ": data.min_words must be >= 0");
    if (j.contains("validation")) {
      const json& v = j.at("validation");
      s.validation.examples = v.at("examples");
      s.validation.every = v.at("every");
      s.validation.patience = v.at("patience");
      if (s.validation.examples < 0 || s.validation.every < 0 || s.validation.patience < 0)
        return corrupt(where + ": validation settings must be >= 0");
    }
    s.snapshot_every = j.value("snapshot_every", 100);
    s.fsync_every = j.value("fsync_every", 10);
    return s;
  } catch (const json::exception& e) {
    return corrupt(where + ": " + e.what());
  }
}

void replay_steps(ThreadPool* pool, Distribution dist, const std::vector<LoggedStep>& steps, size_t first, size_t last,
                  const std::vector<NamedTensor>& tensors) {
  last = std::min(last, steps.size());
  bool any_decay = false;
  for (size_t s = first; s < last; ++s) any_decay |= steps[s].decay != 0.0f;
  if (!any_decay) {
    std::vector<UpdateEntry> entries;
    for (size_t s = first; s < last; ++s) entries.insert(entries.end(), steps[s].entries.begin(), steps[s].entries.end());
    replay_entries(pool, dist, entries.data(), entries.size(), tensors);
    return;
  }
  for (size_t s = first; s < last; ++s) apply_step(pool, dist, steps[s].decay, steps[s].entries, tensors);
}

RunDir::~RunDir() {
  if (log_fd_ >= 0) {
    ::fsync(log_fd_);
    ::close(log_fd_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

RunDir::RunDir(RunDir&& o) noexcept
    : path_(std::move(o.path_)), spec_(std::move(o.spec_)), steps_(std::move(o.steps_)), log_fd_(o.log_fd_),
      lock_fd_(o.lock_fd_), since_sync_(o.since_sync_) {
  o.log_fd_ = -1;
  o.lock_fd_ = -1;
}

RunDir& RunDir::operator=(RunDir&& o) noexcept {
  if (this != &o) {
    if (log_fd_ >= 0) ::close(log_fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    path_ = std::move(o.path_);
    spec_ = std::move(o.spec_);
    steps_ = std::move(o.steps_);
    log_fd_ = o.log_fd_;
    lock_fd_ = o.lock_fd_;
    since_sync_ = o.since_sync_;
    o.log_fd_ = -1;
    o.lock_fd_ = -1;
  }
  return *this;
}

Result<RunDir> RunDir::create(const std::string& path, const RunSpec& spec) {
  struct stat st {};
  if (::stat((path + "/spec.json").c_str(), &st) == 0)
    return invalid_argument(path + ": already holds a run (use --resume to continue it, or choose another --out)");
  if (Status ok = check_train_options(spec.train); !ok) return invalid_argument(path + ": " + ok.message());
  if (auto text = spec_text(path, spec); !text) return text.status();
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return io_error(path + ": cannot create: " + std::strerror(errno));
  auto lock = lock_run(path);
  if (!lock) return lock.status();
  ::close(lock.value());  // released for open() to take; a racing creator is refused there
  POCKETLLM_RETURN_IF_ERROR(write_spec(path, spec));
  return open(path);
}

Status RunDir::extend_steps(int steps) {
  if (steps == spec_.train.steps) return Status();
  if (steps < spec_.train.steps)
    return invalid_argument(path_ + ": --steps " + std::to_string(steps) + " is below the run's " +
                            std::to_string(spec_.train.steps) + "; a run can be extended, not shortened");
  if (spec_.train.schedule != LrSchedule::kConstant)
    return invalid_argument(path_ + ": a " + std::string(lr_schedule_name(spec_.train.schedule)) +
                            " schedule depends on the total step count; only a constant-lr run can be extended");
  RunSpec extended = spec_;
  extended.train.steps = steps;
  POCKETLLM_RETURN_IF_ERROR(write_spec(path_, extended));
  spec_ = std::move(extended);
  return Status();
}

Result<RunDir> RunDir::open(const std::string& path) {
  auto text = read_file(path + "/spec.json", size_t{1} << 24);
  if (!text) {
    if (text.status().code() == StatusCode::kNotFound) return not_found(path + ": not a run directory (no spec.json)");
    return text.status();
  }
  json j = parse_json(text.value());
  if (j.is_discarded()) return corrupt(path + "/spec.json: not valid JSON");
  auto spec = RunSpec::from_json(j, path + "/spec.json");
  if (!spec) return spec.status();
  RunDir r;
  auto lock = lock_run(path);
  if (!lock) return lock.status();
  r.lock_fd_ = lock.value();
  r.path_ = path;
  r.spec_ = std::move(spec.value());
  r.spec_.model_path = resolve_in_run(path, r.spec_.model_path);
  r.spec_.data_path = resolve_in_run(path, r.spec_.data_path);
  POCKETLLM_RETURN_IF_ERROR(r.load_log());
  return r;
}

namespace {

// One update entry of a log line into its step: seed, coeff, and (optional) decay and projected gradient g.
Status parse_entry_line(const json& j, const std::string& where, bool own_direction, LoggedStep* step) {
  UpdateEntry e;
  if (!j.contains("seed") || !j["seed"].is_string() || !seed_from_hex(j["seed"].get<std::string>(), &e.seed) ||
      !j.contains("coeff") || !j["coeff"].is_number())
    return corrupt(where + ": needs a hex seed and a coeff");
  e.coeff = static_cast<float>(j["coeff"].get<double>());
  if (!std::isfinite(e.coeff)) return corrupt(where + ": non-finite coeff");
  step->entries.push_back(e);
  if (own_direction && j.contains("g")) {
    if (!j["g"].is_number() || !std::isfinite(j["g"].get<double>())) return corrupt(where + ": g must be a finite number");
    step->grads.push_back(j["g"].get<double>());
  }
  if (j.contains("decay")) {
    if (!j["decay"].is_number()) return corrupt(where + ": decay must be a number");
    step->decay = static_cast<float>(j["decay"].get<double>());
    if (!std::isfinite(step->decay)) return corrupt(where + ": non-finite decay");
  }
  return Status::ok();
}

}  // namespace

Status RunDir::load_log() {
  const std::string log_path = path_ + "/log.jsonl";
  std::string content;
  auto text = read_file(log_path, size_t{1} << 34);
  if (text.is_ok()) content = std::move(text.value());
  else if (text.status().code() != StatusCode::kNotFound) return text.status();

  // Parse complete lines; remember where each step's lines begin so a partial step can be cut.
  size_t pos = 0, good_end = 0;
  int line_no = 0;
  const int n = spec_.train.n_spsa;
  LoggedStep current;
  int in_current = 0, expected = n;
  size_t current_start = 0;
  while (pos < content.size()) {
    const size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) break;  // torn last line: dropped
    const std::string line = content.substr(pos, nl - pos);
    ++line_no;
    json j = parse_json(line);
    const std::string where = log_path + ":" + std::to_string(line_no);
    if (j.is_discarded() || !j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || j["step"].get<int64_t>() < 0 ||
        j["step"].get<int64_t>() > (int64_t{1} << 30))
      return corrupt(where + ": not a log line");
    const int step = j["step"].get<int>();
    if (in_current == 0) {
      current = LoggedStep{};
      current.step = step;
      current_start = pos;
      expected = n;
      if (j.contains("entries")) {  // momentum: the step's own n entries and those re-applied from older steps
        if (!j["entries"].is_number_integer() || j["entries"].get<int64_t>() < n || j["entries"].get<int64_t>() > int64_t{n} * 257)
          return corrupt(where + ": entries must be a count of at least n_spsa");
        expected = j["entries"].get<int>();
      }
      if (step != static_cast<int>(steps_.size()))
        return corrupt(where + ": step " + std::to_string(step) + " follows step " + std::to_string(steps_.size() - 1));
    } else if (step != current.step) {
      return corrupt(where + ": step " + std::to_string(current.step) + " has " + std::to_string(in_current) +
                     " of its " + std::to_string(expected) + " entries");
    }
    const bool own = in_current < n;  // one of the step's own directions (momentum lines follow them)
    if (own) {
      for (const char* key : {"loss_plus", "loss_minus"})
        if (j.contains(key) && !j[key].is_number()) return corrupt(where + ": " + key + " must be a number");
      current.loss_plus += j.value("loss_plus", 0.0) / n;
      current.loss_minus += j.value("loss_minus", 0.0) / n;
      current.losses.push_back(j.value("loss_plus", 0.0));
    }
    if (j.contains("skipped")) {
      in_current = expected;  // a skipped step is one line
    } else {
      POCKETLLM_RETURN_IF_ERROR(parse_entry_line(j, where, own, &current));
      ++in_current;
    }
    pos = nl + 1;
    if (in_current == expected) {
      if (!current.grads.empty() && current.grads.size() != static_cast<size_t>(n))
        return corrupt(where + ": step " + std::to_string(current.step) + " has a g on only some of its directions");
      steps_.push_back(current);
      in_current = 0;
      good_end = pos;
    }
  }
  (void)current_start;
  // Cut anything after the last complete step (a torn line or a partial n-SPSA step).
  const int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC;
  if (good_end < content.size()) {
    if (::truncate(log_path.c_str(), static_cast<off_t>(good_end)) != 0)
      return io_error(log_path + ": cannot cut the incomplete last step: " + std::strerror(errno));
  }
  log_fd_ = ::open(log_path.c_str(), flags, 0600);
  if (log_fd_ < 0) return io_error(log_path + ": cannot open for append: " + std::strerror(errno));
  return Status::ok();
}

UpdateLog RunDir::update_log() const {
  std::vector<UpdateEntry> all;
  for (const auto& s : steps_) all.insert(all.end(), s.entries.begin(), s.entries.end());
  return UpdateLog(std::move(all));
}

Status RunDir::append(const StepRecord& rec) {
  if (rec.step != next_step())
    return invalid_argument("run log: step " + std::to_string(rec.step) + " appended after step " + std::to_string(next_step() - 1));
  std::string lines;
  LoggedStep logged;
  logged.step = rec.step;
  if (rec.skipped) {
    json j = {{"step", rec.step}, {"skipped", rec.skip_reason}, {"lr", rec.lr}};
    lines = j.dump() + "\n";
  } else {
    const size_t own = rec.loss_plus.size();  // the step's own directions; momentum entries follow
    const bool momentum = !rec.entry_steps.empty();
    for (size_t k = 0; k < rec.entries.size(); ++k) {
      json j = {{"step", rec.step},
                {"k", k},
                {"seed", seed_to_hex(rec.entries[k].seed)},
                {"coeff", static_cast<double>(rec.entries[k].coeff)},
                {"lr", rec.lr}};
      if (k < own) {
        j["loss_plus"] = rec.loss_plus[k];
        logged.loss_plus += rec.loss_plus[k] / own;
        logged.losses.push_back(rec.loss_plus[k]);
      }
      if (k < rec.loss_minus.size()) {  // adam's one-sided passes have none
        j["loss_minus"] = rec.loss_minus[k];
        logged.loss_minus += rec.loss_minus[k] / own;
      }
      if (momentum) {
        j["entries"] = rec.entries.size();
        if (k < own) j["g"] = rec.grads[k];
        else j["from"] = rec.entry_steps[k];
      }
      if (rec.decay != 0.0f) j["decay"] = static_cast<double>(rec.decay);
      lines += j.dump() + "\n";
    }
    logged.entries = rec.entries;
    logged.decay = rec.decay;
    if (momentum) logged.grads = rec.grads;
  }
  POCKETLLM_RETURN_IF_ERROR(write_all(log_fd_, lines, path_ + "/log.jsonl"));
  steps_.push_back(std::move(logged));
  if (++since_sync_ >= std::max(1, spec_.fsync_every)) return sync();
  return Status::ok();
}

Status RunDir::sync() {
  since_sync_ = 0;
  if (log_fd_ >= 0 && ::fsync(log_fd_) != 0) return io_error(path_ + "/log.jsonl: fsync failed: " + std::strerror(errno));
  return Status::ok();
}

Status RunDir::append_metrics(const json& line) {
  const std::string p = path_ + "/metrics.jsonl";
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return io_error(p + ": cannot open: " + std::strerror(errno));
  Status s = write_all(fd, line.dump() + "\n", p);
  ::close(fd);
  return s;
}

Status RunDir::write_tensors(const std::string& file, int step, LanguageModel& model, const std::map<std::string, std::string>& extra) {
  std::vector<TensorToWrite> tensors;
  for (const Weight* w : model.weights().trainable()) tensors.push_back({w->name, DType::kF32, w->shape, w->data});
  std::map<std::string, std::string> meta = extra;
  meta["pocketllm.step"] = std::to_string(step);
  meta["pocketllm.model_id"] = spec_.model_id;
  return write_safetensors(path_ + "/" + file, tensors, meta, 0600);
}

Result<int> RunDir::read_tensors(const std::string& file, LanguageModel* model, std::map<std::string, std::string>* meta) const {
  const std::string p = path_ + "/" + file;
  auto f = SafetensorsFile::open(p);
  if (!f) {
    if (f.status().code() == StatusCode::kNotFound) return -1;
    return f.status();
  }
  auto it = f->metadata().find("pocketllm.step");
  auto id = f->metadata().find("pocketllm.model_id");
  if (it == f->metadata().end() || id == f->metadata().end()) return corrupt(p + ": not a pocketllm snapshot");
  if (id->second != spec_.model_id) return mismatch(p + ": snapshot of another base model");
  const int step = std::atoi(it->second.c_str());
  if (meta) *meta = f->metadata();
  if (!model) return step;
  for (const Weight* w : model->weights().trainable()) {
    const TensorInfo* t = f->find(w->name);
    if (t == nullptr || t->dtype != DType::kF32 || t->numel != w->numel())
      return corrupt(p + ": tensor '" + w->name + "' missing or of the wrong size");
    POCKETLLM_RETURN_IF_ERROR(f->read_f32(*t, 0, t->numel, w->mutable_f32));
  }
  return step;
}

Status RunDir::write_snapshot(int step, LanguageModel& model) { return write_tensors("snapshot.safetensors", step, model, {}); }

Result<int> RunDir::load_snapshot(LanguageModel& model) { return read_tensors("snapshot.safetensors", &model, nullptr); }

Status RunDir::write_best(int step, double validation_loss, LanguageModel& model) {
  char loss[40];
  std::snprintf(loss, sizeof loss, "%.17g", validation_loss);
  return write_tensors("best.safetensors", step, model, {{"pocketllm.validation_loss", loss}});
}

namespace {
double validation_loss_of(const std::map<std::string, std::string>& meta) {
  auto it = meta.find("pocketllm.validation_loss");
  return it == meta.end() ? NAN : std::strtod(it->second.c_str(), nullptr);
}
}  // namespace

Result<int> RunDir::load_best(LanguageModel& model, double* loss) {
  std::map<std::string, std::string> meta;
  auto step = read_tensors("best.safetensors", &model, &meta);
  if (step && step.value() >= 0 && loss) *loss = validation_loss_of(meta);
  return step;
}

Result<int> RunDir::best_step(double* loss) const {
  std::map<std::string, std::string> meta;
  auto step = read_tensors("best.safetensors", nullptr, &meta);
  if (step && step.value() >= 0 && loss) *loss = validation_loss_of(meta);
  return step;
}

}  // namespace pocketllm
