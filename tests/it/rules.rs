//! Every rule of "Media playlist" and "Across variants" in live-hls-rules.md,
//! checked on rendered playlists at fixed instants (no sleeping).

use std::collections::HashMap;

use pseudolive::library::LiveStream;
use pseudolive::model::Stream;
use pseudolive::ticks::Ticks;

use crate::util::{Parsed, SegmentSeen, parse};

const S: u64 = 90_000;
/// An arbitrary fixed start: 2026-01-01T00:00:00Z in ticks.
const T0: u64 = 1_767_225_600_000 * 90;

/// Three variants whose encodes differ slightly (2.000 s vs 2.002 s vs 1.96 s),
/// 12 segments, one source discontinuity before segment 5, a long segment.
fn stream() -> LiveStream {
    let mut a = vec![2 * S; 12];
    a[7] = 3 * S + S / 3; // 3.333 s: rounds to 3 = TD
    let b: Vec<u64> = a.iter().map(|d| d + 180).collect();
    let c: Vec<u64> = a.iter().map(|d| d - 3600).collect();
    let mut disc = vec![false; 12];
    disc[5] = true;
    let s = Stream::from_durations("show", &[("low", a), ("mid", b), ("high", c)], &disc);
    LiveStream::from_stream(s, 6, Some(Ticks(T0)))
}

/// Polls every variant every 0.5 s for `seconds`, from T0.
fn poll(live: &LiveStream, seconds: u64) -> Vec<Vec<Parsed>> {
    (0..seconds * 2)
        .map(|k| {
            let now = T0 + k * S / 2;
            (0..live.stream.tracks.len())
                .map(|v| parse(&live.playlist_at(v, Ticks(now)).plain))
                .collect()
        })
        .collect()
}

#[test]
fn rule_1_extinf_within_constant_target_duration() {
    let live = stream();
    for fetch in poll(&live, 120) {
        for p in fetch {
            assert_eq!(p.target_duration, 3);
            for s in &p.segments {
                assert!((s.duration.round() as u64) <= 3, "{}", s.duration);
            }
        }
    }
}

#[test]
fn rule_2_one_minimal_version_rule_10_no_endlist_no_type() {
    let live = stream();
    let text = String::from_utf8(live.playlist_at(0, Ticks(T0)).plain.to_vec()).unwrap();
    assert!(text.starts_with("#EXTM3U\n"));
    assert_eq!(text.matches("#EXT-X-VERSION:").count(), 1);
    assert!(text.contains("#EXT-X-VERSION:3\n"));
    assert!(!text.contains("#EXT-X-ENDLIST"));
    assert!(!text.contains("#EXT-X-PLAYLIST-TYPE"));
    assert_eq!(text.matches("#EXT-X-MEDIA-SEQUENCE:").count(), 1);
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY-SEQUENCE:").count(), 1);
}

#[test]
fn rules_3_4_5_sequences_never_go_back_and_segments_never_change() {
    let live = stream();
    for v in 0..3 {
        let mut seen: HashMap<u64, SegmentSeen> = HashMap::new();
        let (mut msn, mut dsn) = (0, 0);
        for fetch in poll(&live, 200) {
            let p = &fetch[v];
            assert!(p.media_sequence >= msn && p.discontinuity_sequence >= dsn);
            // MSN rises by the number of segments that left the head, DSN by their tags.
            let removed: Vec<_> = seen
                .keys()
                .filter(|&&g| g >= msn && g < p.media_sequence)
                .collect();
            assert_eq!(removed.len() as u64, p.media_sequence - msn);
            msn = p.media_sequence;
            dsn = p.discontinuity_sequence;
            let mut cc = p.discontinuity_sequence;
            for (j, s) in p.segments.iter().enumerate() {
                let g = p.media_sequence + j as u64;
                if s.discontinuity {
                    cc += 1;
                }
                let pdt = s.pdt_ms;
                let entry = (s.uri.clone(), format!("{:.5}", s.duration), cc, pdt);
                if let Some(old) = seen.get(&g) {
                    assert_eq!(old.0, entry.0, "uri of {g}");
                    assert_eq!(old.1, entry.1, "extinf of {g}");
                    assert_eq!(old.2, entry.2, "discontinuity sequence of {g}");
                    if let (Some(a), Some(b)) = (old.3, entry.3) {
                        assert_eq!(a, b, "pdt of {g}");
                    }
                }
                seen.insert(g, entry);
            }
        }
    }
}

#[test]
fn rule_5_discontinuities_exactly_at_loop_points_and_source_ones() {
    let live = stream();
    for fetch in poll(&live, 200) {
        for p in fetch {
            for (j, s) in p.segments.iter().enumerate() {
                let g = p.media_sequence + j as u64;
                let want = (g > 0 && g.is_multiple_of(12)) || g % 12 == 5;
                assert_eq!(s.discontinuity, want, "segment {g}");
            }
        }
    }
}

#[test]
fn rule_6_window_holds_three_target_durations_and_six_segments() {
    let live = stream();
    for fetch in poll(&live, 120) {
        for p in fetch {
            let media: f64 = p.segments.iter().map(|s| s.duration).sum();
            assert!(media >= 3.0 * p.target_duration as f64 - 0.1, "{media}");
            assert!(p.segments.len() >= 6);
        }
    }
}

#[test]
fn rule_8_new_segment_within_one_and_a_half_target_durations() {
    let live = stream();
    let mut last_change = T0;
    let mut last_newest = None;
    for k in 0..2000u64 {
        let now = T0 + k * S / 10;
        let p = parse(&live.playlist_at(0, Ticks(now)).plain);
        let newest = p.media_sequence + p.segments.len() as u64;
        if Some(newest) != last_newest {
            assert!(
                now - last_change <= 3 * S * 3 / 2,
                "no new segment for {} ticks",
                now - last_change
            );
            last_change = now;
            last_newest = Some(newest);
        }
    }
}

#[test]
fn rule_9_program_date_time_first_and_after_discontinuities_moving_forward() {
    let live = stream();
    let mut previous_first_pdt = 0;
    for fetch in poll(&live, 200) {
        let p = &fetch[0];
        let first = p.segments[0].pdt_ms.expect("PDT on the first segment");
        assert!(first >= previous_first_pdt);
        previous_first_pdt = first;
        let mut expected = first;
        for s in &p.segments {
            if s.discontinuity {
                let pdt = s.pdt_ms.expect("PDT after a discontinuity");
                assert!(
                    pdt.abs_diff(expected) <= 1,
                    "PDT {pdt} vs sum of EXTINF {expected}"
                );
            }
            expected = s.pdt_ms.unwrap_or(expected) + (s.duration * 1000.0).round() as i64;
        }
    }
    let text = String::from_utf8(live.playlist_at(0, Ticks(T0)).plain.to_vec()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PROGRAM-DATE-TIME:"))
        .unwrap();
    assert_eq!(line, "#EXT-X-PROGRAM-DATE-TIME:2025-12-31T23:59:48.000Z");
}

#[test]
fn rule_12_variants_aligned_at_every_instant() {
    let live = stream();
    for fetch in poll(&live, 300) {
        let first = &fetch[0];
        for p in &fetch[1..] {
            assert_eq!(p.media_sequence, first.media_sequence);
            assert_eq!(p.segments.len(), first.segments.len());
            assert_eq!(p.discontinuity_sequence, first.discontinuity_sequence);
            assert_eq!(p.target_duration, first.target_duration);
            for (a, b) in p.segments.iter().zip(&first.segments) {
                assert_eq!(a.discontinuity, b.discontinuity);
                assert_eq!(a.pdt_ms, b.pdt_ms);
            }
        }
    }
}

#[test]
fn variants_keep_their_own_durations() {
    let live = stream();
    let low = parse(&live.playlist_at(0, Ticks(T0)).plain);
    let mid = parse(&live.playlist_at(1, Ticks(T0)).plain);
    assert_eq!(format!("{:.3}", low.segments[0].duration), "2.000");
    assert_eq!(format!("{:.3}", mid.segments[0].duration), "2.002");
}

#[test]
fn media_added_equals_wall_clock_time() {
    let live = stream();
    let at = |t: u64| parse(&live.playlist_at(0, Ticks(T0 + t)).plain);
    // End of the newest listed segment: the first PDT plus the listed media.
    let end_of = |p: &Parsed| {
        p.segments[0].pdt_ms.unwrap()
            + p.segments
                .iter()
                .map(|s| (s.duration * 1000.0).round() as i64)
                .sum::<i64>()
    };
    let (a, b) = (at(0), at(7200 * S));
    let added_ms = end_of(&b) - end_of(&a);
    // Within one segment (3.333 s at most) of the elapsed time.
    assert!(
        (added_ms - 7_200_000).abs() <= 3_334,
        "added {added_ms} ms in 7200 s"
    );
}

#[test]
fn a_two_hour_poll_never_breaks_a_rule() {
    let live = stream();
    let mut disc = vec![false; 12];
    disc[5] = true;
    let mut checker = crate::checker::LiveChecker::new(&disc, 3, 6, 3 * S + S / 3);
    // Every variant every 0.75 s (TD/4) for two hours: 9600 instants.
    for k in 0..9600u64 {
        let now = T0 + k * S * 3 / 4;
        let fetched: Vec<Parsed> = (0..3)
            .map(|v| parse(&live.playlist_at(v, Ticks(now)).plain))
            .collect();
        if let Err(e) = checker.check(now, &fetched) {
            panic!("at {} s: {e}", k * 3 / 4);
        }
    }
}
