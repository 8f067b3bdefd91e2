#!/usr/bin/env bash
# deploy/nginx-h2.conf in front of pseudolive, as a player sees it: TLS with
# a self-signed certificate, HTTP/2 negotiated (curl reports it), a
# low-latency blocking playlist reload held and answered through the proxy,
# a preload-hinted part and the blocking reload for it held side by side on
# one HTTP/2 connection, and HTTP/1.1 still offered.
# Needs nginx, curl with HTTP/2 and openssl (scripts/test.sh installs them).
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for tool in "$NGINX" curl openssl python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
curl --version | grep -qw HTTP2 || { echo "curl without HTTP/2" >&2; exit 1; }
cargo build --release --quiet

tmp=$(mktemp -d /tmp/pseudolive-h2-XXXX)
chmod 755 "$tmp"
pl_pid=
cleanup() {
  [ -n "$pl_pid" ] && kill "$pl_pid" 2>/dev/null
  [ -f "$tmp/nginx.pid" ] && "$NGINX" -p "$tmp" -c "$tmp/nginx.conf" -g "pid $tmp/nginx.pid; error_log $tmp/error.log;" -s stop 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  [ -f "$tmp/error.log" ] && tail -5 "$tmp/error.log" >&2
  exit 1
}

port_free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pl_port=$(port_free)
tls_port=$(port_free)

# A self-signed certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

# The demo stream, low latency with 0.5 s parts for every URL.
./target/release/pseudolive 127.0.0.1 "$pl_port" --static static --ll 0.5 --log-level warn &
pl_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$pl_port/demo_low.m3u8" -o /dev/null && break
  sleep 0.1
done

# The deployed config, with this run's ports, certificate and paths.
sed -e "s|listen 8443 ssl http2;|listen 127.0.0.1:$tls_port ssl http2;|" \
  -e '/listen \[::\]:8443/d' \
  -e "s|server 127.0.0.1:8080;|server 127.0.0.1:$pl_port;|" \
  -e "s|/etc/nginx/pseudolive.crt|$tmp/cert.pem|" \
  -e "s|/etc/nginx/pseudolive.key|$tmp/key.pem|" \
  -e "s|^http {|http {\n    client_body_temp_path $tmp/body; proxy_temp_path $tmp/proxy;\n    fastcgi_temp_path $tmp/fastcgi; uwsgi_temp_path $tmp/uwsgi; scgi_temp_path $tmp/scgi;|" \
  deploy/nginx-h2.conf > "$tmp/nginx.conf"
grep -q "127.0.0.1:$tls_port ssl http2" "$tmp/nginx.conf" || fail "deploy/nginx-h2.conf: listen line not found"
grep -q "server 127.0.0.1:$pl_port;" "$tmp/nginx.conf" || fail "deploy/nginx-h2.conf: upstream line not found"
ulimit -n 65536 2>/dev/null || true
"$NGINX" -p "$tmp" -c "$tmp/nginx.conf" -g "pid $tmp/nginx.pid; error_log $tmp/error.log warn;" \
  || fail "nginx did not start"

base="https://127.0.0.1:$tls_port"
playlist="$base/demo_low.m3u8"
for _ in $(seq 100); do
  curl -sfk "$playlist" -o /dev/null && break
  sleep 0.1
done

# HTTP/2 is negotiated (ALPN), HTTP/1.1 is still offered.
v=$(curl -sk --http2 -o /dev/null -w '%{http_version}' "$playlist")
[ "$v" = 2 ] || fail "HTTP/2 not negotiated (got HTTP/$v)"
v=$(curl -sk --http1.1 -o /dev/null -w '%{http_version}' "$playlist")
[ "$v" = 1.1 ] || fail "HTTP/1.1 not offered (got HTTP/$v)"
echo "ok: HTTP/2 and HTTP/1.1 negotiated over TLS"

# The part a preload hint names: g=<msn>/part=<index>.
hint() {
  curl -sfk --http2 "$playlist" | sed -n 's|^#EXT-X-PRELOAD-HINT:TYPE=PART,URI="g=\([0-9]*\)/part=\([0-9]*\)/\(.*\)"$|\1 \2 \3|p'
}

# A blocking reload for the part after the hinted one is held (that part
# ends at least one part duration, 0.32 s on the demo, from now) and then
# answered with a playlist that lists it.
read -r msn part _ < <(hint)
[ -n "$msn" ] || fail "no preload hint in $playlist"
next=$((part + 1))
out=$(curl -sk --http2 -o "$tmp/held.m3u8" -w '%{http_version} %{http_code} %{time_total}' \
  "$playlist?_HLS_msn=$msn&_HLS_part=$next")
read -r v code secs <<<"$out"
[ "$v" = 2 ] && [ "$code" = 200 ] || fail "blocking reload: HTTP/$v $code"
python3 -c "import sys; sys.exit(0 if float('$secs') >= 0.25 else 1)" \
  || fail "blocking reload answered after $secs s: not held"
# An index past the segment's last part is part 0 of the next segment.
grep -q -e "URI=\"g=$msn/part=$next/" -e "URI=\"g=$((msn + 1))/part=0/" "$tmp/held.m3u8" \
  || fail "the held answer does not list part $next of segment $msn"
echo "ok: _HLS_msn=$msn&_HLS_part=$next held ${secs} s and answered over HTTP/2"

# As an LL-HLS player does: the blocking reload for the hinted part and the
# hinted part itself, side by side on one HTTP/2 connection, both held
# until the part exists.
read -r msn part path < <(hint)
out=$(curl -sk --no-progress-meter --http2 --parallel \
  -w '%{http_version} %{http_code} %{num_connects} %{time_total}\n' \
  -o "$tmp/reload.m3u8" "$playlist?_HLS_msn=$msn&_HLS_part=$part" \
  -o "$tmp/part.ts" "$base/g=$msn/part=$part/$path")
echo "$out" | awk -v want=2 '
  { n++; if ($1 != "2" || $2 != "200") bad = bad " " $0; connects += $3 }
  END { if (n != 2 || bad != "" || connects != 1) { print "parallel:" bad " connections=" connects; exit 1 } }' \
  || fail "hinted part and blocking reload on one connection: $(echo "$out" | tr '\n' ';')"
grep -q "URI=\"g=$msn/part=$part/" "$tmp/reload.m3u8" || fail "the reload does not list the hinted part"
head -c 1 "$tmp/part.ts" | od -An -tx1 | grep -q 47 || fail "the hinted part is not MPEG-TS"
echo "ok: hinted part g=$msn/part=$part and its blocking reload held together on one HTTP/2 connection"
echo "h2 proxy: 3 passed, 0 failed"
