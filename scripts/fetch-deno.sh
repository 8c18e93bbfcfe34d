#!/bin/sh
# Runs in the image build (the Dockerfile's deno stage).
# Usage: fetch-deno.sh ARCH DIR   (ARCH: a Docker arch, amd64 or arm64)
# Puts DIR/deno: Deno 2.9.6 for ARCH, the binary npm's `deno` package ships
# (@deno/linux-<arch>-glibc), downloaded from $NPM_REGISTRY and refused
# unless it matches the integrity the registry published, pinned here; and
# DIR/deno.record, what it is (package, version, url, integrity, license) for
# the SBOM.
set -eu
version=2.9.6
case "$1" in
  amd64) package=linux-x64-glibc
    integrity=sha512-3md4TKLCuzsLDmfOoC5KN7NAZaxSVkMgm64vg6foD00JBADCpYS2/5QqXfzgnP5ZQz3iLP9vBQJtEgc116OAoQ== ;;
  arm64) package=linux-arm64-glibc
    integrity=sha512-poqhoH9B3nYloigEMPT5t8HY+wBeiuea1An5Q7fqgJzP0SYmWsoS/oUnWO/pEiA4ofzIBy1Elt/in58xKtxEoQ== ;;
  *) echo "fetch-deno: no Deno build for architecture '$1' (amd64, arm64)" >&2; exit 1 ;;
esac
url="$NPM_REGISTRY/@deno/$package/-/$package-$version.tgz"
expected=$(printf '%s' "${integrity#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
curl -fsSL "$url" -o /tmp/deno.tgz
actual=$(sha512sum /tmp/deno.tgz | cut -d' ' -f1)
[ "$actual" = "$expected" ] ||
  { echo "fetch-deno: SHA-512 mismatch for $url: expected $expected, actual $actual" >&2; exit 1; }
mkdir -p "$2"
tar -xzf /tmp/deno.tgz -C "$2" --strip-components=1 --no-same-owner package/deno
chmod 0755 "$2/deno"
license=$(tar -xzOf /tmp/deno.tgz package/package.json | sed -n 's/^ *"license": *"\([^"]*\)".*/\1/p')
printf 'package=@deno/%s\nversion=%s\nurl=%s\nintegrity=%s\nlicense=%s\n' \
  "$package" "$version" "$url" "$integrity" "$license" >"$2/deno.record"
rm /tmp/deno.tgz
echo "fetch-deno: $package $version"
