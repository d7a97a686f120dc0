#pragma once

#include <string>
#include <vector>

#include "pocketllm/common/work_progress.h"

namespace pocketllm {
struct EvaluateRequest;
}

namespace pocketllm::cli {

class Args;
class Command;

// Each command gets the arguments after its name and returns the process exit code
// (0 ok, 1 failure, 2 usage error).
int cmd_perturb(const std::vector<std::string>& args);
int cmd_replay(const std::vector<std::string>& args);
int cmd_generate(const std::vector<std::string>& args);
int cmd_info(const std::vector<std::string>& args);
int cmd_finetune(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_classify(const std::vector<std::string>& args);
int cmd_export(const std::vector<std::string>& args);
int cmd_convert(const std::vector<std::string>& args);
int cmd_gguf(const std::vector<std::string>& args);
int cmd_federate(const std::vector<std::string>& args);
int cmd_privacy(const std::vector<std::string>& args);
int cmd_base_weights(const std::vector<std::string>& args);

// A long pass over many items says how far it is on stderr ("evaluated 64 of 872 examples (3 s)"):
// after 2 s, then every second, and at the end if it said anything before.
ProgressSink count_progress(const char* verb, const char* what);

// The model (--model/--adapter/--quantize or --run) and task options (--task, --preset, --template,
// --labels, --max-length) with --batch-size and --threads, as eval and classify take them: 0, or the
// usage error's exit code.
int model_task_request(const Command& cmd, const Args& args, EvaluateRequest* req);

}  // namespace pocketllm::cli
