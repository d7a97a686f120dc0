// pocketllm finetune: zeroth-order fine-tuning into a run directory, resumable.
#include <unistd.h>

#include <atomic>
#include <cfloat>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "pocketllm/cli/command.h"
#include "commands.h"
#include "pocketllm/cli/lora_args.h"
#include "pocketllm/client/finetune.h"
#include "pocketllm/client/recipe.h"
#include "pocketllm/client/use_cases.h"

namespace pocketllm::cli {
namespace {

constexpr const char* kFinetuneHelp =
    "usage: pocketllm finetune --model PATH --data FILE --task lm|classify --out RUN_DIR [options]\n"
    "       pocketllm finetune --resume --out RUN_DIR [--eval-data FILE] [--threads N] [--steps N]\n"
    "\n"
    "Zeroth-order (MeZO/SPSA) fine-tuning with inference memory. Every step is logged as (seed, coeff)\n"
    "in RUN_DIR/log.jsonl; the run resumes from it exactly after a crash or Ctrl-C. With --resume,\n"
    "--steps N extends a constant-lr run to N steps (the same run as one started with N).\n"
    "\n"
    "data and task:\n"
    "  --data FILE          training data: .txt (one example per line), .jsonl ({\"text\"} or\n"
    "                       {\"prompt\",\"completion\"}, \"label\"), .tsv (text<TAB>label, optional header)\n"
    "  --task lm|classify   causal-LM loss, or cross-entropy over label words (default lm)\n"
    "  --template T         classify prompt, {text} is the example (default \"{text} It was\")\n"
    "  --labels L           classify label words, e.g. \"0:terrible,1:great\"\n"
    "  --preset sst2|agnews classify SST-2 (MeZO's template, bad/good) or the AG News classes (template +\n"
    "                       labels); sst2 also brings its recipe (below)\n"
    "  --k-shot K           train on K examples per label (or K examples for lm), seeded by --data-seed\n"
    "  --min-words W        train only on examples of at least W words (drawn before --k-shot; the\n"
    "                       --eval-data set is never filtered)\n"
    "  --balanced           classify: batches take the labels in turn (equal shares on a k-shot set);\n"
    "                       removes the batch-to-batch label imbalance from the ZO gradient estimate\n"
    "                       (the classify default; --no-balanced turns it off)\n"
    "  --max-length N       tokens per example (default 256); --overlong truncate|skip (default truncate)\n"
    "  --pack               lm: pack the examples into full windows of --max-length tokens (no padding)\n"
    "  --eval-data FILE     held-out set evaluated at the start, every --eval-every steps and at the end\n"
    "  --validation N       hold N examples per label (lm: N in all) out of the training sample and validate\n"
    "                       on them every --validate-every steps (default steps/20); the run ends with the\n"
    "                       weights of the step with the best validation loss (RUN_DIR/best.safetensors;\n"
    "                       export and generate use them) and --eval-data is evaluated on those\n"
    "  --patience P         with --validation: stop after P validations without a better loss (default 0: never)\n"
    "optimisation (defaults: the recipe of the task and preset; any option given replaces its part):\n"
    "  lm                   all parameters, --batch-size 16, --lr 1e-4, constant\n"
    "  classify             the norm vectors, cosine. Sets of at most 1024 elements (stories260K's 704):\n"
    "                       --optimizer adam, balanced --batch-size 2, lr 3e-3. Larger: the SGD step,\n"
    "                       balanced --batch-size 256, lr 35.2 / (trainable parameters). Giving any of\n"
    "                       --optimizer, --batch-size, --lr, --n-spsa, --momentum, --clip keeps SGD's\n"
    "                       settings unless --optimizer adam (the line \"training: ...\" says which)\n"
    "  --preset sst2        the classify recipe plus --min-words 6\n"
    "                       (docs/training.md, \"Default recipes\": how they were chosen, what they reach)\n"
    "  --steps N (100)  --batch-size B  --lr LR  --eps EPS (1e-3)\n"
    "  --schedule constant|linear|cosine  --warmup N (0)  --n-spsa N directions per step (1)\n"
    "  --clip C             clip the projected gradient to [-C, C] (default off)\n"
    "  --momentum B         momentum on the scalar sequence: each step also re-applies the directions of\n"
    "                       the last W steps, weighted B^age and normalised (an average of recent\n"
    "                       projected gradients; the lr keeps its meaning); logged as plain entries\n"
    "  --momentum-window W  steps re-applied (default: the smallest W with B^W <= 0.01, 44 for 0.9)\n"
    "  --weight-decay W     decoupled weight decay, not on norms and biases (default 0)\n"
    "  --optimizer sgd|adam sgd (default; adam in the classify recipe for small sets): the SPSA step.\n"
    "                       adam: every coordinate's gradient fitted from\n"
    "                       --n-spsa one-sided passes a step (default 1.25 (d + 1) for d trainable\n"
    "                       elements, at most 4096), then Adam (--lr default 1e-2); logged as plain entries\n"
    "  --adam-beta1 B  --adam-beta2 B   Adam's moment decays (0.9, 0.999)\n"
    "  --decay-to-start L   adam: add L (theta - theta_start) to each step's fitted gradient, an L2 pull\n"
    "                       toward the starting weights (default 0: off; 0.002 when the classify\n"
    "                       recipe picks adam)\n"
    "  --dist rademacher|gaussian (rademacher)\n"
    "  --trainable P        comma-separated items, each a tensor-name pattern with * or one of\n"
    "                       all | attention | mlp | norms | biases | last:K (the last K layers), e.g.\n"
    "                       \"norms,model.embed_tokens.weight\" (default: the task's recipe)\n"
    "  --trainable-scale S  step scales PATTERN=X[,...]: the tensors PATTERN selects are perturbed and\n"
    "                       updated by X times the step (their effective lr is X^2 lr; default 1)\n"
    "  --trainable-rows R   train only some rows: PATTERN=ROWS[;...], ROWS a list (\"0-99,311\"), or\n"
    "                       sample[:MIN] for embeddings / heads: the rows of the token ids the k-shot sample\n"
    "                       uses (at least MIN times) and the label words; spec.json records the list\n"
    "  --add-biases T       add zero output biases to the linear layers T selects that have none (module\n"
    "                       names as --lora-targets, or all-linear); train them with --trainable biases\n"
    "  --lora-rank R        train low-rank adapters of rank R on the --lora-targets layers (the base stays\n"
    "                       frozen; --trainable then defaults to none, e.g. add norms)\n"
    "  --lora-alpha A       adapter output scale alpha / r (default: alpha = r)\n"
    "  --lora-targets T     module names, e.g. q_proj,v_proj (default) or all-linear\n"
    "  --lora-init-seed S   seed of the adapters' initial A (B starts at zero; default 0)\n"
    "  --quantize q8_0|q4_0 hold the frozen matrices 8- or 4-bit in memory (quantized at load; any checkpoint)\n"
    "  --seed S  --data-seed S   direction and data-order seeds (default 0)\n"
    "run:\n"
    "  --snapshot-every N   write trainable tensors every N steps (default 100)\n"
    "  --metrics-json FILE  write the loss/eval curve as JSON at the end\n"
    "  --threads N          worker threads (default: all cores)\n"
    "  --pair auto|concurrent|sequential\n"
    "                       a step's two forward passes at once on half the threads each, or one after\n"
    "                       the other on all: the same run either way; at once is faster and holds a second\n"
    "                       pass's activations. auto (default): at once when that adds at most 8 % to\n"
    "                       one pass's memory or 64 MiB (the choice is printed at the end)\n";

// --optimizer and Adam's betas into the train options; an error message, or empty.
std::string read_optimizer(const Args& args, TrainOptions* t) {
  if (!parse_optimizer(args.get("optimizer", "sgd"), &t->optimizer)) return "--optimizer must be sgd or adam";
  const bool adam = t->optimizer == Optimizer::kAdam;
  if (!adam && (args.has("adam-beta1") || args.has("adam-beta2"))) return "--adam-beta1 and --adam-beta2 need --optimizer adam";
  auto b1 = args.get_double("adam-beta1", 0.9), b2 = args.get_double("adam-beta2", 0.999);
  if (!b1 || !(b1.value() >= 0 && b1.value() < 1)) return "--adam-beta1 must be in [0, 1)";
  if (!b2 || !(b2.value() >= 0 && b2.value() < 1)) return "--adam-beta2 must be in [0, 1)";
  t->adam_beta1 = static_cast<float>(b1.value());
  t->adam_beta2 = static_cast<float>(b2.value());
  if (adam && args.has("momentum")) return "--optimizer adam keeps its own momentum (--adam-beta1): drop --momentum";
  if (adam && args.has("clip")) return "--optimizer adam normalises each coordinate's step: drop --clip";
  auto pull = args.get_double("decay-to-start", 0);
  if (!pull || !(pull.value() >= 0) || pull.value() > 1e6) return "--decay-to-start must be a number from 0 (off) up to 1e6";
  if (args.has("optimizer") && !adam && pull.value() > 0) return "--decay-to-start needs --optimizer adam";
  t->decay_to_start = static_cast<float>(pull.value());  // adam only: checked once the recipe has chosen
  return "";
}

// One line on how the run trains (the recipe may have chosen it): optimizer, directions, batch, lr.
std::string describe_training(const TrainOptions& t) {
  char b[200];
  std::snprintf(b, sizeof b, "training: %s, %d direction%s a step, batches of %d, lr %g (%s), %d steps", optimizer_name(t.optimizer),
                t.n_spsa, t.n_spsa == 1 ? "" : "s", t.batch_size, static_cast<double>(t.lr), lr_schedule_name(t.schedule), t.steps);
  std::string line = b;
  if (t.decay_to_start > 0.0f) {
    std::snprintf(b, sizeof b, ", decay to start %g", static_cast<double>(t.decay_to_start));
    line += b;
  }
  return line;
}

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

std::string format_eta(double s) {
  char b[32];
  if (s < 0 || s > 1e7) return "?";
  std::snprintf(b, sizeof b, "%d:%02d", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  return b;
}

}  // namespace

// long: argv -> FinetuneRequest, one option per line, each with its range check.
int cmd_finetune(const std::vector<std::string>& argv) {
  Command cmd("pocketllm finetune", kFinetuneHelp, {"model", "data", "task", "out", "template", "labels", "k-shot", "max-length", "overlong", "eval-data",
             "eval-every", "eval-batch-size", "steps", "batch-size", "lr", "eps", "schedule", "warmup", "n-spsa", "clip", "weight-decay",
             "dist", "trainable", "preset", "seed", "data-seed", "snapshot-every", "metrics-json", "threads", "fsync-every",
             "lora-rank", "lora-alpha", "lora-targets", "lora-init-seed", "quantize", "validation", "validate-every", "patience",
             "min-words", "trainable-scale", "trainable-rows", "add-biases",
             "momentum", "momentum-window", "pair", "optimizer", "adam-beta1", "adam-beta2",
             "decay-to-start"},
             {"resume", "pack", "balanced", "no-balanced"});
  return cmd.run(argv, [&](const Args& args) {
    auto usage = [](const std::string& m) {
      std::fprintf(stderr, "pocketllm finetune: %s (see --help)\n", m.c_str());
      return 2;
    };
    if (!args.has("out")) return usage("--out is required");
    FinetuneRequest req;
    req.out_dir = args.get("out");
    req.resume = args.has("resume");
    req.eval_data_path = args.get("eval-data");
    RunSpec& spec = req.spec;
    TrainOptions& t = spec.train;

    auto u64 = [&](const char* name, uint64_t def, uint64_t max, uint64_t* out) -> bool {
      auto v = args.get_u64(name, def);
      if (!v || v.value() > max) return false;
      *out = v.value();
      return true;
    };
    // The recipe the task and preset bring (a resumed run keeps its own spec: these are not used).
    const std::string task_kind = args.get("task", args.has("preset") ? "classify" : "lm");
    const Recipe recipe = default_recipe(task_kind, args.get("preset"));
    uint64_t steps, batch, warmup, n_spsa, k_shot, max_len, eval_every, eval_bs, snap, threads, fsync_every;
    uint64_t validation, validate_every, patience, min_words;
    if (!u64("validation", recipe.validation, 1u << 30, &validation)) return usage("--validation must be an integer 0..2^30 (examples per label)");
    if (!u64("validate-every", 0, 100'000'000, &validate_every)) return usage("--validate-every must be an integer 0..1e8");
    if (!u64("patience", validation > 0 ? recipe.patience : 0, 1'000'000, &patience)) return usage("--patience must be an integer 0..1e6");
    if (validation == 0 && (args.has("validate-every") || args.has("patience")))
      return usage("--validate-every and --patience need --validation N");
    if (!u64("min-words", recipe.min_words, 1'000'000, &min_words)) return usage("--min-words must be an integer 0..1e6");
    if (!u64("steps", 100, 100'000'000, &steps)) return usage("--steps must be an integer 0..1e8");
    if (!u64("batch-size", recipe.batch_size, 1 << 16, &batch) || batch == 0) return usage("--batch-size must be 1..65536");
    if (!u64("warmup", 0, 100'000'000, &warmup)) return usage("--warmup must be an integer 0..1e8");
    if (std::string m = read_optimizer(args, &t); !m.empty()) return usage(m);
    const bool adam = t.optimizer == Optimizer::kAdam;
    if (!adam && (!u64("n-spsa", 1, 1024, &n_spsa) || n_spsa == 0)) return usage("--n-spsa must be 1..1024");
    if (adam && (!u64("n-spsa", 0, 65536, &n_spsa) || n_spsa == 1)) return usage("--n-spsa must be 2..65536 with --optimizer adam");
    if (!u64("k-shot", 0, 1u << 30, &k_shot)) return usage("--k-shot must be an integer 0..2^30");
    if (!u64("max-length", 256, 1 << 20, &max_len) || max_len < 2) return usage("--max-length must be 2..2^20");
    if (!u64("eval-every", 0, 100'000'000, &eval_every)) return usage("--eval-every must be an integer 0..1e8");
    if (!u64("eval-batch-size", 32, 1 << 16, &eval_bs) || eval_bs == 0) return usage("--eval-batch-size must be 1..65536");
    if (!u64("snapshot-every", 100, 100'000'000, &snap)) return usage("--snapshot-every must be an integer 0..1e8");
    if (!u64("threads", 0, 1024, &threads)) return usage("--threads must be 0..1024");
    if (!u64("fsync-every", 10, 1'000'000, &fsync_every)) return usage("--fsync-every must be an integer 0..1e6");
    auto lr = args.get_double("lr", adam ? 1e-2 : recipe.lr), eps = args.get_double("eps", 1e-3), clip = args.get_double("clip", 0);
    auto wd = args.get_double("weight-decay", 0);
    if (!wd || wd.value() < 0 || wd.value() >= 1) return usage("--weight-decay must be in [0, 1)");
    if (!lr) return usage(lr.status().message());
    // Both are float32 in the run: a value past FLT_MAX would become infinity there.
    if (!(lr.value() > 0) || lr.value() > FLT_MAX) return usage("--lr must be a positive number up to 3.4e38");
    if (!args.has("lr") && !adam) req.lr_times_params = recipe.lr_times_params;
    bool left_to_recipe = true;  // the optimizer and its settings: the recipe may pick Adam for a small set
    for (const char* o : {"optimizer", "batch-size", "lr", "n-spsa", "momentum", "clip"}) left_to_recipe = left_to_recipe && !args.has(o);
    if (left_to_recipe) req.recipe_adam = recipe.adam;
    if (left_to_recipe && args.has("decay-to-start")) req.recipe_adam.decay_to_start = t.decay_to_start;  // the user's word wins
    if (!eps || eps.value() <= 0 || eps.value() > FLT_MAX) return usage("--eps must be a positive number up to 3.4e38");
    if (!clip || clip.value() < 0 || clip.value() > FLT_MAX) return usage("--clip must be a number from 0 (off) up to 3.4e38");
    auto momentum = args.get_double("momentum", 0);
    if (!momentum || !(momentum.value() >= 0 && momentum.value() < 1)) return usage("--momentum must be in [0, 1)");
    uint64_t momentum_window;
    if (!u64("momentum-window", default_momentum_window(static_cast<float>(momentum.value())), 256, &momentum_window) ||
        (momentum.value() > 0 && momentum_window == 0))
      return usage("--momentum-window must be 1..256");
    if (args.has("momentum-window") && !(momentum.value() > 0)) return usage("--momentum-window needs --momentum B");
    t.steps = static_cast<int>(steps);
    t.batch_size = static_cast<int>(batch);
    t.warmup_steps = static_cast<int>(warmup);
    t.n_spsa = static_cast<int>(n_spsa);
    t.lr = static_cast<float>(lr.value());
    t.eps = static_cast<float>(eps.value());
    t.clip = static_cast<float>(clip.value());
    t.momentum = static_cast<float>(momentum.value());
    t.momentum_window = t.momentum > 0 ? static_cast<int>(momentum_window) : 0;
    t.weight_decay = static_cast<float>(wd.value());
    t.schedule = recipe.schedule;
    if (args.has("schedule") && !parse_lr_schedule(args.get("schedule"), &t.schedule)) return usage("--schedule must be constant, linear or cosine");
    if (!parse_distribution(args.get("dist", "rademacher"), &t.dist)) return usage("--dist must be rademacher or gaussian");
    if (!parse_seed_text(args.get("seed", "0"), &t.seed)) return usage("--seed must be 0x<hex> or decimal");
    if (!parse_seed_text(args.get("data-seed", "0"), &t.data_seed)) return usage("--data-seed must be 0x<hex> or decimal");
    if (std::string m = read_lora_args(args, &spec.lora); !m.empty()) return usage(m);
    spec.trainable = args.get("trainable", spec.lora.enabled() ? "none" : recipe.trainable);
    spec.step_scales = args.get("trainable-scale", "");
    spec.trainable_rows = args.get("trainable-rows", "");
    spec.added_biases = args.get("add-biases", "");
    if (args.has("quantize")) {
      if (!parse_quantize_type(args.get("quantize"), &spec.quantize))
        return usage("--quantize must be q8_0 or q4_0");
    }
    spec.k_shot = static_cast<int>(k_shot);
    spec.min_words = static_cast<int>(min_words);
    spec.validation.examples = static_cast<int>(validation);
    spec.validation.every = static_cast<int>(validate_every);
    spec.validation.patience = static_cast<int>(patience);
    spec.snapshot_every = static_cast<int>(snap);
    spec.fsync_every = static_cast<int>(fsync_every);
    spec.task.kind = task_kind;
    spec.task.max_length = static_cast<int>(max_len);
    const std::string overlong = args.get("overlong", "truncate");
    if (overlong != "truncate" && overlong != "skip") return usage("--overlong must be truncate or skip");
    spec.task.truncate = overlong == "truncate";
    spec.task.pack = args.has("pack");
    if (args.has("balanced") && args.has("no-balanced")) return usage("--balanced and --no-balanced contradict each other");
    t.balanced = args.has("balanced") || (recipe.balanced && !args.has("no-balanced"));
    if (spec.task.pack && spec.task.kind != "lm") return usage("--pack is for --task lm");
    spec.task.prompt_template = args.get("template", "{text} It was");
    std::string preset_labels;
    if (args.has("preset")) {
      std::string tmpl;
      if (!classification_preset(args.get("preset"), &tmpl, &preset_labels)) return usage("--preset must be sst2 or agnews");
      if (!args.has("template")) spec.task.prompt_template = tmpl;
    }
    if (spec.task.kind != "lm" && spec.task.kind != "classify") return usage("--task must be lm or classify");
    if (req.resume && args.has("steps")) req.extend_to_steps = static_cast<int>(steps);
    if (!req.resume) {
      if (!args.has("model")) return usage("--model is required");
      if (!args.has("data")) return usage("--data is required");
      spec.model_path = args.get("model");
      spec.data_path = args.get("data");
      if (spec.task.kind == "classify") {
        if (!args.has("labels") && preset_labels.empty())
          return usage("--task classify needs --labels, e.g. \"0:terrible,1:great\" (or --preset sst2|agnews)");
        auto lw = parse_label_words(args.get("labels", preset_labels));
        if (!lw) return usage(lw.status().message());
        spec.task.label_words = lw.value();
      }
    }
    req.eval_every = static_cast<int>(eval_every);
    req.eval_batch_size = static_cast<int>(eval_bs);
    req.threads = static_cast<int>(threads);
    if (!parse_pair_mode(args.get("pair", "auto"), &req.pair)) return usage("--pair must be auto, concurrent or sequential");

    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    const bool tty = ::isatty(STDERR_FILENO);
    nlohmann::json curve = nlohmann::json::array();
    double ema = -1;
    auto on_step = [&](const StepProgress& p) {
      ema = ema < 0 ? p.loss : 0.95 * ema + 0.05 * p.loss;
      curve.push_back({{"step", p.step}, {"loss", p.loss}, {"skipped", p.skipped}});
      const int done = p.step + 1 - p.first_step;
      const double rate = done / std::max(p.seconds, 1e-9);
      const double eta = (p.total - p.step - 1) / std::max(rate, 1e-9);
      if (tty) {
        const int width = 30, filled = static_cast<int>(width * (p.step + 1.0) / p.total);
        std::fprintf(stderr, "\r[%s%s] step %d/%d  loss %.4f  %.2f steps/s  ETA %s ", std::string(filled, '#').c_str(),
                     std::string(width - filled, '.').c_str(), p.step + 1, p.total, ema, rate, format_eta(eta).c_str());
      } else {
        const int every = std::max(1, p.total / 50);
        if ((p.step + 1) % every == 0 || p.step + 1 == p.total)
          std::fprintf(stderr, "step %d/%d loss %.4f (%.2f steps/s, ETA %s)\n", p.step + 1, p.total, ema, rate,
                       format_eta(eta).c_str());
      }
      if (p.skipped) std::fprintf(stderr, "%sstep %d skipped: non-finite loss\n", tty ? "\n" : "", p.step);
      return !g_stop.load();
    };
    nlohmann::json evals = nlohmann::json::array();
    auto on_eval = [&](const EvalPoint& e) {
      if (tty) std::fputs("\n", stderr);
      const char* what = e.validation ? "validation" : "eval";
      std::string at = std::to_string(e.step);
      if (e.selected_step >= 0) at += " (the weights of step " + std::to_string(e.selected_step) + ", best on validation)";
      if (e.result.accuracy >= 0)
        std::fprintf(stderr, "%s @ step %s: loss %.4f, accuracy %.2f%% (%zu examples)\n", what, at.c_str(), e.result.loss,
                     100 * e.result.accuracy, e.result.count);
      else
        std::fprintf(stderr, "%s @ step %s: loss %.4f, perplexity %.2f (%zu examples)\n", what, at.c_str(), e.result.loss,
                     e.result.perplexity(), e.result.count);
      nlohmann::json j = {{"step", e.step}, {"loss", e.result.loss}, {"split", what}};
      if (e.result.accuracy >= 0) j["accuracy"] = e.result.accuracy;
      if (e.selected_step >= 0) j["selected_step"] = e.selected_step;
      evals.push_back(j);
    };
    auto session = FinetuneSession::open(req);
    if (!session) {
      std::fprintf(stderr, "pocketllm finetune: %s\n", session.status().message().c_str());
      return 1;
    }
    for (const std::string& line : describe(session.value()->data_report())) std::fprintf(stderr, "%s\n", line.c_str());
    std::fprintf(stderr, "%s\n", describe_training(session.value()->spec().train).c_str());
    if (req.resume) {
      const int done = session.value()->steps_done(), total = session.value()->total_steps();
      if (done >= total)
        std::fprintf(stderr, "%s is complete (%d of %d steps); extend it with --resume --steps N\n", req.out_dir.c_str(), done, total);
      else
        std::fprintf(stderr, "resuming %s at step %d of %d\n", req.out_dir.c_str(), done + 1, total);
    }
    auto result = session.value()->run(on_step, on_eval);
    if (tty) std::fputs("\n", stderr);
    if (!result) {
      std::fprintf(stderr, "pocketllm finetune: %s\n", result.status().message().c_str());
      return 1;
    }
    if (args.has("metrics-json")) {
      std::ofstream out(args.get("metrics-json"));
      out << nlohmann::json{{"steps", curve}, {"evals", evals}, {"seconds", result->seconds}}.dump(1) << "\n";
      if (!out) std::fprintf(stderr, "pocketllm finetune: cannot write %s\n", args.get("metrics-json").c_str());
    }
    if (result->stopped) {
      std::fprintf(stderr, "stopped after step %d; resume with: pocketllm finetune --resume --out %s\n",
                   result->steps_done - 1, req.out_dir.c_str());
      return 130;
    }
    if (result->early_stopped)
      std::fprintf(stderr, "stopped early: no better validation loss in the last --patience validations\n");
    if (result->best_step >= 0)
      std::fprintf(stderr, "best validation loss %.4f at step %d: the run's result (RUN_DIR/best.safetensors)\n",
                   result->best_validation_loss, result->best_step);
    std::fprintf(stderr, "done: %d steps (%d skipped) in %.1f s on %zu training examples; run in %s\n", result->steps_done,
                 result->skipped_steps, result->seconds, result->train_examples, req.out_dir.c_str());
    if (!result->pair_mode.empty()) std::fprintf(stderr, "forward passes of a step: %s\n", result->pair_mode.c_str());
    return 0;
  });
}

}  // namespace pocketllm::cli
