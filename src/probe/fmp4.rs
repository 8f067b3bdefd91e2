//! Native fMP4/CMAF timing (ISO/IEC 14496-12 fragments): pure, over `&[u8]`,
//! like `ts.rs`.
//!
//! From the init segment (`moov`): per track its id (`tkhd`), kind (`hdlr`
//! `vide`/`soun`), timescale (`mdhd`) and default sample duration
//! (`mvex/trex`). The reference track is the first video track, else the
//! first audio track. From a media segment: the `baseMediaDecodeTime`
//! (`tfdt`) of the reference track's first fragment and the sum of its
//! sample durations over every `moof/traf/trun` (the `trun` entry when flag
//! 0x100 is set, else `tfhd` default-sample-duration (flag 0x08), else the
//! `trex` default; when all of those are zero, the segment's `sidx`).
//! Other tracks' fragments, `styp`, `sidx`, `emsg`, `prft`, `free`, `mdat`
//! and unknown boxes are skipped; 64-bit and to-the-end box sizes are
//! understood; a file holding both `moov` and fragments (single-file CMAF)
//! is its own init segment. Times stay in the track's timescale here: the
//! caller converts absolute positions to 90 kHz ticks.
//!
//! Own box reader, not the `mp4-atom` crate (0.17, compared side by side in
//! `bench/fmp4_vs_mp4_atom`; numbers in BENCHMARKS.md):
//! - correctness: both give the same timescale, `tfdt` and duration sum on
//!   every fMP4 fixture (ffmpeg H.264/AAC and HEVC/AC-3, Shaka Packager CMAF);
//! - robustness: neither panicked on 400 000 edited or truncated fixtures,
//!   but mp4-atom decodes the whole `moov` (every sample entry and codec
//!   configuration) and fails on damage there, or logs warnings for boxes it
//!   does not expect, where this reader looks at eight box types only (it
//!   still timed 273 415 of the damaged inputs, mp4-atom 143 759);
//! - throughput: 13–34× faster per segment here: no allocation per sample,
//!   no copy of `mdat`, where mp4-atom builds every box and `trun` entry;
//! - weight: mp4-atom adds 14 crates (`num` with big integers,
//!   `derive_more`, a second `thiserror`) and 1.8 MB of source, for what is
//!   here about 550 lines with their documentation, and it is still 0.x.

/// A four-character box type.
type FourCc = [u8; 4];

/// Largest number of tracks kept from an init segment (the rest are ignored).
const MAX_TRACKS: usize = 64;

/// What an init segment says a track is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// Handler `vide`.
    Video,
    /// Handler `soun`.
    Audio,
    /// Anything else (subtitles, metadata, hints).
    Other,
}

/// One track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// `tkhd` track_ID, which fragments (`tfhd`) refer to.
    pub id: u32,
    /// From the `hdlr` handler type.
    pub kind: TrackKind,
    /// `mdhd` timescale: units per second of every time of the track.
    pub timescale: u32,
    /// `trex` default_sample_duration (0 when the init segment has none).
    pub default_sample_duration: u32,
}

/// What the init segment (`moov`) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    /// Tracks in `moov` order.
    pub tracks: Vec<Track>,
}

impl Init {
    /// The track segments are timed by: the first video track, else the
    /// first audio track.
    pub fn reference(&self) -> Option<&Track> {
        let first = |kind| self.tracks.iter().find(|t| t.kind == kind);
        first(TrackKind::Video).or_else(|| first(TrackKind::Audio))
    }
}

/// Timing of one media segment, on its reference track's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmp4Timing {
    /// The reference track.
    pub track_id: u32,
    /// Its kind (video or audio).
    pub kind: TrackKind,
    /// Units per second of `start` and `duration` (`mdhd` timescale).
    pub timescale: u32,
    /// `baseMediaDecodeTime` of the track's first fragment in the segment;
    /// `None` when its `traf` has no `tfdt`.
    pub start: Option<u64>,
    /// Sum of the durations of the track's samples in the segment.
    pub duration: u64,
    /// Number of `traf` boxes of the track in the segment.
    pub fragments: usize,
}

/// Why bytes gave no fMP4 timing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fmp4Error {
    /// Zero bytes.
    #[error("empty file")]
    Empty,
    /// A box is cut short or its size is impossible.
    #[error("'{kind}' box at byte {offset}: {problem}")]
    BadBox {
        /// Box type, as text.
        kind: String,
        /// Offset of the box in the buffer read.
        offset: usize,
        /// What is wrong.
        problem: &'static str,
    },
    /// No `moov` box, so no timescale.
    #[error("no moov box: no init segment (EXT-X-MAP) to take the timescale from")]
    NoMoov,
    /// No video or audio track in `moov`.
    #[error("the init segment has no video or audio track with a timescale")]
    NoTrack,
    /// No fragment of the reference track.
    #[error("no moof/traf for track {track_id} (the init segment's reference track)")]
    NoFragments {
        /// The reference track.
        track_id: u32,
    },
    /// The sample durations add up past 2^64.
    #[error("sample durations of track {track_id} overflow")]
    Overflow {
        /// The reference track.
        track_id: u32,
    },
}

/// One box: its type, its body (after the header) and where it starts.
#[derive(Debug, Clone, Copy)]
struct Mp4Box<'a> {
    kind: FourCc,
    body: &'a [u8],
    /// Offset of the box in the outermost buffer.
    offset: usize,
    /// Header length: 8, or 16 with a 64-bit size.
    header: usize,
    /// The box claims more bytes than there are; `body` is what there is.
    truncated: bool,
}

impl<'a> Mp4Box<'a> {
    fn error(&self, problem: &'static str) -> Fmp4Error {
        Fmp4Error::BadBox {
            kind: String::from_utf8_lossy(&self.kind).into_owned(),
            offset: self.offset,
            problem,
        }
    }

    /// Offset of the body in the outermost buffer: the base of its children.
    fn inner(&self) -> usize {
        self.offset + self.header
    }

    /// The body of a complete box.
    fn whole(&self) -> Result<&'a [u8], Fmp4Error> {
        if self.truncated {
            Err(self.error("cut short"))
        } else {
            Ok(self.body)
        }
    }
}

/// The boxes of a buffer, in order. A box whose header does not fit, or
/// whose size is smaller than its header, ends the iteration with an error;
/// a box that claims more bytes than remain is returned as `truncated`.
struct Boxes<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the outermost buffer, for error messages.
    base: usize,
    failed: bool,
}

fn boxes(buf: &[u8], base: usize) -> Boxes<'_> {
    Boxes {
        buf,
        pos: 0,
        base,
        failed: false,
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<Mp4Box<'a>, Fmp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let offset = self.base + self.pos;
        let fail = |kind: &[u8], problem| Fmp4Error::BadBox {
            kind: String::from_utf8_lossy(kind).into_owned(),
            offset,
            problem,
        };
        let (Some(size), Some(kind)) = (be_u32(rest, 0), rest.get(4..8)) else {
            self.failed = true;
            return Some(Err(fail(b"?", "box header cut short")));
        };
        let kind: FourCc = [kind[0], kind[1], kind[2], kind[3]];
        let (header, size) = match size {
            0 => (8, rest.len() as u64),
            1 => match be_u64(rest, 8) {
                Some(large) => (16, large),
                None => {
                    self.failed = true;
                    return Some(Err(fail(&kind, "64-bit box size cut short")));
                }
            },
            n => (8, u64::from(n)),
        };
        if size < header as u64 {
            self.failed = true;
            return Some(Err(fail(&kind, "box size smaller than its header")));
        }
        let available = rest.len() as u64;
        let truncated = size > available;
        let end = size.min(available) as usize;
        self.pos += end;
        Some(Ok(Mp4Box {
            kind,
            body: &rest[header..end],
            offset,
            header,
            truncated,
        }))
    }
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn be_u64(buf: &[u8], at: usize) -> Option<u64> {
    let b = buf.get(at..at.checked_add(8)?)?;
    Some(u64::from_be_bytes([
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
    ]))
}

/// The first child box of `kind` in a container body.
fn child<'a>(body: &'a [u8], base: usize, kind: &FourCc) -> Result<Option<Mp4Box<'a>>, Fmp4Error> {
    for b in boxes(body, base) {
        let b = b?;
        if &b.kind == kind {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// Version and flags of a full box body.
fn full_box<'a>(b: &Mp4Box<'a>) -> Result<(u8, u32, &'a [u8]), Fmp4Error> {
    let body = b.whole()?;
    let vf = be_u32(body, 0).ok_or_else(|| b.error("version and flags cut short"))?;
    Ok(((vf >> 24) as u8, vf & 0x00ff_ffff, &body[4..]))
}

/// Reads the tracks of the first `moov` box in `buf` (an init segment, or a
/// single file holding init and fragments).
pub fn parse_init(buf: &[u8]) -> Result<Init, Fmp4Error> {
    if buf.is_empty() {
        return Err(Fmp4Error::Empty);
    }
    for b in boxes(buf, 0) {
        let b = b?;
        if &b.kind == b"moov" {
            return parse_moov(b.whole()?, b.inner());
        }
    }
    Err(Fmp4Error::NoMoov)
}

fn parse_moov(moov: &[u8], base: usize) -> Result<Init, Fmp4Error> {
    let mut tracks = Vec::new();
    let mut trex: Vec<(u32, u32)> = Vec::new();
    for b in boxes(moov, base) {
        let b = b?;
        match &b.kind {
            b"trak" if tracks.len() < MAX_TRACKS => {
                if let Some(t) = parse_trak(b.whole()?, b.inner())? {
                    tracks.push(t);
                }
            }
            b"mvex" => {
                for t in boxes(b.whole()?, b.inner()) {
                    let t = t?;
                    if &t.kind == b"trex" && trex.len() < MAX_TRACKS {
                        let (_, _, body) = full_box(&t)?;
                        let (Some(id), Some(duration)) = (be_u32(body, 0), be_u32(body, 8)) else {
                            return Err(t.error("cut short"));
                        };
                        trex.push((id, duration));
                    }
                }
            }
            _ => {}
        }
    }
    for t in &mut tracks {
        if let Some(&(_, d)) = trex.iter().find(|(id, _)| *id == t.id) {
            t.default_sample_duration = d;
        }
    }
    if tracks.iter().all(|t| t.kind == TrackKind::Other) {
        return Err(Fmp4Error::NoTrack);
    }
    Ok(Init { tracks })
}

/// A track from a `trak` body; `None` when it lacks `tkhd`, `mdhd` or `hdlr`
/// or has a zero timescale.
fn parse_trak(trak: &[u8], base: usize) -> Result<Option<Track>, Fmp4Error> {
    let mut id = None;
    let mut timescale = None;
    let mut kind = None;
    for b in boxes(trak, base) {
        let b = b?;
        match &b.kind {
            b"tkhd" => {
                let (version, _, body) = full_box(&b)?;
                let at = if version == 1 { 16 } else { 8 };
                id = Some(be_u32(body, at).ok_or_else(|| b.error("cut short"))?);
            }
            b"mdia" => {
                let inner = b.inner();
                let mdia = b.whole()?;
                if let Some(m) = child(mdia, inner, b"mdhd")? {
                    let (version, _, body) = full_box(&m)?;
                    let at = if version == 1 { 16 } else { 8 };
                    timescale = Some(be_u32(body, at).ok_or_else(|| m.error("cut short"))?);
                }
                if let Some(h) = child(mdia, inner, b"hdlr")? {
                    let (_, _, body) = full_box(&h)?;
                    kind = Some(match body.get(4..8) {
                        Some(b"vide") => TrackKind::Video,
                        Some(b"soun") => TrackKind::Audio,
                        Some(_) => TrackKind::Other,
                        None => return Err(h.error("cut short")),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(match (id, timescale, kind) {
        (Some(id), Some(timescale), Some(kind)) if timescale > 0 => Some(Track {
            id,
            kind,
            timescale,
            default_sample_duration: 0,
        }),
        _ => None,
    })
}

/// Sum of the durations of the samples of one `traf` (of the wanted track)
/// and its `tfdt`, or `None` when the `traf` belongs to another track.
fn parse_traf(
    traf: &[u8],
    base: usize,
    track: &Track,
) -> Result<Option<(Option<u64>, u64)>, Fmp4Error> {
    let mut default_duration = track.default_sample_duration;
    let mut mine = false;
    let mut start = None;
    let mut total: u64 = 0;
    let overflow = || Fmp4Error::Overflow { track_id: track.id };
    for b in boxes(traf, base) {
        let b = b?;
        match &b.kind {
            b"tfhd" => {
                let (_, flags, body) = full_box(&b)?;
                let id = be_u32(body, 0).ok_or_else(|| b.error("cut short"))?;
                if id != track.id {
                    return Ok(None);
                }
                mine = true;
                if flags & 0x08 != 0 {
                    // track_ID, then base_data_offset (8) and
                    // sample_description_index (4) when flagged.
                    let at = 4
                        + if flags & 0x01 != 0 { 8 } else { 0 }
                        + if flags & 0x02 != 0 { 4 } else { 0 };
                    default_duration = be_u32(body, at).ok_or_else(|| b.error("cut short"))?;
                }
            }
            b"tfdt" => {
                let (version, _, body) = full_box(&b)?;
                let t = if version == 1 {
                    be_u64(body, 0)
                } else {
                    be_u32(body, 0).map(u64::from)
                };
                start = Some(t.ok_or_else(|| b.error("cut short"))?);
            }
            b"trun" => {
                let (_, flags, body) = full_box(&b)?;
                let count = be_u32(body, 0).ok_or_else(|| b.error("cut short"))?;
                let mut at = 4;
                if flags & 0x01 != 0 {
                    at += 4; // data_offset
                }
                if flags & 0x04 != 0 {
                    at += 4; // first_sample_flags
                }
                // Per-sample fields: duration, size, flags, composition offset.
                let fields = [0x100, 0x200, 0x400, 0x800]
                    .iter()
                    .filter(|&&f| flags & f != 0)
                    .count();
                let record = 4 * fields;
                let samples = body
                    .get(at..)
                    .filter(|s| s.len() as u64 >= u64::from(count) * record as u64)
                    .ok_or_else(|| b.error("fewer sample records than its sample_count"))?;
                let run = if flags & 0x100 != 0 {
                    samples
                        .chunks_exact(record)
                        .take(count as usize)
                        .map(|r| u64::from(u32::from_be_bytes([r[0], r[1], r[2], r[3]])))
                        .sum::<u64>()
                } else {
                    u64::from(count) * u64::from(default_duration)
                };
                total = total.checked_add(run).ok_or_else(overflow)?;
            }
            _ => {}
        }
    }
    Ok(mine.then_some((start, total)))
}

/// Sum of the subsegment durations of a `sidx` for `track`, converted to
/// its timescale; `None` when the `sidx` is for another track.
fn sidx_duration(b: &Mp4Box<'_>, track: &Track) -> Result<Option<u64>, Fmp4Error> {
    let (version, _, body) = full_box(b)?;
    let cut = || b.error("cut short");
    if be_u32(body, 0).ok_or_else(cut)? != track.id {
        return Ok(None);
    }
    let timescale = be_u32(body, 4).ok_or_else(cut)?;
    let at = if version == 0 { 16 } else { 24 };
    let count = body
        .get(at + 2..at + 4)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .ok_or_else(cut)?;
    let refs = body
        .get(at + 4..)
        .filter(|r| r.len() >= 12 * usize::from(count))
        .ok_or_else(cut)?;
    if timescale == 0 {
        return Err(b.error("zero timescale"));
    }
    let sum: u64 = refs
        .chunks_exact(12)
        .take(usize::from(count))
        .map(|r| u64::from(u32::from_be_bytes([r[4], r[5], r[6], r[7]])))
        .sum();
    let converted = u128::from(sum) * u128::from(track.timescale) / u128::from(timescale);
    Ok(Some(u64::try_from(converted).unwrap_or(u64::MAX)))
}

/// Timing of one media segment: the reference track of `init`, its first
/// `tfdt` and the sum of its sample durations over every fragment of `buf`.
pub fn scan(init: &Init, buf: &[u8]) -> Result<Fmp4Timing, Fmp4Error> {
    if buf.is_empty() {
        return Err(Fmp4Error::Empty);
    }
    let track = init.reference().ok_or(Fmp4Error::NoTrack)?;
    let mut start = None;
    let mut duration: u64 = 0;
    let mut fragments = 0usize;
    let mut sidx: Option<u64> = None;
    for b in boxes(buf, 0) {
        let b = b?;
        match &b.kind {
            b"moof" => {
                for t in boxes(b.whole()?, b.inner()) {
                    let t = t?;
                    if &t.kind != b"traf" {
                        continue;
                    }
                    if let Some((s, d)) = parse_traf(t.whole()?, t.inner(), track)? {
                        fragments += 1;
                        start = start.or(s);
                        duration = duration
                            .checked_add(d)
                            .ok_or(Fmp4Error::Overflow { track_id: track.id })?;
                    }
                }
            }
            b"sidx" if sidx.is_none() => sidx = sidx_duration(&b, track)?,
            _ => {}
        }
    }
    if fragments == 0 {
        return Err(Fmp4Error::NoFragments { track_id: track.id });
    }
    if duration == 0 {
        duration = sidx.unwrap_or(0);
    }
    Ok(Fmp4Timing {
        track_id: track.id,
        kind: track.kind,
        timescale: track.timescale,
        start,
        duration,
        fragments,
    })
}

/// Timing of `media` with the init segment `init`, or, without one, with
/// the `moov` inside `media` itself (single-file CMAF).
pub fn timing(init: Option<&[u8]>, media: &[u8]) -> Result<Fmp4Timing, Fmp4Error> {
    let init = parse_init(init.unwrap_or(media))?;
    scan(&init, media)
}

/// Whether `buf` starts with an ISO BMFF box this reader knows as the first
/// box of an init or media segment.
pub fn looks_like_mp4(buf: &[u8]) -> bool {
    matches!(
        buf.get(4..8),
        Some(
            b"ftyp"
                | b"styp"
                | b"moov"
                | b"moof"
                | b"sidx"
                | b"emsg"
                | b"prft"
                | b"free"
                | b"skip"
                | b"uuid"
        )
    ) && be_u32(buf, 0).is_some_and(|size| size == 0 || size == 1 || size >= 8)
}

/// Top-level box types whose bodies [`scan`] and [`parse_init`] read; every
/// other box (`mdat` above all) can be left out of the bytes given to them.
pub const NEEDED_BOXES: [&FourCc; 3] = [b"moov", b"moof", b"sidx"];

#[cfg(test)]
mod tests {
    use super::*;

    /// A box of `kind` around `body`.
    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    /// The same box with a 64-bit size.
    fn bx64(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = 1u32.to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(&((body.len() + 16) as u64).to_be_bytes());
        b.extend_from_slice(body);
        b
    }

    /// A full box: version, flags, then `body`.
    fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut b = (u32::from(version) << 24 | flags).to_be_bytes().to_vec();
        b.extend_from_slice(body);
        bx(kind, &b)
    }

    fn u32s(values: &[u32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    /// A `trak` of track `id` with handler `handler` and `timescale`.
    fn trak(id: u32, handler: &[u8; 4], timescale: u32) -> Vec<u8> {
        let tkhd = full(b"tkhd", 0, 3, &u32s(&[0, 0, id, 0, 0]));
        let mdhd = full(b"mdhd", 0, 0, &u32s(&[0, 0, timescale, 0, 0]));
        let mut hdlr_body = u32s(&[0]);
        hdlr_body.extend_from_slice(handler);
        hdlr_body.extend(u32s(&[0, 0, 0]));
        let hdlr = full(b"hdlr", 0, 0, &hdlr_body);
        let minf = bx(b"minf", &bx(b"stbl", &[]));
        bx(
            b"trak",
            &[tkhd, bx(b"mdia", &[mdhd, hdlr, minf].concat())].concat(),
        )
    }

    fn trex(id: u32, duration: u32) -> Vec<u8> {
        full(b"trex", 0, 0, &u32s(&[id, 1, duration, 0, 0]))
    }

    /// `ftyp` + `moov` with video track 1 (12 800 Hz) and audio track 2
    /// (48 kHz, trex default 1024).
    fn init_av() -> Vec<u8> {
        let moov = [
            full(b"mvhd", 0, 0, &[0; 96]),
            trak(2, b"soun", 48_000),
            trak(1, b"vide", 12_800),
            bx(b"mvex", &[trex(1, 0), trex(2, 1024)].concat()),
        ]
        .concat();
        [bx(b"ftyp", b"iso6\0\0\0\0iso6"), bx(b"moov", &moov)].concat()
    }

    /// A `traf` for `id`: tfhd (with `tfhd_flags` and a default duration
    /// when 0x08 is set), tfdt (64-bit when `start` needs it), one trun
    /// with per-sample durations `durations`, or `count` samples without.
    fn traf(
        id: u32,
        tfhd_flags: u32,
        default: u32,
        start: u64,
        durations: &[u32],
        count: u32,
    ) -> Vec<u8> {
        let mut tfhd = u32s(&[id]);
        if tfhd_flags & 0x01 != 0 {
            tfhd.extend(0u64.to_be_bytes());
        }
        if tfhd_flags & 0x02 != 0 {
            tfhd.extend(u32s(&[1]));
        }
        if tfhd_flags & 0x08 != 0 {
            tfhd.extend(u32s(&[default]));
        }
        let tfdt = match u32::try_from(start) {
            Ok(s) => full(b"tfdt", 0, 0, &u32s(&[s])),
            Err(_) => full(b"tfdt", 1, 0, &start.to_be_bytes()),
        };
        let trun = if durations.is_empty() {
            // data_offset and sizes, no durations.
            let mut body = u32s(&[count, 0]);
            body.extend(u32s(&vec![100; count as usize]));
            full(b"trun", 0, 0x201, &body)
        } else {
            // first_sample_flags, then duration, size and cts per sample.
            let mut body = u32s(&[durations.len() as u32, 0x0200_0000]);
            for &d in durations {
                body.extend(u32s(&[d, 100, 0]));
            }
            full(b"trun", 1, 0xb04, &body)
        };
        bx(
            b"traf",
            &[full(b"tfhd", 0, tfhd_flags, &tfhd), tfdt, trun].concat(),
        )
    }

    fn moof(trafs: &[Vec<u8>]) -> Vec<u8> {
        bx(
            b"moof",
            &[full(b"mfhd", 0, 0, &u32s(&[1])), trafs.concat()].concat(),
        )
    }

    #[test]
    fn init_tracks_and_reference() {
        let init = parse_init(&init_av()).unwrap();
        assert_eq!(init.tracks.len(), 2);
        let r = init.reference().unwrap();
        assert_eq!((r.id, r.kind, r.timescale), (1, TrackKind::Video, 12_800));
        assert_eq!(init.tracks[0].default_sample_duration, 1024);
        // Audio only: the audio track; subtitles only: none.
        let audio = bx(
            b"moov",
            &[trak(7, b"subt", 1000), trak(3, b"soun", 44_100)].concat(),
        );
        assert_eq!(parse_init(&audio).unwrap().reference().unwrap().id, 3);
        let subs = bx(b"moov", &trak(7, b"subt", 1000));
        assert_eq!(parse_init(&subs), Err(Fmp4Error::NoTrack));
    }

    #[test]
    fn durations_from_trun_tfhd_or_trex_over_several_moofs() {
        let init = parse_init(&init_av()).unwrap();
        let seg = [
            bx(b"styp", b"msdh\0\0\0\0msdh"),
            full(b"sidx", 0, 0, &[0; 24]),
            full(b"prft", 0, 0, &[0; 12]),
            full(b"emsg", 0, 0, b"urn:x\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
            // Audio first (trex default), then video with per-sample durations.
            moof(&[
                traf(2, 0, 0, 96_256, &[], 10),
                traf(1, 0, 0, 25_600, &[512; 25], 0),
            ]),
            bx(b"mdat", &[0; 300]),
            bx(b"free", &[]),
            // Video with the tfhd default (after base_data_offset and sample
            // description index), twice in one moof.
            moof(&[
                traf(1, 0x0b, 512, 38_400, &[], 10),
                traf(1, 0x08, 256, 43_520, &[], 2),
            ]),
            bx64(b"mdat", &[0; 100]),
        ]
        .concat();
        let t = scan(&init, &seg).unwrap();
        assert_eq!(
            (t.track_id, t.timescale, t.start, t.duration, t.fragments),
            (1, 12_800, Some(25_600), 25 * 512 + 10 * 512 + 2 * 256, 3)
        );
        // The audio track alone: 10 samples of the trex default.
        let audio = Init {
            tracks: vec![init.tracks[0].clone()],
        };
        let t = scan(&audio, &seg).unwrap();
        assert_eq!(
            (t.start, t.duration, t.fragments),
            (Some(96_256), 10 * 1024, 1)
        );
    }

    #[test]
    fn single_file_64_bit_sizes_and_box_to_the_end() {
        let file = [
            init_av(),
            bx64(b"moof", &moof(&[traf(1, 0, 0, 1 << 40, &[512; 4], 0)])[8..]),
            // Size 0: to the end of the file.
            [0, 0, 0, 0, b'm', b'd', b'a', b't', 1, 2, 3].to_vec(),
        ]
        .concat();
        let t = timing(None, &file).unwrap();
        assert_eq!((t.start, t.duration), (Some(1 << 40), 2048));
        // With a separate init, the moov in the file is skipped.
        assert_eq!(timing(Some(&init_av()), &file).unwrap(), t);
    }

    #[test]
    fn sidx_when_the_fragments_give_no_durations() {
        let init = parse_init(&init_av()).unwrap();
        // sidx v0 for track 1 at 90 kHz: two subsegments of 1 s.
        let mut sidx = u32s(&[1, 90_000, 0, 0, 2]);
        for _ in 0..2 {
            sidx.extend(u32s(&[1000, 90_000, 0x9000_0000]));
        }
        let seg = [
            full(b"sidx", 0, 0, &sidx),
            moof(&[traf(1, 0, 0, 0, &[], 50)]),
        ]
        .concat();
        let t = scan(&init, &seg).unwrap();
        assert_eq!(t.duration, 2 * 12_800);
    }

    #[test]
    fn errors_name_the_box_and_problem() {
        let init = parse_init(&init_av()).unwrap();
        assert_eq!(parse_init(&[]), Err(Fmp4Error::Empty));
        assert_eq!(scan(&init, &[]), Err(Fmp4Error::Empty));
        assert_eq!(parse_init(&bx(b"ftyp", b"iso6")), Err(Fmp4Error::NoMoov));
        assert_eq!(
            scan(&init, &moof(&[traf(9, 0, 0, 0, &[1], 0)])),
            Err(Fmp4Error::NoFragments { track_id: 1 })
        );
        let cut = moof(&[traf(1, 0, 0, 0, &[512; 4], 0)]);
        let e = scan(&init, &cut[..cut.len() - 5]).unwrap_err().to_string();
        assert_eq!(e, "'moof' box at byte 0: cut short");
        // A trun claiming 2^32 − 1 samples, with 4 records.
        let mut lying = moof(&[traf(1, 0, 0, 0, &[512; 4], 0)]);
        let at = lying.windows(4).position(|w| w == b"trun").unwrap() + 8;
        lying[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let e = scan(&init, &lying).unwrap_err().to_string();
        assert!(
            e.contains("'trun' box at byte") && e.contains("sample_count"),
            "{e}"
        );
        let e = parse_init(&[0, 0, 0, 4, b'm', b'o', b'o', b'v'])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "'moov' box at byte 0: box size smaller than its header");
        assert!(!looks_like_mp4(b"\x47\x40\x00\x10"));
        assert!(looks_like_mp4(&init_av()) && looks_like_mp4(&moof(&[])));
    }

    /// The fixtures' fMP4 files: (init, media) pairs.
    fn fixture_pairs() -> Vec<(Vec<u8>, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let read =
            |p: &str| std::fs::read(dir.join(p)).expect("fixture (made by fixtures/make.sh)");
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = [
            ("fmp4_avc/init.mp4", "fmp4_avc/seg_001.m4s"),
            ("fmp4_hevc_ac3/init.mp4", "fmp4_hevc_ac3/seg_002.m4s"),
            ("cmaf_shaka/audio/init.mp4", "cmaf_shaka/audio/seg_001.m4s"),
            ("cmaf_shaka/video/init.mp4", "cmaf_shaka/video/seg_003.m4s"),
        ]
        .iter()
        .map(|(i, m)| (read(i), read(m)))
        .collect();
        pairs.push((Vec::new(), read("fmp4_single/media.mp4")));
        pairs
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let _ = parse_init(&bytes);
            let _ = timing(None, &bytes);
            let _ = looks_like_mp4(&bytes);
            if let Ok(init) = parse_init(&init_av()) {
                let _ = scan(&init, &bytes);
            }
        }

        #[test]
        fn mutated_and_truncated_fixtures_never_panic(
            which in 0usize..5,
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 0..12),
            cut in proptest::num::usize::ANY,
            cut_init in proptest::bool::ANY,
        ) {
            let (mut init, mut media) = fixture_pairs().swap_remove(which);
            for (pos, value) in edits {
                // Most edits in the first few hundred bytes, where the boxes are.
                let target = if pos % 2 == 0 { &mut media } else { &mut init };
                if !target.is_empty() {
                    let at = (pos / 2) % target.len().min(if pos % 3 == 0 { usize::MAX } else { 600 });
                    target[at] = value;
                }
            }
            let target = if cut_init { &mut init } else { &mut media };
            if !target.is_empty() {
                target.truncate(cut % (target.len() + 1));
            }
            let init = (!init.is_empty()).then_some(&init[..]);
            if let Ok(t) = timing(init, &media) {
                proptest::prop_assert!(t.timescale > 0 && t.fragments > 0);
            }
        }
    }

    #[test]
    fn fixtures_unmutated() {
        for (init, media) in fixture_pairs() {
            let init = (!init.is_empty()).then_some(&init[..]);
            let t = timing(init, &media).unwrap();
            assert!(t.duration > 0 && t.start.is_some());
        }
    }
}
