//! Continuous timestamps for fragmented MP4 (CMAF) media segments: shifts
//! `tfdt.baseMediaDecodeTime` of every `traf`, `sidx.earliest_presentation_time`,
//! `emsg` (version 1) `presentation_time` and `prft.media_time`, each by the offset
//! of its track, in that track's timescale.
//!
//! Sample timing inside a fragment is relative (`trun` durations and composition
//! offsets), so these fields are all there is to move. A version-0 field whose
//! new value needs 64 bits is rewritten as version 1; the box grows, and every
//! size and offset that spans the insertion is fixed: the sizes of the enclosing
//! `traf`/`moof`, `trun.data_offset` relative to the `moof`, an explicit
//! `tfhd.base_data_offset`, `sidx` first offset and referenced sizes. Anything
//! else (`styp`, `mdat`, `free`, unknown boxes) is copied unchanged. Pure; every
//! malformed input is a typed [`Fmp4Error`].

use crate::probe::mp4box::{self, BoxAt, BoxError, SizeField, get_u32, get_u64, kind_name};

/// The shift of one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackShift {
    /// `track_ID` as in `tfhd` (and `sidx.reference_ID`, `prft.reference_track_ID`).
    pub track_id: u32,
    /// The track's timescale (`mdhd`), units per second: `offset` is in these units.
    pub timescale: u32,
    /// Added to every decode time of the track (see [`super::timescale_offset`]).
    pub offset: i64,
}

/// Why a segment could not be restamped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    /// A box header or field runs past the end of its parent or of the buffer.
    #[error("box '{kind}' at byte {at}: truncated")]
    Truncated {
        /// Box type.
        kind: String,
        /// Offset of the box in the segment.
        at: usize,
    },
    /// A box size smaller than its own header.
    #[error("box '{kind}' at byte {at}: bad size {size}")]
    BadSize {
        /// Box type.
        kind: String,
        /// Offset of the box in the segment.
        at: usize,
        /// The size field.
        size: u64,
    },
    /// A box version this module does not know.
    #[error("box '{kind}' at byte {at}: unsupported version {version}")]
    UnsupportedVersion {
        /// Box type.
        kind: String,
        /// Offset of the box in the segment.
        at: usize,
        /// The version byte.
        version: u8,
    },
    /// A `traf` without a `tfhd`.
    #[error("traf at byte {at}: no tfhd")]
    MissingTfhd {
        /// Offset of the `traf`.
        at: usize,
    },
    /// A `traf` without a `tfdt`: its decode time is implicit and cannot be shifted.
    #[error("traf at byte {at} (track {track_id}): no tfdt")]
    MissingTfdt {
        /// Offset of the `traf`.
        at: usize,
        /// Its track.
        track_id: u32,
    },
    /// A track with no [`TrackShift`] (or no track at all for an `emsg`).
    #[error("box '{kind}' at byte {at}: no shift given for track {track_id}")]
    UnknownTrack {
        /// Box type.
        kind: String,
        /// Offset of the box.
        at: usize,
        /// The track it refers to.
        track_id: u32,
    },
    /// A shifted time below 0 or beyond 64 bits, or a timescale of 0.
    #[error("box '{kind}' at byte {at}: time {time} shifted by {offset} is out of range")]
    TimeOutOfRange {
        /// Box type.
        kind: String,
        /// Offset of the box.
        at: usize,
        /// The time in the box.
        time: u64,
        /// The offset (in the box's timescale, when it could be computed).
        offset: i64,
    },
    /// A size or offset field that no longer fits after a box grew.
    #[error("box '{kind}' at byte {at}: a size or offset no longer fits its field")]
    Overflow {
        /// Box type.
        kind: String,
        /// Offset of the box.
        at: usize,
    },
}

impl From<BoxError> for Fmp4Error {
    fn from(e: BoxError) -> Self {
        match e {
            BoxError::Truncated { kind, at } => Fmp4Error::Truncated {
                kind: kind_name(&kind),
                at,
            },
            BoxError::BadSize { kind, at, size } => Fmp4Error::BadSize {
                kind: kind_name(&kind),
                at,
                size,
            },
        }
    }
}

fn truncated(kind: &[u8; 4], at: usize) -> Fmp4Error {
    Fmp4Error::Truncated {
        kind: kind_name(kind),
        at,
    }
}

fn children(buf: &[u8], start: usize, end: usize) -> Result<Vec<BoxAt>, Fmp4Error> {
    Ok(mp4box::children(buf, start, end)?)
}

/// A field to rewrite once every growth is known.
#[derive(Debug, Clone)]
enum Site {
    /// The size of a box that may contain a growth.
    Size(BoxAt),
    /// Bytes known at parse time, replacing `start..end` (a growth when longer).
    Bytes {
        start: usize,
        end: usize,
        bytes: Vec<u8>,
    },
    /// `trun.data_offset` (i32 at `at`), relative to the position `base`.
    DataOffset {
        at: usize,
        base: i128,
        old: i32,
        owner: BoxAt,
    },
    /// Explicit `tfhd.base_data_offset` (u64 at `at`), a position in the segment.
    BaseDataOffset { at: usize, old: u64, owner: BoxAt },
    /// `sidx` from its version byte to the end of `first_offset`, rewritten.
    Sidx {
        owner: BoxAt,
        /// Version, flags, reference_ID, timescale (12 bytes), version already set.
        head: [u8; 12],
        ept: u64,
        first_offset: u64,
        /// Length of the rewritten range in the input (20 for version 0, 28 for 1).
        old_len: usize,
    },
    /// One `sidx` reference size (31 bits at `at`, the top bit is the
    /// reference type) for the bytes `from..to` of the input.
    ReferencedSize {
        at: usize,
        from: i128,
        to: i128,
        type_bit: u8,
        owner: BoxAt,
    },
}

impl Site {
    /// Bytes added by this site: (position of the first input byte that moves, count).
    fn growth(&self) -> Option<(usize, usize)> {
        match self {
            Site::Bytes { start, end, bytes } if bytes.len() > end - start => {
                Some((*end, bytes.len() - (end - start)))
            }
            Site::Sidx {
                owner,
                head,
                old_len: 20,
                ..
            } if head[0] == 1 => Some((owner.body + 20, 8)),
            _ => None,
        }
    }
}

/// Input positions mapped to output positions, given the growths.
struct Growths(Vec<(usize, usize)>);

impl Growths {
    /// Where input byte `p` lands in the output: bytes at or past a growth's position move.
    fn map(&self, p: i128) -> i128 {
        p + self
            .0
            .iter()
            .filter(|&&(at, _)| at as i128 <= p)
            .map(|&(_, n)| n as i128)
            .sum::<i128>()
    }
}

/// Shifts every decode time of an fMP4 media segment by its track's offset and
/// returns the new segment. `tracks` must cover every track in the segment.
///
/// The caller computes the offsets per request: for global segment `g`, each
/// track's [`super::timescale_offset`]`(start(i), start_of(g), base, timescale)`,
/// where `start(i)` is the first `tfdt` of the reference track (video, else the
/// first audio) in source segment `i`, read at load and converted to that
/// track's timescale, so that all tracks move by the same time. `emsg` version 1 takes the first track's offset, a `sidx` its
/// `reference_ID`'s, each rescaled to the box's own timescale.
pub fn apply(input: &[u8], tracks: &[TrackShift]) -> Result<Vec<u8>, Fmp4Error> {
    let mut sites = Vec::new();
    for b in children(input, 0, input.len())? {
        match &b.kind {
            b"moof" => moof(input, b, tracks, &mut sites)?,
            b"sidx" => sidx(input, b, tracks, &mut sites)?,
            b"emsg" => emsg(input, b, tracks, &mut sites)?,
            b"prft" => prft(input, b, tracks, &mut sites)?,
            _ => {}
        }
    }
    let growths = Growths(sites.iter().filter_map(Site::growth).collect());
    let mut edits = Vec::with_capacity(sites.len());
    for site in sites {
        if let Some(edit) = resolve(site, &growths)? {
            edits.push(edit);
        }
    }
    edits.sort_by_key(|e| e.0);
    let extra: usize = growths.0.iter().map(|g| g.1).sum();
    let mut out = Vec::with_capacity(input.len() + extra);
    let mut pos = 0;
    for (start, end, bytes) in edits {
        // Sites are disjoint fields of disjoint boxes; `get` only guards the slice.
        let Some(keep) = input.get(pos..start) else {
            continue;
        };
        out.extend_from_slice(keep);
        out.extend_from_slice(&bytes);
        pos = end;
    }
    out.extend_from_slice(input.get(pos..).unwrap_or_default());
    Ok(out)
}

fn overflow(owner: &BoxAt) -> Fmp4Error {
    Fmp4Error::Overflow {
        kind: kind_name(&owner.kind),
        at: owner.start,
    }
}

type Edit = (usize, usize, Vec<u8>);

/// The edit a site makes, now that every growth is known.
fn resolve(site: Site, g: &Growths) -> Result<Option<Edit>, Fmp4Error> {
    let span = |from: i128, to: i128| g.map(to) - g.map(from);
    let edit = match site {
        Site::Size(b) => {
            let size = span(b.start as i128, b.end as i128);
            if size == (b.end - b.start) as i128 {
                return Ok(None);
            }
            match b.size {
                SizeField::ToEnd => return Ok(None),
                SizeField::Short => {
                    let v = u32::try_from(size).map_err(|_| overflow(&b))?;
                    (b.start, b.start + 4, v.to_be_bytes().to_vec())
                }
                SizeField::Large => {
                    let v = u64::try_from(size).map_err(|_| overflow(&b))?;
                    (b.start + 8, b.start + 16, v.to_be_bytes().to_vec())
                }
            }
        }
        Site::Bytes { start, end, bytes } => (start, end, bytes),
        Site::DataOffset {
            at,
            base,
            old,
            owner,
        } => {
            let new = span(base, base + i128::from(old));
            let v = i32::try_from(new).map_err(|_| overflow(&owner))?;
            (at, at + 4, v.to_be_bytes().to_vec())
        }
        Site::BaseDataOffset { at, old, owner } => {
            let v = u64::try_from(g.map(i128::from(old))).map_err(|_| overflow(&owner))?;
            (at, at + 8, v.to_be_bytes().to_vec())
        }
        Site::Sidx {
            owner,
            head,
            ept,
            first_offset,
            old_len,
        } => {
            // first_offset counts from the first byte after the sidx.
            let anchor = owner.end as i128;
            let first = span(anchor, anchor + i128::from(first_offset));
            let mut bytes = head.to_vec();
            if head[0] == 0 {
                let ept = u32::try_from(ept).map_err(|_| overflow(&owner))?;
                let first = u32::try_from(first).map_err(|_| overflow(&owner))?;
                bytes.extend_from_slice(&ept.to_be_bytes());
                bytes.extend_from_slice(&first.to_be_bytes());
            } else {
                let first = u64::try_from(first).map_err(|_| overflow(&owner))?;
                bytes.extend_from_slice(&ept.to_be_bytes());
                bytes.extend_from_slice(&first.to_be_bytes());
            }
            (owner.body, owner.body + old_len, bytes)
        }
        Site::ReferencedSize {
            at,
            from,
            to,
            type_bit,
            owner,
        } => {
            let size = u32::try_from(span(from, to))
                .ok()
                .filter(|&s| s < 1 << 31)
                .ok_or_else(|| overflow(&owner))?;
            let mut bytes = size.to_be_bytes().to_vec();
            bytes[0] |= type_bit << 7;
            (at, at + 4, bytes)
        }
    };
    Ok(Some(edit))
}

/// `offset` (in `from` units per second) in `to` units per second, rounded.
fn rescale(offset: i64, from: u32, to: u32) -> Option<i64> {
    if from == to {
        return Some(offset);
    }
    if from == 0 {
        return None;
    }
    let (num, den) = (i128::from(offset) * i128::from(to), i128::from(from));
    let half = if num < 0 { -den / 2 } else { den / 2 };
    i64::try_from((num + half) / den).ok()
}

fn find_track<'a>(
    tracks: &'a [TrackShift],
    track_id: u32,
    b: &BoxAt,
) -> Result<&'a TrackShift, Fmp4Error> {
    tracks
        .iter()
        .find(|t| t.track_id == track_id)
        .ok_or_else(|| Fmp4Error::UnknownTrack {
            kind: kind_name(&b.kind),
            at: b.start,
            track_id,
        })
}

/// `time + offset`, or the error naming the box.
fn shifted(time: u64, offset: Option<i64>, b: &BoxAt) -> Result<u64, Fmp4Error> {
    offset
        .and_then(|o| u64::try_from(i128::from(time) + i128::from(o)).ok())
        .ok_or_else(|| Fmp4Error::TimeOutOfRange {
            kind: kind_name(&b.kind),
            at: b.start,
            time,
            offset: offset.unwrap_or_default(),
        })
}

/// Version byte and 3 flag bytes of a full box, and the body length checked.
fn full_box(input: &[u8], b: &BoxAt, need: usize) -> Result<(u8, [u8; 3]), Fmp4Error> {
    match input.get(b.body..b.body + 4) {
        Some(&[v, f0, f1, f2]) if b.body + need <= b.end => Ok((v, [f0, f1, f2])),
        _ => Err(truncated(&b.kind, b.start)),
    }
}

fn unsupported(b: &BoxAt, version: u8) -> Fmp4Error {
    Fmp4Error::UnsupportedVersion {
        kind: kind_name(&b.kind),
        at: b.start,
        version,
    }
}

/// Where a `traf`'s `trun.data_offset` counts from.
enum Base {
    /// A position in the segment (the `moof` start, or an explicit base data offset).
    At(i128),
    /// The end of the previous `traf`'s data: moves with it, so offsets stay.
    PreviousData,
}

fn moof(
    input: &[u8],
    b: BoxAt,
    tracks: &[TrackShift],
    sites: &mut Vec<Site>,
) -> Result<(), Fmp4Error> {
    sites.push(Site::Size(b));
    let mut first = true;
    for t in children(input, b.body, b.end)? {
        if &t.kind == b"traf" {
            traf(input, &b, t, first, tracks, sites)?;
            first = false;
        }
    }
    Ok(())
}

fn traf(
    input: &[u8],
    moof: &BoxAt,
    t: BoxAt,
    first: bool,
    tracks: &[TrackShift],
    sites: &mut Vec<Site>,
) -> Result<(), Fmp4Error> {
    sites.push(Site::Size(t));
    let kids = children(input, t.body, t.end)?;
    let tfhd = kids
        .iter()
        .find(|c| &c.kind == b"tfhd")
        .ok_or(Fmp4Error::MissingTfhd { at: t.start })?;
    let (_, f) = full_box(input, tfhd, 8)?;
    let flags = u32::from_be_bytes([0, f[0], f[1], f[2]]);
    let track_id =
        get_u32(input, tfhd.body + 4).ok_or_else(|| truncated(&tfhd.kind, tfhd.start))?;
    let track = find_track(tracks, track_id, tfhd)?;
    let base = if flags & 0x01 != 0 {
        let at = tfhd.body + 8;
        let old = get_u64(input, at)
            .filter(|_| at + 8 <= tfhd.end)
            .ok_or_else(|| truncated(&tfhd.kind, tfhd.start))?;
        sites.push(Site::BaseDataOffset {
            at,
            old,
            owner: *tfhd,
        });
        Base::At(i128::from(old))
    } else if flags & 0x02_0000 != 0 || first {
        Base::At(moof.start as i128)
    } else {
        Base::PreviousData
    };

    let tfdt = kids
        .iter()
        .find(|c| &c.kind == b"tfdt")
        .ok_or(Fmp4Error::MissingTfdt {
            at: t.start,
            track_id,
        })?;
    let (version, f) = full_box(input, tfdt, 8)?;
    let (time, len) = match version {
        0 => (get_u32(input, tfdt.body + 4).map(u64::from), 4),
        1 => (get_u64(input, tfdt.body + 4), 8),
        v => return Err(unsupported(tfdt, v)),
    };
    let time = time
        .filter(|_| tfdt.body + 4 + len <= tfdt.end)
        .ok_or_else(|| truncated(&tfdt.kind, tfdt.start))?;
    let new = shifted(time, Some(track.offset), tfdt)?;
    let mut bytes = Vec::with_capacity(12);
    match u32::try_from(new) {
        Ok(v) if version == 0 => {
            bytes.push(0);
            bytes.extend_from_slice(&f);
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        _ => {
            bytes.push(1);
            bytes.extend_from_slice(&f);
            bytes.extend_from_slice(&new.to_be_bytes());
        }
    }
    sites.push(Site::Size(*tfdt));
    sites.push(Site::Bytes {
        start: tfdt.body,
        end: tfdt.body + 4 + len,
        bytes,
    });

    for trun in kids.iter().filter(|c| &c.kind == b"trun") {
        let (_, f) = full_box(input, trun, 4)?;
        if f[2] & 0x01 == 0 {
            continue; // no data_offset
        }
        let at = trun.body + 8;
        let old = get_u32(input, at)
            .filter(|_| at + 4 <= trun.end)
            .ok_or_else(|| truncated(&trun.kind, trun.start))? as i32;
        if let Base::At(base) = base {
            sites.push(Site::DataOffset {
                at,
                base,
                old,
                owner: *trun,
            });
        }
    }
    Ok(())
}

fn sidx(
    input: &[u8],
    b: BoxAt,
    tracks: &[TrackShift],
    sites: &mut Vec<Site>,
) -> Result<(), Fmp4Error> {
    let (version, _) = full_box(input, &b, 12)?;
    let (ept, first_offset, refs_at) = match version {
        0 => (
            get_u32(input, b.body + 12).map(u64::from),
            get_u32(input, b.body + 16).map(u64::from),
            b.body + 20,
        ),
        1 => (
            get_u64(input, b.body + 12),
            get_u64(input, b.body + 20),
            b.body + 28,
        ),
        v => return Err(unsupported(&b, v)),
    };
    let count = get_u32(input, refs_at).map(|v| (v & 0xffff) as usize);
    let (Some(ept), Some(first_offset), Some(count)) = (ept, first_offset, count) else {
        return Err(truncated(&b.kind, b.start));
    };
    if refs_at + 4 + 12 * count > b.end {
        return Err(truncated(&b.kind, b.start));
    }
    let mut head = [0u8; 12];
    head.copy_from_slice(input.get(b.body..b.body + 12).unwrap_or(&[0; 12]));
    let reference_id = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let timescale = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let track = find_track(tracks, reference_id, &b)?;
    let new = shifted(ept, rescale(track.offset, track.timescale, timescale), &b)?;
    if version == 1 || new > u64::from(u32::MAX) {
        head[0] = 1;
    }
    sites.push(Site::Size(b));
    sites.push(Site::Sidx {
        owner: b,
        head,
        ept: new,
        first_offset,
        old_len: refs_at - b.body,
    });
    let mut from = b.end as i128 + i128::from(first_offset);
    for r in 0..count {
        let at = refs_at + 4 + 12 * r;
        let word = get_u32(input, at).ok_or_else(|| truncated(&b.kind, b.start))?;
        let to = from + i128::from(word & 0x7fff_ffff);
        sites.push(Site::ReferencedSize {
            at,
            from,
            to,
            type_bit: (word >> 31) as u8,
            owner: b,
        });
        from = to;
    }
    Ok(())
}

fn emsg(
    input: &[u8],
    b: BoxAt,
    tracks: &[TrackShift],
    sites: &mut Vec<Site>,
) -> Result<(), Fmp4Error> {
    let (version, _) = full_box(input, &b, 4)?;
    match version {
        0 => return Ok(()), // presentation_time_delta: relative to the segment
        1 => {}
        v => return Err(unsupported(&b, v)),
    }
    let (Some(timescale), Some(time)) = (get_u32(input, b.body + 4), get_u64(input, b.body + 8))
    else {
        return Err(truncated(&b.kind, b.start));
    };
    if b.body + 16 > b.end {
        return Err(truncated(&b.kind, b.start));
    }
    let track = tracks.first().ok_or_else(|| Fmp4Error::UnknownTrack {
        kind: kind_name(&b.kind),
        at: b.start,
        track_id: 0,
    })?;
    let new = shifted(time, rescale(track.offset, track.timescale, timescale), &b)?;
    sites.push(Site::Bytes {
        start: b.body + 8,
        end: b.body + 16,
        bytes: new.to_be_bytes().to_vec(),
    });
    Ok(())
}

fn prft(
    input: &[u8],
    b: BoxAt,
    tracks: &[TrackShift],
    sites: &mut Vec<Site>,
) -> Result<(), Fmp4Error> {
    let (version, _) = full_box(input, &b, 16)?;
    let (time, len) = match version {
        0 => (get_u32(input, b.body + 16).map(u64::from), 4),
        1 => (get_u64(input, b.body + 16), 8),
        v => return Err(unsupported(&b, v)),
    };
    let time = time
        .filter(|_| b.body + 16 + len <= b.end)
        .ok_or_else(|| truncated(&b.kind, b.start))?;
    let track_id = get_u32(input, b.body + 4).ok_or_else(|| truncated(&b.kind, b.start))?;
    let track = find_track(tracks, track_id, &b)?;
    let new = shifted(time, Some(track.offset), &b)?;
    let mut bytes = input.get(b.body..b.body + 16).unwrap_or_default().to_vec();
    match u32::try_from(new) {
        Ok(v) if version == 0 => bytes.extend_from_slice(&v.to_be_bytes()),
        _ => {
            if let Some(v) = bytes.first_mut() {
                *v = 1;
            }
            bytes.extend_from_slice(&new.to_be_bytes());
        }
    }
    sites.push(Site::Size(b));
    sites.push(Site::Bytes {
        start: b.body,
        end: b.body + 16 + len,
        bytes,
    });
    Ok(())
}

#[cfg(test)]
mod tests;

/// What continuous timestamps need of one fMP4 track, read once at first use:
/// its tracks' ids and timescales (from the init segment) and the reference
/// track's first decode time in every segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmp4Plan {
    /// `(track_ID, timescale)` of every track of the init segment.
    pub tracks: Vec<(u32, u32)>,
    /// Timescale of the reference track (the one `starts` are in).
    pub reference_timescale: u32,
    /// Per source segment: the reference track's first `tfdt`.
    pub starts: Vec<u64>,
    /// Whether the reference track is video (else audio).
    pub reference_is_video: bool,
}

impl Fmp4Plan {
    /// The offset (90 kHz, mod 2^33) that moves source segment `i` to
    /// `start_of_g_ticks` after the timeline's origin: what its media's
    /// presentation times move by, for what is timed against them (WebVTT).
    pub fn pts_offset(&self, i: usize, start_of_g_ticks: u64) -> Option<u64> {
        let start = u128::from(*self.starts.get(i)?);
        let timescale = u128::from(self.reference_timescale);
        if timescale == 0 {
            return None;
        }
        let source = (start * u128::from(crate::ticks::HZ) + timescale / 2) / timescale;
        let source = (source % u128::from(crate::ticks::PTS_WRAP)) as u64;
        Some(super::pts_offset_ticks(
            source,
            start_of_g_ticks,
            super::BASE_TICKS,
        ))
    }

    /// The shifts that move source segment `i`, served as the segment starting
    /// `start_of_g_ticks` after the timeline's origin, onto the timeline:
    /// every track by the same time. `None` when an offset does not fit.
    pub fn for_segment(&self, i: usize, start_of_g_ticks: u64) -> Option<Vec<TrackShift>> {
        let start = *self.starts.get(i)?;
        self.tracks
            .iter()
            .map(|&(track_id, timescale)| {
                // The reference start, on this track's clock.
                let source = (u128::from(start) * u128::from(timescale)
                    + u128::from(self.reference_timescale) / 2)
                    / u128::from(self.reference_timescale.max(1));
                let source = u64::try_from(source).ok()?;
                let offset = super::timescale_offset(
                    source,
                    start_of_g_ticks,
                    super::BASE_TICKS,
                    timescale,
                )?;
                Some(TrackShift {
                    track_id,
                    timescale,
                    offset,
                })
            })
            .collect()
    }
}
