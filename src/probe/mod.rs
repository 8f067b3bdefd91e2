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
            let (s0, s1) = (a.start?, b.start?);
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
            let start = t.start.unwrap_or(0);
            let end = start.saturating_add(t.duration);
            let ticks = units_to_ticks(end, t.timescale) - units_to_ticks(start, t.timescale);
            Some((
                ticks,
                MediaDuration {
                    timescale: t.timescale,
                    units: t.duration,
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
mod tests {
    use super::*;
    use std::path::Path;

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
            ..SegmentInput::default()
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

    fn native() -> Prober {
        Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        }
    }

    fn range(offset: u64, length: u64) -> Option<ByteRange> {
        Some(ByteRange { offset, length })
    }

    /// The byte ranges of a fixture's single-file playlist, as written there.
    fn ranges_of(fixture_playlist: &str) -> Vec<(u64, u64)> {
        let text = std::fs::read_to_string(fixture(fixture_playlist)).unwrap();
        let mut end = 0;
        text.lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:"))
            .map(|r| {
                let (n, o) = r.split_once('@').map_or((r, None), |(n, o)| (n, Some(o)));
                let (n, o): (u64, u64) =
                    (n.parse().unwrap(), o.map_or(end, |o| o.parse().unwrap()));
                end = o + n;
                (o, n)
            })
            .collect()
    }

    #[test]
    fn ts_byte_ranges_are_measured_from_their_range_only() {
        let ranges = ranges_of("ts_single/index.m3u8");
        assert_eq!(ranges.len(), 3);
        let inputs: Vec<SegmentInput> = ranges
            .iter()
            .map(|&(o, n)| SegmentInput {
                byte_range: range(o, n),
                ..input(fixture("ts_single/media.ts"), 2 * HZ)
            })
            .collect();
        for m in native().measure_playlist(&inputs) {
            assert_eq!(m.method, Some(Method::Native), "{m:?}");
            assert!(m.ticks.abs_diff(2 * HZ) <= 90, "{m:?}");
        }
        // The whole file as one segment lasts the three.
        let whole = native().measure_playlist(&[input(fixture("ts_single/media.ts"), 6 * HZ)]);
        assert!(whole[0].ticks.abs_diff(6 * HZ) <= 90, "{whole:?}");
    }

    #[test]
    fn fmp4_byte_ranges_with_an_init_range() {
        let media = fixture("fmp4_single/media.mp4");
        let text = std::fs::read_to_string(fixture("fmp4_single/index.m3u8")).unwrap();
        let init_length: u64 = text
            .split("BYTERANGE=\"")
            .nth(1)
            .and_then(|r| r.split('@').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        let init = InitSection {
            path: media.clone(),
            byte_range: range(0, init_length),
        };
        let inputs: Vec<SegmentInput> = ranges_of("fmp4_single/index.m3u8")
            .iter()
            .map(|&(o, n)| SegmentInput {
                byte_range: range(o, n),
                init: Some(init.clone()),
                ..input(media.clone(), 2 * HZ)
            })
            .collect();
        let measured = native().measure_playlist(&inputs);
        for m in &measured {
            assert_eq!(m.method, Some(Method::Native), "{m:?}");
            assert_eq!(
                m.media,
                Some(MediaDuration {
                    timescale: 12_800,
                    units: 25_600
                })
            );
            assert_eq!(m.ticks, 2 * HZ);
        }
        // Without the init section the fragments have no timescale.
        let alone = native().measure_playlist(&[SegmentInput {
            init: None,
            ..inputs[1].clone()
        }]);
        let error = alone[0].error.as_deref().unwrap_or_default();
        assert_eq!(alone[0].method, Some(Method::Playlist));
        assert!(error.contains("no moov box"), "{error}");
        // A range past the end of the file, and a missing init file.
        let past = native().measure_playlist(&[SegmentInput {
            byte_range: range(init_length, 1 << 30),
            ..inputs[0].clone()
        }]);
        let error = past[0].error.as_deref().unwrap_or_default();
        assert!(error.contains("ends past the end of the file"), "{error}");
        let missing = native().measure_playlist(&[SegmentInput {
            init: Some(InitSection {
                path: fixture("fmp4_single/nothing.mp4"),
                byte_range: None,
            }),
            ..inputs[0].clone()
        }]);
        let error = missing[0].error.as_deref().unwrap_or_default();
        assert!(
            error.contains("init section") && error.contains("nothing.mp4"),
            "{error}"
        );
    }

    #[test]
    fn fmp4_with_a_separate_init_segment() {
        let inputs: Vec<SegmentInput> = (0..3)
            .map(|i| SegmentInput {
                init: Some(InitSection {
                    path: fixture("cmaf_shaka/audio/init.mp4"),
                    byte_range: None,
                }),
                ..input(
                    fixture(&format!("cmaf_shaka/audio/seg_{:03}.m4s", i + 1)),
                    2 * HZ,
                )
            })
            .collect();
        let m = native().measure_playlist(&inputs);
        let units: Vec<u64> = m.iter().map(|m| m.media.map_or(0, |d| d.units)).collect();
        // tfdt differences, then the last segment's own samples, at 48 kHz.
        assert_eq!(units, [97_280, 96_256, 96_256]);
        let ticks: Vec<u64> = m.iter().map(|m| m.ticks).collect();
        assert_eq!(ticks, [182_400, 180_480, 180_480]);
    }

    #[test]
    fn the_bytes_decide_the_container_not_the_name() {
        let dir = temp_dir("names");
        let fmp4_as_ts = dir.join("seg.ts");
        let ts_as_m4s = dir.join("seg.m4s");
        std::fs::copy(fixture("fmp4_avc/seg_002.m4s"), &fmp4_as_ts).unwrap();
        std::fs::copy(fixture("av25/seg_004.ts"), &ts_as_m4s).unwrap();
        let init = InitSection {
            path: fixture("fmp4_avc/init.mp4"),
            byte_range: None,
        };
        let m = native().measure_playlist(&[SegmentInput {
            init: Some(init),
            ..input(fmp4_as_ts, 2 * HZ)
        }]);
        assert_eq!(
            m[0].media,
            Some(MediaDuration {
                timescale: 12_800,
                units: 25_600
            })
        );
        let m = native().measure_playlist(&[input(ts_as_m4s, 2 * HZ)]);
        assert_eq!(
            (m[0].method, m[0].ticks),
            (Some(Method::Native), 2 * HZ),
            "{m:?}"
        );
    }

    #[test]
    fn converted_durations_add_up_to_the_converted_total() {
        // 1001/24000 s frames, AAC frames at 44.1 kHz, odd steps at 12.8 kHz:
        // rounding each duration alone drifts; differences of converted
        // positions add up to the converted total exactly.
        for (timescale, step) in [(24_000u32, 1001u64), (44_100, 1024), (12_800, 513)] {
            let starts: Vec<u64> = (0..1000u64)
                .scan(5, |at, i| {
                    *at += step * (7 + i % 2);
                    Some(*at)
                })
                .collect();
            let timings: Vec<Timing> = starts
                .windows(2)
                .map(|w| {
                    Timing::Fmp4(fmp4::Fmp4Timing {
                        track_id: 1,
                        kind: fmp4::TrackKind::Video,
                        timescale,
                        start: Some(w[0]),
                        duration: w[1] - w[0],
                        fragments: 1,
                    })
                })
                .collect();
            let mut sum: u64 = timings
                .windows(2)
                .map(|w| start_to_start(&w[0], &w[1]).unwrap().0)
                .sum();
            sum += own_extent(timings.last().unwrap()).unwrap().0;
            let total = units_to_ticks(*starts.last().unwrap(), timescale)
                - units_to_ticks(starts[0], timescale);
            assert_eq!(sum, total, "timescale {timescale}");
            let naive: u64 = starts
                .windows(2)
                .map(|w| units_to_ticks(w[1] - w[0], timescale))
                .sum();
            assert!(naive.abs_diff(total) > 1, "{timescale}: {naive} {total}");
        }
        assert_eq!(units_to_ticks(1, 0), 0);
        assert_eq!(units_to_ticks(u64::MAX, 1), u64::MAX);
    }

    #[test]
    fn ffprobe_reads_init_and_segment_together() {
        let dir = temp_dir("ffprobe-fmp4");
        // A stand-in ffprobe: keeps what it was given, answers 2 s when it
        // starts with the init segment's ftyp.
        let fake = dir.join("ffprobe");
        let seen = dir.join("seen.bin");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\nfor f; do :; done\ncp \"$f\" {seen}\n\
                 [ \"$(head -c 8 \"$f\" | tail -c 4)\" = ftyp ] || exit 1\n\
                 printf 'stream|index=0|codec_type=video\\npacket|stream_index=0|pts_time=0.0|duration_time=2.0\\n'\n",
                seen = seen.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let prober = Prober {
            mode: ProbeMode::Ffprobe,
            ffprobe: Some(fake),
        };
        let init = fixture("fmp4_avc/init.mp4");
        let seg = SegmentInput {
            init: Some(InitSection {
                path: init.clone(),
                byte_range: None,
            }),
            ..input(fixture("fmp4_avc/seg_001.m4s"), 2 * HZ)
        };
        let m = prober.measure_playlist(&[seg]);
        assert_eq!(
            (m[0].method, m[0].ticks),
            (Some(Method::Ffprobe), 2 * HZ),
            "{m:?}"
        );
        let expected = [
            std::fs::read(&init).unwrap(),
            std::fs::read(fixture("fmp4_avc/seg_001.m4s")).unwrap(),
        ]
        .concat();
        assert!(
            std::fs::read(&seen).unwrap() == expected,
            "ffprobe got other bytes"
        );
        // The temporary file is gone.
        let left = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(&format!("pseudolive-ffprobe-{}-", std::process::id()))
            })
            .count();
        assert_eq!(left, 0);
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
