// The round writes both store backends share: each checks, inside its transaction and under the
// backend's lock on the round, that the round is still open, so a round leaves the open state once
// whatever the number of servers writing.
#include "pocketllm/server/store.h"

namespace pocketllm::server {

Result<TaskHead> Store::task_head(const std::string& task) {
  auto h = heads(&task);
  if (!h) return h.status();
  auto it = h->find(task);
  return it == h->end() ? TaskHead{} : it->second;
}

Status Store::update_round(const std::string& task, const Round& round, const Round* next) {
  return in_transaction([&]() -> Status {
    auto state = lock_round(task, round.id);
    if (!state) return state.status();
    if (!state->empty() && state.value() != "open") return mismatch("round " + std::to_string(round.id) + " is already " + state.value());
    POCKETLLM_RETURN_IF_ERROR(put_round(task, round));
    return next ? put_round(task, *next) : Status::ok();
  });
}

Status Store::apply_round(const std::string& task, const Round& round, const std::vector<UpdateEntry>& entries,
                          uint64_t first_version, const Round* next) {
  return in_transaction([&]() -> Status {
    auto state = lock_round(task, round.id);
    if (!state) return state.status();
    if (state.value() != "open") return mismatch("round " + std::to_string(round.id) + " is not open in the store");
    return write_applied(task, round, entries, first_version, next);
  });
}

Status Store::close_round(const std::string& task, uint64_t round, const Decide& decide) {
  return in_transaction([&]() -> Status {
    auto state = lock_round(task, round);
    if (!state) return state.status();
    if (state.value() != "open") return mismatch("round " + std::to_string(round) + " is not open in the store");
    auto subs = committed_submissions(task, round);
    if (!subs) return subs.status();
    auto closing = decide(std::move(subs.value()));
    if (!closing) return closing.status();
    if (!closing->changed) return Status::ok();
    const Round* next = closing->next ? &*closing->next : nullptr;
    return write_applied(task, closing->round, closing->entries, closing->first_version, next);
  });
}

}  // namespace pocketllm::server
