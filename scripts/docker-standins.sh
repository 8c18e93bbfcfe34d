#!/usr/bin/env bash
# Docker without a registry: starts dockerd when no daemon answers, then makes
# a local stand-in for each base image the Dockerfile names (its *_IMAGE build
# arg defaults), tagged with that exact name, unless the image already exists:
#   DEBIAN_IMAGE  debootstrap --variant=minbase bookworm, with Debian's sources
#   RUST_IMAGE    DEBIAN_IMAGE plus Debian's rustc-web and cargo-web
#   DENO_IMAGE    only /deno, the binary of npm's deno package
# The first two trust the extra CAs this machine trusts (its
# /usr/local/share/ca-certificates), as its own tools do, and are made anew
# when those change. Other existing images are kept: fast after the first run.
set -euo pipefail
cd "$(dirname "$0")/.."
docker=/usr/bin/docker

if ! $docker info >/dev/null 2>&1; then
  setsid dockerd >/var/log/dockerd-phantun-runtime.log 2>&1 </dev/null &
  for _ in $(seq 60); do $docker info >/dev/null 2>&1 && break; sleep 0.5; done
  $docker info >/dev/null
fi

default() { sed -n "s/^ARG $1=//p" Dockerfile; }
exists() { $docker image inspect "$1" >/dev/null 2>&1; }
cas=/usr/local/share/ca-certificates
trust=$(find "$cas" -name '*.crt' -type f | sort | xargs -r cat | sha256sum | cut -d' ' -f1)
trusting() {
  [ "$($docker image inspect -f '{{index .Config.Labels "phantun-runtime.standin.trust"}}' "$1" 2>/dev/null)" = "$trust" ]
}
debian=$(default DEBIAN_IMAGE)
rust=$(default RUST_IMAGE)
deno=$(default DENO_IMAGE)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! trusting "$debian"; then
  debootstrap --variant=minbase bookworm "$work/root" http://deb.debian.org/debian >&2
  rm -f "$work/root/etc/apt/sources.list"
  cat >"$work/root/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
  mkdir -p "$work/root$cas"
  find "$cas" -name '*.crt' -type f -exec cp -t "$work/root$cas" {} +
  tar -C "$work/root" -c . |
    $docker import -c 'CMD ["bash"]' -c "LABEL phantun-runtime.standin.trust=$trust" - "$debian" >&2
fi

if ! trusting "$rust"; then
  printf '%s\n' "FROM $debian" \
    'RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates cargo-web rustc-web && rm -rf /var/lib/apt/lists/*' |
    DOCKER_BUILDKIT=1 $docker build -t "$rust" - >&2
fi

if ! exists "$deno"; then
  npm install --prefix "$work/npm" --no-save --no-audit --no-fund "deno@${deno##*:bin-}" >&2
  tar -C "$work/npm/node_modules/deno" -c deno | $docker import - "$deno" >&2
fi
