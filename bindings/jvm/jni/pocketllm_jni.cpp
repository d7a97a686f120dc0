// JNI glue between dev.pocketllm.* (bindings/jvm/java) and the C ABI. Strings cross as UTF-8 byte
// arrays (JNI's modified UTF-8 is not UTF-8). A failed pllm_* call becomes a PocketLlmException
// carrying the status and message; callbacks (progress, transport) run on the calling thread with its
// JNIEnv. Only pocketllm.h is used: this library links libpocketllm like any app would.
#include <jni.h>

#include <cmath>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

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

// A string the library allocated, as UTF-8 bytes for Native.string; frees it.
jbyteArray take_bytes(JNIEnv* env, char* s) {
  jbyteArray out = s ? to_java(env, s, std::char_traits<char>::length(s)) : nullptr;
  pllm_free_string(s);
  return out;
}

void throw_illegal(JNIEnv* env, const char* msg) { env->ThrowNew(env->FindClass("java/lang/IllegalArgumentException"), msg); }

// Native.<name>(arg) for the glue's two converters (utf8: String -> byte[], string: byte[] -> String);
// nullptr with the Java exception left pending when it threw.
jobject call_native(JNIEnv* env, const char* name, const char* sig, jobject arg) {
  jclass native = env->FindClass("dev/pocketllm/Native");
  const jmethodID m = native ? env->GetStaticMethodID(native, name, sig) : nullptr;
  jobject out = m ? env->CallStaticObjectMethod(native, m, arg) : nullptr;
  if (env->ExceptionCheck()) out = nullptr;
  if (native) env->DeleteLocalRef(native);
  return out;
}

// The fields of a dev.pocketllm options object, read by name (the jar's META-INF/proguard/pocketllm.pro
// keeps the names through R8 / ProGuard). A missing field leaves NoSuchFieldError pending: failed().
class Fields {
 public:
  Fields(JNIEnv* env, jobject obj) : env_(env), obj_(obj), cls_(env->GetObjectClass(obj)) {}
  jint i(const char* name) {
    const jfieldID f = id(name, "I");
    return f ? env_->GetIntField(obj_, f) : 0;
  }
  jlong j(const char* name) {
    const jfieldID f = id(name, "J");
    return f ? env_->GetLongField(obj_, f) : 0;
  }
  bool z(const char* name) {
    const jfieldID f = id(name, "Z");
    return f && env_->GetBooleanField(obj_, f);
  }
  jfloat f(const char* name) {
    const jfieldID f = id(name, "F");
    return f ? env_->GetFloatField(obj_, f) : 0.0f;
  }
  // A String field as UTF-8 (Native.utf8), nullptr when null; valid as long as this object.
  const char* s(const char* name) {
    const jfieldID f = id(name, "Ljava/lang/String;");
    if (!f) return nullptr;
    auto str = static_cast<jstring>(env_->GetObjectField(obj_, f));
    if (!str) return nullptr;
    auto bytes = static_cast<jbyteArray>(call_native(env_, "utf8", "(Ljava/lang/String;)[B", str));
    if (!bytes) return nullptr;
    strings_.emplace_back(env_, bytes);
    env_->DeleteLocalRef(bytes);  // local references released as they go
    env_->DeleteLocalRef(str);
    return strings_.back().c_str();
  }
  bool failed() const { return env_->ExceptionCheck(); }
  // The memoryBudgetBytes field (>= 0) into *out; false with an exception pending when it is missing or negative.
  bool budget(uint64_t* out) {
    const jlong b = j("memoryBudgetBytes");
    if (failed()) return false;
    if (b < 0) return throw_illegal(env_, "memoryBudgetBytes must be >= 0"), false;
    *out = static_cast<uint64_t>(b);
    return true;
  }

 private:
  jfieldID id(const char* name, const char* sig) { return env_->ExceptionCheck() ? nullptr : env_->GetFieldID(cls_, name, sig); }
  JNIEnv* env_;
  jobject obj_;
  jclass cls_;
  std::deque<Bytes> strings_;
};

// A UTF-8 C string as a Java String, decoded by Java (Native.string): NewStringUTF takes JNI's modified
// UTF-8, which garbles characters outside the BMP (an emoji in a file name) and makes CheckJNI abort.
jstring java_string(JNIEnv* env, const char* s) {
  jbyteArray bytes = to_java(env, s, std::char_traits<char>::length(s));
  if (!bytes) return nullptr;  // out of memory, pending for the caller
  auto out = static_cast<jstring>(call_native(env, "string", "([B)Ljava/lang/String;", bytes));
  env->DeleteLocalRef(bytes);
  return out;
}

// Throws PocketLlmException(status, pllm_last_error()) unless the call succeeded; true when it did.
bool ok(JNIEnv* env, pllm_status s) {
  if (s == PLLM_OK) return true;
  if (env->ExceptionCheck()) return false;  // a Java exception from a callback wins
  jclass cls = env->FindClass("dev/pocketllm/PocketLlmException");
  jmethodID ctor = env->GetMethodID(cls, "<init>", "(ILjava/lang/String;)V");
  const std::string msg = std::string(pllm_status_string(s)) + ": " + pllm_last_error();
  jstring text = java_string(env, msg.c_str());
  if (!text) return false;  // its exception is pending instead
  jobject e = env->NewObject(cls, ctor, static_cast<jint>(s), text);
  env->Throw(static_cast<jthrowable>(e));
  return false;
}

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
  if (p->env->ExceptionCheck()) return false;  // the listener threw before: no JNI call with it pending
  const jboolean go_on = p->env->CallBooleanMethod(p->listener, p->method, static_cast<jfloat>(fraction));
  return !p->env->ExceptionCheck() && go_on;
}

// The app's dev.pocketllm.Transport behind pllm_transport_fn.
struct JavaTransport {
  JNIEnv* env;
  jobject transport;
};

pllm_status call_transport(JNIEnv* env, jobject transport, const char* method, const char* path, const char* body, size_t body_len,
                           const char* bearer, pllm_http_reply* reply) {
  jclass cls = env->GetObjectClass(transport);
  jmethodID send = env->GetMethodID(cls, "send", "(Ljava/lang/String;Ljava/lang/String;[BLjava/lang/String;)Ldev/pocketllm/Transport$Response;");
  jstring jmethod = java_string(env, method), jpath = jmethod ? java_string(env, path) : nullptr;
  jstring jbearer = jpath ? java_string(env, bearer) : nullptr;
  jbyteArray jbody = jbearer ? to_java(env, body, body_len) : nullptr;
  if (!jbody) {  // out of memory in the JVM: a failed request, retried
    env->ExceptionClear();
    return PLLM_ERR_IO;
  }
  jobject resp = env->CallObjectMethod(transport, send, jmethod, jpath, jbody, jbearer);
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

// One request through the app's transport. A device call may make hundreds (a secure round polls every
// 0.5 s), all inside one native call: each request's local references live in a frame of their own, or
// they would pile up until the VM's table overflows (Android aborts the app at 512).
pllm_status java_transport(const char* method, const char* path, const char* body, size_t body_len, const char* bearer,
                           pllm_http_reply* reply, void* user) {
  auto* t = static_cast<JavaTransport*>(user);
  JNIEnv* env = t->env;
  if (env->PushLocalFrame(16) != 0) {
    env->ExceptionClear();
    return PLLM_ERR_IO;
  }
  const pllm_status s = call_transport(env, t->transport, method, path, body, body_len, bearer, reply);
  env->PopLocalFrame(nullptr);
  return s;
}

// The app's dev.pocketllm.LogListener behind pllm_set_log_callback. The library calls it on the thread
// doing the work: a Java thread (every pllm_* call comes from one), attached as a daemon if it is not.
JavaVM* g_vm = nullptr;
thread_local bool t_in_listener = false;

JNIEnv* current_env() {
  JNIEnv* env = nullptr;
  const jint got = g_vm->GetEnv(reinterpret_cast<void**>(&env), JNI_VERSION_1_6);
  if (got == JNI_OK) return env;
  if (got != JNI_EDETACHED) return nullptr;
#ifdef __ANDROID__
  return g_vm->AttachCurrentThreadAsDaemon(&env, nullptr) == JNI_OK ? env : nullptr;
#else
  return g_vm->AttachCurrentThreadAsDaemon(reinterpret_cast<void**>(&env), nullptr) == JNI_OK ? env : nullptr;
#endif
}

void java_log(pllm_log_level level, const char* message, void* user) {
  JNIEnv* env = g_vm ? current_env() : nullptr;
  if (!env) return;
  // A Java exception may be pending (a progress listener threw and the call is reporting why it stops):
  // it is set aside for the listener's call and put back after, so no JNI call runs with it pending.
  jthrowable pending = env->ExceptionOccurred();
  if (pending) env->ExceptionClear();
  if (env->PushLocalFrame(8) == 0) {
    jclass cls = env->GetObjectClass(static_cast<jobject>(user));
    const jmethodID on_log = env->GetMethodID(cls, "onLog", "(ILjava/lang/String;)V");
    jstring text = on_log ? java_string(env, message) : nullptr;
    t_in_listener = true;
    if (text) env->CallVoidMethod(static_cast<jobject>(user), on_log, static_cast<jint>(level), text);
    t_in_listener = false;
    env->PopLocalFrame(nullptr);
  }
  env->ExceptionClear();  // the listener's own exception: logging must not change what the call returns
  if (pending) {
    env->Throw(pending);
    env->DeleteLocalRef(pending);
  }
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

JNI_FN(void, setLogListener)(JNIEnv* env, jclass, jobject listener, jint min_level) {
  if (t_in_listener) {
    env->ThrowNew(env->FindClass("java/lang/IllegalStateException"), "setLogListener called from inside a log listener");
    return;
  }
  if (min_level < PLLM_LOG_DEBUG || min_level > PLLM_LOG_ERROR) return throw_illegal(env, "log level must be 0..3 (LogListener.DEBUG..ERROR)");
  static std::mutex mu;
  static jobject current = nullptr;  // global reference to the installed listener
  std::lock_guard<std::mutex> lock(mu);
  if (!g_vm && env->GetJavaVM(&g_vm) != JNI_OK) return;
  jobject next = listener ? env->NewGlobalRef(listener) : nullptr;
  // Returns once no call is inside the old listener (the library holds its hook's lock around calls).
  pllm_set_log_callback(next ? java_log : nullptr, next, static_cast<pllm_log_level>(min_level));
  if (current) env->DeleteGlobalRef(current);
  current = next;
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
  return ok(env, pllm_model_id(handle<pllm_model>(m), &s)) ? take_bytes(env, s) : nullptr;
}

JNI_FN(jlong, modelParams)(JNIEnv*, jclass, jlong m) { return static_cast<jlong>(pllm_model_n_params(handle<pllm_model>(m))); }
JNI_FN(jboolean, modelIsTrained)(JNIEnv*, jclass, jlong m) { return pllm_model_is_trained(handle<pllm_model>(m)); }

JNI_FN(jbyteArray, modelInfo)(JNIEnv* env, jclass, jlong m) {
  char* s = nullptr;
  return ok(env, pllm_model_info(handle<pllm_model>(m), &s)) ? take_bytes(env, s) : nullptr;
}

JNI_FN(jint, modelContextLength)(JNIEnv*, jclass, jlong m) { return pllm_model_context_length(handle<pllm_model>(m)); }

JNI_FN(jint, countTokens)(JNIEnv* env, jclass, jlong m, jbyteArray text) {
  Bytes t(env, text);
  int32_t n = 0;
  ok(env, pllm_count_tokens(handle<pllm_model>(m), t.c_str(), &n));
  return n;
}

// A TokenListener (or null) behind pllm_token_callback, on the thread of the call.
struct Tokens {
  JNIEnv* env;
  jobject listener;
  jmethodID method;
};

static bool on_token(const char* piece, void* user) {
  auto* t = static_cast<Tokens*>(user);
  if (t->env->ExceptionCheck()) return false;  // the listener threw before: no JNI call with it pending
  jstring text = java_string(t->env, piece);
  if (!text) return false;  // out of memory, pending for the caller
  const jboolean go_on = t->env->CallBooleanMethod(t->listener, t->method, text);
  t->env->DeleteLocalRef(text);
  return !t->env->ExceptionCheck() && go_on;
}

JNI_FN(jbyteArray, generate)(JNIEnv* env, jclass, jlong model, jlong device, jbyteArray prompt, jobject options, jobject listener,
                             jlong cancel) {
  if (!options) return throw_illegal(env, "options are required"), nullptr;
  Bytes p(env, prompt);
  Fields o(env, options);
  pllm_generate_params g = pllm_generate_default_params();
  g.max_new_tokens = o.i("maxNewTokens");
  g.greedy = o.z("greedy");
  g.temperature = o.f("temperature");
  g.top_k = o.i("topK");
  g.top_p = o.f("topP");
  g.repetition_penalty = o.f("repetitionPenalty");
  g.seed = static_cast<uint64_t>(o.j("seed"));
  if (o.failed()) return nullptr;
  Tokens tokens{env, listener, nullptr};
  if (listener) tokens.method = env->GetMethodID(env->GetObjectClass(listener), "onToken", "(Ljava/lang/String;)Z");
  if (env->ExceptionCheck()) return nullptr;
  pllm_token_callback cb = listener ? on_token : nullptr;
  pllm_control c = control_of(cancel);
  char* text = nullptr;
  const pllm_status s = device ? pllm_device_generate(enter(env, device), p.c_str(), &g, cb, &tokens, &c, &text)
                               : pllm_generate(handle<pllm_model>(model), p.c_str(), &g, cb, &tokens, &c, &text);
  if (env->ExceptionCheck()) {  // the listener's own exception reaches the caller
    pllm_free_string(text);
    return nullptr;
  }
  return ok(env, s) ? take_bytes(env, text) : nullptr;
}

JNI_FN(jlongArray, estimateMemory)(JNIEnv* env, jclass, jbyteArray path, jint batch, jint max_length) {
  Bytes p(env, path);
  pllm_model_params mp = pllm_model_default_params();
  mp.batch_size = batch;
  mp.max_length = max_length;
  pllm_memory_estimate e{};
  e.struct_size = sizeof e;
  if (!ok(env, pllm_estimate_memory(p.c_str(), &mp, &e))) return nullptr;
  const jlong r[3] = {static_cast<jlong>(e.weights_bytes), static_cast<jlong>(e.activation_bytes), static_cast<jlong>(e.total_bytes)};
  jlongArray out = env->NewLongArray(3);
  if (out) env->SetLongArrayRegion(out, 0, 3, r);
  return out;
}

// A progress listener (or null) as the control's callback, for a call on this thread.
static pllm_control listened(JNIEnv* env, jobject listener, jlong cancel, Progress* progress) {
  *progress = Progress{env, listener, nullptr};
  if (listener) progress->method = env->GetMethodID(env->GetObjectClass(listener), "onProgress", "(F)Z");
  pllm_control c = control_of(cancel);
  c.progress = on_progress;
  c.user = progress;
  return c;
}

JNI_FN(jdoubleArray, evaluate)(JNIEnv* env, jclass, jlong model, jlong device, jbyteArray data, jbyteArray task, jbyteArray labels,
                               jobject listener, jlong cancel) {
  Bytes d(env, data), t(env, task), l(env, labels);
  Progress progress;
  pllm_control c = listened(env, listener, cancel, &progress);
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
  if (env->ExceptionCheck()) return nullptr;  // the listener's own exception reaches the caller
  if (!ok(env, s)) return nullptr;
  jdoubleArray out = env->NewDoubleArray(2);
  env->SetDoubleArrayRegion(out, 0, 2, r);
  return out;
}

JNI_FN(jfloatArray, classify)(JNIEnv* env, jclass, jlong model, jlong device, jbyteArray text, jbyteArray preset, jbyteArray tmpl,
                              jbyteArray labels, jintArray label_out, jlong cancel) {
  if (!label_out || env->GetArrayLength(label_out) < 1) return throw_illegal(env, "labelOut must hold one int"), nullptr;
  Bytes t(env, text), p(env, preset), tm(env, tmpl), l(env, labels);
  pllm_evaluate_params e = pllm_evaluate_default_params();
  e.preset = p.c_str();
  e.prompt_template = tm.c_str();
  e.labels = l.c_str();
  pllm_control c = control_of(cancel);
  std::vector<float> probabilities(64);
  int32_t label = -1;
  size_t n = 0;
  auto call = [&] {
    return device ? pllm_device_classify(enter(env, device), t.c_str(), &c, &label, probabilities.data(), probabilities.size(), &n)
                  : pllm_classify(handle<pllm_model>(model), t.c_str(), &e, &c, &label, probabilities.data(), probabilities.size(), &n);
  };
  pllm_status s = call();
  if (s == PLLM_OK && n > probabilities.size()) {  // more labels than room: once more with room for all
    probabilities.resize(n);
    s = call();
  }
  if (!ok(env, s)) return nullptr;
  const jint answer = label;
  env->SetIntArrayRegion(label_out, 0, 1, &answer);
  jfloatArray out = env->NewFloatArray(static_cast<jsize>(n));
  if (out) env->SetFloatArrayRegion(out, 0, static_cast<jsize>(n), probabilities.data());
  return out;
}

JNI_FN(jlong, sessionOpen)(JNIEnv* env, jclass, jlong model, jobject options, jlong cancel) {
  if (!options) return throw_illegal(env, "options are required"), 0;
  Fields o(env, options);
  pllm_session_params p = pllm_session_default_params();
  p.run_dir = o.s("runDir");
  p.data_path = o.s("dataPath");
  p.eval_data_path = o.s("evalDataPath");
  if (const char* task = o.s("task")) p.task = task;
  p.labels = o.s("labels");
  p.prompt_template = o.s("promptTemplate");
  p.trainable = o.s("trainable");
  p.preset = o.s("preset");
  p.schedule = o.s("schedule");
  p.steps = o.i("steps");
  p.batch_size = o.i("batchSize");
  p.max_length = o.i("maxLength");
  p.k_shot = o.i("kShot");
  p.lr = o.f("lr");
  p.eps = o.f("eps");
  p.seed = static_cast<uint64_t>(o.j("seed"));
  p.data_seed = static_cast<uint64_t>(o.j("dataSeed"));
  p.balanced = o.i("balanced");
  p.min_words = o.i("minWords");
  p.validation_examples = o.i("validationExamples");
  p.validate_every = o.i("validateEvery");
  p.patience = o.i("patience");
  p.lora_rank = o.i("loraRank");
  p.lora_alpha = o.f("loraAlpha");
  if (const char* targets = o.s("loraTargets")) p.lora_targets = targets;
  p.lora_init_seed = static_cast<uint64_t>(o.j("loraInitSeed"));
  if (!o.budget(&p.memory_budget_bytes)) return 0;
  pllm_control c = control_of(cancel);
  pllm_session* s = nullptr;
  return ok(env, pllm_session_open(handle<pllm_model>(model), &p, &c, &s)) ? reinterpret_cast<jlong>(s) : 0;
}

JNI_FN(jint, sessionTrain)(JNIEnv* env, jclass, jlong session, jint max_steps, jobject listener, jlong cancel, jdoubleArray loss_out) {
  Progress progress;
  pllm_control c = listened(env, listener, cancel, &progress);
  int32_t done = 0;
  double loss = NAN;
  const pllm_status s = pllm_session_train(handle<pllm_session>(session), max_steps, &c, &done, &loss);
  if (env->ExceptionCheck()) return done;  // the listener's own exception reaches the caller
  if (loss_out && env->GetArrayLength(loss_out) >= 1) env->SetDoubleArrayRegion(loss_out, 0, 1, &loss);
  ok(env, s);
  return done;
}

JNI_FN(jint, sessionStepsDone)(JNIEnv*, jclass, jlong s) { return pllm_session_steps_done(handle<pllm_session>(s)); }

JNI_FN(jint, sessionTotalSteps)(JNIEnv*, jclass, jlong s) { return pllm_session_total_steps(handle<pllm_session>(s)); }

JNI_FN(void, sessionFree)(JNIEnv*, jclass, jlong s) { pllm_session_free(handle<pllm_session>(s)); }

JNI_FN(jlong, deviceOpen)(JNIEnv* env, jclass, jlong model, jobject transport, jobject options, jlong cancel) {
  if (!transport) return throw_illegal(env, "a transport is required"), 0;
  if (!options) return throw_illegal(env, "options are required"), 0;
  Fields o(env, options);
  pllm_device_params p = pllm_device_default_params();
  p.server_url = o.s("serverUrl");
  p.credentials_path = o.s("credentialsPath");
  p.enrolment_token = o.s("enrolmentToken");
  p.task_id = o.s("taskId");
  p.data_path = o.s("dataPath");
  p.state_dir = o.s("stateDir");
  if (!o.budget(&p.memory_budget_bytes)) return 0;
  // The transport is called during every device call, each time with that call's JNIEnv; the global
  // reference lives as long as the device (freed in deviceFree).
  auto* jt = new JavaTransport{env, env->NewGlobalRef(transport)};
  p.transport = java_transport;
  p.transport_user = jt;
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

JNI_FN(jlong, deviceBytes)(JNIEnv* env, jclass, jlong h, jboolean sent) {
  pllm_device* d = enter(env, h);
  return static_cast<jlong>(sent ? pllm_device_bytes_sent(d) : pllm_device_bytes_received(d));
}

JNI_FN(void, deviceFree)(JNIEnv* env, jclass, jlong h) {
  if (!h) return;
  auto* p = reinterpret_cast<DevicePair*>(h);
  pllm_device_free(p->device);
  env->DeleteGlobalRef(p->transport->transport);
  delete p->transport;
  delete p;
}

JNI_FN(void, exportRun)(JNIEnv* env, jclass, jbyteArray run_dir, jbyteArray out, jbyteArray format, jbyteArray type) {
  Bytes r(env, run_dir), o(env, out), f(env, format), t(env, type);
  ok(env, pllm_export_as(r.c_str(), o.c_str(), f.c_str(), t.c_str()));
}

JNI_FN(jlong, examplesNew)(JNIEnv* env, jclass) {
  pllm_examples* e = pllm_examples_new();
  if (!e) env->ThrowNew(env->FindClass("java/lang/OutOfMemoryError"), "pllm_examples_new");
  return reinterpret_cast<jlong>(e);
}

JNI_FN(void, examplesAddText)(JNIEnv* env, jclass, jlong e, jbyteArray text) {
  Bytes t(env, text);
  ok(env, pllm_examples_add_text(handle<pllm_examples>(e), t.c_str()));
}

JNI_FN(void, examplesAddCompletion)(JNIEnv* env, jclass, jlong e, jbyteArray prompt, jbyteArray completion) {
  Bytes p(env, prompt), c(env, completion);
  ok(env, pllm_examples_add_completion(handle<pllm_examples>(e), p.c_str(), c.c_str()));
}

JNI_FN(void, examplesAddLabelled)(JNIEnv* env, jclass, jlong e, jbyteArray text, jbyteArray label) {
  Bytes t(env, text), l(env, label);
  ok(env, pllm_examples_add_labelled(handle<pllm_examples>(e), t.c_str(), l.c_str()));
}

JNI_FN(jlong, examplesCount)(JNIEnv*, jclass, jlong e) { return static_cast<jlong>(pllm_examples_count(handle<pllm_examples>(e))); }

JNI_FN(void, examplesWrite)(JNIEnv* env, jclass, jlong e, jbyteArray path) {
  Bytes p(env, path);
  ok(env, pllm_examples_write(handle<pllm_examples>(e), p.c_str()));
}

JNI_FN(void, examplesFree)(JNIEnv*, jclass, jlong e) { pllm_examples_free(handle<pllm_examples>(e)); }
