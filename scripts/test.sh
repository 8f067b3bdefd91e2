#!/usr/bin/env bash
# All of pseudolive's tests: format, lints, unit and behaviour tests, then
# real players (hls.js and Chromium's own HLS player in headless Chromium,
# ffmpeg, hls.js through nginx in front of two replicas) against the release
# binary. Installs what it needs on a fresh
# machine (apt packages when running as root, npm ci). Exits non-zero on any
# failure. SKIP_PLAYERS=1 skips the player suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs Debian packages (as root) for the commands given that are missing.
need() {
  local missing=()
  for pair in "$@"; do
    local cmd=${pair%%:*} pkg=${pair#*:}
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || missing+=($pkg)
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "missing: ${missing[*]} (install them, or run as root to have them installed)" >&2
      exit 1
    fi
  fi
}

echo "== test dependencies"
# ffprobe is the reference some behaviour tests compare against.
need ffprobe:ffmpeg

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --all-targets
echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

if [ "${SKIP_PLAYERS:-0}" = 1 ]; then
  echo "== players: skipped (SKIP_PLAYERS=1)"
  exit 0
fi

echo "== players: dependencies"
need chromium:chromium ffmpeg:ffmpeg node:"nodejs npm" nginx:nginx
(cd tests/player && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --quiet

echo "== players"
timeout -k 10 420 node tests/player/run.mjs
timeout -k 10 120 node tests/player/page.mjs
