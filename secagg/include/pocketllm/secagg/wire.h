// The JSON of the secure-aggregation messages (docs/protocol.md §9): bytes as lower-case hex, 64-bit
// words as 16 hex digits, indices as numbers. Readers check every field's type, length and range, refuse
// unknown fields, and never throw; what they accept is well-formed, not yet valid for a round (the state
// machines check that).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "pocketllm/common/status.h"
#include "pocketllm/secagg/messages.h"

namespace pocketllm::secagg {

// Round parameters a device needs (the round's "secagg" object; phase and deadline are the server's).
nlohmann::json to_json(const RoundConfig& c);
Result<RoundConfig> parse_round_config(const nlohmann::json& j);

nlohmann::json to_json(const AdvertiseKeys& m);
Result<AdvertiseKeys> parse_advertise_keys(const nlohmann::json& j);
nlohmann::json to_json(const Roster& m);
Result<Roster> parse_roster(const nlohmann::json& j);
// Device → server: the sealed shares, one per neighbour ("from" is the sender's own index).
nlohmann::json to_json(const ShareKeys& m);
Result<ShareKeys> parse_share_keys(const nlohmann::json& j);
// Server → device: the sealed shares addressed to it.
nlohmann::json inbox_to_json(const std::vector<EncryptedShare>& inbox);
Result<std::vector<EncryptedShare>> parse_inbox(const nlohmann::json& j);
nlohmann::json to_json(const MaskedInput& m);
Result<MaskedInput> parse_masked_input(const nlohmann::json& j);
nlohmann::json to_json(const SurvivorList& m);
Result<SurvivorList> parse_survivors(const nlohmann::json& j);
nlohmann::json to_json(const Unmask& m);
Result<Unmask> parse_unmask(const nlohmann::json& j);

// The largest list any message may carry (a roster's neighbours, an inbox, revealed shares): the degree cap.
constexpr size_t kMaxListed = 254;
constexpr size_t kMaxWords = 4097;  // input_length for tau up to 4096

std::string bytes_to_hex(const uint8_t* data, size_t n);
bool bytes_from_hex(const std::string& hex, size_t n, uint8_t* out);

}  // namespace pocketllm::secagg
