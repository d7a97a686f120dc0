// JNI glue between dev.pocketllm.* (bindings/jvm/java) and the C ABI. Strings cross as UTF-8 byte
// arrays (JNI's modified UTF-8 is not UTF-8). A failed pllm_* call becomes a PocketLlmException
// carrying the status and message; callbacks (progress, transport) run on the calling thread with its
// JNIEnv. Only pocketllm.h is used: this library links libpocketllm like any app would.
#include <jni.h>

#include <cmath>
#include <string>

#include "pocketllm/pocketllm.h"

namespace {

// A Java byte[] (or null) as a std::string the C calls can point into.
struct Bytes {
  Bytes(JNIEnv* env, jbyteArray a) : null(a == nullptr) {
    if (a) {
      const jsize n = env->GetArrayLength(a);
      s.resize(static_cast<size_t>(n));
      env->GetByteArrayRegion(a, 0, n, reinterpret_cast<jbyte*>(&s[0]));
    }
  }
  const char* c_str() const { return null ? nullptr : s.c_str(); }
  std::string s;
  bool null;
};

jbyteArray to_java(JNIEnv* env, const char* s, size_t n) {
  jbyteArray a = env->NewByteArray(static_cast<jsize>(n));
  if (a) env->SetByteArrayRegion(a, 0, static_cast<jsize>(n), reinterpret_cast<const jbyte*>(s));
  return a;
}

// Throws PocketLlmException(status, pllm_last_error()) unless the call succeeded; true when it did.
bool ok(JNIEnv* env, pllm_status s) {
  if (s == PLLM_OK) return true;
  if (env->ExceptionCheck()) return false;  // a Java exception from a callback wins
  jclass cls = env->FindClass("dev/pocketllm/PocketLlmException");
  jmethodID ctor = env->GetMethodID(cls, "<init>", "(ILjava/lang/String;)V");
  const std::string msg = std::string(pllm_status_string(s)) + ": " + pllm_last_error();
  jobject e = env->NewObject(cls, ctor, static_cast<jint>(s), env->NewStringUTF(msg.c_str()));
  env->Throw(static_cast<jthrowable>(e));
  return false;
}

void throw_illegal(JNIEnv* env, const char* msg) { env->ThrowNew(env->FindClass("java/lang/IllegalArgumentException"), msg); }

pllm_control control_of(jlong cancel) {
  pllm_control c = pllm_control_default();
  c.cancel = reinterpret_cast<pllm_cancel*>(cancel);
  return c;
}

template <class T>
T* handle(jlong h) {
  return reinterpret_cast<T*>(h);
}

struct Progress {
  JNIEnv* env;
  jobject listener;
  jmethodID method;
};

bool on_progress(float fraction, void* user) {
  auto* p = static_cast<Progress*>(user);
  if (!p->listener) return true;
  const jboolean go_on = p->env->CallBooleanMethod(p->listener, p->method, static_cast<jfloat>(fraction));
  return !p->env->ExceptionCheck() && go_on;
}

// The app's dev.pocketllm.Transport behind pllm_transport_fn.
struct JavaTransport {
  JNIEnv* env;
  jobject transport;
};

pllm_status java_transport(const char* method, const char* path, const char* body, size_t body_len, const char* bearer,
                           pllm_http_reply* reply, void* user) {
  auto* t = static_cast<JavaTransport*>(user);
  JNIEnv* env = t->env;
  jclass cls = env->GetObjectClass(t->transport);
  jmethodID send = env->GetMethodID(cls, "send", "(Ljava/lang/String;Ljava/lang/String;[BLjava/lang/String;)Ldev/pocketllm/Transport$Response;");
  jobject resp = env->CallObjectMethod(t->transport, send, env->NewStringUTF(method), env->NewStringUTF(path), to_java(env, body, body_len),
                                       env->NewStringUTF(bearer));
  if (env->ExceptionCheck()) {
    jthrowable ex = env->ExceptionOccurred();
    env->ExceptionClear();  // the library retries; the exception is not the call's outcome
    const bool cert = env->IsInstanceOf(ex, env->FindClass("dev/pocketllm/Transport$CertificateException"));
    return cert ? PLLM_ERR_MISMATCH : PLLM_ERR_IO;
  }
  if (!resp) return PLLM_ERR_IO;
  jclass rc = env->GetObjectClass(resp);
  const jint status = env->GetIntField(resp, env->GetFieldID(rc, "status", "I"));
  auto body_arr = static_cast<jbyteArray>(env->GetObjectField(resp, env->GetFieldID(rc, "body", "[B")));
  Bytes b(env, body_arr);
  return pllm_http_reply_set(reply, status, b.s.data(), b.s.size());
}

struct DevicePair {
  pllm_device* device;
  JavaTransport* transport;
};
// Each device call refreshes the JNIEnv its transport uses: it is the calling thread's.
pllm_device* enter(JNIEnv* env, jlong h) {
  auto* p = reinterpret_cast<DevicePair*>(h);
  p->transport->env = env;
  return p->device;
}
}  // namespace

#define JNI_FN(ret, name) extern "C" JNIEXPORT ret JNICALL Java_dev_pocketllm_Native_##name

JNI_FN(jstring, version)(JNIEnv* env, jclass) { return env->NewStringUTF(pllm_version()); }

JNI_FN(jstring, systemInfo)(JNIEnv* env, jclass) {
  char* s = nullptr;
  if (!ok(env, pllm_system_info(&s))) return nullptr;
  jstring out = env->NewStringUTF(s);  // ASCII JSON
  pllm_free_string(s);
  return out;
}

JNI_FN(jlong, cancelNew)(JNIEnv*, jclass) { return reinterpret_cast<jlong>(pllm_cancel_new()); }
JNI_FN(void, cancelRequest)(JNIEnv*, jclass, jlong c) { pllm_cancel_request(handle<pllm_cancel>(c)); }
JNI_FN(void, cancelReset)(JNIEnv*, jclass, jlong c) { pllm_cancel_reset(handle<pllm_cancel>(c)); }
JNI_FN(void, cancelFree)(JNIEnv*, jclass, jlong c) { pllm_cancel_free(handle<pllm_cancel>(c)); }

JNI_FN(jlong, modelLoad)(JNIEnv* env, jclass, jbyteArray path, jint threads, jlong budget, jlong cancel) {
  Bytes p(env, path);
  pllm_model_params mp = pllm_model_default_params();
  mp.n_threads = threads;
  if (budget < 0) return throw_illegal(env, "memory budget must be >= 0"), 0;
  mp.memory_budget_bytes = static_cast<uint64_t>(budget);
  pllm_control c = control_of(cancel);
  pllm_model* m = nullptr;
  return ok(env, pllm_model_load(p.c_str(), &mp, &c, &m)) ? reinterpret_cast<jlong>(m) : 0;
}

JNI_FN(void, modelFree)(JNIEnv*, jclass, jlong m) { pllm_model_free(handle<pllm_model>(m)); }

JNI_FN(jbyteArray, modelId)(JNIEnv* env, jclass, jlong m) {
  char* s = nullptr;
  if (!ok(env, pllm_model_id(handle<pllm_model>(m), &s))) return nullptr;
  jbyteArray out = to_java(env, s, std::char_traits<char>::length(s));
  pllm_free_string(s);
  return out;
}

JNI_FN(jlong, modelParams)(JNIEnv*, jclass, jlong m) { return static_cast<jlong>(pllm_model_n_params(handle<pllm_model>(m))); }
JNI_FN(jboolean, modelIsTrained)(JNIEnv*, jclass, jlong m) { return pllm_model_is_trained(handle<pllm_model>(m)); }

JNI_FN(jbyteArray, generate)(JNIEnv* env, jclass, jlong model, jlong device, jbyteArray prompt, jint max_new, jboolean greedy,
                             jfloat temperature, jlong seed, jlong cancel) {
  Bytes p(env, prompt);
  pllm_generate_params g = pllm_generate_default_params();
  g.max_new_tokens = max_new;
  g.greedy = greedy;
  g.temperature = temperature;
  g.seed = static_cast<uint64_t>(seed);
  pllm_control c = control_of(cancel);
  char* text = nullptr;
  const pllm_status s = device ? pllm_device_generate(enter(env, device), p.c_str(), &g, nullptr, nullptr, &c, &text)
                               : pllm_generate(handle<pllm_model>(model), p.c_str(), &g, nullptr, nullptr, &c, &text);
  if (!ok(env, s)) return nullptr;
  jbyteArray out = to_java(env, text, std::char_traits<char>::length(text));
  pllm_free_string(text);
  return out;
}

JNI_FN(jdoubleArray, evaluate)(JNIEnv* env, jclass, jlong model, jlong device, jbyteArray data, jbyteArray task, jbyteArray labels,
                               jlong cancel) {
  Bytes d(env, data), t(env, task), l(env, labels);
  pllm_control c = control_of(cancel);
  double r[2] = {NAN, -1};
  pllm_status s;
  if (device) {
    s = pllm_device_eval(enter(env, device), d.c_str(), &c, &r[0], &r[1]);
  } else {
    pllm_evaluate_params e = pllm_evaluate_default_params();
    e.task = t.c_str() ? t.c_str() : "lm";
    e.labels = l.c_str();
    s = pllm_model_evaluate(handle<pllm_model>(model), d.c_str(), &e, &c, &r[0], &r[1]);
  }
  if (!ok(env, s)) return nullptr;
  jdoubleArray out = env->NewDoubleArray(2);
  env->SetDoubleArrayRegion(out, 0, 2, r);
  return out;
}

JNI_FN(jlong, sessionOpen)(JNIEnv* env, jclass, jlong model, jbyteArray run_dir, jbyteArray data, jbyteArray eval, jbyteArray task,
                           jbyteArray labels, jbyteArray trainable, jbyteArray preset, jint steps, jint batch, jfloat lr,
                           jfloat eps, jlong seed, jint max_length, jint k_shot, jlong data_seed, jlong cancel) {
  Bytes r(env, run_dir), d(env, data), e(env, eval), t(env, task), l(env, labels), tr(env, trainable), pr(env, preset);
  pllm_session_params p = pllm_session_default_params();
  p.run_dir = r.c_str();
  p.data_path = d.c_str();
  p.eval_data_path = e.c_str();
  if (t.c_str()) p.task = t.c_str();
  p.labels = l.c_str();
  if (tr.c_str()) p.trainable = tr.c_str();
  p.preset = pr.c_str();
  p.k_shot = k_shot;
  p.data_seed = static_cast<uint64_t>(data_seed);
  p.steps = steps;
  p.batch_size = batch;
  p.lr = lr;
  p.eps = eps;
  p.seed = static_cast<uint64_t>(seed);
  p.max_length = max_length;
  pllm_control c = control_of(cancel);
  pllm_session* s = nullptr;
  return ok(env, pllm_session_open(handle<pllm_model>(model), &p, &c, &s)) ? reinterpret_cast<jlong>(s) : 0;
}

JNI_FN(jint, sessionTrain)(JNIEnv* env, jclass, jlong session, jint max_steps, jobject listener, jlong cancel, jdoubleArray loss_out) {
  Progress progress{env, listener, nullptr};
  if (listener) progress.method = env->GetMethodID(env->GetObjectClass(listener), "onProgress", "(F)Z");
  pllm_control c = control_of(cancel);
  c.progress = on_progress;
  c.user = &progress;
  int32_t done = 0;
  double loss = NAN;
  const pllm_status s = pllm_session_train(handle<pllm_session>(session), max_steps, &c, &done, &loss);
  if (loss_out && env->GetArrayLength(loss_out) >= 1) env->SetDoubleArrayRegion(loss_out, 0, 1, &loss);
  ok(env, s);
  return done;
}

JNI_FN(jint, sessionStepsDone)(JNIEnv*, jclass, jlong s) { return pllm_session_steps_done(handle<pllm_session>(s)); }

JNI_FN(void, sessionFree)(JNIEnv*, jclass, jlong s) { pllm_session_free(handle<pllm_session>(s)); }

JNI_FN(jlong, deviceOpen)(JNIEnv* env, jclass, jlong model, jobject transport, jbyteArray url, jbyteArray cred, jbyteArray token,
                          jbyteArray task, jbyteArray data, jbyteArray state, jlong cancel) {
  if (!transport) return throw_illegal(env, "a transport is required"), 0;
  Bytes u(env, url), cr(env, cred), tk(env, token), ta(env, task), d(env, data), st(env, state);
  // The transport is called during every device call, each time with that call's JNIEnv; the global
  // reference lives as long as the device (freed in deviceFree).
  auto* jt = new JavaTransport{env, env->NewGlobalRef(transport)};
  pllm_device_params p = pllm_device_default_params();
  p.transport = java_transport;
  p.transport_user = jt;
  p.server_url = u.c_str();
  p.credentials_path = cr.c_str();
  p.enrolment_token = tk.c_str();
  p.task_id = ta.c_str();
  p.data_path = d.c_str();
  p.state_dir = st.c_str();
  pllm_control c = control_of(cancel);
  pllm_device* dev = nullptr;
  if (!ok(env, pllm_device_open(handle<pllm_model>(model), &p, &c, &dev))) {
    env->DeleteGlobalRef(jt->transport);
    delete jt;
    return 0;
  }
  // The Java handle is the device with its transport.
  return reinterpret_cast<jlong>(new DevicePair{dev, jt});
}


JNI_FN(jlong, deviceSync)(JNIEnv* env, jclass, jlong h, jlong cancel) {
  pllm_control c = control_of(cancel);
  uint64_t version = 0;
  return ok(env, pllm_device_sync(enter(env, h), &c, &version)) ? static_cast<jlong>(version) : -1;
}

JNI_FN(jlong, deviceRunRound)(JNIEnv* env, jclass, jlong h, jlong cancel) {
  pllm_control c = control_of(cancel);
  bool submitted = false;
  uint64_t round = 0;
  if (!ok(env, pllm_device_run_round(enter(env, h), &c, &submitted, &round))) return -1;
  return submitted ? static_cast<jlong>(round) : 0;
}

JNI_FN(void, devicePersonalize)(JNIEnv* env, jclass, jlong h, jint steps, jfloat lr, jlong seed, jlong cancel) {
  pllm_control c = control_of(cancel);
  ok(env, pllm_device_personalize(enter(env, h), steps, lr, static_cast<uint64_t>(seed), &c));
}

JNI_FN(void, deviceFree)(JNIEnv* env, jclass, jlong h) {
  if (!h) return;
  auto* p = reinterpret_cast<DevicePair*>(h);
  pllm_device_free(p->device);
  env->DeleteGlobalRef(p->transport->transport);
  delete p->transport;
  delete p;
}
