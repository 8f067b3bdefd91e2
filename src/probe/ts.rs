//! Native MPEG-TS timing: one pass over the bytes of a segment, no IO.
//!
//! Reads PAT and PMT (their sections reassembled across TS packets) to find
//! the reference elementary stream (first video PID, else first audio PID),
//! then the PTS/DTS of its PES headers. AC-3 and E-AC-3 count as audio in
//! both their ATSC (stream types 0x81, 0x87) and DVB (private data with an
//! AC-3 or E-AC-3 descriptor) forms. Packet and PES parsing use
//! `mpeg2ts-reader`; sync loss, partial packets and garbage are handled here
//! so that no input can panic.

use mpeg2ts_reader::StreamType;
use mpeg2ts_reader::descriptor::{Descriptor, DescriptorError};
use mpeg2ts_reader::packet::Packet;
use mpeg2ts_reader::pes::{PesContents, PesHeader, PtsDts};
use mpeg2ts_reader::psi::pat::{PatSection, ProgramDescriptor};
use mpeg2ts_reader::psi::pmt::{PmtSection, StreamInfo};

use super::audio::{ac3_samples, adts_samples, mpeg_audio_samples};
use crate::ticks::{HZ, PTS_WRAP, pts_diff};

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const NULL_PID: u16 = 0x1fff;

/// What kind of elementary stream the timing was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Any video codec; frame duration from the DTS step.
    Video,
    /// AAC in ADTS; frame = 1024 samples.
    Aac,
    /// MPEG-1/2 audio (MP2, MP3); frame size from each frame header.
    MpegAudio,
    /// AC-3 or E-AC-3 (ATSC stream types 0x81/0x87, or DVB private data with
    /// an AC-3/E-AC-3 descriptor); samples from each syncframe header.
    Ac3,
    /// Other audio (LATM, or known only from its PES stream id); the last PES
    /// lasts as long as the shortest PES step.
    OtherAudio,
}

/// How much of a segment to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Stop as soon as the reference stream's first PTS is known.
    Start,
    /// Read everything, to also know where the last frame ends.
    Full,
}

/// Timing of one segment, on the 33-bit PTS clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsTiming {
    /// Kind of the reference stream.
    pub kind: StreamKind,
    /// PID of the reference stream.
    pub pid: u16,
    /// PTS of the first PES of the reference stream in the file (for a
    /// [`Depth::Full`] scan: the first one that is not an outlier).
    pub start_pts: u64,
    /// `max PTS − start + one frame` in ticks; `None` for a [`Depth::Start`] scan
    /// or when the frame duration cannot be told (a single frame). Outliers
    /// do not count.
    pub span_ticks: Option<u64>,
    /// PES timestamps of the reference stream left out of the span as
    /// outliers: lone values far from all the others (see [`main_cluster`]).
    pub outliers: usize,
    /// Bytes skipped while looking for packet sync (0 for a clean file).
    pub skipped_bytes: usize,
}

/// Why a buffer gave no timing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsError {
    /// Zero bytes.
    #[error("empty file")]
    Empty,
    /// No three sync bytes 188 bytes apart anywhere.
    #[error("not MPEG-TS: no packet sync byte (0x47) found")]
    NoSync,
    /// Packets, but no audio or video PES with a PTS.
    #[error("no audio or video PES packet with a PTS in {packets} TS packets")]
    NoTimestamps {
        /// Number of TS packets read.
        packets: usize,
    },
}

/// Per-PID PES bookkeeping during a scan.
#[derive(Debug)]
struct PidState {
    pid: u16,
    /// From the PES stream_id, used when there is no PMT.
    sniffed: Option<StreamKind>,
    first_pts: Option<u64>,
    /// Signed PTS offset from `first_pts` of every PES, in order.
    offsets: Vec<i64>,
    last_dts: Option<u64>,
    min_step: Option<u64>,
    /// Whether the stream is audio (from the PMT or its stream id): then
    /// `last_payload` is kept.
    audio: bool,
    /// Payload of the latest PES (audio only), to count its frames.
    last_payload: Vec<u8>,
}

impl PidState {
    fn new(pid: u16) -> Self {
        PidState {
            pid,
            sniffed: None,
            first_pts: None,
            offsets: Vec::new(),
            last_dts: None,
            min_step: None,
            audio: false,
            last_payload: Vec::new(),
        }
    }
}

/// Signed difference on the 33-bit clock: `a − b` in (−2^32, 2^32].
fn signed_diff(a: u64, b: u64) -> i64 {
    let d = pts_diff(a, b);
    if d > PTS_WRAP / 2 {
        d as i64 - PTS_WRAP as i64
    } else {
        d as i64
    }
}

/// Offset of the next packet at or after `pos`, resynchronising on sync loss:
/// a new start needs sync bytes at `i`, `i+188` and `i+376` (where in range).
fn next_packet(buf: &[u8], pos: usize) -> Option<usize> {
    if pos + PACKET > buf.len() {
        return None;
    }
    if buf[pos] == SYNC {
        return Some(pos);
    }
    (pos + 1..=buf.len() - PACKET).find(|&i| {
        buf[i] == SYNC
            && buf.get(i + PACKET).is_none_or(|&b| b == SYNC)
            && buf.get(i + 2 * PACKET).is_none_or(|&b| b == SYNC)
    })
}

/// Largest PSI section: a 3-byte header and up to 1021 bytes (ISO/IEC 13818-1 2.4.4).
const MAX_SECTION_BYTES: usize = 1024;

/// Reassembles the first section of a PSI table from the TS packets of its
/// PID: a section starts after the pointer field of a packet with
/// payload_unit_start_indicator set and may continue over the payloads of
/// the PID's next packets (a PMT listing many streams, or big descriptors).
/// A gap in the continuity counter drops the partial section.
#[derive(Debug, Default)]
struct SectionReader {
    /// Bytes of the section being gathered (from its table_id on).
    buf: Vec<u8>,
    /// Continuity counter of the last packet appended, while gathering.
    cc: Option<u8>,
}

impl SectionReader {
    /// Feeds one packet's payload; returns the complete section when this
    /// payload completes one.
    fn push(&mut self, pusi: bool, cc: u8, payload: &[u8]) -> Option<&[u8]> {
        if pusi {
            let pointer = usize::from(*payload.first()?);
            self.buf.clear();
            self.buf.extend_from_slice(payload.get(1 + pointer..)?);
        } else {
            let previous = self.cc?;
            if cc != (previous + 1) & 0x0f {
                self.cc = None;
                return None;
            }
            self.buf.extend_from_slice(payload);
        }
        self.cc = Some(cc);
        // Stuffing (0xff) instead of a table_id: no section here.
        if self.buf.first() == Some(&0xff) {
            self.cc = None;
            return None;
        }
        let total = match self.buf.get(1..3) {
            Some(h) => 3 + ((usize::from(h[0] & 0x0f) << 8) | usize::from(h[1])),
            None => return None,
        };
        if total > MAX_SECTION_BYTES {
            self.cc = None;
            return None;
        }
        if self.buf.len() < total {
            if self.buf.len() > MAX_SECTION_BYTES {
                self.cc = None;
            }
            return None;
        }
        self.cc = None;
        self.buf.get(..total)
    }
}

/// The data of a complete long-form PSI section (after the 8-byte header,
/// without the CRC), if its table id matches.
fn section_data(section: &[u8], table_id: u8) -> Option<&[u8]> {
    if *section.first()? != table_id {
        return None;
    }
    // 5 bytes of syntax header after the 3-byte common header; 4 bytes of CRC at the end.
    section.get(8..section.len().checked_sub(4)?)
}

/// A descriptor's tag and payload, whatever its kind.
struct RawDescriptor<'a> {
    tag: u8,
    payload: &'a [u8],
}

impl<'a> Descriptor<'a> for RawDescriptor<'a> {
    fn from_bytes(buf: &'a [u8]) -> Result<Self, DescriptorError> {
        match buf {
            [tag, len, rest @ ..] if rest.len() >= usize::from(*len) => Ok(RawDescriptor {
                tag: *tag,
                payload: &rest[..usize::from(*len)],
            }),
            _ => Err(DescriptorError::BufferTooShort { buflen: buf.len() }),
        }
    }
}

/// DVB AC-3 descriptor (ETSI EN 300 468 annex D).
const AC3_DESCRIPTOR: u8 = 0x6a;
/// DVB enhanced AC-3 descriptor.
const EAC3_DESCRIPTOR: u8 = 0x7a;
/// MPEG registration descriptor (format_identifier "AC-3" or "EAC3").
const REGISTRATION_DESCRIPTOR: u8 = 0x05;

/// The kind of a PMT entry: by stream type, and for PES private data
/// (0x06, the DVB way to carry AC-3) by its descriptors.
fn classify_stream(stream: &StreamInfo<'_>) -> Option<StreamKind> {
    if stream.stream_type() != StreamType::H222_0_PES_PRIVATE_DATA {
        return classify(stream.stream_type());
    }
    let dolby = stream
        .descriptors::<RawDescriptor<'_>>()
        .map_while(Result::ok)
        .any(|d| match d.tag {
            AC3_DESCRIPTOR | EAC3_DESCRIPTOR => true,
            REGISTRATION_DESCRIPTOR => matches!(d.payload.get(..4), Some(b"AC-3" | b"EAC3")),
            _ => false,
        });
    dolby.then_some(StreamKind::Ac3)
}

fn classify(stream_type: StreamType) -> Option<StreamKind> {
    match stream_type {
        StreamType::ISO_11172_VIDEO
        | StreamType::H262
        | StreamType::ISO_14496_2_VISUAL
        | StreamType::H264
        | StreamType::H265 => Some(StreamKind::Video),
        StreamType::ADTS => Some(StreamKind::Aac),
        StreamType::ISO_11172_AUDIO | StreamType::ISO_138183_AUDIO => Some(StreamKind::MpegAudio),
        StreamType::ATSC_DOLBY_DIGITAL_AUDIO | StreamType(0x87) => Some(StreamKind::Ac3), // 0x87: E-AC-3
        StreamType::LATM => Some(StreamKind::OtherAudio),
        _ => None,
    }
}

/// The kind of a PES stream from its stream id (and, for private_stream_1,
/// the AC-3 syncword at the start of its data), for streams without a PMT.
fn sniff_stream_id(id: u8, es: &[u8]) -> Option<StreamKind> {
    match id {
        0xe0..=0xef => Some(StreamKind::Video),
        0xc0..=0xdf => Some(StreamKind::OtherAudio),
        0xbd if es.starts_with(&[0x0b, 0x77]) => Some(StreamKind::Ac3),
        _ => None,
    }
}

/// What the header of a PES packet says.
struct PesStart<'a> {
    stream_id: u8,
    pts: Option<u64>,
    dts: Option<u64>,
    /// The elementary stream bytes after the header, in this TS packet.
    es: &'a [u8],
}

/// PTS and DTS of a PES header at the start of `payload`, if any.
fn pes_timestamps(payload: &[u8]) -> Option<PesStart<'_>> {
    if payload.len() < 9 || payload[..3] != [0, 0, 1] {
        return None;
    }
    let header = PesHeader::from_bytes(payload)?;
    let stream_id = payload[3];
    match header.contents() {
        PesContents::Parsed(Some(parsed)) => {
            let (pts, dts) = match parsed.pts_dts() {
                Ok(PtsDts::PtsOnly(Ok(pts))) => (Some(pts.value()), None),
                Ok(PtsDts::Both {
                    pts: Ok(pts),
                    dts: Ok(dts),
                }) => (Some(pts.value()), Some(dts.value())),
                _ => (None, None),
            };
            Some(PesStart {
                stream_id,
                pts,
                dts,
                es: parsed.payload(),
            })
        }
        _ => None,
    }
}

/// Reads the timing of one MPEG-TS segment.
pub fn scan(buf: &[u8], depth: Depth) -> Result<TsTiming, TsError> {
    if buf.is_empty() {
        return Err(TsError::Empty);
    }
    let mut pmt_pid: Option<u16> = None;
    let (mut pat_reader, mut pmt_reader) = (SectionReader::default(), SectionReader::default());
    // (pid, kind) in PMT order.
    let mut pmt_streams: Vec<(u16, StreamKind)> = Vec::new();
    let mut pids: Vec<PidState> = Vec::new();
    let mut packets = 0usize;
    let mut skipped = 0usize;
    let mut pos = 0usize;
    let mut synced = false;

    while let Some(at) = next_packet(buf, pos) {
        skipped += at - pos;
        synced = true;
        pos = at + PACKET;
        packets += 1;
        let Some(pk) = Packet::try_new(&buf[at..at + PACKET]) else {
            continue;
        };
        if pk.transport_error_indicator() {
            continue;
        }
        let pid = u16::from(pk.pid());
        let Some(payload) = pk.payload() else {
            continue;
        };
        let (pusi, cc) = (
            pk.payload_unit_start_indicator(),
            pk.continuity_counter().count(),
        );
        if pid == 0 {
            if let Some(data) = pat_reader
                .push(pusi, cc, payload)
                .and_then(|s| section_data(s, 0x00))
            {
                let first = PatSection::new(data).programs().find_map(|p| match p {
                    ProgramDescriptor::Program { pid, .. } => Some(u16::from(pid)),
                    ProgramDescriptor::Network { .. } => None,
                });
                if first.is_some() && first != pmt_pid {
                    pmt_pid = first;
                    pmt_reader = SectionReader::default();
                }
            }
            continue;
        }
        if Some(pid) == pmt_pid {
            if pmt_streams.is_empty()
                && let Some(data) = pmt_reader
                    .push(pusi, cc, payload)
                    .and_then(|s| section_data(s, 0x02))
                && let Ok(pmt) = PmtSection::from_bytes(data)
            {
                pmt_streams = pmt
                    .streams()
                    .filter_map(|s| classify_stream(&s).map(|k| (u16::from(s.elementary_pid()), k)))
                    .collect();
            }
            continue;
        }
        if pid == NULL_PID {
            continue;
        }

        let idx = match pids.iter().position(|p| p.pid == pid) {
            Some(i) => i,
            None => {
                pids.push(PidState::new(pid));
                pids.len() - 1
            }
        };
        let state = &mut pids[idx];
        if pk.payload_unit_start_indicator() {
            let Some(PesStart {
                stream_id,
                pts,
                dts,
                es,
            }) = pes_timestamps(payload)
            else {
                continue;
            };
            state.sniffed = state.sniffed.or(sniff_stream_id(stream_id, es));
            let listed = pmt_streams.iter().find(|(p, _)| *p == pid).map(|&(_, k)| k);
            state.audio = listed
                .or(state.sniffed)
                .is_some_and(|k| k != StreamKind::Video);
            if state.audio {
                state.last_payload.clear();
                state.last_payload.extend_from_slice(es);
            }
            if let Some(pts) = pts {
                let first = *state.first_pts.get_or_insert(pts);
                if depth == Depth::Full {
                    state.offsets.push(signed_diff(pts, first));
                }
                let dts = dts.unwrap_or(pts);
                if let Some(last) = state.last_dts {
                    let step = signed_diff(dts, last);
                    if step > 0 {
                        let step = step as u64;
                        state.min_step = Some(state.min_step.map_or(step, |m| m.min(step)));
                    }
                }
                state.last_dts = Some(dts);
            }
            if depth == Depth::Start && state.first_pts.is_some() {
                let reference = pmt_streams.first().map(|&(p, _)| p);
                let first_video = pmt_streams
                    .iter()
                    .find(|(_, k)| *k == StreamKind::Video)
                    .map(|&(p, _)| p);
                if first_video.or(reference) == Some(pid) {
                    break;
                }
            }
        } else if state.audio && state.first_pts.is_some() {
            state.last_payload.extend_from_slice(payload);
        }
    }
    if !synced {
        return Err(TsError::NoSync);
    }

    // The reference stream: first video PID of the PMT, else its first audio
    // PID; without a PMT, the first PID whose PES stream id says video, else audio.
    let with_pts = |pid: u16| pids.iter().find(|p| p.pid == pid && p.first_pts.is_some());
    let from_pmt = pmt_streams
        .iter()
        .filter(|(_, k)| *k == StreamKind::Video)
        .chain(pmt_streams.iter().filter(|(_, k)| *k != StreamKind::Video))
        .find_map(|&(pid, kind)| with_pts(pid).map(|s| (s, kind)));
    let sniffed = || {
        let by_kind = |want: StreamKind| {
            pids.iter()
                .find(|p| p.first_pts.is_some() && p.sniffed == Some(want))
                .map(|s| (s, want))
        };
        by_kind(StreamKind::Video).or_else(|| {
            pids.iter().find_map(|p| match p.sniffed {
                Some(k) if k != StreamKind::Video && p.first_pts.is_some() => Some((p, k)),
                _ => None,
            })
        })
    };
    let Some((state, kind)) = from_pmt.or_else(sniffed) else {
        return Err(TsError::NoTimestamps { packets });
    };
    let first_pts = state.first_pts.unwrap_or_default();
    let (start_pts, span_ticks, outliers) = match depth {
        Depth::Start => (first_pts, None, 0),
        Depth::Full => {
            let c = main_cluster(&state.offsets);
            let start = (first_pts as i64 + c.start_offset).rem_euclid(PTS_WRAP as i64) as u64;
            let span = last_frame_ticks(state, kind)
                .map(|frame| (c.max_offset - c.start_offset) as u64 + frame);
            (start, span, c.outliers)
        }
    };
    Ok(TsTiming {
        kind,
        pid: state.pid,
        start_pts,
        span_ticks,
        outliers,
        skipped_bytes: skipped,
    })
}

/// The timestamps that define a segment's extent, as offsets from its first PES.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    /// Offset of the first PES (in file order) inside the cluster.
    pub start_offset: i64,
    /// Largest offset inside the cluster.
    pub max_offset: i64,
    /// Offsets left out.
    pub outliers: usize,
}

/// Smallest gap between sorted timestamps that separates clusters: a second.
const MIN_CLUSTER_GAP_TICKS: i64 = HZ as i64;
/// A gap separates clusters when over this many times the median gap.
const CLUSTER_GAP_FACTOR: i64 = 50;

/// The main cluster of a segment's PES timestamps (signed offsets from the
/// first, in file order). Sorted, a segment's timestamps are close together:
/// frame after frame. A corrupt timestamp stands apart, beyond a gap of
/// `max(1 s, 50 × the median gap)`. The largest run of sorted timestamps
/// without such a gap is the cluster, when it holds more than half of them;
/// otherwise no run can be trusted over the others and every timestamp counts
/// (a real jump, which the caller's plausibility check then judges). ffprobe
/// reports such a corrupt packet as is; `fixtures/expected.py` applies the
/// same rule to its packet timestamps.
pub fn main_cluster(offsets: &[i64]) -> Cluster {
    let all = Cluster {
        start_offset: 0,
        max_offset: offsets.iter().copied().max().unwrap_or(0).max(0),
        outliers: 0,
    };
    if offsets.len() < 3 {
        return all;
    }
    let mut sorted = offsets.to_vec();
    sorted.sort_unstable();
    let mut gaps: Vec<i64> = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|&g| g > 0)
        .collect();
    gaps.sort_unstable();
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
    let limit = MIN_CLUSTER_GAP_TICKS.max(median.saturating_mul(CLUSTER_GAP_FACTOR));
    // The largest run (the first of equals) as a range of `sorted`.
    let (mut best, mut run_start) = ((0, 0), 0);
    for i in 1..=sorted.len() {
        if i == sorted.len() || sorted[i] - sorted[i - 1] > limit {
            if i - run_start > best.1 - best.0 {
                best = (run_start, i);
            }
            run_start = i;
        }
    }
    let size = best.1 - best.0;
    if size == sorted.len() || 2 * size <= sorted.len() {
        return all;
    }
    let (lo, hi) = (sorted[best.0], sorted[best.1 - 1]);
    let start_offset = offsets
        .iter()
        .copied()
        .find(|o| (lo..=hi).contains(o))
        .unwrap_or(lo);
    Cluster {
        start_offset,
        max_offset: hi,
        outliers: sorted.len() - size,
    }
}

/// Duration of the content starting at the largest PTS: one video frame,
/// or every audio frame of the last PES.
fn last_frame_ticks(state: &PidState, kind: StreamKind) -> Option<u64> {
    match kind {
        StreamKind::Video => state.min_step,
        StreamKind::Aac | StreamKind::MpegAudio | StreamKind::Ac3 => {
            let count = match kind {
                StreamKind::Aac => adts_samples,
                StreamKind::Ac3 => ac3_samples,
                _ => mpeg_audio_samples,
            };
            count(&state.last_payload)
                .filter(|&(samples, _)| samples > 0)
                .map(|(samples, rate)| (samples * HZ + rate / 2) / rate)
                .or(state.min_step)
        }
        StreamKind::OtherAudio => state.min_step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 188-byte packet with the given PID, PUSI flag and payload (padded with
    /// an adaptation field so the payload ends the packet).
    fn packet(pid: u16, pusi: bool, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() <= 184);
        let mut p = vec![
            SYNC,
            ((pid >> 8) as u8 & 0x1f) | if pusi { 0x40 } else { 0 },
            pid as u8,
        ];
        let stuffing = 184 - payload.len();
        if stuffing == 0 {
            p.push(0x10);
        } else {
            p.push(0x30);
            p.push((stuffing - 1) as u8);
            if stuffing > 1 {
                p.push(0);
                p.extend(std::iter::repeat_n(0xff, stuffing - 2));
            }
        }
        p.extend_from_slice(payload);
        assert_eq!(p.len(), 188);
        p
    }

    fn section(table_id: u8, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![
            0,
            table_id,
            0xb0 | (len >> 8) as u8,
            len as u8,
            0,
            1,
            0xc1,
            0,
            0,
        ];
        s.extend_from_slice(body);
        s.extend_from_slice(&[0, 0, 0, 0]); // CRC, not checked
        s
    }

    fn pat() -> Vec<u8> {
        packet(0, true, &section(0x00, &[0, 1, 0xf0, 0x00])) // program 1 → PMT PID 0x1000
    }

    /// PMT listing (stream_type, pid) pairs.
    fn pmt(streams: &[(u8, u16)]) -> Vec<u8> {
        let mut body = vec![0xe1, 0x00, 0xf0, 0x00];
        for &(st, pid) in streams {
            body.extend_from_slice(&[st, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0x00]);
        }
        packet(0x1000, true, &section(0x02, &body))
    }

    fn ts_bytes(marker: u8, v: u64) -> [u8; 5] {
        [
            (marker << 4) | (((v >> 30) as u8 & 0x07) << 1) | 1,
            (v >> 22) as u8,
            (((v >> 15) as u8) << 1) | 1,
            (v >> 7) as u8,
            ((v as u8) << 1) | 1,
        ]
    }

    fn pes(pid: u16, stream_id: u8, pts: u64, dts: Option<u64>, es: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 0, 1, stream_id, 0, 0, 0x80];
        match dts {
            None => {
                p.extend_from_slice(&[0x80, 5]);
                p.extend_from_slice(&ts_bytes(0b0010, pts));
            }
            Some(dts) => {
                p.extend_from_slice(&[0xc0, 10]);
                p.extend_from_slice(&ts_bytes(0b0011, pts));
                p.extend_from_slice(&ts_bytes(0b0001, dts));
            }
        }
        p.extend_from_slice(es);
        packet(pid, true, &p)
    }

    /// A video segment: `frames` frames of 3600 ticks (25 fps) from `start`.
    fn video_segment(start: u64, frames: u64) -> Vec<u8> {
        let mut buf = pat();
        buf.extend(pmt(&[(0x0f, 0x101), (0x1b, 0x100)]));
        for f in 0..frames {
            let pts = (start + f * 3600) % PTS_WRAP;
            buf.extend(pes(0x100, 0xe0, pts, Some(pts), &[0; 10]));
            buf.extend(pes(0x101, 0xc0, (pts + 100) % PTS_WRAP, None, &[]));
        }
        buf
    }

    #[test]
    fn video_start_and_span() {
        let t = scan(&video_segment(900_000, 50), Depth::Full).unwrap();
        assert_eq!(t.kind, StreamKind::Video);
        assert_eq!(t.pid, 0x100);
        assert_eq!(t.start_pts, 900_000);
        assert_eq!(t.span_ticks, Some(180_000));
        let t = scan(&video_segment(900_000, 50), Depth::Start).unwrap();
        assert_eq!((t.start_pts, t.span_ticks), (900_000, None));
    }

    /// A video-only segment with the given PTS per frame (DTS = PTS).
    fn video_with_pts(pts: impl IntoIterator<Item = u64>) -> Vec<u8> {
        let mut buf = pat();
        buf.extend(pmt(&[(0x1b, 0x100)]));
        for p in pts {
            buf.extend(pes(0x100, 0xe0, p % PTS_WRAP, None, &[0; 10]));
        }
        buf
    }

    #[test]
    fn a_lone_corrupt_pts_does_not_define_the_span() {
        let hour = 3600 * HZ;
        let frames = |bad: u64| (0..50u64).map(move |f| f * 3600 + if f == bad { hour } else { 0 });
        let t = scan(&video_with_pts(frames(20)), Depth::Full).unwrap();
        assert_eq!((t.span_ticks, t.outliers), (Some(180_000), 1));
        // The corrupt one last, or first: the start is the first good PES.
        let t = scan(&video_with_pts(frames(49)), Depth::Full).unwrap();
        assert_eq!((t.span_ticks, t.outliers), (Some(49 * 3600), 1));
        let t = scan(&video_with_pts(frames(0)), Depth::Full).unwrap();
        assert_eq!(
            (t.start_pts, t.span_ticks, t.outliers),
            (3600, Some(49 * 3600), 1)
        );
        // One hour back, across the PTS wrap.
        let t =
            scan(
                &video_with_pts((0..50u64).map(|f| {
                    PTS_WRAP - 7200 + f * 3600 + if f == 30 { PTS_WRAP - hour } else { 0 }
                })),
                Depth::Full,
            )
            .unwrap();
        assert_eq!((t.span_ticks, t.outliers), (Some(180_000), 1));
    }

    #[test]
    fn a_jump_with_no_majority_on_either_side_keeps_every_timestamp() {
        let hour = 3600 * HZ;
        let frames = (0..50u64).map(|f| f * 3600 + if f >= 25 { hour } else { 0 });
        let t = scan(&video_with_pts(frames), Depth::Full).unwrap();
        assert_eq!((t.span_ticks, t.outliers), (Some(hour + 50 * 3600), 0));
    }

    #[test]
    fn main_cluster_rules() {
        assert_eq!(main_cluster(&[]).max_offset, 0);
        assert_eq!(
            main_cluster(&[0, 5_000_000]).outliers,
            0,
            "two: no majority"
        );
        let c = main_cluster(&[0, 3600, -400_000_000, 7200, 10_800]);
        assert_eq!((c.start_offset, c.max_offset, c.outliers), (0, 10_800, 1));
        // A one-frame-per-second slideshow: gaps of a second are not outliers.
        let slides: Vec<i64> = (0..10).map(|i| i * 90_000).collect();
        assert_eq!(main_cluster(&slides).outliers, 0);
        // Two lone values far apart, each its own run.
        let c = main_cluster(&[0, 3600, 7200, 10_800, 90_000_000, 900_000_000]);
        assert_eq!((c.max_offset, c.outliers), (10_800, 2));
    }

    /// A PMT section listing (stream_type, pid) pairs, over as many TS
    /// packets as it needs; `cc_gap` skips a continuity count before the second.
    fn long_pmt(streams: &[(u8, u16)], cc_gap: bool) -> Vec<u8> {
        let mut body = vec![0xe1, 0x00, 0xf0, 0x00];
        for &(st, pid) in streams {
            body.extend_from_slice(&[st, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0x00]);
        }
        let sec = section(0x02, &body);
        let mut out = Vec::new();
        for (i, chunk) in sec.chunks(184).enumerate() {
            let mut p = packet(0x1000, i == 0, chunk);
            let cc = if cc_gap && i > 0 { i + 1 } else { i };
            p[3] |= (cc & 0x0f) as u8;
            out.extend(p);
        }
        out
    }

    /// Audio only, listed after 40 private streams: the PMT takes two packets.
    fn audio_after_many_streams(cc_gap: bool) -> Vec<u8> {
        let es = [0xff, 0xf1, 0x4c, 0x80, 0x01, 0x20, 0xfc, 0, 0];
        let mut streams: Vec<(u8, u16)> = (0..40).map(|i| (0x06, 0x200 + i)).collect();
        streams.push((0x0f, 0x101));
        let mut buf = pat();
        let pmt = long_pmt(&streams, cc_gap);
        assert_eq!(pmt.len(), 2 * 188);
        buf.extend(pmt);
        for i in 0..10u64 {
            buf.extend(pes(0x101, 0xc0, 1000 + i * 1920, None, &es));
        }
        buf
    }

    #[test]
    fn a_pmt_over_two_packets_is_reassembled() {
        let t = scan(&audio_after_many_streams(false), Depth::Full).unwrap();
        // From the PMT: AAC, whose last frame is counted from its ADTS header.
        assert_eq!((t.pid, t.kind), (0x101, StreamKind::Aac));
        assert_eq!(t.span_ticks, Some(10 * 1920));
        // A lost packet in the middle: no PMT, the stream id says audio.
        let t = scan(&audio_after_many_streams(true), Depth::Full).unwrap();
        assert_eq!((t.pid, t.kind), (0x101, StreamKind::OtherAudio));
    }

    #[test]
    fn section_reader_edges() {
        let mut r = SectionReader::default();
        assert_eq!(r.push(false, 0, &[0x02, 0xb0, 0x05]), None, "no start yet");
        assert_eq!(r.push(true, 0, &[]), None, "no pointer field");
        assert_eq!(r.push(true, 0, &[200, 1, 2]), None, "pointer past the end");
        assert_eq!(r.push(true, 0, &[0, 0xff, 0xff, 0xff]), None, "stuffing");
        assert_eq!(r.push(true, 0, &[0, 0x02, 0xbf, 0xff]), None, "too long");
        assert_eq!(
            r.push(true, 0, &[0, 0x02, 0xb0]),
            None,
            "length unknown yet"
        );
        assert_eq!(
            r.push(false, 1, &[0x02, 9, 9]),
            Some(&[0x02, 0xb0, 0x02, 9, 9][..])
        );
        assert_eq!(
            r.push(false, 2, &[0x02, 9, 9]),
            None,
            "one section per start"
        );
        assert_eq!(
            section_data(&[0x02, 0xb0, 0x02, 9, 9], 0x02),
            None,
            "shorter than a header"
        );
    }

    /// A segment with one stream, listed with `stream_type` and
    /// `descriptors`, of 10 private_stream_1 PES packets 5760 ticks apart,
    /// each starting with `es`.
    fn private_stream(stream_type: u8, descriptors: &[u8], es: &[u8]) -> Vec<u8> {
        let mut body = vec![0xe1, 0x00, 0xf0, 0x00, stream_type, 0xe1, 0x01, 0xf0];
        body.push(descriptors.len() as u8);
        body.extend_from_slice(descriptors);
        let mut buf = pat();
        buf.extend(packet(0x1000, true, &section(0x02, &body)));
        for i in 0..10u64 {
            buf.extend(pes(0x101, 0xbd, 1000 + i * 5760, None, es));
        }
        buf
    }

    /// One AC-3 syncframe: 48 kHz, 32 kbit/s, 128 bytes, 1536 samples (2880 ticks).
    fn ac3_frame() -> Vec<u8> {
        let mut frame = vec![0x0b, 0x77, 0, 0, 0x00, 8 << 3];
        frame.resize(128, 0);
        frame
    }

    #[test]
    fn ac3_and_eac3_are_audio_in_atsc_and_dvb_form() {
        let registration = |id: &[u8; 4]| [&[0x05, 4][..], id].concat();
        for (stream_type, descriptors) in [
            (0x81, vec![]),
            (0x87, vec![]),
            (0x06, vec![0x6a, 1, 0]),
            (0x06, vec![0x0a, 4, b'e', b'n', b'g', 0, 0x7a, 1, 0]),
            (0x06, registration(b"AC-3")),
            (0x06, registration(b"EAC3")),
        ] {
            let buf = private_stream(stream_type, &descriptors, &ac3_frame());
            let t = scan(&buf, Depth::Full).unwrap();
            assert_eq!(
                (t.pid, t.kind),
                (0x101, StreamKind::Ac3),
                "{stream_type:#x} {descriptors:?}"
            );
            // Nine steps of 5760 ticks, then one syncframe: 2880 ticks, not a step.
            assert_eq!(t.span_ticks, Some(9 * 5760 + 2880));
        }
        // Without a PMT, the AC-3 syncword after a private_stream_1 header says so.
        let buf = private_stream(0x06, &[0x6a, 1, 0], &ac3_frame());
        let t = scan(&buf[2 * 188..], Depth::Full).unwrap();
        assert_eq!(
            (t.kind, t.span_ticks),
            (StreamKind::Ac3, Some(9 * 5760 + 2880))
        );
        // Private data with other descriptors (here DVB subtitles) is not audio.
        let buf = private_stream(0x06, &[0x59, 0], &[0x20, 0x00, 0x0f]);
        assert_eq!(
            scan(&buf, Depth::Full),
            Err(TsError::NoTimestamps { packets: 12 })
        );
    }

    #[test]
    fn span_across_pts_wrap() {
        let t = scan(&video_segment(PTS_WRAP - 36_000, 50), Depth::Full).unwrap();
        assert_eq!(t.start_pts, PTS_WRAP - 36_000);
        assert_eq!(t.span_ticks, Some(180_000));
    }

    #[test]
    fn resynchronises_after_garbage_and_ignores_partial_packet() {
        let mut buf = vec![0x47, 1, 2, 3, 0x47, 9, 9];
        buf.extend(video_segment(0, 25));
        buf.extend_from_slice(&[0x47, 0, 0x11, 0x10, 1, 2, 3]); // partial packet
        let t = scan(&buf, Depth::Full).unwrap();
        assert_eq!(t.start_pts, 0);
        assert_eq!(t.span_ticks, Some(90_000));
        assert_eq!(t.skipped_bytes, 7);
    }

    #[test]
    fn garbage_in_the_middle_is_skipped() {
        let seg = video_segment(0, 25);
        let mut buf = seg[..188 * 10].to_vec();
        buf.extend_from_slice(&[0x00; 1000]);
        buf.extend_from_slice(&seg[188 * 10..]);
        let t = scan(&buf, Depth::Full).unwrap();
        assert_eq!(t.span_ticks, Some(90_000));
    }

    #[test]
    fn audio_only_uses_adts_frames_of_the_last_pes() {
        // Two ADTS frames of 1024 samples at 48 kHz (rate index 3) in each PES.
        // A 9-byte ADTS frame: 48 kHz (rate index 3), one raw data block.
        let es = [0xff, 0xf1, 0x4c, 0x80, 0x01, 0x20, 0xfc, 0, 0];
        let two: Vec<u8> = es.iter().chain(es.iter()).copied().collect();
        let mut buf = pat();
        buf.extend(pmt(&[(0x0f, 0x101)]));
        for i in 0..10u64 {
            buf.extend(pes(0x101, 0xc0, 1000 + i * 3840, None, &two));
        }
        let t = scan(&buf, Depth::Full).unwrap();
        assert_eq!(t.kind, StreamKind::Aac);
        // 9 steps of 3840 ticks, then the last PES: 2048 samples at 48 kHz = 3840 ticks.
        assert_eq!(t.span_ticks, Some(10 * 3840));
    }

    #[test]
    fn without_pmt_the_stream_id_decides() {
        let mut buf = Vec::new();
        for f in 0..5u64 {
            buf.extend(pes(0x44, 0xc0, 50 + f * 1000, None, &[]));
            buf.extend(pes(0x45, 0xe0, 7 + f * 3600, None, &[]));
        }
        let t = scan(&buf, Depth::Full).unwrap();
        assert_eq!((t.pid, t.kind, t.start_pts), (0x45, StreamKind::Video, 7));
    }

    #[test]
    fn typed_errors_for_bad_input() {
        assert_eq!(scan(&[], Depth::Full), Err(TsError::Empty));
        assert_eq!(scan(&[1, 2, 3], Depth::Full), Err(TsError::NoSync));
        assert_eq!(scan(&[0x55; 5000], Depth::Full), Err(TsError::NoSync));
        assert_eq!(
            scan(&pat(), Depth::Full),
            Err(TsError::NoTimestamps { packets: 1 })
        );
        let mut short = video_segment(0, 2);
        short.truncate(100);
        assert_eq!(scan(&short, Depth::Full), Err(TsError::NoSync));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4000)) {
            let _ = scan(&bytes, Depth::Full);
            let _ = scan(&bytes, Depth::Start);
            let _ = adts_samples(&bytes);
            let _ = mpeg_audio_samples(&bytes);
        }

        #[test]
        fn sync_bytes_everywhere_never_panic(seed in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            // Mostly-valid packets with random contents: exercises PSI/PES parsing.
            let mut buf = Vec::new();
            for chunk in seed.chunks(187) {
                buf.push(SYNC);
                buf.extend_from_slice(chunk);
                buf.resize(buf.len().div_ceil(188) * 188, 0xff);
            }
            let _ = scan(&buf, Depth::Full);
        }
    }
}
