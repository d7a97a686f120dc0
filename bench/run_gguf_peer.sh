#!/usr/bin/env bash
# llama.cpp and @huggingface/gguf as peers of pocketllm's GGUF files (docs/gguf.md §8).
#   bench/run_gguf_peer.sh [BUILD_DIR] [OUT_JSONL]
# Installs the peers into bench/peers/llamacpp/node_modules (npm i -E node-llama-cpp@3.21.1 and
# @huggingface/gguf; prebuilt CPU binaries, loaded offline with getLlama({build: "never", gpu: false})),
# converts stories260K to F32/F16/Q8_0/Q4_0 GGUF with pocketllm, and checks:
#   - llama.cpp's greedy continuation of "Once upon a time" from the F32 file equals the golden text;
#   - on every file, llama.cpp's and pocketllm's greedy tokens (first 32+) and perplexities (TinyStories
#     sample lines, and 200 lines sampled from stories260K) — the perplexities must differ by < 1 %;
#   - @huggingface/gguf's metadata and tensor table equal `pocketllm gguf --json`'s;
#   - small random qwen2, qwen3 and gemma3 models with GPT-2's BPE vocabulary: tokens, greedy path and
#     perplexity (gemma3: seven layers, the sixth full, the others with a sliding window of 8 tokens).
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
out="${2:-$root/bench/results/gguf_peer.jsonl}"
shared="${POCKETLLM_SHARED:-$root/../shared}"
bin="$build/bin/pocketllm"
peer="$root/bench/peers/llamacpp"
[ -x "$bin" ] || { echo "build pocketllm first ($bin missing)"; exit 1; }
if [ ! -d "$peer/node_modules/node-llama-cpp" ] || [ ! -d "$peer/node_modules/@huggingface/gguf" ]; then
  echo "== installing the peers (npm i -E node-llama-cpp@3.21.1 @huggingface/gguf)"
  (cd "$peer" && npm i --no-audit --no-fund -E node-llama-cpp@3.21.1 @huggingface/gguf@0.4.6 > /dev/null)
fi
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
stories="$shared/hub/karpathy/tinyllamas/stories260K"
cpu="$("$root/bench/cpu_name.sh")"
echo "== CPU: $cpu"

# 200 lines sampled from the F32 model (temperature 1, seeds 1..200), one story opening per line.
for s in $(seq 1 200); do
  "$bin" generate --model "$stories" --max-tokens 48 --temperature 1 --seed "$s" 2> /dev/null | tr '\n' ' ' | sed 's/ *$//'; echo
done > "$work/sampled.txt"
grep -v '^ *$' "$shared/data/tinystories/tinystories_sample.txt" > "$work/sample.txt"

mkdir -p "$(dirname "$out")"
: > "$out"
for t in f32 f16 q8_0 q4_0; do
  f="$work/stories260K-$t.gguf"
  "$bin" convert --model "$stories" --out "$f" --type "$t" > /dev/null
  (cd "$peer" && node peer.mjs greedy "$f" "Once upon a time" 60 1) > "$work/peer-greedy.json"
  "$bin" generate --model "$f" --prompt "Once upon a time" --max-tokens 60 --greedy --ids --threads 1 2> "$work/ours-ids.txt" > /dev/null
  for set in sample sampled; do
    (cd "$peer" && node peer.mjs ppl "$f" "$work/$set.txt" 1) > "$work/peer-ppl-$set.json"
    "$bin" eval --model "$f" --data "$work/$set.txt" --task lm --threads 1 > "$work/ours-ppl-$set.txt"
  done
  (cd "$peer" && node peer.mjs parse "$f") > "$work/peer-parse.json"
  "$bin" gguf --file "$f" --json > "$work/ours-parse.json"
  python3 - "$t" "$work" "$shared/golden/stories260K_greedy_golden.json" "$cpu" "$(stat -c %s "$f")" >> "$out" <<'PY'
import json, re, sys
t, work, golden_path, cpu, size = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
golden = json.load(open(golden_path))["Once upon a time"]
peer = json.load(open(f"{work}/peer-greedy.json"))
id_lines = [l for l in open(f"{work}/ours-ids.txt").read().split("\n") if re.fullmatch(r"[\d ]+", l.strip() or "x")]
ours_ids = [int(x) for x in id_lines[0].split()]
ours_gen = ours_ids[len(peer["prompt_tokens"]):]
agree = 0
for a, b in zip(peer["tokens"], ours_gen):
    if a != b: break
    agree += 1
row = {"bench": "gguf_peer", "type": t, "file_bytes": size, "cpu": cpu,
       "llamacpp_prompt_tokens_equal_golden": peer["prompt_tokens"] == golden["prompt_tokens"],
       "llamacpp_greedy_equals_golden": peer["text"] == golden["text"],
       "greedy_tokens_agree": agree, "greedy_tokens_compared": min(len(peer["tokens"]), len(ours_gen))}
for s in ("sample", "sampled"):
    p = json.load(open(f"{work}/peer-ppl-{s}.json"))
    m = re.search(r"examples (\d+)\s+loss ([\d.]+)\s+perplexity ([\d.]+)", open(f"{work}/ours-ppl-{s}.txt").read())
    row[f"ppl_{s}_llamacpp"] = round(p["ppl"], 4)
    row[f"ppl_{s}_pocketllm"] = float(m.group(3))
    row[f"ppl_{s}_lines"] = p["lines"]
    row[f"ppl_{s}_rel_diff"] = round(abs(float(m.group(3)) - p["ppl"]) / p["ppl"], 5)
# @huggingface/gguf vs pocketllm gguf --json
hf = json.load(open(f"{work}/peer-parse.json")); ours = json.load(open(f"{work}/ours-parse.json"))
names = {0: "F32", 1: "F16", 2: "Q4_0", 8: "Q8_0", 12: "Q4_K", 14: "Q6_K", 30: "BF16"}
problems = []
for k, v in ours["metadata"].items():
    w = hf["metadata"].get(k)
    if isinstance(v, float) or (isinstance(v, list) and v and isinstance(v[0], float)):
        vs, ws = (v, w) if isinstance(v, list) else ([v], [w])
        if w is None or len(vs) != len(ws) or any(abs(a - b) > 1e-6 * max(1, abs(a)) for a, b in zip(vs, ws)): problems.append(k)
    elif v != w: problems.append(k)
extra = set(hf["metadata"]) - set(ours["metadata"]) - {"version", "tensor_count", "kv_count"}
problems += sorted(extra)
if hf["metadata"].get("version") != ours["version"]: problems.append("version")
ot = [(x["name"], x["dims"], x["type"], x["offset"]) for x in ours["tensors"]]
ht = [(x["name"], x["dims"], names.get(x["type"], str(x["type"])), x["offset"]) for x in hf["tensors"]]
if ot != ht: problems.append("tensor table")
row["hf_gguf_metadata_keys"] = len(ours["metadata"]); row["hf_gguf_tensors"] = len(ot)
row["hf_gguf_equal"] = not problems
if problems: row["hf_gguf_differences"] = problems[:10]
print(json.dumps(row))
PY
done

# A byte-level BPE vocabulary (GPT-2's) in small random qwen2 (q/k/v biases) and qwen3 (per-head q/k
# RMSNorms, heads of 24 in a 64-wide stream) models, as Hugging Face directories written here, converted
# to F32 and Q8_0 GGUF: llama.cpp and pocketllm must tokenize alike, agree on the F32 file's greedy
# continuation (random weights: Q8_0's is reported, not required) and on the perplexity over the
# TinyStories sample's lines (< 1 %; llama.cpp's peer starts a line with BOS only where the vocabulary has one).
# Gemma 3's norms scale by 1 + w: its stored weights are drawn around 0, and the files hold 1 + w.
for arch in qwen2 qwen3 gemma3; do
python3 - "$work/$arch-bpe" "$shared/hub/openai-community/gpt2/tokenizer.json" "$arch" <<'PY'
import json, os, random, shutil, struct, sys
out, tok, arch = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)
gemma = arch == "gemma3"
V, d, ff, L, H, KV = 50257, 64, 128, 7 if gemma else 2, 4, 1 if gemma else 2
qwen3 = arch == "qwen3"
hd = 24 if qwen3 or gemma else d // H
cfg = {"architectures": ["Qwen3ForCausalLM" if qwen3 else "Qwen2ForCausalLM"], "model_type": arch, "vocab_size": V,
       "hidden_size": d, "intermediate_size": ff, "num_hidden_layers": L, "num_attention_heads": H,
       "num_key_value_heads": KV, "head_dim": hd, "max_position_embeddings": 256, "rms_norm_eps": 1e-6,
       "rope_theta": 1000000.0 if qwen3 or gemma else 10000.0, "tie_word_embeddings": True}
if gemma:
    cfg.update({"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "rope_local_base_freq": 10000.0,
                "sliding_window": 8, "query_pre_attn_scalar": hd, "hidden_activation": "gelu_pytorch_tanh",
                "layer_types": ["full_attention" if (l + 1) % 6 == 0 else "sliding_attention" for l in range(L)]})
json.dump(cfg, open(os.path.join(out, "config.json"), "w"))
shutil.copy(tok, os.path.join(out, "tokenizer.json"))
rng = random.Random(7)
tensors = [("model.embed_tokens.weight", [V, d], 0.5), ("model.norm.weight", [d], None)]
for l in range(L):
    p = f"model.layers.{l}."
    tensors += [(p + "input_layernorm.weight", [d], None), (p + "post_attention_layernorm.weight", [d], None),
                (p + "self_attn.q_proj.weight", [H * hd, d], 0.2), (p + "self_attn.k_proj.weight", [KV * hd, d], 0.2),
                (p + "self_attn.v_proj.weight", [KV * hd, d], 0.2), (p + "self_attn.o_proj.weight", [d, H * hd], 0.2),
                (p + "mlp.gate_proj.weight", [ff, d], 0.2), (p + "mlp.up_proj.weight", [ff, d], 0.2),
                (p + "mlp.down_proj.weight", [d, ff], 0.2)]
    if gemma:
        tensors += [(p + "pre_feedforward_layernorm.weight", [d], None), (p + "post_feedforward_layernorm.weight", [d], None)]
    if qwen3 or gemma:  # norm weights away from 1, so that a reader that skips them is caught
        tensors += [(p + "self_attn.q_norm.weight", [hd], "norm"), (p + "self_attn.k_norm.weight", [hd], "norm")]
    else:
        tensors += [(p + "self_attn.q_proj.bias", [H * hd], 0.2), (p + "self_attn.k_proj.bias", [KV * hd], 0.2),
                    (p + "self_attn.v_proj.bias", [KV * hd], 0.2)]
header, blobs, off = {}, [], 0
for name, shape, sd in tensors:
    n = 1
    for s in shape: n *= s
    base = 0.0 if gemma else 1.0  # Gemma's (1 + w)
    if sd is None: vals = [rng.gauss(0, 0.2) for _ in range(n)] if gemma else [1.0] * n
    elif sd == "norm": vals = [base + rng.gauss(0, 0.5) for _ in range(n)]
    else: vals = [rng.gauss(0, sd) for _ in range(n)]
    raw = struct.pack("<%df" % n, *vals)
    header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(raw)]}
    blobs.append(raw); off += len(raw)
h = json.dumps(header).encode(); h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h); [f.write(b) for b in blobs]
PY
done
# The sample's "<|endoftext|>" separator lines are GPT-2's special token to pocketllm (one token, nothing
# to predict: skipped) and six plain tokens to llama.cpp's tokenize: left out of the comparison.
grep -v '<|endoftext|>' "$work/sample.txt" > "$work/sample-bpe.txt"
printf '%s\n' '"Hello world, this is a test."' '"  two  spaces and\nnewlines\n\n"' '"numbers 12345 and 3.14159"' \
  '"caf\u00e9 na\u00efve \u2014 \ud83d\ude00"' '"don'"'"'t I'"'"'LL you'"'"'ve"' > "$work/bpe-lines.jsonl"
for arch in qwen2 qwen3 gemma3; do
for t in f32 q8_0; do
  f="$work/$arch-bpe-$t.gguf"
  "$bin" convert --model "$work/$arch-bpe" --out "$f" --type "$t" > /dev/null
  (cd "$peer" && node peer.mjs tokens "$f" "$work/bpe-lines.jsonl" 24) > "$work/bpe-peer.json"
  "$bin" generate --model "$f" --prompt "Hello world, this is a test." --max-tokens 24 --greedy --ids --threads 1 2> "$work/bpe-ours.txt" > /dev/null
  (cd "$peer" && node peer.mjs ppl "$f" "$work/sample-bpe.txt" 1) > "$work/bpe-peer-ppl.json"
  "$bin" eval --model "$f" --data "$work/sample-bpe.txt" --task lm --threads 1 > "$work/bpe-ours-ppl.txt"
  python3 - "$t" "$work/bpe-peer.json" "$work/bpe-ours.txt" "$work/bpe-lines.jsonl" "$build" "$arch" "$work/bpe-peer-ppl.json" \
    "$work/bpe-ours-ppl.txt" >> "$out" <<'PY'
import json, re, subprocess, sys
t, peer_path, ours_path, lines_path, build, arch, peer_ppl, ours_ppl = sys.argv[1:9]
peer = json.load(open(peer_path))
ids = [l for l in open(ours_path).read().split("\n") if re.fullmatch(r"[\d ]+", l.strip() or "x")][0].split()
ours = [int(x) for x in ids]
prompt = peer["tokenized"][0]
agree = 0
for a, b in zip(peer["greedy"], ours[len(prompt):]):
    if a != b: break
    agree += 1
p = json.load(open(peer_ppl))
m = re.search(r"examples (\d+)\s+loss ([\d.]+)\s+perplexity ([\d.]+)", open(ours_ppl).read())
print(json.dumps({"bench": "gguf_peer_bpe", "arch": arch, "type": t, "prompt_tokens_equal": ours[:len(prompt)] == prompt,
                  "lines": len(peer["tokenized"]), "greedy_tokens_agree": agree, "greedy_tokens_compared": len(peer["greedy"]),
                  "ppl_sample_llamacpp": round(p["ppl"], 4), "ppl_sample_pocketllm": float(m.group(3)),
                  "ppl_sample_rel_diff": round(abs(float(m.group(3)) - p["ppl"]) / p["ppl"], 5)}))
PY
done
done
echo "== results ($out)"
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bpe = [r for r in rows if r["bench"] == "gguf_peer_bpe"]
rows = [r for r in rows if r["bench"] == "gguf_peer"]
print("| file | bytes | llama.cpp greedy = golden | greedy tokens agree | ppl sample (llama.cpp / pocketllm, diff) | ppl 200 sampled lines (diff) | @huggingface/gguf equal |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['type']} | {r['file_bytes']} | {r['llamacpp_greedy_equals_golden']} | {r['greedy_tokens_agree']}/{r['greedy_tokens_compared']} | "
          f"{r['ppl_sample_llamacpp']:.3f} / {r['ppl_sample_pocketllm']:.3f} ({100*r['ppl_sample_rel_diff']:.2f} %) | "
          f"{r['ppl_sampled_llamacpp']:.3f} / {r['ppl_sampled_pocketllm']:.3f} ({100*r['ppl_sampled_rel_diff']:.2f} %) | {r['hf_gguf_equal']} |")
bad = [r["type"] for r in rows if r["ppl_sample_rel_diff"] >= 0.01 or r["ppl_sampled_rel_diff"] >= 0.01 or not r["hf_gguf_equal"]
       or r["greedy_tokens_agree"] < 32 or (r["type"] == "f32" and not r["llamacpp_greedy_equals_golden"])]
for r in bpe:
    print(f"{r['arch']} + GPT-2 BPE vocabulary, {r['type']}: prompt tokens equal {r['prompt_tokens_equal']}, greedy "
          f"{r['greedy_tokens_agree']}/{r['greedy_tokens_compared']}, ppl sample {r['ppl_sample_llamacpp']:.2f} / "
          f"{r['ppl_sample_pocketllm']:.2f} ({100*r['ppl_sample_rel_diff']:.2f} %)")
    # Random weights give near-flat logits: only the F32 file's greedy path is expected to match exactly
    # (8-bit activations round differently in the two engines); the tokenization must match for both.
    if (not r["prompt_tokens_equal"] or (r["type"] == "f32" and r["greedy_tokens_agree"] < r["greedy_tokens_compared"])
            or r["ppl_sample_rel_diff"] >= 0.01):
        bad.append(f"bpe-{r['arch']}-{r['type']}")
print("all checks hold" if not bad else "CHECKS FAILED for " + ", ".join(bad))
sys.exit(1 if bad else 0)
PY
