# Sourced by the test scripts that start a real pocketllm-server with --port-file port.
#   wait_for_port PID LOG
# waits until the server PID has written ./port, for up to 60 s: a server built with sanitizers on a
# loaded 2-core machine can take seconds to start, which the earlier fixed 5 s wait did not always give
# it. If the server exits first or the time runs out, prints LOG and ends the test with status 1.
wait_for_port() {
  local server_pid="$1" log="$2" polls=0
  while [ ! -s port ] && [ "$polls" -lt 1200 ] && kill -0 "$server_pid" 2>/dev/null; do
    sleep 0.05
    polls=$((polls + 1))
  done
  [ -s port ] && return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "FAIL the server did not write its port file within 60 s"
  else
    echo "FAIL the server exited before it wrote its port file"
  fi
  cat "$log"
  exit 1
}
