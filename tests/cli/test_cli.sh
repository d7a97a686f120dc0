#!/usr/bin/env bash
# End-to-end checks of the pocketllm CLI: golden output, usage errors, replay determinism.
#   test_cli.sh POCKETLLM_BINARY FIXTURES_DIR SHARED_DIR
source "$(dirname "$0")/../support/test_lib.sh"
bin="$1"; fixtures="$2"; shared="$3"

# perturb reproduces the golden vectors (first 32 of each, compared as float32 values).
python3 - "$bin" "$fixtures/perturbation_golden.json" > "$work/golden.out" 2>&1 <<'PY'
import json, struct, subprocess, sys
binary, path = sys.argv[1], sys.argv[2]
bad = 0
for v in json.load(open(path))["vectors"]:
    out = subprocess.run([binary, "perturb", "--seed", "0x" + v["seed"], "--tensor", v["tensor"], "--start",
                          str(v["start"]), "--count", "32", "--dist", v["distribution"]],
                         capture_output=True, text=True, check=True).stdout.split()
    f32 = lambda x: struct.pack("<f", x)
    got = [f32(float(x)) for x in out]
    want = [f32(float.fromhex(x)) for x in v["first"]]
    if got != want:
        bad += 1
        print("mismatch", v["distribution"], v["seed"], v["tensor"])
    raw = subprocess.run([binary, "perturb", "--seed", "0x" + v["seed"], "--tensor", v["tensor"], "--start",
                          str(v["start"]), "--count", "32", "--dist", v["distribution"], "--format", "f32"],
                         capture_output=True, check=True).stdout
    if raw != b"".join(want):
        bad += 1
        print("f32 mismatch", v["distribution"], v["seed"])
sys.exit(1 if bad else 0)
PY
check "perturb prints the golden vectors (text and f32)" '[ $? -eq 0 ] || { cat "$work/golden.out"; false; }'

"$bin" perturb --help > /dev/null; check "perturb --help exits 0" '[ $? -eq 0 ]'
"$bin" perturb --tensor x 2> "$work/err"; rc=$?
check "missing --seed is a usage error naming it" '[ $rc -eq 2 ] && grep -q -- "--seed is required" "$work/err"'
"$bin" perturb --seed 0xZZ --tensor x 2> "$work/err"; rc=$?
check "a malformed seed is rejected" '[ $rc -eq 2 ] && grep -q "not 0x<hex>" "$work/err"'
"$bin" perturb --seed 1 --tensor x --dist uniform 2> "$work/err"; rc=$?
check "an unknown distribution is rejected" '[ $rc -eq 2 ]'
"$bin" perturb --seed 1 --tensor x --count -5 2> "$work/err"; rc=$?
check "a negative count is rejected" '[ $rc -eq 2 ]'
"$bin" perturb --seed 1 --tensor x --colour red 2> "$work/err"; rc=$?
check "an unknown option is rejected" '[ $rc -eq 2 ] && grep -q "unknown option --colour" "$work/err"'
"$bin" frobnicate 2> /dev/null; rc=$?
check "an unknown command is a usage error" '[ $rc -eq 2 ]'

model="$shared/fixtures/fake_gpt2_random/model.safetensors"
if [ -f "$model" ]; then
  printf '{"format":"pocketllm.update_log","version":1,"entries":[{"seed":"00000000000000aa","coeff":0.001},{"seed":"00000000000000bb","coeff":-0.002}]}' > "$work/log.json"
  "$bin" replay --base "$model" --log "$work/log.json" --out "$work/a.safetensors" --threads 1 > /dev/null
  "$bin" replay --base "$model" --log "$work/log.json" --out "$work/b.safetensors" --threads 2 > /dev/null
  check "replay with 1 and 2 threads writes identical files" 'cmp -s "$work/a.safetensors" "$work/b.safetensors"'
  check "replay changed the weights" '! cmp -s "$work/a.safetensors" "$model"'
  # Replaying entry by entry (two runs of one entry) equals replaying the whole log.
  printf '{"format":"pocketllm.update_log","version":1,"entries":[{"seed":"00000000000000aa","coeff":0.001}]}' > "$work/l1.json"
  printf '{"format":"pocketllm.update_log","version":1,"entries":[{"seed":"00000000000000bb","coeff":-0.002}]}' > "$work/l2.json"
  "$bin" replay --base "$model" --log "$work/l1.json" --out "$work/c1.safetensors" > /dev/null
  "$bin" replay --base "$work/c1.safetensors" --log "$work/l2.json" --out "$work/c2.safetensors" > /dev/null
  python3 - "$work/a.safetensors" "$work/c2.safetensors" <<'PY' > /dev/null
import json, struct, sys
def tensors(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
sys.exit(0 if tensors(sys.argv[1]) == tensors(sys.argv[2]) else 1)
PY
  check "replaying entry by entry equals replaying the log" '[ $? -eq 0 ]'
  printf 'not a log' > "$work/bad.json"
  "$bin" replay --base "$model" --log "$work/bad.json" --out "$work/x.safetensors" 2> "$work/err"; rc=$?
  check "a malformed log is a clear error and writes nothing" '[ $rc -eq 1 ] && grep -q "bad.json" "$work/err" && [ ! -e "$work/x.safetensors" ]'
  head -c 300 "$model" > "$work/trunc.safetensors"
  "$bin" replay --base "$work/trunc.safetensors" --log "$work/log.json" --out "$work/y.safetensors" 2> "$work/err"; rc=$?
  check "a truncated model is a clear error" '[ $rc -eq 1 ] && grep -q "trunc.safetensors" "$work/err"'
else
  echo "skip replay checks: $model not found (set POCKETLLM_SHARED)"
fi

stories="$shared/hub/karpathy/tinyllamas/stories260K"
if [ -f "$stories/stories260K.bin" ]; then
  printf 'the cat sat\nthe dog ran\na bird sang\nthe sun was warm\n' > "$work/t.txt"
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 12 --batch-size 2 --lr 1e-3 --weight-decay 0.1 \
    --out "$work/run" 2> /dev/null
  "$bin" export --run "$work/run" --out "$work/exported" > /dev/null
  "$bin" replay --model "$stories" --log "$work/run" --out "$work/replayed" > /dev/null
  check "export of a run equals replaying its log (with weight decay) on another load of the base" \
    'cmp -s "$work/exported/model.safetensors" "$work/replayed/model.safetensors"'
  "$bin" finetune --resume --out "$work/run" 2> "$work/err"; rc=$?
  check "resuming a finished run says it is complete and how to extend it" \
    '[ $rc -eq 0 ] && grep -q "run is complete (12 of 12 steps); extend it with --resume --steps N" "$work/err"'
  cp -r "$work/run" "$work/run_ext"
  "$bin" finetune --resume --out "$work/run_ext" --steps 14 --threads 1 2> "$work/err"; rc=$?
  check "an extended run says where it resumes" '[ $rc -eq 0 ] && grep -q "^resuming .*run_ext at step 13 of 14" "$work/err"'
  # A step's two passes at once (the default on 2 threads) or one after the other: the same run.
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 12 --batch-size 2 --lr 1e-3 --weight-decay 0.1 \
    --threads 2 --out "$work/pair_conc" 2> "$work/pair_conc.err"
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 12 --batch-size 2 --lr 1e-3 --weight-decay 0.1 \
    --threads 2 --pair sequential --out "$work/pair_seq" 2> "$work/pair_seq.err"
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 2 --pair sometimes --out "$work/pair_bad" 2> "$work/err"; rc=$?
  check "--pair takes auto, concurrent or sequential" '[ $rc -eq 2 ] && grep -q "pair must be auto, concurrent or sequential" "$work/err"'
  check "a step's two passes at once on 2 threads log the bytes of one after the other" \
    'grep -q "forward passes of a step: concurrent: the second pass" "$work/pair_conc.err" &&
     grep -q "forward passes of a step: sequential: asked for" "$work/pair_seq.err" &&
     cmp -s "$work/pair_conc/log.jsonl" "$work/pair_seq/log.jsonl" && cmp -s "$work/pair_conc/log.jsonl" "$work/run/log.jsonl"'
  # Trainable rows: the sample's token rows of the embedding (with weight decay, which follows the rows too).
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 12 --batch-size 2 --lr 1e-3 --weight-decay 0.1 \
    --trainable "norms,model.embed_tokens.weight" --trainable-rows "model.embed_tokens.weight=sample" \
    --out "$work/rows" 2> /dev/null
  "$bin" export --run "$work/rows" --out "$work/rows_exported" > /dev/null
  "$bin" replay --model "$stories" --log "$work/rows" --out "$work/rows_replayed" > /dev/null
  check "a run on the sample's embedding rows records explicit rows and replays to its export" \
    'grep -q "\"trainable_rows\": \"model.embed_tokens.weight=[0-9]" "$work/rows/spec.json" &&
     cmp -s "$work/rows_exported/model.safetensors" "$work/rows_replayed/model.safetensors"'
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 2 --trainable norms --trainable-rows "norms=sample" \
    --out "$work/rows_bad" 2> "$work/err"; rc=$?
  check "trainable rows on a tensor whose rows are not token ids are refused before a run directory exists" \
    '[ $rc -ne 0 ] && grep -q "not token ids" "$work/err" && [ ! -e "$work/rows_bad/spec.json" ]'
  # Momentum: older directions re-applied as plain log entries, so replaying the log gives the export.
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 12 --batch-size 2 --lr 1e-2 --trainable norms \
    --momentum 0.8 --momentum-window 4 --out "$work/momentum" 2> /dev/null
  "$bin" export --run "$work/momentum" --out "$work/momentum_exported" > /dev/null
  "$bin" replay --model "$stories" --log "$work/momentum" --out "$work/momentum_replayed" > /dev/null
  check "a momentum run logs its re-applied directions as entries and replays to its export" \
    'grep -q "\"from\":7" "$work/momentum/log.jsonl" && [ "$(grep -c "\"step\":11}" "$work/momentum/log.jsonl")" -eq 5 ] &&
     cmp -s "$work/momentum_exported/model.safetensors" "$work/momentum_replayed/model.safetensors"'
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 2 --momentum 1 --out "$work/mom_bad" 2> "$work/err"; rc=$?
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 2 --momentum-window 3 --out "$work/mom_bad" 2> "$work/err2"; rc2=$?
  check "momentum outside [0, 1) and a window without momentum are refused" \
    '[ $rc -eq 2 ] && grep -q "momentum must be in" "$work/err" && [ $rc2 -eq 2 ] && grep -q "needs --momentum" "$work/err2" &&
     [ ! -e "$work/mom_bad" ]'
  # Adam over full directions: its step is logged as plain entries, so replaying the log gives the export.
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 3 --batch-size 2 --trainable "model.norm.weight" \
    --optimizer adam --out "$work/adam" 2> /dev/null
  "$bin" export --run "$work/adam" --out "$work/adam_exported" > /dev/null
  "$bin" replay --model "$stories" --log "$work/adam" --out "$work/adam_replayed" > /dev/null
  check "an adam run logs 1.25 (d + 1) directions a step and replays to its export" \
    'grep -q "\"name\": \"adam\"" "$work/adam/spec.json" && [ "$(grep -c "\"step\":2}" "$work/adam/log.jsonl")" -eq 82 ] &&
     cmp -s "$work/adam_exported/model.safetensors" "$work/adam_replayed/model.safetensors"'
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 2 --adam-beta1 0.5 --out "$work/adam_bad" 2> "$work/err"; rc=$?
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 2 --optimizer adam --trainable norms --n-spsa 600 \
    --out "$work/adam_bad" 2> "$work/err2"; rc2=$?
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 2 --optimizer adam --trainable all --out "$work/adam_bad" \
    2> "$work/err3"; rc3=$?
  check "adam's options without adam, too few directions and too large a set are refused before a run directory exists" \
    '[ $rc -eq 2 ] && grep -q "need --optimizer adam" "$work/err" && [ $rc2 -ne 0 ] && grep -q "is too few" "$work/err2" &&
     [ $rc3 -ne 0 ] && grep -q "at most 4096" "$work/err3" && [ ! -e "$work/adam_bad/spec.json" ]'
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 2 --lr 1e308 --out "$work/lr_bad" 2> "$work/err"; rc=$?
  check "an lr beyond float32 is a usage error, before a run directory exists" \
    '[ $rc -eq 2 ] && grep -q -- "--lr must be a positive number up to" "$work/err" && [ ! -e "$work/lr_bad" ]'
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps -5 --out "$work/steps_bad" 2> "$work/err"; rc=$?
  check "a negative step count is a usage error that gives the range" \
    '[ $rc -eq 2 ] && grep -q -- "--steps must be an integer 0..1e8" "$work/err" && [ ! -e "$work/steps_bad" ]'
  # Added biases: zero output biases on every projection, trained with the norms; the merged export is a
  # Hugging Face Llama with attention_bias and mlp_bias that evaluates as the run does.
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 12 --batch-size 2 --lr 1e-2 \
    --add-biases all-linear --trainable "norms,biases" --out "$work/biases" 2> /dev/null
  "$bin" export --run "$work/biases" --out "$work/biases_exported" > /dev/null
  "$bin" replay --model "$stories" --log "$work/biases" --out "$work/biases_replayed" > /dev/null
  biases_run=$("$bin" eval --run "$work/biases" --data "$work/t.txt" | head -1)
  biases_export=$("$bin" eval --model "$work/biases_exported" --data "$work/t.txt" | head -1)
  base_eval=$("$bin" eval --model "$stories" --data "$work/t.txt" | head -1)
  "$bin" eval --model "$stories" --data "$work/t.txt" --batch-size 0 2> "$work/err"; rc=$?
  check "eval names the option out of range" '[ $rc -eq 2 ] && grep -q -- "--batch-size must be 1..65536" "$work/err"'
  check "a run with added biases exports a biased Llama that evaluates as the run, and replays to it" \
    'grep -q "\"mlp_bias\": true" "$work/biases_exported/config.json" && grep -q "\"attention_bias\": true" "$work/biases_exported/config.json" &&
     [ "$biases_run" = "$biases_export" ] && [ "$biases_run" != "$base_eval" ] &&
     cmp -s "$work/biases_exported/model.safetensors" "$work/biases_replayed/model.safetensors"'
  "$bin" export --run "$work/biases" --out "$work/biases.gguf" --format gguf > /dev/null 2> "$work/err"; rc=$?
  check "GGUF export of added biases is refused with the reason" '[ $rc -ne 0 ] && grep -q "added biases" "$work/err"'
  "$bin" generate --model "$work/exported" --prompt "Once" --max-tokens 5 > /dev/null 2>&1
  check "the exported Hugging Face directory loads and generates" '[ $? -eq 0 ]'
  # GGUF: a run exported as GGUF evaluates as the run does; convert quantizes; gguf describes the file.
  "$bin" export --run "$work/run" --out "$work/run.gguf" --format gguf > /dev/null 2> "$work/export.err"
  check "a GGUF export reports its progress to the last tensor" 'tail -1 "$work/export.err" | grep -q "^writing tensors: 47/47 (100 %)"'
  run_eval=$("$bin" eval --run "$work/run" --data "$work/t.txt" | head -1)
  gguf_eval=$("$bin" eval --model "$work/run.gguf" --data "$work/t.txt" | head -1)
  check "a run exported as GGUF evaluates exactly as the run ($run_eval)" '[ -n "$run_eval" ] && [ "$run_eval" = "$gguf_eval" ]'
  "$bin" convert --model "$stories" --out "$work/q8.gguf" --type q8_0 > /dev/null 2> "$work/convert.err"
  check "convert reports its progress by tenths, to the 47th of 47 tensors" \
    '[ "$(grep -c "^writing tensors: [0-9]*/47 ([0-9]* %)" "$work/convert.err")" = 11 ] && tail -1 "$work/convert.err" | grep -q "^writing tensors: 47/47 (100 %)"'
  "$bin" gguf --file "$work/q8.gguf" > "$work/q8.txt"
  check "convert --type q8_0 writes Q8_0 matrices, F16 where rows are not whole blocks, F32 norms" \
    'grep -q "blk.0.attn_q.weight *Q8_0" "$work/q8.txt" && grep -q "blk.0.ffn_down.weight *F16" "$work/q8.txt" && grep -q "output_norm.weight *F32" "$work/q8.txt"'
  # An independent reading of the file's layout (not pocketllm's reader): header, keys, aligned tensor data.
  python3 - "$work/q8.gguf" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
magic, version, nt, nkv = struct.unpack_from("<IIQQ", b, 0); at = 24
assert magic == 0x46554747 and version == 3, "header"
def string():
    global at
    n, = struct.unpack_from("<Q", b, at); at += 8; s = b[at:at + n].decode(); at += n; return s
size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
meta = {}
for _ in range(nkv):
    k = string(); t, = struct.unpack_from("<I", b, at); at += 4
    if t == 8: meta[k] = string()
    elif t == 9:
        et, n = struct.unpack_from("<IQ", b, at); at += 12
        meta[k] = [string() for _ in range(n)] if et == 8 else n
        if et != 8: at += size[et] * n
    else: meta[k] = struct.unpack_from({4: "<I", 5: "<i", 6: "<f", 7: "<?"}[t], b, at)[0]; at += size[t]
assert meta["general.architecture"] == "llama" and meta["llama.block_count"] == 5 and meta["general.file_type"] == 7, meta
assert meta["tokenizer.ggml.tokens"][403] == "\u2581Once", meta["tokenizer.ggml.tokens"][403]
blocks = {0: (1, 4), 1: (1, 2), 8: (32, 34)}
end = 0
infos = []
for _ in range(nt):
    name = string(); nd, = struct.unpack_from("<I", b, at); at += 4
    dims = struct.unpack_from("<%dQ" % nd, b, at); at += 8 * nd
    t, off = struct.unpack_from("<IQ", b, at); at += 12
    n = 1
    for d in dims: n *= d
    assert off % 32 == 0
    infos.append((off, n // blocks[t][0] * blocks[t][1]))
data = (at + 31) // 32 * 32
assert nt == 47 and max(o + s for o, s in infos) + data <= len(b) <= max(o + s for o, s in infos) + data + 32
PY
  check "an independent parser reads the GGUF layout pocketllm wrote" '[ $? -eq 0 ]'
  "$bin" generate --model "$work/q8.gguf" --prompt "Once upon a time" --max-tokens 20 --greedy > "$work/q8gen.txt" 2> /dev/null
  check "the Q8_0 file generates the golden opening" 'grep -q "Once upon a time, there was a little girl named Lily" "$work/q8gen.txt"'
  "$bin" generate --model "$stories" --prompt "Once" --max-tokens 1000 > "$work/gen.txt" 2> "$work/gen.err"; rc=$?
  check "generate stops where stories260K's 512 positions are full, and says so" \
    '[ $rc -eq 0 ] && grep -q "^\[stopped at the model.s context of 512 positions" "$work/gen.err" &&
     grep -q "^\[2 prompt + 510 generated tokens" "$work/gen.err"'
  long_prompt=$(for i in $(seq 300); do printf 'the dog ran. '; done)
  "$bin" generate --model "$stories" --prompt "$long_prompt" --max-tokens 4 > "$work/gen.txt" 2> "$work/gen.err"; rc=$?
  check "a prompt that fills the context is refused before anything is printed" \
    '[ $rc -eq 1 ] && [ ! -s "$work/gen.txt" ] && grep -q "the prompt is [0-9]* tokens and the model.s context is 512 positions" "$work/gen.err"'
  "$bin" generate --model "$stories" --prompt "Once" --max-tokens 12 --greedy > "$work/greedy.txt" 2> /dev/null
  "$bin" generate --model "$stories" --prompt "Once" --max-tokens 12 --temperature 0 > "$work/t0.txt" 2> /dev/null; rc=$?
  "$bin" generate --model "$stories" --prompt "Once" --max-tokens 12 --temperature -0.5 > /dev/null 2> "$work/err"; rc2=$?
  check "--temperature 0 picks the likeliest token as --greedy does, and a negative one is a usage error" \
    '[ $rc -eq 0 ] && [ -s "$work/t0.txt" ] && cmp -s "$work/greedy.txt" "$work/t0.txt" && [ $rc2 -eq 2 ] && grep -q "temperature must be >= 0" "$work/err"'
  "$bin" generate --model "$stories" --max-tokens 99999999999999999999 > /dev/null 2> "$work/err"; rc=$?
  check "a count past 64 bits is called out of range" '[ $rc -eq 2 ] && grep -q "max-tokens: .99999999999999999999. is out of range" "$work/err"'
  "$bin" convert --model "$stories" --out "$work/x.gguf" --type q5_k 2> "$work/err"; rc=$?
  check "convert to an unknown type is a usage error" '[ $rc -eq 2 ] && grep -q "q8_0" "$work/err" && [ ! -e "$work/x.gguf" ]'
  head -c 5000 "$work/q8.gguf" > "$work/cut.gguf"
  "$bin" convert --model "$work/cut.gguf" --out "$work/x.gguf" 2> "$work/err"; rc=$?
  check "a truncated GGUF is a clear error naming it" '[ $rc -eq 1 ] && grep -q "cut.gguf" "$work/err" && [ ! -e "$work/x.gguf" ]'
  "$bin" info --model /dev/null 2> "$work/err"; rc=$?
  "$bin" info --model "$work/no_such_model.bin" 2> "$work/err2"; rc2=$?
  check "a model path that is a device is not reported as missing, and a missing one is" \
    '[ $rc -eq 1 ] && grep -q "not a regular file or directory" "$work/err" && [ $rc2 -eq 1 ] && grep -q "no such file" "$work/err2"'
  "$bin" info --model "$stories" --json --id > "$work/info.json"
  id_line=$("$bin" info --model "$stories" --id | sed -n 's/^model id: *//p')
  check "info --json is one JSON object with the sizes and the id the text form prints" 'python3 - "$work/info.json" "$id_line" <<PY
import json, sys
j = json.load(open(sys.argv[1]))
ok = (j["context_length"] == 512 and j["parameters"] == 260032 and j["vocab_size"] == 512 and j["layers"] == 5
      and j["dtypes"] == {"F32": 260032} and j["tokenizer"] is True and j["id"] == sys.argv[2] and len(sys.argv[2]) == 64)
sys.exit(0 if ok else 1)
PY'
  "$bin" convert --model "$stories" --out "$work/badname.gguf" --name $'caf\xc3 \xff' > /dev/null 2> "$work/err"; rc=$?
  check "convert refuses a --name that is not UTF-8" '[ $rc -eq 2 ] && grep -q "name must be UTF-8" "$work/err" && [ ! -e "$work/badname.gguf" ]'
  # Another tool's GGUF whose general.name is not UTF-8 (patched in place): info --json still gives JSON,
  # the name repaired with U+FFFD.
  "$bin" convert --model "$stories" --out "$work/badname.gguf" --name "cafXY" > /dev/null 2>&1
  python3 - "$work/badname.gguf" <<'PY'
import sys
p = sys.argv[1]
b = open(p, "rb").read()
i = b.index(b"cafXY")
open(p, "wb").write(b[:i] + b"caf\xc3\xff" + b[i + 5:])
PY
  "$bin" info --model "$work/badname.gguf" --json > "$work/badname.json" 2> "$work/err"; rc=$?
  check "info --json of a GGUF whose name is not UTF-8 is valid JSON with the name repaired" \
    '[ $rc -eq 0 ] && python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))[\"name\"] == \"caf\ufffd\ufffd\" else 1)" "$work/badname.json"'
  "$bin" info --system > "$work/sys.txt"
  check "info --system names the kernel paths chosen for this CPU" 'grep -q "^kernels: .*quantized batches: " "$work/sys.txt"'
  check "info --system names the float GEMM path and, on a packed one, its k block and the L2 its tiles follow" \
    'grep -Eq "float GEMM: (packed (AVX-512 12x32|AVX2\+FMA 6x16) k block [0-9]+, L2 ([0-9]+ KiB|unknown), Eigen below|Eigen \()" "$work/sys.txt"'
  check "info --system names the perturbation path" 'grep -Eq "perturbation z: (AVX-512|AVX2|generic)" "$work/sys.txt"'
  if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
    check "an AVX2 CPU gets a vector perturbation path" 'grep -Eq "perturbation z: (AVX-512|AVX2)" "$work/sys.txt"'
  fi
  if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    check "an AVX-512 CPU takes the 16-lane query-lane attention" 'grep -q "narrow-head attention: AVX-512 query lanes" "$work/sys.txt"'
  elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
    check "an AVX2 CPU takes the 8-lane query-lane attention" 'grep -q "narrow-head attention: AVX2+FMA query lanes" "$work/sys.txt"'
  fi
  if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo 2>/dev/null; then
    POCKETLLM_ATTENTION=avx2 "$bin" info --system > "$work/sys_att.txt"
    check "POCKETLLM_ATTENTION=avx2 takes the 8-lane query lanes on any AVX2 CPU" \
      'grep -q "narrow-head attention: AVX2+FMA query lanes" "$work/sys_att.txt"'
  fi
  POCKETLLM_ATTENTION=keys "$bin" info --system > "$work/sys_att.txt"
  check "POCKETLLM_ATTENTION=keys leaves both query-lane kernels" \
    'grep -q "narrow-head attention: " "$work/sys_att.txt" && ! grep -q "query lanes" "$work/sys_att.txt"'
  POCKETLLM_PERTURB=generic "$bin" info --system > "$work/sys_generic.txt"
  check "POCKETLLM_PERTURB=generic chooses the generic perturbation path" 'grep -q "perturbation z: generic" "$work/sys_generic.txt"'
  "$bin" gguf --file "$work/cut.gguf" 2> "$work/err"; rc=$?
  check "gguf on a truncated file fails with the reason" '[ $rc -eq 1 ] && grep -q "truncated" "$work/err"'
  cp "$work/t.txt" "$work/"$'data\xff.txt'
  "$bin" finetune --model "$stories" --data "$work/"$'data\xff.txt' --steps 2 --out "$work/utf8_run" 2> "$work/err"; rc=$?
  check "a data file whose name is not UTF-8 is refused before the run directory is made" \
    '[ $rc -eq 1 ] && grep -q "hold text that is not UTF-8" "$work/err" && [ ! -e "$work/utf8_run" ]'
  "$bin" finetune --model "$stories" --data "$work/t.txt" --out "$work/run" 2> "$work/err"; rc=$?
  check "finetune refuses to overwrite an existing run" '[ $rc -eq 1 ] && grep -q "already holds a run" "$work/err"'
  "$bin" finetune --model "$stories" --data "$work/t.txt" --task classify --out "$work/run2" 2> "$work/err"; rc=$?
  check "classify without label words is a usage error" '[ $rc -eq 2 ] && grep -q -- "--labels" "$work/err"'

  # --preset sst2 brings its recipe; an option given replaces its part. stories260K has 704 parameters in its
  # 11 norm vectors (the classify default), at most the 1 024 for which the recipe trains with Adam over
  # 1.25 (d + 1) = 882 directions (rounded up to even) on balanced pairs at lr 3e-3. Past 1 024 it is SGD on
  # batches of 256 at lr 35.2 / d.
  printf 'text\tlabel\n' > "$work/s.tsv"
  for i in $(seq 1 12); do
    printf 'what a truly wonderful and moving film number %d\t1\nthis was a dull and tiresome film number %d\t0\nok %d\t1\nbad %d\t0\n' $i $i $i $i >> "$work/s.tsv"
  done
  "$bin" finetune --model "$stories" --data "$work/s.tsv" --preset sst2 --validation 2 --steps 2 --threads 1 \
    --out "$work/preset" > /dev/null 2> "$work/preset.err"
  check "--preset sst2 records its recipe: the norms, Adam over 882 directions with decay to start 0.002, balanced pairs, cosine lr 3e-3, min 6 words" \
    'python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
ok = (\"norm\" in s[\"trainable\"] and s[\"batch_size\"] == 2 and s[\"schedule\"] == \"cosine\" and s[\"balanced\"]
      and s[\"optimizer\"][\"name\"] == \"adam\" and s[\"n_spsa\"] == 882
      and abs(s[\"optimizer\"][\"decay_to_start\"] - 0.002) < 1e-9
      and abs(s[\"lr\"] - 3e-3) < 1e-9 and s[\"data\"][\"min_words\"] == 6 and s[\"validation\"][\"examples\"] == 2
      and s[\"task\"][\"label_words\"] == [[\"0\", \" bad\"], [\"1\", \" good\"]])
sys.exit(0 if ok else 1)" "$work/preset/spec.json"'
  check "finetune prints how the run trains" \
    'grep -q "^training: adam, 882 directions a step, batches of 2, lr 0.003 (cosine), 2 steps, decay to start 0.002$" "$work/preset.err"'
  "$bin" finetune --model "$stories" --data "$work/s.tsv" --preset sst2 --decay-to-start 0 --steps 1 --threads 1 \
    --out "$work/preset_nopull" > /dev/null 2> "$work/preset_nopull.err"
  check "--decay-to-start 0 turns the recipe's pull off and keeps the rest of its Adam" \
    'python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
sys.exit(0 if s[\"optimizer\"][\"name\"] == \"adam\" and \"decay_to_start\" not in s[\"optimizer\"] and s[\"n_spsa\"] == 882 else 1)" \
      "$work/preset_nopull/spec.json" && grep -q "^training: adam, 882 directions a step, batches of 2, lr 0.003 (cosine), 1 steps$" "$work/preset_nopull.err"'
  "$bin" finetune --model "$stories" --data "$work/s.tsv" --preset sst2 --decay-to-start 0.01 --steps 1 --threads 1 \
    --out "$work/preset_pull" > /dev/null 2> "$work/preset_pull.err"
  check "--decay-to-start L replaces the recipe's 0.002" 'grep -q "lr 0.003 (cosine), 1 steps, decay to start 0.01$" "$work/preset_pull.err"'
  "$bin" finetune --model "$stories" --data "$work/s.tsv" --preset sst2 --trainable "*norm*,*o_proj*" --steps 1 --threads 1 \
    --out "$work/preset_big" > /dev/null 2>&1
  check "a trainable set over 1 024 elements keeps the SGD recipe: batches of 256, lr 35.2 / d" \
    'python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
ok = \"optimizer\" not in s and s[\"n_spsa\"] == 1 and s[\"batch_size\"] == 256 and abs(s[\"lr\"] - 35.2 / (704 + 5 * 64 * 64)) < 1e-9
sys.exit(0 if ok else 1)" "$work/preset_big/spec.json"'
  check "--min-words drops the short rows before training and says how many" \
    'grep -q "^24 training examples have fewer than 6 words (min words) and are not used" "$work/preset.err" && grep -q "on 20 training examples" "$work/preset.err"'
  "$bin" finetune --model "$stories" --data "$work/s.tsv" --preset sst2 --validation 0 --min-words 0 --lr 1e-3 \
    --batch-size 8 --no-balanced --trainable all --schedule constant --steps 1 --threads 1 --out "$work/preset2" > /dev/null 2>&1
  check "options given replace the preset's recipe part by part" \
    'python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
ok = (abs(s[\"lr\"] - 1e-3) < 1e-9 and s[\"batch_size\"] == 8 and not s[\"balanced\"] and \"norm\" not in s[\"trainable\"]
      and \"optimizer\" not in s
      and s[\"schedule\"] == \"constant\" and \"min_words\" not in s[\"data\"] and \"validation\" not in s)
sys.exit(0 if ok else 1)" "$work/preset2/spec.json"'
  # Length: a 600-word line is over stories260K's 512 positions whatever --max-length asks; said before step 1.
  { echo "a short line of text"; for i in $(seq 600); do printf 'word%d ' "$i"; done; echo; } > "$work/long.txt"
  "$bin" finetune --model "$stories" --data "$work/long.txt" --eval-data "$work/long.txt" --task lm --max-length 100000 \
    --steps 1 --threads 1 --out "$work/long" > /dev/null 2> "$work/long.err"
  check "finetune says --max-length is capped at the model's positions and that a training example was cut" \
    'grep -q "^max length 100000 is over the model.s 512 positions" "$work/long.err" &&
     grep -q "^1 training examples are longer than 512 tokens and were cut" "$work/long.err" &&
     grep -q "^eval data: 1 examples cut to 512 tokens, 0 not used" "$work/long.err" &&
     [ "$(grep -n "are longer than" "$work/long.err" | cut -d: -f1)" -lt "$(grep -n "^step 1/1" "$work/long.err" | cut -d: -f1)" ]'
  "$bin" finetune --model "$stories" --data "$work/long.txt" --task lm --max-length 64 --overlong skip \
    --steps 1 --threads 1 --out "$work/long2" > /dev/null 2> "$work/long.err"
  check "with --overlong skip it says how many training examples it dropped" \
    'grep -q "^1 training examples are not used: longer than 64 tokens" "$work/long.err" && grep -q "on 1 training examples" "$work/long.err"'
  "$bin" finetune --model "$stories" --data "$work/s.tsv" --preset sst2 --min-words 50 --out "$work/preset3" 2> "$work/err"; rc=$?
  check "a --min-words nothing meets is a clear error" '[ $rc -eq 1 ] && grep -q "none of its 48 examples has 50 or more words" "$work/err"'
  preset_eval=$("$bin" eval --model "$stories" --data "$work/s.tsv" --preset sst2 --threads 1)
  explicit_eval=$("$bin" eval --model "$stories" --data "$work/s.tsv" --task classify --template "{text} It was" \
    --labels "0:bad,1:good" --threads 1)
  other_eval=$("$bin" eval --model "$stories" --data "$work/s.tsv" --preset sst2 --labels "0:terrible,1:great" --threads 1)
  check "eval --preset sst2 is the classify task with MeZO's template and bad / good; --labels beside it wins" \
    '[ -n "$preset_eval" ] && [ "$preset_eval" = "$explicit_eval" ] && [ "$preset_eval" != "$other_eval" ]'
  "$bin" finetune --model "$stories" --data "$work/s.tsv" --preset sst2 --balanced --no-balanced --out "$work/preset4" 2> "$work/err"; rc=$?
  check "--balanced with --no-balanced is a usage error" '[ $rc -eq 2 ]'

  # LoRA: a run trains adapters only; its PEFT export, its merged export and its replay evaluate alike.
  "$bin" finetune --model "$stories" --data "$work/t.txt" --steps 6 --batch-size 2 --lr 1e-3 --lora-rank 4 \
    --lora-targets all-linear --lora-init-seed 7 --out "$work/lora" > /dev/null 2>&1
  check "a LoRA run records its adapter and trains nothing else" \
    'python3 -c "import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if s[\"adapter\"][\"rank\"]==4 and s[\"trainable\"]==\"none\" else 1)" "$work/lora/spec.json"'
  "$bin" export --run "$work/lora" --format peft --out "$work/peft" > /dev/null
  "$bin" export --run "$work/lora" --out "$work/merged" > /dev/null
  "$bin" replay --model "$stories" --log "$work/lora" --out "$work/lora_replayed" > /dev/null
  run_eval=$("$bin" eval --run "$work/lora" --data "$work/t.txt" --threads 1)
  peft_eval=$("$bin" eval --model "$stories" --adapter "$work/peft" --data "$work/t.txt" --threads 1)
  merged_eval=$("$bin" eval --model "$work/merged" --data "$work/t.txt" --threads 1)
  replay_eval=$("$bin" eval --model "$work/lora_replayed" --data "$work/t.txt" --threads 1)
  base_eval=$("$bin" eval --model "$stories" --data "$work/t.txt" --threads 1)
  # The run and its PEFT adapter compute the same thing; the merged weights (export, replay) round differently.
  same_loss() { python3 -c "import sys; a,b=(float(x.split()[3]) for x in sys.argv[1:3]); sys.exit(0 if abs(a-b) <= 1e-4*abs(a) else 1)" "$1" "$2"; }
  check "the run, its PEFT adapter, its merged export and its replay give the same loss; the base differs" \
    '[ "$run_eval" = "$peft_eval" ] && same_loss "$run_eval" "$merged_eval" && same_loss "$run_eval" "$replay_eval" && ! same_loss "$run_eval" "$base_eval"'
  check "the PEFT directory is what PEFT reads" \
    'python3 -c "import json,sys; c=json.load(open(sys.argv[1])); sys.exit(0 if c[\"peft_type\"]==\"LORA\" and c[\"r\"]==4 and c[\"target_modules\"]==\"all-linear\" else 1)" "$work/peft/adapter_config.json"'
  "$bin" export --run "$work/run" --format peft --out "$work/nope" 2> "$work/err"; rc=$?
  check "a run without adapters has no PEFT export" '[ $rc -ne 0 ] && grep -q "trained no adapters" "$work/err"'
  "$bin" finetune --model "$stories" --data "$work/t.txt" --lora-alpha 4 --out "$work/lora2" 2> "$work/err"; rc=$?
  check "--lora-alpha without --lora-rank is a usage error" '[ $rc -eq 2 ] && grep -q -- "--lora-rank" "$work/err"'
  "$bin" finetune --model "$stories" --data "$work/t.txt" --lora-rank 2 --lora-targets query --out "$work/lora3" 2> "$work/err"; rc=$?
  check "adapter targets that match nothing are named" '[ $rc -ne 0 ] && grep -q "match no linear layer" "$work/err"'
  "$bin" base-weights --model "$stories" --lora-rank 4 --lora-targets all-linear --lora-init-seed 7 --out "$work/bw.safetensors" > "$work/bw.out"
  check "base-weights writes the adapters' start and names the base model id" \
    'grep -q "wrote 70 tensors" "$work/bw.out" && grep -q "^base_model_id [0-9a-f]\{64\}$" "$work/bw.out"'
  "$bin" eval --model "$stories" --quantize q4_0 --data "$work/t.txt" --threads 1 > "$work/q4.out"
  check "eval --quantize q4_0 runs the 4-bit model" 'grep -q "perplexity" "$work/q4.out" && [ "$(cat "$work/q4.out")" != "$base_eval" ]'
else
  echo "skip finetune checks: $stories not found"
fi

# The privacy accountant: usage errors, and its three answers consistent with each other.
"$bin" privacy epsilon --sampling-rate 2 --noise-multiplier 1 --steps 10 --delta 1e-5 2> "$work/err"; rc=$?
check "privacy: a sampling rate above 1 is a usage error" '[ $rc -eq 2 ] && grep -q "sampling rate" "$work/err"'
"$bin" privacy epsilon --sampling-rate 0.1 --steps 10 --delta 1e-5 2> "$work/err"; rc=$?
check "privacy: a missing noise multiplier is a usage error" '[ $rc -eq 2 ] && grep -q -- "--noise-multiplier" "$work/err"'
"$bin" privacy 2> /dev/null; rc=$?
check "privacy: no subcommand is a usage error" '[ $rc -eq 2 ]'
out=$("$bin" privacy rounds --epsilon 1e9 --sampling-rate 0.001 --noise-multiplier 100 --delta 1e-5)
check "privacy: a count that reaches its limit says it is a lower bound" '[[ "$out" == "at least 1000000 rounds"* ]]'
out=$("$bin" privacy noise --epsilon 1e12 --sampling-rate 0.1 --steps 10 --delta 1e-5 --json)
check "privacy: a noise multiplier at the search's floor says so" '[[ "$out" == *"\"at_search_floor\":true"* && "$out" == *"0.001"* ]]'
out=$("$bin" privacy epsilon --sampling-rate 0.1 --noise-multiplier 1e-30 --steps 10 --delta 1e-5)
check "privacy: an astronomical epsilon prints in scientific notation" '[[ "$out" =~ ^epsilon\ [0-9.]+e\+[0-9]+ ]]'
sigma=$("$bin" privacy noise --epsilon 2 --sampling-rate 0.05 --steps 300 --delta 1e-5 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["noise_multiplier"])')
eps=$("$bin" privacy epsilon --sampling-rate 0.05 --noise-multiplier "$sigma" --steps 300 --delta 1e-5 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["epsilon"])')
rounds=$("$bin" privacy rounds --epsilon 2 --sampling-rate 0.05 --noise-multiplier "$sigma" --delta 1e-5 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rounds"])')
check "privacy: the calibrated noise spends at most the target over the steps, and those steps are what fits" \
  'python3 -c "import sys; e,r=float(sys.argv[1]),int(sys.argv[2]); sys.exit(0 if 1.9 < e <= 2.0 and r == 300 else 1)" "$eps" "$rounds"'

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
