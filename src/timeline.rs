//! The live timeline: which segments are listed at a given instant. Pure.
//!
//! One [`Schedule`] is shared by all variants of a stream, so at any instant
//! every variant lists the same range of global segment numbers
//! `g = loop × n + index`. Times are 90 kHz ticks since the stream's anchor.

use crate::ticks::HZ;

/// A stream's loop of segments as a timetable.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Start of segment `i` within a loop; `starts[n]` is the loop length.
    starts: Vec<u64>,
    /// Source discontinuities before segment `i` of a loop, counted over `1..i`
    /// (`disc_prefix[n]` is the per-loop count, the loop point excluded).
    disc_prefix: Vec<u64>,
    /// Segments listed at least.
    window: u64,
    /// Media listed at least: 3 × target duration.
    min_window_ticks: u64,
    /// The first instant at which a full window is listed.
    full_at: u64,
}

/// The segments listed at one instant: global numbers `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Global number of the first listed segment: the media sequence.
    pub first: u64,
    /// Global number of the last listed segment.
    pub last: u64,
    /// Discontinuity tags before `first`: the discontinuity sequence.
    pub discontinuity_sequence: u64,
}

impl Schedule {
    /// A schedule over `durations` (ticks, all > 0, at least one),
    /// `discontinuities[i]` true when the source has a discontinuity before
    /// segment `i`, listing at least `window` segments and `3 × target_duration_s`.
    pub fn new(
        durations: &[u64],
        discontinuities: &[bool],
        target_duration_s: u64,
        window: usize,
    ) -> Self {
        assert!(!durations.is_empty() && durations.iter().all(|&d| d > 0));
        let mut starts = Vec::with_capacity(durations.len() + 1);
        let mut t = 0;
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
        let mut schedule = Schedule {
            starts,
            disc_prefix,
            window: window.max(1) as u64,
            min_window_ticks: 3 * target_duration_s * HZ,
            full_at: 0,
        };
        schedule.full_at = schedule.first_full_instant();
        schedule
    }

    /// Number of segments per loop.
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Always false: a schedule has at least one segment.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Length of one loop in ticks.
    pub fn loop_ticks(&self) -> u64 {
        self.starts[self.len()]
    }

    /// The instant (ticks since the anchor) at which the first full window is listed:
    /// the anchor is back-dated by this much so the first request sees a full playlist.
    pub fn full_at(&self) -> u64 {
        self.full_at
    }

    fn n(&self) -> u64 {
        self.len() as u64
    }

    /// Start of global segment `g`, in ticks since the anchor.
    pub fn start_of(&self, g: u64) -> u64 {
        (g / self.n()) * self.loop_ticks() + self.starts[(g % self.n()) as usize]
    }

    /// End of global segment `g`.
    pub fn end_of(&self, g: u64) -> u64 {
        self.start_of(g + 1)
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
    fn listed(&self, t: u64) -> u64 {
        let loops = t / self.loop_ticks();
        let rem = t % self.loop_ticks();
        // Segments i of this loop with starts[i + 1] <= rem.
        let done = self.starts[1..].partition_point(|&end| end <= rem) as u64;
        loops * self.n() + done
    }

    fn first_full_instant(&self) -> u64 {
        let mut g = 0;
        loop {
            let end = self.end_of(g);
            if g + 1 >= self.window && end >= self.min_window_ticks {
                return end;
            }
            g += 1;
        }
    }

    /// The window listed `t` ticks after the anchor. Instants before the first
    /// full window show the first full window.
    pub fn window_at(&self, t: u64) -> Window {
        let listed = self.listed(t.max(self.full_at));
        let last = listed - 1;
        let mut first = (last + 1).saturating_sub(self.window);
        let end = self.end_of(last);
        while first > 0 && end - self.start_of(first) < self.min_window_ticks {
            first -= 1;
        }
        Window {
            first,
            last,
            discontinuity_sequence: self.discontinuities_before(first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = HZ;

    fn brute_discontinuities_before(s: &Schedule, g: u64) -> u64 {
        (0..g).filter(|&x| s.has_discontinuity(x)).count() as u64
    }

    #[test]
    fn first_request_already_sees_a_full_window() {
        let s = Schedule::new(&[2 * S; 10], &[false; 10], 2, 6);
        assert_eq!(s.full_at(), 12 * S);
        let w = s.window_at(0);
        assert_eq!((w.first, w.last), (0, 5));
        assert_eq!(s.window_at(12 * S), w);
    }

    #[test]
    fn segment_listed_once_its_end_has_passed() {
        let s = Schedule::new(&[2 * S; 10], &[false; 10], 2, 6);
        assert_eq!(s.window_at(14 * S - 1).last, 5);
        assert_eq!(s.window_at(14 * S).last, 6);
        assert_eq!(s.window_at(14 * S).first, 1);
    }

    #[test]
    fn window_holds_three_target_durations() {
        // 1 s segments, target duration 4 (one long segment elsewhere): 12 s needed.
        let mut d = vec![S; 20];
        d[10] = 4 * S;
        let s = Schedule::new(&d, &[false; 20], 4, 3);
        for t in (0..200).map(|x| x * S / 2) {
            let w = s.window_at(t);
            assert!(s.end_of(w.last) - s.start_of(w.first) >= 12 * S, "{w:?}");
            assert!(w.last - w.first + 1 >= 3);
        }
    }

    #[test]
    fn loops_and_discontinuities_in_closed_form() {
        let mut disc = vec![false; 7];
        disc[0] = true; // merged with the loop point
        disc[3] = true;
        disc[6] = true;
        let s = Schedule::new(&[S, 2 * S, S, 3 * S, S, S, 2 * S], &disc, 3, 3);
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
        let s = Schedule::new(&[S; 4], &disc, 1, 2);
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
        let s = Schedule::new(&[2 * S], &[false], 2, 6);
        let w = s.window_at(0);
        assert_eq!((w.first, w.last), (0, 5));
        assert_eq!(w.discontinuity_sequence, 0);
        let w = s.window_at(100 * S);
        assert_eq!(w.last, 49);
        assert_eq!(w.discontinuity_sequence, w.first - 1);
    }
}
