#!/usr/bin/env bash
# Builds tests/player/static/loopd/: the player tests' demuxed-audio stream.
# Two video-only variants (H.264, 160x90 and 320x180, MPEG-TS, 2 s segments)
# and one AAC audio rendition they both name (EXT-X-MEDIA, GROUP-ID "aud"),
# a 10 s loop. ffmpeg's master also lists the audio playlist as a variant of
# its own; the one written here does not, as most packagers do. Needs ffmpeg.
# The output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/player/static/loopd
rm -rf "$out"
mkdir -p "$out"
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=320x180:rate=25:duration=10" \
  -f lavfi -i "sine=frequency=550:sample_rate=48000:duration=10" \
  -filter_complex "[0:v]split=2[a][b];[a]scale=160x90[low];[b]scale=320x180[high]" \
  -map "[low]" -map "[high]" -map 1:a \
  -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 \
  -b:v:0 60k -b:v:1 200k -c:a aac -b:a 64k -ac 2 \
  -f hls -hls_time 2 -hls_list_size 0 -hls_playlist_type vod \
  -var_stream_map "v:0,agroup:aud,name:low v:1,agroup:aud,name:high a:0,agroup:aud,name:audio" \
  -master_pl_name ffmpeg-master.m3u8 \
  -hls_segment_filename "$out/%v/seg_%03d.ts" "$out/%v/index.m3u8"
# ffmpeg's master without the audio-only variant.
awk '/^#EXT-X-STREAM-INF/ && !/RESOLUTION=/ { skip = 1; next } skip { skip = 0; next } NF' \
  "$out/ffmpeg-master.m3u8" > "$out/abr.m3u8"
rm "$out/ffmpeg-master.m3u8"
du -sh "$out"
