#!/usr/bin/env bash
# Provides the real upstream phantun 0.8.1 as phantun_client / phantun_server
# in a cache outside git, building it from crates.io only when absent: one
# progress line on stderr, cargo's output in build.log beside the binaries
# (its last lines on stderr if the build fails). Cargo's build directory is
# kept there too (CARGO_TARGET_DIR, if set, instead), so that another cache
# installs from it without compiling again. One build at a time per cache.
# Prints the directory that holds the two binaries (use it as --phantun-dir).
set -euo pipefail
version=0.8.1
cache="${PHANTUN_CACHE:-$HOME/.cache/phantun-runtime}/phantun-$version"
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if [ ! -x "$cache/bin/phantun_client" ] || [ ! -x "$cache/bin/phantun_server" ]; then
  command -v cargo >/dev/null || { echo "provision-phantun: cargo is required" >&2; exit 1; }
  echo "provision-phantun: building phantun $version from crates.io into $cache (once, a few minutes)" >&2
  if ! CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}" \
    cargo install phantun --version "$version" --locked --root "$cache/cargo" >"$cache/build.log" 2>&1; then
    tail -n 20 "$cache/build.log" >&2
    exit 1
  fi
  mkdir -p "$cache/bin"
  install -m 0755 "$cache/cargo/bin/client" "$cache/bin/phantun_client"
  install -m 0755 "$cache/cargo/bin/server" "$cache/bin/phantun_server"
fi
echo "$cache/bin"
