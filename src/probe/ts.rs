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

pub(crate) const PACKET: usize = 188;
pub(crate) const SYNC: u8 = 0x47;
pub(crate) const NULL_PID: u16 = 0x1fff;

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
pub(crate) fn next_packet(buf: &[u8], pos: usize) -> Option<usize> {
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
pub(crate) struct SectionReader {
    /// Bytes of the section being gathered (from its table_id on).
    buf: Vec<u8>,
    /// Continuity counter of the last packet appended, while gathering.
    cc: Option<u8>,
}

impl SectionReader {
    /// Feeds one packet's payload; returns the complete section when this
    /// payload completes one.
    pub(crate) fn push(&mut self, pusi: bool, cc: u8, payload: &[u8]) -> Option<&[u8]> {
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
pub(crate) fn section_data(section: &[u8], table_id: u8) -> Option<&[u8]> {
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
pub(crate) fn classify_stream(stream: &StreamInfo<'_>) -> Option<StreamKind> {
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
pub(crate) fn sniff_stream_id(id: u8, es: &[u8]) -> Option<StreamKind> {
    match id {
        0xe0..=0xef => Some(StreamKind::Video),
        0xc0..=0xdf => Some(StreamKind::OtherAudio),
        0xbd if es.starts_with(&[0x0b, 0x77]) => Some(StreamKind::Ac3),
        _ => None,
    }
}

/// What the header of a PES packet says.
pub(crate) struct PesStart<'a> {
    pub(crate) stream_id: u8,
    pub(crate) pts: Option<u64>,
    pub(crate) dts: Option<u64>,
    /// The elementary stream bytes after the header, in this TS packet.
    pub(crate) es: &'a [u8],
}

/// PTS and DTS of a PES header at the start of `payload`, if any.
pub(crate) fn pes_timestamps(payload: &[u8]) -> Option<PesStart<'_>> {
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
#[path = "tests/ts.rs"]
mod tests;
