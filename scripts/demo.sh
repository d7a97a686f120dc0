#!/usr/bin/env bash
# README command one: sets up a fresh Debian 12 machine, builds pocketllm and runs the demo.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${POCKETLLM_SHARED:-$root/../shared}"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin"
out="$root/out/demo"
mkdir -p "$out"

echo
echo "== 1. The perturbation direction z, regenerated from a seed (docs/perturbation.md golden vectors)"
"$bin/pocketllm" perturb --seed 0x0123456789abcdef --tensor model.layers.0.self_attn.q_proj.weight --count 8 | paste -sd' '
"$bin/pocketllm" perturb --seed 0x0123456789abcdef --tensor model.layers.0.self_attn.q_proj.weight --count 4 --dist gaussian | paste -sd' '

model="$shared/fixtures/fake_gpt2_random/model.safetensors"
if [ ! -f "$model" ]; then
  echo "demo: $model not found (set POCKETLLM_SHARED to the shared data directory)" >&2
  exit 1
fi
echo
echo "== 2. A run is its seed log: 200 (seed, coeff) entries, 12 bytes each in binary form"
python3 - "$out/run.json" <<'PY'
import json, random, struct, sys
rng = random.Random(2026)
entries = [{"seed": "%016x" % rng.getrandbits(64),
            "coeff": struct.unpack("<f", struct.pack("<f", rng.gauss(0, 1e-3)))[0]} for _ in range(200)]
json.dump({"format": "pocketllm.update_log", "version": 1, "entries": entries}, open(sys.argv[1], "w"))
PY
echo "wrote $out/run.json ($(stat -c %s "$out/run.json") bytes of JSON)"

echo
echo "== 3. Two devices replay the log onto the same Hugging Face checkpoint"
"$bin/pocketllm" replay --base "$model" --log "$out/run.json" --out "$out/device_a.safetensors" --threads 1
"$bin/pocketllm" replay --base "$model" --log "$out/run.json" --out "$out/device_b.safetensors" --threads 2
a=$(sha256sum "$out/device_a.safetensors" | cut -d' ' -f1)
b=$(sha256sum "$out/device_b.safetensors" | cut -d' ' -f1)
base=$(sha256sum "$model" | cut -d' ' -f1)
echo "base     sha256 $base"
echo "device A sha256 $a"
echo "device B sha256 $b"
if [ "$a" = "$b" ] && [ "$a" != "$base" ]; then
  echo "demo: both devices reached identical weights from (base, log) alone"
else
  echo "demo: FAILED — replays differ" >&2
  exit 1
fi
