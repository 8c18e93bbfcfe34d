#!/usr/bin/env bash
# Provides the real upstream phantun 0.8.1 as phantun_client / phantun_server
# in a cache outside git, building it from crates.io only when absent.
# Prints the directory that holds the two binaries (use it as --phantun-dir).
set -euo pipefail
version=0.8.1
cache="${PHANTUN_CACHE:-$HOME/.cache/phantun-runtime}/phantun-$version"
if [ ! -x "$cache/bin/phantun_client" ] || [ ! -x "$cache/bin/phantun_server" ]; then
  command -v cargo >/dev/null || { echo "provision-phantun: cargo is required" >&2; exit 1; }
  cargo install phantun --version "$version" --locked --root "$cache/cargo" >&2
  mkdir -p "$cache/bin"
  install -m 0755 "$cache/cargo/bin/client" "$cache/bin/phantun_client"
  install -m 0755 "$cache/cargo/bin/server" "$cache/bin/phantun_server"
fi
echo "$cache/bin"
