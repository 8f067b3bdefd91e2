use proptest::prelude::*;

use super::*;

/// Constant frame rate: `n` frames of `d` ticks, a keyframe every `gop` frames.
fn cfr(n: usize, d: u64, gop: usize) -> Vec<Frame> {
    (0..n)
        .map(|i| Frame {
            at: Ticks(i as u64 * d),
            independent: i % gop == 0,
        })
        .collect()
}

fn keyframe(frames: &[Frame], i: usize) -> bool {
    i == 0 || (frames[i].independent && !frames[i - 1].independent)
}

/// Every rule a carving must keep; `Err` names the first broken one.
fn check_rules(
    frames: &[Frame],
    total: Ticks,
    target: Ticks,
    parts: &[Part],
) -> Result<(), String> {
    if parts.is_empty() {
        return Err("no parts".into());
    }
    let mut next = 0usize;
    let mut start = Ticks::ZERO;
    for (p, part) in parts.iter().enumerate() {
        let r = part.frames();
        if r.start != next || r.is_empty() {
            return Err(format!(
                "part {p}: frames {r:?}, expected to start at {next}"
            ));
        }
        if part.start != start {
            return Err(format!(
                "part {p}: starts at {:?}, not {start:?}",
                part.start
            ));
        }
        let end = frames.get(r.end).map_or(total, |f| f.at);
        if part.duration != end - part.start {
            return Err(format!(
                "part {p}: duration {:?} is not its frames' span",
                part.duration
            ));
        }
        if part.duration > target {
            return Err(format!("part {p}: {:?} > target {target:?}", part.duration));
        }
        let last = p + 1 == parts.len();
        if !part.independent && !last && part.duration.0 * 100 < target.0 * 85 {
            return Err(format!(
                "part {p}: {:?} < 85 % of {target:?}",
                part.duration
            ));
        }
        if part.independent != frames[r.start].independent {
            return Err(format!("part {p}: INDEPENDENT wrong"));
        }
        if let Some(k) = r.clone().skip(1).find(|&i| keyframe(frames, i)) {
            return Err(format!("part {p}: keyframe {k} inside it"));
        }
        next = r.end;
        start += part.duration;
    }
    if next != frames.len() {
        return Err(format!("parts end at frame {next} of {}", frames.len()));
    }
    if start != total {
        return Err(format!("durations add up to {start:?}, not {total:?}"));
    }
    Ok(())
}

fn carved(frames: &[Frame], total: u64, target: u64) -> Vec<Part> {
    let parts = carve_frames(frames, Ticks(total), Ticks(target)).unwrap();
    check_rules(frames, Ticks(total), Ticks(target), &parts).unwrap();
    parts
}

fn durations(parts: &[Part]) -> Vec<u64> {
    parts.iter().map(|p| p.duration.0).collect()
}

fn independent(parts: &[Part]) -> Vec<usize> {
    parts
        .iter()
        .enumerate()
        .filter(|(_, p)| p.independent)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn thirty_fps_two_second_gops() {
    let frames = cfr(180, 3000, 60);
    // 0.5 s: 15 frames exactly, four parts per GOP.
    let parts = carved(&frames, 540_000, 45_000);
    assert_eq!(durations(&parts), vec![45_000; 12]);
    assert_eq!(independent(&parts), [0, 4, 8]);
    // 1 s: two parts per GOP.
    let parts = carved(&frames, 540_000, 90_000);
    assert_eq!(durations(&parts), vec![90_000; 6]);
    assert_eq!(independent(&parts), [0, 2, 4]);
    // 0.333 s: 9 frames at most (27 000 ≥ 85 % of 29 970); 60 = 6 + 6 × 9,
    // the short part at the keyframe. In the last GOP the segment's last part
    // may be short too: 7 + 5 × 9 + 8 is more even.
    let parts = carved(&frames, 540_000, 29_970);
    let gop = [18_000, 27_000, 27_000, 27_000, 27_000, 27_000, 27_000];
    let last = [21_000, 27_000, 27_000, 27_000, 27_000, 27_000, 24_000];
    assert_eq!(durations(&parts), [&gop[..], &gop, &last].concat());
    assert_eq!(independent(&parts), [0, 7, 14]);
}

#[test]
fn twenty_five_fps() {
    let frames = cfr(100, 3600, 50);
    // 0.5 s: 11 or 12 frames (39 600 or 43 200 ticks); 50 = 6 + 4 × 11 is
    // the most even of the five-part cuts.
    let parts = carved(&frames, 360_000, 45_000);
    let gop = [21_600, 39_600, 39_600, 39_600, 39_600];
    let last = [28_800, 39_600, 39_600, 39_600, 32_400]; // 8 + 3 × 11 + 9
    assert_eq!(durations(&parts), [gop, last].concat());
    assert_eq!(independent(&parts), [0, 5]);
    // 0.2 s: exactly 5 frames.
    let parts = carved(&frames, 360_000, 18_000);
    assert_eq!(durations(&parts), vec![18_000; 20]);
}

#[test]
fn twenty_nine_ninety_seven_fps() {
    let frames = cfr(120, 3003, 60);
    // 0.5 s: 13 or 14 frames; 60 = 8 + 4 × 13.
    let parts = carved(&frames, 120 * 3003, 45_000);
    let gop = [8 * 3003, 13 * 3003, 13 * 3003, 13 * 3003, 13 * 3003];
    let last = [10 * 3003, 13 * 3003, 13 * 3003, 13 * 3003, 11 * 3003];
    assert_eq!(durations(&parts), [gop, last].concat());
    // The playlist's duration a little off the frames' span: the last part absorbs it.
    for total in [120 * 3003 - 180, 120 * 3003 + 180] {
        let parts = carved(&frames, total, 45_000);
        assert_eq!(parts.iter().map(|p| p.duration.0).sum::<u64>(), total);
        assert_eq!(parts.len(), 10);
    }
}

#[test]
fn audio_lead_every_frame_independent() {
    // AAC at 44.1 kHz: 1024 samples = 2089.8 ticks, timestamps rounded.
    let frames: Vec<Frame> = (0..86u64)
        .map(|i| Frame {
            at: Ticks((i * 1024 * 90_000 + 22_050) / 44_100),
            independent: true,
        })
        .collect();
    let total = (86 * 1024 * 90_000 + 22_050) / 44_100;
    let parts = carved(&frames, total, 45_000);
    assert!(parts.iter().all(|p| p.independent));
    // 21 frames fit in 0.5 s; 86 frames need 5 parts, evenly 17 or 18 frames.
    assert_eq!(parts.len(), 5);
    assert!(parts.iter().all(|p| (17..=18).contains(&p.frames().len())));
}

#[test]
fn segment_end_moves_the_last_part() {
    let frames = cfr(60, 3000, 60);
    // 2 ms longer than the frames: the last part ends there, still ≤ target.
    let parts = carved(&frames, 180_000 + 180, 45_000);
    assert_eq!(parts.len(), 5);
    assert_eq!(parts.last().unwrap().duration, Ticks(45_000 - 15_000 + 180));
    // 2 ms shorter.
    let parts = carved(&frames, 180_000 - 180, 45_000);
    assert_eq!(durations(&parts), [45_000, 45_000, 45_000, 45_000 - 180]);
}

/// A segment whose last frames start at or after its `#EXTINF` (Shaka
/// Packager's audio runs a frame past it): they go into the last part,
/// which ends at the segment's duration.
#[test]
fn frames_past_the_segment_duration_go_into_the_last_part() {
    // 2 s of 1024-sample AAC frames at 48 kHz (1920 ticks), 95 frames: the
    // last starts at 2.0053 s.
    let frames: Vec<Frame> = (0..95)
        .map(|i| Frame {
            at: Ticks(i * 1920),
            independent: true,
        })
        .collect();
    let total = Ticks(180_000);
    let parts = carve_frames(&frames, total, Ticks(45_000)).unwrap();
    let last = parts.last().unwrap();
    assert_eq!(last.frames().end, 95);
    assert_eq!(last.start + last.duration, total);
    let sum = parts
        .iter()
        .map(|p| p.duration)
        .fold(Ticks::ZERO, |a, b| a + b);
    assert_eq!(sum, total);
    assert!(parts.iter().all(|p| p.duration <= Ticks(45_000)));
    for w in parts.windows(2) {
        assert_eq!(w[0].frames().end, w[1].frames().start);
    }
}

#[test]
fn errors() {
    let frames = cfr(50, 3600, 50);
    assert!(matches!(
        carve_frames(&frames, Ticks(180_000), Ticks(3_000)),
        Err(CarveError::FrameTooLong { frame: 0, .. })
    ));
    // The last frame, stretched by the playlist's duration past the target.
    assert!(matches!(
        carve_frames(&frames, Ticks(176_400 + 20_000), Ticks(18_000)),
        Err(CarveError::FrameTooLong { frame: 49, .. })
    ));
    // 0.1 s at 25 fps: 2 frames are 80 % of it, 3 frames too long.
    let err = carve_frames(&cfr(100, 3600, 50), Ticks(360_000), Ticks(9_000)).unwrap_err();
    assert!(
        matches!(
            err,
            CarveError::Infeasible {
                first: 0,
                end: 50,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("85 to 100 %"), "{err}");
    assert_eq!(
        carve_frames(&frames, Ticks::ZERO, Ticks(45_000)),
        Err(CarveError::EndsBeforeLastFrame {
            duration: Ticks::ZERO,
            last: Ticks(49 * 3600)
        })
    );
    let mut backwards = cfr(10, 3600, 50);
    backwards[5].at = Ticks(100);
    assert_eq!(
        carve_frames(&backwards, Ticks(36_000), Ticks(45_000)),
        Err(CarveError::NotIncreasing { frame: 5 })
    );
    assert_eq!(
        carve_frames(&[], Ticks(1), Ticks(1)),
        Err(CarveError::NoFrames)
    );
    assert_eq!(
        carve_frames(&frames, Ticks(180_000), Ticks::ZERO),
        Err(CarveError::ZeroTarget)
    );
}

#[test]
fn a_segment_not_starting_at_a_keyframe() {
    // No independent frame at all: every part but the last must reach 85 %.
    let frames: Vec<Frame> = cfr(30, 3000, 1000)
        .into_iter()
        .map(|f| Frame {
            independent: false,
            ..f
        })
        .collect();
    let parts = carved(&frames, 90_000, 45_000);
    assert_eq!(durations(&parts), [45_000, 45_000]);
    assert!(independent(&parts).is_empty());
}

#[test]
fn fitting_a_target_to_the_frame_rate() {
    let fit = |frames: &[Frame], total: u64, wanted: u64| {
        let segment = SegmentFrames::from_frames(frames.to_vec());
        fit_target(std::iter::once((&segment, Ticks(total))), Ticks(wanted))
    };
    // 25 fps: 200 ms is 5 frames.
    assert_eq!(
        fit(&cfr(50, 3600, 50), 180_000, 18_000),
        Some(Ticks(18_000))
    );
    // 29.97 fps: 5 frames are 83 % of 200 ms, 6 frames 200.2 ms.
    let ntsc = cfr(60, 3003, 60);
    assert!(carve_frames(&ntsc, Ticks(180_180), Ticks(18_000)).is_err());
    assert_eq!(fit(&ntsc, 180_180, 18_000), Some(Ticks(18_018)));
    // Audio PES of 0.36 s: one PES per part.
    let pes: Vec<Frame> = (0..6)
        .map(|i| Frame {
            at: Ticks(i * 32_640),
            independent: true,
        })
        .collect();
    assert_eq!(fit(&pes, 6 * 32_640, 18_000), Some(Ticks(32_640)));
    // A last frame far longer than anything near the target: none.
    assert_eq!(fit(&cfr(50, 3600, 50), 180_000 + 90_000, 18_000), None);
    assert_eq!(fit(&[], 1, 18_000), None);
}

/// Every carving of up to 11 frames, by brute force: whether one keeps the
/// rules, and the fewest parts and most even shortest part among them.
fn brute_force(frames: &[Frame], total: Ticks, target: Ticks) -> Option<(usize, Ticks)> {
    let n = frames.len();
    let mut best: Option<(usize, Ticks)> = None;
    for mask in 0u32..1 << (n - 1) {
        let mut starts = vec![0];
        starts.extend((1..n).filter(|i| mask & (1 << (i - 1)) != 0));
        let mut parts = Vec::new();
        for (k, &s) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(n);
            let start = if s == 0 { Ticks::ZERO } else { frames[s].at };
            let stop = frames.get(end).map_or(total, |f| f.at);
            parts.push(Part {
                start,
                duration: stop - start,
                independent: frames[s].independent,
                first: s as u32,
                end: end as u32,
            });
        }
        if check_rules(frames, total, target, &parts).is_ok() {
            let shortest = parts.iter().map(|p| p.duration).min().unwrap();
            let candidate = (parts.len(), shortest);
            best = Some(match best {
                Some(b)
                    if (b.0, std::cmp::Reverse(b.1))
                        <= (candidate.0, std::cmp::Reverse(candidate.1)) =>
                {
                    b
                }
                _ => candidate,
            });
        }
    }
    best
}

proptest! {
    #[test]
    fn carving_keeps_the_rules_at_any_rate(
        d in 900u64..=9_000,
        gop in 1usize..=240,
        n in 1usize..=600,
        target_frames in 1.0f64..=40.0,
        end_shift in -0.45f64..=0.45,
        audio in any::<bool>(),
    ) {
        let frames: Vec<Frame> = cfr(n, d, gop)
            .into_iter()
            .map(|f| Frame { independent: f.independent || audio, ..f })
            .collect();
        let target = Ticks((target_frames * d as f64) as u64);
        let last = (d as f64 * (1.0 + end_shift)) as u64;
        let total = Ticks((n as u64 - 1) * d + last);
        match carve_frames(&frames, total, target) {
            Ok(parts) => {
                if let Err(e) = check_rules(&frames, total, target, &parts) {
                    return Err(TestCaseError::fail(e));
                }
            }
            Err(e) => {
                // Whole parts of 85–100 % of the target exist and no frame is
                // too long: then every run from a keyframe can be carved.
                let kmin = (target.0 * 17).div_ceil(20 * d);
                let sure = kmin * d <= target.0 && d <= target.0 && last <= target.0;
                prop_assert!(!sure, "{e} although {kmin} frames fit");
            }
        }
    }

    #[test]
    fn carving_matches_brute_force(
        steps in proptest::collection::vec((500u64..=4_000, any::<bool>()), 1..=11),
        target in 1_000u64..=12_000,
        last in 500u64..=4_000,
    ) {
        let mut at = 0;
        let frames: Vec<Frame> = steps
            .iter()
            .map(|&(step, independent)| {
                let f = Frame { at: Ticks(at), independent };
                at += step;
                f
            })
            .collect();
        let total = Ticks(frames.last().unwrap().at.0 + last);
        let target = Ticks(target);
        let expected = brute_force(&frames, total, target);
        match carve_frames(&frames, total, target) {
            Ok(parts) => {
                prop_assert!(check_rules(&frames, total, target, &parts).is_ok());
                let shortest = parts.iter().map(|p| p.duration).min().unwrap();
                prop_assert_eq!(Some((parts.len(), shortest)), expected);
            }
            Err(e) => prop_assert!(expected.is_none(), "{} but {:?} exists", e, expected),
        }
    }
}
