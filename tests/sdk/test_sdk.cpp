// The C ABI without a server (also run on the aarch64 mobile build under qemu): the library calls,
// models used for generation, evaluation and training sessions, and every kind of bad input.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <functional>
#include <list>
#include <fstream>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "model_fixtures.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/utf8.h"
#include "pocketllm/pocketllm.h"
#include "pocketllm/pocketllm.hpp"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;

struct ModelHandle {
  pllm_model* m = nullptr;
  ~ModelHandle() { pllm_model_free(m); }
};

std::string toy_model(uint32_t seed = 32) {
  const std::string dir = pocketllm::test::temp_dir("");
  pocketllm::test::write_toy_model_dir(dir, seed);
  pocketllm::test::write_lines(dir + "/train.txt", {"the cat", "a hat", "the bad cat", "he had a cat", "the hat had a cat"});
  return dir;
}

pllm_model* load(const std::string& path) {
  pllm_model* m = nullptr;
  pllm_model_params p = pllm_model_default_params();
  p.n_threads = 1;
  REQUIRE(pllm_model_load(path.c_str(), &p, nullptr, &m) == PLLM_OK);
  return m;
}

double eval_loss(pllm_model* m, const std::string& data) {
  double loss = NAN, acc = 0;
  REQUIRE(pllm_model_evaluate(m, data.c_str(), nullptr, nullptr, &loss, &acc) == PLLM_OK);
  return loss;
}

// The params point into strings kept for the whole test run (a list never moves its elements).
pllm_session_params session_params(const std::string& run, const std::string& data, int steps) {
  pllm_session_params p = pllm_session_default_params();
  static std::list<std::string> keep;
  keep.push_back(run);
  p.run_dir = keep.back().c_str();
  keep.push_back(data);
  p.data_path = keep.back().c_str();
  p.steps = steps;
  p.batch_size = 2;
  p.lr = 1e-3f;
  return p;
}

// The real stories260K in the shared data; a test without it says it was skipped.
bool have_stories(const std::string& dir) {
  if (pocketllm::test::path_exists(dir + "/stories260K.bin")) return true;
  WARN("skipped: stories260K not found");
  return false;
}

unsigned mode_of(const std::string& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("the library: versions, status names, system info and the log hook", "[sdk]") {
  CHECK(std::string(pllm_version()) == PLLM_VERSION_STRING);
  CHECK(pllm_version_number() == PLLM_VERSION_NUMBER);
  CHECK(PLLM_VERSION_NUMBER == PLLM_VERSION_MAJOR * 10000 + PLLM_VERSION_MINOR * 100 + PLLM_VERSION_PATCH);
  CHECK(std::string(pllm_status_string(PLLM_ERR_BUSY)) == "busy");
  CHECK(std::string(pllm_status_string(PLLM_ERR_CANCELLED)) == "cancelled");
  CHECK(std::string(pllm_status_string(static_cast<pllm_status>(99))) == "unknown status");
  for (int s = 0; s <= PLLM_ERR_BUSY; ++s) CHECK(std::string(pllm_status_string(static_cast<pllm_status>(s))) != "unknown status");
  char* info = nullptr;
  REQUIRE(pllm_system_info(&info) == PLLM_OK);
  const auto j = nlohmann::json::parse(info);
  pllm_free_string(info);
  CHECK(j.at("version") == PLLM_VERSION_STRING);
  CHECK((j.at("profile") == "mobile" || j.at("profile") == "desktop"));
  CHECK(j.at("cores").get<int>() >= 1);
#if defined(__aarch64__)
  CHECK(j.at("arch") == "aarch64");
  // The packed int8 path the kernels name follows the features reported beside it.
  const std::string kernels = j.at("kernels");
  const bool dotprod = j.at("cpu_dotprod").get<bool>(), i8mm = j.at("cpu_i8mm").get<bool>();
  if (std::getenv("POCKETLLM_INT8") == nullptr) {
    CHECK((kernels.find("packed int8 (i8mm") != std::string::npos) == (i8mm && dotprod));
    CHECK((kernels.find("packed int8 (dotprod") != std::string::npos) == (dotprod && !i8mm));
    CHECK((kernels.find("dequantized tiles") != std::string::npos) == !dotprod);
  }
#elif defined(__x86_64__)
  CHECK(j.at("arch") == "x86_64");
  CHECK(j.at("cpu_avx2").is_boolean());
#endif
  CHECK(pllm_system_info(nullptr) == PLLM_ERR_INVALID_ARGUMENT);

  std::vector<std::string> lines;
  pllm_set_log_callback([](pllm_log_level, const char* message, void* user) { static_cast<std::vector<std::string>*>(user)->push_back(message); },
                        &lines, PLLM_LOG_WARN);
  pllm_model* m = nullptr;
  CHECK(pllm_model_load("/nonexistent/model", nullptr, nullptr, &m) == PLLM_ERR_NOT_FOUND);
  pllm_set_log_callback(nullptr, nullptr, PLLM_LOG_ERROR);
  CHECK(pllm_model_load("/nonexistent/again", nullptr, nullptr, &m) == PLLM_ERR_NOT_FOUND);
  REQUIRE(lines.size() == 1);  // the second failure came after the hook was removed
  CHECK(lines[0].find("/nonexistent/model") != std::string::npos);
  CHECK(std::string(pllm_last_error()).find("/nonexistent/again") != std::string::npos);

  // A hook that breaks the rule and calls the library: a failing call and a re-install from inside it
  // neither deadlock nor recurse; the re-install is ignored.
  static int calls = 0;
  calls = 0;
  pllm_set_log_callback([](pllm_log_level, const char*, void*) {
    ++calls;
    pllm_model* inner = nullptr;
    pllm_model_load("/nonexistent/inner", nullptr, nullptr, &inner);  // fails, logs nothing
    pllm_set_log_callback(nullptr, nullptr, PLLM_LOG_ERROR);          // ignored
  }, nullptr, PLLM_LOG_WARN);
  CHECK(pllm_model_load("/nonexistent/outer", nullptr, nullptr, &m) == PLLM_ERR_NOT_FOUND);
  CHECK(pllm_model_load("/nonexistent/outer2", nullptr, nullptr, &m) == PLLM_ERR_NOT_FOUND);
  pllm_set_log_callback(nullptr, nullptr, PLLM_LOG_ERROR);
  CHECK(calls == 2);  // once per outer failure: the hook stayed installed, the inner failures were not logged
}

TEST_CASE("pllm_generate_z is the spec's generator", "[sdk]") {
  std::vector<float> a(1000), b(1000);
  REQUIRE(pllm_generate_z(0x1234, "model.norm.weight", 77, 1000, PLLM_DIST_GAUSSIAN, a.data()) == PLLM_OK);
  pocketllm::generate_z(pocketllm::Distribution::kGaussian, 0x1234, pocketllm::tensor_tag("model.norm.weight"), 77, 1000, b.data());
  CHECK(std::memcmp(a.data(), b.data(), 4000) == 0);
  CHECK(pllm_generate_z(1, "x", 0, 4, static_cast<pllm_distribution>(7), a.data()) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_generate_z(1, "x", UINT64_MAX, 4, PLLM_DIST_GAUSSIAN, a.data()) == PLLM_ERR_OUT_OF_RANGE);
}

// Generated text as apps receive it: stories260K's vocabulary has byte tokens (<0xE2>), so at a high
// temperature it emits characters split over tokens and bytes that form no character.
TEST_CASE("generate hands the callback whole UTF-8 characters and the text is the pieces joined", "[sdk][generate]") {
  const std::string model = pocketllm::test::stories260k_dir();
  if (!have_stories(model)) return;
  ModelHandle h;
  REQUIRE(pllm_model_load(model.c_str(), nullptr, nullptr, &h.m) == PLLM_OK);
  struct Heard {
    std::vector<std::string> pieces;
  };
  int replaced = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    pllm_generate_params g = pllm_generate_default_params();
    g.greedy = false;
    g.temperature = 5.0f;
    g.max_new_tokens = 200;
    g.seed = seed;
    Heard heard;
    char* text = nullptr;
    REQUIRE(pllm_generate(h.m, "Once", &g, [](const char* piece, void* u) {
      static_cast<Heard*>(u)->pieces.emplace_back(piece);
      return true;
    }, &heard, nullptr, &text) == PLLM_OK);
    const std::string out = text;
    pllm_free_string(text);
    std::string joined;
    for (const std::string& piece : heard.pieces) {
      CHECK_FALSE(piece.empty());
      CHECK(pocketllm::is_valid_utf8(piece));
      joined += piece;
    }
    CHECK(joined == out);
    CHECK(pocketllm::is_valid_utf8(out));
    if (out.find("\xEF\xBF\xBD") != std::string::npos) ++replaced;
  }
  // The check above had something to hold back or replace: stray bytes were sampled and became U+FFFD.
  CHECK(replaced > 0);
}

TEST_CASE("model facts: pllm_model_info, the context length and a prompt's token count", "[sdk][info]") {
  const std::string model = pocketllm::test::stories260k_dir();
  if (!have_stories(model)) return;
  ModelHandle h;
  REQUIRE(pllm_model_load(model.c_str(), nullptr, nullptr, &h.m) == PLLM_OK);
  char* text = nullptr;
  REQUIRE(pllm_model_info(h.m, &text) == PLLM_OK);
  const auto j = nlohmann::json::parse(text);
  pllm_free_string(text);
  // stories260K as its llama2.c header and the pocketllm info of session 1 describe it.
  CHECK(j["architecture"] == "llama");
  CHECK(j["format"] == "llama2.c");
  CHECK(j["layers"] == 5);
  CHECK(j["hidden_size"] == 64);
  CHECK(j["heads"] == 8);
  CHECK(j["kv_heads"] == 4);
  CHECK(j["vocab_size"] == 512);
  CHECK(j["context_length"] == 512);
  CHECK(j["parameters"] == 260032);
  CHECK(j["parameters"] == pllm_model_n_params(h.m));
  CHECK(j["dtypes"]["F32"] == 260032);
  CHECK(j["tokenizer"] == true);
  CHECK(j["adapter"].is_null());
  CHECK(j["trained"] == false);
  char* id = nullptr;
  REQUIRE(pllm_model_id(h.m, &id) == PLLM_OK);
  CHECK(j["id"] == std::string(id));
  pllm_free_string(id);
  CHECK(pllm_model_context_length(h.m) == 512);
  CHECK(pllm_model_context_length(nullptr) == 0);
  // The count is what generate encodes: a prompt of exactly the context is refused, one token less is not.
  int32_t n = -1;
  REQUIRE(pllm_count_tokens(h.m, "", &n) == PLLM_OK);
  CHECK(n == 1);  // the beginning-of-text token alone
  REQUIRE(pllm_count_tokens(h.m, "Once upon a time", &n) == PLLM_OK);
  CHECK(n > 1);
  CHECK(n < 17);
  std::string prompt;
  int32_t count = 0;
  while (count < 512) {
    prompt += " the dog ran.";
    REQUIRE(pllm_count_tokens(h.m, prompt.c_str(), &count) == PLLM_OK);
  }
  pllm_generate_params g = pllm_generate_default_params();
  g.max_new_tokens = 2;
  CHECK(pllm_generate(h.m, prompt.c_str(), &g, nullptr, nullptr, nullptr, &text) == PLLM_ERR_OUT_OF_RANGE);
  std::string shorter = prompt;
  while (count >= 512) {
    shorter.pop_back();
    REQUIRE(pllm_count_tokens(h.m, shorter.c_str(), &count) == PLLM_OK);
  }
  CHECK(count == 511);
  REQUIRE(pllm_generate(h.m, shorter.c_str(), &g, nullptr, nullptr, nullptr, &text) == PLLM_OK);
  pllm_free_string(text);
  n = 7;
  CHECK(pllm_count_tokens(h.m, "bad \xff", &n) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(n == 0);
  CHECK(pllm_count_tokens(nullptr, "x", &n) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_model_info(nullptr, &text) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(text == nullptr);
  pocketllm::sdk::Model m(model);
  CHECK(m.context_length() == 512);
  REQUIRE(pllm_count_tokens(h.m, "Once upon a time", &n) == PLLM_OK);
  CHECK(m.count_tokens("Once upon a time") == n);
  CHECK(nlohmann::json::parse(m.info())["parameters"] == 260032);
}

TEST_CASE("generate: a repetition penalty changes a greedy continuation, and an older struct_size leaves it off", "[sdk][generate]") {
  const std::string model = pocketllm::test::stories260k_dir();
  if (!have_stories(model)) return;
  ModelHandle h;
  REQUIRE(pllm_model_load(model.c_str(), nullptr, nullptr, &h.m) == PLLM_OK);
  auto run = [&](const pllm_generate_params& g) {
    char* text = nullptr;
    REQUIRE(pllm_generate(h.m, "Once upon a time", &g, nullptr, nullptr, nullptr, &text) == PLLM_OK);
    const std::string out = text;
    pllm_free_string(text);
    return out;
  };
  pllm_generate_params g = pllm_generate_default_params();
  CHECK(g.repetition_penalty == 1.0f);
  g.max_new_tokens = 120;
  const std::string plain = run(g);
  g.repetition_penalty = 1.3f;
  const std::string penalised = run(g);
  CHECK(penalised != plain);
  g.struct_size = offsetof(pllm_generate_params, repetition_penalty);  // a 0.2.0 header's struct
  CHECK(run(g) == plain);
  for (float bad : {0.0f, -1.0f, 101.0f, NAN}) {
    pllm_generate_params b = pllm_generate_default_params();
    b.repetition_penalty = bad;
    char* text = nullptr;
    CHECK(pllm_generate(h.m, "x", &b, nullptr, nullptr, nullptr, &text) == PLLM_ERR_INVALID_ARGUMENT);
    CHECK(std::string(pllm_last_error()).find("repetition_penalty") != std::string::npos);
  }
  // pocketllm.hpp streams through a std::function, and a handler's exception reaches the caller.
  pocketllm::sdk::Model m(model);
  pllm_generate_params s = pllm_generate_default_params();
  s.max_new_tokens = 20;
  std::string streamed;
  const std::string whole = m.generate("Once upon a time", s, [&](const std::string& piece) {
    streamed += piece;
    return true;
  });
  CHECK(streamed == whole);
  CHECK(whole == m.generate("Once upon a time", s));
  CHECK_THROWS_WITH(m.generate("Once", s, [](const std::string&) -> bool { throw std::runtime_error("app says no"); }),
                    "app says no");
  try {
    m.generate("Once", s, [](const std::string&) { return false; });
    FAIL("a handler returning false must stop generation");
  } catch (const pocketllm::sdk::Error& e) {
    CHECK(e.code() == PLLM_ERR_CANCELLED);
  }
}

TEST_CASE("bad input: NULLs, invalid UTF-8, unset or future struct sizes and absurd numbers are refused", "[sdk][bad-input]") {
  const std::string dir = toy_model();
  const std::string data = dir + "/train.txt";
  pllm_model* none = nullptr;
  CHECK(pllm_model_load(nullptr, nullptr, nullptr, &none) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_model_load(dir.c_str(), nullptr, nullptr, nullptr) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_model_load("bad \xc3\x28 path", nullptr, nullptr, &none) == PLLM_ERR_INVALID_ARGUMENT);
  pllm_model_params mp = pllm_model_default_params();
  mp.n_threads = -5;
  CHECK(pllm_model_load(dir.c_str(), &mp, nullptr, &none) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(std::string(pllm_last_error()).find("n_threads") != std::string::npos);
  mp = pllm_model_default_params();
  mp.struct_size = 0;
  CHECK(pllm_model_load(dir.c_str(), &mp, nullptr, &none) == PLLM_ERR_INVALID_ARGUMENT);
  mp.struct_size = sizeof(pllm_model_params) + 8;
  CHECK(pllm_model_load(dir.c_str(), &mp, nullptr, &none) == PLLM_ERR_UNSUPPORTED);
  pllm_control bad_control{};
  CHECK(pllm_model_load(dir.c_str(), nullptr, &bad_control, &none) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(none == nullptr);
  // An older header's smaller struct gets defaults for the fields it does not have.
  mp = pllm_model_default_params();
  mp.struct_size = offsetof(pllm_model_params, batch_size);
  ModelHandle h;
  REQUIRE(pllm_model_load(dir.c_str(), &mp, nullptr, &h.m) == PLLM_OK);

  char* text = reinterpret_cast<char*>(0x1);  // must be set to NULL on failure
  pllm_generate_params g = pllm_generate_default_params();
  CHECK(pllm_generate(h.m, "invalid \xff\xfe utf-8", &g, nullptr, nullptr, nullptr, &text) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(text == nullptr);
  CHECK(pllm_generate(h.m, nullptr, &g, nullptr, nullptr, nullptr, &text) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_generate(nullptr, "x", &g, nullptr, nullptr, nullptr, &text) == PLLM_ERR_INVALID_ARGUMENT);
  for (auto mutate : std::vector<void (*)(pllm_generate_params&)>{
           [](pllm_generate_params& p) { p.max_new_tokens = -1; }, [](pllm_generate_params& p) { p.max_new_tokens = 1 << 30; },
           [](pllm_generate_params& p) { p.temperature = NAN; }, [](pllm_generate_params& p) { p.temperature = -1; },
           [](pllm_generate_params& p) { p.top_p = 1.5f; }, [](pllm_generate_params& p) { p.top_k = -3; }}) {
    pllm_generate_params bad = pllm_generate_default_params();
    mutate(bad);
    CHECK(pllm_generate(h.m, "x", &bad, nullptr, nullptr, nullptr, &text) == PLLM_ERR_INVALID_ARGUMENT);
  }
  // Stopped by the token callback: CANCELLED, and no text is allocated.
  text = nullptr;
  CHECK(pllm_generate(h.m, "the", &g, [](const char*, void*) { return false; }, nullptr, nullptr, &text) == PLLM_ERR_CANCELLED);
  CHECK(text == nullptr);
  // The toy model has 128 positions: more new tokens than that stop where the context is full; a prompt
  // that fills it alone is OUT_OF_RANGE, with no text.
  pllm_generate_params many = pllm_generate_default_params();
  many.max_new_tokens = 65536;
  int pieces = 0;
  REQUIRE(pllm_generate(h.m, "the", &many, [](const char*, void* n) { return ++*static_cast<int*>(n), true; }, &pieces,
                        nullptr, &text) == PLLM_OK);
  CHECK(pieces > 0);
  CHECK(pieces <= 127);
  pllm_free_string(text);
  std::string filler;
  for (int i = 0; i < 200; ++i) filler += "the ";
  text = reinterpret_cast<char*>(0x1);
  CHECK(pllm_generate(h.m, filler.c_str(), &g, nullptr, nullptr, nullptr, &text) == PLLM_ERR_OUT_OF_RANGE);
  CHECK(text == nullptr);
  CHECK(std::string(pllm_last_error()).find("context is 128 positions") != std::string::npos);

  double loss = 0, acc = 0;
  CHECK(pllm_model_evaluate(h.m, "no\xff.txt", nullptr, nullptr, &loss, &acc) == PLLM_ERR_INVALID_ARGUMENT);
  pllm_evaluate_params ep = pllm_evaluate_default_params();
  ep.batch_size = 0;
  CHECK(pllm_model_evaluate(h.m, data.c_str(), &ep, nullptr, &loss, &acc) == PLLM_ERR_INVALID_ARGUMENT);
  ep = pllm_evaluate_default_params();
  ep.task = "translate";
  CHECK(pllm_model_evaluate(h.m, data.c_str(), &ep, nullptr, &loss, &acc) == PLLM_ERR_INVALID_ARGUMENT);

  pllm_session* s = nullptr;
  for (auto mutate : std::vector<void (*)(pllm_session_params&)>{
           [](pllm_session_params& p) { p.steps = -4; }, [](pllm_session_params& p) { p.batch_size = 1 << 20; },
           [](pllm_session_params& p) { p.lr = INFINITY; }, [](pllm_session_params& p) { p.eps = 0; },
           [](pllm_session_params& p) { p.max_length = 1; }, [](pllm_session_params& p) { p.run_dir = nullptr; },
           [](pllm_session_params& p) { p.trainable = "bad\xff"; }, [](pllm_session_params& p) { p.task = "x"; }}) {
    pllm_session_params bad = session_params(dir + "/run-bad", data, 4);
    mutate(bad);
    CHECK(pllm_session_open(h.m, &bad, nullptr, &s) == PLLM_ERR_INVALID_ARGUMENT);
    CHECK(s == nullptr);
  }
  CHECK_FALSE(fs::exists(dir + "/run-bad"));  // nothing was created by a refused call
  pllm_session_params sp = session_params(dir + "/run", data, 4);
  CHECK(pllm_session_open(nullptr, &sp, nullptr, &s) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_session_train(nullptr, 0, nullptr, nullptr, nullptr) == PLLM_ERR_INVALID_ARGUMENT);

  pllm_examples* ex = pllm_examples_new();
  CHECK(pllm_examples_add_text(ex, "bad \xff utf-8") == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_examples_add_completion(ex, "q", nullptr) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_examples_add_labelled(ex, "text", "\xc0\x80") == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_examples_add_text(nullptr, "x") == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_examples_count(ex) == 0);
  pllm_examples_free(ex);
  pllm_examples_free(nullptr);
  pllm_model_free(nullptr);
  pllm_session_free(nullptr);
  pllm_device_free(nullptr);
  pllm_cancel_free(nullptr);
  fs::remove_all(dir);
}

TEST_CASE("the memory estimate reads no weight: a budget below it is refused before anything is mapped", "[sdk][bad-input]") {
  const std::string dir = toy_model();
  pllm_memory_estimate e{};
  pllm_model_params p = pllm_model_default_params();
  REQUIRE(pllm_estimate_memory(dir.c_str(), &p, &e) == PLLM_OK);
  CHECK(e.weights_bytes == fs::file_size(dir + "/model.safetensors"));
  CHECK(e.total_bytes == e.weights_bytes + e.activation_bytes);
  p.batch_size = 8;
  pllm_memory_estimate bigger{};
  REQUIRE(pllm_estimate_memory(dir.c_str(), &p, &bigger) == PLLM_OK);
  CHECK(bigger.activation_bytes > e.activation_bytes);

  // 8 GiB of "weights" that are not even a safetensors file (sparse: nothing on disk). The estimate
  // comes from config.json and the size; a budget below it refuses before the file is opened, so the
  // garbage is never parsed and nothing becomes resident.
  const std::string huge = pocketllm::test::temp_dir("");
  fs::copy_file(dir + "/config.json", huge + "/config.json");
  fs::copy_file(dir + "/tokenizer.bin", huge + "/tokenizer.bin");
  { std::ofstream(huge + "/model.safetensors") << "garbage"; }
  fs::resize_file(huge + "/model.safetensors", uint64_t{8} << 30);
  p = pllm_model_default_params();
  p.memory_budget_bytes = uint64_t{1} << 30;
  pllm_model* m = nullptr;
  CHECK(pllm_model_load(huge.c_str(), &p, nullptr, &m) == PLLM_ERR_MEMORY_BUDGET);
  const std::string why = pllm_last_error();
  CHECK(why.find("8192.0 MiB weights") != std::string::npos);
  CHECK(why.find("1073741824") != std::string::npos);
  CHECK(m == nullptr);
  p.memory_budget_bytes = 0;  // without a budget the same file is opened and found corrupt
  CHECK(pllm_model_load(huge.c_str(), &p, nullptr, &m) == PLLM_ERR_CORRUPT);
  CHECK(pllm_estimate_memory("/nonexistent", nullptr, &e) == PLLM_ERR_NOT_FOUND);
  CHECK(pllm_estimate_memory(dir.c_str(), nullptr, nullptr) == PLLM_ERR_INVALID_ARGUMENT);
  fs::remove_all(huge);
  fs::remove_all(dir);
}

TEST_CASE("a session tells the log hook what the data lost on its way to examples", "[sdk][log]") {
  const std::string dir = toy_model();
  const std::string data = dir + "/long.txt";
  {
    std::ofstream f(data);
    f << "the cat sat on the mat\n";
    for (int i = 0; i < 400; ++i) f << "the cat ";
    f << "\nthe dog\n";
  }
  ModelHandle h;
  h.m = load(dir);
  std::vector<std::pair<pllm_log_level, std::string>> lines;
  pllm_set_log_callback([](pllm_log_level level, const char* message, void* user) {
    static_cast<std::vector<std::pair<pllm_log_level, std::string>>*>(user)->emplace_back(level, message);
  }, &lines, PLLM_LOG_INFO);
  pllm_session_params sp = session_params(dir + "/run", data, 2);
  sp.max_length = 1000;  // over the toy model's 128 positions
  sp.min_words = 3;      // "the dog" goes
  pllm_session* s = nullptr;
  const pllm_status st = pllm_session_open(h.m, &sp, nullptr, &s);
  pllm_set_log_callback(nullptr, nullptr, PLLM_LOG_ERROR);
  REQUIRE(st == PLLM_OK);
  pllm_session_free(s);
  auto logged = [&](pllm_log_level level, const std::string& text) {
    for (const auto& [l, m] : lines)
      if (l == level && m.find(text) != std::string::npos) return true;
    return false;
  };
  CHECK(logged(PLLM_LOG_WARN, "max length 1000 is over the model's 128 positions"));
  CHECK(logged(PLLM_LOG_WARN, "1 training examples have fewer than 3 words (min words)"));
  CHECK(logged(PLLM_LOG_WARN, "1 training examples are longer than 128 tokens and were cut to it"));
  CHECK(logged(PLLM_LOG_INFO, "2 training examples, step 0 of 2"));
  fs::remove_all(dir);
}

TEST_CASE("evaluation reports its progress batch by batch, and a progress callback can stop it", "[sdk][progress]") {
  const std::string dir = toy_model();
  const std::string data = dir + "/ten.txt";
  {
    std::ofstream f(data);
    for (int i = 0; i < 10; ++i) f << "the cat sat on the mat number " << i << "\n";
  }
  ModelHandle h;
  h.m = load(dir);
  pllm_evaluate_params ep = pllm_evaluate_default_params();
  ep.batch_size = 3;  // 10 examples: batches of 3, 3, 3, 1
  std::vector<float> seen;
  pllm_control c = pllm_control_default();
  c.progress = [](float f, void* user) { return static_cast<std::vector<float>*>(user)->push_back(f), true; };
  c.user = &seen;
  double loss = NAN, acc = 0;
  REQUIRE(pllm_model_evaluate(h.m, data.c_str(), &ep, &c, &loss, &acc) == PLLM_OK);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] == Approx(0.3f));
  CHECK(seen[1] == Approx(0.6f));
  CHECK(seen[2] == Approx(0.9f));
  CHECK(seen[3] == 1.0f);
  CHECK(std::isfinite(loss));
  seen.clear();
  c.progress = [](float f, void* user) { return static_cast<std::vector<float>*>(user)->push_back(f), false; };
  CHECK(pllm_model_evaluate(h.m, data.c_str(), &ep, &c, &loss, &acc) == PLLM_ERR_CANCELLED);
  CHECK(seen.size() == 1);  // stopped after the first batch
  fs::remove_all(dir);
}

TEST_CASE("a model freed before its session stays alive for it and is freed with it", "[sdk][lifetime]") {
  const std::string dir = toy_model();
  pllm_model* m = load(dir);
  pllm_session_params sp = session_params(dir + "/run", dir + "/train.txt", 4);
  pllm_session* s = nullptr;
  REQUIRE(pllm_session_open(m, &sp, nullptr, &s) == PLLM_OK);
  std::vector<std::string> lines;
  pllm_set_log_callback([](pllm_log_level, const char* message, void* user) { static_cast<std::vector<std::string>*>(user)->push_back(message); },
                        &lines, PLLM_LOG_WARN);
  pllm_model_free(m);  // the wrong order: the session still trains on it
  pllm_set_log_callback(nullptr, nullptr, PLLM_LOG_ERROR);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("in use by a training session") != std::string::npos);
  int32_t done = 0;
  double loss = NAN;
  CHECK(pllm_session_train(s, 0, nullptr, &done, &loss) == PLLM_OK);  // ASan: no use after free
  CHECK(done == 4);
  pllm_session_free(s);  // frees the model too (ASan's leak check: nothing left)
  fs::remove_all(dir);
}

TEST_CASE("one model: generate, train in place in a session, and use what it learnt without a reload", "[sdk][e2e]") {
  const std::string dir = toy_model();
  const std::string data = dir + "/train.txt", run = dir + "/run";
  ModelHandle h;
  h.m = load(dir);
  char* id = nullptr;
  REQUIRE(pllm_model_id(h.m, &id) == PLLM_OK);
  CHECK(std::strlen(id) == 64);
  pllm_free_string(id);
  CHECK_FALSE(pllm_model_is_trained(h.m));
  const double base = eval_loss(h.m, data);

  pllm_session_params sp = session_params(run, data, 8);
  sp.eval_data_path = sp.data_path;
  pllm_session* s = nullptr;
  REQUIRE(pllm_session_open(h.m, &sp, nullptr, &s) == PLLM_OK);
  CHECK(pllm_session_total_steps(s) == 8);
  // While the session has the model, a second session or a device cannot take it.
  pllm_session* s2 = nullptr;
  pllm_session_params other = session_params(dir + "/run2", data, 8);
  CHECK(pllm_session_open(h.m, &other, nullptr, &s2) == PLLM_ERR_BUSY);
  int32_t done = 0;
  double loss = NAN;
  REQUIRE(pllm_session_train(s, 3, nullptr, &done, &loss) == PLLM_OK);
  CHECK(done == 3);
  CHECK(loss == base);  // the held-out evaluation at the start of the run
  REQUIRE(pllm_session_train(s, 0, nullptr, &done, &loss) == PLLM_OK);
  CHECK(done == 8);
  CHECK(std::isfinite(loss));
  CHECK(eval_loss(h.m, data) == loss);  // the model in memory is the trained one
  CHECK(loss != base);
  pllm_session_free(s);
  CHECK(pllm_model_is_trained(h.m));
  CHECK(pllm_session_open(h.m, &other, nullptr, &s2) == PLLM_ERR_BUSY);  // trained: load again to start from the base
  char* text = nullptr;
  pllm_generate_params g = pllm_generate_default_params();
  g.max_new_tokens = 4;
  REQUIRE(pllm_generate(h.m, "the", &g, nullptr, nullptr, nullptr, &text) == PLLM_OK);
  pllm_free_string(text);

  // The run's files are private, created so.
  CHECK(mode_of(run) == 0700);
  CHECK(mode_of(run + "/spec.json") == 0600);
  CHECK(mode_of(run + "/log.jsonl") == 0600);
  CHECK(mode_of(run + "/snapshot.safetensors") == 0600);
  // A fresh model of the same base reopens the finished run to exactly the trained weights.
  ModelHandle fresh;
  fresh.m = load(dir);
  REQUIRE(pllm_session_open(fresh.m, &sp, nullptr, &s) == PLLM_OK);
  CHECK(pllm_session_steps_done(s) == 8);
  pllm_session_free(s);
  CHECK(eval_loss(fresh.m, data) == loss);
  fs::remove_all(dir);
}

TEST_CASE("a session cancelled from another thread or by progress resumes to the uninterrupted weights", "[sdk][e2e]") {
  const std::string dir = toy_model(33);
  const std::string data = dir + "/train.txt";
  ModelHandle straight;
  straight.m = load(dir);
  pllm_session* s = nullptr;
  pllm_session_params sp = session_params(dir + "/straight", data, 12);
  REQUIRE(pllm_session_open(straight.m, &sp, nullptr, &s) == PLLM_OK);
  REQUIRE(pllm_session_train(s, 0, nullptr, nullptr, nullptr) == PLLM_OK);
  pllm_session_free(s);
  const double want = eval_loss(straight.m, data);

  ModelHandle first;
  first.m = load(dir);
  sp = session_params(dir + "/run", data, 12);
  REQUIRE(pllm_session_open(first.m, &sp, nullptr, &s) == PLLM_OK);
  pllm_control c = pllm_control_default();
  int calls = 0;
  c.progress = [](float, void* user) { return ++*static_cast<int*>(user) < 3; };
  c.user = &calls;
  int32_t done = 0;
  CHECK(pllm_session_train(s, 0, &c, &done, nullptr) == PLLM_ERR_CANCELLED);
  CHECK(done == 3);
  // A pllm_cancel raised by another thread while training.
  pllm_cancel* cancel = pllm_cancel_new();
  c = pllm_control_default();
  c.cancel = cancel;
  std::atomic<int> steps_seen{0};
  struct Ctx {
    std::atomic<int>* seen;
  } ctx{&steps_seen};
  c.progress = [](float, void* user) {
    static_cast<Ctx*>(user)->seen->fetch_add(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return true;
  };
  c.user = &ctx;
  std::thread canceller([&] {
    while (steps_seen.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    pllm_cancel_request(cancel);
  });
  CHECK(pllm_session_train(s, 0, &c, &done, nullptr) == PLLM_ERR_CANCELLED);
  canceller.join();
  CHECK(done >= 5);
  CHECK(done < 12);
  pllm_session_free(s);
  // The app is killed here; a new model and session resume the run from its directory.
  ModelHandle second;
  second.m = load(dir);
  pllm_cancel_reset(cancel);
  REQUIRE(pllm_session_open(second.m, &sp, &c, &s) == PLLM_OK);
  REQUIRE(pllm_session_train(s, 0, nullptr, &done, nullptr) == PLLM_OK);
  CHECK(done == 12);
  pllm_session_free(s);
  pllm_cancel_free(cancel);
  CHECK(eval_loss(second.m, data) == want);
  fs::remove_all(dir);
}

TEST_CASE("a run directory open twice is BUSY: a run moved with its model and data resumes", "[sdk][e2e][bad-input]") {
  const std::string root = pocketllm::test::temp_dir("");
  const std::string dir = root + "/app";
  fs::create_directories(dir + "/model");
  pocketllm::test::write_toy_model_dir(dir + "/model", 34);
  pocketllm::test::write_lines(dir + "/train.txt", {"the cat", "a hat", "the bad cat", "he had a cat"});
  ModelHandle a, b;
  a.m = load(dir + "/model");
  b.m = load(dir + "/model");
  pllm_session_params sp = session_params(dir + "/run", dir + "/train.txt", 10);
  pllm_session *sa = nullptr, *sb = nullptr;
  REQUIRE(pllm_session_open(a.m, &sp, nullptr, &sa) == PLLM_OK);
  REQUIRE(pllm_session_train(sa, 4, nullptr, nullptr, nullptr) == PLLM_OK);
  CHECK(pllm_session_open(b.m, &sp, nullptr, &sb) == PLLM_ERR_BUSY);
  CHECK(std::string(pllm_last_error()).find("open in another process or handle") != std::string::npos);
  CHECK(sb == nullptr);
  pllm_session_free(sa);
  // The spec names the model and data relative to the run, not by absolute paths.
  std::ifstream spec_file(dir + "/run/spec.json");
  const auto spec = nlohmann::json::parse(spec_file);
  CHECK(spec["model"]["path"] == "../model");
  CHECK(spec["data"]["path"] == "../train.txt");

  // The OS moves the app's container: everything lands elsewhere, and the run resumes there.
  fs::rename(dir, root + "/moved");
  ModelHandle c;
  c.m = load(root + "/moved/model");
  pllm_session_params moved = session_params(root + "/moved/run", "", 10);
  moved.data_path = nullptr;  // found through the run's relative path
  pllm_session* sc = nullptr;
  REQUIRE(pllm_session_open(c.m, &moved, nullptr, &sc) == PLLM_OK);
  int32_t done = 0;
  REQUIRE(pllm_session_train(sc, 0, nullptr, &done, nullptr) == PLLM_OK);
  CHECK(done == 10);
  pllm_session_free(sc);
  // Resuming with a different data file is refused (its hash differs).
  pocketllm::test::write_lines(root + "/other.txt", {"something else entirely"});
  ModelHandle d;
  d.m = load(root + "/moved/model");
  pllm_session_params wrong = session_params(root + "/moved/run", root + "/other.txt", 10);
  CHECK(pllm_session_open(d.m, &wrong, nullptr, &sc) == PLLM_ERR_MISMATCH);
  fs::remove_all(root);
}

TEST_CASE("cancellation reaches into loading, evaluation and tokenisation", "[sdk][bad-input]") {
  const std::string model = pocketllm::test::stories260k_dir();
  if (!pocketllm::test::path_exists(model)) {
    WARN("skipped: " << model << " not found");
    return;
  }
  pllm_cancel* cancel = pllm_cancel_new();
  pllm_control c = pllm_control_default();
  c.cancel = cancel;
  // Load: the progress callback stands in for another thread raising the flag once loading started;
  // the loader notices between tensors.
  c.progress = [](float, void* user) {
    pllm_cancel_request(static_cast<pllm_cancel*>(user));
    return true;
  };
  c.user = cancel;
  pllm_model* m = nullptr;
  CHECK(pllm_model_load(model.c_str(), nullptr, &c, &m) == PLLM_ERR_CANCELLED);
  CHECK(m == nullptr);
  c.progress = nullptr;
  pllm_cancel_reset(cancel);
  ModelHandle h;
  REQUIRE(pllm_model_load(model.c_str(), nullptr, &c, &h.m) == PLLM_OK);

  // Evaluation of a long file, cancelled from another thread.
  const std::string dir = pocketllm::test::temp_dir("");
  {
    std::ofstream f(dir + "/long.txt");
    for (int i = 0; i < 4000; ++i) f << "Once upon a time there was a little girl who liked to play in the park with her dog every day.\n";
  }
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    pllm_cancel_request(cancel);
  });
  double loss = 0, acc = 0;
  CHECK(pllm_model_evaluate(h.m, (dir + "/long.txt").c_str(), nullptr, &c, &loss, &acc) == PLLM_ERR_CANCELLED);
  t.join();
  // The model is still usable afterwards.
  pllm_cancel_reset(cancel);
  pllm_generate_params g = pllm_generate_default_params();
  g.max_new_tokens = 3;
  char* text = nullptr;
  REQUIRE(pllm_generate(h.m, "Once upon a time", &g, nullptr, nullptr, &c, &text) == PLLM_OK);
  pllm_free_string(text);
  // A very long prompt, cancelled from another thread while it is tokenised or run.
  std::string prompt;
  while (prompt.size() < 400000) prompt += "the little dog ran to the park and played with a red ball. ";
  std::thread t2([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    pllm_cancel_request(cancel);
  });
  text = nullptr;
  CHECK(pllm_generate(h.m, prompt.c_str(), &g, nullptr, nullptr, &c, &text) == PLLM_ERR_CANCELLED);
  CHECK(text == nullptr);
  t2.join();
  pllm_cancel_free(cancel);
  fs::remove_all(dir);
}

TEST_CASE("private examples collected in memory are written 0600 and feed a session: export the run", "[sdk]") {
  const std::string dir = toy_model();
  pllm_examples* ex = pllm_examples_new();
  REQUIRE(ex != nullptr);
  CHECK(pllm_examples_write(ex, (dir + "/none.jsonl").c_str()) == PLLM_ERR_INVALID_ARGUMENT);  // nothing yet
  CHECK(pllm_examples_add_text(ex, "") == PLLM_ERR_INVALID_ARGUMENT);
  for (const char* t : {"the cat", "a hat", "the bad cat", "he had a cat"}) REQUIRE(pllm_examples_add_text(ex, t) == PLLM_OK);
  REQUIRE(pllm_examples_add_completion(ex, "the", " cat") == PLLM_OK);
  CHECK(pllm_examples_count(ex) == 5);
  const std::string data = dir + "/mine.jsonl";
  REQUIRE(pllm_examples_write(ex, data.c_str()) == PLLM_OK);
  pllm_examples_free(ex);
  CHECK(mode_of(data) == 0600);

  ModelHandle h;
  h.m = load(dir);
  const std::string run = dir + "/run";
  pllm_session_params sp = session_params(run, data, 6);
  sp.memory_budget_bytes = 4096;  // far below the weights: refused before anything starts, with the estimate
  pllm_session* s = nullptr;
  CHECK(pllm_session_open(h.m, &sp, nullptr, &s) == PLLM_ERR_MEMORY_BUDGET);
  const std::string why = pllm_last_error();
  CHECK(why.find("MiB weights") != std::string::npos);
  CHECK(why.find("4096") != std::string::npos);
  CHECK_FALSE(fs::exists(run));  // no run directory was created
  sp.memory_budget_bytes = uint64_t{1} << 32;
  REQUIRE(pllm_session_open(h.m, &sp, nullptr, &s) == PLLM_OK);
  REQUIRE(pllm_session_train(s, 0, nullptr, nullptr, nullptr) == PLLM_OK);
  CHECK(pllm_export(run.c_str(), (dir + "/busy").c_str()) == PLLM_ERR_BUSY);  // the session still has the run open
  pllm_session_free(s);
  const double trained = eval_loss(h.m, data);
  const std::string out = dir + "/exported";
  REQUIRE(pllm_export(run.c_str(), out.c_str()) == PLLM_OK);
  ModelHandle exported;
  exported.m = load(out);
  CHECK(eval_loss(exported.m, data) == trained);  // the exported model is the run's weights
  CHECK(pllm_export((dir + "/no-run").c_str(), out.c_str()) != PLLM_OK);
  fs::remove_all(dir);
}

namespace {

// A scripted "app HTTP stack": replies from a table, or fails; counts its calls.
struct FakeServer {
  std::function<pllm_status(const std::string& method, const std::string& path, pllm_http_reply* reply)> handle;
  std::atomic<int> calls{0};
};

pllm_status fake_transport(const char* method, const char* path, const char*, size_t, const char*, pllm_http_reply* reply, void* user) {
  auto* f = static_cast<FakeServer*>(user);
  ++f->calls;
  return f->handle(method, path, reply);
}

pllm_status reply(pllm_http_reply* r, int status, const std::string& body) { return pllm_http_reply_set(r, status, body.data(), body.size()); }

}  // namespace

TEST_CASE("the transport-agnostic device: corrupt or truncated replies and failing transports change nothing", "[sdk][bad-input]") {
  const std::string dir = toy_model();
  ModelHandle h;
  h.m = load(dir);
  const std::string cred = dir + "/device.cred", state = dir + "/state", data = dir + "/train.txt";
  FakeServer server;
  pllm_device_params p = pllm_device_default_params();
  p.transport = fake_transport;
  p.transport_user = &server;
  p.server_url = "https://example.invalid";
  p.credentials_path = cred.c_str();
  p.enrolment_token = "token";
  p.task_id = "t";
  p.data_path = data.c_str();
  p.state_dir = state.c_str();
  pllm_device* d = nullptr;
  const std::vector<std::pair<std::string, std::function<pllm_status(const std::string&, const std::string&, pllm_http_reply*)>>> cases = {
      {"truncated enrolment reply", [](const std::string&, const std::string&, pllm_http_reply* r) { return reply(r, 201, R"({"device_id":"d1","cred)"); }},
      {"enrolment reply of the wrong shape", [](const std::string&, const std::string&, pllm_http_reply* r) { return reply(r, 201, R"([1,2,3])"); }},
      {"binary garbage", [](const std::string&, const std::string&, pllm_http_reply* r) { return reply(r, 201, std::string("\x00\xff\x13", 3)); }},
      {"enrolment refused", [](const std::string&, const std::string&, pllm_http_reply* r) {
         return reply(r, 403, R"({"error":{"code":"forbidden","message":"token used up"}})");
       }},
      {"corrupt task after a good enrolment", [](const std::string& m, const std::string&, pllm_http_reply* r) {
         if (m == "POST") return reply(r, 201, R"({"device_id":"d1","credential":"c1"})");
         return reply(r, 200, R"({"id":"t","base_model_id":)");
       }},
      {"task of another model", [](const std::string& m, const std::string&, pllm_http_reply* r) {
         if (m == "POST") return reply(r, 201, R"({"device_id":"d1","credential":"c1"})");
         return reply(r, 200, R"({"id":"t","base_model_id":")" + std::string(64, 'b') + R"(","trainable":"*","version":0})");
       }},
  };
  for (const auto& [name, handler] : cases) {
    INFO(name);
    server.handle = handler;
    const pllm_status s = pllm_device_open(h.m, &p, nullptr, &d);
    CHECK(s != PLLM_OK);
    CHECK(s != PLLM_ERR_INTERNAL);
    CHECK(std::string(pllm_last_error()).size() > 10);
    CHECK(d == nullptr);
    CHECK_FALSE(fs::exists(state));  // no device state was made from a bad reply
    CHECK_FALSE(pllm_model_is_trained(h.m));
    fs::remove(cred);  // (a good enrolment keeps its credential; start each case afresh)
  }
  // A transport that says OK but sets no reply, and one that cannot reach the server: retried with
  // backoff, and cancelled from another thread within the backoff.
  for (bool set_nothing : {true, false}) {
    server.calls = 0;
    server.handle = [set_nothing](const std::string&, const std::string&, pllm_http_reply*) { return set_nothing ? PLLM_OK : PLLM_ERR_IO; };
    pllm_cancel* cancel = pllm_cancel_new();
    pllm_control c = pllm_control_default();
    c.cancel = cancel;
    std::thread t([&] {
      while (server.calls.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      pllm_cancel_request(cancel);
    });
    CHECK(pllm_device_open(h.m, &p, &c, &d) == PLLM_ERR_CANCELLED);
    t.join();
    pllm_cancel_free(cancel);
    CHECK(server.calls.load() >= 2);
    CHECK_FALSE(fs::exists(cred));
  }
  // The model is untouched and usable after all of it.
  CHECK(std::isfinite(eval_loss(h.m, data)));
  pllm_device_params builtin_only = p;
  builtin_only.transport = nullptr;
  builtin_only.server_url = nullptr;
  CHECK(pllm_device_open(h.m, &builtin_only, nullptr, &d) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_http_reply_set(nullptr, 200, "", 0) == PLLM_ERR_INVALID_ARGUMENT);
  fs::remove_all(dir);
}

TEST_CASE("a quantized GGUF model through the C ABI: estimate, load, generate, train the norms in place", "[sdk][gguf]") {
  const std::string stories = pocketllm::test::stories260k_dir();
  if (!have_stories(stories)) return;
  const std::string dir = pocketllm::test::temp_dir("");
  const std::string gguf = dir + "/stories260K-q8_0.gguf";
  {
    auto l = pocketllm::load_model(stories, pocketllm::LoadOptions::with_tokenizer());
    REQUIRE(l.is_ok());
    pocketllm::GgufExportOptions o;
    o.type = pocketllm::DType::kQ8_0;
    REQUIRE(pocketllm::export_gguf(l.value(), gguf, o).is_ok());
  }
  pllm_memory_estimate e{};
  REQUIRE(pllm_estimate_memory(gguf.c_str(), nullptr, &e) == PLLM_OK);
  CHECK(e.weights_bytes >= fs::file_size(gguf));
  CHECK(e.weights_bytes < 2 * fs::file_size(gguf));
  ModelHandle h;
  h.m = load(gguf);
  char* text = nullptr;
  pllm_generate_params g = pllm_generate_default_params();
  g.max_new_tokens = 20;
  REQUIRE(pllm_generate(h.m, "Once upon a time", &g, nullptr, nullptr, nullptr, &text) == PLLM_OK);
  CHECK(std::string(text).find("there was a little girl named Lily") != std::string::npos);
  pllm_free_string(text);
  { std::ofstream(dir + "/train.txt") << "the cat sat on the mat\nthe dog ran to the park\na bird sang in the tree\n"; }
  const double base = eval_loss(h.m, dir + "/train.txt");
  pllm_session_params sp = session_params(dir + "/run", dir + "/train.txt", 6);
  sp.trainable = "*norm*";  // quantized matrices stay frozen; the norms are float32 copies
  pllm_session* s = nullptr;
  REQUIRE(pllm_session_open(h.m, &sp, nullptr, &s) == PLLM_OK);
  int32_t done = 0;
  double loss = NAN;
  REQUIRE(pllm_session_train(s, 0, nullptr, &done, &loss) == PLLM_OK);
  CHECK(done == 6);
  pllm_session_free(s);
  CHECK(eval_loss(h.m, dir + "/train.txt") != base);  // the model in memory learnt
  fs::remove_all(dir);
}

TEST_CASE("a LoRA session through the C ABI trains adapters in place, and an older struct size gets no adapters", "[sdk][lora]") {
  const std::string dir = toy_model(61);
  ModelHandle h;
  h.m = load(dir);
  const double base = eval_loss(h.m, dir + "/train.txt");
  pllm_session_params sp = session_params(dir + "/run", dir + "/train.txt", 5);
  sp.lora_rank = 2;
  sp.lora_targets = "q_proj,v_proj,down_proj";
  sp.lr = 5e-2f;
  pllm_session* s = nullptr;
  REQUIRE(pllm_session_open(h.m, &sp, nullptr, &s) == PLLM_OK);
  int32_t done = 0;
  REQUIRE(pllm_session_train(s, 0, nullptr, &done, nullptr) == PLLM_OK);
  CHECK(done == 5);
  pllm_session_free(s);
  CHECK(eval_loss(h.m, dir + "/train.txt") != base);  // the adapters in memory learnt
  const auto spec = nlohmann::json::parse(std::ifstream(dir + "/run/spec.json"));
  CHECK(spec["adapter"]["rank"] == 2);
  CHECK(spec["adapter"]["targets"] == "q_proj,v_proj,down_proj");
  CHECK(spec["trainable"] == "none");
  // The snapshot holds the adapters alone: kilobytes.
  CHECK(fs::file_size(dir + "/run/snapshot.safetensors") < 16 * 1024);

  // Export through the C ABI: the adapters as a PEFT directory, and the merged model, which scores what
  // the trained model in memory scores.
  const double trained = eval_loss(h.m, dir + "/train.txt");
  REQUIRE(pllm_export_as((dir + "/run").c_str(), (dir + "/peft").c_str(), "peft", nullptr) == PLLM_OK);
  const auto config = nlohmann::json::parse(std::ifstream(dir + "/peft/adapter_config.json"));
  CHECK(config["r"] == 2);
  CHECK(config["peft_type"] == "LORA");
  std::ifstream st(dir + "/peft/adapter_model.safetensors", std::ios::binary);
  uint64_t header_len = 0;
  st.read(reinterpret_cast<char*>(&header_len), 8);
  REQUIRE(header_len < 1 << 20);
  std::string header(header_len, '\0');
  st.read(header.data(), static_cast<std::streamsize>(header_len));
  CHECK(header.find("lora_A.weight") != std::string::npos);
  CHECK(header.find("lora_B.weight") != std::string::npos);
  CHECK(fs::file_size(dir + "/peft/adapter_model.safetensors") < 16 * 1024);
  REQUIRE(pllm_export_as((dir + "/run").c_str(), (dir + "/merged").c_str(), nullptr, nullptr) == PLLM_OK);
  ModelHandle merged;
  merged.m = load(dir + "/merged");
  CHECK(eval_loss(merged.m, dir + "/train.txt") == Approx(trained).epsilon(1e-5));
  CHECK(pllm_export_as((dir + "/run").c_str(), (dir + "/x").c_str(), "onnx", nullptr) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(std::string(pllm_last_error()).find("hf, gguf or peft") != std::string::npos);
  CHECK(pllm_export_as((dir + "/run").c_str(), (dir + "/x").c_str(), "hf", "q8_0") == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_export_as((dir + "/run").c_str(), (dir + "/x").c_str(), "gguf", "q3_k") == PLLM_ERR_INVALID_ARGUMENT);

  // A caller built against the 0.2.0 header passes the shorter struct: no adapters, the old default set.
  ModelHandle old;
  old.m = load(dir);
  pllm_session_params legacy = session_params(dir + "/run-legacy", dir + "/train.txt", 2);
  legacy.lora_rank = 4;  // beyond the struct size below: must be ignored
  legacy.struct_size = static_cast<uint32_t>(offsetof(pllm_session_params, lora_rank));
  REQUIRE(pllm_session_open(old.m, &legacy, nullptr, &s) == PLLM_OK);
  REQUIRE(pllm_session_train(s, 0, nullptr, &done, nullptr) == PLLM_OK);
  pllm_session_free(s);
  const auto legacy_spec = nlohmann::json::parse(std::ifstream(dir + "/run-legacy/spec.json"));
  CHECK_FALSE(legacy_spec.contains("adapter"));

  ModelHandle bad;
  bad.m = load(dir);
  pllm_session_params wrong = session_params(dir + "/run-bad", dir + "/train.txt", 2);
  wrong.lora_rank = 2;
  wrong.lora_targets = "query";  // not a module of a Llama
  CHECK(pllm_session_open(bad.m, &wrong, nullptr, &s) != PLLM_OK);
  CHECK(std::string(pllm_last_error()).find("match no linear layer") != std::string::npos);
  wrong.lora_rank = -1;
  CHECK(pllm_session_open(bad.m, &wrong, nullptr, &s) == PLLM_ERR_INVALID_ARGUMENT);
  fs::remove_all(dir);
}

TEST_CASE("a session with a validation split ends with the best step's weights in memory and in the export", "[sdk][validation]") {
  const std::string dir = toy_model(67);
  ModelHandle h;
  h.m = load(dir);
  pllm_session_params sp = session_params(dir + "/run", dir + "/train.txt", 8);
  sp.lr = 5e-2f;
  sp.validation_examples = 2;
  sp.validate_every = 2;
  pllm_session* s = nullptr;
  REQUIRE(pllm_session_open(h.m, &sp, nullptr, &s) == PLLM_OK);
  int32_t done = 0;
  REQUIRE(pllm_session_train(s, 0, nullptr, &done, nullptr) == PLLM_OK);
  CHECK(done == 8);
  pllm_session_free(s);
  const auto spec = nlohmann::json::parse(std::ifstream(dir + "/run/spec.json"));
  CHECK(spec["validation"]["examples"] == 2);
  int validations = 0, last_best = -1;
  std::ifstream metrics(dir + "/run/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const auto m = nlohmann::json::parse(line);
    validations += m.contains("validation_loss");
    if (m.value("best", false)) last_best = m["step"];
  }
  CHECK(validations == 5);  // steps 0, 2, 4, 6, 8
  CHECK((last_best > 0 && last_best < 8));  // lr 5e-2 overshoots late: the best is a middle step
  CHECK(fs::exists(dir + "/run/best.safetensors"));
  // The model in memory and the exported run are the same weights: the best step's.
  const double in_memory = eval_loss(h.m, dir + "/train.txt");
  REQUIRE(pllm_export_as((dir + "/run").c_str(), (dir + "/out").c_str(), nullptr, nullptr) == PLLM_OK);
  ModelHandle exported;
  exported.m = load(dir + "/out");
  CHECK(eval_loss(exported.m, dir + "/train.txt") == Approx(in_memory).epsilon(1e-6));

  // A caller with the struct before these fields gets no validation; nonsense values are refused.
  ModelHandle old;
  old.m = load(dir);
  pllm_session_params legacy = session_params(dir + "/run-legacy", dir + "/train.txt", 2);
  legacy.validation_examples = 3;  // beyond the struct size below: ignored
  legacy.struct_size = static_cast<uint32_t>(offsetof(pllm_session_params, validation_examples));
  REQUIRE(pllm_session_open(old.m, &legacy, nullptr, &s) == PLLM_OK);
  pllm_session_free(s);
  CHECK_FALSE(nlohmann::json::parse(std::ifstream(dir + "/run-legacy/spec.json")).contains("validation"));
  ModelHandle bad;
  bad.m = load(dir);
  pllm_session_params wrong = session_params(dir + "/run-bad", dir + "/train.txt", 2);
  wrong.patience = 2;  // without a validation split
  CHECK(pllm_session_open(bad.m, &wrong, nullptr, &s) == PLLM_ERR_INVALID_ARGUMENT);
  wrong.patience = 0;
  wrong.validation_examples = 5;  // the whole sample
  CHECK(pllm_session_open(bad.m, &wrong, nullptr, &s) != PLLM_OK);
  CHECK(std::string(pllm_last_error()).find("leaves nothing to train on") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("a session left to the recipe gets its task and preset defaults, and fields set replace them", "[sdk][recipe]") {
  const std::string stories = pocketllm::test::stories260k_dir();
  if (!have_stories(stories)) return;
  const std::string dir = pocketllm::test::temp_dir("");
  std::vector<std::string> rows{"text\tlabel"};
  for (int i = 0; i < 12; ++i) {  // 24 sentences of at least six words, 24 shorter ones
    rows.push_back("what a truly wonderful and moving film number " + std::to_string(i) + "\t1");
    rows.push_back("this was a dull and tiresome film number " + std::to_string(i) + "\t0");
    rows.push_back("ok " + std::to_string(i) + "\t1");
    rows.push_back("bad " + std::to_string(i) + "\t0");
  }
  pocketllm::test::write_lines(dir + "/s.tsv", rows);
  auto open_run = [&](const std::string& name, void (*set)(pllm_session_params&)) {
    ModelHandle h;
    h.m = load(stories);
    pllm_session_params p = pllm_session_default_params();
    const std::string run = dir + "/" + name, data = dir + "/s.tsv";
    p.run_dir = run.c_str();
    p.data_path = data.c_str();
    p.steps = 1;
    set(p);
    pllm_session* s = nullptr;
    const pllm_status st = pllm_session_open(h.m, &p, nullptr, &s);
    if (st == PLLM_OK) {
      CHECK(pllm_session_train(s, 0, nullptr, nullptr, nullptr) == PLLM_OK);
      pllm_session_free(s);
    }
    return st;
  };
  auto spec = [&](const std::string& name) { return nlohmann::json::parse(std::ifstream(dir + "/" + name + "/spec.json")); };

  // The sst2 preset and nothing else but a small validation split and a k-shot draw: its template, label
  // words and recipe (the 704 norm parameters, at most the recipe's 1 024 for Adam: 882 directions a step
  // with decay to start 0.002, balanced pairs, cosine lr of 3e-3, sentences of >= 6 words).
  REQUIRE(open_run("preset", [](pllm_session_params& p) {
            p.preset = "sst2";
            p.validation_examples = 2;
            p.k_shot = 8;
            p.data_seed = 3;
          }) == PLLM_OK);
  const auto s = spec("preset");
  CHECK(s["task"]["kind"] == "classify");
  CHECK(s["task"]["label_words"] == nlohmann::json::parse(R"([["0", " bad"], ["1", " good"]])"));
  CHECK(s["trainable"].get<std::string>().find("*norm*") != std::string::npos);
  CHECK(s["optimizer"]["name"] == "adam");
  CHECK(s["optimizer"]["decay_to_start"].get<double>() == Approx(0.002).epsilon(1e-6));
  CHECK(s["n_spsa"] == 882);
  CHECK(s["batch_size"] == 2);
  CHECK(s["schedule"] == "cosine");
  CHECK(s["balanced"] == true);
  CHECK(s["lr"].get<double>() == Approx(3e-3).epsilon(1e-6));
  CHECK(s["data"]["min_words"] == 6);
  CHECK(s["data"]["k_shot"] == 8);
  CHECK(s["data_seed"] == "0000000000000003");
  CHECK(s["validation"]["examples"] == 2);

  // Every field set replaces its part of the recipe.
  REQUIRE(open_run("set", [](pllm_session_params& p) {
            p.preset = "sst2";
            p.labels = "0:terrible,1:great";
            p.trainable = "all";
            p.batch_size = 8;
            p.lr = 1e-3f;
            p.schedule = "constant";
            p.balanced = 0;
            p.min_words = 0;
            p.validation_examples = 0;
          }) == PLLM_OK);
  const auto t = spec("set");
  CHECK_FALSE(t.contains("optimizer"));  // batch and lr set: the SGD step
  CHECK(t["task"]["label_words"] == nlohmann::json::parse(R"([["0", " terrible"], ["1", " great"]])"));
  CHECK(t["trainable"] == "*");
  CHECK(t["batch_size"] == 8);
  CHECK(t["lr"].get<double>() == Approx(1e-3).epsilon(1e-6));
  CHECK(t["schedule"] == "constant");
  CHECK(t["balanced"] == false);
  CHECK_FALSE(t["data"].contains("min_words"));
  CHECK_FALSE(t.contains("validation"));

  // No preset and no task: the language-model recipe, the defaults of before the recipes.
  REQUIRE(open_run("lm", [](pllm_session_params&) {}) == PLLM_OK);
  const auto u = spec("lm");
  CHECK(u["task"]["kind"] == "lm");
  CHECK(u["batch_size"] == 16);
  CHECK(u["lr"].get<double>() == Approx(1e-4).epsilon(1e-6));
  CHECK(u["schedule"] == "constant");

  // Unknown names and out-of-range values are refused before anything is created.
  CHECK(open_run("bad1", [](pllm_session_params& p) { p.preset = "imdb"; }) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(std::string(pllm_last_error()).find("sst2") != std::string::npos);
  CHECK(open_run("bad2", [](pllm_session_params& p) { p.schedule = "step"; }) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(open_run("bad3", [](pllm_session_params& p) { p.balanced = 2; }) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(open_run("bad4", [](pllm_session_params& p) { p.min_words = -2; }) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(open_run("bad5", [](pllm_session_params& p) { p.lr = -1e-3f; }) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(open_run("bad6", [](pllm_session_params& p) { p.preset = "sst2"; p.min_words = 50; }) != PLLM_OK);
  for (const char* b : {"bad1", "bad2", "bad3", "bad4", "bad5"}) CHECK_FALSE(fs::exists(dir + "/" + b));
  fs::remove_all(dir);
}

TEST_CASE("classify: one text's label and probabilities, as evaluation scores them, with the weights a session trained", "[sdk][classify]") {
  const std::string stories = pocketllm::test::stories260k_dir();
  if (!have_stories(stories)) return;
  const std::string dir = pocketllm::test::temp_dir("");
  std::vector<std::string> texts, rows{"text\tlabel"};
  std::vector<int> labels;
  for (int i = 0; i < 12; ++i) {
    texts.push_back("what a truly wonderful and moving film number " + std::to_string(i));
    labels.push_back(1);
    texts.push_back(i % 3 ? "this was a dull and tiresome film" : "the worst movie, a mess from start to end");
    labels.push_back(0);
  }
  for (size_t i = 0; i < texts.size(); ++i) rows.push_back(texts[i] + "\t" + std::to_string(labels[i]));
  pocketllm::test::write_lines(dir + "/s.tsv", rows);
  ModelHandle h;
  h.m = load(stories);
  pllm_evaluate_params preset = pllm_evaluate_default_params();
  preset.preset = "sst2";
  auto classify = [&](const std::string& text, const pllm_evaluate_params& p, std::vector<float>* probs) {
    int32_t label = -7;
    size_t n = 0;
    probs->assign(4, -1.0f);
    REQUIRE(pllm_classify(h.m, text.c_str(), &p, nullptr, &label, probs->data(), probs->size(), &n) == PLLM_OK);
    REQUIRE(n == 2);
    CHECK((*probs)[2] == -1.0f);  // nothing written past the labels
    probs->resize(n);
    return label;
  };

  // Evaluation's accuracy over the file = the share of texts pllm_classify labels right; every answer is
  // the most probable label, and the probabilities sum to 1.
  double loss = 0, acc = -1;
  REQUIRE(pllm_model_evaluate(h.m, (dir + "/s.tsv").c_str(), &preset, nullptr, &loss, &acc) == PLLM_OK);
  int correct = 0;
  std::vector<std::vector<float>> before;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<float> p;
    const int label = classify(texts[i], preset, &p);
    CHECK(p[0] + p[1] == Approx(1.0).margin(1e-6));
    CHECK(label == (p[1] > p[0] ? 1 : 0));
    correct += label == labels[i];
    before.push_back(p);
  }
  CHECK(acc == Approx(static_cast<double>(correct) / texts.size()).margin(1e-12));

  // The preset = its template and labels written out; the labels in the other order swap the answers.
  pllm_evaluate_params spelled = pllm_evaluate_default_params();
  spelled.labels = "0:bad,1:good";
  spelled.prompt_template = "{text} It was";
  pllm_evaluate_params swapped = spelled;
  swapped.labels = "1:good,0:bad";
  for (size_t i = 0; i < 4; ++i) {
    std::vector<float> a, b;
    classify(texts[i], spelled, &a);
    const int label = classify(texts[i], swapped, &b);
    CHECK(a[0] == Approx(before[i][0]).margin(1e-6));
    CHECK(b[0] == Approx(before[i][1]).margin(1e-6));
    CHECK(label == (before[i][1] > before[i][0] ? 0 : 1));
  }
  // An older struct (before `preset`) with its labels still classifies.
  pllm_evaluate_params legacy = spelled;
  legacy.struct_size = static_cast<uint32_t>(offsetof(pllm_evaluate_params, preset));
  std::vector<float> l;
  classify(texts[0], legacy, &l);
  CHECK(l[1] == Approx(before[0][1]).margin(1e-6));
  // The C++ layer gives the same.
  pocketllm::sdk::Model cpp(stories);
  const auto [cpp_label, cpp_probs] = cpp.classify(texts[1], preset);
  CHECK(cpp_label == (before[1][1] > before[1][0] ? 1 : 0));
  CHECK(cpp_probs.size() == 2);
  CHECK(cpp_probs[1] == Approx(before[1][1]).margin(1e-6));

  // Bad input: no labels, an unknown preset, a NULL answer, text that is not UTF-8.
  int32_t label = 0;
  pllm_evaluate_params none = pllm_evaluate_default_params();
  CHECK(pllm_classify(h.m, "x", &none, nullptr, &label, nullptr, 0, nullptr) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(std::string(pllm_last_error()).find("labels") != std::string::npos);
  CHECK(label == -1);
  pllm_evaluate_params imdb = preset;
  imdb.preset = "imdb";
  CHECK(pllm_classify(h.m, "x", &imdb, nullptr, &label, nullptr, 0, nullptr) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_classify(h.m, "x", &preset, nullptr, nullptr, nullptr, 0, nullptr) == PLLM_ERR_INVALID_ARGUMENT);
  CHECK(pllm_classify(h.m, "caf\xc3", &preset, nullptr, &label, nullptr, 0, nullptr) == PLLM_ERR_INVALID_ARGUMENT);

  // A session trains the norms in place; classify then reads the trained weights.
  pllm_session_params sp = pllm_session_default_params();
  const std::string run = dir + "/run", data = dir + "/s.tsv";
  sp.run_dir = run.c_str();
  sp.data_path = data.c_str();
  sp.preset = "sst2";
  sp.batch_size = 8;
  sp.steps = 4;
  sp.lr = 0.5f;
  pllm_session* session = nullptr;
  REQUIRE(pllm_session_open(h.m, &sp, nullptr, &session) == PLLM_OK);
  REQUIRE(pllm_session_train(session, 0, nullptr, nullptr, nullptr) == PLLM_OK);
  pllm_session_free(session);
  double moved = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<float> p;
    classify(texts[i], preset, &p);
    moved = std::max(moved, static_cast<double>(std::fabs(p[1] - before[i][1])));
  }
  CHECK(moved > 1e-4);
  fs::remove_all(dir);
}

TEST_CASE("the C++ layer: memory estimate, private examples, a moved LoRA session, export and cancellation", "[sdk][hpp]") {
  namespace sdk = pocketllm::sdk;
  const std::string dir = toy_model(47);
  auto code_of = [](const std::function<void()>& call) {
    try {
      call();
    } catch (const sdk::Error& e) {
      return e.code();
    }
    return PLLM_OK;
  };
  const pllm_memory_estimate e = sdk::Model::estimate_memory(dir);
  CHECK(e.weights_bytes > 0);
  CHECK(e.total_bytes == e.weights_bytes + e.activation_bytes);
  CHECK(code_of([&] { sdk::Model::estimate_memory(dir + "/none"); }) == PLLM_ERR_NOT_FOUND);
  // The log handler: a std::function gets the failures at WARN; one that throws changes nothing; removed, silent.
  std::vector<std::string> logged;
  sdk::set_log_handler([&](pllm_log_level level, const std::string& m) {
    if (level == PLLM_LOG_WARN) logged.push_back(m);
  });
  CHECK(code_of([&] { sdk::Model(dir + "/log-none"); }) == PLLM_ERR_NOT_FOUND);
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].find("log-none") != std::string::npos);
  sdk::set_log_handler([](pllm_log_level, const std::string&) { throw std::runtime_error("handler failed"); });
  CHECK(code_of([&] { sdk::Model(dir + "/log-none"); }) == PLLM_ERR_NOT_FOUND);
  sdk::set_log_handler(nullptr);
  CHECK(code_of([&] { sdk::Model(dir + "/log-none"); }) == PLLM_ERR_NOT_FOUND);
  CHECK(logged.size() == 1);

  const std::string data = dir + "/mine.jsonl";
  {
    sdk::Examples ex;
    for (const char* t : {"the cat", "a hat", "the bad cat", "he had a cat"}) ex.add_text(t);
    CHECK(code_of([&] { ex.add_text(""); }) == PLLM_ERR_INVALID_ARGUMENT);
    CHECK(code_of([&] { ex.add_labelled("the cat", ""); }) == PLLM_ERR_INVALID_ARGUMENT);
    CHECK(code_of([&] { ex.add_text(std::string("cut\0here", 8)); }) == PLLM_ERR_INVALID_ARGUMENT);  // not cut short
    sdk::Examples moved(std::move(ex));
    CHECK(moved.count() == 4);
    moved.write(data);
  }
  CHECK(mode_of(data) == 0600);

  pllm_model_params one = pllm_model_default_params();
  one.n_threads = 1;
  sdk::Model m(dir, one);
  CHECK_FALSE(m.is_trained());
  sdk::Cancel cancel;
  cancel.request();
  const pllm_control cancelled = cancel.control();
  CHECK(code_of([&] { m.evaluate(data, pllm_evaluate_default_params(), &cancelled); }) == PLLM_ERR_CANCELLED);
  const double base = m.evaluate(data).first;

  pllm_session_params sp = session_params(dir + "/run", data, 4);
  sp.lora_rank = 2;
  sp.lr = 5e-2f;
  {
    sdk::TrainingSession opened(m, sp);
    sdk::TrainingSession s(std::move(opened));  // the moved-from session frees nothing
    CHECK(s.total_steps() == 4);
    CHECK(code_of([&] { s.train(0, &cancelled); }) == PLLM_ERR_CANCELLED);
    s.train();
    CHECK(s.steps_done() == 4);
  }
  CHECK(m.is_trained());
  const double trained = m.evaluate(data).first;
  CHECK(trained != base);
  sdk::export_run(dir + "/run", dir + "/peft", "peft");
  CHECK(nlohmann::json::parse(std::ifstream(dir + "/peft/adapter_config.json"))["r"] == 2);
  sdk::export_run(dir + "/run", dir + "/merged.gguf", "gguf", "f32");
  sdk::Model merged(dir + "/merged.gguf", one);
  CHECK(merged.evaluate(data).first == Approx(trained).epsilon(1e-5));
  CHECK(code_of([&] { sdk::export_run(dir + "/run", dir + "/x", "onnx"); }) == PLLM_ERR_INVALID_ARGUMENT);
  fs::remove_all(dir);
}

// A model used from two threads at once (the rule is one thread per handle; a UI thread and a worker
// break it easily): the second call gets PLLM_ERR_BUSY instead of computing on the first one's buffers,
// which corrupted both results. The first call is held inside its callback until the other thread has
// tried everything, so the overlap is certain.
TEST_CASE("a second thread's call on a model in use is refused BUSY and the first call's result is intact", "[sdk][threads]") {
  const std::string dir = toy_model();
  ModelHandle h;
  h.m = load(dir);
  pllm_generate_params g = pllm_generate_default_params();
  g.max_new_tokens = 20;
  char* text = nullptr;
  REQUIRE(pllm_generate(h.m, "the cat", &g, nullptr, nullptr, nullptr, &text) == PLLM_OK);
  const std::string reference = text;
  pllm_free_string(text);

  struct Gate {
    std::atomic<bool> inside{false}, tried{false};
  } gate;
  auto hold = [](const char*, void* u) {
    auto* gt = static_cast<Gate*>(u);
    gt->inside = true;
    while (!gt->tried) std::this_thread::yield();
    return true;
  };
  std::vector<pllm_status> seen;
  std::string busy_message;
  std::thread other([&] {
    while (!gate.inside) std::this_thread::yield();
    char* t = nullptr;
    seen.push_back(pllm_generate(h.m, "the cat", &g, nullptr, nullptr, nullptr, &t));
    busy_message = pllm_last_error();
    double loss = 0, acc = 0;
    seen.push_back(pllm_model_evaluate(h.m, (dir + "/train.txt").c_str(), nullptr, nullptr, &loss, &acc));
    int32_t n = 0;
    seen.push_back(pllm_count_tokens(h.m, "the cat", &n));
    pllm_session* s = nullptr;
    const pllm_session_params sp = session_params(dir + "/busy_run", dir + "/train.txt", 2);
    seen.push_back(pllm_session_open(h.m, &sp, nullptr, &s));
    CHECK(s == nullptr);
    gate.tried = true;
  });
  REQUIRE(pllm_generate(h.m, "the cat", &g, hold, &gate, nullptr, &text) == PLLM_OK);
  other.join();
  CHECK(std::string(text) == reference);
  pllm_free_string(text);
  CHECK(seen == std::vector<pllm_status>(4, PLLM_ERR_BUSY));
  CHECK(busy_message.find("in use by a call on another thread") != std::string::npos);
  CHECK_FALSE(fs::exists(dir + "/busy_run"));
  // Released afterwards: every call works again.
  REQUIRE(pllm_generate(h.m, "the cat", &g, nullptr, nullptr, nullptr, &text) == PLLM_OK);
  CHECK(std::string(text) == reference);
  pllm_free_string(text);

  // A session training on one thread holds the model: generate from another is refused until it returns.
  const pllm_session_params sp = session_params(dir + "/run", dir + "/train.txt", 4);
  pllm_session* s = nullptr;
  REQUIRE(pllm_session_open(h.m, &sp, nullptr, &s) == PLLM_OK);
  Gate training;
  pllm_control c = pllm_control_default();
  c.progress = [](float, void* u) {
    auto* gt = static_cast<Gate*>(u);
    gt->inside = true;
    while (!gt->tried) std::this_thread::yield();
    return true;
  };
  c.user = &training;
  pllm_status during = PLLM_OK;
  std::thread gen([&] {
    while (!training.inside) std::this_thread::yield();
    char* t = nullptr;
    during = pllm_generate(h.m, "the cat", &g, nullptr, nullptr, nullptr, &t);
    training.tried = true;
  });
  int32_t done = 0;
  CHECK(pllm_session_train(s, 0, &c, &done, nullptr) == PLLM_OK);
  gen.join();
  CHECK(during == PLLM_ERR_BUSY);
  CHECK(done == 4);
  REQUIRE(pllm_generate(h.m, "the cat", &g, nullptr, nullptr, nullptr, &text) == PLLM_OK);  // the trained weights, now free
  pllm_free_string(text);
  pllm_session_free(s);

  // On the same thread, a call from inside a call's callback goes on: a session's progress callback may
  // sample the model between steps, as an app showing progress would.
  ModelHandle h2;
  h2.m = load(dir);
  const pllm_session_params sp2 = session_params(dir + "/run2", dir + "/train.txt", 3);
  REQUIRE(pllm_session_open(h2.m, &sp2, nullptr, &s) == PLLM_OK);
  struct Sampler {
    pllm_model* m;
    std::vector<pllm_status> seen;
  } sampler{h2.m, {}};
  pllm_control sample_control = pllm_control_default();
  sample_control.progress = [](float, void* u) {
    auto* sm = static_cast<Sampler*>(u);
    pllm_generate_params gp = pllm_generate_default_params();
    gp.max_new_tokens = 4;
    char* t = nullptr;
    sm->seen.push_back(pllm_generate(sm->m, "the", &gp, nullptr, nullptr, nullptr, &t));
    pllm_free_string(t);
    return true;
  };
  sample_control.user = &sampler;
  CHECK(pllm_session_train(s, 0, &sample_control, &done, nullptr) == PLLM_OK);
  CHECK(sampler.seen == std::vector<pllm_status>(3, PLLM_OK));
  pllm_session_free(s);

  // pllm_model_free from another thread while a call uses the model (an app closing it from its UI thread
  // while a worker generates): the model lives until that call returns, which finishes with the right
  // text, and is freed then (ASan in CI: no use after free, no leak).
  pllm_model* closing = load(dir);
  Gate freeing;
  std::thread closer([&] {
    while (!freeing.inside) std::this_thread::yield();
    pllm_model_free(closing);
    freeing.tried = true;
  });
  REQUIRE(pllm_generate(closing, "the cat", &g, hold, &freeing, nullptr, &text) == PLLM_OK);
  closer.join();
  CHECK(std::string(text) == reference);
  pllm_free_string(text);
}
