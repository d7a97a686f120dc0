// The server's side of a secure-aggregation round (docs/secagg.md §5): it relays keys and sealed shares,
// collects masked inputs and revealed shares, and at the end rebuilds the masks of the survivors and of the
// devices that dropped after sharing, leaving the exact sum of the survivors' inputs — and nothing about any
// one of them. Pure: no clock (the caller closes a phase at its deadline or when nobody is pending), no I/O.
//
// A refused message changes nothing. Codes: kMismatch — the round is in another phase (late or early);
// kBusy — this device already sent this phase's message (a replay); kNotFound — the device is not a
// participant of this phase; kInvalidArgument — the message is malformed (sizes, indices, keys).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pocketllm/common/status.h"
#include "pocketllm/secagg/graph.h"
#include "pocketllm/secagg/messages.h"
#include "pocketllm/secagg/shamir.h"

namespace pocketllm::secagg {

class AggregatorRound {
 public:
  // kFinishing: the unmasking is computed (every message is refused); kDone or kAbandoned after it.
  enum class Phase { kAdvertise, kShareKeys, kMaskedInput, kUnmask, kFinishing, kDone, kAbandoned };
  static const char* phase_name(Phase p);

  // `max_participants` caps phase 1 (the round's expected devices); the config is checked for that many.
  static Result<std::unique_ptr<AggregatorRound>> create(const RoundConfig& config, uint32_t max_participants);

  Phase phase() const { return phase_.load(std::memory_order_acquire); }
  const std::string& abandon_reason() const { return abandon_reason_; }
  // Devices the current phase still waits for (phase 1: up to max_participants), and the messages it holds.
  uint32_t pending() const;
  uint32_t received() const;

  // Phase 1.
  Status advertise(const std::string& device, const AdvertiseKeys& keys);
  // Closes phase 1: fewer than min_survivors abandons; else indices go to the devices sorted by id.
  Status close_advertise();
  Result<Roster> roster(const std::string& device) const;

  // Phase 2.
  Status share_keys(const std::string& device, const ShareKeys& msg);
  Status close_share_keys();
  // The sealed shares addressed to a device, from every device that completed phase 2.
  Result<std::vector<EncryptedShare>> inbox(const std::string& device) const;

  // Phase 3.
  Status masked_input(const std::string& device, const MaskedInput& msg);
  Status close_masked_input();
  const std::vector<uint32_t>& survivors() const { return survivors_; }
  // What a survivor is told in phase 4: itself and its surviving neighbours, and the count (k + 1 indices
  // rather than all n: the device needs no more).
  Result<SurvivorList> survivors_for(const std::string& device) const;

  // Phase 4.
  Status unmask(const std::string& device, const Unmask& msg);
  // Closes phase 4: rebuilds the masks and returns the sum of the survivors' inputs, or abandons (fewer
  // than min_survivors answered, a secret with too few shares, inconsistent shares, a rebuilt key that
  // does not match its advertised public key). The same as begin_finish(), compute(), take_sum().
  Result<std::vector<uint64_t>> finish();
  // The three steps, for a caller that computes off its own lock: begin_finish() closes phase 4 (kFinishing:
  // every message is refused from then on); compute() — the costly part — may run on another thread while
  // other threads read phase() and received() only; computed() tells when it is over (then phase() is kDone or
  // kAbandoned) and take_sum() gives the sum or why the round was abandoned.
  Status begin_finish();
  void compute();
  bool computed() const { return computed_.load(std::memory_order_acquire); }
  Result<std::vector<uint64_t>> take_sum();

  uint32_t participants() const { return static_cast<uint32_t>(ids_.size()); }
  // The devices that advertised keys (phase 1 so far, or the participants after it).
  std::vector<std::string> advertised_devices() const;
  std::optional<uint32_t> index_of(const std::string& device) const;
  const std::string& id_of(uint32_t index) const { return ids_[index]; }

 private:
  AggregatorRound(const RoundConfig& c, uint32_t max)
      : config_(c), max_participants_(max), probe_(std::make_unique<X25519Secret>(random_key())) {}
  Status abandon(const std::string& why);
  Status in_phase(Phase p, const char* what) const;
  Result<uint32_t> participant(const std::string& device) const;
  Status check_unmask(uint32_t sender, const Unmask& msg) const;
  Status remove_masks(std::vector<uint64_t>* sum);
  Status remove_owner_masks(uint32_t u, const std::vector<uint32_t>& neighbours, const std::vector<Share>& revealed,
                            std::vector<uint64_t>* delta) const;
  Status close_into(Phase next, size_t count, const char* what);

  RoundConfig config_;
  uint32_t max_participants_;
  std::atomic<Phase> phase_{Phase::kAdvertise};
  std::atomic<bool> computed_{false};
  std::vector<uint64_t> sum_;
  std::string abandon_reason_;
  std::map<std::string, AdvertiseKeys> advertised_;
  std::set<Key32> seen_keys_;
  std::unique_ptr<X25519Secret> probe_;  // a throwaway secret: an advertised key must agree with it
  std::vector<std::string> ids_;  // index → device id
  std::vector<AdvertiseKeys> keys_;
  RoundShape shape_;
  std::unique_ptr<Graph> graph_;
  std::vector<std::optional<ShareKeys>> shares_;   // U2: present
  std::vector<std::optional<MaskedInput>> masked_; // U3: present
  std::vector<uint32_t> survivors_;
  std::vector<std::optional<Unmask>> unmasks_;     // U4: present
};

}  // namespace pocketllm::secagg
