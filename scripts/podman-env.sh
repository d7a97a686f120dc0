# Sourced by scripts/docker-check.sh and scripts/docker-cluster-check.sh: the podman settings this kind
# of VM needs (docs: ../shared/notes/toolchain.md §3) — runc with lowered ulimits (no CAP_SYS_RESOURCE,
# cgroups in hybrid mode) — written to WORK/containers.conf and exported as CONTAINERS_CONF.
#   podman_env WORK
podman_env() {
  cat > "$1/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF="$1/containers.conf"
}
