#!/usr/bin/env bash
# Builds tests/player/static/loopa/: the player tests' audio-only stream. Two
# AAC variants (32 and 96 kbit/s, ADTS in MPEG-TS, 2 s segments), a 12 s
# loop. Needs ffmpeg. The output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/player/static/loopa
rm -rf "$out"
mkdir -p "$out"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "sine=frequency=330:sample_rate=48000:duration=11.98" \
  -f lavfi -i "sine=frequency=660:sample_rate=48000:duration=11.98" \
  -map 0:a -map 1:a -c:a aac -b:a:0 32k -ac:a:0 1 -b:a:1 96k -ac:a:1 2 \
  -f hls -hls_time 2 -hls_list_size 0 -hls_playlist_type vod \
  -var_stream_map "a:0,name:lo a:1,name:hi" \
  -master_pl_name abr.m3u8 \
  -hls_segment_filename "$out/%v/seg_%03d.ts" "$out/%v/index.m3u8"
du -sh "$out"
