#!/bin/sh
# Runs in the image build (the Dockerfile's assemble stage).
# Usage: rootfs-libs.sh SYSROOT ROOTFS BINARY...
# Copies into ROOTFS every shared library the BINARYs need, and the loader,
# taken from SYSROOT (the target architecture's Debian packages, unpacked):
# the DT_NEEDED entries, followed through the libraries themselves, resolved
# in SYSROOT's multiarch directories. readelf reads any architecture, so the
# same steps serve a native and a cross build; links are resolved inside
# SYSROOT and copied as files, at the path the loader looks them up.
set -eu
sysroot=$1 rootfs=$2
shift 2

# The file a SYSROOT path finally names, its links resolved inside SYSROOT.
resolve() {
  path=$1
  while [ -L "$sysroot$path" ]; do
    link=$(readlink "$sysroot$path")
    case "$link" in
      /*) path=$link ;;
      *) path=$(dirname "$path")/$link ;;
    esac
  done
  [ -f "$sysroot$path" ] || { echo "rootfs-libs: $path not in $sysroot" >&2; exit 1; }
  printf '%s\n' "$path"
}

# copy PATH: SYSROOT's file PATH names becomes ROOTFS's PATH.
copy() {
  mkdir -p "$rootfs$(dirname "$1")"
  cp "$sysroot$(resolve "$1")" "$rootfs$1"
}

queue="$*"
done=" "
while [ -n "$queue" ]; do
  set -- $queue
  file=$1
  shift
  queue="$*"
  interpreter=$(readelf -l "$file" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
  if [ -n "$interpreter" ] && [ ! -e "$rootfs$interpreter" ]; then
    copy "$interpreter"
    done="$done$(basename "$interpreter") " # libc needs it by that name
  fi
  for name in $(readelf -d "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
    case "$done" in *" $name "*) continue ;; esac
    done="$done$name "
    found=
    for candidate in "$sysroot"/lib/"$name" "$sysroot"/lib/*-linux-gnu*/"$name" \
      "$sysroot"/usr/lib/"$name" "$sysroot"/usr/lib/*-linux-gnu*/"$name"; do
      [ -e "$candidate" ] && { found=${candidate#"$sysroot"}; break; }
    done
    [ -n "$found" ] || { echo "rootfs-libs: $name (needed by $file) not in $sysroot" >&2; exit 1; }
    copy "$found"
    queue="$queue $rootfs$found"
  done
done
