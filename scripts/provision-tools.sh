#!/usr/bin/env bash
# The extra engines and tools the image tests use, installed only when absent:
#   docker buildx and docker compose v2 as CLI plugins (~/.docker/cli-plugins),
#     built once from the Go module proxy and kept in the cache outside git
#   QEMU user emulation for arm64 (binfmt_misc registered by hand: no systemd)
#   podman, with a containers.conf for these machines (see below)
#   kubernetes-validate in a venv in the cache (offline Kubernetes schemas)
# The image tests find them where this puts them: the plugins in
# ~/.docker/cli-plugins, $cache/containers.conf, $cache/venv/bin. Progress
# goes to stderr. Fast after the first run.
set -euo pipefail
cache="${PHANTUN_CACHE:-$HOME/.cache/phantun-runtime}"
plugins="$HOME/.docker/cli-plugins"
buildx=v0.38.2 compose=v2.40.3 kubernetes_validate=1.37.0
mkdir -p "$cache" "$plugins"
log() { echo "provision-tools: $*" >&2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

missing=()
for pkg in qemu-user-static binfmt-support podman catatonit; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg")
done
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

go() {
  local bin
  bin=$(type -P go || echo /usr/local/go/bin/go)
  [ -x "$bin" ] || { log "go is required (not on PATH nor at /usr/local/go/bin/go)"; exit 1; }
  "$bin" "$@"
}
# plugin NAME VERSION: puts the cached build of docker-NAME in the plugin directory.
plugin() {
  cmp -s "$cache/docker-$1-$2" "$plugins/docker-$1" || install -m 0755 "$cache/docker-$1-$2" "$plugins/docker-$1"
}

if [ ! -x "$cache/docker-buildx-$buildx" ]; then
  log "building docker buildx $buildx (~2 min)"
  GOBIN="$work/bin" GOFLAGS=-mod=mod go install -trimpath \
    -ldflags "-s -w -X github.com/docker/buildx/version.Version=$buildx" \
    "github.com/docker/buildx/cmd/buildx@$buildx" >&2
  mv "$work/bin/buildx" "$cache/docker-buildx-$buildx"
fi
plugin buildx "$buildx"

if [ ! -x "$cache/docker-compose-$compose" ]; then
  # go install refuses compose (exclude directives in its go.mod): build the module's copy.
  log "building docker compose $compose (~2 min)"
  dir=$(go mod download -json "github.com/docker/compose/v2@$compose" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  cp -r "$dir" "$work/compose"
  chmod -R u+w "$work/compose"
  (cd "$work/compose" && GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$compose" \
    -o "$work/docker-compose" ./cmd >&2)
  mv "$work/docker-compose" "$cache/docker-compose-$compose"
fi
plugin compose "$compose"

# PID 1 is not systemd: mount binfmt_misc and register qemu-aarch64 by hand.
# Flag F (fix binary) makes the emulator work inside containers too.
binfmt=/proc/sys/fs/binfmt_misc
aarch64_ok() { grep -qx enabled "$binfmt/qemu-aarch64" 2>/dev/null && grep -q '^flags: .*F' "$binfmt/qemu-aarch64"; }
if ! aarch64_ok; then
  [ -e "$binfmt/status" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
  update-binfmts --enable qemu-aarch64 >&2
  aarch64_ok || { log "qemu-aarch64 is not enabled with flag F in $binfmt"; exit 1; }
fi

# For rootful podman (pass it as CONTAINERS_CONF): the sandbox lacks
# CAP_SYS_RESOURCE, so podman's default rlimits fail ("error setting rlimit
# type 7"); lower fixed ones work. Without systemd podman already picks
# cgroupfs and a file events log; they are pinned so they cannot depend on
# that detection. overlay storage works as it is.
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cmp -s "$work/containers.conf" "$cache/containers.conf" || cp "$work/containers.conf" "$cache/containers.conf"

venv="$cache/venv"
if ! "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("kubernetes-validate") != sys.argv[1])' \
  "$kubernetes_validate" 2>/dev/null; then
  log "installing kubernetes-validate $kubernetes_validate"
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install -q "kubernetes-validate==$kubernetes_validate" >&2
fi
