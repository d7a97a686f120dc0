// pocketllm gguf: what a GGUF file holds — metadata and tensor table — as text or JSON (the JSON is
// what bench/run_gguf_peer.sh compares with @huggingface/gguf's reading of the same file).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "pocketllm/cli/command.h"
#include "pocketllm/common/gguf.h"

namespace pocketllm::cli {
namespace {

nlohmann::json scalar_json(const gguf::Value& v) {
  switch (v.type) {
    case gguf::Type::kU8: case gguf::Type::kU16: case gguf::Type::kU32: case gguf::Type::kU64: return v.u;
    case gguf::Type::kI8: case gguf::Type::kI16: case gguf::Type::kI32: case gguf::Type::kI64: return v.i;
    case gguf::Type::kF32: case gguf::Type::kF64: return v.f;
    case gguf::Type::kBool: return v.u != 0;
    case gguf::Type::kString: return std::string(v.str);
    default: return nullptr;
  }
}

nlohmann::json value_json(const gguf::File& f, const std::string& key, const gguf::Value& v) {
  if (v.type != gguf::Type::kArray) return scalar_json(v);
  if (v.elem == gguf::Type::kString) {
    nlohmann::json a = nlohmann::json::array();
    for (auto s : v.strings) a.push_back(std::string(s));
    return a;
  }
  if (v.elem == gguf::Type::kF32 || v.elem == gguf::Type::kF64) {
    auto x = f.get_float_array(key);
    return x ? nlohmann::json(x.value()) : nlohmann::json();
  }
  if (v.elem == gguf::Type::kBool) {
    nlohmann::json a = nlohmann::json::array();
    for (uint64_t i = 0; i < v.count; ++i) a.push_back(v.array_data[i] != 0);
    return a;
  }
  auto x = f.get_int_array(key);
  return x ? nlohmann::json(x.value()) : nlohmann::json();
}

}  // namespace

int cmd_gguf(const std::vector<std::string>& argv) {
  static const char* kGgufHelp =
      "usage: pocketllm gguf --file FILE.gguf [--json]\n"
      "\n"
      "Validates a GGUF file and prints its version, metadata (arrays abbreviated unless --json) and\n"
      "tensor table (name, ggml dimensions, type, data offset).\n";
  Command cmd("pocketllm gguf", kGgufHelp, {"file"}, {"json"});
  return cmd.run(argv, [&](const Args& args) {
    if (!args.has("file")) return cmd.usage("--file is required");
    auto f = gguf::File::open(args.get("file"));
    if (!f) return cmd.fail(f.status().message());
    nlohmann::json out;
    out["version"] = f->version();
    out["alignment"] = f->alignment();
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [key, v] : f->metadata()) meta[key] = value_json(f.value(), key, v);
    out["metadata"] = meta;
    nlohmann::json tensors = nlohmann::json::array();
    for (const auto& t : f->tensors())
      tensors.push_back({{"name", t.name}, {"dims", t.dims}, {"type", gguf::ggml_type_name(t.ggml_type)}, {"offset", t.offset}});
    out["tensors"] = tensors;
    if (args.has("json")) {
      std::printf("%s\n", out.dump(1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      return 0;
    }
    std::printf("GGUF v%u, alignment %u, %zu metadata entries, %zu tensors\n", f->version(), f->alignment(), f->metadata().size(),
                f->tensors().size());
    for (const auto& [key, v] : f->metadata()) {
      if (v.type == gguf::Type::kArray)
        std::printf("  %-44s [%s x %llu]\n", key.c_str(), gguf::type_name(v.elem), static_cast<unsigned long long>(v.count));
      else
        std::printf("  %-44s %s\n", key.c_str(), scalar_json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    }
    for (const auto& t : f->tensors()) {
      std::string dims;
      for (uint64_t d : t.dims) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
      std::printf("  %-44s %-6s %s\n", t.name.c_str(), gguf::ggml_type_name(t.ggml_type), dims.c_str());
    }
    return 0;
  });
}

}  // namespace pocketllm::cli
