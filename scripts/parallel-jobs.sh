# Sourced by the check scripts: runs independent single-threaded checks (programs under qemu, fuzz
# harnesses, TSan test programs) as many at a time as there are cores, each into its own log, and prints
# each one's summary in the order they were queued once all have ended. A failed job shows the end of
# its log and makes jobs_wait return 1 (the others still run to their end: nothing is left orphaned).
#   source scripts/parallel-jobs.sh
#   jobs_init DIR                    logs go to DIR/NAME.log
#   jobs_add NAME LINES CMD [ARG…]   queue CMD; on success print its last LINES lines (0: only "ok NAME")
#   jobs_wait                        run the queue; 0 when every job passed

jobs_init() {
  _jobs_dir="$1"
  _jobs_names=() _jobs_lines=() _jobs_cmds=()
  mkdir -p "$_jobs_dir"
}

jobs_add() {
  local name="$1" lines="$2"; shift 2
  local quoted
  printf -v quoted '%q ' "$@"
  _jobs_names+=("$name") _jobs_lines+=("$lines") _jobs_cmds+=("$quoted")
}

jobs_wait() {
  local width="${JOBS_PARALLEL:-$(nproc)}" i failed=0
  local -A slot_of=()
  local -a status=() took=()
  _jobs_reap() {  # waits for one running job and keeps its exit status and wall time
    local done_pid rc=0
    wait -n -p done_pid "${!slot_of[@]}" || rc=$?
    status[${slot_of[$done_pid]}]=$rc
    took[${slot_of[$done_pid]}]=$(( SECONDS - took[${slot_of[$done_pid]}] ))
    unset "slot_of[$done_pid]"
  }
  for i in "${!_jobs_names[@]}"; do
    while [ "${#slot_of[@]}" -ge "$width" ]; do _jobs_reap; done
    took[$i]=$SECONDS
    (eval "${_jobs_cmds[$i]}") > "$_jobs_dir/${_jobs_names[$i]}.log" 2>&1 &
    slot_of[$!]=$i
  done
  while [ "${#slot_of[@]}" -gt 0 ]; do _jobs_reap; done
  for i in "${!_jobs_names[@]}"; do
    local log="$_jobs_dir/${_jobs_names[$i]}.log"
    if [ "${status[$i]}" -ne 0 ]; then
      tail -n 60 "$log"
      echo "FAIL ${_jobs_names[$i]} (exit ${status[$i]} after ${took[$i]} s; log: $log)"
      failed=1
    elif [ "${_jobs_lines[$i]}" -gt 0 ]; then
      echo "ok   ${_jobs_names[$i]} (${took[$i]} s):"
      tail -n "${_jobs_lines[$i]}" "$log"
    else
      echo "ok   ${_jobs_names[$i]} (${took[$i]} s)"
    fi
  done
  return $failed
}
