//! The live timeline: which segments are listed at a given instant. Pure.
//!
//! One [`Schedule`] is shared by all variants of a stream, so at any instant
//! every variant lists the same range of global segment numbers
//! `g = loop × n + index`. Times are [`Ticks`] since the stream's anchor.
//! How many segments a playlist lists is a [`WindowRule`], a property of the
//! request: the schedule, and so the media sequence numbers, do not depend on it.
//! At low latency, [`parts`] places each segment's parts on the same clock.

pub mod parts;

use crate::ticks::Ticks;

/// A stream's loop of segments as a timetable.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Start of segment `i` within a loop; `starts[n]` is the loop length.
    starts: Vec<Ticks>,
    /// Source discontinuities before segment `i` of a loop, counted over `1..i`
    /// (`disc_prefix[n]` is the per-loop count, the loop point excluded).
    disc_prefix: Vec<u64>,
}

/// How much a playlist lists: at least `segments` segments and at least
/// `min_duration` of media (3 × target duration, or a DVR depth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WindowRule {
    /// Segments listed at least.
    pub segments: u64,
    /// Media listed at least.
    pub min_duration: Ticks,
}

impl WindowRule {
    /// `segments` segments (at least one) and at least 3 × `target_duration_s` of media.
    pub fn new(segments: u64, target_duration_s: u64) -> WindowRule {
        WindowRule {
            segments: segments.max(1),
            min_duration: Ticks::from_secs(3 * target_duration_s),
        }
    }
}

/// The segments listed at one instant: global numbers `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Global number of the first listed segment: the media sequence.
    pub first: u64,
    /// Global number of the last listed segment.
    pub last: u64,
    /// Discontinuity tags before `first`: the discontinuity sequence.
    pub discontinuity_sequence: u64,
}

impl Schedule {
    /// A schedule over `durations` (all > 0, at least one), `discontinuities[i]`
    /// true when the source has a discontinuity before segment `i`.
    ///
    /// # Panics
    /// When `durations` is empty or holds a zero: the loader never builds such a stream.
    pub fn new(durations: &[Ticks], discontinuities: &[bool]) -> Self {
        assert!(!durations.is_empty() && durations.iter().all(|&d| d > Ticks::ZERO));
        let mut starts = Vec::with_capacity(durations.len() + 1);
        let mut t = Ticks::ZERO;
        for &d in durations {
            starts.push(t);
            t += d;
        }
        starts.push(t);
        let mut disc_prefix = Vec::with_capacity(durations.len() + 1);
        disc_prefix.push(0);
        let mut count = 0;
        for i in 1..=durations.len() {
            disc_prefix.push(count); // discontinuities at 1..i
            count += u64::from(discontinuities.get(i).copied().unwrap_or(false));
        }
        Schedule {
            starts,
            disc_prefix,
        }
    }

    /// A schedule for a track segmented differently from the reference:
    /// its own durations, with the loop made exactly `loop_duration` long by
    /// lengthening or shortening its last segments (never below 1 ms each),
    /// so it loops on the reference's clock and never drifts. `None` when the
    /// track is too short or too long for that.
    pub fn fitted(
        durations: &[Ticks],
        discontinuities: &[bool],
        loop_duration: Ticks,
    ) -> Option<Schedule> {
        let floor = Ticks::from_ms(1);
        let mut fitted = durations.to_vec();
        let own: Ticks = durations.iter().copied().sum();
        if own <= loop_duration {
            *fitted.last_mut()? += loop_duration - own;
        } else {
            let mut excess = own - loop_duration;
            for d in fitted.iter_mut().rev() {
                let take = excess.min(d.saturating_sub(floor));
                *d = *d - take;
                excess = excess - take;
            }
            if excess > Ticks::ZERO {
                return None;
            }
        }
        if fitted.contains(&Ticks::ZERO) {
            return None;
        }
        Some(Schedule::new(&fitted, discontinuities))
    }

    /// The window of this schedule covering the same span as `reference`'s
    /// `window`: from the segment holding the span's start to the last
    /// segment ended by `t` (or by the span's end, before a timeline starts).
    pub fn window_like(&self, reference: &Schedule, window: Window, t: Ticks) -> Window {
        let span_start = reference.start_of(window.first);
        let span_end = reference.end_of(window.last);
        let first = self.listed(span_start);
        let last = (self.listed(t.max(span_end)).max(1) - 1).max(first);
        Window {
            first,
            last,
            discontinuity_sequence: self.discontinuities_before(first),
        }
    }

    /// Number of segments per loop.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Always false: a schedule has at least one segment.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Length of one loop.
    pub fn loop_duration(&self) -> Ticks {
        self.starts[self.len()]
    }

    fn n(&self) -> u64 {
        self.len() as u64
    }

    /// Start of global segment `g`, since the anchor.
    pub fn start_of(&self, g: u64) -> Ticks {
        self.loop_duration() * (g / self.n()) + self.starts[(g % self.n()) as usize]
    }

    /// End of global segment `g`.
    pub fn end_of(&self, g: u64) -> Ticks {
        self.start_of(g + 1)
    }

    /// Duration of global segment `g` on this schedule.
    pub fn duration_of(&self, g: u64) -> Ticks {
        let i = (g % self.n()) as usize;
        self.starts[i + 1] - self.starts[i]
    }

    /// Whether an `EXT-X-DISCONTINUITY` precedes global segment `g`: at every
    /// loop point after the first and wherever the source had one.
    pub fn has_discontinuity(&self, g: u64) -> bool {
        let i = (g % self.n()) as usize;
        if i == 0 {
            g > 0
        } else {
            self.disc_prefix[i + 1] > self.disc_prefix[i]
        }
    }

    /// Number of discontinuity tags before global segment `g`, in closed form.
    pub fn discontinuities_before(&self, g: u64) -> u64 {
        if g == 0 {
            return 0;
        }
        let (k, i) = (g / self.n(), (g % self.n()) as usize);
        let loop_points = (g - 1) / self.n();
        k * self.disc_prefix[self.len()] + loop_points + self.disc_prefix[i]
    }

    /// Number of segments whose end is at or before `t`.
    pub fn listed(&self, t: Ticks) -> u64 {
        let loop_duration = self.loop_duration().0;
        let loops = t.0 / loop_duration;
        let rem = Ticks(t.0 % loop_duration);
        // Segments i of this loop with starts[i + 1] <= rem.
        let done = self.starts[1..].partition_point(|&end| end <= rem) as u64;
        loops * self.n() + done
    }

    /// The first instant at which `rule` is met: the anchor is back-dated by
    /// this much (for the server's default rule) so the first request
    /// already sees a full playlist.
    pub fn first_full_instant(&self, rule: WindowRule) -> Ticks {
        let mut g = 0;
        loop {
            let end = self.end_of(g);
            if g + 1 >= rule.segments && end >= rule.min_duration {
                return end;
            }
            g += 1;
        }
    }

    /// The window listed `t` after the anchor under `rule`. Before a full
    /// window exists (a timeline that has not started yet) this is the first
    /// full window.
    pub fn window_at(&self, t: Ticks, rule: WindowRule) -> Window {
        if let Some(w) = self.window_ending(self.listed(t), rule) {
            return w;
        }
        let listed = self.listed(self.first_full_instant(rule));
        self.window_ending(listed, rule).unwrap_or(Window {
            first: 0,
            last: listed.max(1) - 1,
            discontinuity_sequence: 0,
        })
    }

    /// The window ending with segment `last` under `rule`, or from segment 0
    /// when there is not that much history yet.
    pub fn window_ending_at(&self, last: u64, rule: WindowRule) -> Window {
        self.window_ending(last + 1, rule).unwrap_or(Window {
            first: 0,
            last,
            discontinuity_sequence: 0,
        })
    }

    /// The window whose newest segment is `listed − 1`, if `rule` can be met.
    fn window_ending(&self, listed: u64, rule: WindowRule) -> Option<Window> {
        let last = listed.checked_sub(1)?;
        let mut first = (last + 1).saturating_sub(rule.segments);
        let covered = |first: u64| self.end_of(last) - self.start_of(first);
        while first > 0 && covered(first) < rule.min_duration {
            first -= 1;
        }
        (last + 1 - first >= rule.segments && covered(first) >= rule.min_duration).then(|| Window {
            first,
            last,
            discontinuity_sequence: self.discontinuities_before(first),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = crate::ticks::HZ;

    fn sched(d: &[u64], disc: &[bool]) -> Schedule {
        let d: Vec<Ticks> = d.iter().map(|&x| Ticks(x)).collect();
        Schedule::new(&d, disc)
    }

    fn brute_discontinuities_before(s: &Schedule, g: u64) -> u64 {
        (0..g).filter(|&x| s.has_discontinuity(x)).count() as u64
    }

    #[test]
    fn first_request_already_sees_a_full_window() {
        let s = sched(&[2 * S; 10], &[false; 10]);
        let rule = WindowRule::new(6, 2);
        assert_eq!(s.first_full_instant(rule), Ticks(12 * S));
        let w = s.window_at(Ticks::ZERO, rule);
        assert_eq!((w.first, w.last), (0, 5));
        assert_eq!(s.window_at(Ticks(12 * S), rule), w);
    }

    #[test]
    fn segment_listed_once_its_end_has_passed() {
        let s = sched(&[2 * S; 10], &[false; 10]);
        let rule = WindowRule::new(6, 2);
        assert_eq!(s.window_at(Ticks(14 * S - 1), rule).last, 5);
        assert_eq!(s.window_at(Ticks(14 * S), rule).last, 6);
        assert_eq!(s.window_at(Ticks(14 * S), rule).first, 1);
    }

    #[test]
    fn window_holds_three_target_durations() {
        // 1 s segments, target duration 4 (one long segment elsewhere): 12 s needed.
        let mut d = vec![S; 20];
        d[10] = 4 * S;
        let s = sched(&d, &[false; 20]);
        let rule = WindowRule::new(3, 4);
        for t in (0..200).map(|x| Ticks(x * S / 2)) {
            let w = s.window_at(t, rule);
            assert!(
                s.end_of(w.last) - s.start_of(w.first) >= Ticks(12 * S),
                "{w:?}"
            );
            assert!(w.last - w.first + 1 >= 3);
        }
    }

    #[test]
    fn loops_and_discontinuities_in_closed_form() {
        let mut disc = vec![false; 7];
        disc[0] = true; // merged with the loop point
        disc[3] = true;
        disc[6] = true;
        let s = sched(&[S, 2 * S, S, 3 * S, S, S, 2 * S], &disc);
        assert!(!s.has_discontinuity(0));
        assert!(s.has_discontinuity(3));
        assert!(s.has_discontinuity(6));
        assert!(s.has_discontinuity(7));
        assert!(!s.has_discontinuity(8));
        for g in 0..100 {
            assert_eq!(
                s.discontinuities_before(g),
                brute_discontinuities_before(&s, g),
                "g={g}"
            );
        }
    }

    #[test]
    fn last_segment_discontinuity_counts_once_per_loop() {
        let mut disc = vec![false; 4];
        disc[3] = true;
        let s = sched(&[S; 4], &disc);
        for g in 0..40 {
            assert_eq!(
                s.discontinuities_before(g),
                brute_discontinuities_before(&s, g),
                "g={g}"
            );
        }
    }

    #[test]
    fn single_segment_stream_loops() {
        let s = sched(&[2 * S], &[false]);
        let rule = WindowRule::new(6, 2);
        let w = s.window_at(Ticks::ZERO, rule);
        assert_eq!((w.first, w.last), (0, 5));
        assert_eq!(w.discontinuity_sequence, 0);
        let w = s.window_at(Ticks(100 * S), rule);
        assert_eq!(w.last, 49);
        assert_eq!(w.discontinuity_sequence, w.first - 1);
    }

    #[test]
    fn a_fitted_track_loops_on_the_reference_clock() {
        // 15 × 2 s of video; audio cut as 15 × 2 s plus a 23 ms tail.
        let video = sched(&[2 * S; 15], &[false; 15]);
        let mut audio: Vec<Ticks> = vec![Ticks(2 * S); 15];
        audio.push(Ticks(2070));
        let audio = Schedule::fitted(&audio, &[false; 16], video.loop_duration()).unwrap();
        assert_eq!(audio.loop_duration(), video.loop_duration());
        assert_eq!(audio.len(), 16);
        // Loop 1000 starts at the same instant in both: no drift.
        assert_eq!(audio.start_of(16 * 1000), video.start_of(15 * 1000));
        let rule = WindowRule::new(6, 2);
        for t in (0..2000).map(|x| Ticks(x * S / 3)) {
            let v = video.window_at(t, rule);
            let a = audio.window_like(&video, v, t);
            // The audio window covers the video window's span.
            assert!(audio.start_of(a.first) <= video.start_of(v.first), "{t:?}");
            assert!(audio.end_of(a.first) > video.start_of(v.first), "{t:?}");
            assert!(audio.end_of(a.last) <= t.max(video.end_of(v.last)), "{t:?}");
            assert!(
                audio.end_of(a.last) + Ticks(2 * S) > video.end_of(v.last),
                "{t:?}"
            );
            // Loop points line up, so the discontinuity sequences agree.
            assert_eq!(a.discontinuity_sequence, v.discontinuity_sequence, "{t:?}");
        }
        // Too short or too long to be stretched onto the clock.
        assert!(Schedule::fitted(&[Ticks(S)], &[false], Ticks(S / 2)).is_some());
        assert!(Schedule::fitted(&[Ticks(S), Ticks(S)], &[false; 2], Ticks(1)).is_none());
    }

    #[test]
    fn the_window_rule_moves_neither_sequence_numbers_nor_segment_times() {
        let s = sched(&[2 * S; 10], &[false; 10]);
        let t = Ticks(500 * S);
        let short = s.window_at(t, WindowRule::new(3, 2));
        let long = s.window_at(t, WindowRule::new(30, 2));
        let dvr = s.window_at(
            t,
            WindowRule {
                segments: 1,
                min_duration: Ticks::from_secs(120),
            },
        );
        assert_eq!((short.last, long.last, dvr.last), (249, 249, 249));
        assert_eq!(short.first, 247);
        assert_eq!(long.first, 220);
        assert_eq!(dvr.first, 190);
        assert_eq!(dvr.discontinuity_sequence, s.discontinuities_before(190));
    }
}
