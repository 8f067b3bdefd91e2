//! Behaviour the README and the live HLS rules promise, at the edges: names
//! that collide across load states, names the URL scheme cannot carry,
//! source playlists under the stream directory, encrypted segments in
//! continuous mode, looped date ranges, a track fitted to the reference clock.

use std::sync::Arc;
use std::time::Duration;

use pseudolive::http::App;
use pseudolive::library::{Library, LibraryConfig, LiveStream, StreamState};
use pseudolive::model::{Segment, Stream, Track, TrackKind, TrackTiming};
use pseudolive::probe::{Method, ProbeMode, Prober};
use pseudolive::ticks::Ticks;

use crate::util::{body, fixture, get, make_stream, parse, resolve, temp_dir};

const S: u64 = 90_000;

/// A library over what `build` writes, every stream settled, on a fixed epoch.
async fn app(
    name: &str,
    mode: ProbeMode,
    build: impl FnOnce(&std::path::Path),
) -> (Arc<App>, std::path::PathBuf) {
    let root = temp_dir(name).join("static");
    std::fs::create_dir_all(&root).unwrap();
    build(&root);
    let library = Library::new(LibraryConfig {
        root: root.clone(),
        window: 6,
        epoch_unix: Some(Ticks::from_ms(1_700_000_000_000)),
        prober: Prober {
            mode,
            ffprobe: None,
        },
    });
    library.rescan().unwrap();
    for slot in library.slots() {
        slot.settled(Duration::from_secs(30)).await;
    }
    (App::new(library, Duration::from_secs(5)), root)
}

/// The URIs a playlist lists (lines and `URI="…"` attributes), resolved against `base`.
fn links(base: &str, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(at) = line.find("URI=\"") {
            let rest = &line[at + 5..];
            out.push(resolve(base, &rest[..rest.find('"').unwrap()]));
        } else if !line.starts_with('#') && !line.is_empty() {
            out.push(resolve(base, line));
        }
    }
    out
}

/// Streams `x` (variant `y_z`) and `x_y` (variant `z`, other media), `x_y` broken.
fn colliding_names_one_broken(root: &std::path::Path) {
    make_stream(root, "x", &["y_z"], "av25");
    make_stream(root, "x_y", &["z"], "av2997");
    std::fs::remove_file(root.join("x_y/z/seg_004.ts")).unwrap();
}

#[tokio::test]
async fn a_failed_stream_does_not_break_the_links_of_another() {
    let (app, _) = app(
        "review-shadow-failed",
        ProbeMode::Native,
        colliding_names_one_broken,
    )
    .await;
    let state = app.library.get("x_y").unwrap().state();
    assert!(matches!(state, StreamState::Failed(_)), "{state:?}");
    let master = body(&get(&app, "/x.m3u8").await);
    let link = links("/x.m3u8", &master).remove(0);
    let res = get(&app, &link).await;
    assert_eq!(
        res.status(),
        200,
        "the master of x links {link}, which answers with x_y's failure: {}",
        body(&res)
    );
}

#[tokio::test]
async fn a_link_a_master_gave_keeps_serving_that_masters_stream() {
    let (app, root) = app(
        "review-shadow-fixed",
        ProbeMode::Native,
        colliding_names_one_broken,
    )
    .await;
    // A player reads the master of x while x_y is failed (or still loading)…
    let master = body(&get(&app, "/x.m3u8").await);
    let link = links("/x.m3u8", &master).remove(0);
    // …then x_y's files are fixed and it loads.
    std::fs::copy(fixture("av2997/seg_004.ts"), root.join("x_y/z/seg_004.ts")).unwrap();
    app.library.rescan().unwrap();
    let state = app
        .library
        .get("x_y")
        .unwrap()
        .settled(Duration::from_secs(30))
        .await;
    assert!(matches!(state, StreamState::Ready(_)), "{state:?}");
    // The player keeps reloading the link it was given.
    let text = body(&get(&app, &link).await);
    let segments: Vec<String> = links(&link, &text);
    assert!(
        !segments.is_empty() && segments.iter().all(|s| s.starts_with("/x/y_z/")),
        "the master of x linked {link}, which now serves another stream's media: {segments:?}"
    );
}

#[tokio::test]
async fn every_track_a_master_links_is_reachable() {
    // Two renditions whose directories and stems repeat are named by their
    // NAME; a NAME may hold any character, a '/' included.
    let (app, _) = app("review-slash-name", ProbeMode::Native, |root| {
        let dir = root.join("lbl");
        for d in ["v", "a/x", "b/x"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
            for f in [
                "index.m3u8",
                "seg_000.ts",
                "seg_001.ts",
                "seg_002.ts",
                "seg_003.ts",
                "seg_004.ts",
            ] {
                std::fs::copy(fixture("av25").join(f), dir.join(d).join(f)).unwrap();
            }
        }
        std::fs::write(
            dir.join("abr.m3u8"),
            "#EXTM3U\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Main/EN\",URI=\"a/x/index.m3u8\"\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Alt\",URI=\"b/x/index.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=100000,AUDIO=\"aud\"\nv/index.m3u8\n",
        )
        .unwrap();
    })
    .await;
    let master = body(&get(&app, "/lbl.m3u8").await);
    for link in links("/lbl.m3u8", &master) {
        let res = get(&app, &link).await;
        assert_eq!(res.status(), 200, "{link}: {}", body(&res));
    }
}

#[tokio::test]
async fn source_playlists_are_not_served_as_files() {
    // README: "Source playlists (.m3u8 files inside a stream directory) are not served as files."
    let (app, _) = app("review-source-playlist", ProbeMode::Native, |root| {
        make_stream(root, "show", &["v"], "av25");
    })
    .await;
    for path in ["/show/v/index.m3u8", "/show/abr.m3u8"] {
        let res = get(&app, path).await;
        assert_eq!(res.status(), 404, "{path}: {}", body(&res));
    }
}

#[tokio::test]
async fn encrypted_segments_in_continuous_mode_are_answered_alike() {
    // Ciphertext is random: one encrypted segment in 256 starts with 0x47,
    // the MPEG-TS sync byte. Its answer must not depend on that byte.
    let (app, _) = app("review-enc-continuous", ProbeMode::Native, |root| {
        let dir = root.join("enc/v");
        std::fs::create_dir_all(&dir).unwrap();
        let mut playlist = String::from(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"key.bin\",IV=0x0000000000000000000000000000002a\n",
        );
        for i in 0..4u8 {
            // Stand-ins for ciphertext: any bytes but the first.
            let mut data: Vec<u8> = (0..4096u32)
                .map(|k| (k.wrapping_mul(2_654_435_761) >> 13) as u8 ^ i)
                .collect();
            data[0] = if i == 0 { 0x47 } else { 0x9c };
            std::fs::write(dir.join(format!("seg_{i}.ts")), data).unwrap();
            playlist.push_str(&format!("#EXTINF:2.0,\nseg_{i}.ts\n"));
        }
        std::fs::write(dir.join("index.m3u8"), playlist).unwrap();
        std::fs::write(dir.join("key.bin"), [7u8; 16]).unwrap();
        std::fs::write(
            root.join("enc/abr.m3u8"),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nv/index.m3u8\n",
        )
        .unwrap();
    })
    .await;
    let state = app.library.get("enc").unwrap().state();
    assert!(matches!(state, StreamState::Ready(_)), "{state:?}");
    let mut statuses: Vec<(String, u16)> = Vec::new();
    for g in 0..4 {
        let url = format!("/ts=continuous/g={g}/enc/v/seg_{g}.ts");
        let status = get(&app, &url).await.status().as_u16();
        statuses.push((url, status));
    }
    assert!(
        statuses.iter().all(|(_, s)| *s == statuses[1].1),
        "segments of one encrypted track answered differently: {statuses:?}"
    );
}

#[tokio::test]
async fn a_looped_daterange_keeps_one_start_date_per_id() {
    // RFC 8216bis 4.4.5.1: two EXT-X-DATERANGE tags with the same ID carry the
    // same value for every attribute both have. An ad break opened on one
    // segment and closed on a later one (SCTE35-OUT, then SCTE35-IN with
    // END-DATE) shares ID and START-DATE. The source's EXTINFs are rounded
    // (ffmpeg's round_durations), as many encoders write them.
    let (app, _) = app("review-daterange-id", ProbeMode::Native, |root| {
        make_stream(root, "ads", &["v"], "av2997");
        let playlist = root.join("ads/v/index.m3u8");
        let text = std::fs::read_to_string(&playlist)
            .unwrap()
            .replacen(
                "#EXT-X-MEDIA-SEQUENCE:0\n",
                "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PROGRAM-DATE-TIME:2020-01-01T00:00:00.000Z\n",
                1,
            )
            .replace(
                "seg_000.ts\n",
                "seg_000.ts\n#EXT-X-DATERANGE:ID=\"brk\",START-DATE=\"2020-01-01T00:00:02.000Z\",\
                 PLANNED-DURATION=4,SCTE35-OUT=0xFC01\n",
            )
            .replace(
                "seg_002.ts\n",
                "seg_002.ts\n#EXT-X-DATERANGE:ID=\"brk\",START-DATE=\"2020-01-01T00:00:02.000Z\",\
                 END-DATE=\"2020-01-01T00:00:06.000Z\",SCTE35-IN=0xFC02\n",
            );
        std::fs::write(&playlist, text).unwrap();
    })
    .await;
    let text = body(&get(&app, "/window=20/ads_v.m3u8?now=1700000100000").await);
    let mut start_dates: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in text.lines().filter(|l| l.starts_with("#EXT-X-DATERANGE:")) {
        let attr = |key: &str| {
            let at = line.find(&format!("{key}=\"")).unwrap() + key.len() + 2;
            line[at..at + line[at..].find('"').unwrap()].to_string()
        };
        start_dates
            .entry(attr("ID"))
            .or_default()
            .push(attr("START-DATE"));
    }
    assert!(start_dates.values().any(|d| d.len() == 2), "{text}");
    for (id, dates) in &start_dates {
        assert!(
            dates.iter().all(|d| *d == dates[0]),
            "ID {id} written with START-DATEs {dates:?}"
        );
    }
}

#[test]
fn a_bare_program_date_time_tag_is_no_panic() {
    // m3u8-rs reads a tag without a value as an unknown tag; the loader's own
    // tag scan must not slice past it (the stream would fail as "loader
    // crashed: … panicked", without the file's name).
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME\n#EXTINF:2.0,\na.ts\n";
    let scanned = std::panic::catch_unwind(|| pseudolive::tags::scan(text));
    assert!(
        scanned.is_ok(),
        "tags::scan panicked on a bare #EXT-X-PROGRAM-DATE-TIME"
    );
}

/// A track of one loop: durations in ticks, discontinuities before segments.
fn track(name: &str, durations: &[u64], discontinuities: &[usize]) -> Track {
    Track {
        name: name.to_string(),
        kind: TrackKind::Variant,
        segments: durations
            .iter()
            .enumerate()
            .map(|(i, &d)| Segment {
                path: format!("{name}/seg_{i:03}.ts"),
                byte_range: None,
                duration: Ticks(d),
                method: Method::Native,
                source_duration: Ticks(d),
                discontinuity: discontinuities.contains(&i),
                key: None,
                map: None,
                tags: Vec::new(),
                source_pdt_ms: None,
            })
            .collect(),
        header_tags: Vec::new(),
        timing: TrackTiming::Shared,
    }
}

/// 2026-01-01T00:00:00Z in ticks.
const T0: u64 = 1_767_225_600_000 * 90;

#[test]
fn a_track_fitted_to_the_reference_clock_stays_within_the_target_duration() {
    // Video: 14 × 2.0 s + 2.4 s (30.4 s). Demuxed audio cut elsewhere:
    // 14 × 1.9 s + 1.25 s + 2.35 s (30.2 s, 16 segments): 0.2 s shorter, within
    // the loader's 250 ms, so its last segment is stretched to 2.55 s.
    let mut video = vec![2 * S; 14];
    video.push(2 * S + 2 * S / 5);
    let mut audio = vec![19 * S / 10; 14];
    audio.push(S + S / 4);
    audio.push(2 * S + 35 * S / 100);
    let stream = Stream::new(
        "s",
        String::new(),
        vec![track("video", &video, &[]), track("audio", &audio, &[])],
    );
    assert!(matches!(stream.tracks[1].timing, TrackTiming::Own(_)));
    let live = LiveStream::from_stream(stream, 6, Some(Ticks(T0)));
    let td = live.stream.target_duration_s;
    for k in 0..120 {
        let now = Ticks(T0 + k * S / 2);
        for index in 0..2 {
            let p = parse(&live.playlist_at(index, now).plain);
            assert_eq!(p.target_duration, td);
            for s in &p.segments {
                assert!(
                    s.duration.round() as u64 <= td,
                    "track {index}: EXTINF {} > TARGETDURATION {td} ({})",
                    s.duration,
                    s.uri
                );
            }
        }
    }
}

#[tokio::test]
async fn relative_uris_in_carried_tags_still_resolve() {
    // The master moves from /<stream>/abr.m3u8 to /<stream>.m3u8 and a media
    // playlist from /<stream>/<variant>/index.m3u8 to /<stream>_<variant>.m3u8.
    // Tags carried verbatim keep their relative URIs, which then point outside
    // the stream: EXT-X-SESSION-DATA in the master, an HLS interstitial's
    // X-ASSET-LIST in a media playlist.
    let (app, _) = app("review-carried-uris", ProbeMode::Native, |root| {
        make_stream(root, "inter", &["v"], "av25");
        let dir = root.join("inter");
        std::fs::write(dir.join("v/title.json"), "{}").unwrap();
        std::fs::write(dir.join("v/assets.json"), "{\"ASSETS\":[]}").unwrap();
        let master = std::fs::read_to_string(dir.join("abr.m3u8")).unwrap().replacen(
            "#EXTM3U\n",
            "#EXTM3U\n#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",URI=\"v/title.json\"\n",
            1,
        );
        std::fs::write(dir.join("abr.m3u8"), master).unwrap();
        let playlist = dir.join("v/index.m3u8");
        let text = std::fs::read_to_string(&playlist)
            .unwrap()
            .replacen(
                "#EXT-X-MEDIA-SEQUENCE:0\n",
                "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PROGRAM-DATE-TIME:2020-01-01T00:00:00.000Z\n",
                1,
            )
            .replace(
                "seg_000.ts\n",
                "seg_000.ts\n#EXT-X-DATERANGE:ID=\"i1\",CLASS=\"com.apple.hls.interstitial\",\
                 START-DATE=\"2020-01-01T00:00:02.000Z\",X-ASSET-LIST=\"assets.json\",X-RESUME-OFFSET=0\n",
            );
        std::fs::write(&playlist, text).unwrap();
    })
    .await;
    let master = body(&get(&app, "/inter.m3u8").await);
    let media_url = "/inter_v.m3u8";
    let media = body(&get(&app, &format!("{media_url}?now=1700000100000")).await);
    let mut carried = Vec::new();
    for (base, text, attr) in [
        ("/inter.m3u8", &master, "URI=\""),
        (media_url, &media, "X-ASSET-LIST=\""),
    ] {
        for line in text
            .lines()
            .filter(|l| l.starts_with("#EXT-X-SESSION-DATA") || l.starts_with("#EXT-X-DATERANGE"))
        {
            let at = line.find(attr).unwrap() + attr.len();
            let uri = &line[at..at + line[at..].find('"').unwrap()];
            carried.push(resolve(base, uri));
        }
    }
    assert_eq!(carried.len(), 2, "{master}\n{media}");
    for url in carried {
        let res = get(&app, &url).await;
        assert_eq!(res.status(), 200, "{url}: {}", body(&res));
    }
}

#[tokio::test]
async fn a_segment_number_from_the_url_is_checked_before_arithmetic() {
    // `g` comes from the client. Segment g starts at loop_duration × (g / n):
    // beyond about 2^64 / loop ticks that overflows (a panic with overflow
    // checks, silently wrapped timestamps without).
    let (app, _) = app("review-huge-g", ProbeMode::Native, |root| {
        make_stream(root, "show", &["v"], "av25");
    })
    .await;
    let url = format!("/ts=continuous/g={}/show/v/seg_000.ts", u64::MAX - 5); // a multiple of the 5 segments: seg_000
    let answer = tokio::spawn(async move { get(&app, &url).await.status().as_u16() }).await;
    match answer {
        Ok(status) => assert!(status == 400 || status == 404, "{status}"),
        Err(e) => panic!("the request handler panicked: {e}"),
    }
}

/// A 5-byte PES timestamp field moved by `by` ticks (mod 2^33), prefix and markers kept.
fn shift_pes_timestamp(field: &mut [u8], by: u64) {
    let v = field.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b));
    let t = ((v >> 3) & (7 << 30)) | ((v >> 2) & (0x7fff << 15)) | ((v >> 1) & 0x7fff);
    let t = (t + by) % (1 << 33);
    let v = (v & 0xf1_0001_0001)
        | ((t >> 30) << 33)
        | (((t >> 15) & 0x7fff) << 17)
        | ((t & 0x7fff) << 1);
    for (i, b) in field.iter_mut().enumerate() {
        *b = (v >> (8 * (4 - i))) as u8;
    }
}

#[test]
fn one_bad_timestamp_in_a_last_segment_does_not_make_it_an_hour_long() {
    // The 2026-11 review's finding 2: the span of a run's last segment
    // (largest PTS − first + one frame) is taken without a bound. One video
    // PES whose PTS is an hour off makes a 2 s segment 3600 s long, and with
    // it TARGETDURATION and the media playlists' max-age.
    let dir = temp_dir("review-bad-span");
    for entry in std::fs::read_dir(fixture("av25")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let path = dir.join("seg_004.ts");
    let mut data = std::fs::read(&path).unwrap();
    let mut video_pes = 0;
    for at in (0..data.len()).step_by(188) {
        let p = &data[at..at + 188];
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let start = 4 + if p[3] & 0x20 != 0 {
            1 + usize::from(p[4])
        } else {
            0
        };
        if p[1] & 0x40 == 0 || pid != 0x100 || p[start..start + 4] != [0, 0, 1, 0xe0] {
            continue;
        }
        video_pes += 1;
        if video_pes == 20 {
            let flags = p[start + 7];
            let h = at + start + 9;
            shift_pes_timestamp(&mut data[h..h + 5], 3600 * S);
            if flags & 0x40 != 0 {
                shift_pes_timestamp(&mut data[h + 5..h + 10], 3600 * S);
            }
            break;
        }
    }
    assert_eq!(video_pes, 20, "the fixture has a video PID 0x100");
    std::fs::write(&path, data).unwrap();
    let playlist = dir.join("index.m3u8");
    let pl = pseudolive::source::read_media(&playlist).unwrap();
    let inputs =
        pseudolive::source::segment_inputs(playlist.parent().unwrap(), &playlist, &pl).unwrap();
    let measured = Prober {
        mode: ProbeMode::Native,
        ffprobe: None,
    }
    .measure_playlist(&inputs);
    let last = &measured[4];
    assert!(
        last.ticks <= 10 * S,
        "seg_004.ts (EXTINF 2.0) measured {:.3} s by {:?}",
        last.ticks as f64 / S as f64,
        last.method
    );
}
