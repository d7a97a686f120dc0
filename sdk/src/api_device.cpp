// Federated devices on a model in memory, over the app's transport callback or the built-in client.
#include <cmath>

#include "abi.h"
#include "builtin_transport.h"
#include "pocketllm/federation/device_session.h"

using namespace pllm_abi;

struct pllm_http_reply {
  pocketllm::TransportReply reply;
  bool set = false;
};

struct pllm_device {
  pllm_model* model = nullptr;
  std::unique_ptr<pocketllm::DeviceSession> session;
};

namespace {

// The app's HTTP stack behind the Transport interface. Counts the bytes of request and reply bodies.
class CallbackTransport : public pocketllm::Transport {
 public:
  CallbackTransport(pllm_transport_fn fn, void* user) : fn_(fn), user_(user) {}

  pocketllm::Result<pocketllm::TransportReply> request(const std::string& method, const std::string& target, const std::string& body,
                                                       const std::string& bearer) override {
    pllm_http_reply reply;
    sent_ += body.size() + target.size() + method.size();
    const pllm_status s = fn_(method.c_str(), target.c_str(), body.c_str(), body.size(), bearer.c_str(), &reply, user_);
    pocketllm::throw_if_cancelled();
    if (s == PLLM_ERR_MISMATCH) return pocketllm::mismatch("the app's transport refused the server's certificate");
    if (s == PLLM_ERR_CANCELLED) throw pocketllm::Cancelled();
    if (s != PLLM_OK) return pocketllm::io_error("the app's transport failed (" + std::string(pllm_status_string(s)) + ")");
    if (!reply.set) return pocketllm::io_error("the app's transport returned PLLM_OK without setting a reply (pllm_http_reply_set)");
    received_ += reply.reply.body.size();
    return std::move(reply.reply);
  }
  uint64_t bytes_sent() const override { return sent_; }
  uint64_t bytes_received() const override { return received_; }

 private:
  pllm_transport_fn fn_;
  void* user_;
  uint64_t sent_ = 0, received_ = 0;
};

pllm_status check_device_params(const pllm_device_params& p) {
  for (auto [s, what] : {std::pair{p.credentials_path, "credentials_path"}, {p.task_id, "task_id"}, {p.data_path, "data_path"},
                         {p.state_dir, "state_dir"}})
    if (pllm_status st = check_text(s, what, false); st != PLLM_OK) return st;
  for (auto [s, what] : {std::pair{p.server_url, "server_url"}, {p.ca_file, "ca_file"}, {p.pinned_sha256, "pinned_sha256"},
                         {p.enrolment_token, "enrolment_token"}})
    if (pllm_status st = check_optional_text(s, what); st != PLLM_OK) return st;
  if (!p.transport && (!p.server_url || !*p.server_url))
    return fail(PLLM_ERR_INVALID_ARGUMENT, "a device needs a transport callback or a server_url for the built-in client");
  if (p.timeout_ms < 0 || p.timeout_ms > 3600000) return fail(PLLM_ERR_INVALID_ARGUMENT, "timeout_ms must be 0..3600000");
  return PLLM_OK;
}

// Runs a device call; the device must hold its model.
template <class Fn>
pllm_status with_device(pllm_device* d, const pllm_control* control, Fn&& fn) {
  return guarded(control, [&] {
    if (!d || !d->session) return fail(PLLM_ERR_INVALID_ARGUMENT, "device is required");
    ModelCall call(d->model);
    if (pllm_status s = call.status(); s != PLLM_OK) return s;
    return fn(*d->session);
  });
}

}  // namespace

extern "C" {

pllm_status pllm_http_reply_set(pllm_http_reply* reply, int32_t http_status, const char* body, size_t body_len) {
  return guarded([&] {
    if (!reply || (!body && body_len > 0)) return fail(PLLM_ERR_INVALID_ARGUMENT, "reply and body are required");
    if (http_status < 100 || http_status > 599) return fail(PLLM_ERR_INVALID_ARGUMENT, "http_status must be 100..599");
    if (body_len > (size_t{1} << 30)) return fail(PLLM_ERR_OUT_OF_RANGE, "a reply body over 1 GiB is refused");
    reply->reply.status = http_status;
    reply->reply.body.assign(body ? body : "", body_len);
    reply->set = true;
    return PLLM_OK;
  });
}

pllm_device_params pllm_device_default_params(void) {
  pllm_device_params p{};
  p.struct_size = sizeof p;
  p.timeout_ms = 30000;
  return p;
}

pllm_status pllm_device_open(pllm_model* model, const pllm_device_params* params, const pllm_control* control, pllm_device** out) {
  if (out) *out = nullptr;
  return guarded(control, [&] {
    if (!out) return fail(PLLM_ERR_INVALID_ARGUMENT, "out is required");
    ModelCall call(model);
    if (pllm_status s = call.status(); s != PLLM_OK) return s;
    if (pllm_status s = check_model_free(model); s != PLLM_OK) return s;
    pllm_device_params p;
    if (pllm_status s = read_params(params, pllm_device_default_params(), &p, "pllm_device_params"); s != PLLM_OK) return s;
    if (pllm_status s = check_device_params(p); s != PLLM_OK) return s;
    pocketllm::DeviceConfig c;
    if (p.transport) {
      c.transport = std::make_unique<CallbackTransport>(p.transport, p.transport_user);
    } else {
      auto t = make_builtin_transport(p);
      if (!t) return fail(t.status());
      c.transport = std::move(t.value());
    }
    c.server_url = p.server_url ? p.server_url : "";
    c.credentials_file = p.credentials_path;
    c.enrolment_token = p.enrolment_token ? p.enrolment_token : "";
    c.task_id = p.task_id;
    c.model = &model->loaded;
    c.model_id = model->model_id;
    c.data_path = p.data_path;
    c.state_dir = p.state_dir;
    c.threads = model->n_threads;
    c.memory_budget_bytes = p.memory_budget_bytes;
    c.retry.on_retry = [](const pocketllm::RetryNotice& n) {
      log(PLLM_LOG_INFO, n.request + ": " + n.why + "; retry " + std::to_string(n.retry) + " of " + std::to_string(n.retries) +
                             " in " + std::to_string(n.wait_ms) + " ms");
    };
    auto session = pocketllm::DeviceSession::open(std::move(c));
    if (!session) return fail(session.status());  // the model stays with the caller
    auto d = std::make_unique<pllm_device>();
    d->model = model;
    d->session = std::move(session.value());
    model->holder = "a federated device";
    model->trained = true;
    *out = d.release();
    return PLLM_OK;
  });
}

void pllm_device_free(pllm_device* d) {
  if (!d) return;
  if (d->session) d->model->loaded = d->session->release_model();
  pllm_model* model = d->model;
  delete d;
  release_model_hold(model);
}

pllm_status pllm_device_sync(pllm_device* d, const pllm_control* control, uint64_t* out_version) {
  return with_device(d, control, [&](pocketllm::DeviceSession& s) {
    if (pocketllm::Status st = s.device().sync(); !st) return fail(st);
    if (out_version) *out_version = s.device().version();
    return PLLM_OK;
  });
}

pllm_status pllm_device_run_round(pllm_device* d, const pllm_control* control, bool* out_submitted, uint64_t* out_round) {
  return with_device(d, control, [&](pocketllm::DeviceSession& s) {
    if (!out_submitted) return fail(PLLM_ERR_INVALID_ARGUMENT, "out_submitted is required");
    *out_submitted = false;
    auto round = s.current_round();
    if (!round) return fail(round.status());
    if (out_round) *out_round = round->round;
    if (!s.is_new(round.value())) return PLLM_OK;
    auto p = s.take_part(round.value());
    if (!p) return fail(p.status());
    *out_submitted = p->submitted();
    if (p->outcome == pocketllm::Outcome::kRejected) return fail(PLLM_ERR_MISMATCH, "the server refused the submission: " + p->describe());
    return PLLM_OK;
  });
}

pllm_status pllm_device_personalize(pllm_device* d, int32_t steps, float lr, uint64_t seed, const pllm_control* control) {
  return with_device(d, control, [&](pocketllm::DeviceSession& s) {
    if (steps < 0 || steps > 100000000) return fail(PLLM_ERR_INVALID_ARGUMENT, "steps must be 0..1e8");
    if (!(lr > 0) || !std::isfinite(lr)) return fail(PLLM_ERR_INVALID_ARGUMENT, "lr must be a positive number");
    const pocketllm::TaskInfo& info = s.device().task_info();
    pocketllm::TrainOptions o;
    o.lr = lr;
    o.seed = seed;
    o.batch_size = info.batch_size > 0 ? static_cast<int>(info.batch_size) : 16;
    o.eps = static_cast<float>(info.eps);
    o.dist = info.dist;
    if (pocketllm::Status st = s.device().personalize(o, steps); !st) return fail(st);
    return PLLM_OK;
  });
}

pllm_status pllm_device_eval(pllm_device* d, const char* data_path, const pllm_control* control, double* out_loss, double* out_accuracy) {
  return with_device(d, control, [&](pocketllm::DeviceSession& s) {
    if (pllm_status st = check_text(data_path, "data_path", false); st != PLLM_OK) return st;
    pocketllm::ProgressScope progress(progress_sink(control));
    auto e = s.evaluate(data_path);
    if (!e) return fail(e.status());
    if (out_loss) *out_loss = e->loss;
    if (out_accuracy) *out_accuracy = e->accuracy;
    return PLLM_OK;
  });
}

pllm_status pllm_device_classify(pllm_device* d, const char* text, const pllm_control* control, int32_t* out_label, float* probabilities,
                                 size_t capacity, size_t* out_n_labels) {
  if (out_label) *out_label = -1;
  if (out_n_labels) *out_n_labels = 0;
  return with_device(d, control, [&](pocketllm::DeviceSession& s) {
    const pocketllm::TaskOptions& to = s.model().task_options;
    if (to.kind != "classify")
      return fail(PLLM_ERR_INVALID_ARGUMENT, "the device's task '" + s.task_id() + "' is a " + to.kind + " task, not a classification");
    return classify_with(s.pool(), s.model().loaded, text, to, out_label, probabilities, capacity, out_n_labels);
  });
}

pllm_status pllm_device_generate(pllm_device* d, const char* prompt, const pllm_generate_params* params, pllm_token_callback on_token,
                                 void* user, const pllm_control* control, char** out_text) {
  if (out_text) *out_text = nullptr;
  return with_device(d, control, [&](pocketllm::DeviceSession& s) {
    return generate_with(s.pool(), s.model().loaded, prompt, params, on_token, user, out_text);
  });
}

uint64_t pllm_device_bytes_sent(const pllm_device* d) { return d && d->session ? d->session->client().bytes_sent() : 0; }
uint64_t pllm_device_bytes_received(const pllm_device* d) { return d && d->session ? d->session->client().bytes_received() : 0; }

}  // extern "C"
