// llama.cpp (through node-llama-cpp's prebuilt CPU binaries, loaded offline) and @huggingface/gguf on a
// GGUF file: greedy continuation, per-line perplexity, or the parsed metadata and tensor table.
//   node peer.mjs greedy FILE PROMPT STEPS THREADS        -> {"prompt_tokens": [...], "tokens": [...], "text": "..."}
//   node peer.mjs ppl FILE LINES_FILE THREADS             -> {"tokens": N, "nll": sum, "ppl": x, "line_tokens": [[...]...]}
//   node peer.mjs parse FILE                              -> @huggingface/gguf's metadata and tensor infos
//   node peer.mjs tokens FILE LINES_JSONL STEPS            -> llama.cpp's token ids of each line, greedy ids
//   node peer.mjs speed FILE THREADS SEQS SEQLEN DECODE   -> prompt tokens/s and decode tokens/s
import { getLlama } from "node-llama-cpp";
import { gguf } from "@huggingface/gguf";

const [cmd, file, ...rest] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o, (k, v) => (typeof v === "bigint" ? Number(v) : v)) + "\n");

async function load(threads, contextSize, sequences = 1, batchSize = 512) {
  const llama = await getLlama({ build: "never", gpu: false, logLevel: "error" });
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const context = await model.createContext({ contextSize, sequences, threads, batchSize });
  return { llama, model, context };
}

// A model without a BOS token (GPT-2's BPE vocabulary) starts at the text's first token.
function withBos(model, text) {
  const ids = Array.from(model.tokenize(text));
  return model.tokens.bos == null ? ids : [model.tokens.bos, ...ids];
}

if (cmd === "greedy") {
  const [prompt, steps, threads] = rest;
  const { model, context } = await load(Number(threads), 512);
  const seq = context.getSequence();
  const promptTokens = withBos(model, prompt);
  const tokens = [];
  for await (const t of seq.evaluate(promptTokens, { temperature: 0, yieldEogToken: true })) {
    tokens.push(t);
    if (tokens.length >= Number(steps)) break;
  }
  out({ prompt_tokens: promptTokens, tokens, text: prompt + model.detokenize(tokens) });
} else if (cmd === "ppl") {
  const [linesFile, threads] = rest;
  const fs = await import("node:fs");
  const lines = fs.readFileSync(linesFile, "utf8").split("\n").filter((l) => l.trim().length > 0);
  const { model, context } = await load(Number(threads), 512);
  let nll = 0, count = 0;
  const lineTokens = [];
  const seq = context.getSequence();
  for (const line of lines) {
    await seq.clearHistory();
    const toks = withBos(model, line);
    lineTokens.push(toks);
    const input = toks.slice(0, -1).map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }]);
    const res = await seq.controlledEvaluate(input);
    for (let i = 0; i + 1 < toks.length; i++) {
      const p = res[i]?.next?.probabilities?.get(toks[i + 1]) ?? 0;
      nll -= Math.log(Math.max(p, 1e-30));
      count++;
    }
  }
  out({ lines: lines.length, tokens: count, nll, loss: nll / count, ppl: Math.exp(nll / count), line_tokens: lineTokens });
} else if (cmd === "tokens") {
  // llama.cpp's tokenization of each line of LINES_FILE (no BOS added), and its greedy continuation of
  // the first line's tokens: node peer.mjs tokens FILE LINES_FILE STEPS
  const [linesFile, steps] = rest;
  const fs = await import("node:fs");
  const lines = fs.readFileSync(linesFile, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
  const { model, context } = await load(1, 256);
  const tokenized = lines.map((l) => Array.from(model.tokenize(l)));
  const seq = context.getSequence();
  const greedy = [];
  for await (const t of seq.evaluate(tokenized[0], { temperature: 0, yieldEogToken: true })) {
    greedy.push(t);
    if (greedy.length >= Number(steps)) break;
  }
  out({ tokenized, greedy });
} else if (cmd === "parse") {
  const { metadata, tensorInfos } = await gguf(file, { allowLocalFile: true });
  out({ metadata, tensors: tensorInfos.map((t) => ({ name: t.name, dims: t.shape, type: t.dtype, offset: t.offset })) });
} else if (cmd === "speed") {
  // Same work as bench_model --mode prompt / decode: one sequence of 512 tokens; 8 sequences x 128 in
  // one batch; 64 single-token decode steps after a 16-token prompt. Medians of REPS.
  const [threads, reps] = rest.map(Number);
  const llama = await getLlama({ build: "never", gpu: false, logLevel: "error" });
  const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  const vocab = model.tokens.bos >= 0 ? model.fileInfo.metadata.llama?.vocab_size ?? 32000 : 32000;
  const ids = (n, salt) => Array.from({ length: n }, (_, i) => 3 + ((i * 7919 + salt * 104729) % (vocab - 3)));
  const med = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const ctx1 = await model.createContext({ contextSize: 1024, sequences: 1, threads, batchSize: 512 });
  const seq = ctx1.getSequence();
  const pp = [], dec = [];
  for (let r = 0; r < reps + 1; r++) {
    await seq.clearHistory();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(ids(512, r));
    if (r > 0) pp.push((512 * 1000) / (performance.now() - t0));  // the first run warms up
    await seq.clearHistory();
    let n = 0, t1 = 0;
    for await (const t of seq.evaluate(ids(16, r), { temperature: 0 })) {
      if (n === 0) t1 = performance.now();  // first token: the prompt's cost, excluded
      if (++n > 64) break;
    }
    if (r > 0) dec.push((64 * 1000) / (performance.now() - t1));
  }
  await ctx1.dispose();
  const ctx8 = await model.createContext({ contextSize: 8 * 256, sequences: 8, threads, batchSize: 1024 });
  const seqs = Array.from({ length: 8 }, () => ctx8.getSequence());
  const batch = [];
  for (let r = 0; r < reps + 1; r++) {
    for (const s of seqs) await s.clearHistory();
    const t0 = performance.now();
    await Promise.all(seqs.map((s, i) => s.evaluateWithoutGeneratingNewTokens(ids(128, r * 8 + i))));
    if (r > 0) batch.push((8 * 128 * 1000) / (performance.now() - t0));
  }
  out({ threads, prompt512_tokens_per_s: med(pp), batch8x128_tokens_per_s: med(batch), decode_tokens_per_s: med(dec), reps });
} else {
  console.error("usage: node peer.mjs greedy|ppl|parse|speed FILE ...");
  process.exit(2);
}
process.exit(0);
