#!/usr/bin/env bash
# Builds tests/player/static/loop/: the player tests' stream. Three aligned
# variants (H.264 + AAC, 2 s segments), two clips of 10 s and 8 s joined with
# EXT-X-DISCONTINUITY (the second clip's timestamps start elsewhere), so an
# 18 s loop crosses a loop point and a source discontinuity every 9 s on average.
# Needs ffmpeg with drawtext and the DejaVu fonts. The output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/player/static/loop
font=/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf
rm -rf "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

label() { # label NAME SIZE CLIP
  echo "scale=$2,drawtext=fontfile=$font:text='$1 clip $3 %{pts\\:hms} %{frame_num}':x=8:y=8:fontsize=16:fontcolor=white:box=1:boxcolor=black@0.6"
}

clip() { # clip NAME SOURCE SECONDS TS_OFFSET
  local name=$1 src=$2 secs=$3 offset=$4
  mkdir -p "$tmp/$name"
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "$src=size=320x180:rate=25:duration=$secs" \
    -f lavfi -i "sine=frequency=$((440 + offset)):sample_rate=48000:duration=$secs" \
    -filter_complex "[0:v]split=3[a][b][c];[a]$(label low 160x90 "$name")[low];[b]$(label mid 240x136 "$name")[mid];[c]$(label high 320x180 "$name")[high]" \
    -map "[low]" -map "[mid]" -map "[high]" -map 1:a -map 1:a -map 1:a \
    -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p -g 50 -keyint_min 50 -sc_threshold 0 \
    -b:v:0 60k -b:v:1 120k -b:v:2 200k -c:a aac -b:a 32k -ac 1 \
    -output_ts_offset "$offset" \
    -f hls -hls_time 2 -hls_list_size 0 -hls_playlist_type vod \
    -var_stream_map "v:0,a:0,name:low v:1,a:1,name:mid v:2,a:2,name:high" \
    -master_pl_name abr.m3u8 \
    -hls_segment_filename "$tmp/$name/%v/seg_%03d.ts" "$tmp/$name/%v/index.m3u8"
}

clip a testsrc2 10 0
clip b testsrc 8 300

mkdir -p "$out"
cp "$tmp/a/abr.m3u8" "$out/abr.m3u8"
for v in low mid high; do
  mkdir -p "$out/$v"
  for c in a b; do
    for f in "$tmp/$c/$v"/*.ts; do cp "$f" "$out/$v/${c}_$(basename "$f")"; done
  done
  {
    echo '#EXTM3U'
    echo '#EXT-X-VERSION:3'
    echo '#EXT-X-TARGETDURATION:2'
    echo '#EXT-X-PLAYLIST-TYPE:VOD'
    for c in a b; do
      [ "$c" = b ] && echo '#EXT-X-DISCONTINUITY'
      grep -e '^#EXTINF' -e '^seg_' "$tmp/$c/$v/index.m3u8" | sed "s/^seg_/${c}_seg_/"
    done
    echo '#EXT-X-ENDLIST'
  } > "$out/$v/index.m3u8"
done
du -sh "$out"
