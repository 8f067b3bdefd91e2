//! Choosing part boundaries: pure, over frame times.
//!
//! The rules (RFC 8216bis 4.4.4.9): a part lasts at most the PART-TARGET;
//! it lasts at least 85 % of it unless it starts with an independent frame
//! or is the last part of its segment. On top of them: a keyframe (an
//! independent frame after a dependent one) always starts a part, so each
//! `INDEPENDENT=YES` part starts at the keyframe it announces and a player
//! joining there can decode it. When every frame is independent (audio),
//! every part is exempt from the 85 % floor and no frame forces a boundary.
//!
//! Among the cuts that keep the rules, the one with the fewest parts wins,
//! then the one whose shortest part is longest (the most even). Dynamic
//! programming from the segment's end: `O(frames × frames per part)`, a few
//! thousand steps for a segment.

use super::{Frame, Part, SegmentFrames};
use crate::ticks::Ticks;

/// Why a segment cannot be carved for a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarveError {
    /// No frames.
    #[error("no frames to carve")]
    NoFrames,
    /// A zero target.
    #[error("zero part target")]
    ZeroTarget,
    /// Frame times that do not increase.
    #[error("frame {frame} is not after the one before it")]
    NotIncreasing {
        /// Index of the frame.
        frame: usize,
    },
    /// The segment ends at or before its last frame starts.
    #[error(
        "segment duration {} ms ends at or before its last frame ({} ms)",
        duration.as_ms(),
        last.as_ms()
    )]
    EndsBeforeLastFrame {
        /// The segment duration given.
        duration: Ticks,
        /// Start of the last frame.
        last: Ticks,
    },
    /// One frame alone is longer than the target.
    #[error(
        "frame {frame} lasts {} ms, longer than the part target of {} ms",
        duration.as_ms(),
        target.as_ms()
    )]
    FrameTooLong {
        /// Index of the frame.
        frame: usize,
        /// Its duration.
        duration: Ticks,
        /// The target.
        target: Ticks,
    },
    /// No cut of a run of frames keeps every part within 85–100 % of the target.
    #[error(
        "frames {first}..{end} ({} ms to {} ms) cannot be cut into parts of 85 to 100 % of {} ms \
         (only the part at a keyframe and the segment's last part may be shorter)",
        from.as_ms(),
        to.as_ms(),
        target.as_ms()
    )]
    Infeasible {
        /// First frame of the run (a keyframe, or the segment's first frame).
        first: usize,
        /// End of the run (the next keyframe, or the frame count).
        end: usize,
        /// Start of the run.
        from: Ticks,
        /// End of the run.
        to: Ticks,
        /// The target.
        target: Ticks,
    },
}

/// Whether a part of `duration` reaches 85 % of `target`.
pub fn long_enough(duration: Ticks, target: Ticks) -> bool {
    u128::from(duration.0) * 20 >= u128::from(target.0) * 17
}

/// Carves a segment into parts for `target` (the PART-TARGET). The last part
/// ends at `segment_duration` (the segment's `#EXTINF`, which may differ a
/// little from its frames' span), so the part durations add up to it.
pub fn carve(
    frames: &SegmentFrames,
    segment_duration: Ticks,
    target: Ticks,
) -> Result<Vec<Part>, CarveError> {
    carve_frames(&frames.frames, segment_duration, target)
}

/// [`carve`] over frames.
pub fn carve_frames(
    frames: &[Frame],
    segment_duration: Ticks,
    target: Ticks,
) -> Result<Vec<Part>, CarveError> {
    let n = frames.len();
    if n == 0 {
        return Err(CarveError::NoFrames);
    }
    if target == Ticks::ZERO {
        return Err(CarveError::ZeroTarget);
    }
    // Boundary times: the first part starts at the segment's start, the
    // last ends at its duration.
    let mut at: Vec<Ticks> = Vec::with_capacity(n + 1);
    at.push(Ticks::ZERO);
    for (i, f) in frames.iter().enumerate().skip(1) {
        if f.at <= at[i - 1] {
            return Err(CarveError::NotIncreasing { frame: i });
        }
        at.push(f.at);
    }
    // Frames that start at or after the segment's end (a packager's audio
    // segment running a frame past its `#EXTINF`) go into the last part,
    // which still ends at the segment's duration.
    let all = n;
    let n = at.partition_point(|&a| a < segment_duration);
    if n == 0 {
        return Err(CarveError::EndsBeforeLastFrame {
            duration: segment_duration,
            last: at[all - 1],
        });
    }
    let frames = &frames[..n];
    at.truncate(n);
    at.push(segment_duration);
    if let Some(i) = (0..n).find(|&i| at[i + 1] - at[i] > target) {
        return Err(CarveError::FrameTooLong {
            frame: i,
            duration: at[i + 1] - at[i],
            target,
        });
    }
    let keyframe = |i: usize| i == 0 || (frames[i].independent && !frames[i - 1].independent);
    let mut parts = Vec::new();
    let mut first = 0;
    while first < n {
        // A run from a keyframe to the next: no part crosses a keyframe, so
        // each run is carved on its own.
        let end = (first + 1..n).find(|&i| keyframe(i)).unwrap_or(n);
        let run = carve_run(frames, &at, first..end, target).ok_or(CarveError::Infeasible {
            first,
            end,
            from: at[first],
            to: at[end],
            target,
        })?;
        parts.extend(run);
        first = end;
    }
    if let Some(last) = parts.last_mut() {
        last.end = all as u32;
    }
    Ok(parts)
}

/// The best carving of the frames `run` (boundary times `at`), or `None`.
/// Its last part is exempt from the 85 % floor only when it ends the segment.
fn carve_run(
    frames: &[Frame],
    at: &[Ticks],
    run: std::ops::Range<usize>,
    target: Ticks,
) -> Option<Vec<Part>> {
    let n = frames.len();
    let (first, end) = (run.start, run.end);
    // best[j - first]: the best carving of frames j..end as
    // (parts, shortest part, end of the first part).
    let mut best: Vec<Option<(u32, Ticks, usize)>> = vec![None; end - first + 1];
    best[end - first] = Some((0, Ticks(u64::MAX), end));
    for j in (first..end).rev() {
        let exempt_start = frames[j].independent;
        let mut choice: Option<(u32, Ticks, usize)> = None;
        for l in j + 1..=end {
            let duration = at[l] - at[j];
            if duration > target {
                break;
            }
            let Some((parts, shortest, _)) = best[l - first] else {
                continue;
            };
            if !(exempt_start || l == n || long_enough(duration, target)) {
                continue;
            }
            let better = match choice {
                None => true,
                Some((p, s, _)) => parts + 1 < p || (parts + 1 == p && shortest.min(duration) > s),
            };
            if better {
                choice = Some((parts + 1, shortest.min(duration), l));
            }
        }
        best[j - first] = choice;
    }
    let mut parts = Vec::new();
    let mut j = first;
    while j < end {
        let (_, _, l) = best[j - first]?;
        parts.push(Part {
            start: at[j],
            duration: at[l] - at[j],
            independent: frames[j].independent,
            first: j as u32,
            end: l as u32,
        });
        j = l;
    }
    Some(parts)
}

/// The smallest part target, from `wanted` up to twice it, for which every
/// segment (its frames and playlist duration) carves: `wanted` itself when it
/// works, else the first whole number of the lead's usual frame duration
/// that does (at 29.97 fps no whole number of frames makes 85–100 % of
/// 200 ms; 6 frames make 200.2 ms). `None` when nothing up to twice
/// `wanted` works (an audio PES longer than that, a keyframe interval that
/// leaves an impossible remainder).
pub fn fit_target<'a>(
    segments: impl Iterator<Item = (&'a SegmentFrames, Ticks)> + Clone,
    wanted: Ticks,
) -> Option<Ticks> {
    let works = |target: Ticks| {
        segments
            .clone()
            .all(|(frames, duration)| carve(frames, duration, target).is_ok())
    };
    if wanted > Ticks::ZERO && works(wanted) {
        return Some(wanted);
    }
    // The most common step between frames.
    let mut steps: Vec<u64> = segments
        .clone()
        .flat_map(|(f, _)| f.frames.windows(2).map(|w| (w[1].at - w[0].at).0))
        .filter(|&s| s > 0)
        .collect();
    steps.sort_unstable();
    let step = steps
        .chunk_by(|a, b| a == b)
        .max_by_key(|run| run.len())
        .map(|run| run[0])?;
    let first = wanted.0.div_ceil(step).max(1);
    (first..)
        .map(|k| Ticks(k * step))
        .take_while(|t| t.0 <= 2 * wanted.0.max(step))
        .find(|&t| works(t))
}

#[cfg(test)]
#[path = "tests/carve.rs"]
mod tests;
