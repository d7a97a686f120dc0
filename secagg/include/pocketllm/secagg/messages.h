// The messages of one secure-aggregation round (docs/secagg.md §5), in memory. The wire form (JSON, base64)
// lives in the protocol module; the state machines here take and give these.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pocketllm/secagg/crypto.h"
#include "pocketllm/secagg/encoding.h"

namespace pocketllm::secagg {

// What every participant of a round knows before it starts (the server publishes it with the round).
struct RoundConfig {
  uint64_t round_id = 0;        // binds keys, masks and ciphertexts to this round of this task
  uint64_t graph_seed = 0;      // the SecAgg+ graph's permutation
  uint32_t min_survivors = 2;   // t: a phase closing with fewer participants abandons the round
  uint32_t degree = 0;          // k, neighbours per device; 0 = default_degree(n)
  uint32_t share_threshold = 0; // shares needed to rebuild a secret; 0 = default_share_threshold(k)
  InputSpec input;
};

// Phase 1, device → server: its two X25519 public keys (encryption of shares; pairwise masks).
struct AdvertiseKeys {
  Key32 enc_public{};
  Key32 mask_public{};
};

// Server → device at the close of phase 1: the device's place in the round and its neighbours' keys.
struct Roster {
  uint32_t n = 0;                 // participants that advertised keys
  uint32_t degree = 0;            // k as used (even, ≤ n − 1, ≤ 254)
  uint32_t share_threshold = 0;   // t_s
  uint32_t index = 0;             // this device, 0..n−1 (the participants sorted by device id)
  struct Peer {
    uint32_t index = 0;
    Key32 enc_public{};
    Key32 mask_public{};
  };
  std::vector<Peer> neighbours;   // ascending index: exactly the graph's neighbours(index)
};

// Phase 2, device → server → holder: the holder's shares of the sender's mask key and self-mask seed,
// sealed to the holder. sealed = ChaCha20-Poly1305 nonce ‖ ciphertext ‖ tag of 64 bytes (kSealedShareSize in all).
struct EncryptedShare {
  uint32_t from = 0;
  uint32_t to = 0;
  Bytes sealed;
};
constexpr size_t kSealedShareSize = 64 + kAeadOverhead;

// Phase 2, device → server: one EncryptedShare per neighbour, in the neighbours' order (the server sets
// `from` to the sender it authenticated).
struct ShareKeys {
  std::vector<EncryptedShare> shares;
};

// Phase 3, device → server: the masked input y, input_length(spec) words.
struct MaskedInput {
  std::vector<uint64_t> y;
};

// Server → device at the close of phase 3: which of the device's neighbours survived (sent their
// masked input), the device itself among them, and how many survived in all.
struct SurvivorList {
  std::vector<uint32_t> survivors;  // ascending: the device and its surviving neighbours
  uint32_t count = 0;               // |U3|
};

// Phase 4, device → server: for each neighbour whose shares it holds, the share of its self-mask seed
// (the neighbour is among the survivors) or of its mask key (it is not) — never both.
struct RevealedShare {
  uint32_t owner = 0;
  bool self_mask = false;
  Bytes share;  // 32 bytes: the y of the Shamir share; the point is the holder's share_point
};
struct Unmask {
  std::vector<RevealedShare> shares;
};

}  // namespace pocketllm::secagg

namespace pocketllm::secagg {

// The graph degree and share threshold a round of n participants uses (defaults resolved, k made even and
// ≤ n − 1); refused when the round cannot work: t < 2, n < t, k > 254 (Shamir points are bytes) or a share
// threshold outside 1..k. Checks the input encoding's capacity for n too.
struct RoundShape {
  uint32_t degree = 0;
  uint32_t share_threshold = 0;
};
Result<RoundShape> round_shape(const RoundConfig& config, uint32_t n);

}  // namespace pocketllm::secagg
