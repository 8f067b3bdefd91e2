//! Segment durations: native MPEG-TS timing first, then ffprobe, then the
//! source `#EXTINF`, each fallback logged with the file and the reason.
//!
//! Duration of segment `i` of a run = `start(i+1) − start(i)` on the 33-bit
//! PTS clock; the last segment of a run (before a discontinuity or the end)
//! lasts from its start to the end of its last frame.

pub mod audio;
pub mod ffprobe;
pub mod ts;

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::ticks::{HZ, pts_diff};
use ts::{Depth, TsTiming};

/// Bytes read from the head of a segment to find its first PTS.
const HEAD_BYTES: u64 = 64 * 1024;

/// How a duration was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// PTS values read by pseudolive itself.
    Native,
    /// The ffprobe fallback.
    Ffprobe,
    /// The source playlist's `#EXTINF`.
    Playlist,
}

/// Which measurement to try first (`--probe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ProbeMode {
    /// Native reader only, then `#EXTINF`.
    Native,
    /// ffprobe only, then `#EXTINF`.
    Ffprobe,
    /// Native reader, then ffprobe, then `#EXTINF`.
    #[default]
    Auto,
}

/// Settings for measuring segments.
#[derive(Debug, Clone, Default)]
pub struct Prober {
    /// Order of methods.
    pub mode: ProbeMode,
    /// ffprobe executable, when one was found.
    pub ffprobe: Option<PathBuf>,
}

/// One segment as the source playlist describes it.
#[derive(Debug, Clone)]
pub struct SegmentInput {
    /// The file on disk.
    pub path: PathBuf,
    /// Source `#EXTINF` in ticks (trusted last).
    pub extinf_ticks: u64,
    /// `#EXT-X-DISCONTINUITY` before this segment in the source.
    pub discontinuity: bool,
}

/// The measured duration of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    /// Duration in 90 kHz ticks (0 when nothing could measure it).
    pub ticks: u64,
    /// Which method gave `ticks`; `None` when none could.
    pub method: Option<Method>,
    /// Why the preferred method(s) failed, when they did.
    pub error: Option<String>,
}

/// Maps `f` over `items` on rayon's global pool, keeping order. A panic in
/// `f` propagates to the caller: no result is ever silently dropped.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    items.par_iter().map(f).collect()
}

fn read_head(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(limit)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Largest file read whole to time it (a 10 s segment at 80 Mbit/s is 100 MB).
pub const MAX_SEGMENT_BYTES: u64 = 256 << 20;

/// Native timing of a file. A [`Depth::Start`] scan reads only the head,
/// and the whole file when the head is not enough. Files over
/// [`MAX_SEGMENT_BYTES`] are not read whole: memory and time stay bounded.
pub fn scan_file(path: &Path, depth: Depth) -> Result<TsTiming, String> {
    let read_err = |e: std::io::Error| format!("cannot read: {e}");
    if depth == Depth::Start {
        let head = read_head(path, HEAD_BYTES).map_err(read_err)?;
        if (head.len() as u64) < HEAD_BYTES {
            return ts::scan(&head, depth).map_err(|e| e.to_string());
        }
        if let Ok(t) = ts::scan(&head, depth) {
            return Ok(t);
        }
    }
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_SEGMENT_BYTES {
        return Err(format!(
            "{len} bytes: too large to read whole (limit {} MiB), and its first {} KiB hold no timestamps",
            MAX_SEGMENT_BYTES >> 20,
            HEAD_BYTES >> 10
        ));
    }
    let all = read_head(path, MAX_SEGMENT_BYTES).map_err(read_err)?;
    ts::scan(&all, depth).map_err(|e| e.to_string())
}

/// Whether `start(next) − start(this)` is believable as the duration of
/// `this`: positive and not far beyond what the playlist claims. A larger
/// jump means the timestamps restart without a declared discontinuity.
fn plausible(diff: u64, extinf: u64) -> bool {
    diff > 0 && diff <= 3 * extinf.max(HZ) + 2 * HZ
}

impl Prober {
    /// Durations of the segments of one media playlist, in order.
    pub fn measure_playlist(&self, segments: &[SegmentInput]) -> Vec<Measured> {
        let last_of_run = |i: usize| segments.get(i + 1).is_none_or(|next| next.discontinuity);
        let indexed: Vec<usize> = (0..segments.len()).collect();
        let native: Vec<Option<Result<TsTiming, String>>> = match self.mode {
            ProbeMode::Ffprobe => segments.iter().map(|_| None).collect(),
            _ => par_map(&indexed, |&i| {
                let depth = if last_of_run(i) {
                    Depth::Full
                } else {
                    Depth::Start
                };
                Some(scan_file(&segments[i].path, depth))
            }),
        };
        par_map(&indexed, |&i| {
            let seg = &segments[i];
            let native = match &native[i] {
                None => Err("native measurement disabled (--probe ffprobe)".to_string()),
                Some(Err(e)) => Err(e.clone()),
                Some(Ok(this)) => {
                    let next = (!last_of_run(i))
                        .then(|| native[i + 1].as_ref().and_then(|r| r.as_ref().ok()))
                        .flatten();
                    self.native_duration(seg, this, next)
                }
            };
            match native {
                Ok(ticks) => Measured {
                    ticks,
                    method: Some(Method::Native),
                    error: None,
                },
                Err(reason) => self.fallback(seg, reason),
            }
        })
    }

    fn native_duration(
        &self,
        seg: &SegmentInput,
        this: &TsTiming,
        next: Option<&TsTiming>,
    ) -> Result<u64, String> {
        if let Some(next) = next {
            let diff = pts_diff(next.start_pts, this.start_pts);
            if plausible(diff, seg.extinf_ticks) {
                return Ok(diff);
            }
            tracing::warn!(
                file = %seg.path.display(),
                "timestamps jump by {:.3} s to the next segment without a discontinuity tag; \
                 timing this segment by its own frames",
                crate::ticks::to_secs(diff)
            );
        }
        let span = match this.span_ticks {
            Some(span) => Some(span),
            None => scan_file(&seg.path, Depth::Full)?.span_ticks,
        };
        match span {
            Some(span) if span > 0 => Ok(span),
            _ => Err("cannot tell where the last frame ends (a single frame?)".into()),
        }
    }

    fn fallback(&self, seg: &SegmentInput, native_error: String) -> Measured {
        let mut reasons = vec![native_error];
        if self.mode != ProbeMode::Native {
            match &self.ffprobe {
                None => reasons.push("ffprobe not found".into()),
                Some(ffprobe) => match ffprobe::measure(ffprobe, &seg.path) {
                    Ok(ticks) => {
                        tracing::warn!(file = %seg.path.display(), reason = %reasons[0],
                            "measured with ffprobe");
                        return Measured {
                            ticks,
                            method: Some(Method::Ffprobe),
                            error: Some(reasons.join("; ")),
                        };
                    }
                    Err(e) => reasons.push(e),
                },
            }
        }
        let reason = reasons.join("; ");
        if seg.extinf_ticks > 0 {
            tracing::warn!(file = %seg.path.display(), %reason, "using the playlist's #EXTINF");
            Measured {
                ticks: seg.extinf_ticks,
                method: Some(Method::Playlist),
                error: Some(reason),
            }
        } else {
            tracing::error!(file = %seg.path.display(), %reason, "cannot measure segment");
            Measured {
                ticks: 0,
                method: None,
                error: Some(reason),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
