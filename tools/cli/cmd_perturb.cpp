// pocketllm perturb: prints z(seed, tensor)[start, start+count), the reference output that ports of
// the SDK to other languages check themselves against (docs/perturbation.md).
#include <cstdio>
#include <vector>

#include "pocketllm/cli/command.h"
#include "commands.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/update_log.h"

namespace pocketllm::cli {
namespace {

constexpr const char* kPerturbHelp =
    "usage: pocketllm perturb --seed SEED --tensor NAME [--start I] [--count N]\n"
    "                         [--dist rademacher|gaussian] [--format text|f32]\n"
    "\n"
    "Prints elements [I, I+N) of the perturbation direction z for SEED and the tensor's canonical\n"
    "(Hugging Face) name, as docs/perturbation.md defines it.\n"
    "\n"
    "  --seed SEED     0x-prefixed hex (up to 16 digits) or decimal, below 2^64\n"
    "  --tensor NAME   canonical tensor name, e.g. model.layers.0.self_attn.q_proj.weight\n"
    "  --start I       first element index (default 0)\n"
    "  --count N       number of elements (default 16)\n"
    "  --dist D        rademacher (default) or gaussian\n"
    "  --format F      text: one value per line, 9 significant digits (round-trips float32; default);\n"
    "                  f32: raw little-endian float32 bytes on stdout\n";

constexpr uint64_t kMaxCount = uint64_t{1} << 32;

}  // namespace

int cmd_perturb(const std::vector<std::string>& argv) {
  Command cmd("pocketllm perturb", kPerturbHelp, {"seed", "tensor", "start", "count", "dist", "format"});
  return cmd.run(argv, [&](const Args& args) {
    auto usage_error = [](const std::string& message) {
      std::fprintf(stderr, "pocketllm perturb: %s\n", message.c_str());
      return 2;
    };
    if (!args.has("seed")) return usage_error("--seed is required");
    if (!args.has("tensor")) return usage_error("--tensor is required");
    uint64_t seed = 0;
    if (!parse_seed_text(args.get("seed"), &seed))
      return usage_error("--seed '" + args.get("seed") + "' is not 0x<hex> or a decimal below 2^64");
    const std::string tensor = args.get("tensor");
    if (tensor.empty()) return usage_error("--tensor must not be empty");
    auto start = args.get_u64("start", 0);
    if (!start) return usage_error(start.status().message());
    auto count = args.get_u64("count", 16);
    if (!count) return usage_error(count.status().message());
    if (count.value() > kMaxCount) return usage_error("--count is limited to 2^32 elements");
    if (start.value() > UINT64_MAX - count.value()) return usage_error("--start + --count overflows 2^64");
    Distribution dist = Distribution::kRademacher;
    if (!parse_distribution(args.get("dist", "rademacher"), &dist))
      return usage_error("--dist must be rademacher or gaussian, not '" + args.get("dist") + "'");
    const std::string format = args.get("format", "text");
    if (format != "text" && format != "f32") return usage_error("--format must be text or f32");

    const uint64_t tag = tensor_tag(tensor);
    std::vector<float> buf(1 << 16);
    uint64_t done = 0;
    while (done < count.value()) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), count.value() - done));
      generate_z(dist, seed, tag, start.value() + done, n, buf.data());
      if (format == "f32") {
        // Little-endian hosts only (x86-64, arm64): the bytes are the float32 values as stored.
        if (std::fwrite(buf.data(), sizeof(float), n, stdout) != n) return 1;
      } else {
        for (size_t i = 0; i < n; ++i) std::printf("%.9g\n", static_cast<double>(buf[i]));
      }
      done += n;
    }
    return std::fflush(stdout) == 0 ? 0 : 1;
  });
}

}  // namespace pocketllm::cli
