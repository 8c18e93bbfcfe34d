#!/bin/sh
# Runs in the image build (the Dockerfile's fetch stage). Puts phantun's
# source into /src and a record of what it is into /out/phantun-source, from
# $PHANTUN_UPSTREAM/$PHANTUN_OWNER/$PHANTUN_REPO:
#   PHANTUN_TARBALL_SHA256 empty: git clone, then check out PHANTUN_COMMIT
#     (the default branch's HEAD when empty);
#   otherwise: download archive/<commit>.tar.gz, where commit is PHANTUN_COMMIT
#     or the HEAD resolved now, and refuse it unless its SHA-256 is that value.
set -eu
url="$PHANTUN_UPSTREAM/$PHANTUN_OWNER/$PHANTUN_REPO"

fail() { echo "fetch-phantun: $*" >&2; exit 1; }
hex() { printf '%s' "$2" | grep -Eqx "[0-9a-f]{$1}"; }

[ -z "$PHANTUN_COMMIT" ] || hex 40 "$PHANTUN_COMMIT" ||
  fail "PHANTUN_COMMIT must be a full 40-digit lowercase commit id, got '$PHANTUN_COMMIT'"
[ -z "$PHANTUN_TARBALL_SHA256" ] || hex 64 "$PHANTUN_TARBALL_SHA256" ||
  fail "PHANTUN_TARBALL_SHA256 must be 64 lowercase hex digits, got '$PHANTUN_TARBALL_SHA256'"

mkdir -p /src /out
if [ -z "$PHANTUN_TARBALL_SHA256" ]; then
  git clone --quiet "$url" /src
  [ -z "$PHANTUN_COMMIT" ] || git -C /src checkout --quiet --detach "$PHANTUN_COMMIT"
  commit=$(git -C /src rev-parse HEAD)
  rm -rf /src/.git
else
  commit=${PHANTUN_COMMIT:-$(git ls-remote "$url" HEAD | cut -f1)}
  hex 40 "$commit" || fail "cannot resolve the HEAD of $url"
  archive="$url/archive/$commit.tar.gz"
  curl -fsSL "$archive" -o /tmp/phantun.tar.gz
  actual=$(sha256sum /tmp/phantun.tar.gz | cut -d' ' -f1)
  [ "$actual" = "$PHANTUN_TARBALL_SHA256" ] ||
    fail "SHA-256 mismatch for $archive: expected $PHANTUN_TARBALL_SHA256, actual $actual"
  tar -xzf /tmp/phantun.tar.gz -C /src --strip-components=1 --no-same-owner --no-same-permissions
  rm /tmp/phantun.tar.gz
fi

printf 'repository=%s\ncommit=%s\ntarball-sha256=%s\n' \
  "$url" "$commit" "$PHANTUN_TARBALL_SHA256" >/out/phantun-source
echo "fetch-phantun: $url at $commit"
