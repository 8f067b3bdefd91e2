//! MPEG-TS segments: lead frames from PES headers, parts as packet runs
//! with the segment's PAT and PMT in front.
//!
//! Two passes over the packets: the first stops at the first complete PMT
//! (the lead PID is its first video stream, else its first audio stream),
//! the second reads every PES start of the lead PID (its DTS, else its PTS)
//! and every complete PAT and PMT. A video frame is independent when its
//! first packet has the random_access_indicator set, or when its first
//! picture is an IDR (H.264 NAL type 5) or IRAP (H.265 types 16–23) picture:
//! not every muxer sets the indicator. Every PES of an audio lead is
//! independent. A part's bytes start at its first frame's PES, moved back
//! over PAT, PMT and other table packets right before it, so a muxer's own
//! tables before a keyframe stay with that keyframe.

use mpeg2ts_reader::StreamType;
use mpeg2ts_reader::packet::Packet;
use mpeg2ts_reader::psi::pat::{PatSection, ProgramDescriptor};
use mpeg2ts_reader::psi::pmt::PmtSection;

use super::{Cut, Frame, LlError, Part, SegmentFrames};
use crate::probe::ts::{
    NULL_PID, PACKET, SectionReader, StreamKind, classify_stream, next_packet, pes_timestamps,
    section_data,
};
use crate::ticks::{PTS_WRAP, Ticks, pts_diff};

/// How far into a frame's data the first picture's NAL header is looked for.
const MAX_NAL_SCAN: usize = 64 * 1024;

/// What cutting an MPEG-TS segment needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TsCut {
    /// Byte offset where a part starting at each frame begins (0 for the first).
    starts: Vec<u32>,
    /// Every complete PAT and PMT of the segment, in order.
    tables: Vec<Table>,
    /// The segment's length in bytes.
    len: u32,
}

/// One PAT or PMT section: the offsets of its packets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    pat: bool,
    packets: Vec<u32>,
}

/// The lead stream's codec, for the picture-type check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    H264,
    H265,
    OtherVideo,
    Audio,
}

/// The PMT PID and the lead PID with its codec.
fn find_lead(segment: &[u8]) -> Result<(u16, u16, Codec), LlError> {
    let (mut pat, mut pmt) = (SectionReader::default(), SectionReader::default());
    let mut pmt_pid = None;
    let mut pos = 0;
    while let Some(at) = next_packet(segment, pos) {
        pos = at + PACKET;
        let Some(pk) = Packet::try_new(&segment[at..at + PACKET]) else {
            continue;
        };
        let (Some(payload), false) = (pk.payload(), pk.transport_error_indicator()) else {
            continue;
        };
        let pid = u16::from(pk.pid());
        let (pusi, cc) = (
            pk.payload_unit_start_indicator(),
            pk.continuity_counter().count(),
        );
        if pid == 0 {
            if let Some(data) = pat.push(pusi, cc, payload).and_then(|s| section_data(s, 0)) {
                let first = PatSection::new(data).programs().find_map(|p| match p {
                    ProgramDescriptor::Program { pid, .. } => Some(u16::from(pid)),
                    ProgramDescriptor::Network { .. } => None,
                });
                if first.is_some() && first != pmt_pid {
                    pmt_pid = first;
                    pmt = SectionReader::default();
                }
            }
        } else if Some(pid) == pmt_pid
            && let Some(data) = pmt.push(pusi, cc, payload).and_then(|s| section_data(s, 2))
            && let Ok(section) = PmtSection::from_bytes(data)
        {
            let streams: Vec<(u16, StreamKind, StreamType)> = section
                .streams()
                .filter_map(|s| {
                    classify_stream(&s).map(|k| (u16::from(s.elementary_pid()), k, s.stream_type()))
                })
                .collect();
            let lead = streams
                .iter()
                .find(|s| s.1 == StreamKind::Video)
                .or_else(|| streams.first())
                .ok_or(LlError::NoLeadStream)?;
            let codec = match (lead.1, lead.2) {
                (StreamKind::Video, StreamType::H264) => Codec::H264,
                (StreamKind::Video, StreamType::H265) => Codec::H265,
                (StreamKind::Video, _) => Codec::OtherVideo,
                _ => Codec::Audio,
            };
            return Ok((pid, lead.0, codec));
        }
    }
    if pos == 0 {
        return Err(LlError::Malformed("not MPEG-TS: no packet sync".into()));
    }
    Err(LlError::NoPsi)
}

/// Whether the first picture of `es` (Annex B) is independent: `None` until
/// a picture's NAL header is seen.
fn first_picture_irap(es: &[u8], from: usize, codec: Codec) -> Option<bool> {
    let mut i = from;
    while i + 3 < es.len() {
        if es[i] == 0 && es[i + 1] == 0 && es[i + 2] == 1 {
            let header = es[i + 3];
            match codec {
                Codec::H264 => {
                    let t = header & 0x1f;
                    if (1..=5).contains(&t) {
                        return Some(t == 5);
                    }
                }
                Codec::H265 => {
                    let t = (header >> 1) & 0x3f;
                    if t <= 31 {
                        return Some((16..=23).contains(&t));
                    }
                }
                Codec::OtherVideo | Codec::Audio => return None,
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    None
}

/// The NAL scan of the latest lead frame, while its first picture is unseen.
struct NalScan {
    frame: usize,
    es: Vec<u8>,
}

impl NalScan {
    /// Adds bytes; `Some(irap)` once decided (then the scan ends).
    fn push(&mut self, bytes: &[u8], codec: Codec) -> Option<bool> {
        let from = self.es.len().saturating_sub(3);
        self.es.extend_from_slice(bytes);
        match first_picture_irap(&self.es, from, codec) {
            Some(irap) => Some(irap),
            None if self.es.len() > MAX_NAL_SCAN => Some(false),
            None => None,
        }
    }
}

/// Reads the lead frames of an MPEG-TS segment and where each would start a part.
pub fn ts_frames(segment: &[u8]) -> Result<SegmentFrames, LlError> {
    if segment.is_empty() {
        return Err(LlError::Malformed("empty segment".into()));
    }
    let len = u32::try_from(segment.len())
        .map_err(|_| LlError::Malformed("segment larger than 4 GiB".into()))?;
    let (pmt_pid, lead, codec) = find_lead(segment)?;
    let mut frames: Vec<Frame> = Vec::new();
    let mut starts: Vec<u32> = Vec::new();
    let mut tables: Vec<Table> = Vec::new();
    // Table packets being gathered (PAT, PMT) and their readers.
    let mut pending: [(SectionReader, Vec<u32>); 2] = Default::default();
    // Start of the run of table packets right before the current packet.
    let mut si_run: Option<u32> = None;
    let mut last_end = 0usize;
    let (mut first_dts, mut last_dts) = (0u64, 0u64);
    let mut scan: Option<NalScan> = None;
    let mut pos = 0;
    while let Some(at) = next_packet(segment, pos) {
        pos = at + PACKET;
        if at != last_end {
            si_run = None; // Garbage in between: not a run.
        }
        last_end = pos;
        let offset = at as u32;
        let Some(pk) = Packet::try_new(&segment[at..pos]) else {
            si_run = None;
            continue;
        };
        let pid = u16::from(pk.pid());
        let payload = pk.payload().filter(|_| !pk.transport_error_indicator());
        let (pusi, cc) = (
            pk.payload_unit_start_indicator(),
            pk.continuity_counter().count(),
        );
        if pid == 0 || pid == pmt_pid {
            let slot = usize::from(pid != 0);
            let (reader, packets) = &mut pending[slot];
            if pusi {
                packets.clear();
            }
            packets.push(offset);
            if let Some(payload) = payload
                && let Some(section) = reader.push(pusi, cc, payload)
                && section_data(section, if pid == 0 { 0 } else { 2 }).is_some()
            {
                tables.push(Table {
                    pat: pid == 0,
                    packets: std::mem::take(packets),
                });
            }
        }
        if pid < 0x20 || pid == pmt_pid {
            si_run.get_or_insert(offset);
            continue;
        }
        let run_start = si_run.take();
        if pid != lead || pid == NULL_PID {
            continue;
        }
        let Some(payload) = payload else {
            continue;
        };
        if !pusi {
            if let Some(s) = &mut scan
                && let Some(irap) = s.push(payload, codec)
            {
                frames[s.frame].independent |= irap;
                scan = None;
            }
            continue;
        }
        let Some(pes) = pes_timestamps(payload) else {
            continue;
        };
        let Some(dts) = pes.dts.or(pes.pts) else {
            continue; // No timestamp: part of the frame before.
        };
        if !frames.is_empty() {
            let step = pts_diff(dts, last_dts);
            if step == 0 {
                continue; // Same decode time: the same frame.
            }
            if step > PTS_WRAP / 2 {
                return Err(LlError::Backwards {
                    frame: frames.len(),
                });
            }
        } else {
            first_dts = dts;
        }
        last_dts = dts;
        let rai = pk
            .adaptation_field()
            .is_some_and(|af| af.random_access_indicator());
        let independent = codec == Codec::Audio || rai;
        starts.push(if frames.is_empty() {
            0
        } else {
            run_start.unwrap_or(offset)
        });
        frames.push(Frame {
            at: Ticks(pts_diff(dts, first_dts)),
            independent,
        });
        scan = None;
        if !independent && matches!(codec, Codec::H264 | Codec::H265) {
            let mut s = NalScan {
                frame: frames.len() - 1,
                es: Vec::new(),
            };
            match s.push(pes.es, codec) {
                Some(irap) => frames[s.frame].independent |= irap,
                None => scan = Some(s),
            }
        }
    }
    if frames.is_empty() {
        return Err(LlError::NoLeadStream);
    }
    if !tables.iter().any(|t| t.pat) || !tables.iter().any(|t| !t.pat) {
        return Err(LlError::NoPsi);
    }
    Ok(SegmentFrames {
        frames,
        cut: Cut::Ts(TsCut {
            starts,
            tables,
            len,
        }),
    })
}

impl TsCut {
    /// The latest complete table of a kind before `offset`, else the first.
    fn table_before(&self, pat: bool, offset: u32) -> Option<&Table> {
        let mut kind = self.tables.iter().filter(|t| t.pat == pat);
        let first = kind.clone().next();
        kind.rfind(|t| t.packets.last().is_some_and(|&p| p < offset))
            .or(first)
    }

    /// Whether a PAT then a PMT start at `offset`.
    fn tables_at(&self, offset: u32) -> bool {
        self.tables
            .iter()
            .find(|t| t.pat && t.packets.first() == Some(&offset))
            .and_then(|t| t.packets.last())
            .is_some_and(|&last| {
                self.tables
                    .iter()
                    .any(|t| !t.pat && t.packets.first() == Some(&(last + PACKET as u32)))
            })
    }
}

/// Checks that `part` is a part of `frames` and returns its frame range.
pub(super) fn part_range(frames: &SegmentFrames, part: &Part) -> Result<(usize, usize), LlError> {
    let (first, end) = (part.first as usize, part.end as usize);
    if first >= end || end > frames.frames.len() {
        return Err(LlError::Mismatch(format!(
            "frames {first}..{end} of a segment of {}",
            frames.frames.len()
        )));
    }
    Ok((first, end))
}

/// The bytes of `part` as a standalone MPEG-TS: the segment's PAT and PMT
/// (unless the part starts with them), then its packets. `segment` must be
/// the bytes [`ts_frames`] read.
pub fn ts_part(segment: &[u8], frames: &SegmentFrames, part: &Part) -> Result<Vec<u8>, LlError> {
    let Cut::Ts(cut) = &frames.cut else {
        return Err(LlError::Mismatch(
            "not the frames of an MPEG-TS segment".into(),
        ));
    };
    if segment.len() != cut.len as usize {
        return Err(LlError::Mismatch(format!(
            "the segment has {} bytes, its frames were read from {}",
            segment.len(),
            cut.len
        )));
    }
    let (first, end) = part_range(frames, part)?;
    let from = cut.starts[first];
    let to = cut.starts.get(end).copied().unwrap_or(cut.len);
    let mut tables: Vec<&Table> = Vec::new();
    if from > 0 && !cut.tables_at(from) {
        tables.extend(cut.table_before(true, from));
        tables.extend(cut.table_before(false, from));
    }
    let head: usize = tables.iter().map(|t| t.packets.len() * PACKET).sum();
    let mut out = Vec::with_capacity(head + (to - from) as usize + 8 * PACKET);
    for offset in tables.iter().flat_map(|t| &t.packets) {
        let at = *offset as usize;
        out.extend_from_slice(&segment[at..at + PACKET]);
    }
    whole_units(segment, from as usize, to as usize, &mut out);
    Ok(out)
}

/// Appends the packets of `segment[from..to]` to `out` so that every PES
/// (and section) in the part is whole: every packet goes with the part
/// holding the start of its PID's unit (payload_unit_start_indicator), so a
/// packet continuing a unit begun before `from` stays with an earlier part,
/// and the packets after `to` that finish a unit begun before `to` come
/// along. Each PID keeps its
/// packet order, so the parts read in a row carry every packet once, in
/// order, with continuity counters running on. An audio PES cut in two
/// would leave a truncated frame at the end of one part and headless data
/// at the start of the next, which some transmuxers (Shaka Player's) refuse.
fn whole_units(segment: &[u8], from: usize, to: usize, out: &mut Vec<u8>) {
    let pid = |p: &[u8]| (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let starts_unit = |p: &[u8]| p[1] & 0x40 != 0;
    // PIDs whose current unit began in this part (at the segment's start,
    // every PID: nothing came before).
    let mut open: Vec<u16> = Vec::new();
    let mut seen: Vec<u16> = Vec::new();
    let mut at = from;
    while at + PACKET <= to {
        let packet = &segment[at..at + PACKET];
        at += PACKET;
        let id = pid(packet);
        if id == NULL_PID || packet[0] != 0x47 {
            out.extend_from_slice(packet);
            continue;
        }
        if !seen.contains(&id) {
            seen.push(id);
            if from == 0 {
                open.push(id);
            }
        }
        if starts_unit(packet) && !open.contains(&id) {
            open.push(id);
        }
        if open.contains(&id) {
            out.extend_from_slice(packet);
        }
    }
    // The rest of the units still open at the cut.
    while !open.is_empty() && at + PACKET <= segment.len() {
        let packet = &segment[at..at + PACKET];
        at += PACKET;
        let id = pid(packet);
        if packet[0] != 0x47 || !open.contains(&id) {
            continue;
        }
        if starts_unit(packet) {
            open.retain(|&o| o != id);
        } else {
            out.extend_from_slice(packet);
        }
    }
}

#[cfg(test)]
#[path = "tests/ts.rs"]
mod tests;
