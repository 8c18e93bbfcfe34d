#!/bin/sh
# Runs in the image build (the Dockerfile's assemble stage).
# Usage: rootfs-libs.sh SYSROOT ROOTFS BINARY...
# Copies into ROOTFS every shared library the BINARYs need, and the loader,
# taken from SYSROOT (the target architecture's Debian packages, unpacked):
# the DT_NEEDED entries, followed through the libraries themselves, resolved
# in SYSROOT's multiarch directories. readelf reads any architecture, so the
# same steps serve a native and a cross build; links are kept as links, at the
# path the loader looks them up, beside the files they name.
set -eu
sysroot=$1 rootfs=$2
shift 2

fail() { echo "rootfs-libs: $*" >&2; exit 1; }

# copy PATH: SYSROOT's PATH becomes ROOTFS's PATH. Links stay links, each hop
# resolved inside SYSROOT (never on the build machine), so that every file of
# the image sits where its package puts it (dpkg-status.sh matches them).
copy() {
  path=$1 hops=0
  while [ -L "$sysroot$path" ]; do
    hops=$((hops + 1))
    [ "$hops" -le 40 ] || fail "$1: more than 40 links"
    link=$(readlink "$sysroot$path")
    mkdir -p "$rootfs$(dirname "$path")"
    [ -L "$rootfs$path" ] || ln -s "$link" "$rootfs$path"
    case "$link" in
      *..*) fail "$1: link $link may leave $sysroot" ;;
      /*) path=$link ;;
      *) path=$(dirname "$path")/$link ;;
    esac
  done
  [ -f "$sysroot$path" ] && [ ! -L "$sysroot$(dirname "$path")" ] ||
    fail "$1 does not resolve to a file inside $sysroot"
  mkdir -p "$rootfs$(dirname "$path")"
  cp "$sysroot$path" "$rootfs$path"
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
