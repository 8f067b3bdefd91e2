//! Low-latency HLS through the routes, on a clock the tests move (no
//! sleeps): the LL rules over a long poll, blocking reloads and their
//! limits, preload-hinted parts, delta updates, and parts that decode on
//! their own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pseudolive::clock::ManualClock;
use pseudolive::http::App;
use pseudolive::library::{Library, LibraryConfig};
use pseudolive::probe::{ProbeMode, Prober};
use pseudolive::ticks::Ticks;

use crate::util::{body, get, make_stream, make_stream_all, temp_dir};

/// The timeline's zero (the epoch, back-dated by one window).
const EPOCH_MS: u64 = 1_800_000_000_000;

/// A library built by `build`, with a fixed epoch, on a clock the test moves
/// (starting one minute after the epoch).
async fn ll_app(name: &str, build: impl FnOnce(&std::path::Path)) -> (Arc<App>, Arc<ManualClock>) {
    let root = temp_dir(name).join("static");
    std::fs::create_dir_all(&root).unwrap();
    build(&root);
    let library = Library::new(LibraryConfig {
        root,
        window: 6,
        epoch_unix: Some(Ticks::from_ms(EPOCH_MS)),
        prober: Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        },
    });
    library.rescan().unwrap();
    for slot in library.slots() {
        slot.settled(Duration::from_secs(30)).await;
    }
    let clock = Arc::new(ManualClock::new(Ticks::from_ms(EPOCH_MS + 60_000)));
    let app = App::with_clock(library, Duration::from_secs(5), clock.clone());
    (app, clock)
}

/// Two variants of 5 × 2 s muxed MPEG-TS at 25 fps.
fn ts_stream(root: &std::path::Path) {
    make_stream(root, "s", &["lo", "hi"], "av25");
}

#[derive(Debug, Clone, PartialEq)]
struct Part {
    uri: String,
    duration: f64,
    independent: bool,
}

#[derive(Debug, Clone)]
struct Segment {
    msn: u64,
    extinf: f64,
    parts: Vec<Part>,
}

/// A low-latency media playlist, read line by line.
#[derive(Debug, Clone)]
struct LlPlaylist {
    server_control: String,
    part_target: Option<f64>,
    target_duration: f64,
    skipped: u64,
    segments: Vec<Segment>,
    /// The segment in progress and its parts so far.
    partial: (u64, Vec<Part>),
    hints: Vec<String>,
    reports: Vec<(String, u64, Option<u64>)>,
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    let rest = &line[at..];
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split('"').next();
    }
    rest.split(',').next()
}

fn parse_ll(text: &str) -> LlPlaylist {
    let mut pl = LlPlaylist {
        server_control: String::new(),
        part_target: None,
        target_duration: 0.0,
        skipped: 0,
        segments: Vec::new(),
        partial: (0, Vec::new()),
        hints: Vec::new(),
        reports: Vec::new(),
    };
    let mut msn = 0;
    let mut pending = Vec::new();
    let mut extinf = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-SERVER-CONTROL:") {
            pl.server_control = v.to_string();
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART-INF:") {
            pl.part_target = attr(v, "PART-TARGET").map(|v| v.parse().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            pl.target_duration = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("#EXT-X-SKIP:") {
            pl.skipped = attr(v, "SKIPPED-SEGMENTS").unwrap().parse().unwrap();
            msn += pl.skipped;
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
            pending.push(Part {
                uri: attr(v, "URI").unwrap().to_string(),
                duration: attr(v, "DURATION").unwrap().parse().unwrap(),
                independent: attr(v, "INDEPENDENT") == Some("YES"),
            });
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            extinf = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if let Some(v) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            assert_eq!(attr(v, "TYPE"), Some("PART"));
            pl.hints.push(attr(v, "URI").unwrap().to_string());
        } else if let Some(v) = line.strip_prefix("#EXT-X-RENDITION-REPORT:") {
            pl.reports.push((
                attr(v, "URI").unwrap().to_string(),
                attr(v, "LAST-MSN").unwrap().parse().unwrap(),
                attr(v, "LAST-PART").map(|p| p.parse().unwrap()),
            ));
        } else if !line.starts_with('#') && !line.is_empty() {
            pl.segments.push(Segment {
                msn,
                extinf: extinf.take().expect("EXTINF before the URI"),
                parts: std::mem::take(&mut pending),
            });
            msn += 1;
        }
    }
    pl.partial = (msn, pending);
    pl
}

/// `g=<msn>/part=<p>/…` of a part URI.
fn part_pos(uri: &str) -> (u64, u64) {
    let g = uri.split("g=").nth(1).unwrap().split('/').next().unwrap();
    let p = uri
        .split("part=")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    (g.parse().unwrap(), p.parse().unwrap())
}

/// The LL rules one playlist must meet on its own (RFC 8216bis 4.4.3.7,
/// 4.4.3.8, 4.4.4.9, 4.4.5.3, 6.2.2).
fn check_rules(pl: &LlPlaylist) -> Result<(), String> {
    let pt = pl.part_target.ok_or("no EXT-X-PART-INF")?;
    let td = pl.target_duration;
    let sc = &pl.server_control;
    let num = |name: &str| -> Result<f64, String> {
        attr(sc, name)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("SERVER-CONTROL without {name}: {sc}"))
    };
    if attr(sc, "CAN-BLOCK-RELOAD") != Some("YES") {
        return Err(format!("no CAN-BLOCK-RELOAD=YES: {sc}"));
    }
    if num("PART-HOLD-BACK")? < 3.0 * pt - 1e-9 {
        return Err(format!("PART-HOLD-BACK below 3 × PART-TARGET: {sc}"));
    }
    if num("CAN-SKIP-UNTIL")? < 6.0 * td - 1e-9 {
        return Err(format!("CAN-SKIP-UNTIL below 6 × TARGETDURATION: {sc}"));
    }
    let complete = pl.segments.iter().map(|s| (s.msn, &s.parts[..], true));
    let partial = std::iter::once((pl.partial.0, &pl.partial.1[..], false));
    for (msn, parts, complete) in complete.chain(partial) {
        for (p, part) in parts.iter().enumerate() {
            if part_pos(&part.uri) != (msn, p as u64) {
                return Err(format!("part {p} of {msn} is named {}", part.uri));
            }
            if part.duration > pt + 1e-9 {
                return Err(format!("part {} lasts {} > {pt}", part.uri, part.duration));
            }
            let last_of_parent = complete && p + 1 == parts.len();
            if part.duration < 0.85 * pt - 1e-9 && !part.independent && !last_of_parent {
                return Err(format!(
                    "part {} lasts {} < 85 % of {pt}",
                    part.uri, part.duration
                ));
            }
        }
    }
    // Complete parents: the parts add up to the EXTINF.
    for s in pl.segments.iter().filter(|s| !s.parts.is_empty()) {
        let sum: f64 = s.parts.iter().map(|p| p.duration).sum();
        if (sum - s.extinf).abs() > 0.001 {
            return Err(format!(
                "parts of {} add up to {sum}, EXTINF {}",
                s.msn, s.extinf
            ));
        }
    }
    // Parts for the last three target durations: none before, all after.
    let end: f64 = pl.segments.iter().map(|s| s.extinf).sum::<f64>()
        + pl.partial.1.iter().map(|p| p.duration).sum::<f64>();
    let mut t = 0.0;
    for s in &pl.segments {
        let (start, stop) = (t, t + s.extinf);
        t = stop;
        if stop <= end - 3.0 * td - 1e-6 && !s.parts.is_empty() {
            return Err(format!(
                "segment {} ended {} s before the end and has parts",
                s.msn,
                end - stop
            ));
        }
        if start >= end - 3.0 * td + 1e-6 && s.parts.is_empty() {
            return Err(format!(
                "segment {} is within 3 target durations and has no parts",
                s.msn
            ));
        }
    }
    let [hint] = &pl.hints[..] else {
        return Err(format!("{} preload hints", pl.hints.len()));
    };
    if part_pos(hint) != (pl.partial.0, pl.partial.1.len() as u64) {
        return Err(format!("the hint {hint} is not the next part"));
    }
    Ok(())
}

fn ll_url(track: &str, query: &str) -> String {
    format!("/ll=0.5/s_{track}.m3u8{query}")
}

#[tokio::test]
async fn ll_rules_hold_over_a_long_poll_across_loop_points() {
    let (app, clock) = ll_app("ll-poll", ts_stream).await;
    let mut durations: HashMap<String, f64> = HashMap::new();
    let mut hinted: Vec<(String, u64)> = Vec::new();
    let mut last_new_part = (0u64, (0u64, 0u64));
    let mut newest_seen = (0, 0);
    // 30 s in steps of 0.1 s: three loop points of the 10 s loop.
    for step in 0..300u64 {
        let mut playlists = Vec::new();
        for track in ["lo", "hi"] {
            let res = get(&app, &ll_url(track, "")).await;
            assert_eq!(res.status(), 200, "{}", body(&res));
            assert_eq!(res.headers()["cache-control"], "no-cache");
            let pl = parse_ll(&body(&res));
            check_rules(&pl)
                .unwrap_or_else(|e| panic!("step {step}, {track}: {e}\n{}", body(&res)));
            playlists.push(pl);
        }
        // Identical server control; each reports the other's newest part.
        assert_eq!(playlists[0].server_control, playlists[1].server_control);
        for (me, other) in [(0, 1), (1, 0)] {
            let o = &playlists[other];
            let newest = match o.partial.1.len() {
                0 => (
                    o.partial.0 - 1,
                    o.segments.last().unwrap().parts.len() as u64 - 1,
                ),
                n => (o.partial.0, n as u64 - 1),
            };
            let [(uri, msn, part)] = &playlists[me].reports[..] else {
                panic!("reports: {:?}", playlists[me].reports);
            };
            assert_eq!(uri, if other == 0 { "s_lo.m3u8" } else { "s_hi.m3u8" });
            assert_eq!((*msn, *part), (newest.0, Some(newest.1)), "step {step}");
        }
        // A part keeps its duration from poll to poll.
        for pl in &playlists {
            for part in pl
                .segments
                .iter()
                .flat_map(|s| &s.parts)
                .chain(&pl.partial.1)
            {
                let d = durations.entry(part.uri.clone()).or_insert(part.duration);
                assert_eq!(*d, part.duration, "{}", part.uri);
            }
        }
        // A hint names a part that is listed later.
        hinted.push((playlists[0].hints[0].clone(), step));
        let listed: Vec<&Part> = playlists[0]
            .segments
            .iter()
            .flat_map(|s| &s.parts)
            .chain(&playlists[0].partial.1)
            .collect();
        hinted.retain(|(uri, at)| {
            let now_listed = listed.iter().any(|p| &p.uri == uri);
            assert!(
                now_listed || step - at <= 6,
                "hint {uri} of step {at} never listed"
            );
            !now_listed
        });
        // A new part at least every part target (0.5 s = 5 steps).
        let newest = part_pos(&listed.last().unwrap().uri);
        if newest != newest_seen {
            newest_seen = newest;
            last_new_part = (step, newest);
        }
        assert!(
            step - last_new_part.0 <= 5,
            "no new part since step {}",
            last_new_part.0
        );
        clock.advance(Ticks::from_ms(100));
    }
    assert!(durations.len() > 100, "{} parts seen", durations.len());
}

#[tokio::test]
async fn blocking_reload_holds_until_the_part_exists() {
    let (app, clock) = ll_app("ll-block", ts_stream).await;
    let pl = parse_ll(&body(&get(&app, &ll_url("lo", "")).await));
    let (msn, part) = part_pos(&pl.hints[0]);
    let url = ll_url("lo", &format!("?_HLS_msn={msn}&_HLS_part={part}"));
    let held = tokio::spawn({
        let app = app.clone();
        async move { get(&app, &url).await }
    });
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!held.is_finished(), "answered before the part existed");
    // Half a part target later the part has ended (parts are at most 0.5 s).
    clock.advance(Ticks::from_ms(500));
    let res = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("released")
        .unwrap();
    assert_eq!(res.status(), 200);
    // The answer to a blocking request never changes: cacheable for 6 TD.
    assert_eq!(res.headers()["cache-control"], "public, max-age=12");
    let after = parse_ll(&body(&res));
    let listed: Vec<(u64, u64)> = after
        .segments
        .iter()
        .flat_map(|s| &s.parts)
        .chain(&after.partial.1)
        .map(|p| part_pos(&p.uri))
        .collect();
    assert!(listed.contains(&(msn, part)), "{listed:?}");
    // Asking for what exists answers at once.
    let url = ll_url("lo", &format!("?_HLS_msn={msn}&_HLS_part={part}"));
    assert_eq!(get(&app, &url).await.status(), 200);
    let url = ll_url("lo", &format!("?_HLS_msn={}", msn - 1));
    assert_eq!(get(&app, &url).await.status(), 200);
}

#[tokio::test]
async fn blocking_reload_limits() {
    let (app, _clock) = ll_app("ll-limits", ts_stream).await;
    let pl = parse_ll(&body(&get(&app, &ll_url("lo", "")).await));
    let last = pl.segments.last().unwrap().msn;
    let status = |q: String| {
        let app = app.clone();
        async move { get(&app, &ll_url("lo", &q)).await.status() }
    };
    assert_eq!(status("?_HLS_part=1".into()).await, 400);
    // Only playlists read the directives: a segment ignores them.
    let seg = get(&app, "/ll=0.5/s/lo/seg_000.ts?_HLS_part=1&_HLS_msn=x").await;
    assert_eq!(seg.status(), 200);
    assert_eq!(status(format!("?_HLS_msn={}", last + 3)).await, 400);
    assert_eq!(status("?_HLS_msn=x".into()).await, 400);
    // 0.5 s parts: at most 6 parts past the newest one.
    let (msn, part) = part_pos(&pl.hints[0]);
    let far = (0..6).fold((msn, part), |(m, p), _| {
        if p + 1 >= 4 { (m + 1, 0) } else { (m, p + 1) }
    });
    let res = get(
        &app,
        &ll_url(
            "lo",
            &format!("?_HLS_msn={}&_HLS_part={}", far.0 + 1, far.1),
        ),
    )
    .await;
    assert_eq!(res.status(), 400, "{}", body(&res));
    // Without ll=, the directives are ignored.
    let res = get(&app, &format!("/s_lo.m3u8?_HLS_msn={}", last + 1)).await;
    assert_eq!(res.status(), 200);
    assert!(!body(&res).contains("#EXT-X-PART"));
}

#[tokio::test]
async fn held_requests_are_let_go_at_shutdown() {
    let (app, _clock) = ll_app("ll-shutdown", ts_stream).await;
    let pl = parse_ll(&body(&get(&app, &ll_url("lo", "")).await));
    let (msn, part) = part_pos(&pl.hints[0]);
    let url = ll_url("lo", &format!("?_HLS_msn={msn}&_HLS_part={part}"));
    let held = tokio::spawn({
        let app = app.clone();
        async move { get(&app, &url).await }
    });
    tokio::task::yield_now().await;
    app.shutdown.cancel();
    let res = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("let go")
        .unwrap();
    assert_eq!(res.status(), 503);
}

#[tokio::test]
async fn the_hinted_part_is_held_and_later_parts_are_not_found() {
    let (app, clock) = ll_app("ll-hint", ts_stream).await;
    let pl = parse_ll(&body(&get(&app, &ll_url("lo", "")).await));
    let hint = format!("/ll=0.5/{}", pl.hints[0]);
    let (msn, part) = part_pos(&hint);
    let later = hint.replace(&format!("part={part}/"), &format!("part={}/", part + 1));
    let res = get(&app, &later).await;
    assert_eq!(res.status(), 404, "{}", body(&res));
    let held = tokio::spawn({
        let app = app.clone();
        let hint = hint.clone();
        async move { get(&app, &hint).await }
    });
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert!(!held.is_finished());
    clock.advance(Ticks::from_ms(500));
    let res = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("released")
        .unwrap();
    assert_eq!(res.status(), 200, "{}", body(&res));
    assert_eq!(res.headers()["content-type"], "video/mp2t");
    // A standalone MPEG-TS: a PAT among its first packets (ffmpeg puts its
    // SDT first at the start of a segment).
    let bytes = res.body();
    let pid = |i: usize| ((bytes[i * 188 + 1] as u16 & 0x1f) << 8) | bytes[i * 188 + 2] as u16;
    assert!(bytes.len() % 188 == 0 && bytes[0] == 0x47);
    assert!((0..3).any(|i| pid(i) == 0), "no PAT in the first packets");
    // The same part again: the same bytes.
    assert_eq!(get(&app, &hint).await.body(), bytes);
    assert!(msn > 0);
    // Parts are served under ll= only.
    let plain = hint.replace("/ll=0.5/", "/");
    assert_eq!(get(&app, &plain).await.status(), 404);
}

#[tokio::test]
async fn delta_updates_skip_what_is_older_than_the_skip_boundary() {
    let (app, _clock) = ll_app("ll-skip", ts_stream).await;
    // 20 segments of 2 s; the skip boundary is 12 s: the oldest 14 go.
    let full = parse_ll(&body(&get(&app, "/window=20/ll=0.5/s_lo.m3u8").await));
    let delta_res = get(&app, "/window=20/ll=0.5/s_lo.m3u8?_HLS_skip=YES").await;
    let delta = parse_ll(&body(&delta_res));
    assert_eq!(full.segments.len(), 20);
    assert!(
        delta.skipped >= 13 && delta.skipped <= 15,
        "skipped {}",
        delta.skipped
    );
    assert_eq!(
        delta.skipped as usize + delta.segments.len(),
        full.segments.len()
    );
    assert_eq!(
        delta.segments.last().unwrap().msn,
        full.segments.last().unwrap().msn
    );
    check_rules(&delta).unwrap();
    // The first segment after the skip carries a date and (after a loop
    // point) nothing refers to the skipped ones.
    let text = body(&delta_res);
    let after_skip = text.split("#EXT-X-SKIP").nth(1).unwrap();
    assert!(after_skip.contains("#EXT-X-PROGRAM-DATE-TIME:"));
}

#[tokio::test]
async fn tracks_that_cannot_be_cut_are_listed_by_whole_segments() {
    let (app, _clock) = ll_app("ll-vtt", |root| {
        crate::util::copy_stream(root, "s", "pkg/ff_webvtt");
    })
    .await;
    let master = body(&get(&app, "/ll=0.5/s.m3u8").await);
    let uris: Vec<&str> = master
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .chain(master.lines().filter_map(|l| attr(l, "URI")))
        .collect();
    let mut controls = Vec::new();
    let mut without_parts = 0;
    for uri in uris {
        let res = get(&app, &format!("/ll=0.5/{uri}")).await;
        assert_eq!(res.status(), 200, "{uri}: {}", body(&res));
        let text = body(&res);
        let pl = parse_ll(&text);
        controls.push(pl.server_control.clone());
        if pl.part_target.is_none() {
            without_parts += 1;
            assert!(
                !text.contains("#EXT-X-PART:") && !text.contains("PRELOAD-HINT"),
                "{text}"
            );
        } else {
            check_rules(&pl).unwrap();
        }
    }
    assert_eq!(without_parts, 2, "the two subtitle renditions only");
    assert!(controls.windows(2).all(|w| w[0] == w[1]), "{controls:?}");
}

/// Writes the parts of one segment fetched over the routes, and asks
/// ffprobe to read each on its own (with the init section for fMP4).
async fn parts_decode(app: &Arc<App>, track: &str, init: Option<&str>) -> usize {
    let pl = parse_ll(&body(&get(app, &format!("/ll=0.5/{track}")).await));
    let seg = pl
        .segments
        .iter()
        .rev()
        .find(|s| !s.parts.is_empty())
        .unwrap();
    let dir = temp_dir(&format!("ll-decode-{}", track.replace(['/', '.'], "_")));
    let init_bytes = match init {
        Some(uri) => get(app, &format!("/ll=0.5/{uri}")).await.body().to_vec(),
        None => Vec::new(),
    };
    for (p, part) in seg.parts.iter().enumerate() {
        let res = get(app, &format!("/ll=0.5/{}", part.uri)).await;
        assert_eq!(res.status(), 200, "{}", part.uri);
        let file = dir.join(format!("part{p}"));
        let mut bytes = init_bytes.clone();
        bytes.extend_from_slice(res.body());
        std::fs::write(&file, bytes).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "packet=pts_time",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output()
            .expect("ffprobe runs");
        // A part that starts with an independent frame decodes without an
        // error; the others need the frames before them, but still read.
        let errors = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {errors}", part.uri);
        assert!(
            !part.independent || errors.trim().is_empty(),
            "{}: {errors}",
            part.uri
        );
        let packets = String::from_utf8_lossy(&out.stdout).lines().count();
        assert!(packets > 0, "{}: no packets", part.uri);
    }
    seg.parts.len()
}

#[tokio::test]
async fn every_part_decodes_on_its_own() {
    let (app, _clock) = ll_app("ll-decode", |root| {
        ts_stream(root);
        make_stream_all(root, "f", &["v"], "fmp4_avc");
    })
    .await;
    assert!(parts_decode(&app, "s_lo.m3u8", None).await >= 4);
    let text = body(&get(&app, "/ll=0.5/f_v.m3u8").await);
    let init = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:").and_then(|l| attr(l, "URI")))
        .unwrap()
        .to_string();
    assert!(parts_decode(&app, "f_v.m3u8", Some(&init)).await >= 2);
}

#[tokio::test]
async fn delta_updates_v2_drop_skipped_date_ranges_and_name_the_removed_ones() {
    let (app, _clock) = ll_app("ll-skip-v2", |root| {
        crate::util::copy_stream(root, "ads", "pkg/ff_pdt_ads");
    })
    .await;
    let url = "/window=20/ll=0.5/ads_lo.m3u8";
    let full = body(&get(&app, url).await);
    assert!(full.contains(",CAN-SKIP-DATERANGES=YES,"), "{full}");
    assert!(full.contains("#EXT-X-VERSION:10\n"), "{full}");
    let ids = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("#EXT-X-DATERANGE:"))
            .map(|l| attr(l, "ID").unwrap().to_string())
            .collect()
    };
    let yes = body(&get(&app, &format!("{url}?_HLS_skip=YES")).await);
    let v2 = body(&get(&app, &format!("{url}?_HLS_skip=v2")).await);
    let skipped = parse_ll(&v2).skipped;
    assert!(skipped >= 13, "{v2}");
    // YES keeps every date range; v2 only those of the segments it lists.
    assert_eq!(ids(&yes), ids(&full));
    let listed_after_skip = parse_ll(&v2).segments.len();
    assert!(ids(&v2).len() < ids(&full).len(), "{v2}");
    assert!(ids(&v2).len() <= listed_after_skip.div_ceil(3) + 1);
    // The removed ones: loops whose segment left the window recently, none
    // of them still in the playlist.
    let skip_line = v2.lines().find(|l| l.starts_with("#EXT-X-SKIP:")).unwrap();
    let removed =
        attr(skip_line, "RECENTLY-REMOVED-DATERANGES").expect("v2 names removed date ranges");
    let removed: Vec<&str> = removed.split('\t').filter(|id| !id.is_empty()).collect();
    // At this instant one date range left the window within half the skip boundary.
    assert_eq!(removed.len(), 1, "{skip_line}");
    for id in removed {
        assert!(id.starts_with("break-1-"), "{id}");
        assert!(
            !ids(&full).contains(&id.to_string()),
            "{id} is still listed"
        );
    }
}

#[tokio::test]
async fn parts_of_byte_range_segments_decode() {
    let (app, _clock) = ll_app("ll-ranges", |root| {
        crate::util::copy_stream(root, "single", "pkg/ff_ts_single");
        make_stream_all(root, "cmaf", &["v"], "fmp4_single");
    })
    .await;
    assert!(parts_decode(&app, "single_lo.m3u8", None).await >= 3);
    let text = body(&get(&app, "/ll=0.5/cmaf_v.m3u8").await);
    assert!(text.contains("#EXT-X-PART:"), "{text}");
    let map = text.lines().find(|l| l.starts_with("#EXT-X-MAP:")).unwrap();
    // The init section is a byte range of the same file: fetch just it.
    let uri = attr(map, "URI").unwrap();
    let range = attr(map, "BYTERANGE").unwrap();
    let (len, off): (usize, usize) = {
        let (l, o) = range.split_once('@').unwrap();
        (l.parse().unwrap(), o.parse().unwrap())
    };
    let whole = get(&app, &format!("/ll=0.5/{uri}")).await;
    let init = whole.body()[off..off + len].to_vec();
    let pl = parse_ll(&text);
    let seg = pl
        .segments
        .iter()
        .rev()
        .find(|s| !s.parts.is_empty())
        .unwrap();
    let dir = temp_dir("ll-ranges-cmaf");
    for part in &seg.parts {
        let res = get(&app, &format!("/ll=0.5/{}", part.uri)).await;
        assert_eq!(res.status(), 200, "{}", part.uri);
        let mut bytes = init.clone();
        bytes.extend_from_slice(res.body());
        let file = dir.join("part.mp4");
        std::fs::write(&file, bytes).unwrap();
        let out = std::process::Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "packet=pts_time",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "{}: no packets", part.uri);
    }
}

/// Every part of segments `gs` of `/lo` (av25: five segments a loop),
/// fetched under `prefix`, concatenated.
async fn parts_in_a_row(app: &Arc<App>, prefix: &str, gs: std::ops::Range<u64>) -> Vec<u8> {
    let mut all = Vec::new();
    for g in gs {
        for p in 0.. {
            let url = format!("{prefix}/g={g}/part={p}/s/lo/seg_{:03}.ts", g % 5);
            let res = get(app, &url).await;
            if res.status() == 404 {
                assert!(p >= 4, "{url}: {}", body(&res));
                break;
            }
            assert_eq!(res.status(), 200, "{url}: {}", body(&res));
            all.extend_from_slice(res.body());
        }
    }
    all
}

/// Decode timestamps of each stream of an MPEG-TS file, by ffprobe.
fn dts_by_stream(bytes: &[u8], name: &str) -> HashMap<String, Vec<f64>> {
    let file = temp_dir(name).join("parts.ts");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,dts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut by: HashMap<String, Vec<f64>> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((stream, dts)) = line.split_once(',') else {
            continue;
        };
        if let Ok(dts) = dts.trim_end_matches(',').parse() {
            by.entry(stream.to_string()).or_default().push(dts);
        }
    }
    by
}

#[tokio::test]
async fn continuous_parts_keep_timestamps_rising_across_a_loop_point() {
    let (app, _clock) = ll_app("ll-continuous", ts_stream).await;
    // Segments 8, 9 | 10, 11: a loop point between 9 and 10.
    let continuous = parts_in_a_row(&app, "/ll=0.5/ts=continuous", 8..12).await;
    let by = dts_by_stream(&continuous, "ll-continuous-c");
    assert_eq!(by.len(), 2, "video and audio");
    for (stream, dts) in &by {
        assert!(dts.len() > 50, "{stream}: {} packets", dts.len());
        let back = dts.windows(2).find(|w| w[1] <= w[0]);
        assert!(
            back.is_none(),
            "stream {stream}: decode time goes back {back:?}"
        );
        let gap = dts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        // At most one frame (40 ms of video at 25 fps, 21 ms of AAC at 48 kHz).
        assert!(gap < 0.045, "stream {stream}: a gap of {gap} s");
    }
    // The same parts with the source's timestamps restart at the loop point.
    let source = parts_in_a_row(&app, "/ll=0.5", 8..12).await;
    let by = dts_by_stream(&source, "ll-continuous-s");
    assert!(by.values().any(|d| d.windows(2).any(|w| w[1] < w[0])));
}

/// The app served on a real socket by the accept loop; the server task
/// ends when `stop` is sent (then connections get an hour to drain).
async fn serve_on_socket(
    app: &Arc<App>,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    use pseudolive::http::server;
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = server::Limits {
        drain: Duration::from_secs(3600),
        ..server::Limits::default()
    };
    let routes = pseudolive::http::routes(app.clone());
    let task = tokio::spawn(server::serve(listener, routes, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop, task)
}

/// Waits (yielding, the clock does not move) until stream `s` holds a request.
async fn until_held(app: &Arc<App>) {
    let Some(pseudolive::library::StreamState::Ready(live)) =
        app.library.get("s").map(|s| s.state())
    else {
        panic!("stream s not ready");
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while live.waits.timers() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the request is held");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_gets_its_held_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (app, clock) = ll_app("ll-half-close", ts_stream).await;
    let pl = parse_ll(&body(&get(&app, &ll_url("lo", "")).await));
    let (msn, part) = part_pos(&pl.hints[0]);
    let (addr, stop, server) = serve_on_socket(&app).await;
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let url = ll_url("lo", &format!("?_HLS_msn={msn}&_HLS_part={part}"));
    client
        .write_all(format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // Nothing more to send: the client shuts its side down and waits.
    client.shutdown().await.unwrap();
    until_held(&app).await;
    clock.advance(Ticks::from_ms(500));
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains(&format!("part={part}/")), "{answer}");
    let _ = stop.send(());
    server.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_request_whose_client_left_ends_by_when_its_answer_is_due() {
    use tokio::io::AsyncWriteExt;
    let (app, clock) = ll_app("ll-client-left", ts_stream).await;
    let pl = parse_ll(&body(&get(&app, &ll_url("lo", "")).await));
    let (msn, part) = part_pos(&pl.hints[0]);
    let (addr, stop, server) = serve_on_socket(&app).await;
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let url = ll_url("lo", &format!("?_HLS_msn={msn}&_HLS_part={part}"));
    client
        .write_all(format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    until_held(&app).await;
    drop(client);
    // The server stops accepting and drains (for up to an hour): the held
    // request is not read while in flight, so it is let go at the latest
    // when the part exists and its answer finds no client.
    let _ = stop.send(());
    clock.advance(Ticks::from_ms(500));
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the connection ended once the answer was due")
        .unwrap();
}

#[tokio::test]
async fn rendition_reports_follow_the_library_names() {
    // Stream a's track b_c is linked as a_b_c.m3u8 while no stream a_b
    // claims that name, and inside its stream once one does.
    let (app, _clock) = ll_app("ll-report-names", |root| {
        make_stream(root, "a", &["b_c", "x"], "av25");
    })
    .await;
    let report = |text: &str| {
        let pl = parse_ll(text);
        let [(uri, _, _)] = &pl.reports[..] else {
            panic!("reports: {:?}", pl.reports);
        };
        uri.clone()
    };
    let before = report(&body(&get(&app, "/ll=0.5/a_x.m3u8").await));
    assert_eq!(before, "a_b_c.m3u8");
    make_stream(&app.library.config().root, "a_b", &["c"], "av25");
    app.library.rescan().unwrap();
    for slot in app.library.slots() {
        slot.settled(Duration::from_secs(30)).await;
    }
    let after = report(&body(&get(&app, "/ll=0.5/a_x.m3u8").await));
    assert_ne!(after, before);
    assert_eq!(after, "a/b_c.m3u8");
}

/// Every media playlist of the master of stream `s` under `ll=0.5`.
async fn ll_media_playlists(app: &Arc<App>) -> Vec<(String, warp::http::Response<bytes::Bytes>)> {
    let master = body(&get(app, "/ll=0.5/s.m3u8").await);
    let mut uris: Vec<String> = master
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(String::from)
        .chain(
            master
                .lines()
                .filter_map(|l| attr(l, "URI"))
                .map(String::from),
        )
        .collect();
    uris.sort();
    uris.dedup();
    let mut out = Vec::new();
    for uri in uris {
        let res = get(app, &format!("/ll=0.5/{uri}")).await;
        out.push((uri, res));
    }
    out
}

#[tokio::test]
async fn audio_segments_running_a_frame_past_their_duration_have_parts() {
    // Shaka Packager's audio segments hold a frame that starts after the
    // segment's reference duration: it goes into the segment's last part.
    for fixture in ["pkg/shaka_ts", "cmaf_shaka"] {
        let (app, _clock) = ll_app(&format!("ll-{}", fixture.replace('/', "-")), |root| {
            crate::util::copy_stream(root, "s", fixture);
        })
        .await;
        let playlists = ll_media_playlists(&app).await;
        let mut with_parts = 0;
        for (uri, res) in playlists {
            assert_eq!(res.status(), 200, "{fixture} {uri}: {}", body(&res));
            with_parts += usize::from(parse_ll(&body(&res)).part_target.is_some());
        }
        assert_eq!(with_parts, 2, "{fixture}: audio and video");
    }
}

#[tokio::test]
async fn parts_add_up_to_the_extinf_of_tracks_with_their_own_durations() {
    // AC-3 segments of 2.016 s and 1.984 s on the video's 2 s schedule, and
    // Shaka Packager's audio: the parts of a segment last its scheduled
    // duration, and so does its EXTINF.
    for fixture in ["pkg/ff_ac3_mp3", "pkg/shaka_ts", "cmaf_shaka"] {
        let (app, _clock) = ll_app(&format!("ll-own-{}", fixture.replace('/', "-")), |root| {
            crate::util::copy_stream(root, "s", fixture);
        })
        .await;
        for (uri, res) in ll_media_playlists(&app).await {
            let text = body(&res);
            assert_eq!(res.status(), 200, "{fixture} {uri}: {text}");
            let pl = parse_ll(&text);
            if pl.part_target.is_some() {
                check_rules(&pl).unwrap_or_else(|e| panic!("{fixture} {uri}: {e}\n{text}"));
            }
        }
    }
}

#[tokio::test]
async fn a_timeline_that_has_not_started_shows_the_edge_of_its_first_window() {
    // start= 40 s after the clock: the first full window, frozen, with its
    // preload hint naming the part after it.
    let (app, _clock) = ll_app("ll-not-started", ts_stream).await;
    let start = EPOCH_MS / 1000 + 100;
    let url = format!("/start={start}/ll=0.5/s_lo.m3u8");
    let res = get(&app, &url).await;
    let text = body(&res);
    assert_eq!(res.status(), 200, "{text}");
    let pl = parse_ll(&text);
    check_rules(&pl).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // What is listed exists: a blocking reload for it answers at once.
    let last = pl.segments.last().unwrap().msn;
    let res = get(&app, &format!("{url}?_HLS_msn={last}")).await;
    assert_eq!(res.status(), 200, "{}", body(&res));
}
