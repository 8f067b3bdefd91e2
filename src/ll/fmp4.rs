//! fMP4/CMAF segments: lead frames from the sample tables of its fragments,
//! parts as new fragments of a subset of samples.
//!
//! A segment is read into its fragments: each `moof` with, per `traf`, the
//! samples of its `trun`s, every field resolved (duration, size and flags
//! from the `trun`, else `tfhd`, else `trex`; `first_sample_flags` on the
//! first sample of its `trun`; the data offset from `tfhd`'s base: explicit,
//! default-base-is-moof, or the `moof` for the first `traf` and the end of
//! the previous `traf`'s data after it) and a decode time from `tfdt`. The
//! lead track (the init segment's first video track, else its first audio
//! track) gives the frames: one per sample, independent unless its flags say
//! `sample_is_non_sync_sample` (every sample of an audio lead is).
//!
//! Cutting reads the fragment headers again, so no sample table is kept
//! between reading the frames and cutting a part: `moof`s are small next to
//! their `mdat`. `styp`, `sidx`, `prft`, `free` and unknown top-level boxes
//! are left out of parts (a part's `sidx` would be another one); an `emsg`
//! goes with the first part that takes samples from the `moof` after it.
//! `sbgp`/`sgpd` (sample groups of the whole run) are left out; `senc` or
//! `saiz` (encryption) refuse the segment.

mod write;

pub use write::fmp4_part;

use super::{Cut, Frame, LlError, SegmentFrames};
use crate::probe::fmp4::{Init, Track, TrackKind};
use crate::probe::mp4box::{self, BoxAt, BoxError, get_u32, get_u64, kind_name};
use crate::ticks::{HZ, Ticks};

/// `sample_is_non_sync_sample` in sample flags.
const NON_SYNC: u32 = 0x0001_0000;

/// What cutting an fMP4 segment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fmp4Cut {
    /// The lead track's id.
    lead: u32,
    /// Its timescale.
    timescale: u32,
    /// Its first decode time in the segment, in its timescale.
    first_dts: u64,
    /// The segment's length in bytes.
    len: usize,
}

fn bad(kind: &[u8; 4], at: usize, problem: &str) -> LlError {
    LlError::Malformed(format!("'{}' box at byte {at}: {problem}", kind_name(kind)))
}

/// The boxes in `buf[start..end]`; a box running past `end` is an error.
fn children(buf: &[u8], start: usize, end: usize) -> Result<Vec<BoxAt>, LlError> {
    mp4box::children(buf, start, end).map_err(|e| match e {
        BoxError::Truncated { kind, at } => bad(&kind, at, "cut short"),
        BoxError::BadSize { kind, at, .. } => bad(&kind, at, "size smaller than its header"),
    })
}

/// Version, flags and the body after them of a full box.
fn full_box<'a>(buf: &'a [u8], b: &BoxAt) -> Result<(u8, u32, &'a [u8]), LlError> {
    let body = &buf[b.body..b.end];
    let vf = get_u32(body, 0).ok_or_else(|| bad(&b.kind, b.start, "cut short"))?;
    Ok(((vf >> 24) as u8, vf & 0x00ff_ffff, &body[4..]))
}

/// One sample, every field resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Decode time, in the track's timescale.
    pub(crate) dts: u64,
    pub(crate) duration: u32,
    pub(crate) size: u32,
    pub(crate) flags: u32,
    /// Composition time offset as written (signed in a version 1 `trun`).
    pub(crate) cto: u32,
    /// Offset of its data in the segment.
    pub(crate) offset: usize,
}

/// One `traf`: its track, what its `tfhd` says and its samples.
#[derive(Debug, Clone)]
pub(crate) struct Traf {
    pub(crate) track: u32,
    pub(crate) sample_description_index: Option<u32>,
    pub(crate) default_duration: u32,
    pub(crate) default_size: u32,
    pub(crate) default_flags: u32,
    /// A `trun` had composition offsets; the highest `trun` version seen.
    pub(crate) cto: bool,
    pub(crate) version: u8,
    pub(crate) samples: Vec<Sample>,
}

/// One `moof`, its `traf`s, and the `emsg` boxes between it and the fragment before.
#[derive(Debug, Clone)]
pub(crate) struct Fragment {
    pub(crate) sequence: u32,
    pub(crate) trafs: Vec<Traf>,
    pub(crate) events: Vec<(usize, usize)>,
}

/// Reads the fragments of a media segment.
pub(crate) fn fragments(init: &Init, buf: &[u8]) -> Result<Vec<Fragment>, LlError> {
    if buf.is_empty() {
        return Err(LlError::Malformed("empty segment".into()));
    }
    let mut out = Vec::new();
    let mut events = Vec::new();
    for b in children(buf, 0, buf.len())? {
        match &b.kind {
            b"emsg" => events.push((b.start, b.end)),
            b"moof" => {
                let mut fragment = Fragment {
                    sequence: 0,
                    trafs: Vec::new(),
                    events: std::mem::take(&mut events),
                };
                // Where the next traf's data starts when its tfhd names no base.
                let mut next_base = b.start;
                for c in children(buf, b.body, b.end)? {
                    match &c.kind {
                        b"mfhd" => {
                            let (_, _, body) = full_box(buf, &c)?;
                            fragment.sequence = get_u32(body, 0).unwrap_or(0);
                        }
                        b"traf" => {
                            let traf = parse_traf(init, buf, &c, b.start, &mut next_base)?;
                            fragment.trafs.push(traf);
                        }
                        _ => {}
                    }
                }
                out.push(fragment);
            }
            _ => {}
        }
    }
    if out.is_empty() {
        return Err(LlError::Malformed(
            "no moof box: not an fMP4 media segment".into(),
        ));
    }
    Ok(out)
}

/// One `traf` of the `moof` at `moof_start`.
fn parse_traf(
    init: &Init,
    buf: &[u8],
    traf: &BoxAt,
    moof_start: usize,
    next_base: &mut usize,
) -> Result<Traf, LlError> {
    let boxes = children(buf, traf.body, traf.end)?;
    let cut = |b: &BoxAt| bad(&b.kind, b.start, "cut short");
    let tfhd = boxes
        .iter()
        .find(|b| &b.kind == b"tfhd")
        .ok_or_else(|| bad(b"traf", traf.start, "no tfhd"))?;
    let (_, flags, body) = full_box(buf, tfhd)?;
    let track_id = get_u32(body, 0).ok_or_else(|| cut(tfhd))?;
    let trex = init.tracks.iter().find(|t| t.id == track_id);
    let mut at = 4;
    let mut field = |present: bool, len: usize| -> Result<Option<u64>, LlError> {
        if !present {
            return Ok(None);
        }
        let v = if len == 8 {
            get_u64(body, at)
        } else {
            get_u32(body, at).map(u64::from)
        };
        at += len;
        v.map(Some).ok_or_else(|| cut(tfhd))
    };
    let base_offset = field(flags & 0x01 != 0, 8)?;
    let sdi = field(flags & 0x02 != 0, 4)?.map(|v| v as u32);
    let or_trex = |v: Option<u64>, pick: fn(&Track) -> u32| {
        v.map(|v| v as u32).or(trex.map(pick)).unwrap_or(0)
    };
    let default_duration = or_trex(field(flags & 0x08 != 0, 4)?, |t| t.default_sample_duration);
    let default_size = or_trex(field(flags & 0x10 != 0, 4)?, |t| t.default_sample_size);
    let default_flags = or_trex(field(flags & 0x20 != 0, 4)?, |t| t.default_sample_flags);
    let base = match base_offset {
        Some(o) => usize::try_from(o).map_err(|_| bad(b"tfhd", tfhd.start, "base offset"))?,
        None if flags & 0x02_0000 != 0 => moof_start,
        None => *next_base,
    };
    let mut out = Traf {
        track: track_id,
        sample_description_index: sdi,
        default_duration,
        default_size,
        default_flags,
        cto: false,
        version: 0,
        samples: Vec::new(),
    };
    let mut dts = None;
    let mut data = base;
    for b in &boxes {
        match &b.kind {
            b"senc" | b"saiz" => return Err(LlError::Encrypted),
            b"tfdt" => {
                let (version, _, body) = full_box(buf, b)?;
                let t = if version == 1 {
                    get_u64(body, 0)
                } else {
                    get_u32(body, 0).map(u64::from)
                };
                dts = Some(t.ok_or_else(|| cut(b))?);
            }
            b"trun" => {
                let t = dts.ok_or_else(|| bad(b"traf", traf.start, "no tfdt before its trun"))?;
                let end = parse_trun(buf, b, &mut out, t, base, data)?;
                data = end.1;
                dts = Some(end.0);
            }
            _ => {}
        }
    }
    *next_base = data;
    Ok(out)
}

/// The samples of one `trun` appended to `traf`; returns the decode time and
/// data offset after them.
fn parse_trun(
    buf: &[u8],
    b: &BoxAt,
    traf: &mut Traf,
    mut dts: u64,
    base: usize,
    mut data: usize,
) -> Result<(u64, usize), LlError> {
    let (version, flags, body) = full_box(buf, b)?;
    let cut = || {
        bad(
            &b.kind,
            b.start,
            "fewer sample records than its sample_count",
        )
    };
    let count = get_u32(body, 0).ok_or_else(cut)? as usize;
    let mut at = 4;
    if flags & 0x01 != 0 {
        let offset = get_u32(body, at).ok_or_else(cut)? as i32;
        data = usize::try_from(base as i64 + i64::from(offset))
            .map_err(|_| bad(&b.kind, b.start, "data offset before the segment"))?;
        at += 4;
    }
    let first_flags = if flags & 0x04 != 0 {
        at += 4;
        Some(get_u32(body, at - 4).ok_or_else(cut)?)
    } else {
        None
    };
    let fields: Vec<u32> = [0x100, 0x200, 0x400, 0x800]
        .into_iter()
        .filter(|f| flags & f != 0)
        .collect();
    let record = 4 * fields.len();
    let records = body
        .get(at..)
        .filter(|r| r.len() >= count.saturating_mul(record))
        .ok_or_else(cut)?;
    traf.cto |= flags & 0x800 != 0;
    traf.version = traf.version.max(version);
    traf.samples.reserve(count);
    for i in 0..count {
        let r = &records[i * record..];
        let value = |f: u32| {
            fields
                .iter()
                .position(|&x| x == f)
                .and_then(|k| get_u32(r, 4 * k))
        };
        let duration = value(0x100).unwrap_or(traf.default_duration);
        let size = value(0x200).unwrap_or(traf.default_size);
        let sample_flags = match (i, first_flags) {
            (0, Some(f)) => f,
            _ => value(0x400).unwrap_or(traf.default_flags),
        };
        let cto = value(0x800).unwrap_or(0);
        let end = data
            .checked_add(size as usize)
            .filter(|&e| e <= buf.len())
            .ok_or_else(|| bad(&b.kind, b.start, "sample data past the end of the segment"))?;
        traf.samples.push(Sample {
            dts,
            duration,
            size,
            flags: sample_flags,
            cto,
            offset: data,
        });
        dts = dts
            .checked_add(u64::from(duration))
            .ok_or_else(|| bad(&b.kind, b.start, "decode time overflows"))?;
        data = end;
    }
    Ok((dts, data))
}

/// `units` of a `timescale` in 90 kHz ticks (rounded down).
pub(crate) fn to_ticks(units: u64, timescale: u32) -> i128 {
    i128::from(units) * i128::from(HZ) / i128::from(timescale.max(1))
}

/// The lead track of an init segment: its first video track, else its first audio track.
fn lead_track(init: &Init) -> Result<&Track, LlError> {
    init.reference().ok_or(LlError::NoLeadStream)
}

/// Reads the lead frames of an fMP4 media segment with its init segment.
pub fn fmp4_frames(init: &Init, segment: &[u8]) -> Result<SegmentFrames, LlError> {
    let lead = lead_track(init)?;
    let audio = lead.kind == TrackKind::Audio;
    let mut frames = Vec::new();
    let mut first_dts = None;
    for fragment in fragments(init, segment)? {
        for traf in fragment.trafs.iter().filter(|t| t.track == lead.id) {
            for s in &traf.samples {
                let first = *first_dts.get_or_insert(s.dts);
                let at = to_ticks(s.dts, lead.timescale) - to_ticks(first, lead.timescale);
                let at = u64::try_from(at).map_err(|_| LlError::Backwards {
                    frame: frames.len(),
                })?;
                frames.push(Frame {
                    at: Ticks(at),
                    independent: audio || s.flags & NON_SYNC == 0,
                });
            }
        }
    }
    let Some(first_dts) = first_dts else {
        return Err(LlError::Malformed(format!(
            "no sample of track {} (the lead track) in the segment",
            lead.id
        )));
    };
    if let Some(i) = (1..frames.len()).find(|&i| frames[i].at < frames[i - 1].at) {
        return Err(LlError::Backwards { frame: i });
    }
    Ok(SegmentFrames {
        frames,
        cut: Cut::Fmp4(Fmp4Cut {
            lead: lead.id,
            timescale: lead.timescale,
            first_dts,
            len: segment.len(),
        }),
    })
}

#[cfg(test)]
#[path = "tests/fmp4.rs"]
mod tests;
