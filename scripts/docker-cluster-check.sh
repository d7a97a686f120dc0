#!/usr/bin/env bash
# The compose file's cluster profile under podman-compose: PostgreSQL 15, three replicas and HAProxy,
# each built from docker/ on the local Debian base that scripts/docker-check.sh makes (run it first; it
# calls this script at its end). Checked through the balancer: health, a task, three devices submitting,
# a round applied; then the leading replica is killed and the next round is applied by another one; the
# log is the same from every replica. Needs podman-compose and the CNI dnsname plugin (installed here).
#   scripts/docker-cluster-check.sh
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
missing=()
for p in podman-compose golang-github-containernetworking-plugin-dnsname; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
work="$(mktemp -d)"
source "$root/scripts/podman-env.sh"
podman_env "$work"
project="pllmcheck$$"
# podman-compose 1.0.3 (Debian 12) leaves the project's network and the replicas' anonymous volumes
# (the image's VOLUME) behind on `down -v`: each run would leak a /24 of the CNI range and three volumes.
# The containers go first with their volumes, then compose's named ones, then the network.
cleanup() {
  local ids
  ids=$(podman ps -aq --filter "name=^${project}_" 2>/dev/null || true)
  [ -z "$ids" ] || podman rm -f -v $ids > /dev/null 2>&1 || true
  (cd "$work" && podman-compose -p "$project" -f compose.yaml down -v > /dev/null 2>&1) || true
  podman network rm -f "${project}_default" > /dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # a stopped check still cleans up (the EXIT trap runs)
base="localhost/debian:bookworm-local"
podman image exists "$base" && podman image exists localhost/pocketllm-server ||
  { echo "docker-cluster-check: run scripts/docker-check.sh first (it makes the base and server images)" >&2; exit 1; }
echo "== podman build (docker/Dockerfile.postgres, docker/Dockerfile.haproxy)"
podman build -q --format docker --build-arg BASE_IMAGE="$base" -f "$root/docker/Dockerfile.postgres" -t localhost/pocketllm-postgres "$root" > /dev/null
podman build -q --format docker --build-arg BASE_IMAGE="$base" -f "$root/docker/Dockerfile.haproxy" -t localhost/pocketllm-haproxy "$root" > /dev/null
cp "$root/docker/compose.yaml" "$work/"
"$root/scripts/make-secrets.sh" "$work/secrets" > /dev/null
chmod 644 "$work/secrets/pg.env"  # read by podman-compose as this user
chmod 755 "$work" "$work/secrets"
cd "$work"
echo "== podman-compose up: postgres, replica1..3, lb (the cluster profile)"
podman-compose -p "$project" -f compose.yaml up -d postgres replica1 replica2 replica3 lb > up.log 2>&1 || { cat up.log; exit 1; }
url="https://127.0.0.1:8444"
c() { curl -sS --cacert secrets/tls_cert "$@"; }
A=(-H "Authorization: Bearer $(cat secrets/admin_token)")
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
up() { for _ in $(seq 120); do c -f "$url/healthz" > /dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
check "the balancer answers /healthz through a replica" up
model=$(printf 'c%.0s' $(seq 64))
created() { for _ in $(seq 60); do [ "$(c -o /dev/null -w "%{http_code}" "${A[@]}" -X POST "$url/v1/admin/tasks" \
  -d "{\"id\":\"cluster\",\"base_model_id\":\"$model\",\"tau\":2,\"min_submissions\":3,\"round_seconds\":3600}")" = 201 ] && return 0; sleep 0.5; done; return 1; }
check "a task is created through the balancer (the replicas share PostgreSQL)" created
token=$(c "${A[@]}" -X POST -d '{"uses":3}' "$url/v1/admin/enrolment-tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
creds=(); for _ in 1 2 3; do creds+=("$(c -X POST -d "{\"token\":\"$token\"}" "$url/v1/enrol" | python3 -c 'import json,sys; print(json.load(sys.stdin)["credential"])')"); done
round() {  # round N BASE: three devices submit (each through whichever replica the balancer picks), then close
  local ok=0
  for cr in "${creds[@]}"; do
    for _ in $(seq 20); do
      s=$(c -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $cr" -X POST -d "{\"coeffs\":[0.5,0.25],\"examples\":1,\"base_version\":$2}" \
        "$url/v1/tasks/cluster/rounds/$1/submissions")
      [ "$s" = 201 ] || [ "$s" = 200 ] && { ok=$((ok + 1)); break; }
      sleep 0.3
    done
  done
  [ $ok = 3 ] || return 1
  c "${A[@]}" -X POST "$url/v1/admin/tasks/cluster/rounds/$1/close" > /dev/null
  for _ in $(seq 60); do
    [ "$(c "${A[@]}" "$url/v1/admin/tasks/cluster/rounds/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = applied ] && return 0
    sleep 0.25
  done
  return 1
}
check "round 1: three devices submit and the round is applied" 'round 1 0'
leader=""
for i in 1 2 3; do podman logs "${project}_replica${i}_1" 2>&1 | grep -E "leading:|following:" | tail -1 | grep -q leading && leader=$i; done
check "one replica leads" '[ -n "$leader" ]'
podman kill "${project}_replica${leader}_1" > /dev/null
check "after kill of the leader (replica $leader), round 2 is applied by another replica" 'round 2 2'
logs=$(for _ in $(seq 6); do c "${A[@]}" "$url/v1/tasks/cluster/log?since=0" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; done | sort -u)
check "every replica serves the same log (version 4)" '[ "$logs" = 4 ]'
echo "$fails failed"
[ $fails -eq 0 ]
