#!/usr/bin/env bash
# Writes debian.lock: every Debian package the image build installs that shapes
# a byte of the image, at the version Debian's mirror has now, with its .deb's
# SHA-256. scripts/debian-fetch.sh, in the build, takes exactly these.
#   image-ARCH         the packages whose files the image holds (ARCH: amd64,
#                      arm64), resolved in the Dockerfile's DEBIAN_IMAGE
#   cross-amd64-arm64  the cross toolchain that links phantun for arm64 on an
#                      amd64 build machine (the release's), resolved in its
#                      RUST_IMAGE with everything apt would add
# Usage: scripts/debian-lock.sh   (Docker with the Dockerfile's base images;
# DEBIAN_IMAGE / RUST_IMAGE from the environment override them)
set -euo pipefail
cd "$(dirname "$0")/.."
docker=${DOCKER:-docker}
default() { sed -n "s/^ARG $1=//p" Dockerfile; }
debian=${DEBIAN_IMAGE:-$(default DEBIAN_IMAGE)}
rust=${RUST_IMAGE:-$(default RUST_IMAGE)}
image="libc6 libgcc-s1 gcc-12-base tini coreutils base-files"
cross="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
now=$(date -u +%s)

# image-ARCH lines: the candidate of each package, from apt-cache.
resolve_image() {
  $docker run --rm -i --network host -e PACKAGES="$image" "$debian" sh -es <<'EOF'
dpkg --add-architecture arm64
apt-get update -qq
for arch in amd64 arm64; do
  for package in $PACKAGES; do
    apt-cache show --no-all-versions "$package:$arch" |
      awk -v set="image-$arch" -v p="$package" '
        /^Version: / { v = $2 } /^Architecture: / { a = $2 } /^SHA256: / { s = $2 }
        END { print set, p, v, a, s }'
  done
done
EOF
}

# cross-amd64-arm64 lines: each package `apt-get install` would download
# (named by its URI's file name), with apt-cache's SHA-256 for that version.
resolve_cross() {
  $docker run --rm -i --network host -e PACKAGES="$cross" "$rust" sh -es <<'EOF'
apt-get update -qq
# shellcheck disable=SC2086 # one word per package
apt-get install -qq --no-install-recommends --print-uris $PACKAGES |
  sed -n "s/^'[^']*' \([^_ ]*\)_\([^_ ]*\)_\([^_. ]*\)\.deb .*/\1 \2 \3/p" |
  sed 's/%3a/:/' |
  while read -r package version arch; do
    apt-cache show "$package=$version" |
      awk -v p="$package" -v v="$version" -v a="$arch" '
        /^SHA256: / { print "cross-amd64-arm64", p, v, a, $2; exit }'
  done
EOF
}

{
  echo "# Debian packages of the image build, at exactly these versions"
  echo "# (scripts/debian-lock.sh wrote it; DESIGN.md §8, \"Reproducible\")."
  echo "# resolved $(date -u -d "@$now" +%Y-%m-%dT%H:%M:%SZ)"
  echo "# snapshot $(date -u -d "@$now" +%Y%m%dT%H%M%SZ)"
  echo "# set package version architecture sha256"
  resolve_image
  resolve_cross
} >debian.lock.part
awk '!/^#/ && NF != 5 { print "debian-lock: bad line: " $0 > "/dev/stderr"; bad = 1 } END { exit bad }' debian.lock.part
mv debian.lock.part debian.lock
echo "debian-lock: $(grep -vc '^#' debian.lock) packages in debian.lock" >&2
