//! Streams made by real packagers (`fixtures/pkg/`, built by
//! `fixtures/packagers.sh`: ffmpeg's hls muxer, GStreamer's hlssink2, Shaka
//! Packager), laid out as the tools wrote them, through HTTP with
//! `warp::test` on a manual clock: they load, their segments are measured
//! natively to ffprobe's packet timestamps, and their live playlists keep
//! variants, renditions, ad markers, keys and byte ranges right on every loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use pseudolive::clock::ManualClock;
use pseudolive::http::{App, routes};
use pseudolive::library::{Library, LibraryConfig};
use pseudolive::probe::{ProbeMode, Prober};
use pseudolive::ticks::Ticks;
use serde_json::Value;

use crate::util::{copy_stream, expected, fixture, get, parse, resolve, temp_dir};

/// The unencrypted streams of `fixtures/pkg`.
const CLEAR: &[&str] = &[
    "ff_demux",
    "ff_ac3_mp3",
    "ff_webvtt",
    "ff_ts_single",
    "ff_pdt_ads",
    "gst_hlssink2",
    "shaka_ts",
];

/// The AES-128 streams of `fixtures/pkg`.
const ENCRYPTED: &[&str] = &["ff_aes_iv", "ff_aes_noiv"];

/// The manual clock at the start (Unix ms): every timeline starts here.
const T0: u64 = 1_800_000_000_000;

/// A library of the given `fixtures/pkg` streams, every stream settled and
/// its timeline started by one playlist request at `T0` on the manual clock.
async fn app_on(name: &str, streams: &[&str]) -> (Arc<App>, Arc<ManualClock>) {
    let root = temp_dir(name).join("static");
    for s in streams {
        copy_stream(&root, s, &format!("pkg/{s}"));
    }
    let library = Library::new(LibraryConfig {
        root,
        window: 6,
        epoch_unix: None,
        // With ffprobe at hand, a segment the native reader cannot read
        // shows as `ffprobe` rather than `playlist`: either is a failure.
        prober: Prober {
            mode: ProbeMode::Auto,
            ffprobe: std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("ffprobe"))
                    .find(|p| p.is_file())
            }),
        },
    });
    library.rescan().unwrap();
    for slot in library.slots() {
        slot.settled(Duration::from_secs(30)).await;
    }
    let clock = Arc::new(ManualClock::new(Ticks::from_ms(T0)));
    let app = App::with_clock(library, Duration::from_secs(5), clock.clone());
    for s in streams {
        if let Some(track) = tracks(&app, s).await.first() {
            assert_eq!(get(&app, &track.url).await.status(), 200, "{}", track.url);
        }
    }
    (app, clock)
}

fn text(res: &warp::http::Response<bytes::Bytes>) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

async fn json(app: &Arc<App>, path: &str) -> Value {
    let res = get(app, path).await;
    assert_eq!(res.status(), 200, "{path}");
    serde_json::from_slice(res.body()).unwrap()
}

/// One track as `/<stream>.json` shows it.
#[derive(Debug, Clone)]
struct TrackInfo {
    name: String,
    /// Its live playlist, as the master links it.
    url: String,
    /// Measured durations (s), in source order.
    durations: Vec<f64>,
    methods: Vec<String>,
}

async fn tracks(app: &Arc<App>, stream: &str) -> Vec<TrackInfo> {
    let state = json(app, &format!("/{stream}.json")).await;
    state["tracks"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|t| TrackInfo {
            name: t["name"].as_str().unwrap().to_string(),
            url: t["url"].as_str().unwrap().to_string(),
            durations: t["segments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["duration"].as_f64().unwrap())
                .collect(),
            methods: t["segments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["method"].as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// Two tracks cut alike: as many segments, each as long (within 1 ms).
fn cut_alike(a: &TrackInfo, b: &TrackInfo) -> bool {
    a.durations.len() == b.durations.len()
        && a.durations
            .iter()
            .zip(&b.durations)
            .all(|(x, y)| (x - y).abs() <= 0.001)
}

/// One listed segment of a live media playlist.
#[derive(Debug, Clone)]
struct Listed {
    /// Its URL, resolved against the playlist's.
    url: String,
    /// Its file inside the stream directory (`hi/seg_001.ts`).
    file: String,
    /// Media sequence number.
    msn: u64,
    /// Discontinuity sequence number of the segment itself.
    dsn: u64,
    duration: f64,
    /// Program date-time (Unix ms): its own, else the previous segment's end.
    start_ms: f64,
    /// Where the next segment starts (its program date-time), else the end
    /// of this one's `#EXTINF`.
    end_ms: f64,
    /// Tags written before it that pseudolive carries from the source
    /// (`EXT-X-CUE-*`, `EXT-X-DATERANGE`, …).
    tags: Vec<String>,
    /// The `EXT-X-KEY` in effect.
    key: Option<String>,
    /// `EXT-X-BYTERANGE` value.
    byte_range: Option<String>,
}

/// A live media playlist, read as a player reads it.
#[derive(Debug, Clone)]
struct Live {
    text: String,
    target_duration: u64,
    media_sequence: u64,
    discontinuity_sequence: u64,
    segments: Vec<Listed>,
}

impl Live {
    fn start_ms(&self) -> f64 {
        self.segments[0].start_ms
    }
    fn end_ms(&self) -> f64 {
        let last = self.segments.last().unwrap();
        last.start_ms + last.duration * 1000.0
    }
    /// The segment playing at `t_ms`.
    fn at(&self, t_ms: f64) -> Option<&Listed> {
        self.segments
            .iter()
            .find(|s| s.start_ms <= t_ms && t_ms < s.end_ms)
    }
}

/// Tags pseudolive writes itself: not source tags carried per segment.
const OWN_TAGS: &[&str] = &[
    "#EXTM3U",
    "#EXT-X-VERSION",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-PROGRAM-DATE-TIME",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-START",
    "#EXTINF",
    "#EXT-X-KEY",
    "#EXT-X-MAP",
    "#EXT-X-BYTERANGE",
];

/// Fetches the live playlist `url` of `stream` (at `now_ms`, else the
/// clock's instant) and reads it; it must parse with m3u8-rs.
async fn live(app: &Arc<App>, stream: &str, url: &str, now_ms: Option<u64>) -> Live {
    let path = match now_ms {
        Some(t) => format!("{url}?now={t}"),
        None => url.to_string(),
    };
    let res = get(app, &path).await;
    assert_eq!(res.status(), 200, "{path}: {}", text(&res));
    let parsed = parse(res.body());
    let body = text(&res);
    let prefix = format!("/{stream}/");
    let mut segments = Vec::new();
    let (mut tags, mut key, mut range) = (Vec::new(), None, None);
    let mut dsn = parsed.discontinuity_sequence;
    let mut next_start: Option<f64> = None;
    for line in body.lines().filter(|l| !l.is_empty()) {
        if let Some(k) = line.strip_prefix("#EXT-X-KEY:") {
            key = Some(k.to_string());
        } else if let Some(r) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            range = Some(r.to_string());
        } else if line.starts_with('#') {
            let name = line.split(':').next().unwrap();
            if !OWN_TAGS.contains(&name) {
                tags.push(line.to_string());
            }
        } else {
            let i = segments.len();
            let p = &parsed.segments[i];
            assert_eq!(p.uri, line);
            dsn += u64::from(p.discontinuity);
            let start_ms = match p.pdt_ms {
                Some(ms) => ms as f64,
                None => {
                    next_start.unwrap_or_else(|| panic!("{path}: no program date-time\n{body}"))
                }
            };
            next_start = Some(start_ms + p.duration * 1000.0);
            let url = resolve(url, line);
            let file = url
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{path}: {url} is not inside /{stream}/"))
                .to_string();
            segments.push(Listed {
                url,
                file,
                msn: parsed.media_sequence + i as u64,
                dsn,
                duration: p.duration,
                start_ms,
                end_ms: start_ms + p.duration * 1000.0,
                tags: std::mem::take(&mut tags),
                key: key.clone(),
                byte_range: range.take(),
            });
        }
    }
    assert!(!segments.is_empty(), "{path}: nothing listed\n{body}");
    for i in 1..segments.len() {
        segments[i - 1].end_ms = segments[i].start_ms;
    }
    Live {
        text: body,
        target_duration: parsed.target_duration,
        media_sequence: parsed.media_sequence,
        discontinuity_sequence: parsed.discontinuity_sequence,
        segments,
    }
}

/// The directory (inside the stream) and file names of a track's segments.
async fn track_files(app: &Arc<App>, stream: &str, track: &TrackInfo) -> (String, bool) {
    let l = live(app, stream, &track.url, Some(T0)).await;
    let file = &l.segments[0].file;
    let dir = file.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    let webvtt = l.segments.iter().all(|s| s.file.ends_with(".vtt"));
    (dir, webvtt)
}

/// Checks that `streams` are ready and measured natively, to ffprobe's
/// packet timestamps (`<track>/expected.tsv`) within 1 ms; WebVTT tracks
/// are timed by `#EXTINF` (counted as `playlist`). Returns the problems.
async fn measured_problems(app: &Arc<App>, streams: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let list = json(app, "/streams.json").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), streams.len(), "{list:?}");
    for s in list {
        let name = s["name"].as_str().unwrap();
        if s["state"] != "ready" {
            problems.push(format!("{name}: state {} ({})", s["state"], s["error"]));
            continue;
        }
        let mut webvtt_segments = 0;
        let mut media_segments = 0;
        for track in tracks(app, name).await {
            let (dir, webvtt) = track_files(app, name, &track).await;
            let n = track.durations.len();
            if webvtt {
                webvtt_segments += n;
                if let Some(m) = track.methods.iter().find(|m| *m != "playlist") {
                    problems.push(format!("{name}/{}: WebVTT measured by {m}", track.name));
                }
                continue;
            }
            media_segments += n;
            let rel = format!("pkg/{name}/{dir}");
            if !fixture(&rel).join("expected.tsv").is_file() {
                problems.push(format!("{name}/{}: no {rel}/expected.tsv", track.name));
                continue;
            }
            let want = expected(&rel);
            if want.len() != n {
                problems.push(format!(
                    "{name}/{}: {n} segments measured, {} expected",
                    track.name,
                    want.len()
                ));
                continue;
            }
            for (i, (w, (got, method))) in want
                .iter()
                .zip(track.durations.iter().zip(&track.methods))
                .enumerate()
            {
                let want_s = w.ticks as f64 / 90_000.0;
                if method != "native" {
                    problems.push(format!(
                        "{name}/{} segment {i} ({}): measured by {method}, not natively",
                        track.name, w.uri
                    ));
                }
                if (got - want_s).abs() > 0.001 {
                    problems.push(format!(
                        "{name}/{} segment {i} ({}): {got} s, ffprobe's packets say {want_s} s ({})",
                        track.name, w.uri, w.rule
                    ));
                }
            }
        }
        let methods = &s["methods"];
        let count = |m: &str| methods[m].as_u64().unwrap_or(u64::MAX) as usize;
        if count("ffprobe") != 0
            || count("playlist") != webvtt_segments
            || count("native") != media_segments
        {
            problems.push(format!(
                "{name}: methods {methods}, want native {media_segments}, ffprobe 0, playlist {webvtt_segments} (WebVTT)"
            ));
        }
    }
    problems
}

#[tokio::test]
async fn packager_streams_load_and_are_measured_natively() {
    let (app, _) = app_on("pkg-measured", CLEAR).await;
    let problems = measured_problems(&app, CLEAR).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// AES-128 segments are media like any other: decrypted with their key and
/// IV, their timestamps measured natively, not taken from `#EXTINF`.
#[tokio::test]
async fn aes_128_segments_are_measured_natively() {
    let (app, _) = app_on("pkg-aes-measured", ENCRYPTED).await;
    let problems = measured_problems(&app, ENCRYPTED).await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn masters_link_every_track_of_packager_streams() {
    let all: Vec<&str> = CLEAR.iter().chain(ENCRYPTED).copied().collect();
    let (app, _) = app_on("pkg-masters", &all).await;
    for stream in &all {
        let master_url = format!("/{stream}.m3u8");
        let res = get(&app, &master_url).await;
        assert_eq!(res.status(), 200, "{master_url}");
        let master = text(&res);
        let mut linked = BTreeSet::new();
        for line in master.lines() {
            if !line.starts_with('#') && !line.is_empty() {
                linked.insert(resolve(&master_url, line));
            } else if line.starts_with("#EXT-X-MEDIA:")
                && let Some(uri) = attr(line, "URI")
            {
                linked.insert(resolve(&master_url, uri));
            }
        }
        let urls: BTreeSet<String> = tracks(&app, stream)
            .await
            .into_iter()
            .map(|t| t.url)
            .collect();
        assert_eq!(
            linked, urls,
            "{stream}: the master links other playlists\n{master}"
        );
        for url in &linked {
            live(&app, stream, url, None).await;
        }
    }
}

#[tokio::test]
async fn variants_cut_alike_list_the_same_segments_at_every_instant() {
    let all: Vec<&str> = CLEAR.iter().chain(ENCRYPTED).copied().collect();
    let (app, clock) = app_on("pkg-alike", &all).await;
    let mut infos = BTreeMap::new();
    for s in &all {
        infos.insert(*s, tracks(&app, s).await);
    }
    let mut pairs = 0;
    let mut first: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut last: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let mut target: BTreeMap<&str, u64> = BTreeMap::new();
    // 0.7 s steps over 20 s of the clock: more than two loops of every stream.
    for step in 0..=29 {
        if step > 0 {
            clock.advance(Ticks::from_ms(700));
        }
        for (stream, ts) in &infos {
            let mut lists = Vec::new();
            for t in ts {
                lists.push(live(&app, stream, &t.url, None).await);
            }
            for l in &lists {
                let td = *target.entry(stream).or_insert(l.target_duration);
                assert_eq!(
                    l.target_duration, td,
                    "{stream}: target duration changed\n{}",
                    l.text
                );
            }
            let reference = &lists[0];
            first
                .entry(stream)
                .or_insert((reference.media_sequence, reference.discontinuity_sequence));
            last.insert(
                stream,
                (reference.media_sequence, reference.discontinuity_sequence),
            );
            for i in 0..ts.len() {
                for j in i + 1..ts.len() {
                    if !cut_alike(&ts[i], &ts[j]) {
                        continue;
                    }
                    pairs += usize::from(step == 0);
                    let (a, b) = (&lists[i], &lists[j]);
                    let what =
                        format!("{stream}: {} and {} at step {step}", ts[i].name, ts[j].name);
                    assert_eq!(
                        a.media_sequence, b.media_sequence,
                        "{what}\n{}\n{}",
                        a.text, b.text
                    );
                    assert_eq!(a.discontinuity_sequence, b.discontinuity_sequence, "{what}");
                    assert_eq!(
                        a.segments.len(),
                        b.segments.len(),
                        "{what}\n{}\n{}",
                        a.text,
                        b.text
                    );
                    for (x, y) in a.segments.iter().zip(&b.segments) {
                        assert_eq!(x.dsn, y.dsn, "{what}");
                        assert!(
                            (x.start_ms - y.start_ms).abs() <= 1.0,
                            "{what}: {x:?} {y:?}"
                        );
                        assert!(
                            (x.duration - y.duration).abs() <= 0.001,
                            "{what}: {x:?} {y:?}"
                        );
                    }
                }
            }
        }
    }
    // hi/lo of ff_demux, ff_ts_single and ff_pdt_ads at least.
    assert!(pairs >= 3, "only {pairs} pairs of variants cut alike");
    for (stream, (msn0, dsn0)) in &first {
        let (msn1, dsn1) = last[stream];
        let n = infos[stream][0].durations.len() as u64;
        assert!(
            msn1 - msn0 >= 2 * n && dsn1 - dsn0 >= 2,
            "{stream}: media sequence {msn0} → {msn1}, discontinuity sequence {dsn0} → {dsn1}: not two loops"
        );
    }
}

/// Renditions (demuxed audio, subtitles) and every other track list the
/// reference variant's span, within one segment at each end, with the same
/// loop playing in the middle of the window; 100 loops later the offsets
/// are the same (no drift) and each track has moved on by exactly 100 of
/// its own loops.
#[tokio::test]
async fn renditions_list_the_video_span_without_drift() {
    let streams = [
        "ff_demux",
        "ff_ac3_mp3",
        "ff_webvtt",
        "shaka_ts",
        "ff_pdt_ads",
    ];
    let (app, _) = app_on("pkg-renditions", &streams).await;
    let mut compared = BTreeSet::new();
    for stream in streams {
        let ts = tracks(&app, stream).await;
        let state = json(&app, &format!("/{stream}.json")).await;
        let loop_ms = state["loop_seconds"].as_f64().unwrap() * 1000.0;
        let hundred = (100.0 * loop_ms).round() as u64;
        // 0.45 s steps over two and a half loops, starting one window in.
        let steps = (2.5 * loop_ms / 450.0) as u64;
        for k in 0..=steps {
            let t = T0 + 12_000 + k * 450;
            let mut offsets = Vec::new();
            for at in [t, t + hundred] {
                let video = live(&app, stream, &ts[0].url, Some(at)).await;
                let mut row = Vec::new();
                for track in &ts[1..] {
                    let r = live(&app, stream, &track.url, Some(at)).await;
                    let what = format!("{stream}/{} against {} at {at}", track.name, ts[0].name);
                    let d_start = r.start_ms() - video.start_ms();
                    let d_end = r.end_ms() - video.end_ms();
                    // One segment: the longest of either track (1 ms for rounding).
                    let longest = track
                        .durations
                        .iter()
                        .chain(&ts[0].durations)
                        .fold(0.0f64, |a, b| a.max(*b));
                    let one_segment = longest * 1000.0 + 1.0;
                    assert!(
                        d_start.abs() <= one_segment && d_end.abs() <= one_segment,
                        "{what}: window starts {d_start} ms and ends {d_end} ms from the video's\n{}\n{}",
                        r.text,
                        video.text
                    );
                    let mid = (video.start_ms() + video.end_ms()) / 2.0;
                    let (v, s) = (video.at(mid).unwrap(), r.at(mid));
                    let s = s.unwrap_or_else(|| panic!("{what}: nothing at {mid}\n{}", r.text));
                    assert_eq!(
                        s.dsn, v.dsn,
                        "{what}: another loop plays at {mid}\n{}\n{}",
                        r.text, video.text
                    );
                    row.push((d_start, d_end, r.media_sequence, r.discontinuity_sequence));
                    compared.insert(format!("{stream}/{}", track.name));
                }
                offsets.push(row);
            }
            for (i, track) in ts[1..].iter().enumerate() {
                let (a, b) = (offsets[0][i], offsets[1][i]);
                let what = format!("{stream}/{} at {t} and 100 loops later", track.name);
                assert!(
                    (a.0 - b.0).abs() <= 1.0 && (a.1 - b.1).abs() <= 1.0,
                    "{what}: offsets {a:?} then {b:?}"
                );
                assert_eq!(
                    b.2 - a.2,
                    100 * track.durations.len() as u64,
                    "{what}: {a:?} {b:?}"
                );
                assert_eq!(b.3 - a.3, 100, "{what}: {a:?} {b:?}");
            }
        }
    }
    for name in [
        "ff_demux/aac",
        "ff_ac3_mp3/ac3",
        "ff_ac3_mp3/mp3",
        "ff_webvtt/fr",
        "shaka_ts/audio",
        "shaka_ts/text",
    ] {
        assert!(compared.contains(name), "{name} not compared: {compared:?}");
    }
}

/// Attribute `key` of an attribute list, without quotes.
fn attr<'a>(list: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("{key}=");
    // The name must start the list or follow `:` or `,` (`ID` is not `X-AD-ID`).
    let at = list.match_indices(&pattern).find_map(|(i, _)| {
        (i == 0 || matches!(list.as_bytes()[i - 1], b':' | b',')).then_some(i + pattern.len())
    })?;
    let rest = &list[at..];
    Some(match rest.strip_prefix('"') {
        Some(q) => &q[..q.find('"')?],
        None => rest.split(',').next().unwrap(),
    })
}

/// An ISO 8601 date-time with a UTC offset (`Z`, `+00:00` or `+0000`, as
/// ffmpeg writes it) in Unix ms.
fn iso_8601_ms(text: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.timestamp_millis() as f64)
}

#[tokio::test]
async fn packager_ad_markers_repeat_on_every_loop() {
    let (app, _) = app_on("pkg-ads", &["ff_pdt_ads"]).await;
    let ts = tracks(&app, "ff_pdt_ads").await;
    let n = ts[0].durations.len() as u64;
    // Loop number → DATERANGE ID, over every variant and instant.
    let mut ids: BTreeMap<u64, String> = BTreeMap::new();
    let mut cue_outs = 0;
    for k in 0..=40u64 {
        let t = T0 + 12_000 + k * 450;
        for track in &ts {
            let l = live(&app, "ff_pdt_ads", &track.url, Some(t)).await;
            // The source's own program date-times give way to the live clock.
            assert!(
                l.end_ms() <= t as f64 + 1.0 && t as f64 - l.end_ms() <= 2_000.0 + 1.0,
                "{}: window ends at {} for an instant of {t}\n{}",
                track.name,
                l.end_ms(),
                l.text
            );
            for s in &l.segments {
                let what = format!("{} at {t}: {}", track.name, s.file);
                let file = s.file.rsplit('/').next().unwrap();
                let cue_out = s
                    .tags
                    .iter()
                    .filter(|g| g.starts_with("#EXT-X-CUE-OUT"))
                    .count();
                let cue_in = s.tags.iter().filter(|g| *g == "#EXT-X-CUE-IN").count();
                let ranges: Vec<&String> = s
                    .tags
                    .iter()
                    .filter(|g| g.starts_with("#EXT-X-DATERANGE:"))
                    .collect();
                if file == "seg_001.ts" {
                    assert_eq!(
                        (cue_out, cue_in, ranges.len()),
                        (1, 0, 1),
                        "{what}: {:?}\n{}",
                        s.tags,
                        l.text
                    );
                    cue_outs += 1;
                    let range = ranges[0];
                    let id = attr(range, "ID").unwrap().to_string();
                    let start = iso_8601_ms(attr(range, "START-DATE").unwrap())
                        .unwrap_or_else(|| panic!("{what}: {range}: START-DATE unreadable"));
                    assert!(
                        (start - s.start_ms).abs() <= 1.0,
                        "{what}: {range} starts {} ms from its segment\n{}",
                        start - s.start_ms,
                        l.text
                    );
                    let known = ids.entry(s.msn / n).or_insert_with(|| id.clone());
                    assert_eq!(*known, id, "{what}: another ID for the same loop");
                } else if file == "seg_002.ts" {
                    assert_eq!(
                        (cue_out, cue_in, ranges.len()),
                        (0, 1, 0),
                        "{what}: {:?}\n{}",
                        s.tags,
                        l.text
                    );
                } else {
                    assert!(s.tags.is_empty(), "{what}: {:?}\n{}", s.tags, l.text);
                }
            }
        }
    }
    assert!(ids.len() >= 3 && cue_outs > ids.len(), "{ids:?}");
    let unique: BTreeSet<&String> = ids.values().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "a DATERANGE ID on two loops: {ids:?}"
    );
}

#[tokio::test]
async fn aes_keys_carry_an_explicit_iv_on_every_loop() {
    let (app, _) = app_on("pkg-aes-iv", ENCRYPTED).await;
    for stream in ENCRYPTED {
        let key_bytes = std::fs::read(fixture(&format!("pkg/{stream}/v/key.bin"))).unwrap();
        let ts = tracks(&app, stream).await;
        let n = ts[0].durations.len() as u64;
        let mut loops = BTreeSet::new();
        for k in 0..=30u64 {
            let t = T0 + 12_000 + k * 450;
            let l = live(&app, stream, &ts[0].url, Some(t)).await;
            for s in &l.segments {
                let what = format!("{stream} at {t}: {}", s.file);
                let key = s
                    .key
                    .as_deref()
                    .unwrap_or_else(|| panic!("{what}: no key\n{}", l.text));
                assert_eq!(attr(key, "METHOD"), Some("AES-128"), "{what}: {key}");
                let uri = resolve(&ts[0].url, attr(key, "URI").unwrap());
                let res = get(&app, &uri).await;
                assert_eq!(res.status(), 200, "{what}: {uri}");
                assert_eq!(res.body().as_ref(), key_bytes.as_slice(), "{what}: {uri}");
                let iv =
                    attr(key, "IV").unwrap_or_else(|| panic!("{what}: no IV in {key}\n{}", l.text));
                let index: u64 = s.file["v/seg_".len()..s.file.len() - 3].parse().unwrap();
                let want = if *stream == "ff_aes_iv" {
                    "0x0f0e0d0c0b0a09080706050403020100".to_string()
                } else {
                    // The source's media sequence number (0 + index).
                    format!("0x{index:032x}")
                };
                assert_eq!(iv.to_ascii_lowercase(), want, "{what}: {key}");
                loops.insert(s.msn / n);
            }
        }
        assert!(loops.len() >= 3, "{stream}: {loops:?}");
    }
}

#[tokio::test]
async fn single_file_segments_are_byte_ranges_served_with_range() {
    let (app, _) = app_on("pkg-ranges", &["ff_ts_single"]).await;
    let ts = tracks(&app, "ff_ts_single").await;
    assert_eq!(ts.len(), 2);
    let mut served = 0;
    for track in &ts {
        let (dir, _) = track_files(&app, "ff_ts_single", track).await;
        let source =
            std::fs::read_to_string(fixture(&format!("pkg/ff_ts_single/{dir}/index.m3u8")))
                .unwrap();
        let ranges: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:"))
            .collect();
        let n = ranges.len() as u64;
        assert_eq!(n, track.durations.len() as u64);
        let media = std::fs::read(fixture(&format!("pkg/ff_ts_single/{dir}/media.ts"))).unwrap();
        let mut loops = BTreeSet::new();
        for k in 0..=30u64 {
            let t = T0 + 12_000 + k * 450;
            let l = live(&app, "ff_ts_single", &track.url, Some(t)).await;
            assert!(l.text.contains("#EXT-X-VERSION:4\n"), "{}", l.text);
            for s in &l.segments {
                let what = format!("{} at {t}: {}", track.name, s.msn);
                let range = s
                    .byte_range
                    .as_deref()
                    .unwrap_or_else(|| panic!("{what}: no EXT-X-BYTERANGE\n{}", l.text));
                // ffmpeg wrote every range with its offset; so does the live playlist.
                assert_eq!(range, ranges[(s.msn % n) as usize], "{what}");
                loops.insert(s.msn / n);
                if k % 10 != 0 {
                    continue;
                }
                let (len, off) = range.split_once('@').unwrap();
                let (len, off): (usize, usize) = (len.parse().unwrap(), off.parse().unwrap());
                let res = warp::test::request()
                    .path(&s.url)
                    .header("range", format!("bytes={}-{}", off, off + len - 1))
                    .reply(&routes(app.clone()))
                    .await;
                assert_eq!(res.status(), 206, "{what}: {}", s.url);
                assert_eq!(
                    res.headers()["content-range"].to_str().unwrap(),
                    format!("bytes {}-{}/{}", off, off + len - 1, media.len()),
                    "{what}"
                );
                assert_eq!(res.body().as_ref(), &media[off..off + len], "{what}");
                assert_eq!(res.body()[0], 0x47, "{what}: not an MPEG-TS packet");
                served += 1;
            }
        }
        assert!(loops.len() >= 3, "{}: {loops:?}", track.name);
    }
    assert!(served >= 20, "{served}");
}

/// The `MPEGTS` value of a WebVTT file's `X-TIMESTAMP-MAP` (0 without one,
/// as RFC 8216bis 3.1.4 reads it), checking it maps `LOCAL` 0.
fn vtt_mpegts(body: &str) -> u64 {
    let Some(map) = body.lines().find(|l| l.starts_with("X-TIMESTAMP-MAP=")) else {
        return 0;
    };
    assert!(map.contains("LOCAL:00:00:00.000"), "{map}");
    let value = map
        .split(['=', ','])
        .find_map(|kv| kv.strip_prefix("MPEGTS:"));
    value.unwrap_or_else(|| panic!("{map}")).parse().unwrap()
}

/// PTS of the first PES of an MPEG-TS segment.
fn first_pts(ts: &[u8]) -> u64 {
    let (pes, _) = crate::restamp::timestamps(ts);
    pes.first().expect("a PES with a PTS").1
}

#[tokio::test]
async fn webvtt_stays_on_the_media_clock_with_continuous_timestamps() {
    const WRAP: u64 = 1 << 33;
    let (app, _clock) = app_on("webvtt_continuous", &["ff_webvtt"]).await;
    let dir = fixture("pkg/ff_webvtt");
    // How far continuous mode moves the video of segment g (3 per loop).
    let mut video_offsets = BTreeMap::new();
    for g in [0u64, 1, 3, 5, 6, 3001] {
        let i = g % 3;
        let url = format!("/ts=continuous/g={g}/ff_webvtt/av/seg_00{i}.ts");
        let served = get(&app, &url).await;
        assert_eq!(served.status(), 200, "{url}");
        let source = std::fs::read(dir.join(format!("av/seg_00{i}.ts"))).unwrap();
        let offset = (first_pts(served.body()) + WRAP - first_pts(&source)) % WRAP;
        video_offsets.insert(g, offset);

        // Its subtitles (cut alike) move by as much: cue and picture keep
        // the relation the source gave them.
        let url = format!("/ts=continuous/g={g}/ff_webvtt/av/index{i}.vtt");
        let vtt = get(&app, &url).await;
        assert_eq!(vtt.status(), 200, "{url}");
        let source_vtt = std::fs::read_to_string(dir.join(format!("av/index{i}.vtt"))).unwrap();
        let body = text(&vtt);
        assert_eq!(
            (vtt_mpegts(&body) + WRAP - vtt_mpegts(&source_vtt)) % WRAP,
            offset,
            "{url}:\n{body}"
        );
        // Cues are untouched: the file is the source plus one header line.
        let cues = |t: &str| {
            t.lines()
                .filter(|l| !l.starts_with("X-TIMESTAMP-MAP="))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(cues(&body), cues(&source_vtt), "{url}");
        // The same URL, the same bytes.
        assert_eq!(get(&app, &url).await.body(), vtt.body(), "{url}");
        // With source timestamps the file is served as it is.
        let url = format!("/ts=source/g={g}/ff_webvtt/av/index{i}.vtt");
        assert_eq!(text(&get(&app, &url).await), source_vtt, "{url}");
    }
    assert_ne!(video_offsets[&0], video_offsets[&3], "loops move by a loop");

    // The French track is cut in 3 s segments (2 a loop) against 2 s video
    // segments: it moves with the video segment playing in its middle.
    for (g, video_g) in [(0u64, 0u64), (1, 2), (2, 3), (2001, 3002)] {
        let url = format!("/ts=continuous/g={g}/ff_webvtt/fr/index{}.vtt", g % 2);
        let vtt = get(&app, &url).await;
        assert_eq!(vtt.status(), 200, "{url}");
        let expected = match video_offsets.get(&video_g) {
            Some(&o) => o,
            None => {
                let i = video_g % 3;
                let served = get(
                    &app,
                    &format!("/ts=continuous/g={video_g}/ff_webvtt/av/seg_00{i}.ts"),
                )
                .await;
                let source = std::fs::read(dir.join(format!("av/seg_00{i}.ts"))).unwrap();
                (first_pts(served.body()) + WRAP - first_pts(&source)) % WRAP
            }
        };
        assert_eq!(vtt_mpegts(&text(&vtt)), expected, "{url}");
    }
}
