// One device's side of a secure-aggregation round (docs/secagg.md §5): a state machine the device client
// drives with what the server sends. Each step may be taken once, in order; a step's refusal leaves the
// device out of the round (it sends nothing more) — never a partial answer. The secrets (key pairs, the
// self-mask seed, the shares it holds) live in this object only and are wiped when it is destroyed.
#pragma once

#include <map>
#include <memory>
#include <optional>

#include "pocketllm/common/status.h"
#include "pocketllm/secagg/graph.h"
#include "pocketllm/secagg/messages.h"

namespace pocketllm::secagg {

class DeviceRound {
 public:
  enum class Step { kAdvertise, kShareKeys, kMaskedInput, kUnmask, kDone, kFailed };

  // Fresh key pairs and self-mask seed from the OS CSPRNG.
  static Result<std::unique_ptr<DeviceRound>> create(const RoundConfig& config);
  ~DeviceRound();
  DeviceRound(const DeviceRound&) = delete;
  DeviceRound& operator=(const DeviceRound&) = delete;

  Step step() const { return step_; }

  // Step 1: the public keys to advertise.
  AdvertiseKeys advertise();
  // Step 2: checks the roster (size, degree, threshold and neighbours as the graph has them, well-formed and
  // distinct keys) and seals to each neighbour its shares of this device's mask key and self-mask seed.
  Result<ShareKeys> share_keys(const Roster& roster);
  // Step 3: opens the shares addressed to it (every one must authenticate, come from a neighbour, once),
  // needs at least share_threshold of them, and masks `input` (input_length words, from encode_input) with
  // its self mask and a pairwise mask per neighbour whose shares it received.
  Result<MaskedInput> masked_input(const std::vector<uint64_t>& input, const std::vector<EncryptedShare>& inbox);
  // Step 4: given the survivors (ascending indices of devices whose masked input the server took: at least
  // this device and its surviving neighbours, of count ≥ min_survivors in all), reveals for each neighbour
  // it holds shares of the share of its self-mask seed if it survived, else of its mask key.
  Result<Unmask> unmask(const SurvivorList& survivors);
  // The same with the whole survivor list (count = its size).
  Result<Unmask> unmask(const std::vector<uint32_t>& all) { return unmask(SurvivorList{all, static_cast<uint32_t>(all.size())}); }

 private:
  explicit DeviceRound(const RoundConfig& config) : config_(config) {}
  Status fail(Status s);

  RoundConfig config_;
  Step step_ = Step::kAdvertise;
  KeyPair enc_, mask_;
  Key32 self_seed_{};
  Roster roster_;
  RoundShape shape_;
  std::unique_ptr<Graph> graph_;
  struct Held {
    Key32 mask_share{}, self_share{};
  };
  std::map<uint32_t, Held> held_;  // owner → the shares this device holds of its secrets
};

}  // namespace pocketllm::secagg
