// A device's part in a masked secure-aggregation round (docs/secagg.md §5) over the federation client:
// instead of its scalars, the device sends its keys, its sealed shares, its masked input and, at the end,
// the shares that unmask the sum — each when the round reaches that phase. Built from a trained round;
// the secrets live in this object only.
#pragma once

#include <memory>
#include <string>

#include "pocketllm/common/status.h"
#include "pocketllm/federation/federation_client.h"
#include "pocketllm/federation/round_participant.h"

namespace pocketllm {
namespace secagg {
class DeviceRound;
}

class SecureSubmission {
 public:
  enum class Step { kAdvertise, kShareKeys, kMaskedInput, kUnmask, kDone, kFailed };
  static const char* step_name(Step s);

  // The round must be a masked one (RoundInfo::secagg); its input is the trained scalars, clipped and
  // encoded as the round says (a private task: clipped to the L2 norm, the device's share of the noise).
  static Result<std::unique_ptr<SecureSubmission>> create(const RoundInfo& round, const protocol::DevicePrivacy& privacy,
                                                          const LocalRound& local);
  ~SecureSubmission();

  Step step() const { return step_; }
  // The server's refusal or the device's reason when step() is kFailed.
  const std::string& failure() const { return failure_; }

  // Takes the next step when the round is in its phase: true when a message went out, false when the
  // round is not there yet. When the round has moved past the step, was closed, or a message was
  // refused, the submission fails (step() kFailed, failure() says why) and returns false.
  Result<bool> advance(FederationClient& client, const std::string& task);
  // advance() until done or failed, polling every poll_ms, for at most timeout_ms.
  Status run(FederationClient& client, const std::string& task, int poll_ms, int64_t timeout_ms);

 private:
  SecureSubmission() = default;
  Result<bool> take_step(FederationClient& client, const std::string& task);
  bool fail(const std::string& why);

  uint64_t round_ = 0;
  std::unique_ptr<secagg::DeviceRound> device_;
  std::vector<uint64_t> input_;
  Step step_ = Step::kAdvertise;
  std::string failure_;
};

}  // namespace pocketllm
