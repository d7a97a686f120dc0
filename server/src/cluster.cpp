// Replicas on a shared store (PostgreSQL): what a server does on each tick so that several of them
// behave as one (docs/server.md "Replicas"). Every replica accepts enrolments, submissions and reads;
// it refreshes the tasks, rounds and log from the store when another server changed them, and the one
// replica that holds the store's leader lock closes the rounds that are due — under the store's lock on
// the round, from the submissions every replica committed. A failed or lost close leaves the round open
// in the store, where the next leader finds it.
#include "service_internal.h"

namespace pocketllm::server {

namespace {

TaskHead head_of(const TaskRounds& rounds) {
  TaskHead h;
  if (const Round* r = rounds.current()) {
    h.round = r->id;
    h.state = round_state_name(r->state);
    h.deadline_ms = r->deadline_ms;
    h.extensions = r->extensions;
    h.base_version = r->base_version;
  }
  return h;
}

}  // namespace

void Service::cluster_tick(int64_t now) {
  std::lock_guard<std::mutex> store_lock(store_mu_);
  // Nothing changed in the store since the last tick: memory is current; only due rounds need a look.
  auto changes = store_->change_counter();
  if (!changes) {
    store_failed("reading the store's change counter (this tick is skipped)", changes.status());
    return;
  }
  const bool lead = store_->try_lead();
  if (leading_ < 0 || lead != (leading_ == 1)) {
    leading_ = lead ? 1 : 0;
    log(lead ? "leading: this server closes the rounds" : "following: another server closes the rounds");
  }
  if (changes.value() != seen_changes_) {
    if (!refresh_all(now)) return;
    seen_changes_ = changes.value();
  }
  if (lead)
    for (auto& [id, task] : tasks_) close_due(*task, now);
}

bool Service::refresh_all(int64_t now) {
  auto heads = store_->task_heads();
  if (!heads) {
    log("store unavailable: " + heads.status().message());
    return false;
  }
  // Tasks another server created.
  bool unknown = false;
  for (const auto& [id, head] : heads.value()) unknown = unknown || !tasks_.count(id);
  if (unknown) {
    auto stored = store_->load_tasks();
    if (!stored) return false;
    for (const StoredTask& t : stored.value()) {
      if (tasks_.count(t.id)) continue;
      Status s = load_task(t, true);
      log(s ? "task " + t.id + " loaded from the store (created elsewhere)" : "task " + t.id + ": cannot load: " + s.message());
    }
  }
  // Devices revoked through another server (a window, not a cursor: the clocks of replicas differ).
  if (auto revoked = store_->revoked_since(now - 5 * 60 * 1000)) {
    for (const std::string& id : revoked.value())
      if (auto d = devices_.find(id); d != devices_.end()) d->second.revoked = true;
  }
  bool all = true;
  for (auto& [id, task] : tasks_) {
    auto head = heads->find(id);
    Status s = head == heads->end() || head->second == head_of(task->rounds) ? Status::ok() : refresh_task(*task, true);
    if (!s) {
      log("task " + id + ": refresh failed: " + s.message());
      all = false;
    }
  }
  return all;
}

Status Service::refresh_task(Task& t, bool force) {
  auto head = store_->task_head(t.spec.id);
  if (!head) return head.status();
  if (!force && head.value() == head_of(t.rounds)) return Status::ok();
  auto rounds = store_->load_rounds(t.spec.id);
  if (!rounds) return rounds.status();
  auto entries = store_->load_log(t.spec.id);
  if (!entries) return entries.status();
  return t.rounds.restore(std::move(rounds.value()), std::move(entries.value()));
}

void Service::close_due(Task& t, int64_t now) {
  const Round* cur = t.rounds.current();
  if (!cur || cur->state != RoundState::kOpen) return;
  const uint64_t id = cur->id;
  if (commit_pending(t.spec.id, id)) return;
  const size_t goal = t.spec.policy.goal_submissions;
  if (now < cur->deadline_ms) {
    if (goal == 0) return;
    auto count = store_->count_submissions(t.spec.id, id);
    if (!count || count.value() < goal) return;
  }
  std::string outcome;
  size_t submissions = 0;
  Status s = store_->close_round(t.spec.id, id, [&](std::vector<Submission> committed) -> Result<RoundClosing> {
    t.rounds.adopt_submissions(id, std::move(committed));
    const uint32_t extensions_before = t.rounds.round(id)->extensions;
    const uint64_t version_before = t.rounds.version();
    auto applied = t.rounds.tick(now);
    if (!applied) return applied.status();
    RoundClosing c;
    const Round* r = t.rounds.round(id);
    submissions = r->submission_count();
    if (r->state == RoundState::kOpen) {
      if (r->extensions == extensions_before) return c;  // not due after all
      outcome = "extended";
    } else {
      auto next = t.rounds.open_round(now);
      const bool budget_spent = !next && next.status().code() == StatusCode::kResourceExhausted;
      if (!next && !budget_spent) return next.status();
      if (next) c.next = next.value();
      r = t.rounds.round(id);  // opening may have moved the rounds
      outcome = r->state == RoundState::kApplied ? "applied" : "abandoned" + (r->abandon_reason.empty() ? "" : " (" + r->abandon_reason + ")");
      c.entries = applied.value();
      c.first_version = version_before;
    }
    c.changed = true;
    c.round = *r;
    c.round.submissions.clear();  // the store writes the round's state, not its submissions again
    return c;
  });
  if (!s) {
    // Memory ran ahead of the store (the round closed elsewhere, or the write failed): rebuild from it.
    log("task " + t.spec.id + " round " + std::to_string(id) + ": not closed here (" + s.message() + "); refreshing");
    Status r = refresh_task(t, true);
    if (!r) {
      // The store went away mid-close: memory may hold the next round the store never got. The change
      // counter will not move for it, so the next tick must compare every task with the store.
      log("task " + t.spec.id + ": refresh failed: " + r.message());
      seen_changes_ = kChangesUnseen;
    }
    return;
  }
  if (outcome.empty()) return;
  metrics_.count_round(outcome.substr(0, outcome.find(' ')));
  if (outcome != "extended") t.rounds.release_submissions(id);
  log("task " + t.spec.id + " round " + std::to_string(id) + " " + outcome + " with " + std::to_string(submissions) +
      " submissions; version " + std::to_string(t.rounds.version()));
}

bool Service::find_device_in_store(const std::string& id) {
  std::lock_guard<std::mutex> store_lock(store_mu_);
  auto d = store_->load_device(id);
  if (!d) return false;
  devices_[id] = {d->secret_sha256, d->revoked, d->token_sha256};
  return true;
}

}  // namespace pocketllm::server
