#!/usr/bin/env bash
# Soak: PLAYERS simulated players on the demo stream for SECONDS, with the
# server's RSS sampled every 10 s. Fails on any player error or RSS growth
# of 10 % or more between the first sample after warm-up and the end.
# usage: bench/soak.sh [PLAYERS=200] [SECONDS=600]
set -euo pipefail
cd "$(dirname "$0")/.."
players=${1:-200}
secs=${2:-600}
cargo build --release --quiet
cargo build --release --quiet --example players
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
./target/release/pseudolive 127.0.0.1 "$port" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/demo_low.m3u8" -o /dev/null; do sleep 0.05; done
base="http://127.0.0.1:$port"
./target/release/examples/players "$base/demo_low.m3u8,$base/demo_mid.m3u8,$base/demo_high.m3u8" "$players" "$secs" > /tmp/soak-players.$$ 2>&1 &
client=$!
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
samples=()
for ((t = 0; t <= secs; t += 10)); do
  samples+=("$(rss)")
  echo "t=${t}s rss_kb=${samples[-1]}"
  sleep 10
done
wait $client && ok=1 || ok=0
cat /tmp/soak-players.$$
rm -f /tmp/soak-players.$$
# Growth from the first sample after a minute of warm-up to the last.
python3 - "${samples[@]}" <<'PY'
import sys
s = list(map(int, sys.argv[1:]))
warm = s[min(6, len(s) - 1)]
growth = (s[-1] - warm) / warm * 100
print(f"RSS after warm-up {warm} kB, at the end {s[-1]} kB, max {max(s)} kB: growth {growth:+.1f} %")
sys.exit(0 if growth < 10 else 1)
PY
[ "$ok" = 1 ]
