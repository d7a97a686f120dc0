// A device's data order is specified (docs/protocol.md, "A device's data order") and portable: the
// known answers below were computed from the spec's formula by an independent Python implementation
// (SplitMix64 and FNV-1a-64 written out in Python), not by this code.
#include <catch2/catch.hpp>

#include "pocketllm/federation/device_model.h"

using namespace pocketllm;

TEST_CASE("federation: the data-order seed of a shard and of a device id match the spec's known answers", "[federation]") {
  CHECK(device_data_seed(7, 0) == 0x1be2e035cfb222c5ull);
  CHECK(device_data_seed(7, 2) == 0xd46aecf87ecfed8full);
  CHECK(device_data_seed(0, 0) == 0x39b0f30eb03ad1bfull);
  CHECK(device_data_seed(std::string("d_0123456789abcdef")) == 0x2f25c0ff6730c0b7ull);
  CHECK(device_data_seed(std::string("d_0123456789abcdee")) != device_data_seed(std::string("d_0123456789abcdef")));
}

TEST_CASE("federation: the task's device settings become task options, with clear errors", "[federation]") {
  auto lm = task_options_from({{"task", "lm"}, {"max_length", 64}});
  REQUIRE(lm.is_ok());
  CHECK(lm->kind == "lm");
  CHECK(lm->max_length == 64);
  auto sst2 = task_options_from({{"task", "classify"}, {"preset", "sst2"}});
  REQUIRE(sst2.is_ok());
  CHECK(sst2->label_words.size() == 2);
  CHECK(sst2->prompt_template == "{text} It was");
  CHECK_FALSE(task_options_from({{"task", "translate"}}).is_ok());
  CHECK_FALSE(task_options_from({{"task", "classify"}, {"preset", "nope"}}).is_ok());
  CHECK_FALSE(task_options_from({{"task", "lm"}, {"max_length", 1}}).is_ok());
  CHECK_FALSE(task_options_from({{"task", "lm"}, {"max_length", "long"}}).is_ok());
  CHECK_FALSE(task_options_from(nlohmann::json::array()).is_ok());
}
