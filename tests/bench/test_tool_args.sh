#!/usr/bin/env bash
# Every script under scripts/ and bench/ answers --help with its header and does nothing else; the bench
# tools refuse a malformed or out-of-range number (exit 2, naming the option) instead of crashing on it.
#   test_tool_args.sh SOURCE_DIR BIN_DIR
source "$(dirname "$0")/../support/test_lib.sh"
src="$(realpath "$1")"; bin="$(realpath "$2")"

for s in "$src"/scripts/*.sh "$src"/bench/*.sh; do
  name="${s#"$src"/}"
  case "$name" in scripts/podman-env.sh | scripts/parallel-jobs.sh | bench/openblas_coretype.sh) continue ;; esac  # sourced, not run
  # Checked in the text first: a script without the handler would start its real work if run.
  # (a process substitution, not a pipe: under pipefail, grep -q leaving early made head's SIGPIPE a failure)
  if ! grep -q -- '-h|--help)' <(head -80 "$s"); then
    check "$name handles --help before doing anything" false
    continue
  fi
  out=$(timeout 10 "$s" --help 2>&1); rc=$?
  check "$name --help prints its header and exits 0" '[ $rc -eq 0 ] && [ -n "$out" ] && ! grep -q "^#" <<< "$out"'
done

for args in "--reps 0" "--reps x" "--batch -1" "--threads 0" "--seq" "--lora-rank 99999"; do
  # shellcheck disable=SC2086
  "$bin/bench_model" --preset stories260k $args > /dev/null 2> "$work/err"; rc=$?
  opt="${args%% *}"
  check "bench_model $args is a usage error naming $opt" '[ $rc -eq 2 ] && grep -q -- "^$opt must be" "$work/err"'
done
for args in "--reps 0" "--cols 100" "--rows x"; do
  # shellcheck disable=SC2086
  "$bin/bench_quant_dot" $args > /dev/null 2> "$work/err"; rc=$?
  opt="${args%% *}"
  check "bench_quant_dot $args is a usage error naming $opt" '[ $rc -eq 2 ] && grep -q -- "^$opt must be" "$work/err"'
done
"$bin/bench_perturbation" --reps -3 > /dev/null 2> "$work/err"; rc=$?
check "bench_perturbation --reps -3 is a usage error" '[ $rc -eq 2 ] && grep -q -- "^--reps must be" "$work/err"'
finish
