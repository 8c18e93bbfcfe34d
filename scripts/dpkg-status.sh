#!/bin/sh
# Runs in the image build (the Dockerfile's assemble stage).
# Usage: dpkg-status.sh DEBDIR ROOTFS
# Makes the Debian packages whose files the image holds visible to scanners,
# as distroless images do: for each .deb in DEBDIR with at least one of its
# files in ROOTFS, it writes
#   ROOTFS/var/lib/dpkg/status.d/PACKAGE          the .deb's control fields
#   ROOTFS/var/lib/dpkg/status.d/PACKAGE.md5sums  the .deb's md5sums lines of
#                                                 the files that are in ROOTFS
# and refuses the build unless each of those files is the package's own
# (its MD5 in ROOTFS equals the package's).
set -eu
debs=$1 rootfs=$2
status="$rootfs/var/lib/dpkg/status.d"
mkdir -p "$status"
for deb in "$debs"/*.deb; do
  package=$(dpkg-deb --field "$deb" Package)
  sums=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./md5sums)
  present=$(printf '%s\n' "$sums" | while read -r sum path; do
    if [ -f "$rootfs/$path" ] && [ ! -L "$rootfs/$path" ]; then printf '%s  %s\n' "$sum" "$path"; fi
  done)
  [ -n "$present" ] || continue
  dpkg-deb --field "$deb" >"$status/$package"
  printf '%s\n' "$present" >"$status/$package.md5sums"
  (cd "$rootfs" && md5sum --check --quiet "$status/$package.md5sums") ||
    { echo "dpkg-status: files of $package in the image differ from the package" >&2; exit 1; }
done
