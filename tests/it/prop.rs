//! Property tests: random streams, random increasing instants over several
//! loops, every live rule holds at every instant; continuous timestamps over
//! a real stream with damaged run edges never panic.

use proptest::prelude::*;
use pseudolive::library::LiveStream;
use pseudolive::model::Stream;
use pseudolive::ticks::Ticks;

use crate::checker::LiveChecker;
use crate::util::parse;

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
        let stream = Stream::from_durations("s", &spec, &disc);
        let td = stream.target_duration_s;
        let loop_ticks = stream.schedule.loop_duration().0;
        let live = LiveStream::from_stream(stream, window as u64, Some(Ticks(T0)));
        // Steps scaled so the instants span at least three loops.
        let total: u64 = steps.iter().sum();
        let scale = (3 * loop_ticks + 3 * S).div_ceil(total);
        let mut now = T0;
        let max_segment = tracks[0].iter().copied().max().unwrap_or(0);
        let mut checker = LiveChecker::new(&disc, td, window, max_segment);
        for step in steps {
            now += step * scale;
            let fetched: Vec<_> = (0..tracks.len()).map(|v| parse(&live.playlist_at(v, Ticks(now)).plain)).collect();
            if let Err(e) = checker.check(now, &fetched) {
                return Err(TestCaseError::fail(e));
            }
        }
    }
}

/// The av25 fixture's segments.
fn av25() -> Vec<Vec<u8>> {
    (0..5)
        .map(|i| std::fs::read(crate::util::fixture("av25").join(format!("seg_00{i}.ts"))).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Continuous timestamps over a real stream whose run-start and run-end
    /// segments are damaged (bytes overwritten where the leading audio PES
    /// and the last audio PES sit): the plan builds or reports an error, and
    /// every served segment has its source's length; the same segment
    /// number gives the same bytes.
    #[test]
    fn damaged_run_edges_never_panic(
        damage in proptest::collection::vec((0usize..2, 0usize..12_000, any::<u8>()), 1..60),
        g in 0u64..1_000_000,
    ) {
        use pseudolive::restamp::ts::{PlanSegment, TsRestampPlan, restamped};
        let mut segments = av25();
        for (which, at, v) in damage {
            let seg = &mut segments[[0, 4][which]];
            let at = if which == 0 { at } else { seg.len().saturating_sub(1 + at) };
            if let Some(b) = seg.get_mut(at) {
                *b = v;
            }
        }
        let plan_segments = [PlanSegment { starts_run: true, duration_ticks: 180_000 }]
            .into_iter()
            .chain(std::iter::repeat_n(PlanSegment { starts_run: false, duration_ticks: 180_000 }, 4))
            .collect::<Vec<_>>();
        let read = |i: usize| Ok::<_, ()>(&segments[i]);
        let Ok((plan, _)) = TsRestampPlan::build(&plan_segments, pseudolive::restamp::BASE_TICKS, read) else {
            return Ok(());
        };
        for g in [g - g % 5, g - g % 5 + 4, g] {
            let seg = &segments[(g % 5) as usize];
            let shift = plan.for_segment(g, g * 180_000);
            let out = restamped(seg, &shift);
            prop_assert_eq!(out.len(), seg.len());
            prop_assert_eq!(restamped(seg, &plan.for_segment(g, g * 180_000)), out);
        }
    }
}
