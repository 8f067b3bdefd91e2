//! Segment durations: native MPEG-TS timing first, then ffprobe, then the
//! source `#EXTINF`, each fallback logged with the file and the reason.
//!
//! Duration of segment `i` of a run = `start(i+1) − start(i)` on the 33-bit
//! PTS clock; the last segment of a run (before a discontinuity or the end)
//! lasts from its start to the end of its last frame.
//!
//! Every measured duration is judged against what the playlist says
//! (`#EXTINF`, else the neighbours'): one far beyond it (`plausible`) is a
//! corrupt or restarting timestamp, and the next method is tried.

pub mod audio;
pub mod ffprobe;
pub mod fmp4;
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

/// What the playlist says segment `i` lasts, to judge measurements by: its
/// own `#EXTINF`, else (missing or garbage: 0) the larger of its neighbours'.
fn reference_ticks(segments: &[SegmentInput], i: usize) -> Option<u64> {
    let extinf = |j: usize| segments.get(j).map_or(0, |s| s.extinf_ticks);
    let own = extinf(i);
    let neighbours = extinf(i.wrapping_sub(1)).max(extinf(i + 1));
    [own, neighbours].into_iter().find(|&t| t > 0)
}

/// Whether a measured duration is believable for a segment the playlist
/// says lasts `reference`: positive and not far beyond it. The same rule
/// judges `start(next) − start(this)` (a larger jump means the timestamps
/// restart without a declared discontinuity) and a duration taken from a
/// segment's own frames or from ffprobe (a larger one means a corrupt
/// timestamp). Without a reference, 1 s stands in.
fn plausible(ticks: u64, reference: Option<u64>) -> bool {
    ticks > 0 && ticks <= 3 * reference.unwrap_or(0).max(HZ) + 2 * HZ
}

/// [`plausible`] for a duration that has no better fallback when no
/// reference exists (a segment's own frames, ffprobe): then anything positive.
fn plausible_span(ticks: u64, reference: Option<u64>) -> bool {
    ticks > 0 && (reference.is_none() || plausible(ticks, reference))
}

fn secs(ticks: u64) -> String {
    format!("{:.3} s", crate::ticks::to_secs(ticks))
}

/// Why a measured duration was refused, with both values.
fn implausible(source: &str, ticks: u64, reference: Option<u64>) -> String {
    format!(
        "duration from {source}, {}, is implausible against the playlist's {} (#EXTINF)",
        secs(ticks),
        reference.map_or("nothing".into(), secs)
    )
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
                    self.native_duration(seg, reference_ticks(segments, i), this, next)
                }
            };
            match native {
                Ok(ticks) => Measured {
                    ticks,
                    method: Some(Method::Native),
                    error: None,
                },
                Err(reason) => self.fallback(seg, reference_ticks(segments, i), reason),
            }
        })
    }

    fn native_duration(
        &self,
        seg: &SegmentInput,
        reference: Option<u64>,
        this: &TsTiming,
        next: Option<&TsTiming>,
    ) -> Result<u64, String> {
        if let Some(next) = next {
            let diff = pts_diff(next.start_pts, this.start_pts);
            if plausible(diff, reference) {
                return Ok(diff);
            }
            tracing::warn!(
                file = %seg.path.display(),
                "timestamps jump by {:.3} s to the next segment without a discontinuity tag; \
                 timing this segment by its own frames",
                crate::ticks::to_secs(diff)
            );
        }
        let full;
        let this = match this.span_ticks {
            Some(_) => this,
            None => {
                full = scan_file(&seg.path, Depth::Full)?;
                &full
            }
        };
        if this.outliers > 0 {
            tracing::warn!(
                file = %seg.path.display(),
                outliers = this.outliers,
                "timestamps far from all the others left out of the segment's extent"
            );
        }
        let span = match this.span_ticks {
            Some(span) if span > 0 => span,
            _ => return Err("cannot tell where the last frame ends (a single frame?)".into()),
        };
        if plausible_span(span, reference) {
            return Ok(span);
        }
        let reason = implausible("its own frames", span, reference);
        tracing::warn!(file = %seg.path.display(), "{reason}");
        Err(reason)
    }

    fn fallback(
        &self,
        seg: &SegmentInput,
        reference: Option<u64>,
        native_error: String,
    ) -> Measured {
        let mut reasons = vec![native_error];
        if self.mode != ProbeMode::Native {
            match &self.ffprobe {
                None => reasons.push("ffprobe not found".into()),
                Some(ffprobe) => match ffprobe::measure(ffprobe, &seg.path) {
                    Ok(ticks) if !plausible_span(ticks, reference) => {
                        let reason = implausible("ffprobe", ticks, reference);
                        tracing::warn!(file = %seg.path.display(), "{reason}");
                        reasons.push(reason);
                    }
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

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pseudolive-probe-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn fixture(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(path)
    }

    fn input(path: PathBuf, extinf_ticks: u64) -> SegmentInput {
        SegmentInput {
            path,
            extinf_ticks,
            discontinuity: false,
        }
    }

    /// The five 2 s segments of `fixtures/av25` as one 10 s file.
    fn ten_seconds(dir: &Path) -> PathBuf {
        let bytes: Vec<u8> = (0..5)
            .flat_map(|i| std::fs::read(fixture(&format!("av25/seg_{i:03}.ts"))).unwrap())
            .collect();
        let path = dir.join("ten.ts");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_span_far_beyond_extinf_falls_back_to_extinf() {
        let dir = temp_dir("span");
        let ten = ten_seconds(&dir);
        let native = Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        };
        // Listed as 10 s: believable.
        let m = native.measure_playlist(&[input(ten.clone(), 10 * HZ)]);
        assert_eq!((m[0].ticks, m[0].method), (10 * HZ, Some(Method::Native)));
        // Listed as 2 s: 10 s from its own frames is not.
        let m = native.measure_playlist(&[input(ten.clone(), 2 * HZ)]);
        assert_eq!((m[0].ticks, m[0].method), (2 * HZ, Some(Method::Playlist)));
        let error = m[0].error.as_deref().unwrap_or_default();
        assert!(
            error.contains("10.000 s") && error.contains("2.000 s"),
            "{error}"
        );
        // ffprobe (here a stand-in that reports the same 10 s) is judged alike.
        let fake = dir.join("ffprobe");
        std::fs::write(
            &fake,
            "#!/bin/sh\nprintf 'stream|index=0|codec_type=video\\npacket|stream_index=0|pts_time=0.0|duration_time=10.0\\n'\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let auto = Prober {
            mode: ProbeMode::Auto,
            ffprobe: Some(fake),
        };
        let m = auto.measure_playlist(&[input(ten.clone(), 2 * HZ)]);
        assert_eq!((m[0].ticks, m[0].method), (2 * HZ, Some(Method::Playlist)));
        let error = m[0].error.as_deref().unwrap_or_default();
        assert!(error.contains("from ffprobe, 10.000 s"), "{error}");
        let m = auto.measure_playlist(&[input(ten, 10 * HZ)]);
        assert_eq!((m[0].ticks, m[0].method), (10 * HZ, Some(Method::Native)));
    }

    #[test]
    fn the_reference_is_the_extinf_else_the_neighbours() {
        let segs: Vec<SegmentInput> = [2 * HZ, 0, 6 * HZ, 0]
            .into_iter()
            .map(|t| input(PathBuf::new(), t))
            .collect();
        let refs: Vec<Option<u64>> = (0..4).map(|i| reference_ticks(&segs, i)).collect();
        assert_eq!(
            refs,
            [Some(2 * HZ), Some(6 * HZ), Some(6 * HZ), Some(6 * HZ)]
        );
        assert_eq!(reference_ticks(&segs[1..2], 0), None);
        // 3 × 6 s + 2 s.
        assert!(plausible(20 * HZ, Some(6 * HZ)) && !plausible(20 * HZ + 1, Some(6 * HZ)));
        assert!(!plausible(0, Some(6 * HZ)));
        assert!(plausible(5 * HZ, None) && !plausible(5 * HZ + 1, None));
        assert!(plausible_span(3600 * HZ, None) && !plausible_span(3600 * HZ, Some(2 * HZ)));
    }

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
