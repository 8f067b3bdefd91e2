#!/usr/bin/env bash
# Reruns every benchmark in BENCHMARKS.md: criterion (probe, playlist), the
# library-scale run, the HTTP load comparison with nginx plus 1000
# simulated players, and 10 000 held LL-HLS blocking reloads. Takes about
# 11 minutes; run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== machine"; nproc; grep -m1 'model name' /proc/cpuinfo || true; date -u
echo "== cargo bench --bench probe"; cargo bench --bench probe 2>&1 | grep -E '^(native|playlist|ffprobe|fmp4 beside ts)/|time:|thrpt:|ratio|skipping'
echo "== cargo bench --bench restamp"; cargo bench --bench restamp 2>&1 | grep -E '^restamp/|time:|thrpt:'
echo "== cargo bench --bench playlist"; cargo bench --bench playlist 2>&1 | grep -E '^playlist/|time:'
cargo build --release --quiet
echo "== bench/library_scale.py"; python3 bench/library_scale.py
echo "== bench/http_load.sh"; bench/http_load.sh 10 1000 60
echo "== bench/ll_waiters.sh"; bench/ll_waiters.sh 10000 10
