#include "pocketllm/secagg/device_round.h"

#include <algorithm>
#include <set>
#include <string>

#include "keys.h"
#include "pocketllm/secagg/shamir.h"

namespace pocketllm::secagg {

using detail::pair_info;

Result<std::unique_ptr<DeviceRound>> DeviceRound::create(const RoundConfig& config) {
  std::unique_ptr<DeviceRound> d(new DeviceRound(config));
  auto enc = x25519_generate();
  auto mask = x25519_generate();
  if (!enc) return enc.status();
  if (!mask) return mask.status();
  d->enc_ = *enc;
  d->mask_ = *mask;
  d->self_seed_ = random_key();
  return d;
}

DeviceRound::~DeviceRound() {
  secure_wipe(enc_.secret.data(), enc_.secret.size());
  secure_wipe(mask_.secret.data(), mask_.secret.size());
  secure_wipe(self_seed_.data(), self_seed_.size());
  for (auto& [owner, h] : held_) {
    secure_wipe(h.mask_share.data(), h.mask_share.size());
    secure_wipe(h.self_share.data(), h.self_share.size());
  }
}

Status DeviceRound::fail(Status s) {
  step_ = Step::kFailed;
  return s;
}

AdvertiseKeys DeviceRound::advertise() {
  if (step_ == Step::kAdvertise) step_ = Step::kShareKeys;
  return {enc_.public_key, mask_.public_key};
}

Result<ShareKeys> DeviceRound::share_keys(const Roster& roster) {
  if (step_ != Step::kShareKeys) return fail(invalid_argument("secagg: share_keys out of order"));
  auto shape = round_shape(config_, roster.n);
  if (!shape) return fail(shape.status());
  if (roster.degree != shape->degree || roster.share_threshold != shape->share_threshold || roster.index >= roster.n)
    return fail(mismatch("secagg: the roster's degree, threshold or index disagree with the round's configuration"));
  graph_ = std::make_unique<Graph>(config_.graph_seed, roster.n, shape->degree);
  const std::vector<uint32_t> expected = graph_->neighbours(roster.index);
  if (roster.neighbours.size() != expected.size())
    return fail(mismatch("secagg: the roster lists " + std::to_string(roster.neighbours.size()) + " neighbours, the graph has " +
                         std::to_string(expected.size())));
  std::set<Key32> keys = {enc_.public_key, mask_.public_key};
  for (size_t i = 0; i < expected.size(); ++i) {
    const Roster::Peer& p = roster.neighbours[i];
    if (p.index != expected[i]) return fail(mismatch("secagg: the roster's neighbours are not the graph's"));
    // A repeated key would let one party stand in for two (or hand a device its own key back).
    if (!keys.insert(p.enc_public).second || !keys.insert(p.mask_public).second)
      return fail(invalid_argument("secagg: the roster repeats a public key"));
  }
  roster_ = roster;
  shape_ = *shape;
  const Bytes mask_secret(mask_.secret.begin(), mask_.secret.end());
  const Bytes self_secret(self_seed_.begin(), self_seed_.end());
  auto mask_shares = shamir_split(mask_secret, shape_.share_threshold, shape_.degree);
  auto self_shares = shamir_split(self_secret, shape_.share_threshold, shape_.degree);
  if (!mask_shares) return fail(mask_shares.status());
  if (!self_shares) return fail(self_shares.status());
  ShareKeys out;
  const X25519Secret enc(enc_.secret);
  for (size_t i = 0; i < expected.size(); ++i) {
    const Roster::Peer& p = roster.neighbours[i];
    auto dh = enc.agree(p.enc_public);
    if (!dh) return fail(dh.status());
    const Key32 key = hkdf_sha256(*dh, pair_info(detail::kEncLabel, config_.round_id, roster.index, p.index));
    Bytes plain = (*mask_shares)[i].y;  // share point i + 1 = p's place in my neighbour list
    plain.insert(plain.end(), (*self_shares)[i].y.begin(), (*self_shares)[i].y.end());
    out.shares.push_back({roster.index, p.index, aead_seal(key, detail::share_aad(config_.round_id, roster.index, p.index), plain)});
    secure_wipe(plain.data(), plain.size());
  }
  step_ = Step::kMaskedInput;
  return out;
}

Result<MaskedInput> DeviceRound::masked_input(const std::vector<uint64_t>& input, const std::vector<EncryptedShare>& inbox) {
  if (step_ != Step::kMaskedInput) return fail(invalid_argument("secagg: masked_input out of order"));
  if (input.size() != input_length(config_.input))
    return fail(invalid_argument("secagg: the input has " + std::to_string(input.size()) + " words, the round " +
                                 std::to_string(input_length(config_.input))));
  const X25519Secret enc(enc_.secret);
  for (const EncryptedShare& e : inbox) {
    const uint8_t point = graph_->share_point(e.from, roster_.index);
    // (Whom it is for is not read from the message: a share sealed to another device fails to open, its
    // associated data naming this device as the receiver.)
    if (point == 0 || held_.count(e.from))
      return fail(invalid_argument("secagg: a share in the inbox is not from a neighbour, or repeated"));
    const auto peer = std::lower_bound(roster_.neighbours.begin(), roster_.neighbours.end(), e.from,
                                       [](const Roster::Peer& p, uint32_t i) { return p.index < i; });
    auto dh = enc.agree(peer->enc_public);
    if (!dh) return fail(dh.status());
    const Key32 key = hkdf_sha256(*dh, pair_info(detail::kEncLabel, config_.round_id, e.from, roster_.index));
    auto plain = aead_open(key, detail::share_aad(config_.round_id, e.from, roster_.index), e.sealed);
    if (!plain) return fail(plain.status());
    if (plain->size() != 64) return fail(corrupt("secagg: a share has the wrong length"));
    Held& h = held_[e.from];
    std::copy(plain->begin(), plain->begin() + 32, h.mask_share.begin());
    std::copy(plain->begin() + 32, plain->end(), h.self_share.begin());
    secure_wipe(plain->data(), plain->size());
  }
  if (held_.size() < shape_.share_threshold)
    return fail(out_of_range("secagg: only " + std::to_string(held_.size()) + " neighbours shared keys, " +
                             std::to_string(shape_.share_threshold) + " needed: leaving the round"));
  MaskedInput out{input};
  prg_add(self_seed_, 1, &out.y);
  const X25519Secret mask(mask_.secret);
  for (const auto& [owner, h] : held_) {
    const auto peer = std::lower_bound(roster_.neighbours.begin(), roster_.neighbours.end(), owner,
                                       [](const Roster::Peer& p, uint32_t i) { return p.index < i; });
    auto dh = mask.agree(peer->mask_public);
    if (!dh) return fail(dh.status());
    prg_add(hkdf_sha256(*dh, pair_info(detail::kMaskLabel, config_.round_id, roster_.index, owner)),
            detail::pair_sign(roster_.index, owner), &out.y);
  }
  step_ = Step::kUnmask;
  return out;
}

Result<Unmask> DeviceRound::unmask(const SurvivorList& list) {
  if (step_ != Step::kUnmask) return fail(invalid_argument("secagg: unmask out of order (a device answers once)"));
  const std::vector<uint32_t>& survivors = list.survivors;
  if (!std::is_sorted(survivors.begin(), survivors.end()) ||
      std::adjacent_find(survivors.begin(), survivors.end()) != survivors.end() ||
      (!survivors.empty() && survivors.back() >= roster_.n))
    return fail(invalid_argument("secagg: the survivor list is not ascending distinct indices of this round"));
  // Fewer survivors than t and the sum would say too much about each of them: refuse to help unmask it.
  if (list.count < config_.min_survivors || list.count < survivors.size() || list.count > roster_.n)
    return fail(out_of_range("secagg: " + std::to_string(list.count) + " survivors (" + std::to_string(survivors.size()) +
                             " listed), the round needs " + std::to_string(config_.min_survivors)));
  if (!std::binary_search(survivors.begin(), survivors.end(), roster_.index))
    return fail(mismatch("secagg: this device is not among the survivors it was sent"));
  Unmask out;
  for (const auto& [owner, h] : held_) {
    const bool survived = std::binary_search(survivors.begin(), survivors.end(), owner);
    const Key32& s = survived ? h.self_share : h.mask_share;
    out.shares.push_back({owner, survived, Bytes(s.begin(), s.end())});
  }
  step_ = Step::kDone;
  return out;
}

}  // namespace pocketllm::secagg
