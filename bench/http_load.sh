#!/usr/bin/env bash
# HTTP load, side by side: pseudolive vs nginx serving the same bytes from
# static files, with wrk at 64 and 256 connections, alternating A B A B; then
# 1000 simulated players against pseudolive for 60 s.
# Needs wrk and nginx (apt; installed when missing and running as root).
# usage: bench/http_load.sh [SECONDS_PER_RUN=10] [PLAYERS=1000] [PLAYER_SECONDS=60]
# CASES="segment-source segment-continuous" limits the wrk cases.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
players=${2:-1000}
player_secs=${3:-60}

for tool in wrk nginx; do
  if ! command -v $tool >/dev/null && ! [ -x /usr/sbin/$tool ]; then
    [ "$(id -u)" = 0 ] || { echo "missing $tool" >&2; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $tool >/dev/null
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release --quiet
cargo build --release --quiet --example players

tmp=$(mktemp -d /tmp/pseudolive-http-XXXX)
chmod 755 "$tmp"
cleanup() { kill "$pl_pid" 2>/dev/null || true; "$NGINX" -p "$tmp/nginx" -c nginx.conf -s stop 2>/dev/null || true; rm -rf "$tmp"; }
pl_pid=
trap cleanup EXIT

# The library: the demo stream plus a ~500 KB segment.
mkdir -p "$tmp/lib" "$tmp/www/demo/big" "$tmp/nginx/logs"
cp -r static/demo "$tmp/lib/demo"
mkdir -p "$tmp/lib/demo/big"
cat static/demo/high/*.ts > "$tmp/lib/demo/big/seg_big.ts"
truncate -s $((188 * 2720)) "$tmp/lib/demo/big/seg_big.ts"
cp "$tmp/lib/demo/big/seg_big.ts" "$tmp/www/demo/big/seg_big.ts"
# A real segment of the demo, for continuous timestamps (rewritten on its
# first request, then served from the kept copy).
mkdir -p "$tmp/www/demo/high"
cp static/demo/high/seg_007.ts "$tmp/www/demo/high/seg_007.ts"

port_free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pl_port=$(port_free)
ng_port=$(port_free)
./target/release/pseudolive 127.0.0.1 "$pl_port" --static "$tmp/lib" --epoch 1767225600 --log-level warn &
pl_pid=$!
until curl -sf "http://127.0.0.1:$pl_port/demo_low.m3u8" -o /dev/null; do sleep 0.05; done
# nginx serves a static copy of the same playlist bytes.
curl -sf "http://127.0.0.1:$pl_port/demo_low.m3u8" -o "$tmp/www/demo_low.m3u8"

cat > "$tmp/nginx/nginx.conf" <<CONF
user root;
worker_processes auto;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server {
    listen 127.0.0.1:$ng_port;
    root $tmp/www;
  }
}
CONF
"$NGINX" -p "$tmp/nginx" -c nginx.conf
until curl -sf "http://127.0.0.1:$ng_port/demo_low.m3u8" -o /dev/null; do sleep 0.05; done

ng_pid=$(cat "$tmp/nginx/logs/nginx.pid")
# CPU time (clock ticks) of a server: pseudolive, or nginx's master and workers.
cpu_of() {
  local pids=$1
  [ "$pids" = nginx ] && pids="$ng_pid $(pgrep -P "$ng_pid" | tr '\n' ' ')"
  local t=0 p
  for p in $pids; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo $t
}
# run_wrk URL CONNECTIONS SERVER -> "requests/s p50_ms p99_ms server_cpu_us_per_request"
run_wrk() {
  local c0 c1 out
  c0=$(cpu_of "$3")
  out=$(wrk -t2 -c"$2" -d"${secs}s" --latency "$1")
  c1=$(cpu_of "$3")
  awk -v cpu=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v secs="$secs" '
    /Requests\/sec/ {rps=$2}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
    /Non-2xx/ {bad=$NF}
    END { if (bad) print "NON-2xx:", bad > "/dev/stderr"; printf "%.0f %.3f %.3f %.1f\n", rps, p50, p99, cpu / hz * 1e6 / (rps * secs) }' <<<"$out"
}

echo "| what | connections | pseudolive req/s (runs) | nginx req/s (runs) | ratio | pseudolive p50 / p99 ms | nginx p50 / p99 ms | server CPU µs per request: pseudolive / nginx |"
echo "|---|---|---|---|---|---|---|---|"
for what in ${CASES:-playlist segment segment-source segment-continuous}; do
  case $what in
    playlist) a="http://127.0.0.1:$pl_port/demo_low.m3u8"; b="http://127.0.0.1:$ng_port/demo_low.m3u8" ;;
    segment) a="http://127.0.0.1:$pl_port/demo/big/seg_big.ts"; b="http://127.0.0.1:$ng_port/demo/big/seg_big.ts" ;;
    # The same 2 s demo segment as the files are, and rewritten for loop 1000.
    segment-source) a="http://127.0.0.1:$pl_port/demo/high/seg_007.ts"; b="http://127.0.0.1:$ng_port/demo/high/seg_007.ts" ;;
    segment-continuous) a="http://127.0.0.1:$pl_port/ts=continuous/g=15007/demo/high/seg_007.ts"; b="http://127.0.0.1:$ng_port/demo/high/seg_007.ts" ;;
  esac
  for c in 64 256; do
    read -r a1 a1p50 a1p99 a1cpu < <(run_wrk "$a" "$c" "$pl_pid")
    read -r b1 b1p50 b1p99 b1cpu < <(run_wrk "$b" "$c" nginx)
    read -r a2 a2p50 a2p99 a2cpu < <(run_wrk "$a" "$c" "$pl_pid")
    read -r b2 b2p50 b2p99 b2cpu < <(run_wrk "$b" "$c" nginx)
    python3 - "$what" "$c" "$a1" "$a2" "$b1" "$b2" "$a1p50" "$a2p50" "$a1p99" "$a2p99" "$b1p50" "$b2p50" "$b1p99" "$b2p99" \
      "$a1cpu" "$a2cpu" "$b1cpu" "$b2cpu" <<'PY'
import sys
w, c, a1, a2, b1, b2, *lat = sys.argv[1:]
a1, a2, b1, b2 = map(float, (a1, a2, b1, b2))
l = list(map(float, lat))
ma, mb = (a1 + a2) / 2, (b1 + b2) / 2
print(f"| {w} | {c} | {ma:.0f} ({a1:.0f}, {a2:.0f}) | {mb:.0f} ({b1:.0f}, {b2:.0f}) | {ma / mb:.2f} | "
      f"{(l[0]+l[1])/2:.2f} / {(l[2]+l[3])/2:.2f} | {(l[4]+l[5])/2:.2f} / {(l[6]+l[7])/2:.2f} | "
      f"{(l[8]+l[9])/2:.1f} / {(l[10]+l[11])/2:.1f} |")
PY
  done
done

# 1000 simulated players: errors, playlist latency, server CPU and RSS.
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pl_pid/stat"; }
c0=$(cpu)
urls="http://127.0.0.1:$pl_port/demo_low.m3u8,http://127.0.0.1:$pl_port/demo_mid.m3u8,http://127.0.0.1:$pl_port/demo_high.m3u8"
echo
echo "players: $(./target/release/examples/players "$urls" "$players" "$player_secs")"
c1=$(cpu)
echo "server CPU: $(python3 -c "print(f'{($c1 - $c0) / $ticks / $player_secs * 100:.0f}% of one core')") over ${player_secs} s; $(grep -E 'VmRSS|VmHWM' /proc/$pl_pid/status | tr -s ' \t' ' ' | tr '\n' ' ')"
