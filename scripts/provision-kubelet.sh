#!/usr/bin/env bash
# The Kubernetes node the kubelet tests run (tests/image/kubelet_test.ts),
# installed only when absent:
#   the kubelet of Kubernetes $kubernetes, built once from the Go module proxy
#     into the cache as kubelet-VERSION (the module k8s.io/kubernetes has no
#     staging/ directory: its ./staging replaces become the published k8s.io/*
#     modules of the same release, v0.MINOR.PATCH)
#   Debian's containerd and runc (the container runtime the kubelet drives)
#   the pods' sandbox image as pause-VERSION.tar in the cache: a static
#     program that holds the pod's namespaces and exits at SIGTERM, in the
#     image archive format `ctr images import` reads, named $pause_image
# Progress goes to stderr. Fast after the first run.
set -euo pipefail
cache="${PHANTUN_CACHE:-$HOME/.cache/phantun-runtime}"
kubernetes=v1.35.4
pause_version=1
pause_image=localhost/phantun-runtime-pause:$pause_version
mkdir -p "$cache"
log() { echo "provision-kubelet: $*" >&2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

missing=()
for pkg in containerd runc gcc libc6-dev; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  # provision-tools.sh may be installing packages at the same time.
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >&2
fi

kubelet="$cache/kubelet-$kubernetes"
if [ ! -x "$kubelet" ]; then
  log "building the kubelet $kubernetes"
  go=$(type -P go || echo /usr/local/go/bin/go)
  [ -x "$go" ] || { log "go is required (not on PATH nor at /usr/local/go/bin/go)"; exit 1; }
  export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
  dir=$("$go" mod download -json "k8s.io/kubernetes@$kubernetes" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  src="$work/kubernetes"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  rm -rf "$src/vendor" "$src/go.work" "$src/go.work.sum"
  release=${kubernetes#v1.} # MINOR.PATCH
  replaces=()
  for module in $(sed -n 's|^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*|\1|p' "$src/go.mod"); do
    replaces+=("-replace=$module=$module@v0.$release")
  done
  [ ${#replaces[@]} -gt 0 ] || { log "no ./staging replaces in k8s.io/kubernetes@$kubernetes's go.mod"; exit 1; }
  (cd "$src" && "$go" mod edit "${replaces[@]}")
  # Without the version the kubelet reports a placeholder (v0.0.0-master).
  version=k8s.io/component-base/version
  (cd "$src" && "$go" build -trimpath -o "$kubelet.part" -ldflags "-s -w
    -X $version.gitVersion=$kubernetes -X $version.gitMajor=1
    -X $version.gitMinor=${release%%.*} -X $version.gitTreeState=clean" ./cmd/kubelet)
  mv "$kubelet.part" "$kubelet"
fi

archive="$cache/pause-$pause_version.tar"
if [ ! -f "$archive" ]; then
  log "building the sandbox image $pause_image"
  mkdir "$work/rootfs" "$work/image"
  cat >"$work/pause.c" <<'EOF'
/* A pod's sandbox: holds its namespaces, reaps orphans, exits at SIGTERM/SIGINT. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGTERM, stop);
  signal(SIGINT, stop);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
EOF
  gcc -static -O2 -o "$work/rootfs/pause" "$work/pause.c"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/rootfs" -cf "$work/image/layer.tar" pause
  diff_id=$(sha256sum "$work/image/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$(dpkg --print-architecture)" "$diff_id" >"$work/image/config.json"
  printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$pause_image" >"$work/image/manifest.json"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/image" -cf "$archive.part" manifest.json config.json layer.tar
  mv "$archive.part" "$archive"
fi
