#!/usr/bin/env bash
# Seeds the fuzz corpora from the fixtures and the demo stream.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/ts_scan corpus/load_stream corpus/fmp4_scan
for f in ../fixtures/*/*.ts; do cp "$f" "corpus/ts_scan/$(basename "$(dirname "$f")")_$(basename "$f")"; done
# fmp4_scan: a split byte (init length / 16), then init and media segment.
for init in ../fixtures/*/init.mp4 ../fixtures/*/*/init.mp4; do
  dir=$(dirname "$init")
  for seg in "$dir"/*.m4s; do
    len=$(stat -c %s "$init")
    name=$(echo "${seg#../fixtures/}" | tr / _)
    { printf "\\$(printf %03o $(( (len + 15) / 16 > 255 ? 255 : (len + 15) / 16 )))"; cat "$init";
      head -c $(( ((len + 15) / 16) * 16 - len )) /dev/zero; cat "$seg"; } > "corpus/fmp4_scan/$name"
  done
done
{ printf '\000'; cat ../fixtures/fmp4_single/media.mp4; } > corpus/fmp4_scan/single_file
master='#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=192x108,CODECS="avc1.4d400b,mp4a.40.2"
v/index.m3u8
'
i=0
for pl in ../fixtures/*/index.m3u8 ../static/demo/low/index.m3u8; do
  media=$(sed -E 's/^[a-z_]*seg_[0-9]+\.ts$/seg.ts/' "$pl")
  printf '%s\0%s\n' "$master" "$media" > "corpus/load_stream/seed_$i"
  i=$((i + 1))
done
printf '%s\0%s\n' "$master" '#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV=0x1
#EXTINF:4.0,
seg.ts
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="seg.ts"
#EXTINF:3.5,
seg.ts' > "corpus/load_stream/seed_key_map"
ls corpus/*/ | wc -l
