#!/usr/bin/env bash
# Builds tests/player/static/loopf/: the player tests' fMP4 stream. Two
# aligned variants (H.264 + AAC in fragmented MP4, an EXT-X-MAP init section
# each, 2 s segments), a 10 s loop. Needs ffmpeg. The output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/player/static/loopf
rm -rf "$out"
mkdir -p "$out"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=320x180:rate=25:duration=10" \
  -f lavfi -i "sine=frequency=500:sample_rate=48000:duration=10" \
  -filter_complex "[0:v]split=2[a][b];[a]scale=160x90[low];[b]scale=320x180[high]" \
  -map "[low]" -map "[high]" -map 1:a -map 1:a \
  -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 \
  -b:v:0 60k -b:v:1 200k -c:a aac -b:a 32k -ac 1 \
  -f hls -hls_time 2 -hls_list_size 0 -hls_playlist_type vod \
  -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 \
  -var_stream_map "v:0,a:0,name:low v:1,a:1,name:high" \
  -master_pl_name abr.m3u8 \
  -hls_segment_filename "$out/%v/seg_%03d.m4s" "$out/%v/index.m3u8"
du -sh "$out"
