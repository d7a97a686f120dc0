// pocketllm generate: text generation from a prompt, streamed to stdout.
#include <chrono>
#include <cstdio>

#include "pocketllm/cli/command.h"
#include "commands.h"
#include "pocketllm/client/generate.h"
#include "pocketllm/client/loader.h"
#include "pocketllm/client/use_cases.h"
#include "pocketllm/common/utf8.h"

namespace pocketllm::cli {
namespace {

constexpr const char* kGenerateHelp =
    "usage: pocketllm generate --model PATH [--prompt TEXT] [--max-tokens N]\n"
    "                          [--greedy | --temperature T [--top-k K] [--top-p P] [--seed S]]\n"
    "                          [--tokenizer PATH] [--threads N] [--ids]\n"
    "\n"
    "  --model PATH      Hugging Face directory or llama2.c checkpoint (.bin, or its folder)\n"
    "  --prompt TEXT     text to continue (default: empty, i.e. BOS only)\n"
    "  --max-tokens N    new tokens to generate at most (default 64): fewer at the end of the text or where\n"
    "                    the model's context is full\n"
    "  --greedy          always the most likely token (default unless --temperature is given)\n"
    "  --temperature T   sample with temperature T > 0 (0: as --greedy); --top-k K and --top-p P restrict\n"
    "                    the candidates\n"
    "  --seed S          sampling seed (default 0)\n"
    "  --repetition-penalty R  divide (multiply, if negative) the logits of tokens already in the text by R\n"
    "                    before choosing (1: off; 1.1-1.3 curbs loops)\n"
    "  --ids             also print the token ids on stderr\n"
    "  --adapter DIR     apply a PEFT LoRA adapter directory (pocketllm export --format peft) to the model\n"
    "  --quantize q8_0|q4_0  hold the model's matrices 8- or 4-bit in memory (quantized at load)\n";

}  // namespace

int cmd_generate(const std::vector<std::string>& argv) {
  Command cmd("pocketllm generate", kGenerateHelp, {"model", "adapter", "quantize", "repetition-penalty", "prompt", "max-tokens", "temperature", "top-k", "top-p", "seed", "tokenizer", "threads"}, {"greedy", "ids"});
  return cmd.run(argv, [&](const Args& args) {
    auto fail = [](const std::string& m, int code) {
      std::fprintf(stderr, "pocketllm generate: %s\n", m.c_str());
      return code;
    };
    if (!args.has("model")) return fail("--model is required", 2);
    GenerateOptions o;
    auto max_tokens = args.get_u64("max-tokens", 64);
    auto temperature = args.get_double("temperature", 1.0);
    auto top_k = args.get_u64("top-k", 0);
    auto top_p = args.get_double("top-p", 1.0);
    auto seed = args.get_u64("seed", 0);
    auto threads = args.get_u64("threads", 0);
    for (const Status* s : {&max_tokens.status(), &temperature.status(), &top_k.status(), &top_p.status(), &seed.status(),
                            &threads.status()})
      if (!s->is_ok()) return fail(s->message(), 2);
    if (max_tokens.value() > 1'000'000) return fail("--max-tokens must be at most 1000000", 2);
    if (threads.value() > 1024) return fail("--threads is too large", 2);
    o.max_new_tokens = static_cast<int>(max_tokens.value());
    if (temperature.value() < 0) return fail("--temperature must be >= 0 (0 picks the likeliest token, as --greedy)", 2);
    o.greedy = args.has("greedy") || !args.has("temperature") || temperature.value() == 0;
    o.temperature = o.greedy ? 1.0f : static_cast<float>(temperature.value());
    if (!o.greedy && !(o.temperature > 0)) return fail("--temperature " + args.get("temperature") + " is too small (0 picks the likeliest token)", 2);
    if (top_p.value() <= 0 || top_p.value() > 1) return fail("--top-p must be in (0, 1]", 2);
    o.top_k = static_cast<int>(std::min<uint64_t>(top_k.value(), 1u << 30));
    o.top_p = static_cast<float>(top_p.value());
    o.seed = seed.value();
    auto penalty = args.get_double("repetition-penalty", 1.0);
    if (!penalty || !(penalty.value() > 0) || penalty.value() > 100) return fail("--repetition-penalty must be in (0, 100]", 2);
    o.repetition_penalty = static_cast<float>(penalty.value());

    LoadOptions lo;
    lo.tokenizer_path = args.get("tokenizer");
    lo.require_tokenizer = true;
    lo.adapter_path = args.get("adapter");
    if (args.has("quantize") && !parse_quantize_type(args.get("quantize"), &lo.quantize))
      return fail("--quantize must be q8_0 or q4_0", 2);
    auto loaded = load_model(args.get("model"), lo);
    if (!loaded) return fail(loaded.status().message(), 1);
    Tokenizer& tok = *loaded->tokenizer;
    auto prompt = tok.encode(args.get("prompt"), /*add_bos=*/true, /*add_eos=*/false);
    if (!prompt) return fail(prompt.status().message(), 1);
    ThreadPool pool(static_cast<int>(threads.value()));
    // The prompt is echoed with the first new token, so a refused prompt prints nothing on stdout.
    // Text goes out as whole UTF-8 characters (one may span several tokens; bytes that form none print
    // as U+FFFD), as the SDK hands it to apps.
    bool echoed = false;
    int32_t prev = prompt->back();
    Utf8Stream utf8;
    auto result = generate(&pool, *loaded->model, prompt.value(), o, [&](int32_t id) {
      if (!echoed) std::fputs(args.get("prompt").c_str(), stdout);
      echoed = true;
      if (id != tok.eos_id()) std::fputs(utf8.push(tok.decode_piece(prev, id)).c_str(), stdout);
      std::fflush(stdout);
      prev = id;
      return true;
    });
    if (!result) {
      if (echoed) std::fputs("\n", stdout);
      return fail(result.status().message(), 1);
    }
    if (!echoed) std::fputs(args.get("prompt").c_str(), stdout);
    std::fputs(utf8.finish().c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (result->context_full)
      std::fprintf(stderr, "[stopped at the model's context of %d positions, before --max-tokens %d]\n",
                   loaded->model->config().max_position_embeddings, o.max_new_tokens);
    const size_t generated = result->tokens.size() - result->prompt_tokens;
    std::fprintf(stderr, "[%zu prompt + %zu generated tokens, %.1f tokens/s]\n", result->prompt_tokens, generated,
                 static_cast<double>(generated) / std::max(result->seconds, 1e-9));
    if (args.has("ids")) {
      for (int32_t id : result->tokens) std::fprintf(stderr, "%d ", id);
      std::fputs("\n", stderr);
    }
    return 0;
  });
}

}  // namespace pocketllm::cli
