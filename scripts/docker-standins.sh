#!/usr/bin/env bash
# Docker without a registry: starts dockerd when no daemon answers, then, for
# each base image the Dockerfile names (its *_IMAGE build arg defaults, or
# DEBIAN_IMAGE / RUST_IMAGE from the environment), makes sure the engine has
# an image of that exact name:
#   - an image that is there and is not a stand-in of ours is left as it is;
#   - one that is missing is pulled, if the engine can;
#   - only when it cannot is a local stand-in made (labelled
#     phantun-runtime.standin.trust, remade when its inputs change):
#     DEBIAN_IMAGE  debootstrap --variant=minbase bookworm, with Debian's sources
#     RUST_IMAGE    DEBIAN_IMAGE plus what the official rust:VERSION-slim image
#                   has: gcc, libc6-dev and rustup's minimal VERSION toolchain in
#                   /usr/local/{rustup,cargo}, installed by this machine's rustup
#                   binary run as rustup-init, as the official image does
# Stand-ins trust the extra CAs this machine trusts (its
# /usr/local/share/ca-certificates), as its own tools do. Fast after the
# first run.
set -euo pipefail
cd "$(dirname "$0")/.."
docker=/usr/bin/docker

if ! $docker info >/dev/null 2>&1; then
  setsid dockerd >/var/log/dockerd-phantun-runtime.log 2>&1 </dev/null &
  for _ in $(seq 60); do $docker info >/dev/null 2>&1 && break; sleep 0.5; done
  $docker info >/dev/null
fi

default() { sed -n "s/^ARG $1=//p" Dockerfile; }
label() { $docker image inspect -f '{{index .Config.Labels "phantun-runtime.standin.trust"}}' "$1" 2>/dev/null; }
# needed IMAGE: the engine has no image of this name that is not a stand-in,
# and cannot pull one; so a stand-in is wanted (made or kept).
needed() {
  if $docker image inspect "$1" >/dev/null 2>&1; then
    [ -n "$(label "$1")" ]
  else
    ! $docker pull -q "$1" >/dev/null 2>&1
  fi
}
cas=/usr/local/share/ca-certificates
trust=$(find "$cas" -name '*.crt' -type f | sort | xargs -r cat | sha256sum | cut -d' ' -f1)
debian=${DEBIAN_IMAGE:-$(default DEBIAN_IMAGE)}
rust=${RUST_IMAGE:-$(default RUST_IMAGE)}
rust_version=$(echo "${rust#*:}" | cut -d- -f1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if needed "$debian" && [ "$(label "$debian")" != "$trust" ]; then
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

rust_recipe=$(cat <<EOF
FROM $debian
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY rustup-init /tmp/
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/* \\
 && /tmp/rustup-init -y --no-modify-path --profile minimal --default-toolchain $rust_version \\
 && rm /tmp/rustup-init && chmod -R a+w /usr/local/rustup /usr/local/cargo
EOF
)
rust_label="$trust $(printf '%s' "$rust_recipe" | sha256sum | cut -c1-16)"
if needed "$rust" && [ "$(label "$rust")" != "$rust_label" ]; then
  rustup=$(command -v rustup) || { echo "docker-standins: rustup is required" >&2; exit 1; }
  mkdir "$work/rust"
  cp "$rustup" "$work/rust/rustup-init"
  printf '%s\nLABEL phantun-runtime.standin.trust="%s"\n' "$rust_recipe" "$rust_label" >"$work/rust/Dockerfile"
  DOCKER_BUILDKIT=1 $docker build -t "$rust" "$work/rust" >&2
fi
