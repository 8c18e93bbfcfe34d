#!/bin/sh
# Runs in the image build (the Dockerfile's assemble stage).
# Usage: rootfs-libs.sh SYSROOT ROOTFS BINARY...
# Copies into ROOTFS every shared library the BINARYs need, and the loader,
# taken from SYSROOT (the target architecture's Debian packages, unpacked):
# the DT_NEEDED entries, followed through the libraries themselves, resolved
# in SYSROOT's multiarch directories. readelf reads any architecture, so the
# same steps serve a native and a cross build; links are resolved inside
# SYSROOT (never on the build machine) and copied as files, at the path the
# loader looks them up.
set -eu
sysroot=$1 rootfs=$2
shift 2

fail() { echo "rootfs-libs: $*" >&2; exit 1; }

# The file a SYSROOT path finally names, its links resolved inside SYSROOT.
resolve() {
  path=$1 hops=0
  while [ -L "$sysroot$path" ]; do
    hops=$((hops + 1))
    [ "$hops" -le 40 ] || return 1
    link=$(readlink "$sysroot$path")
    case "$link" in
      /*) path=$link ;;
      *) path=$(dirname "$path")/$link ;;
    esac
  done
  [ -f "$sysroot$path" ] && [ ! -L "$sysroot$(dirname "$path")" ] || return 1
  printf '%s\n' "$path"
}

# copy PATH: SYSROOT's file PATH names becomes ROOTFS's PATH.
copy() {
  real=$(resolve "$1") || fail "$1 does not resolve to a file inside $sysroot"
  mkdir -p "$rootfs$(dirname "$1")"
  cp "$sysroot$real" "$rootfs$1"
}

queue="$*"
seen=" "
while [ -n "$queue" ]; do
  set -- $queue
  file=$1
  shift
  queue="$*"
  readelf -h "$file" >/dev/null 2>&1 || fail "$file is not an ELF file"
  interpreter=$(readelf -l "$file" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
  if [ -n "$interpreter" ] && [ ! -e "$rootfs$interpreter" ]; then
    copy "$interpreter"
    seen="$seen$(basename "$interpreter") " # libc needs it by that name
  fi
  for name in $(readelf -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
    case "$seen" in *" $name "*) continue ;; esac
    seen="$seen$name "
    found=
    for candidate in "$sysroot"/lib/"$name" "$sysroot"/lib/*-linux-gnu*/"$name" \
      "$sysroot"/usr/lib/"$name" "$sysroot"/usr/lib/*-linux-gnu*/"$name"; do
      if [ -e "$candidate" ] || [ -L "$candidate" ]; then
        found=${candidate#"$sysroot"}
        break
      fi
    done
    [ -n "$found" ] || fail "$name (needed by $file) not in $sysroot"
    copy "$found"
    queue="$queue $rootfs$found"
  done
done
