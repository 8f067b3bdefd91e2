//! The live edge at part granularity, and the blocking-reload rules of
//! RFC 8216bis §6.2.5.2. Pure: a schedule, the parts of one loop and an
//! instant in; positions, instants and verdicts out.
//!
//! Part `p` of segment `g` exists once its end has passed: at
//! `start_of(g) + parts(g)[p].end()` on the track's schedule. Segment `g`
//! is complete once its last part has ended, which is the instant the
//! timeline lists it, so parts and segments agree.

use crate::ticks::Ticks;
use crate::timeline::Schedule;

/// A part's place in its segment, as the timeline needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartTime {
    /// Start, since the segment's start.
    pub start: Ticks,
    /// Duration.
    pub duration: Ticks,
    /// Starts with an independent frame.
    pub independent: bool,
}

impl PartTime {
    /// End, since the segment's start.
    pub fn end(&self) -> Ticks {
        self.start + self.duration
    }
}

/// The parts of every segment of one loop of a track, for one part target.
#[derive(Debug, Clone)]
pub struct LoopParts {
    /// The part target duration.
    pub target: Ticks,
    /// Per segment of the loop, its parts in order (at least one each).
    segments: Vec<Vec<PartTime>>,
}

/// Segment `msn`, part `part`: a part's position on the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartPos {
    /// Media sequence number of the parent segment.
    pub msn: u64,
    /// Index of the part in its parent.
    pub part: u64,
}

impl LoopParts {
    /// Parts for `target` from each segment's parts.
    ///
    /// # Panics
    /// When a segment has no parts: carving always gives at least one.
    pub fn new(target: Ticks, segments: Vec<Vec<PartTime>>) -> LoopParts {
        assert!(!segments.is_empty() && segments.iter().all(|p| !p.is_empty()));
        LoopParts { target, segments }
    }

    /// The parts of global segment `g`.
    pub fn of(&self, g: u64) -> &[PartTime] {
        &self.segments[(g % self.segments.len() as u64) as usize]
    }

    /// `pos`, with a part index past its parent's last part read as part 0
    /// of the next segment (§6.2.5.2).
    pub fn normalise(&self, pos: PartPos) -> PartPos {
        if pos.part >= self.of(pos.msn).len() as u64 {
            PartPos {
                msn: pos.msn + 1,
                part: 0,
            }
        } else {
            pos
        }
    }

    /// The part after `pos`.
    pub fn next(&self, pos: PartPos) -> PartPos {
        self.normalise(PartPos {
            msn: pos.msn,
            part: pos.part + 1,
        })
    }

    /// When part `pos` (normalised) has ended, since the anchor.
    pub fn end_of(&self, schedule: &Schedule, pos: PartPos) -> Ticks {
        let pos = self.normalise(pos);
        schedule.start_of(pos.msn) + self.of(pos.msn)[pos.part as usize].end()
    }

    /// The Advance Part Limit of §6.2.5.2: 3 / PART-TARGET parts below a
    /// one-second target, else 3.
    pub fn advance_part_limit(&self) -> u64 {
        if self.target < Ticks::from_secs(1) {
            (3 * crate::ticks::HZ).div_ceil(self.target.0.max(1))
        } else {
            3
        }
    }
}

/// The live edge of one track at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The segment in progress: its ended parts follow the complete segments.
    pub partial: u64,
    /// How many of its parts have ended.
    pub parts_done: u64,
}

impl Edge {
    /// The edge at `t` (since the anchor) on `schedule` with `parts`.
    pub fn at(schedule: &Schedule, parts: &LoopParts, t: Ticks) -> Edge {
        let partial = schedule.listed(t);
        let into = t.saturating_sub(schedule.start_of(partial));
        let parts_done = parts
            .of(partial)
            .iter()
            .take_while(|p| p.end() <= into)
            .count() as u64;
        Edge {
            partial,
            parts_done,
        }
    }

    /// The last complete segment, if any.
    pub fn last_segment(&self) -> Option<u64> {
        self.partial.checked_sub(1)
    }

    /// The newest part that exists: the last ended part of the segment in
    /// progress, else the last part of the segment before it.
    pub fn last_part(&self, parts: &LoopParts) -> Option<PartPos> {
        if self.parts_done > 0 {
            return Some(PartPos {
                msn: self.partial,
                part: self.parts_done - 1,
            });
        }
        let msn = self.partial.checked_sub(1)?;
        Some(PartPos {
            msn,
            part: parts.of(msn).len() as u64 - 1,
        })
    }

    /// The next part to come: the one a preload hint names.
    pub fn hint(&self) -> PartPos {
        PartPos {
            msn: self.partial,
            part: self.parts_done,
        }
    }
}

/// What a playlist request carrying `_HLS_msn` (and perhaps `_HLS_part`)
/// gets at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// What it asks for exists: answer now.
    Now,
    /// Hold the request until this instant (since the anchor).
    Until(Ticks),
    /// 400: asks too far ahead (or is malformed).
    BadRequest(String),
}

/// The blocking-reload verdict for `_HLS_msn=msn[&_HLS_part=part]` at `t`.
/// A track without `parts` (listed by whole segments) waits for segment
/// `msn` whatever part is asked for.
pub fn reload(
    schedule: &Schedule,
    parts: Option<&LoopParts>,
    t: Ticks,
    msn: u64,
    part: Option<u64>,
) -> Reload {
    let listed = schedule.listed(t);
    if msn > listed + 1 {
        return Reload::BadRequest(format!(
            "_HLS_msn={msn} is more than two segments past the last one ({})",
            listed
                .checked_sub(1)
                .map_or("none".into(), |l| l.to_string())
        ));
    }
    let (Some(part), Some(parts)) = (part, parts) else {
        let ready = schedule.end_of(msn);
        return if ready <= t {
            Reload::Now
        } else {
            Reload::Until(ready)
        };
    };
    let wanted = parts.normalise(PartPos { msn, part });
    let hint = Edge::at(schedule, parts, t).hint();
    if wanted < hint {
        return Reload::Now;
    }
    // Count the parts from the newest one to the one asked for.
    let limit = parts.advance_part_limit();
    let mut pos = hint;
    let mut ahead = 1;
    while pos < wanted {
        pos = parts.next(pos);
        ahead += 1;
        if ahead > limit {
            return Reload::BadRequest(format!(
                "_HLS_msn={msn}&_HLS_part={part} is more than {limit} parts past the newest one"
            ));
        }
    }
    Reload::Until(parts.end_of(schedule, wanted))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = crate::ticks::HZ;

    /// 2 s segments of four 0.5 s parts, one keyframe per segment.
    fn setup(n: usize) -> (Schedule, LoopParts) {
        let schedule = Schedule::new(&vec![Ticks(2 * S); n], &vec![false; n]);
        let seg: Vec<PartTime> = (0..4)
            .map(|p| PartTime {
                start: Ticks(p * S / 2),
                duration: Ticks(S / 2),
                independent: p == 0,
            })
            .collect();
        (schedule, LoopParts::new(Ticks(S / 2), vec![seg; n]))
    }

    #[test]
    fn parts_appear_when_they_end() {
        let (s, p) = setup(5);
        // 10.4 s: segments 0..=4 complete, segment 5 in progress, nothing ended.
        let e = Edge::at(&s, &p, Ticks(10 * S + 4 * S / 10));
        assert_eq!((e.partial, e.parts_done), (5, 0));
        assert_eq!(e.last_part(&p), Some(PartPos { msn: 4, part: 3 }));
        assert_eq!(e.hint(), PartPos { msn: 5, part: 0 });
        let e = Edge::at(&s, &p, Ticks(10 * S + S / 2));
        assert_eq!((e.partial, e.parts_done), (5, 1));
        let e = Edge::at(&s, &p, Ticks(12 * S - 1));
        assert_eq!((e.partial, e.parts_done), (5, 3));
        // The last part's end is the segment's end: the segment is complete.
        let e = Edge::at(&s, &p, Ticks(12 * S));
        assert_eq!((e.partial, e.parts_done), (6, 0));
    }

    #[test]
    fn part_past_the_last_is_the_next_segments_first() {
        let (s, p) = setup(5);
        assert_eq!(
            p.normalise(PartPos { msn: 3, part: 4 }),
            PartPos { msn: 4, part: 0 }
        );
        assert_eq!(
            p.end_of(&s, PartPos { msn: 3, part: 4 }),
            Ticks(8 * S + S / 2)
        );
    }

    #[test]
    fn blocking_waits_for_the_part_asked_for() {
        let (s, p) = setup(5);
        let t = Ticks(10 * S + S / 2); // part 5.0 exists
        assert_eq!(reload(&s, Some(&p), t, 5, Some(0)), Reload::Now);
        assert_eq!(reload(&s, Some(&p), t, 4, None), Reload::Now);
        assert_eq!(
            reload(&s, Some(&p), t, 5, Some(1)),
            Reload::Until(Ticks(11 * S))
        );
        assert_eq!(
            reload(&s, Some(&p), t, 5, None),
            Reload::Until(Ticks(12 * S))
        );
        // Part 4 of segment 5 is part 0 of segment 6.
        assert_eq!(
            reload(&s, Some(&p), t, 5, Some(4)),
            Reload::Until(Ticks(12 * S + S / 2))
        );
    }

    #[test]
    fn too_far_ahead_is_refused() {
        let (s, p) = setup(5);
        let t = Ticks(10 * S + S / 2); // last complete segment: 4
        assert_eq!(
            reload(&s, Some(&p), t, 6, None),
            Reload::Until(Ticks(14 * S))
        );
        assert!(matches!(
            reload(&s, Some(&p), t, 7, None),
            Reload::BadRequest(_)
        ));
        // Target 0.5 s: the advance part limit is 6 parts; the next to come is 5.1.
        assert_eq!(p.advance_part_limit(), 6);
        assert!(matches!(
            reload(&s, Some(&p), t, 6, Some(2)),
            Reload::Until(_)
        ));
        assert!(matches!(
            reload(&s, Some(&p), t, 6, Some(3)),
            Reload::BadRequest(_)
        ));
    }

    #[test]
    fn a_track_without_parts_blocks_by_segment() {
        let (s, _) = setup(5);
        let t = Ticks(10 * S + S / 2);
        assert_eq!(
            reload(&s, None, t, 5, Some(1)),
            Reload::Until(Ticks(12 * S))
        );
        assert_eq!(reload(&s, None, t, 4, Some(9)), Reload::Now);
        assert!(matches!(
            reload(&s, None, t, 7, None),
            Reload::BadRequest(_)
        ));
    }

    #[test]
    fn advance_part_limit_follows_the_target() {
        let seg = vec![PartTime {
            start: Ticks(0),
            duration: Ticks(S),
            independent: true,
        }];
        assert_eq!(
            LoopParts::new(Ticks(S), vec![seg.clone()]).advance_part_limit(),
            3
        );
        assert_eq!(
            LoopParts::new(Ticks(2 * S), vec![seg.clone()]).advance_part_limit(),
            3
        );
        assert_eq!(
            LoopParts::new(Ticks(S / 5), vec![seg]).advance_part_limit(),
            15
        );
    }

    #[test]
    fn edges_across_loop_points() {
        let (s, p) = setup(3); // a 6 s loop
        for k in 0..4u64 {
            let base = 6 * S * k;
            let e = Edge::at(&s, &p, Ticks(base + 2 * S + S));
            assert_eq!((e.partial, e.parts_done), (3 * k + 1, 2));
            assert_eq!(
                p.end_of(
                    &s,
                    PartPos {
                        msn: 3 * k + 1,
                        part: 2
                    }
                ),
                Ticks(base + 2 * S + 3 * S / 2)
            );
        }
    }
}
