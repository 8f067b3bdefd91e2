//! Tests of `measure_playlist`: plausibility, fallbacks, byte ranges, init
//! sections, the ffprobe fallback on init + segment, tick conversion.

use super::*;
use std::path::Path;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pseudolive-probe-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

fn input(path: PathBuf, extinf_ticks: u64) -> SegmentInput {
    SegmentInput {
        path,
        extinf_ticks,
        ..SegmentInput::default()
    }
}

/// The five 2 s segments of `fixtures/av25` as one 10 s file.
fn ten_seconds(dir: &Path) -> PathBuf {
    let bytes: Vec<u8> = (0..5)
        .flat_map(|i| std::fs::read(fixture(&format!("av25/seg_{i:03}.ts"))).unwrap())
        .collect();
    let path = dir.join("ten.ts");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_span_far_beyond_extinf_falls_back_to_extinf() {
    let dir = temp_dir("span");
    let ten = ten_seconds(&dir);
    let native = Prober {
        mode: ProbeMode::Native,
        ffprobe: None,
    };
    // Listed as 10 s: believable.
    let m = native.measure_playlist(&[input(ten.clone(), 10 * HZ)]);
    assert_eq!((m[0].ticks, m[0].method), (10 * HZ, Some(Method::Native)));
    // Listed as 2 s: 10 s from its own frames is not.
    let m = native.measure_playlist(&[input(ten.clone(), 2 * HZ)]);
    assert_eq!((m[0].ticks, m[0].method), (2 * HZ, Some(Method::Playlist)));
    let error = m[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("10.000 s") && error.contains("2.000 s"),
        "{error}"
    );
    // ffprobe (here a stand-in that reports the same 10 s) is judged alike.
    let fake = dir.join("ffprobe");
    std::fs::write(
        &fake,
        "#!/bin/sh\nprintf 'stream|index=0|codec_type=video\\npacket|stream_index=0|pts_time=0.0|duration_time=10.0\\n'\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let auto = Prober {
        mode: ProbeMode::Auto,
        ffprobe: Some(fake),
    };
    let m = auto.measure_playlist(&[input(ten.clone(), 2 * HZ)]);
    assert_eq!((m[0].ticks, m[0].method), (2 * HZ, Some(Method::Playlist)));
    let error = m[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("from ffprobe, 10.000 s"), "{error}");
    let m = auto.measure_playlist(&[input(ten, 10 * HZ)]);
    assert_eq!((m[0].ticks, m[0].method), (10 * HZ, Some(Method::Native)));
}

#[test]
fn the_reference_is_the_extinf_else_the_neighbours() {
    let segs: Vec<SegmentInput> = [2 * HZ, 0, 6 * HZ, 0]
        .into_iter()
        .map(|t| input(PathBuf::new(), t))
        .collect();
    let refs: Vec<Option<u64>> = (0..4).map(|i| reference_ticks(&segs, i)).collect();
    assert_eq!(
        refs,
        [Some(2 * HZ), Some(6 * HZ), Some(6 * HZ), Some(6 * HZ)]
    );
    assert_eq!(reference_ticks(&segs[1..2], 0), None);
    // 3 × 6 s + 2 s.
    assert!(plausible(20 * HZ, Some(6 * HZ)) && !plausible(20 * HZ + 1, Some(6 * HZ)));
    assert!(!plausible(0, Some(6 * HZ)));
    assert!(plausible(5 * HZ, None) && !plausible(5 * HZ + 1, None));
    assert!(plausible_span(3600 * HZ, None) && !plausible_span(3600 * HZ, Some(2 * HZ)));
}

fn native() -> Prober {
    Prober {
        mode: ProbeMode::Native,
        ffprobe: None,
    }
}

fn range(offset: u64, length: u64) -> Option<ByteRange> {
    Some(ByteRange { offset, length })
}

/// The byte ranges of a fixture's single-file playlist, as written there.
fn ranges_of(fixture_playlist: &str) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(fixture(fixture_playlist)).unwrap();
    let mut end = 0;
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:"))
        .map(|r| {
            let (n, o) = r.split_once('@').map_or((r, None), |(n, o)| (n, Some(o)));
            let (n, o): (u64, u64) = (n.parse().unwrap(), o.map_or(end, |o| o.parse().unwrap()));
            end = o + n;
            (o, n)
        })
        .collect()
}

#[test]
fn ts_byte_ranges_are_measured_from_their_range_only() {
    let ranges = ranges_of("ts_single/index.m3u8");
    assert_eq!(ranges.len(), 3);
    let inputs: Vec<SegmentInput> = ranges
        .iter()
        .map(|&(o, n)| SegmentInput {
            byte_range: range(o, n),
            ..input(fixture("ts_single/media.ts"), 2 * HZ)
        })
        .collect();
    for m in native().measure_playlist(&inputs) {
        assert_eq!(m.method, Some(Method::Native), "{m:?}");
        assert!(m.ticks.abs_diff(2 * HZ) <= 90, "{m:?}");
    }
    // The whole file as one segment lasts the three.
    let whole = native().measure_playlist(&[input(fixture("ts_single/media.ts"), 6 * HZ)]);
    assert!(whole[0].ticks.abs_diff(6 * HZ) <= 90, "{whole:?}");
}

#[test]
fn fmp4_byte_ranges_with_an_init_range() {
    let media = fixture("fmp4_single/media.mp4");
    let text = std::fs::read_to_string(fixture("fmp4_single/index.m3u8")).unwrap();
    let init_length: u64 = text
        .split("BYTERANGE=\"")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let init = InitSection {
        path: media.clone(),
        byte_range: range(0, init_length),
    };
    let inputs: Vec<SegmentInput> = ranges_of("fmp4_single/index.m3u8")
        .iter()
        .map(|&(o, n)| SegmentInput {
            byte_range: range(o, n),
            init: Some(init.clone()),
            ..input(media.clone(), 2 * HZ)
        })
        .collect();
    let measured = native().measure_playlist(&inputs);
    for m in &measured {
        assert_eq!(m.method, Some(Method::Native), "{m:?}");
        assert_eq!(
            m.media,
            Some(MediaDuration {
                timescale: 12_800,
                units: 25_600
            })
        );
        assert_eq!(m.ticks, 2 * HZ);
    }
    // Without the init section the fragments have no timescale.
    let alone = native().measure_playlist(&[SegmentInput {
        init: None,
        ..inputs[1].clone()
    }]);
    let error = alone[0].error.as_deref().unwrap_or_default();
    assert_eq!(alone[0].method, Some(Method::Playlist));
    assert!(error.contains("no moov box"), "{error}");
    // A range past the end of the file, and a missing init file.
    let past = native().measure_playlist(&[SegmentInput {
        byte_range: range(init_length, 1 << 30),
        ..inputs[0].clone()
    }]);
    let error = past[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("ends past the end of the file"), "{error}");
    let missing = native().measure_playlist(&[SegmentInput {
        init: Some(InitSection {
            path: fixture("fmp4_single/nothing.mp4"),
            byte_range: None,
        }),
        ..inputs[0].clone()
    }]);
    let error = missing[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains("init section") && error.contains("nothing.mp4"),
        "{error}"
    );
}

#[test]
fn fmp4_with_a_separate_init_segment() {
    let inputs: Vec<SegmentInput> = (0..3)
        .map(|i| SegmentInput {
            init: Some(InitSection {
                path: fixture("cmaf_shaka/audio/init.mp4"),
                byte_range: None,
            }),
            ..input(
                fixture(&format!("cmaf_shaka/audio/seg_{:03}.m4s", i + 1)),
                2 * HZ,
            )
        })
        .collect();
    let m = native().measure_playlist(&inputs);
    let units: Vec<u64> = m.iter().map(|m| m.media.map_or(0, |d| d.units)).collect();
    // tfdt differences, then the last segment's own samples, at 48 kHz.
    assert_eq!(units, [97_280, 96_256, 96_256]);
    let ticks: Vec<u64> = m.iter().map(|m| m.ticks).collect();
    assert_eq!(ticks, [182_400, 180_480, 180_480]);
}

#[test]
fn the_bytes_decide_the_container_not_the_name() {
    let dir = temp_dir("names");
    let fmp4_as_ts = dir.join("seg.ts");
    let ts_as_m4s = dir.join("seg.m4s");
    std::fs::copy(fixture("fmp4_avc/seg_002.m4s"), &fmp4_as_ts).unwrap();
    std::fs::copy(fixture("av25/seg_004.ts"), &ts_as_m4s).unwrap();
    let init = InitSection {
        path: fixture("fmp4_avc/init.mp4"),
        byte_range: None,
    };
    let m = native().measure_playlist(&[SegmentInput {
        init: Some(init),
        ..input(fmp4_as_ts, 2 * HZ)
    }]);
    assert_eq!(
        m[0].media,
        Some(MediaDuration {
            timescale: 12_800,
            units: 25_600
        })
    );
    let m = native().measure_playlist(&[input(ts_as_m4s, 2 * HZ)]);
    assert_eq!(
        (m[0].method, m[0].ticks),
        (Some(Method::Native), 2 * HZ),
        "{m:?}"
    );
}

#[test]
fn converted_durations_add_up_to_the_converted_total() {
    // 1001/24000 s frames, AAC frames at 44.1 kHz, odd steps at 12.8 kHz:
    // rounding each duration alone drifts; differences of converted
    // positions add up to the converted total exactly.
    for (timescale, step) in [(24_000u32, 1001u64), (44_100, 1024), (12_800, 513)] {
        let starts: Vec<u64> = (0..1000u64)
            .scan(5, |at, i| {
                *at += step * (7 + i % 2);
                Some(*at)
            })
            .collect();
        let timings: Vec<Timing> = starts
            .windows(2)
            .map(|w| {
                Timing::Fmp4(fmp4::Fmp4Timing {
                    track_id: 1,
                    kind: fmp4::TrackKind::Video,
                    timescale,
                    start_units: Some(w[0]),
                    duration_units: w[1] - w[0],
                    fragments: 1,
                })
            })
            .collect();
        let mut sum: u64 = timings
            .windows(2)
            .map(|w| start_to_start(&w[0], &w[1]).unwrap().0)
            .sum();
        sum += own_extent(timings.last().unwrap()).unwrap().0;
        let total = units_to_ticks(*starts.last().unwrap(), timescale)
            - units_to_ticks(starts[0], timescale);
        assert_eq!(sum, total, "timescale {timescale}");
        let naive: u64 = starts
            .windows(2)
            .map(|w| units_to_ticks(w[1] - w[0], timescale))
            .sum();
        assert!(naive.abs_diff(total) > 1, "{timescale}: {naive} {total}");
    }
    assert_eq!(units_to_ticks(1, 0), 0);
    assert_eq!(units_to_ticks(u64::MAX, 1), u64::MAX);
}

#[test]
fn ffprobe_reads_init_and_segment_together() {
    let dir = temp_dir("ffprobe-fmp4");
    // A stand-in ffprobe: keeps what it was given, answers 2 s when it
    // starts with the init segment's ftyp.
    let fake = dir.join("ffprobe");
    let seen = dir.join("seen.bin");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor f; do :; done\ncp \"$f\" {seen}\n\
             [ \"$(head -c 8 \"$f\" | tail -c 4)\" = ftyp ] || exit 1\n\
             printf 'stream|index=0|codec_type=video\\npacket|stream_index=0|pts_time=0.0|duration_time=2.0\\n'\n",
            seen = seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let prober = Prober {
        mode: ProbeMode::Ffprobe,
        ffprobe: Some(fake),
    };
    let init = fixture("fmp4_avc/init.mp4");
    let seg = SegmentInput {
        init: Some(InitSection {
            path: init.clone(),
            byte_range: None,
        }),
        ..input(fixture("fmp4_avc/seg_001.m4s"), 2 * HZ)
    };
    let m = prober.measure_playlist(&[seg]);
    assert_eq!(
        (m[0].method, m[0].ticks),
        (Some(Method::Ffprobe), 2 * HZ),
        "{m:?}"
    );
    let expected = [
        std::fs::read(&init).unwrap(),
        std::fs::read(fixture("fmp4_avc/seg_001.m4s")).unwrap(),
    ]
    .concat();
    assert!(
        std::fs::read(&seen).unwrap() == expected,
        "ffprobe got other bytes"
    );
    // The temporary file is gone.
    let left = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("pseudolive-ffprobe-{}-", std::process::id()))
        })
        .count();
    assert_eq!(left, 0);
}

#[test]
fn par_map_keeps_every_result_in_order() {
    let items: Vec<u64> = (0..1000).collect();
    let out = par_map(&items, |&i| i * 3);
    assert_eq!(out.len(), items.len());
    assert!(out.iter().enumerate().all(|(i, &v)| v == 3 * i as u64));
}

#[test]
fn par_map_propagates_a_panic_instead_of_dropping_results() {
    let items: Vec<u64> = (0..64).collect();
    let run = std::panic::catch_unwind(|| {
        par_map(&items, |&i| {
            assert!(i != 17, "item 17 fails");
            i
        })
    });
    match run {
        Err(_) => {}
        Ok(out) => panic!("a panic was swallowed: {} results for 64 items", out.len()),
    }
}
