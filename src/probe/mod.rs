//! Segment durations: native timing first (MPEG-TS or fMP4/CMAF, sniffed
//! from the bytes), then ffprobe, then the source `#EXTINF`, each fallback
//! logged with the file and the reason.
//!
//! Duration of segment `i` of a run = `start(i+1) − start(i)` on the
//! segment's own clock (the 33-bit PTS clock of MPEG-TS, the reference
//! track's timescale of fMP4); the last segment of a run (before a
//! discontinuity or the end) lasts from its start to the end of its last
//! frame. fMP4 times become 90 kHz ticks by converting absolute positions
//! and differencing those, so durations add up without drift.
//!
//! Every measured duration is judged against what the playlist says
//! (`#EXTINF`, else the neighbours'): one far beyond it (`plausible`) is a
//! corrupt or restarting timestamp, and the next method is tried.

pub mod audio;
pub mod ffprobe;
pub mod fmp4;
pub(crate) mod mp4box;
pub mod native;
pub mod ts;

use std::path::PathBuf;

use rayon::prelude::*;

use crate::ticks::{HZ, pts_diff};
pub use native::{MAX_SEGMENT_BYTES, Timing, scan_file, scan_segment};
use ts::Depth;

/// How a duration was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Timestamps read by pseudolive itself.
    Native,
    /// The ffprobe fallback.
    Ffprobe,
    /// The source playlist's `#EXTINF`.
    Playlist,
}

impl Method {
    /// The method's name, as `probe --json` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Method::Native => "native",
            Method::Ffprobe => "ffprobe",
            Method::Playlist => "playlist",
        }
    }
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

/// A sub-range of a file (`EXT-X-BYTERANGE`, or the `BYTERANGE` of `EXT-X-MAP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// First byte, from the start of the file.
    pub offset: u64,
    /// Number of bytes.
    pub length: u64,
}

/// The init section (`EXT-X-MAP`) in force for a segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InitSection {
    /// The file on disk.
    pub path: PathBuf,
    /// Only these bytes of `path`, when the tag has a `BYTERANGE`.
    pub byte_range: Option<ByteRange>,
}

/// One segment as the source playlist describes it.
#[derive(Debug, Clone, Default)]
pub struct SegmentInput {
    /// The file on disk.
    pub path: PathBuf,
    /// Source `#EXTINF` in ticks (trusted last).
    pub extinf_ticks: u64,
    /// `#EXT-X-DISCONTINUITY` before this segment in the source.
    pub discontinuity: bool,
    /// `EXT-X-BYTERANGE`: the segment is only these bytes of `path`.
    pub byte_range: Option<ByteRange>,
    /// `EXT-X-MAP` in force for this segment: the init segment of fMP4
    /// (or PAT/PMT of MPEG-TS), put in front of the segment's bytes.
    pub init: Option<InitSection>,
    /// `EXT-X-KEY:METHOD=AES-128` in force, with its key read from disk:
    /// the segment is decrypted before it is measured.
    pub aes128: Option<Aes128>,
}

/// An AES-128 (CBC, PKCS#7) key and IV of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aes128 {
    /// The 16-byte key.
    pub key: [u8; 16],
    /// The IV: explicit, or the media sequence number (RFC 8216 5.2).
    pub iv: [u8; 16],
}

impl Aes128 {
    /// `data` decrypted (padding removed when it is well-formed; a cut
    /// head is decrypted as far as whole blocks go).
    pub fn decrypt(&self, data: &[u8]) -> Vec<u8> {
        use aes::cipher::{BlockDecryptMut, KeyIvInit, generic_array::GenericArray};
        let mut out = data[..data.len() - data.len() % 16].to_vec();
        let mut cipher = cbc::Decryptor::<aes::Aes128>::new(&self.key.into(), &self.iv.into());
        for block in out.chunks_exact_mut(16) {
            cipher.decrypt_block_mut(GenericArray::from_mut_slice(block));
        }
        if let Some(&pad) = out.last()
            && (1..=16).contains(&pad)
            && out.len() >= usize::from(pad)
            && out[out.len() - usize::from(pad)..]
                .iter()
                .all(|&b| b == pad)
        {
            out.truncate(out.len() - usize::from(pad));
        }
        out
    }
}

/// A native duration on the segment's own clock, before its conversion to ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaDuration {
    /// Units per second: 90 000 for MPEG-TS, the reference track's `mdhd`
    /// timescale for fMP4.
    pub timescale: u32,
    /// The duration in those units.
    pub units: u64,
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
    /// For a native measurement, the duration on the segment's own clock.
    pub media: Option<MediaDuration>,
}

/// Maps `f` over `items` on rayon's global pool, keeping order. A panic in
/// `f` propagates to the caller: no result is ever silently dropped.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync + Send) -> Vec<R> {
    items.par_iter().map(f).collect()
}

/// 90 kHz ticks of the absolute position `units` on a clock of `timescale`
/// units per second, rounded to the nearest tick. Durations are differences
/// of converted positions, so a run of them adds up to the converted total.
pub fn units_to_ticks(units: u64, timescale: u32) -> u64 {
    if timescale == 0 {
        return 0;
    }
    let ts = u128::from(timescale);
    let ticks = (u128::from(units) * u128::from(HZ) + ts / 2) / ts;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// `start(next) − start(this)` in ticks and on the segments' own clock, when
/// both are on the same clock (same container, same reference track).
fn start_to_start(this: &Timing, next: &Timing) -> Option<(u64, MediaDuration)> {
    match (this, next) {
        (Timing::Ts(a), Timing::Ts(b)) => {
            let d = pts_diff(b.start_pts, a.start_pts);
            Some((d, ts_clock(d)))
        }
        (Timing::Fmp4(a), Timing::Fmp4(b))
            if a.track_id == b.track_id && a.timescale == b.timescale =>
        {
            let (s0, s1) = (a.start_units?, b.start_units?);
            // The next one starting first counts as 0: never plausible.
            let ticks =
                units_to_ticks(s1, a.timescale).saturating_sub(units_to_ticks(s0, a.timescale));
            let units = s1.saturating_sub(s0);
            Some((
                ticks,
                MediaDuration {
                    timescale: a.timescale,
                    units,
                },
            ))
        }
        _ => None,
    }
}

/// A segment's extent from its own frames (MPEG-TS: first PTS to the end of
/// its last frame; fMP4: the sum of its sample durations), in ticks and on
/// its own clock; `None` for an MPEG-TS head-only scan or a single frame.
fn own_extent(this: &Timing) -> Option<(u64, MediaDuration)> {
    match this {
        Timing::Ts(t) => t.span_ticks.map(|s| (s, ts_clock(s))),
        Timing::Fmp4(t) => {
            let start = t.start_units.unwrap_or(0);
            let end = start.saturating_add(t.duration_units);
            let ticks = units_to_ticks(end, t.timescale) - units_to_ticks(start, t.timescale);
            Some((
                ticks,
                MediaDuration {
                    timescale: t.timescale,
                    units: t.duration_units,
                },
            ))
        }
    }
}

fn ts_clock(ticks: u64) -> MediaDuration {
    MediaDuration {
        timescale: HZ as u32,
        units: ticks,
    }
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
        // Each init section read once.
        let mut sections: Vec<&InitSection> = Vec::new();
        for s in segments.iter().filter_map(|s| s.init.as_ref()) {
            if !sections.contains(&s) {
                sections.push(s);
            }
        }
        let init_bytes: Vec<Result<Vec<u8>, String>> = par_map(&sections, |s| {
            native::read_init(&s.path, s.byte_range)
                .map_err(|e| format!("init section {}: {e}", s.path.display()))
        });
        let init_of = |i: usize| -> Result<Option<&[u8]>, String> {
            let Some(section) = &segments[i].init else {
                return Ok(None);
            };
            let k = sections.iter().position(|s| *s == section).unwrap_or(0);
            match init_bytes.get(k) {
                Some(Ok(bytes)) => Ok(Some(bytes)),
                Some(Err(e)) => Err(e.clone()),
                None => Err("init section not read".into()),
            }
        };
        let native: Vec<Option<Result<Timing, String>>> = match self.mode {
            ProbeMode::Ffprobe => segments.iter().map(|_| None).collect(),
            _ => par_map(&indexed, |&i| {
                let depth = if last_of_run(i) {
                    Depth::Full
                } else {
                    Depth::Start
                };
                Some(init_of(i).and_then(|init| scan_segment(&segments[i], init, depth)))
            }),
        };
        par_map(&indexed, |&i| {
            let seg = &segments[i];
            let reference = reference_ticks(segments, i);
            let native = match &native[i] {
                None => Err("native measurement disabled (--probe ffprobe)".to_string()),
                Some(Err(e)) => Err(e.clone()),
                Some(Ok(this)) => {
                    let next = (!last_of_run(i))
                        .then(|| native[i + 1].as_ref().and_then(|r| r.as_ref().ok()))
                        .flatten();
                    self.native_duration(seg, reference, init_of(i).ok().flatten(), this, next)
                }
            };
            match native {
                Ok((ticks, media)) => Measured {
                    ticks,
                    method: Some(Method::Native),
                    error: None,
                    media: Some(media),
                },
                Err(reason) => self.fallback(seg, init_of(i), reference, reason),
            }
        })
    }

    fn native_duration(
        &self,
        seg: &SegmentInput,
        reference: Option<u64>,
        init: Option<&[u8]>,
        this: &Timing,
        next: Option<&Timing>,
    ) -> Result<(u64, MediaDuration), String> {
        if let Some((diff, media)) = next.and_then(|next| start_to_start(this, next)) {
            if plausible(diff, reference) {
                return Ok((diff, media));
            }
            tracing::warn!(
                file = %seg.path.display(),
                "timestamps jump by {:.3} s to the next segment without a discontinuity tag; \
                 timing this segment by its own frames",
                crate::ticks::to_secs(diff)
            );
        }
        let full;
        let this = match this {
            Timing::Ts(t) if t.span_ticks.is_none() => {
                full = scan_segment(seg, init, Depth::Full)?;
                &full
            }
            _ => this,
        };
        if let Timing::Ts(t) = this
            && t.outliers > 0
        {
            tracing::warn!(
                file = %seg.path.display(),
                outliers = t.outliers,
                "timestamps far from all the others left out of the segment's extent"
            );
        }
        let (span, media) = match own_extent(this) {
            Some((span, media)) if span > 0 => (span, media),
            _ => return Err("cannot tell where the last frame ends (a single frame?)".into()),
        };
        if plausible_span(span, reference) {
            return Ok((span, media));
        }
        let reason = implausible("its own frames", span, reference);
        tracing::warn!(file = %seg.path.display(), "{reason}");
        Err(reason)
    }

    /// ffprobe on the segment: the file itself, or, for a byte range or an
    /// init section, its bytes (init first) in a temporary file.
    fn ffprobe(
        &self,
        ffprobe: &std::path::Path,
        seg: &SegmentInput,
        init: Result<Option<&[u8]>, String>,
    ) -> Result<u64, String> {
        let init = init?;
        if seg.byte_range.is_none() && init.is_none() {
            return ffprobe::measure(ffprobe, &seg.path);
        }
        let bytes = native::read_segment(seg, init)?;
        ffprobe::measure_bytes(ffprobe, &bytes)
    }

    fn fallback(
        &self,
        seg: &SegmentInput,
        init: Result<Option<&[u8]>, String>,
        reference: Option<u64>,
        native_error: String,
    ) -> Measured {
        let mut reasons = vec![native_error];
        if self.mode != ProbeMode::Native {
            match &self.ffprobe {
                None => reasons.push("ffprobe not found".into()),
                Some(ffprobe) => match self.ffprobe(ffprobe, seg, init) {
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
                            media: None,
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
                media: None,
            }
        } else {
            tracing::error!(file = %seg.path.display(), %reason, "cannot measure segment");
            Measured {
                ticks: 0,
                method: None,
                error: Some(reason),
                media: None,
            }
        }
    }
}

#[cfg(test)]
#[path = "tests/prober.rs"]
mod tests;
