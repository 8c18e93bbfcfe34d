#!/usr/bin/env bash
# A local stand-in for https://github.com/dndx/phantun, for the image tests.
# Usage: scripts/phantun-upstream.sh DIR
# Makes DIR/dndx/phantun a bare git repository that any static HTTP server
# serves over git's dumb protocol, holding phantun 0.8.1's crate source from
# crates.io (a standalone crate with its Cargo.lock), and next to it
# DIR/dndx/phantun/archive/<commit>.tar.gz for each commit, as GitHub has them.
# Branch main has two commits with the same tree: the source, then an empty
# commit that is the default branch's HEAD. Commit ids are the same every run.
# The crate is downloaded once into the cache and checked against its digest.
set -euo pipefail
dir=$1
version=0.8.1
digest=e61972273503fb6368f204c8386594edb03c753321c8cad3b4740876c1cda7b1
crate="${PHANTUN_CACHE:-$HOME/.cache/phantun-runtime}/phantun-$version.crate"

if [ ! -f "$crate" ]; then
  mkdir -p "$(dirname "$crate")"
  curl -fsSL "https://static.crates.io/crates/phantun/phantun-$version.crate" -o "$crate.part"
  mv "$crate.part" "$crate"
fi
echo "$digest  $crate" | sha256sum --check --quiet

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$crate" -C "$work" --strip-components=1 --no-same-owner
export GIT_AUTHOR_NAME=upstream GIT_AUTHOR_EMAIL=upstream@localhost \
  GIT_COMMITTER_NAME=upstream GIT_COMMITTER_EMAIL=upstream@localhost \
  GIT_AUTHOR_DATE='2025-01-01T00:00:00Z' GIT_COMMITTER_DATE='2025-01-01T00:00:00Z'
git -C "$work" init --quiet --initial-branch=main
git -C "$work" add --all
git -C "$work" commit --quiet -m "phantun $version from crates.io"
git -C "$work" commit --quiet --allow-empty -m "HEAD of the default branch"

repo="$dir/dndx/phantun"
git clone --quiet --bare "$work" "$repo"
git -C "$repo" update-server-info
mkdir "$repo/archive"
for commit in $(git -C "$repo" rev-list main); do
  git -C "$repo" archive --format=tar.gz --prefix="phantun-$commit/" \
    -o "$repo/archive/$commit.tar.gz" "$commit"
done
