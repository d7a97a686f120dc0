// The status page (/ui) and its data (/ui/status.json): tasks, their latest rounds with participation,
// dropouts and late submissions, the loss curve devices reported, ε spent when DP is on, and the devices.
// The page is one self-contained HTML document (no external assets, strict CSP); it holds no data
// itself: its script reads /ui/status.json with the admin token the operator types in (or passes once
// in the URL fragment, #token=…, which never reaches the server's logs), kept in sessionStorage.
#include "http_util.h"
#include "service_internal.h"

namespace pocketllm::server {

using nlohmann::json;

namespace {

const char* kPage = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pocketllm server</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2433;background:#f7f8fa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.muted{color:#667085} .card{background:#fff;border:1px solid #e4e7ec;border-radius:8px;padding:16px;margin:12px 0}
table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:4px 10px;border-bottom:1px solid #eef0f3}
th{font-weight:600;color:#475467} .applied{color:#067647} .abandoned{color:#b42318} .open{color:#175cd3}
svg{background:#fff;border:1px solid #eef0f3} #signin{display:none} .err{color:#b42318}
</style></head>
<body>
<h1>pocketllm server</h1>
<div id="summary" class="muted">loading…</div>
<form id="signin" class="card"><label>Admin token <input id="token" type="password" size="40" autocomplete="off"></label>
<button>Show status</button> <span id="why" class="err"></span></form>
<div id="tasks"></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
if (location.hash.startsWith("#token=")) {
  sessionStorage.setItem("pllm_admin", decodeURIComponent(location.hash.slice(7)));
  history.replaceState(null, "", location.pathname);
}
$("signin").addEventListener("submit", (e) => { e.preventDefault(); sessionStorage.setItem("pllm_admin", $("token").value); load(); });
function curve(points) {
  const w = 520, h = 140, pad = 24;
  if (points.length < 2) return '<p class="muted">the loss curve appears after two rounds with reported losses</p>';
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => pad + (w - 2 * pad) * (x - x0) / Math.max(1e-9, x1 - x0);
  const sy = (y) => h - pad - (h - 2 * pad) * (y - y0) / Math.max(1e-9, y1 - y0);
  const line = points.map((p) => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" ");
  return `<svg class="loss" width="${w}" height="${h}" role="img" aria-label="mean reported loss by round">` +
    `<polyline fill="none" stroke="#175cd3" stroke-width="2" points="${line}"/>` +
    `<text x="${pad}" y="14" font-size="11" fill="#667085">loss ${y1.toFixed(3)}</text>` +
    `<text x="${pad}" y="${h - 6}" font-size="11" fill="#667085">${y0.toFixed(3)} · rounds ${x0}–${x1}</text></svg>`;
}
function render(s) {
  $("signin").style.display = "none";
  const role = s.leading === null ? "single server" : (s.leading ? "replica, leading" : "replica, following");
  $("summary").innerHTML = `${esc(s.store)} · ${role} · devices: <b id="devices-active">${s.devices.active}</b> active, ` +
    `${s.devices.revoked} revoked · ${s.tasks.length} task(s) · ${new Date(s.server_time_ms).toISOString()}`;
  $("tasks").innerHTML = s.tasks.map((t) => {
    const p = t.privacy ? `<p>ε spent <b class="epsilon">${t.privacy.epsilon_spent.toFixed(3)}</b> of ${t.privacy.epsilon_target}` +
      ` (δ ${t.privacy.delta}), ${t.privacy.rounds_left} round(s) left, ${esc(t.privacy.state)}</p>` : "";
    const rows = t.rounds.slice().reverse().map((r) => `<tr class="round"><td>${r.round}</td><td class="${esc(r.state)}">${esc(r.state)}</td>` +
      `<td>${r.submissions}</td><td>${r.dropouts === null ? "–" : r.dropouts}</td><td>${r.late}</td>` +
      `<td>${r.loss === null ? "–" : r.loss.toFixed(4)}</td></tr>`).join("");
    const pts = t.rounds.filter((r) => r.loss !== null).map((r) => [r.round, r.loss]);
    return `<div class="card task" id="task-${esc(t.id)}"><h2>${esc(t.id)}</h2><p class="muted">version ${t.version} · ` +
      `round ${t.round} · ${t.tau} seeds a round${t.seed_groups > 1 ? ` for each of ${t.seed_groups} seed groups` : ""}</p>${p}${curve(pts)}<table><thead><tr><th>round</th><th>state</th>` +
      `<th>submissions</th><th>dropouts</th><th>late</th><th>mean loss</th></tr></thead><tbody>${rows}</tbody></table></div>`;
  }).join("");
}
async function load() {
  const token = sessionStorage.getItem("pllm_admin");
  if (!token) { $("signin").style.display = "block"; $("summary").textContent = "sign in with the admin token"; return; }
  try {
    const r = await fetch("/ui/status.json", {headers: {Authorization: "Bearer " + token}, cache: "no-store"});
    if (r.status === 401 || r.status === 403) { sessionStorage.removeItem("pllm_admin"); $("why").textContent = "that token was refused";
      $("signin").style.display = "block"; return; }
    render(await r.json());
  } catch (e) { $("summary").textContent = "the server did not answer: " + e; }
}
load();
setInterval(() => { if (sessionStorage.getItem("pllm_admin")) load(); }, 2000);
</script></body></html>
)html";

}  // namespace

HttpResponse Service::ui_page() {
  HttpResponse r;
  r.content_type = "text/html; charset=utf-8";
  r.body = kPage;
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
                         "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse Service::ui_status() {
  std::lock_guard<std::mutex> lock(mu_);
  // Replicas: what the store holds (every replica's enrolments and submissions), not what this one saw.
  std::unique_lock<std::mutex> store_lock(store_mu_, std::defer_lock);
  if (store_->shared()) store_lock.lock();
  uint64_t revoked = 0;
  for (const auto& [id, d] : devices_) revoked += d.revoked;
  uint64_t active = devices_.size() - revoked;
  if (store_->shared())
    if (auto counts = store_->count_devices()) std::tie(active, revoked) = counts.value();
  json tasks = json::array();
  for (auto& [id, t] : tasks_) {
    const auto& all = t->rounds.rounds();
    json rounds = json::array();
    for (size_t i = all.size() > 30 ? all.size() - 30 : 0; i < all.size(); ++i) {
      const Round& r = all[i];
      json row = {{"round", r.id}, {"state", round_state_name(r.state)}, {"submissions", r.submission_count()},
                  {"late", 0}, {"dropouts", nullptr}, {"loss", nullptr}};
      if (store_->shared() && r.state == RoundState::kOpen)
        if (auto n = store_->count_submissions(id, r.id)) row["submissions"] = n.value();
      if (auto a = t->activity.find(r.id); a != t->activity.end()) {
        row["late"] = a->second.late;
        if (a->second.loss_count) row["loss"] = a->second.loss_sum / static_cast<double>(a->second.loss_count);
        if (r.state != RoundState::kOpen) {  // fetched the round and never submitted to it
          size_t gone = 0;
          for (const auto& d : a->second.fetched) gone += !a->second.submitted.count(d);
          row["dropouts"] = gone;
        }
      }
      rounds.push_back(row);
    }
    json privacy = nullptr;
    if (t->spec.policy.privacy.enabled()) {
      const PrivacyStatus p = t->rounds.privacy();
      privacy = {{"epsilon_spent", p.epsilon_spent}, {"epsilon_target", t->spec.policy.privacy.target_epsilon},
                 {"delta", t->spec.policy.privacy.delta}, {"rounds_left", p.rounds_left}, {"state", p.exhausted ? "budget_spent" : "active"}};
    }
    tasks.push_back({{"id", id}, {"version", t->rounds.version()}, {"round", t->rounds.current() ? t->rounds.current()->id : 0},
                     {"tau", t->spec.policy.tau}, {"seed_groups", t->spec.policy.seed_groups}, {"rounds", rounds}, {"privacy", privacy}});
  }
  json out = {{"server_time_ms", now_ms()}, {"store", store_->describe()},
              {"leading", store_->shared() ? json(leading_ == 1) : json(nullptr)},
              {"devices", {{"active", active}, {"revoked", revoked}}}, {"tasks", tasks}};
  HttpResponse r = json_response(200, out);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace pocketllm::server
