// A PEFT LoRA adapter written by tests/fixtures/make_lora_fixture.py (Hugging Face's layout, logits from
// PyTorch with PEFT's unmerged formula): pocketllm with the adapter, its merged Hugging Face and GGUF
// exports, and its PEFT re-export all reproduce them; malformed adapter directories are refused.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>

#include "model_fixtures.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/lora.h"
#include "pocketllm/common/file_util.h"
#include "pocketllm/common/safetensors.h"
#include "test_paths.h"

using namespace pocketllm;

namespace {

struct Expected {
  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::vector<double>> logits, base_logits;
};

Expected read_expected() {
  auto text = read_file(test::fixtures_dir() + "/lora/expected.json", 1 << 24);
  REQUIRE(text.is_ok());
  const auto j = nlohmann::json::parse(text.value());
  return {j["sequences"].get<std::vector<std::vector<int32_t>>>(), j["logits"].get<std::vector<std::vector<double>>>(),
          j["base_logits"].get<std::vector<std::vector<double>>>()};
}

// Largest |pocketllm - torch| over every logit, relative to the largest |torch| logit.
double rel_error(LanguageModel& m, const Expected& e, const std::vector<std::vector<double>>& want) {
  const std::vector<float> logits = test::all_position_logits(m, e.seqs);
  REQUIRE(logits.size() == want.size() * want[0].size());
  const size_t V = want[0].size();
  double scale = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i)
    for (size_t v = 0; v < V; ++v) {
      scale = std::max(scale, std::fabs(want[i][v]));
      err = std::max(err, std::fabs(logits[i * V + v] - want[i][v]));
    }
  return err / scale;
}

std::string fixture(const std::string& part) { return test::fixtures_dir() + "/lora/" + part; }

void copy_dir_file(const std::string& from, const std::string& to) {
  auto bytes = read_file(from, size_t{1} << 26);
  REQUIRE(bytes.is_ok());
  std::ofstream(to, std::ios::binary) << bytes.value();
}

}  // namespace

TEST_CASE("peft: base + adapter logits = PyTorch's PEFT formula = the merged exports", "[client][lora][peft]") {
  const Expected e = read_expected();
  auto base = load_model(fixture("model"));
  REQUIRE(base.is_ok());
  CHECK(rel_error(*base->model, e, e.base_logits) < 1e-5);
  CHECK(rel_error(*base->model, e, e.logits) > 1e-2);  // the adapter matters: the check below can fail

  LoadOptions lo;
  lo.adapter_path = fixture("adapter");
  auto adapted = load_model(fixture("model"), lo);
  REQUIRE(adapted.is_ok());
  CHECK(adapted->adapter.rank == 4);
  CHECK(adapted->adapter.alpha == 8.0f);
  CHECK(adapted->adapter.targets == "q_proj,v_proj,down_proj");
  const double err = rel_error(*adapted->model, e, e.logits);
  INFO("relative error with the adapter: " << err);
  CHECK(err < 1e-5);

  const std::string out = test::temp_dir("");
  SECTION("merged Hugging Face directory") {
    REQUIRE(export_hf_directory(adapted.value(), out + "/merged").is_ok());
    auto merged = load_model(out + "/merged");
    REQUIRE(merged.is_ok());
    for (const auto& w : merged->model->weights().all()) CHECK_FALSE(is_lora_tensor_name(w->name));
    CHECK(rel_error(*merged->model, e, e.logits) < 1e-5);
  }
  SECTION("merged GGUF") {
    // GGUF carries a vocabulary: give the model a toy SentencePiece one of its size (259 + 20 pieces).
    test::write_toy_tokenizer(out + "/tokenizer.bin", {" ", "a", "b", "c", "d", "e", "t", "h", " t", "he", " the", " a", "at", " c",
                                                      " cat", " good", " bad", " It", " was", "s"});
    LoadOptions with_vocab;
    with_vocab.adapter_path = fixture("adapter");
    with_vocab.tokenizer_path = out + "/tokenizer.bin";
    adapted = load_model(fixture("model"), with_vocab);
    REQUIRE(adapted.is_ok());
    REQUIRE(adapted->tokenizer != nullptr);
    const Status written = export_gguf(adapted.value(), out + "/merged.gguf");
    INFO(written.message());
    REQUIRE(written.is_ok());
    auto merged = load_model(out + "/merged.gguf");
    REQUIRE(merged.is_ok());
    CHECK(rel_error(*merged->model, e, e.logits) < 1e-5);
  }
  SECTION("PEFT re-export: the same tensors, bit for bit, and an equivalent config") {
    REQUIRE(export_peft_adapter(*adapted->model, adapted->adapter, "base", out + "/peft").is_ok());
    auto a = SafetensorsFile::open(fixture("adapter/adapter_model.safetensors"));
    auto b = SafetensorsFile::open(out + "/peft/adapter_model.safetensors");
    REQUIRE(a.is_ok());
    REQUIRE(b.is_ok());
    REQUIRE(a->tensors().size() == b->tensors().size());
    for (const TensorInfo& t : a->tensors()) {
      const TensorInfo* u = b->find(t.name);
      REQUIRE(u != nullptr);
      CHECK(u->shape == t.shape);
      CHECK(std::memcmp(a->raw(t), b->raw(*u), t.nbytes) == 0);
    }
    const auto cfg = nlohmann::json::parse(read_file(out + "/peft/adapter_config.json", 1 << 20).value());
    CHECK(cfg["peft_type"] == "LORA");
    CHECK(cfg["r"] == 4);
    CHECK(cfg["lora_alpha"] == 8.0);
    CHECK(cfg["target_modules"] == nlohmann::json({"q_proj", "v_proj", "down_proj"}));
    CHECK(cfg["bias"] == "none");
    // And it loads back to the same logits.
    LoadOptions again;
    again.adapter_path = out + "/peft";
    auto reloaded = load_model(fixture("model"), again);
    REQUIRE(reloaded.is_ok());
    CHECK(rel_error(*reloaded->model, e, e.logits) < 1e-5);
  }
}

TEST_CASE("peft: adapter directories that cannot be reproduced exactly are refused with the reason", "[client][lora][peft]") {
  const std::string dir = test::temp_dir("");
  const auto original = nlohmann::json::parse(read_file(fixture("adapter/adapter_config.json"), 1 << 20).value());
  auto try_config = [&](const nlohmann::json& cfg) {
    std::ofstream(dir + "/adapter_config.json") << cfg.dump();
    copy_dir_file(fixture("adapter/adapter_model.safetensors"), dir + "/adapter_model.safetensors");
    LoadOptions lo;
    lo.adapter_path = dir;
    auto m = load_model(fixture("model"), lo);
    return m.is_ok() ? std::string("ok") : m.status().message();
  };
  CHECK(try_config(original) == "ok");
  auto with = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json c = original;
    c[key] = value;
    return try_config(c);
  };
  CHECK(with("peft_type", "IA3").find("only LORA") != std::string::npos);
  CHECK(with("r", 0).find("r must be") != std::string::npos);
  CHECK(with("r", 8).find("shape") != std::string::npos);  // the tensors are rank 4
  CHECK(with("lora_alpha", "eight").find("lora_alpha") != std::string::npos);
  CHECK(with("bias", "all").find("bias") != std::string::npos);
  CHECK(with("use_dora", true).find("use_dora") != std::string::npos);
  CHECK(with("rank_pattern", {{"q_proj", 2}}).find("rank_pattern") != std::string::npos);
  CHECK(with("target_modules", ".*proj").find("regular expressions") != std::string::npos);
  CHECK(with("target_modules", {"q_proj", "v_proj"}).find("is not an adapter of this model") != std::string::npos);
  CHECK(with("target_modules", {"q_proj", "v_proj", "down_proj", "k_proj"}).find("is missing") != std::string::npos);
  std::ofstream(dir + "/adapter_config.json") << "{not json";
  LoadOptions lo;
  lo.adapter_path = dir;
  CHECK(load_model(fixture("model"), lo).status().message().find("not valid JSON") != std::string::npos);
  lo.adapter_path = dir + "/missing";
  CHECK_FALSE(load_model(fixture("model"), lo).is_ok());
}
