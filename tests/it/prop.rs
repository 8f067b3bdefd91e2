//! Property test: random streams, random increasing instants over several
//! loops; every live rule holds at every instant.

use std::collections::HashMap;

use proptest::prelude::*;
use pseudolive::library::Stream;
use pseudolive::live::LiveStream;

use crate::util::{SegmentSeen, parse};

const S: u64 = 90_000;
const T0: u64 = 1_800_000_000_000 * 90;

fn streams() -> impl Strategy<Value = (Vec<Vec<u64>>, Vec<bool>, usize)> {
    (1usize..=500, 1usize..=5, 1usize..=8).prop_flat_map(|(n, variants, window)| {
        let durations = proptest::collection::vec(S / 2..=12 * S, n);
        let jitter =
            proptest::collection::vec(proptest::collection::vec(0u64..=3600, n), variants - 1);
        let disc = proptest::collection::vec(proptest::bool::weighted(0.05), n);
        (durations, jitter, disc, Just(window)).prop_map(|(d, jitter, disc, window)| {
            let mut tracks = vec![d.clone()];
            for j in jitter {
                tracks.push(d.iter().zip(j).map(|(a, b)| a + b).collect());
            }
            (tracks, disc, window)
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn live_rules_hold_over_loops((tracks, disc, window) in streams(), steps in proptest::collection::vec(1u64..1000, 150)) {
        let names: Vec<String> = (0..tracks.len()).map(|i| format!("v{i}")).collect();
        let spec: Vec<(&str, Vec<u64>)> = names.iter().map(String::as_str).zip(tracks.iter().cloned()).collect();
        let stream = Stream::from_durations("s", &spec, &disc, window);
        let n = tracks[0].len() as u64;
        let td = stream.target_duration;
        let loop_ticks = stream.schedule.loop_ticks();
        let live = LiveStream::new(stream, Some(T0 / 90));
        // Steps scaled so the instants span at least three loops.
        let total: u64 = steps.iter().sum();
        let scale = (3 * loop_ticks + 3 * S).div_ceil(total);
        let mut now = T0;
        let mut seen: HashMap<(usize, u64), SegmentSeen> = HashMap::new();
        let mut last = (0u64, 0u64);
        let mut first_instant_end: Option<(u64, i64)> = None;
        for step in steps {
            now += step * scale;
            let fetched: Vec<_> = (0..tracks.len()).map(|v| parse(&live.media_playlist(v, now).plain)).collect();
            let reference = &fetched[0];
            prop_assert!(reference.media_sequence >= last.0 && reference.discontinuity_sequence >= last.1);
            last = (reference.media_sequence, reference.discontinuity_sequence);
            for (v, p) in fetched.iter().enumerate() {
                prop_assert_eq!(p.media_sequence, reference.media_sequence);
                prop_assert_eq!(p.segments.len(), reference.segments.len());
                prop_assert_eq!(p.discontinuity_sequence, reference.discontinuity_sequence);
                prop_assert_eq!(p.target_duration, td);
                let media: u64 = p.segments.iter().map(|s| (s.duration * 90_000.0).round() as u64).sum();
                if v == 0 {
                    prop_assert!(media + 10 >= 3 * td * S, "{} < 3 x {}", media, td);
                    prop_assert!(p.segments.len() >= window.min((3 * td * S).div_ceil(12 * S) as usize));
                }
                let mut cc = p.discontinuity_sequence;
                let mut pdt: Option<f64> = None;
                for (j, s) in p.segments.iter().enumerate() {
                    let g = p.media_sequence + j as u64;
                    let i = (g % n) as usize;
                    prop_assert!(s.duration.round() as u64 <= td);
                    let want_disc = if i == 0 { g > 0 } else { disc[i] };
                    prop_assert_eq!(s.discontinuity, want_disc, "discontinuity at {}", g);
                    if s.discontinuity { cc += 1; }
                    if let (0, Some(expected), Some(actual)) = (v, pdt, s.pdt_ms) {
                        prop_assert!((expected - actual as f64).abs() <= 1.0, "PDT {} vs {}", actual, expected);
                    }
                    let start = s.pdt_ms.map(|t| t as f64).or(pdt);
                    prop_assert!(j > 0 || start.is_some(), "PDT on the first segment");
                    pdt = start.map(|t| t + s.duration * 1000.0);
                    let entry = (s.uri.clone(), format!("{:.5}", s.duration), cc, s.pdt_ms);
                    match seen.get(&(v, g)) {
                        Some(old) => {
                            prop_assert_eq!(&old.0, &entry.0);
                            prop_assert_eq!(&old.1, &entry.1);
                            prop_assert_eq!(old.2, entry.2);
                            if let (Some(a), Some(b)) = (old.3, entry.3) { prop_assert_eq!(a, b); }
                        }
                        None => { seen.insert((v, g), entry); }
                    }
                }
                if v == 0 {
                    let end = pdt.unwrap().round() as i64;
                    let (t0, e0) = *first_instant_end.get_or_insert((now, end));
                    // Media added since the first fetch equals the time elapsed, within one segment.
                    let elapsed_ms = ((now - t0) / 90) as i64;
                    prop_assert!(((end - e0) - elapsed_ms).abs() <= 12_001, "added {} ms in {} ms", end - e0, elapsed_ms);
                }
            }
        }
    }
}
