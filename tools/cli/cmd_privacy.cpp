// pocketllm privacy: the differential-privacy accountant for operators and researchers (docs/privacy.md).
//   pocketllm privacy epsilon --sampling-rate Q --noise-multiplier S --steps T --delta D [--json]
//   pocketllm privacy noise   --epsilon E --sampling-rate Q --steps T --delta D [--json]
//   pocketllm privacy rounds  --epsilon E --sampling-rate Q --noise-multiplier S --delta D [--json]
//   pocketllm privacy rdp     --sampling-rate Q --noise-multiplier S --order A [--json]
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "pocketllm/cli/command.h"
#include "pocketllm/privacy/accountant.h"

namespace pocketllm::cli {
namespace {

constexpr const char* kPrivacyHelp =
    "usage: pocketllm privacy epsilon --sampling-rate Q --noise-multiplier S --steps T --delta D [--json] [--classic]\n"
    "       pocketllm privacy noise   --epsilon E --sampling-rate Q --steps T --delta D [--json] [--classic]\n"
    "       pocketllm privacy rounds  --epsilon E --sampling-rate Q --noise-multiplier S --delta D [--json]\n"
    "       pocketllm privacy rdp     --sampling-rate Q --noise-multiplier S --order A [--json]\n"
    "\n"
    "The Renyi-DP accountant of the sampled Gaussian mechanism that the server uses for a task's budget\n"
    "(docs/privacy.md): each round includes each device with probability Q (Poisson sampling), clips its\n"
    "contribution to L2 norm C and adds Gaussian noise of standard deviation S*C to the sum.\n"
    "\n"
    "  epsilon   the epsilon spent after T rounds at delta D\n"
    "  noise     the smallest noise multiplier that keeps T rounds within epsilon E at delta D\n"
    "  rounds    how many rounds fit in the budget (E, D)\n"
    "  rdp       the Renyi DP of one round at order A (> 1)\n"
    "\n"
    "  --classic   convert RDP to (epsilon, delta) with Mironov's original bound instead of the improved\n"
    "              one (Balle et al. 2020); for comparing with figures published before 2020\n"
    "  --json      one JSON object on stdout instead of text\n";

}  // namespace

int cmd_privacy(const std::vector<std::string>& argv) {
  if (argv.empty() || (argv[0] != "epsilon" && argv[0] != "noise" && argv[0] != "rounds" && argv[0] != "rdp")) {
    if (!argv.empty() && (argv[0] == "--help" || argv[0] == "-h")) {
      std::fputs(kPrivacyHelp, stdout);
      return 0;
    }
    std::fprintf(stderr, "pocketllm privacy: give a subcommand: epsilon, noise, rounds or rdp (see --help)\n");
    return 2;
  }
  const std::string sub = argv[0];
  Command cmd("pocketllm privacy " + sub, kPrivacyHelp, {"sampling-rate", "noise-multiplier", "steps", "delta", "epsilon", "order"},
              {"json", "classic"});
  return cmd.run(std::vector<std::string>(argv.begin() + 1, argv.end()), [&](const Args& args) {
    auto number = [&](const char* name, double* out) -> bool {
      if (!args.has(name)) return false;
      auto v = args.get_double(name, 0);
      if (!v || !std::isfinite(v.value())) return false;
      *out = v.value();
      return true;
    };
    double q = 0, sigma = 0, delta = 0, eps = 0, order = 0;
    uint64_t steps = 0;
    const bool need_sigma = sub != "noise", need_steps = sub == "epsilon" || sub == "noise";
    const bool need_delta = sub != "rdp", need_eps = sub == "noise" || sub == "rounds";
    if (!number("sampling-rate", &q)) return cmd.usage("--sampling-rate Q (a number in (0, 1]) is required");
    if (need_sigma && !number("noise-multiplier", &sigma)) return cmd.usage("--noise-multiplier S (a number > 0) is required");
    if (need_delta && !number("delta", &delta)) return cmd.usage("--delta D (a number in (0, 1)) is required");
    if (need_eps && !number("epsilon", &eps)) return cmd.usage("--epsilon E (a number > 0) is required");
    if (need_steps) {
      auto t = args.get_u64("steps", 0);
      if (!args.has("steps") || !t) return cmd.usage("--steps T (a whole number) is required");
      if (t.value() > 100000000) return cmd.usage("--steps is limited to 10^8");
      steps = t.value();
    }
    if (sub == "rdp" && (!number("order", &order) || !(order > 1) || order > 1e4)) return cmd.usage("--order A (in (1, 10000]) is required");
    if (const std::string why = privacy::check_parameters(q, need_sigma ? sigma : 1.0, need_delta ? delta : 0.5); !why.empty())
      return cmd.usage(why);
    if (need_eps && !(eps > 0)) return cmd.usage("--epsilon must be > 0");
    const auto conversion = args.has("classic") ? privacy::Conversion::kClassic : privacy::Conversion::kImproved;
    nlohmann::json out;
    std::string text;
    try {
      if (sub == "epsilon") {
        const auto s = privacy::epsilon_spent(q, sigma, steps, delta, conversion);
        out = {{"epsilon", s.epsilon}, {"order", s.order}};
        char b[96];  // %g: a noise multiplier near 0 spends an epsilon of 60 digits
        std::snprintf(b, sizeof b, "epsilon %.6g (at RDP order %g)", s.epsilon, s.order);
        text = b;
      } else if (sub == "noise") {
        const double s = privacy::noise_for_epsilon(eps, q, steps, delta, conversion);
        const bool floor = s == privacy::kMinNoiseMultiplier;
        out = {{"noise_multiplier", s}, {"at_search_floor", floor}};
        char b[160];
        std::snprintf(b, sizeof b, "noise multiplier %.6g%s", s,
                      floor ? " (the smallest the search tries: that epsilon allows this little noise, maybe less)" : "");
        text = b;
      } else if (sub == "rounds") {
        const uint64_t r = privacy::max_rounds(eps, q, sigma, delta);
        const bool limit = r == privacy::kRoundsLimit;
        out = {{"rounds", r}, {"limit_reached", limit}};
        text = limit ? "at least " + std::to_string(r) + " rounds (the count stops there)" : std::to_string(r) + " rounds";
      } else {
        const double r = privacy::rdp_sampled_gaussian(q, sigma, order);
        out = {{"rdp", r}};
        char b[64];
        std::snprintf(b, sizeof b, "%.17g", r);
        text = std::string("RDP ") + b;
      }
    } catch (const std::invalid_argument& e) {
      return cmd.usage(e.what());
    }
    if (args.has("json")) std::printf("%s\n", out.dump().c_str());
    else std::printf("%s\n", text.c_str());
    return 0;
  });
}

}  // namespace pocketllm::cli
