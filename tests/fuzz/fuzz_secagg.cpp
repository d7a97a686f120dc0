// What a secure-aggregation round reads from the other side: every secagg wire parser, and what a parsed
// round configuration drives (its shape and graph for a small round, an input encoding).
#include <string>

#include "pocketllm/common/json_util.h"
#include "pocketllm/secagg/graph.h"
#include "pocketllm/secagg/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace s = pocketllm::secagg;
  if (size < 1) return 0;
  const nlohmann::json j = pocketllm::parse_json(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  (void)s::parse_advertise_keys(j);
  (void)s::parse_roster(j);
  (void)s::parse_share_keys(j);
  (void)s::parse_inbox(j);
  (void)s::parse_masked_input(j);
  (void)s::parse_survivors(j);
  (void)s::parse_unmask(j);
  auto c = s::parse_round_config(j);
  if (c) {
    const uint32_t n = 2 + data[0];  // a small round: 2..257 participants
    auto shape = s::round_shape(*c, n);
    if (shape) {
      const s::Graph g(c->graph_seed, n, shape->degree);
      for (uint32_t i = 0; i < n; i += 37) (void)g.neighbours(i);
    }
    if (c->input.tau <= 64 && s::check_capacity(c->input, n)) (void)s::encode_input(c->input, std::vector<float>(c->input.tau, 0.5f), 3);
  }
  return 0;
}
