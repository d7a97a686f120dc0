#!/usr/bin/env bash
# Builds the server image with podman (no Docker engine needed; docker format, which keeps HEALTHCHECK) from a local Debian base made by
# debootstrap, runs it, and checks: the HEALTHCHECK, an HTTPS round trip (task, enrolment, round,
# submission), and that the store survives a container restart; then the compose cluster profile
# (scripts/docker-cluster-check.sh). Needs root (or sudo) for apt and debootstrap, and network access to
# the Debian mirror. The test command (scripts/test.sh) runs it.
#   scripts/docker-check.sh
set -euo pipefail
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ "$(id -u)" -eq 0 ]; then sudo_cmd=(); else sudo_cmd=(sudo); fi
missing=()
for p in podman runc debootstrap curl openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
work="$(mktemp -d)"
source "$root/scripts/podman-env.sh"
podman_env "$work"
name="pocketllm-check-$$"
cleanup() { podman rm -f -v "$name" >/dev/null 2>&1 || true; podman volume rm -f "$name-store" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 143' TERM INT  # a stopped check still cleans up (the EXIT trap runs)

base="localhost/debian:bookworm-local"
if ! podman image exists "$base"; then
  echo "== local base image (debootstrap --variant=minbase bookworm)"
  "${sudo_cmd[@]}" debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian > "$work/debootstrap.log"
  "${sudo_cmd[@]}" tar -C "$work/rootfs" -c . | podman import - "$base" > /dev/null
  "${sudo_cmd[@]}" rm -rf "$work/rootfs"
fi

echo "== podman build (docker/Dockerfile, BASE_IMAGE=$base)"
t0=$(date +%s)
podman build -q --format docker --build-arg BASE_IMAGE="$base" -f "$root/docker/Dockerfile" -t localhost/pocketllm-server "$root" > /dev/null
# Every source change leaves the previous build's layers behind (about 1 GB a run, untagged): those of
# this Dockerfile older than a day go; recent ones stay, so a re-run of the same source hits the cache.
podman image prune -f --filter label=dev.pocketllm.image --filter until=24h > /dev/null 2>&1 || true
echo "built in $(( $(date +%s) - t0 )) s; image $(podman image inspect localhost/pocketllm-server --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"

"$root/scripts/make-secrets.sh" "$work/secrets" > /dev/null
chmod 755 "$work" "$work/secrets"
podman volume create "$name-store" > /dev/null
port=$(( 20000 + RANDOM % 20000 ))
run() {
  podman run -d --name "$name" -p 127.0.0.1:$port:8443 -v "$name-store:/var/lib/pocketllm" \
    -v "$work/secrets:/run/secrets:ro" localhost/pocketllm-server > /dev/null
}
wait_healthy() {
  for _ in $(seq 60); do
    if podman healthcheck run "$name" > /dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  podman logs "$name"; return 1
}
fails=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
run
check "the container becomes healthy (HEALTHCHECK on /healthz)" wait_healthy
check "it runs as a non-root user" '[ "$(podman exec "$name" id -u)" != 0 ]'
url="https://127.0.0.1:$port"
c() { curl -sS --cacert "$work/secrets/tls_cert" "$@"; }
A=(-H "Authorization: Bearer $(cat "$work/secrets/admin_token")")
model=$(printf 'f%.0s' $(seq 64))
check "HTTPS from the host: admin creates a task" '[ "$(c -o /dev/null -w "%{http_code}" "${A[@]}" -X POST -d "{\"id\":\"docker\",\"base_model_id\":\"$model\",\"tau\":2,\"min_submissions\":1}" "$url/v1/admin/tasks")" = 201 ]'
token=$(c "${A[@]}" -X POST -d '{"uses":1}' "$url/v1/admin/enrolment-tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
cred=$(c -X POST -d "{\"token\":\"$token\"}" "$url/v1/enrol" | python3 -c 'import json,sys; print(json.load(sys.stdin)["credential"])')
check "a device submits to round 1" '[ "$(c -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $cred" -X POST -d "{\"coeffs\":[0.5,0.25],\"examples\":1,\"base_version\":0}" "$url/v1/tasks/docker/rounds/1/submissions")" = 201 ]'
podman stop -t 10 "$name" > /dev/null
check "SIGTERM stops the server cleanly" 'podman logs "$name" 2>&1 | grep -q "stopped"'
podman rm "$name" > /dev/null  # the named store volume stays: the next container must find the task
run
check "a new container on the same volume is healthy" wait_healthy
check "the task survived the restart" '[ "$(c -H "Authorization: Bearer $cred" "$url/v1/tasks/docker" | python3 -c "import json,sys; print(json.load(sys.stdin)[\"id\"])")" = docker ]'
check "the acknowledged submission survived the restart" '[ "$(c "${A[@]}" "$url/v1/admin/tasks/docker/rounds/1" | python3 -c "import json,sys; print(len(json.load(sys.stdin)[\"submission_list\"]))")" = 1 ]'
echo "$fails failed"
[ $fails -eq 0 ]
# The compose file's cluster profile (PostgreSQL, three replicas, HAProxy) on the images just built.
"$root/scripts/docker-cluster-check.sh"
