#!/usr/bin/env bash
# Builds static/demo/: a 30 s stream in three aligned variants (H.264 + AAC,
# 2 s segments) with the variant name, a running clock and the frame number
# burned in, so a viewer sees bitrate switches and loop points.
# Needs ffmpeg with drawtext and the DejaVu fonts (apt: ffmpeg fonts-dejavu-core).
# The output is committed; re-run only to change it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=static/demo
font=/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf
rm -rf "$out"
mkdir -p "$out"

label() { # label NAME SIZE
  echo "scale=$2,drawtext=fontfile=$font:text='$1  %{pts\\:hms}  frame %{frame_num}':x=10:y=10:fontsize=20:fontcolor=white:box=1:boxcolor=black@0.6"
}

ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=25:duration=30" \
  -f lavfi -i "sine=frequency=440:beep_factor=4:sample_rate=48000:duration=30" \
  -filter_complex "[0:v]split=3[a][b][c];[a]$(label low 320x180)[low];[b]$(label mid 480x270)[mid];[c]$(label high 640x360)[high]" \
  -map "[low]" -map "[mid]" -map "[high]" -map 1:a -map 1:a -map 1:a \
  -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 -bf 2 \
  -b:v:0 120k -maxrate:v:0 150k -bufsize:v:0 240k \
  -b:v:1 250k -maxrate:v:1 300k -bufsize:v:1 500k \
  -b:v:2 450k -maxrate:v:2 550k -bufsize:v:2 900k \
  -c:a aac -b:a 48k -ac 2 \
  -f hls -hls_time 2 -hls_list_size 0 -hls_playlist_type vod \
  -var_stream_map "v:0,a:0,name:low v:1,a:1,name:mid v:2,a:2,name:high" \
  -master_pl_name abr.m3u8 \
  -hls_segment_filename "$out/%v/seg_%03d.ts" "$out/%v/index.m3u8"
du -sh "$out"
