#pragma once

#include <string>
#include <vector>

namespace pocketllm::cli {

// Each command gets the arguments after its name and returns the process exit code
// (0 ok, 1 failure, 2 usage error).
int cmd_perturb(const std::vector<std::string>& args);
int cmd_replay(const std::vector<std::string>& args);
int cmd_generate(const std::vector<std::string>& args);
int cmd_info(const std::vector<std::string>& args);
int cmd_finetune(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_export(const std::vector<std::string>& args);
int cmd_convert(const std::vector<std::string>& args);
int cmd_gguf(const std::vector<std::string>& args);
int cmd_federate(const std::vector<std::string>& args);
int cmd_privacy(const std::vector<std::string>& args);
int cmd_base_weights(const std::vector<std::string>& args);

}  // namespace pocketllm::cli
