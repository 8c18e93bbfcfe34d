#!/bin/sh
# Runs in the image build. Debian packages at exactly the versions debian.lock
# names, each refused unless its .deb has the lock's SHA-256:
#   debian-fetch.sh sources            point apt at the snapshot archive when
#                                      $DEBIAN_SNAPSHOT is set (a time such as
#                                      20261203T000000Z), then apt-get update
#   debian-fetch.sh download SET DIR   download SET's packages into DIR
#   debian-fetch.sh install SET        install SET's packages
# SET is a lock set (image-amd64, image-arm64, cross-arm64, ...). A version the
# mirror no longer has stops the build with the way out: the snapshot archive
# of the lock's date, or a new lock (scripts/debian-lock.sh).
set -eu
lock=/usr/local/share/debian.lock

fail() { echo "debian-fetch: $*" >&2; exit 1; }
# The lock's lines of set $1: "package version architecture sha256".
entries() {
  awk -v set="$1" '$1 == set { print $2, $3, $4, $5 }' "$lock"
}
# apt's words for set $1: package:arch=version (package=version for arch all).
wanted() {
  entries "$1" | awk '{ print $1 ($3 == "all" ? "" : ":" $3) "=" $2 }'
}
# The file name apt gives a package: an epoch's colon is %3a.
debname() { printf '%s_%s_%s.deb' "$1" "$(printf '%s' "$2" | sed 's/:/%3a/')" "$3"; }
# Checks every package of set $1 in directory $2 against the lock; with $3,
# one already installed at the locked version needs no file.
check() {
  entries "$1" | while read -r package version arch sum; do
    file="$2/$(debname "$package" "$version" "$arch")"
    if [ -n "${3:-}" ] && [ ! -f "$file" ] &&
      [ "$(dpkg-query -W -f='${Version}' "$package:$arch" 2>/dev/null)" = "$version" ]; then
      continue
    fi
    [ -f "$file" ] || fail "$package $version ($arch) was not downloaded"
    actual=$(sha256sum "$file" | cut -d' ' -f1)
    [ "$actual" = "$sum" ] ||
      fail "SHA-256 mismatch for $package $version ($arch): debian.lock has $sum, the mirror gave $actual"
  done
}
# apt-get $@, or the way out when a locked version is gone from the mirror.
apt_locked() {
  if ! apt-get "$@" 2>/tmp/apt.err; then
    cat /tmp/apt.err >&2
    if grep -q "was not found" /tmp/apt.err; then
      fail "a version debian.lock names is no longer on the mirror (lock of $(sed -n 's/^# resolved //p' "$lock")): build from Debian's snapshot archive of that date with --build-arg DEBIAN_SNAPSHOT=$(sed -n 's/^# snapshot //p' "$lock"), or refresh the lock (scripts/debian-lock.sh; DESIGN.md §8)"
    fi
    exit 1
  fi
}

case "$1" in
  sources)
    if [ -n "${DEBIAN_SNAPSHOT:-}" ]; then
      printf 'Types: deb\nURIs: http://snapshot.debian.org/archive/debian/%s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\nCheck-Valid-Until: no\n\nTypes: deb\nURIs: http://snapshot.debian.org/archive/debian-security/%s\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\nCheck-Valid-Until: no\n' \
        "$DEBIAN_SNAPSHOT" "$DEBIAN_SNAPSHOT" >/etc/apt/sources.list.d/debian.sources
      rm -f /etc/apt/sources.list
    fi
    apt-get update -qq
    ;;
  download)
    mkdir -p "$3"
    [ -n "$(entries "$2")" ] || fail "debian.lock has no set $2"
    # shellcheck disable=SC2046 # one word per package
    (cd "$3" && apt_locked download -qq $(wanted "$2"))
    check "$2" "$3"
    ;;
  install)
    [ -n "$(entries "$2")" ] ||
      fail "debian.lock has no set $2 (its cross toolchain is for an amd64 build machine: build there)"
    archives=/var/cache/apt/archives
    # shellcheck disable=SC2046 # one word per package
    apt_locked install -qq -y --no-install-recommends --download-only $(wanted "$2")
    check "$2" "$archives" installed
    # shellcheck disable=SC2046 # one word per package
    apt_locked install -qq -y --no-install-recommends $(wanted "$2")
    ;;
  *) fail "usage: debian-fetch.sh sources | download SET DIR | install SET" ;;
esac
