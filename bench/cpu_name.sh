#!/usr/bin/env bash
# The CPU a bench row was measured on, as every results file records it: lscpu's model name plus the x86
# family and model (a VM's "AMD EPYC" alone does not tell Zen 3, 4 and 5 apart), e.g.
#   AMD EPYC (family 25 model 17)
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
name="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"
family="$(lscpu | sed -n 's/^CPU family: *//p' | head -1)"
model="$(lscpu | sed -n 's/^Model: *//p' | head -1)"
if [ -n "$family" ] && [ -n "$model" ]; then echo "$name (family $family model $model)"; else echo "$name"; fi
