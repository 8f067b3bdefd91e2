#!/usr/bin/env bash
# Blocking LL-HLS reloads at scale: CONNECTIONS clients hold a blocking
# playlist reload each on one stream (the demo, 0.5 s part target), round
# after round, and examples/ll_waiters.rs measures how long after each
# part's availability the answers arrive, and the server's memory while it
# holds them all. Then the same client against its own minimal server
# (`--floor`: one read and one write per answer, in a process of its own),
# the least work a server can do per answer.
# usage: bench/ll_waiters.sh [CONNECTIONS=10000] [ROUNDS=10]
# FLOOR=0 skips the minimal server's run.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-10000}
rounds=${2:-10}

# Each process (server, client) holds a socket per connection.
ulimit -n $((connections + 1000)) || { echo "raise the open-file limit (ulimit -Hn) above $((connections + 1000))" >&2; exit 1; }
cargo build --release --quiet
cargo build --release --quiet --example ll_waiters

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# --max-connections above CONNECTIONS: the client's /metrics look-ups come on
# top. --header-timeout 60: the client opens every connection before it
# asks anything, which takes seconds on a loaded machine.
./target/release/pseudolive 127.0.0.1 "$port" --static static --epoch 1767225600 \
  --max-connections $((connections + 64)) --header-timeout 60 --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port/ll=0.5/demo_low.m3u8"
until curl -sf "$url" -o /dev/null; do sleep 0.05; done

echo "== pseudolive $(./target/release/pseudolive --version 2>/dev/null || true): $url"
echo "load before: $(uptime)"
./target/release/examples/ll_waiters "$url" "$connections" "$rounds" "$pid"
echo "load after: $(uptime)"
kill $pid
wait $pid 2>/dev/null || true

if [ "${FLOOR:-1}" != 0 ]; then
  echo "== the same client against a minimal server (examples/ll_waiters.rs --floor)"
  coproc FLOOR_SERVER { exec ./target/release/examples/ll_waiters --floor; }
  floor_pid=$FLOOR_SERVER_PID
  trap 'kill $floor_pid 2>/dev/null || true' EXIT
  read -r floor_url <&"${FLOOR_SERVER[0]}"
  echo "load before: $(uptime)"
  ./target/release/examples/ll_waiters "$floor_url" "$connections" "$rounds" "$floor_pid"
  echo "load after: $(uptime)"
fi
