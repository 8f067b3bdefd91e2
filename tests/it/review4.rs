//! Continuous-mode WebVTT and the kept rewrites, tried against bad input and
//! real packagers' subtitles.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pseudolive::clock::ManualClock;
use pseudolive::http::App;
use pseudolive::library::{Library, LibraryConfig};
use pseudolive::probe::{ProbeMode, Prober};
use pseudolive::ticks::Ticks;

use crate::util::{copy_stream, get, temp_dir};

const T0: u64 = 1_800_000_000_000;

/// A library over `root`, every stream settled, the clock at `T0`.
async fn app_over(root: &Path) -> (Arc<App>, Arc<ManualClock>) {
    let library = Library::new(LibraryConfig {
        root: root.to_path_buf(),
        window: 6,
        epoch_unix: Some(Ticks::from_ms(T0)),
        prober: Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        },
    });
    library.rescan().unwrap();
    for slot in library.slots() {
        slot.settled(Duration::from_secs(30)).await;
    }
    let clock = Arc::new(ManualClock::new(Ticks::from_ms(T0)));
    let app = App::with_clock(library, Duration::from_secs(5), clock.clone());
    (app, clock)
}

/// The `MPEGTS` value of a WebVTT body's map (0 without one).
fn mpegts(body: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(body);
    let Some(map) = text.lines().find(|l| l.starts_with("X-TIMESTAMP-MAP=")) else {
        return 0;
    };
    map.split(['=', ','])
        .find_map(|kv| kv.trim().strip_prefix("MPEGTS:"))
        .unwrap_or_else(|| panic!("{map}"))
        .parse()
        .unwrap()
}

/// The kept rewrites of track `index` of `stream`.
fn kept(app: &Arc<App>, stream: &str, index: usize) -> usize {
    match app.library.get(stream).map(|s| s.state()) {
        Some(pseudolive::library::StreamState::Ready(live)) => live.rewritten(index).len(),
        _ => panic!("{stream} is not ready"),
    }
}

/// A segment too large for the file cache is read from disk on every
/// request, into a new allocation each time: a rewrite kept from it can
/// never be found again, so keeping it only pins the file and its rewrite
/// (up to 2 x 256 MiB per entry) for as long as the stream runs.
#[tokio::test]
async fn a_segment_read_past_the_file_cache_is_not_kept() {
    let root = temp_dir("r4_big").join("static");
    copy_stream(&root, "shaka_ts", "pkg/shaka_ts");
    // 17 MiB of null packets after the media: larger than the cache takes.
    let path = root.join("shaka_ts/video/seg_002.ts");
    let mut ts = std::fs::read(&path).unwrap();
    let mut null = [0xFFu8; 188];
    null[..4].copy_from_slice(&[0x47, 0x1F, 0xFF, 0x10]);
    while ts.len() < 17 << 20 {
        ts.extend_from_slice(&null);
    }
    std::fs::write(&path, &ts).unwrap();
    let (app, _clock) = app_over(&root).await;
    let url = "/ts=continuous/g=1/shaka_ts/video/seg_002.ts";
    let first = get(&app, url).await;
    assert_eq!(first.status(), 200);
    assert_eq!(get(&app, url).await.body(), first.body(), "the same bytes");
    assert_eq!(kept(&app, "shaka_ts", 0), 0, "nothing pinned");
    // A cached file's rewrite is kept.
    let url = "/ts=continuous/g=0/shaka_ts/video/seg_001.ts";
    assert_eq!(get(&app, url).await.status(), 200);
    assert_eq!(kept(&app, "shaka_ts", 0), 1);
}

/// A subtitle file rewritten on disk is served rewritten from its new bytes
/// once the file cache has seen the change.
#[tokio::test]
async fn a_changed_subtitle_file_is_not_served_from_the_kept_rewrite() {
    let root = temp_dir("r4_stale").join("static");
    copy_stream(&root, "shaka_ts", "pkg/shaka_ts");
    let (app, _clock) = app_over(&root).await;
    let url = "/ts=continuous/g=0/shaka_ts/text/seg_001.vtt";
    let before = get(&app, url).await;
    assert_eq!(mpegts(before.body()), 900_000);
    let path = root.join("shaka_ts/text/seg_001.vtt");
    let old = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        old.replace("one", "uno")
            .replace("MPEGTS:9000", "MPEGTS:9090"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = get(&app, url).await;
    let body = String::from_utf8_lossy(after.body());
    assert!(body.contains("uno"), "{body}");
    assert_eq!(mpegts(after.body()), 900_090);
}

const WRAP: u64 = 1 << 33;

/// PTS of the first PES of an MPEG-TS segment.
fn first_pts(ts: &[u8]) -> u64 {
    let (pes, _) = crate::restamp::timestamps(ts);
    pes.first().expect("a PES with a PTS").1
}

/// Where `tag` first occurs in `buf`, past the box size before it.
fn find(buf: &[u8], tag: &[u8; 4]) -> usize {
    buf.windows(4).position(|w| w == tag).expect("the box")
}

/// The first `tfdt` of an fMP4 segment.
fn first_tfdt(buf: &[u8]) -> u64 {
    let at = find(buf, b"tfdt");
    let v = &buf[at + 8..];
    if buf[at + 4] == 1 {
        u64::from_be_bytes(v[..8].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(v[..4].try_into().unwrap()))
    }
}

/// The first `mdhd` timescale of an init segment.
fn timescale(init: &[u8]) -> u64 {
    let at = find(init, b"mdhd");
    let off = if init[at + 4] == 1 { 24 } else { 16 };
    u64::from(u32::from_be_bytes(
        init[at + off..at + off + 4].try_into().unwrap(),
    ))
}

/// Shaka's three WebVTT segments (2 s each, `MPEGTS:9000`) as `text/` of
/// the stream at `dir`, with a subtitle group on its variants.
fn add_text(dir: &Path) {
    let text = dir.join("text");
    std::fs::create_dir_all(&text).unwrap();
    for f in ["index.m3u8", "seg_001.vtt", "seg_002.vtt", "seg_003.vtt"] {
        std::fs::copy(
            crate::util::fixture("pkg/shaka_ts/text").join(f),
            text.join(f),
        )
        .unwrap();
    }
    let master = dir.join("abr.m3u8");
    let m = std::fs::read_to_string(&master).unwrap().replace(
        "#EXT-X-STREAM-INF:",
        "#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"text/index.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\"\n#EXT-X-STREAM-INF:SUBTITLES=\"subs\",",
    );
    std::fs::write(&master, m).unwrap();
}

/// In a stream whose only timed tracks are fMP4 (CMAF), the map moves by
/// as much as the video's `tfdt`, in 90 kHz.
#[tokio::test]
async fn webvtt_moves_with_cmaf_video() {
    let root = temp_dir("r4_cmaf").join("static");
    copy_stream(&root, "cmaf_subs", "cmaf_shaka");
    add_text(&root.join("cmaf_subs"));
    let (app, _clock) = app_over(&root).await;
    let src = crate::util::fixture("cmaf_shaka/video");
    let scale = timescale(&std::fs::read(src.join("init.mp4")).unwrap());
    for g in [0u64, 1, 2, 3, 4, 5, 3001, 150_000] {
        let i = g % 3 + 1;
        let url = format!("/ts=continuous/g={g}/cmaf_subs/video/seg_00{i}.m4s");
        let served = get(&app, &url).await;
        assert_eq!(served.status(), 200, "{url}");
        let source = std::fs::read(src.join(format!("seg_00{i}.m4s"))).unwrap();
        let shift = first_tfdt(served.body()) - first_tfdt(&source);
        let shift_90k = ((u128::from(shift) * 90_000 + u128::from(scale) / 2) / u128::from(scale))
            as u64
            % WRAP;
        let url = format!("/ts=continuous/g={g}/cmaf_subs/text/seg_00{i}.vtt");
        let vtt = get(&app, &url).await;
        assert_eq!(vtt.status(), 200, "{url}");
        let moved = (mpegts(vtt.body()) + WRAP - 9000) % WRAP;
        let diff = moved.abs_diff(shift_90k);
        assert!(
            diff <= 1 || diff >= WRAP - 1,
            "{url}: {moved} vs {shift_90k}"
        );
    }
}

/// A master whose first variant is audio only: the subtitles still move
/// with the video a player shows them over.
#[tokio::test]
async fn webvtt_moves_with_the_video_when_an_audio_only_variant_comes_first() {
    let root = temp_dir("r4_audio_first").join("static");
    copy_stream(&root, "shaka_ts", "pkg/shaka_ts");
    let master = root.join("shaka_ts/abr.m3u8");
    let m = std::fs::read_to_string(&master).unwrap();
    let at = m.find("#EXT-X-STREAM-INF:").unwrap();
    let m = format!(
        "{}#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.2\",SUBTITLES=\"subs\"\naudio/index.m3u8\n{}",
        &m[..at],
        &m[at..]
    );
    std::fs::write(&master, m).unwrap();
    let (app, _clock) = app_over(&root).await;
    let src = crate::util::fixture("pkg/shaka_ts");
    for g in [0u64, 1, 2, 3, 3001] {
        let i = g % 3 + 1;
        let url = format!("/ts=continuous/g={g}/shaka_ts/video/seg_00{i}.ts");
        let served = get(&app, &url).await;
        assert_eq!(served.status(), 200, "{url}");
        let source = std::fs::read(src.join(format!("video/seg_00{i}.ts"))).unwrap();
        let video = (first_pts(served.body()) + WRAP - first_pts(&source)) % WRAP;
        let url = format!("/ts=continuous/g={g}/shaka_ts/text/seg_00{i}.vtt");
        let vtt = get(&app, &url).await;
        assert_eq!(vtt.status(), 200, "{url}");
        let moved = (mpegts(vtt.body()) + WRAP - 9000) % WRAP;
        assert_eq!(moved, video, "{url}");
    }
}

/// A source with a discontinuity (a PTS jump) and subtitles cut at other
/// points than the video but at the same discontinuity: each subtitle
/// segment moves with the video segment playing in its middle, on either
/// side of the jump and on later loops.
#[tokio::test]
async fn webvtt_across_a_source_discontinuity() {
    let root = temp_dir("r4_disc").join("static");
    let dir = root.join("disc_subs");
    copy_stream(&dir, "video", "discontinuity");
    std::fs::remove_file(dir.join("video/expected.tsv")).unwrap();
    let text = dir.join("text");
    std::fs::create_dir_all(&text).unwrap();
    std::fs::write(
        text.join("index.m3u8"),
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXTINF:3.0,\ns0.vtt\n#EXTINF:3.0,\ns1.vtt\n#EXT-X-DISCONTINUITY\n#EXTINF:4.0,\ns2.vtt\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    for (f, map, cue) in [
        ("s0.vtt", 127_920, "00:00.500"),
        ("s1.vtt", 127_920, "00:03.500"),
        ("s2.vtt", 45_126_000, "00:00.500"),
    ] {
        std::fs::write(
            text.join(f),
            format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{map},LOCAL:00:00:00.000\n\n{cue} --> 00:10.000\n{f}\n"),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("abr.m3u8"),
        "#EXTM3U\n#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"text/index.m3u8\",GROUP-ID=\"s\",NAME=\"en\"\n\
         #EXT-X-STREAM-INF:BANDWIDTH=100000,SUBTITLES=\"s\"\nvideo/index.m3u8\n",
    )
    .unwrap();
    let (app, _clock) = app_over(&root).await;
    let state = app.library.get("disc_subs").map(|s| s.state());
    assert!(
        matches!(state, Some(pseudolive::library::StreamState::Ready(_))),
        "{state:?}"
    );
    let video_files = [
        "a_seg_000",
        "a_seg_001",
        "a_seg_002",
        "b_seg_000",
        "b_seg_001",
    ];
    let src = crate::util::fixture("discontinuity");
    for (sub_g, video_g) in [
        (0u64, 0u64),
        (1, 2),
        (2, 4),
        (3, 5),
        (4, 7),
        (5, 9),
        (3002, 5004),
    ] {
        let name = video_files[(video_g % 5) as usize];
        let url = format!("/ts=continuous/g={video_g}/disc_subs/video/{name}.ts");
        let served = get(&app, &url).await;
        assert_eq!(served.status(), 200, "{url}");
        let source = std::fs::read(src.join(format!("{name}.ts"))).unwrap();
        let video = (first_pts(served.body()) + WRAP - first_pts(&source)) % WRAP;
        let f = ["s0", "s1", "s2"][(sub_g % 3) as usize];
        let url = format!("/ts=continuous/g={sub_g}/disc_subs/text/{f}.vtt");
        let vtt = get(&app, &url).await;
        assert_eq!(
            vtt.status(),
            200,
            "{url}: {}",
            String::from_utf8_lossy(vtt.body())
        );
        let map = if f == "s2" { 45_126_000 } else { 127_920 };
        let moved = (mpegts(vtt.body()) + WRAP - map) % WRAP;
        assert_eq!(moved, video, "{url} against {name} (g={video_g})");
    }
}

/// With continuous timestamps and low latency, a byte-range segment and its
/// parts are on the same clock: a player switching between parts at the
/// edge and whole segments behind it sees no jump.
#[tokio::test]
async fn byte_range_parts_and_segments_agree_in_continuous_mode() {
    let root = temp_dir("r4_single").join("static");
    copy_stream(&root, "ff_ts_single", "pkg/ff_ts_single");
    let (app, clock) = app_over(&root).await;
    clock.set(Ticks::from_ms(T0 + 120_000));
    let url = "/ts=continuous/ll=0.5/ff_ts_single_hi.m3u8";
    let playlist = get(&app, url).await;
    assert_eq!(playlist.status(), 200, "{url}");
    let g = 40u64;
    // The segment as served: the file's byte range, as it is.
    let source = crate::util::fixture("pkg/ff_ts_single/hi");
    let list = std::fs::read_to_string(source.join("index.m3u8")).unwrap();
    let ranges: Vec<(usize, usize)> = list
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:"))
        .map(|r| {
            let (len, at) = r.split_once('@').unwrap();
            (len.parse().unwrap(), at.parse().unwrap())
        })
        .collect();
    let (len, at) = ranges[(g % ranges.len() as u64) as usize];
    let file = get(
        &app,
        &format!("/ts=continuous/ll=0.5/g={g}/ff_ts_single/hi/media.ts"),
    )
    .await;
    assert_eq!(file.status(), 200);
    let seg = &file.body()[at..at + len];
    let part = get(
        &app,
        &format!("/ts=continuous/ll=0.5/g={g}/part=0/ff_ts_single/hi/media.ts"),
    )
    .await;
    assert_eq!(
        part.status(),
        200,
        "{}",
        String::from_utf8_lossy(part.body())
    );
    assert_eq!(
        first_pts(part.body()),
        first_pts(seg),
        "part 0 starts where its segment does"
    );
}
