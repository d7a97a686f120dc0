#include "pocketllm/secagg/aggregator_round.h"

#include <algorithm>
#include <thread>

#include "keys.h"
#include "pocketllm/secagg/shamir.h"

namespace pocketllm::secagg {
namespace {

template <class T>
uint32_t count_present(const std::vector<std::optional<T>>& v) {
  return static_cast<uint32_t>(std::count_if(v.begin(), v.end(), [](const auto& o) { return o.has_value(); }));
}

}  // namespace

const char* AggregatorRound::phase_name(Phase p) {
  switch (p) {
    case Phase::kAdvertise: return "advertise_keys";
    case Phase::kShareKeys: return "share_keys";
    case Phase::kMaskedInput: return "masked_input";
    case Phase::kUnmask: return "unmask";
    case Phase::kFinishing: return "finishing";
    case Phase::kDone: return "done";
    case Phase::kAbandoned: return "abandoned";
  }
  return "?";
}

Result<std::unique_ptr<AggregatorRound>> AggregatorRound::create(const RoundConfig& config, uint32_t max_participants) {
  auto shape = round_shape(config, max_participants);
  if (!shape) return shape.status();
  return std::unique_ptr<AggregatorRound>(new AggregatorRound(config, max_participants));
}

uint32_t AggregatorRound::pending() const {
  switch (phase()) {
    case Phase::kAdvertise: return max_participants_ - static_cast<uint32_t>(advertised_.size());
    case Phase::kShareKeys: return participants() - count_present(shares_);
    case Phase::kMaskedInput: return count_present(shares_) - count_present(masked_);
    case Phase::kUnmask: return count_present(masked_) - count_present(unmasks_);
    default: return 0;
  }
}

uint32_t AggregatorRound::received() const {
  switch (phase()) {
    case Phase::kAdvertise: return static_cast<uint32_t>(advertised_.size());
    case Phase::kShareKeys: return count_present(shares_);
    case Phase::kMaskedInput: return count_present(masked_);
    case Phase::kUnmask:
    case Phase::kFinishing: return count_present(unmasks_);
    default: return 0;
  }
}

Status AggregatorRound::abandon(const std::string& why) {
  abandon_reason_ = why;
  phase_.store(Phase::kAbandoned, std::memory_order_release);
  return out_of_range("secagg: round abandoned: " + why);
}

Status AggregatorRound::in_phase(Phase p, const char* what) const {
  const Phase now = phase();
  if (now != p)
    return mismatch(std::string("secagg: ") + what + " belongs to phase " + phase_name(p) + ", the round is in " + phase_name(now));
  return Status::ok();
}

Result<uint32_t> AggregatorRound::participant(const std::string& device) const {
  const auto i = index_of(device);
  if (!i) return not_found("secagg: " + device + " is not a participant of this round");
  return *i;
}

std::vector<std::string> AggregatorRound::advertised_devices() const {
  if (phase() != Phase::kAdvertise) return ids_;
  std::vector<std::string> out;
  for (const auto& [id, keys] : advertised_) out.push_back(id);
  return out;
}

std::optional<uint32_t> AggregatorRound::index_of(const std::string& device) const {
  const auto it = std::lower_bound(ids_.begin(), ids_.end(), device);
  if (it == ids_.end() || *it != device) return std::nullopt;
  return static_cast<uint32_t>(it - ids_.begin());
}

Status AggregatorRound::advertise(const std::string& device, const AdvertiseKeys& keys) {
  POCKETLLM_RETURN_IF_ERROR(in_phase(Phase::kAdvertise, "advertised keys"));
  if (advertised_.count(device)) return busy("secagg: " + device + " already advertised its keys this round");
  if (advertised_.size() >= max_participants_) return out_of_range("secagg: the round has its " + std::to_string(max_participants_) + " participants");
  if (device.empty()) return invalid_argument("secagg: an empty device id");
  if (keys.enc_public == keys.mask_public || seen_keys_.count(keys.enc_public) || seen_keys_.count(keys.mask_public))
    return invalid_argument("secagg: the advertised keys repeat a key already in this round");
  // A key no agreement works with would only fail later, in every neighbour's phase 2.
  if (!probe_->agree(keys.enc_public) || !probe_->agree(keys.mask_public))
    return invalid_argument("secagg: an advertised key is not a usable X25519 public key");
  advertised_[device] = keys;
  seen_keys_.insert(keys.enc_public);
  seen_keys_.insert(keys.mask_public);
  return Status::ok();
}

Status AggregatorRound::close_advertise() {
  POCKETLLM_RETURN_IF_ERROR(in_phase(Phase::kAdvertise, "closing key advertisement"));
  const uint32_t n = static_cast<uint32_t>(advertised_.size());
  if (n < config_.min_survivors)
    return abandon(std::to_string(n) + " devices advertised keys, " + std::to_string(config_.min_survivors) + " needed");
  auto shape = round_shape(config_, n);
  if (!shape) return abandon(shape.status().message());
  shape_ = *shape;
  for (const auto& [id, k] : advertised_) {  // std::map: ascending device id
    ids_.push_back(id);
    keys_.push_back(k);
  }
  advertised_.clear();
  graph_ = std::make_unique<Graph>(config_.graph_seed, n, shape_.degree);
  shares_.assign(n, std::nullopt);
  masked_.assign(n, std::nullopt);
  unmasks_.assign(n, std::nullopt);
  phase_.store(Phase::kShareKeys, std::memory_order_release);
  return Status::ok();
}

Result<Roster> AggregatorRound::roster(const std::string& device) const {
  if (phase() == Phase::kAdvertise || phase() == Phase::kAbandoned || phase() == Phase::kFinishing) return in_phase(Phase::kShareKeys, "the roster");
  auto i = participant(device);
  if (!i) return i.status();
  Roster r;
  r.n = participants();
  r.degree = shape_.degree;
  r.share_threshold = shape_.share_threshold;
  r.index = *i;
  for (uint32_t j : graph_->neighbours(*i)) r.neighbours.push_back({j, keys_[j].enc_public, keys_[j].mask_public});
  return r;
}

Status AggregatorRound::share_keys(const std::string& device, const ShareKeys& msg) {
  POCKETLLM_RETURN_IF_ERROR(in_phase(Phase::kShareKeys, "shared keys"));
  auto i = participant(device);
  if (!i) return i.status();
  if (shares_[*i]) return busy("secagg: " + device + " already shared its keys this round");
  const std::vector<uint32_t> nb = graph_->neighbours(*i);
  if (msg.shares.size() != nb.size())
    return invalid_argument("secagg: " + std::to_string(msg.shares.size()) + " sealed shares, one per neighbour (" +
                            std::to_string(nb.size()) + ") expected");
  for (size_t k = 0; k < nb.size(); ++k) {
    const EncryptedShare& e = msg.shares[k];
    if (e.to != nb[k] || e.sealed.size() != kSealedShareSize)
      return invalid_argument("secagg: sealed share " + std::to_string(k) + " is not to neighbour " + std::to_string(nb[k]) + " of " +
                              device + " with " + std::to_string(kSealedShareSize) + " bytes");
  }
  shares_[*i] = msg;
  for (EncryptedShare& e : shares_[*i]->shares) e.from = *i;  // the sender is who the server authenticated
  return Status::ok();
}

// A phase closes into `next` with at least min_survivors messages, else the round is abandoned.
Status AggregatorRound::close_into(Phase next, size_t count, const char* what) {
  if (count < config_.min_survivors)
    return abandon(std::to_string(count) + " devices " + what + ", " + std::to_string(config_.min_survivors) + " needed");
  phase_.store(next, std::memory_order_release);
  return Status::ok();
}

Status AggregatorRound::close_share_keys() {
  POCKETLLM_RETURN_IF_ERROR(in_phase(Phase::kShareKeys, "closing key sharing"));
  return close_into(Phase::kMaskedInput, count_present(shares_), "shared keys");
}

Result<std::vector<EncryptedShare>> AggregatorRound::inbox(const std::string& device) const {
  if (phase() != Phase::kMaskedInput) return in_phase(Phase::kMaskedInput, "the inbox");
  auto i = participant(device);
  if (!i) return i.status();
  if (!shares_[*i]) return not_found("secagg: " + device + " did not share its keys this round");
  std::vector<EncryptedShare> out;
  for (uint32_t j : graph_->neighbours(*i)) {
    if (!shares_[j]) continue;
    for (const EncryptedShare& e : shares_[j]->shares)
      if (e.to == *i) out.push_back(e);
  }
  return out;
}

Status AggregatorRound::masked_input(const std::string& device, const MaskedInput& msg) {
  POCKETLLM_RETURN_IF_ERROR(in_phase(Phase::kMaskedInput, "a masked input"));
  auto i = participant(device);
  if (!i) return i.status();
  if (!shares_[*i]) return not_found("secagg: " + device + " did not share its keys, so its input cannot be unmasked");
  if (masked_[*i]) return busy("secagg: " + device + " already sent its masked input this round");
  if (msg.y.size() != input_length(config_.input))
    return invalid_argument("secagg: a masked input of " + std::to_string(msg.y.size()) + " words, " +
                            std::to_string(input_length(config_.input)) + " expected");
  masked_[*i] = msg;
  return Status::ok();
}

Status AggregatorRound::close_masked_input() {
  POCKETLLM_RETURN_IF_ERROR(in_phase(Phase::kMaskedInput, "closing masked input"));
  survivors_.clear();
  for (uint32_t i = 0; i < participants(); ++i)
    if (masked_[i]) survivors_.push_back(i);
  return close_into(Phase::kUnmask, survivors_.size(), "sent masked inputs");
}

Result<SurvivorList> AggregatorRound::survivors_for(const std::string& device) const {
  if (phase() != Phase::kUnmask) return in_phase(Phase::kUnmask, "the survivor list");
  auto i = participant(device);
  if (!i) return i.status();
  if (!masked_[*i]) return not_found("secagg: " + device + " is not among the survivors of this round");
  SurvivorList out;
  out.count = static_cast<uint32_t>(survivors_.size());
  for (uint32_t j : graph_->neighbours(*i))
    if (masked_[j]) out.survivors.push_back(j);
  out.survivors.insert(std::lower_bound(out.survivors.begin(), out.survivors.end(), *i), *i);
  return out;
}

Status AggregatorRound::check_unmask(uint32_t sender, const Unmask& msg) const {
  std::vector<uint32_t> expected;  // neighbours whose sealed shares the sender was given
  for (uint32_t j : graph_->neighbours(sender))
    if (shares_[j]) expected.push_back(j);
  if (msg.shares.size() != expected.size())
    return invalid_argument("secagg: " + std::to_string(msg.shares.size()) + " revealed shares, " + std::to_string(expected.size()) +
                            " expected (one per neighbour that shared keys)");
  std::vector<uint32_t> owners;
  for (const RevealedShare& r : msg.shares) {
    if (r.share.size() != 32) return invalid_argument("secagg: a revealed share must have 32 bytes");
    if (!std::binary_search(expected.begin(), expected.end(), r.owner))
      return invalid_argument("secagg: a revealed share of " + std::to_string(r.owner) + ", whose shares the device does not hold");
    const bool survived = std::binary_search(survivors_.begin(), survivors_.end(), r.owner);
    if (r.self_mask != survived)
      return invalid_argument("secagg: device " + std::to_string(r.owner) + (survived ? " survived: its self-mask share is due"
                                                                                       : " dropped: its mask-key share is due"));
    owners.push_back(r.owner);
  }
  std::sort(owners.begin(), owners.end());
  if (std::adjacent_find(owners.begin(), owners.end()) != owners.end()) return invalid_argument("secagg: a revealed share repeats an owner");
  return Status::ok();
}

Status AggregatorRound::unmask(const std::string& device, const Unmask& msg) {
  POCKETLLM_RETURN_IF_ERROR(in_phase(Phase::kUnmask, "revealed shares"));
  auto i = participant(device);
  if (!i) return i.status();
  if (!masked_[*i]) return not_found("secagg: " + device + " is not among the survivors of this round");
  if (unmasks_[*i]) return busy("secagg: " + device + " already revealed its shares this round");
  POCKETLLM_RETURN_IF_ERROR(check_unmask(*i, msg));
  unmasks_[*i] = msg;
  return Status::ok();
}

// The masks of one owner's secrets removed from `delta`: its self mask if it survived, else (dropped after
// sharing) the pairwise masks its surviving neighbours added for it, with its mask key rebuilt and checked
// against the key it advertised. An error names why the round cannot be unmasked.
Status AggregatorRound::remove_owner_masks(uint32_t u, const std::vector<uint32_t>& neighbours, const std::vector<Share>& revealed,
                                           std::vector<uint64_t>* delta) const {
  if (revealed.size() < shape_.share_threshold)
    return out_of_range("device " + std::to_string(u) + "'s secret has " + std::to_string(revealed.size()) + " shares, " +
                        std::to_string(shape_.share_threshold) + " needed");
  auto secret = shamir_combine(revealed, shape_.share_threshold);
  if (!secret) return secret.status();
  Key32 key;
  std::copy(secret->begin(), secret->end(), key.begin());
  if (masked_[u]) {
    prg_add(key, -1, delta);
    return Status::ok();
  }
  auto pair = x25519_from_secret(key);
  if (!pair || pair->public_key != keys_[u].mask_public)
    return corrupt("device " + std::to_string(u) + "'s rebuilt mask key does not match its advertised key");
  const X25519Secret mask_key(key);
  for (uint32_t v : neighbours) {
    if (!masked_[v]) continue;
    auto dh = mask_key.agree(keys_[v].mask_public);
    if (!dh) return dh.status();
    prg_add(hkdf_sha256(*dh, detail::pair_info(detail::kMaskLabel, config_.round_id, v, u)), -detail::pair_sign(v, u), delta);
  }
  return Status::ok();
}

// Removes every mask (docs/secagg.md §5.4). The owners are independent: large rounds split them over the
// machine's cores, each thread summing its own delta; the first failing owner (by index) abandons.
Status AggregatorRound::remove_masks(std::vector<uint64_t>* sum) {
  const uint32_t n = participants();
  // Each owner's neighbour list once (a holder's Shamir point is its place there), not once per share.
  std::vector<std::vector<uint32_t>> nb(n);
  for (uint32_t u = 0; u < n; ++u)
    if (shares_[u]) nb[u] = graph_->neighbours(u);
  std::vector<std::vector<Share>> revealed(n);  // owner → the shares revealed of its secret
  for (uint32_t h = 0; h < n; ++h) {
    if (!unmasks_[h]) continue;
    for (const RevealedShare& r : unmasks_[h]->shares) {
      const auto& list = nb[r.owner];  // check_unmask made sure h holds r.owner's shares
      const auto place = std::lower_bound(list.begin(), list.end(), h) - list.begin();
      revealed[r.owner].push_back({static_cast<uint8_t>(1 + place), r.share});
    }
  }
  const unsigned threads = n < 256 ? 1 : std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  std::vector<std::vector<uint64_t>> delta(threads, std::vector<uint64_t>(sum->size(), 0));
  std::vector<Status> failed(n);
  auto work = [&](unsigned t) {
    for (uint32_t u = t; u < n; u += threads)
      if (shares_[u]) failed[u] = remove_owner_masks(u, nb[u], revealed[u], &delta[t]);  // never shared: never masked with
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (uint32_t u = 0; u < n; ++u)
    if (!failed[u]) return abandon(failed[u].message());
  for (const auto& d : delta)
    for (size_t k = 0; k < sum->size(); ++k) (*sum)[k] += d[k];
  return Status::ok();
}

Status AggregatorRound::begin_finish() {
  POCKETLLM_RETURN_IF_ERROR(in_phase(Phase::kUnmask, "finishing"));
  return close_into(Phase::kFinishing, count_present(unmasks_), "revealed shares");
}

void AggregatorRound::compute() {
  if (phase() != Phase::kFinishing || computed()) return;
  std::vector<uint64_t> sum(input_length(config_.input), 0);
  for (uint32_t u : survivors_)
    for (size_t k = 0; k < sum.size(); ++k) sum[k] += masked_[u]->y[k];
  if (remove_masks(&sum)) {
    sum_ = std::move(sum);
    phase_.store(Phase::kDone, std::memory_order_release);
  }
  computed_.store(true, std::memory_order_release);
}

Result<std::vector<uint64_t>> AggregatorRound::take_sum() {
  if (!computed()) return in_phase(Phase::kDone, "the sum");
  if (phase() != Phase::kDone) return out_of_range("secagg: round abandoned: " + abandon_reason_);
  return std::move(sum_);
}

Result<std::vector<uint64_t>> AggregatorRound::finish() {
  POCKETLLM_RETURN_IF_ERROR(begin_finish());
  compute();
  return take_sum();
}

}  // namespace pocketllm::secagg
