// pocketllm classify: the label a model (or a run's current weights) gives each text, with the label
// probabilities — what an app does with the classifier it fine-tuned.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "pocketllm/cli/command.h"
#include "pocketllm/client/dataset.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/work_progress.h"

namespace pocketllm::cli {

namespace {

// The texts to classify: --text, or the texts of --data (a file in any dataset format, labels ignored;
// "-" reads one text per line from stdin, empty lines skipped).
Result<std::vector<std::string>> read_texts(const Args& args) {
  if (args.has("text")) return std::vector<std::string>{args.get("text")};
  std::vector<std::string> texts;
  if (args.get("data") == "-") {
    for (std::string line; std::getline(std::cin, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) texts.push_back(line);
    }
    return texts;
  }
  auto data = load_dataset(args.get("data"), DatasetOptions{});
  if (!data) return data.status();
  for (auto& e : data->examples) texts.push_back(std::move(e.text));
  return texts;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

int cmd_classify(const std::vector<std::string>& argv) {
  static const char* kClassifyHelp =
      "usage: pocketllm classify (--model PATH [--adapter DIR] [--quantize q8_0|q4_0] | --run RUN_DIR)\n"
      "                          (--text TEXT | --data FILE|-) [--preset sst2|agnews] [--template T]\n"
      "                          [--labels L] [--max-length N] [--batch-size B] [--threads N] [--json]\n"
      "\n"
      "The label the model gives each text: the label word most probable at the answer position of the\n"
      "prompt (as finetune --task classify trains and eval scores it). With --run, the run's current\n"
      "weights, template and label words. --data: a text, TSV or JSONL file (labels, if any, ignored),\n"
      "or - for one text per line on stdin.\n"
      "Output, one line per text: LABEL<TAB>PROBABILITY<TAB>TEXT; --json: one object per text\n"
      "{\"text\", \"label\", \"word\", \"probabilities\": {label: p, ...}}.\n";
  Command cmd("pocketllm classify", kClassifyHelp,
              {"model", "adapter", "quantize", "run", "text", "data", "template", "labels", "preset", "max-length", "batch-size", "threads"},
              {"json"});
  return cmd.run(argv, [&](const Args& args) {
    if (args.has("text") == args.has("data")) return cmd.usage("give exactly one of --text and --data");
    EvaluateRequest req;
    if (int rc = model_task_request(cmd, args, &req); rc != 0) return rc;
    auto texts = read_texts(args);
    if (!texts) return cmd.fail(texts.status().message());
    if (texts->empty()) return cmd.fail("no texts to classify in " + args.get("data"));
    ProgressScope progress(count_progress("classified", "texts"));
    auto r = run_classify(req, texts.value());
    if (!r) return cmd.fail(r.status().message());
    const auto& words = r->label_words;
    for (size_t i = 0; i < r->predictions.size(); ++i) {
      const Prediction& p = r->predictions[i];
      const auto& [label, word] = words[static_cast<size_t>(p.predicted)];
      if (!args.has("json")) {
        std::printf("%s\t%.4f\t%s\n", label.c_str(), p.probabilities[static_cast<size_t>(p.predicted)], one_line((*texts)[i]).c_str());
        continue;
      }
      nlohmann::json probs = nlohmann::json::object();
      for (size_t c = 0; c < p.probabilities.size(); ++c) probs[words[c].first] = p.probabilities[c];
      const nlohmann::json line = {{"text", (*texts)[i]}, {"label", label}, {"word", word.substr(1)}, {"probabilities", probs}};
      std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    return 0;
  });
}

}  // namespace pocketllm::cli
