#!/usr/bin/env bash
# README command one: sets up a fresh Debian 12 machine, builds pocketllm and runs the demo: a local
# aggregation server (HTTPS, SQLite store) and a handful of simulated phones that fine-tune the real
# pretrained stories260K (a 260K-parameter Llama that has only read children's stories) on private
# movie-review text with zeroth-order rounds. Each phone uploads only scalars; then what changed.
#   scripts/demo.sh [--model PATH] [--devices N] [--rounds R] [--secagg]
# --secagg: secure aggregation (docs/secagg.md): the server learns only each round's sum of the scalars.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${POCKETLLM_SHARED:-$root/../shared}"
model="$shared/hub/karpathy/tinyllamas/stories260K"
devices=6; rounds=20; secagg=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --devices) devices="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --secagg) secagg=(--secagg --secagg-bound 0.05); shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
bin="${POCKETLLM_BUILD_DIR:-$root/build}/bin"
out="$root/out/demo"
rm -rf "$out"; mkdir -p "$out"
data="$shared/data/sst2/glue_sst2_dev.tsv"
if [ ! -e "$model" ] || [ ! -f "$data" ]; then
  echo "demo: needs $model and $data (set POCKETLLM_SHARED to the shared data folder, or --model)" >&2
  exit 1
fi
# Private text: 700 movie-review sentences split across the phones, 172 held out for evaluation.
sed -n '2,701p' "$data" | cut -f1 > "$out/private_train.txt"
sed -n '702,873p' "$data" | cut -f1 > "$out/private_heldout.txt"

echo; echo "== the aggregation server (TLS on loopback, SQLite store in $out/server.db)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$out/server.key" -out "$out/server.crt" >/dev/null 2>&1
head -c 24 /dev/urandom | base64 > "$out/admin_token"
"$bin/pocketllm-server" --listen 127.0.0.1:0 --port-file "$out/port" --tls-cert "$out/server.crt" --tls-key "$out/server.key" \
  --store "$out/server.db" --admin-token-file "$out/admin_token" --device-rate 0 2> "$out/server.log" &
server_pid=$!
trap 'kill -TERM $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$out/port" ] && break; sleep 0.05; done
[ -s "$out/port" ] || { cat "$out/server.log"; exit 1; }
url="https://127.0.0.1:$(cat "$out/port")"
echo "listening on $url"

echo; echo "== $devices phones, $rounds rounds: each round 8 local zeroth-order steps along the server's seeds"
"$bin/pocketllm-sim" --mode loopback --server "$url" --ca "$out/server.crt" --admin-token-file "$out/admin_token" \
  --model "$model" --data "$out/private_train.txt" --eval-data "$out/private_heldout.txt" --partition contiguous \
  --devices "$devices" --rounds "$rounds" --tau 8 --batch-size 8 --lora-rank 8 --lora-targets all-linear --lr 5e-4 \
  --max-length 64 --seed 0x5eed "${secagg[@]}" \
  --task-id demo --sample "The movie" --out "$out/sim" --save-shared "$out/shared.safetensors" | tee "$out/sim.txt"

echo; echo "== what changed"
python3 - "$out/sim/rounds.json" "${#secagg[@]}" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
secure = sys.argv[2] != "0"
rows = s["rounds"]
before, after = s["eval_loss_start"], rows[-1]["eval_loss"]
up = sum(r["bytes_up_per_device"] for r in rows)
down = sum(r["bytes_down_per_device"] for r in rows)
tau = s["task"]["tau"]
print(f"held-out loss {before:.4f} -> {after:.4f} ({100 * (before - after) / before:.1f}% lower) after {len(rows)} rounds")
print(f"per phone: {up / 1024:.1f} KiB sent and {down / 1024:.1f} KiB received over {len(rows)} rounds, TLS and HTTP included;")
if secure:
    print(f"  secure aggregation: each round a phone sends two public keys, sealed key shares for the other phones, its")
    print(f"  {tau} scalars and example count masked (fixed point), and unmasking shares: the server learns only the sum")
else:
    print(f"  the payload of each round is {tau} float32 scalars, an example count and a mean loss: no text, no weights")
print(f"shared update log: {rows[-1]['version']} (seed, scalar) entries = {rows[-1]['version'] * 12} bytes in binary form")
print(f"memory per simulated phone: {s['memory_per_device_bytes'] / 1024:.2f} KiB beside the one shared model")
PY
echo "the phones train LoRA adapters (rank 8 on every linear layer:$(sed -n 's/.*examples, \([0-9]*\) trainable parameters.*/ \1/p' "$out/sim.txt") parameters) over the frozen model;"
echo "samples above: temperature 0.8, top-p 0.9, repetition penalty 1.2 (bench/run_lm_quality.sh measures the choice)"
echo "plot of held-out loss vs round and vs bytes: $out/sim/plot.svg (data: $out/sim/rounds.csv)"
kill -TERM $server_pid; wait $server_pid 2>/dev/null || true; trap - EXIT
echo "server stopped cleanly; its log: $out/server.log"
