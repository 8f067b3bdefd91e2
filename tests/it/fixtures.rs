//! Native measurement of every fixture segment against ffprobe's packet timestamps.

use m3u8_rs::Playlist;
use pseudolive::probe::ts::{Depth, StreamKind, scan};
use pseudolive::probe::{Measured, MediaDuration, Method, ProbeMode, Prober, scan_file};
use pseudolive::source;

use crate::util::{expected, fixture};

/// One millisecond in ticks.
const MS: u64 = 90;
/// The longest frame among the fixtures (29.97 fps video: 3003 ticks; AAC 1024 @ 44.1 kHz: 2090).
const FRAME: u64 = 3003;

fn check(name: &str) {
    check_within(name, FRAME);
}

/// Checks a fixture with `span_tolerance` ticks for the last segment of a run.
fn check_within(name: &str, span_tolerance: u64) -> Vec<Measured> {
    let playlist = fixture(name).join("index.m3u8");
    // Not read_media: its check refuses byte ranges, which the prober handles.
    let Playlist::MediaPlaylist(pl) = source::read_playlist(&playlist).unwrap() else {
        panic!("{name}: not a media playlist");
    };
    let inputs = source::segment_inputs(playlist.parent().unwrap(), &playlist, &pl).unwrap();
    let prober = Prober {
        mode: ProbeMode::Native,
        ffprobe: None,
    };
    let measured = prober.measure_playlist(&inputs);
    let expected = expected(name);
    assert_eq!(measured.len(), expected.len(), "{name}: segment count");
    for (i, (m, e)) in measured.iter().zip(&expected).enumerate() {
        assert_eq!(pl.segments[i].uri, e.uri);
        let (want_method, tolerance) = match e.rule.as_str() {
            "diff" => (Method::Native, MS),
            "span" => (Method::Native, span_tolerance),
            "playlist" => (Method::Playlist, 0),
            other => panic!("unknown rule {other}"),
        };
        assert_eq!(
            m.method,
            Some(want_method),
            "{name} {}: {:?}",
            e.uri,
            m.error
        );
        assert!(
            m.ticks.abs_diff(e.ticks) <= tolerance,
            "{name} {}: measured {} ticks, expected {} (±{tolerance})",
            e.uri,
            m.ticks,
            e.ticks
        );
    }
    measured
}

#[test]
fn av25() {
    check("av25");
}

#[test]
fn av2997_ignores_rounded_extinf() {
    check("av2997");
    // The source says 2 s; the truth is 2.002 s.
    let pl = source::read_media(&fixture("av2997").join("index.m3u8")).unwrap();
    assert!(pl.segments.iter().all(|s| s.duration == 2.0));
}

#[test]
fn bframes_irregular_keyframes() {
    check("bframes");
}

#[test]
fn audio_only() {
    check("audio_only");
}

#[test]
fn mp2_audio_only() {
    check("mp2_audio");
}

#[test]
fn pts_wrap() {
    check("wrap");
}

#[test]
fn discontinuity() {
    check("discontinuity");
}

#[test]
fn truncated_segment() {
    check("truncated");
}

#[test]
fn not_ts_falls_back_to_extinf() {
    check("not_ts");
}

#[test]
fn one_corrupt_pts_in_a_last_segment() {
    // The fixture holds it: one video PES of seg_004.ts an hour late.
    let t = scan_file(&fixture("glitch").join("seg_004.ts"), Depth::Full).unwrap();
    assert_eq!(t.outliers, 1);
    check("glitch");
}

#[test]
fn pmt_over_two_ts_packets() {
    // The video stream is listed in the PMT's second packet.
    for seg in ["seg_000.ts", "seg_002.ts"] {
        for depth in [Depth::Start, Depth::Full] {
            let t = scan_file(&fixture("big_pmt").join(seg), depth).unwrap();
            assert_eq!(
                (t.kind, t.pid),
                (StreamKind::Video, 0x101),
                "{seg} {depth:?}"
            );
        }
    }
    check("big_pmt");
    // Without its video packets, the audio stream is known as AAC from the PMT
    // alone: its entry, with its descriptor, crosses the packet boundary.
    let bytes = std::fs::read(fixture("big_pmt").join("seg_002.ts")).unwrap();
    let audio_only: Vec<u8> = bytes
        .chunks_exact(188)
        .filter(|p| (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) != 0x101)
        .flatten()
        .copied()
        .collect();
    let t = scan(&audio_only, Depth::Full).unwrap();
    assert_eq!((t.kind, t.pid), (StreamKind::Aac, 0x100));
}

/// The reference stream of every segment of a fixture is of `kind`.
fn assert_kind(name: &str, kind: StreamKind) {
    for e in expected(name) {
        let t = scan_file(&fixture(name).join(&e.uri), Depth::Full).unwrap();
        assert_eq!(t.kind, kind, "{name} {}", e.uri);
    }
}

#[test]
fn ac3_audio_only_atsc() {
    assert_kind("ac3_audio", StreamKind::Ac3);
    // The last segment ends with its last syncframe, to the millisecond.
    check_within("ac3_audio", MS);
}

#[test]
fn eac3_audio_only_dvb() {
    assert_kind("eac3_dvb", StreamKind::Ac3);
    check_within("eac3_dvb", MS);
}

/// Checks an fMP4 fixture to the millisecond, every segment on the clock of
/// `timescale`.
fn check_fmp4(name: &str, timescale: u32) {
    for m in check_within(name, MS) {
        let media = m
            .media
            .unwrap_or_else(|| panic!("{name}: no media duration"));
        assert_eq!(media.timescale, timescale, "{name}");
        // Whole frames: the ticks agree with the units to the tick.
        let ticks = (u128::from(media.units) * 90_000 / u128::from(timescale)) as u64;
        assert!(m.ticks.abs_diff(ticks) <= 1, "{name}: {m:?}");
    }
}

#[test]
fn fmp4_h264_aac() {
    check_fmp4("fmp4_avc", 12_800);
}

#[test]
fn fmp4_hevc_ac3() {
    check_fmp4("fmp4_hevc_ac3", 12_800);
}

#[test]
fn fmp4_single_file_by_byte_range() {
    check_fmp4("fmp4_single", 12_800);
}

#[test]
fn cmaf_shaka_video_and_audio_apart() {
    check_fmp4("cmaf_shaka/video", 12_800);
    // Audio alone: 1024-sample AAC frames at 48 kHz, several moof per segment.
    check_fmp4("cmaf_shaka/audio", 48_000);
}

#[test]
fn ts_single_file_by_byte_range() {
    let measured = check_within("ts_single", MS);
    let media = MediaDuration {
        timescale: 90_000,
        units: measured[0].ticks,
    };
    assert_eq!(measured[0].media, Some(media));
}
