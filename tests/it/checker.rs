//! What a careful player checks on every reload of a live stream, across
//! reloads and across variants: the live HLS rules as one reusable checker.

use std::collections::HashMap;

use crate::util::{Parsed, SegmentSeen};

const S: u64 = 90_000;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        let holds: bool = $cond;
        if !holds {
            return Err(format!($($fmt)+));
        }
    };
}

/// Remembers what was seen so far and checks each new set of fetches.
pub struct LiveChecker {
    /// Segments per loop.
    n: u64,
    /// Source discontinuity before segment i.
    disc: Vec<bool>,
    target_duration: u64,
    window: usize,
    /// Longest segment of the reference variant, ms.
    max_segment_ms: i64,
    seen: HashMap<(usize, u64), SegmentSeen>,
    last: (u64, u64),
    first_end: Option<(u64, i64)>,
}

impl LiveChecker {
    /// A checker for a stream of `disc.len()` segments per loop.
    pub fn new(disc: &[bool], target_duration: u64, window: usize, max_segment_ticks: u64) -> Self {
        LiveChecker {
            n: disc.len() as u64,
            disc: disc.to_vec(),
            target_duration,
            window,
            max_segment_ms: (max_segment_ticks / 90) as i64 + 1,
            seen: HashMap::new(),
            last: (0, 0),
            first_end: None,
        }
    }

    /// Checks the playlists of every variant fetched at `now_ticks` (index 0: the reference).
    pub fn check(&mut self, now_ticks: u64, fetched: &[Parsed]) -> Result<(), String> {
        let td = self.target_duration;
        let reference = &fetched[0];
        ensure!(
            reference.media_sequence >= self.last.0
                && reference.discontinuity_sequence >= self.last.1,
            "sequences went back: {:?} after {:?}",
            (reference.media_sequence, reference.discontinuity_sequence),
            self.last
        );
        self.last = (reference.media_sequence, reference.discontinuity_sequence);
        for (v, p) in fetched.iter().enumerate() {
            ensure!(
                p.media_sequence == reference.media_sequence,
                "variant {v}: MSN {} vs {}",
                p.media_sequence,
                reference.media_sequence
            );
            ensure!(
                p.segments.len() == reference.segments.len(),
                "variant {v}: segment count differs"
            );
            ensure!(
                p.discontinuity_sequence == reference.discontinuity_sequence,
                "variant {v}: DSN differs"
            );
            ensure!(
                p.target_duration == td,
                "variant {v}: target duration {}",
                p.target_duration
            );
            if v == 0 {
                let media: u64 = p
                    .segments
                    .iter()
                    .map(|s| (s.duration * 90_000.0).round() as u64)
                    .sum();
                ensure!(
                    media + 10 >= 3 * td * S,
                    "{media} ticks listed < 3 x {td} s"
                );
                let need = self.window.min((3 * td * S).div_ceil(12 * S) as usize);
                ensure!(
                    p.segments.len() >= need,
                    "{} segments listed",
                    p.segments.len()
                );
            }
            let mut cc = p.discontinuity_sequence;
            let mut pdt: Option<f64> = None;
            for (j, s) in p.segments.iter().enumerate() {
                let g = p.media_sequence + j as u64;
                let i = (g % self.n) as usize;
                ensure!(
                    s.duration.round() as u64 <= td,
                    "EXTINF {} > TD {td}",
                    s.duration
                );
                let want = if i == 0 { g > 0 } else { self.disc[i] };
                ensure!(
                    s.discontinuity == want,
                    "variant {v}: discontinuity tag at {g}: {} (want {want})",
                    s.discontinuity
                );
                if s.discontinuity {
                    cc += 1;
                }
                if let (0, Some(expected), Some(actual)) = (v, pdt, s.pdt_ms) {
                    ensure!(
                        (expected - actual as f64).abs() <= 1.0,
                        "PDT {actual} vs previous PDT + EXTINF {expected}"
                    );
                }
                let start = s.pdt_ms.map(|t| t as f64).or(pdt);
                ensure!(j > 0 || start.is_some(), "no PDT on the first segment");
                pdt = start.map(|t| t + s.duration * 1000.0);
                let entry = (s.uri.clone(), format!("{:.5}", s.duration), cc, s.pdt_ms);
                match self.seen.get(&(v, g)) {
                    Some(old) => {
                        ensure!(
                            old.0 == entry.0 && old.1 == entry.1 && old.2 == entry.2,
                            "variant {v} segment {g} changed: {old:?} then {entry:?}"
                        );
                        if let (Some(a), Some(b)) = (old.3, entry.3) {
                            ensure!(a == b, "variant {v} segment {g}: PDT {a} then {b}");
                        }
                    }
                    None => {
                        self.seen.insert((v, g), entry);
                    }
                }
            }
            if v == 0 {
                let end = pdt.unwrap_or_default().round() as i64;
                let (t0, e0) = *self.first_end.get_or_insert((now_ticks, end));
                let elapsed_ms = ((now_ticks - t0) / 90) as i64;
                ensure!(
                    ((end - e0) - elapsed_ms).abs() <= self.max_segment_ms,
                    "added {} ms of media in {elapsed_ms} ms",
                    end - e0
                );
            }
        }
        Ok(())
    }
}
