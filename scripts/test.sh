#!/usr/bin/env bash
# All of pseudolive's tests: format, lints, unit and behaviour tests, then
# real players (hls.js, Chromium's own HLS player, Shaka Player and video.js
# in headless Chromium, ffmpeg, GStreamer playbin3 and playbin, VLC, mpv,
# Streamlink, hls.js through nginx in front of two replicas and against
# injected faults) against the release binary. Installs what it needs on a
# fresh machine (apt packages when running as root, npm ci, Streamlink from
# PyPI in a virtualenv under target/). Exits non-zero on any failure.
# SKIP_PLAYERS=1 skips the player suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# apt-get update, once per run.
apt_updated=0
apt_install() {
  [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Installs Debian packages (as root) for the commands given that are missing.
need() {
  local missing=()
  for pair in "$@"; do
    local cmd=${pair%%:*} pkg=${pair#*:}
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || missing+=($pkg)
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt_install "${missing[@]}"
    else
      echo "missing: ${missing[*]} (install them, or run as root to have them installed)" >&2
      exit 1
    fi
  fi
}

# Installs Debian packages (as root) that are not installed.
need_pkgs() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt_install "${missing[@]}"
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
need chromium:chromium ffmpeg:ffmpeg node:"nodejs npm" nginx:nginx gst-launch-1.0:gstreamer1.0-tools vlc:vlc-bin mpv:mpv
# GStreamer's HLS clients (hlsdemux2, hlsdemux) and decoders, driven from
# Debian's python3; VLC's demuxers and decoders; venv for Streamlink.
need_pkgs gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav python3-gst-1.0 \
  vlc-plugin-base python3-venv
(cd tests/player && npm ci --no-audit --no-fund --loglevel=error)
# Streamlink and its dependencies, pinned (tests/player/requirements.txt).
venv=target/player-venv
if ! cmp -s tests/player/requirements.txt "$venv/requirements.txt"; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/player/requirements.txt
  cp tests/player/requirements.txt "$venv/requirements.txt"
fi
cargo build --release --quiet

echo "== players"
timeout -k 10 1500 node tests/player/run.mjs
timeout -k 10 120 node tests/player/page.mjs
timeout -k 10 300 node tests/player/packagers.mjs
timeout -k 10 120 scripts/test-h2-proxy.sh
