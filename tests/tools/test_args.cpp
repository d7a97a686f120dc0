// The command-line parser every program uses: strict about unknown options and missing values.
#include <catch2/catch.hpp>

#include "pocketllm/cli/args.h"

using pocketllm::cli::Args;

TEST_CASE("cli: options with values, flags, = form, and strict errors", "[tools]") {
  Args a({"model", "steps", "lr"}, {"help", "resume"});
  REQUIRE(a.parse({"--model", "m.bin", "--steps=12", "--resume", "extra"}).is_ok());
  CHECK(a.get("model") == "m.bin");
  CHECK(a.get_u64("steps", 1).value() == 12);
  CHECK(a.has("resume"));
  CHECK_FALSE(a.has("lr"));
  CHECK(a.get_double("lr", 0.5).value() == 0.5);
  CHECK(a.positional() == std::vector<std::string>{"extra"});

  Args typo({"model"}, {});
  CHECK_FALSE(typo.parse({"--modle", "x"}).is_ok());  // a typo never falls back to a default
  Args missing({"model"}, {});
  CHECK_FALSE(missing.parse({"--model"}).is_ok());
  Args flag_value({}, {"resume"});
  CHECK_FALSE(flag_value.parse({"--resume=yes"}).is_ok());
  Args numbers({"steps", "lr"}, {});
  REQUIRE(numbers.parse({"--steps", "-3", "--lr", "abc"}).is_ok());
  CHECK_FALSE(numbers.get_u64("steps", 1).is_ok());
  CHECK_FALSE(numbers.get_double("lr", 1).is_ok());
}
