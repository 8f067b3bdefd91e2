//! The start of a run (the loop's first segment, or the first after a source
//! discontinuity), cut where the previous run's audio ends.
//!
//! A source usually starts its audio a little before its video (AAC encoder
//! priming) and ends it a little after. Served one run after the other, the
//! new run's first audio frames would then overlap the previous run's last
//! ones, and decode timestamps would go back. [`LeadSplice::build`] finds, for
//! each audio stream, the frames of the new run that start before the
//! previous run's audio ends ([`RunEnd`]) and drops them: whole PES packets
//! become null packets, and the PES that straddles that point is rewritten
//! with a new header (the PTS of its first kept frame), its kept frames,
//! and is packetised again into the first TS packets the original PES had;
//! its remaining packets become null packets. The served segment keeps its
//! length and the offset of every packet. All of this is computed once, when
//! the plan is built; serving a segment then copies the precomputed packets
//! over the source's ([`super::apply`]).
//!
//! Frames are read for AAC in ADTS, MPEG-1/2 audio and AC-3/E-AC-3. Other
//! streams (subtitles, metadata, other video) and audio whose frames cannot
//! be read (LATM, a PES that does not start with a frame, a PCR or other
//! adaptation field data on the audio PID, scrambled payload) are cut by
//! whole PES packets, as before frames were read: every PES starting before
//! the trim point is dropped. That fallback is reported in [`LeadReport`].

use super::{NULL_PID, PACKET, PAT_PID, SYNC, next_packet};
use crate::probe::audio::{AudioFrame, ac3_frame, adts_frame, mpeg_audio_frame};
use crate::probe::ts::TsTiming;
use crate::ticks::{HZ, PTS_WRAP, pts_diff};

/// How far before the trim point a kept frame may start, in 90 kHz ticks:
/// timestamps and frame durations are rounded to whole ticks (a 44.1 kHz AAC
/// frame lasts 2089.8 ticks), which must not drop a frame that starts right
/// where the previous run ends.
pub const ROUNDING_TICKS: u64 = 2;

/// Farthest the previous run's audio end may lie from the start of the new
/// run's reference stream (both on the served timeline) to be trusted: a
/// second. Beyond, the new run is cut at its reference start instead.
pub const MAX_TRIM_SHIFT_TICKS: u64 = HZ;

/// Where the audio of a run's last segment ends: per PID, the PTS just after
/// the last frame of its last PES, on that segment's source clock; with the
/// segment's reference start and its duration on the schedule, which place
/// those ends on the next run's clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunEnd {
    start_pts: u64,
    duration_ticks: u64,
    /// (pid, end PTS), by PID.
    ends: Vec<(u16, u64)>,
}

impl RunEnd {
    /// A run end from known values: the segment's reference start PTS, its
    /// duration on the schedule, and `(pid, end PTS)` of each audio stream.
    pub fn new(start_pts: u64, duration_ticks: u64, mut ends: Vec<(u16, u64)>) -> RunEnd {
        ends.sort_unstable();
        ends.dedup_by_key(|e| e.0);
        RunEnd {
            start_pts,
            duration_ticks,
            ends,
        }
    }

    /// Reads the last segment of a run: `timing` is its [`crate::probe::ts::scan`]
    /// (reference PID and start PTS), `duration_ticks` its duration on the
    /// track's schedule (what separates its start from the next segment's on
    /// the served timeline). Audio PIDs whose last PES has no PTS or no
    /// readable frames are left out.
    pub fn scan(buf: &[u8], timing: &TsTiming, duration_ticks: u64) -> RunEnd {
        let all = gather(buf, timing.pid);
        let mut ends: Vec<(u16, u64)> = Vec::new();
        for pid in pids_in_order(&all) {
            let Some(last) = all.iter().rev().find(|p| p.pid == pid) else {
                continue;
            };
            let Some(head) = last.head() else {
                continue;
            };
            let es = last.es(&head);
            if !head.is_audio(es) {
                continue;
            }
            let Ok(frames) = split_frames(es) else {
                continue;
            };
            let Some(pts) = head.pts else {
                continue;
            };
            ends.push((
                pid,
                (pts + frames.ticks_before(frames.units.len())) & MASK_33,
            ));
        }
        RunEnd::new(timing.start_pts, duration_ticks, ends)
    }

    /// Where the audio of `pid` ends, on the source clock of that segment.
    pub fn audio_end(&self, pid: u16) -> Option<u64> {
        self.ends
            .binary_search_by_key(&pid, |e| e.0)
            .ok()
            .map(|i| self.ends[i].1)
    }

    /// That end on the clock of a segment whose reference stream starts at
    /// `start_pts` and which is served right after this one.
    fn end_on(&self, pid: u16, start_pts: u64) -> Option<u64> {
        let end = self.audio_end(pid)?;
        Some(
            end.wrapping_add(start_pts)
                .wrapping_sub(self.start_pts)
                .wrapping_sub(self.duration_ticks)
                & MASK_33,
        )
    }
}

const MASK_33: u64 = PTS_WRAP - 1;

/// Signed `a − b` on the 33-bit clock.
fn signed_diff(a: u64, b: u64) -> i64 {
    let d = pts_diff(a, b);
    if d > PTS_WRAP / 2 {
        d as i64 - PTS_WRAP as i64
    } else {
        d as i64
    }
}

/// One packet of a segment served differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edit {
    /// Byte offset of the packet in the segment.
    at: usize,
    /// PID of the source packet there, checked before the splice is used.
    pid: u16,
    /// Index into [`LeadSplice::packets`], or `None` for a null packet.
    with: Option<u32>,
}

/// What happened to one PID at the start of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidTrim {
    /// The PID.
    pub pid: u16,
    /// The trim point on the segment's source clock: frames and PES packets
    /// that start before it are dropped.
    pub trim_pts: u64,
    /// Whether the trim point is where the previous run's audio of this PID
    /// ends (else the reference stream's start).
    pub from_previous_run: bool,
    /// Whole PES packets served as null packets.
    pub dropped_pes: usize,
    /// Frames dropped from the PES rewritten at the trim point.
    pub dropped_frames: usize,
    /// PTS (source clock) of the first PES served, when one was rewritten:
    /// its first kept frame.
    pub rewritten_pts: Option<u64>,
    /// Why this audio PID was not cut to within a frame of the previous
    /// run's end: its frames could not be read (then it was cut by whole PES
    /// packets), or that end was implausibly far from the reference start
    /// (then it was cut at the reference start).
    pub fallback: Option<String>,
}

/// What [`LeadSplice::build`] did, per PID that had something before its trim point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadReport {
    /// One entry per PID that had PES packets before its trim point, by first appearance.
    pub pids: Vec<PidTrim>,
}

impl LeadReport {
    /// Audio PIDs not cut to within a frame of the previous run's end, with the reason.
    pub fn fallbacks(&self) -> impl Iterator<Item = (u16, &str)> {
        self.pids
            .iter()
            .filter_map(|p| Some((p.pid, p.fallback.as_deref()?)))
    }
}

/// The first segment of a run as served: which packets are replaced, by
/// what. Built once per such segment from its bytes and the previous run's
/// [`RunEnd`]; [`super::apply`] uses it on every serving.
///
/// A served segment has the source's length and every packet at the same
/// offset: a replaced packet is either a null packet or a packet of the same
/// PID carrying part of the rewritten PES, in source time (its timestamps and
/// continuity counter are shifted with the rest of the segment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadSplice {
    source_len: usize,
    /// Sorted by offset.
    edits: Box<[Edit]>,
    packets: Box<[[u8; PACKET]]>,
    report: LeadReport,
}

impl LeadSplice {
    /// The splice of a run's first segment `buf`, whose reference stream
    /// (`timing.pid`) starts at `timing.start_pts`, served right after the
    /// run whose end is `previous` ([`RunEnd::scan`] of the segment before
    /// it: the loop's last segment for the loop's first, the segment before
    /// the discontinuity otherwise; without one, `RunEnd::default()` cuts at
    /// the reference start).
    ///
    /// Per PID other than the reference: the trim point is where the
    /// previous run's audio of that PID ends, moved to this segment's clock
    /// (else, or when that lies more than [`MAX_TRIM_SHIFT_TICKS`] from the
    /// reference start, the reference start). Leading PES packets that start
    /// before it are dropped; for audio, the PES that straddles it keeps its
    /// frames that start at it or later (within [`ROUNDING_TICKS`]). Never
    /// panics; anything it cannot read is served as it is or dropped whole.
    pub fn build(buf: &[u8], timing: &TsTiming, previous: &RunEnd) -> LeadSplice {
        let all = gather(buf, timing.pid);
        let mut edits: Vec<Edit> = Vec::new();
        let mut packets: Vec<[u8; PACKET]> = Vec::new();
        let mut report = LeadReport::default();
        for pid in pids_in_order(&all) {
            let list: Vec<&Pes> = all.iter().filter(|p| p.pid == pid).collect();
            let mut trim: Option<PidTrim> = None;
            for (k, pes) in list.iter().enumerate() {
                let Some(head) = pes.head() else {
                    // Not a PES header that can be read: kept, unless the
                    // PID is being dropped already (a PES without a PTS
                    // continues the one before).
                    match trim.as_mut() {
                        Some(t) if t.dropped_pes > 0 && t.rewritten_pts.is_none() => {
                            drop_whole(pes, &mut edits);
                            t.dropped_pes += 1;
                            continue;
                        }
                        _ => break,
                    }
                };
                let es = pes.es(&head);
                let audio = head.is_audio(es);
                let t = trim.get_or_insert_with(|| trim_point(pid, audio, timing, previous));
                // Non-audio PIDs keep the exact rule of whole-PES trimming:
                // anything before the reference start.
                let tolerance = if audio { ROUNDING_TICKS } else { 0 };
                let Some(pts) = head.pts else {
                    if t.dropped_pes > 0 {
                        drop_whole(pes, &mut edits);
                        t.dropped_pes += 1;
                        continue;
                    }
                    break;
                };
                if !starts_before(pts, t.trim_pts, tolerance) {
                    break;
                }
                if !audio {
                    drop_whole(pes, &mut edits);
                    t.dropped_pes += 1;
                    continue;
                }
                let next_cc = list.get(k + 1).and_then(|n| n.ccs.first().copied());
                match rewrite(pes, &head, es, t.trim_pts, next_cc) {
                    Ok(Cut::All(frames)) => {
                        drop_whole(pes, &mut edits);
                        t.dropped_pes += 1;
                        t.dropped_frames += frames;
                    }
                    Ok(Cut::Rewritten {
                        dropped,
                        pts,
                        packets: new,
                    }) => {
                        for (j, &at) in pes.offsets.iter().enumerate() {
                            let with = new.get(j).map(|p| {
                                packets.push(*p);
                                (packets.len() - 1) as u32
                            });
                            edits.push(Edit { at, pid, with });
                        }
                        t.dropped_frames += dropped;
                        t.rewritten_pts = Some(pts);
                        break;
                    }
                    Err(why) => {
                        drop_whole(pes, &mut edits);
                        t.dropped_pes += 1;
                        if t.fallback.is_none() {
                            t.fallback = Some(why.to_string());
                        }
                    }
                }
            }
            if let Some(t) = trim
                && (t.dropped_pes > 0 || t.rewritten_pts.is_some() || t.fallback.is_some())
            {
                report.pids.push(t);
            }
        }
        edits.sort_unstable_by_key(|e| e.at);
        LeadSplice {
            source_len: buf.len(),
            edits: edits.into_boxed_slice(),
            packets: packets.into_boxed_slice(),
            report,
        }
    }

    /// What was dropped and rewritten, per PID.
    pub fn report(&self) -> &LeadReport {
        &self.report
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// Packets replaced (null packets and rewritten ones).
    pub fn replaced_packets(&self) -> usize {
        self.edits.len()
    }

    /// Whether `buf` is the segment this splice was built from, as far as
    /// the splice can tell: the same length, and a sync byte and the
    /// recorded PID at every replaced packet.
    pub fn fits(&self, buf: &[u8]) -> bool {
        buf.len() == self.source_len
            && self.edits.iter().all(|e| {
                buf.get(e.at..e.at + 3)
                    .is_some_and(|h| h[0] == SYNC && pid_of(h) == e.pid)
            })
    }

    /// The packet served at byte offset `at` in place of the source's, when
    /// it is replaced: `Some(None)` for a null packet, `Some(Some(p))` for a
    /// rewritten packet (in source time). `cursor` is where to look from
    /// (offsets are asked in increasing order); it is advanced.
    pub(super) fn replacement(
        &self,
        at: usize,
        cursor: &mut usize,
    ) -> Option<Option<&[u8; PACKET]>> {
        while let Some(e) = self.edits.get(*cursor) {
            if e.at > at {
                return None;
            }
            *cursor += 1;
            if e.at == at {
                return Some(e.with.and_then(|i| self.packets.get(i as usize)));
            }
        }
        None
    }
}

/// The trim point of `pid` in a run's first segment: for audio, where the
/// previous run's audio of that PID ends, when known and plausible; else the
/// reference stream's start.
fn trim_point(pid: u16, audio: bool, timing: &TsTiming, previous: &RunEnd) -> PidTrim {
    let end = if audio {
        previous.end_on(pid, timing.start_pts)
    } else {
        None
    };
    let lead = end.map(|end| signed_diff(end, timing.start_pts));
    let trusted = lead.filter(|d| d.unsigned_abs() <= MAX_TRIM_SHIFT_TICKS);
    PidTrim {
        pid,
        trim_pts: end
            .filter(|_| trusted.is_some())
            .unwrap_or(timing.start_pts),
        from_previous_run: trusted.is_some(),
        dropped_pes: 0,
        dropped_frames: 0,
        rewritten_pts: None,
        fallback: match lead {
            Some(d) if trusted.is_none() => Some(format!(
                "the previous run's audio ends {:.3} s from this run's reference start: \
                 cut at the reference start",
                d as f64 / HZ as f64
            )),
            _ => None,
        },
    }
}

fn pid_of(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// `pts` starts before `point` by more than `tolerance` ticks (by less than
/// half the 33-bit clock).
fn starts_before(pts: u64, point: u64, tolerance: u64) -> bool {
    let d = pts_diff(point, pts);
    d > tolerance && d < PTS_WRAP / 2
}

fn drop_whole(pes: &Pes, edits: &mut Vec<Edit>) {
    edits.extend(pes.offsets.iter().map(|&at| Edit {
        at,
        pid: pes.pid,
        with: None,
    }));
}

/// One PES packet of a segment, as far as the segment has it.
#[derive(Debug)]
struct Pes {
    pid: u16,
    /// Offsets of the TS packets that carry it (with payload), in order.
    offsets: Vec<usize>,
    /// Their continuity counters.
    ccs: Vec<u8>,
    /// Its bytes from the start code on.
    bytes: Vec<u8>,
    /// The first packet's transport_priority bit.
    priority: bool,
    /// The first packet's adaptation-field flags kept in a rewrite
    /// (discontinuity, random access, ES priority).
    af_flags: u8,
    /// Some packet of it has adaptation-field data a rewrite would lose
    /// (PCR, OPCR, splice countdown, private data, extension).
    af_data: bool,
    /// Some packet of it is scrambled.
    scrambled: bool,
}

/// What a PES header says.
struct Head {
    stream_id: u8,
    pts: Option<u64>,
    /// Where the elementary stream starts in [`Pes::bytes`].
    header_end: usize,
    /// `PES_packet_length` (0: unbounded).
    packet_length: usize,
    /// Byte 6 (marker, scrambling control, priority, alignment, copyright, original).
    flags6: u8,
}

impl Head {
    /// Audio by its stream id: MPEG audio stream ids (AAC, MP2, MP3), or
    /// private_stream_1 that starts with an AC-3 syncword.
    fn is_audio(&self, es: &[u8]) -> bool {
        matches!(self.stream_id, 0xc0..=0xdf)
            || (self.stream_id == 0xbd && es.starts_with(&[0x0b, 0x77]))
    }
}

impl Pes {
    fn head(&self) -> Option<Head> {
        let h = self.bytes.get(..9)?;
        if h[..3] != [0, 0, 1] || !super::has_pes_header(h[3]) || h[6] & 0xc0 != 0x80 {
            return None;
        }
        let header_end = 9 + usize::from(h[8]);
        if header_end > self.bytes.len() {
            return None;
        }
        let pts = if h[7] & 0x80 != 0 && h[8] >= 5 {
            super::pes_pts(&self.bytes)
        } else {
            None
        };
        Some(Head {
            stream_id: h[3],
            pts,
            header_end,
            packet_length: (usize::from(h[4]) << 8) | usize::from(h[5]),
            flags6: h[6],
        })
    }

    /// The elementary stream bytes in the segment: after the header, up to
    /// the end the header declares.
    fn es(&self, head: &Head) -> &[u8] {
        let end = if head.packet_length == 0 {
            self.bytes.len()
        } else {
            (6 + head.packet_length).min(self.bytes.len())
        };
        self.bytes.get(head.header_end..end).unwrap_or_default()
    }
}

/// Every PES packet of the PIDs other than `reference` in a segment, in
/// order of their first packet. PSI and null packets, packets with the
/// transport error indicator and payload before a PID's first PES header are
/// left out.
fn gather(buf: &[u8], reference: u16) -> Vec<Pes> {
    let mut all: Vec<Pes> = Vec::new();
    // (pid, index in `all` of its PES in progress)
    let mut open: Vec<(u16, usize)> = Vec::new();
    let mut pos = 0;
    let mut in_sync = false;
    while let Some(at) = next_packet(buf, pos, in_sync) {
        in_sync = true;
        pos = at + PACKET;
        let Some(p) = buf.get(at..at + PACKET) else {
            break;
        };
        let pid = pid_of(p);
        if p[1] & 0x80 != 0 || pid == reference || pid == NULL_PID || pid == PAT_PID {
            continue;
        }
        let afc = (p[3] >> 4) & 3;
        let (mut start, mut flags, mut data) = (4, 0u8, false);
        if afc & 2 != 0 {
            let len = usize::from(p[4]);
            start = 5 + len;
            if len > 0 {
                flags = p[5];
                data = flags & 0x1f != 0;
            }
        }
        if afc & 1 == 0 || start > PACKET {
            // No payload: a PCR-only packet in the middle of a PES is data a
            // rewrite must not lose.
            if data && let Some(&(_, i)) = open.iter().find(|o| o.0 == pid) {
                all[i].af_data = true;
            }
            continue;
        }
        let payload = &p[start..];
        let pusi = p[1] & 0x40 != 0;
        let open_at = open.iter().position(|o| o.0 == pid);
        if pusi {
            if payload.starts_with(&[0, 0, 1]) {
                all.push(Pes {
                    pid,
                    offsets: vec![at],
                    ccs: vec![p[3] & 0x0f],
                    bytes: payload.to_vec(),
                    priority: p[1] & 0x20 != 0,
                    af_flags: flags & 0xe0,
                    af_data: data,
                    scrambled: p[3] & 0xc0 != 0,
                });
                match open_at {
                    Some(o) => open[o].1 = all.len() - 1,
                    None => open.push((pid, all.len() - 1)),
                }
            } else if let Some(o) = open_at {
                // A section on this PID: not an elementary stream.
                open.swap_remove(o);
            }
        } else if let Some(o) = open_at {
            let pes = &mut all[open[o].1];
            pes.offsets.push(at);
            pes.ccs.push(p[3] & 0x0f);
            pes.bytes.extend_from_slice(payload);
            pes.af_data |= data;
            pes.scrambled |= p[3] & 0xc0 != 0;
        }
    }
    all
}

/// The PIDs of `all`, in order of first appearance.
fn pids_in_order(all: &[Pes]) -> Vec<u16> {
    let mut pids: Vec<u16> = Vec::new();
    for p in all {
        if !pids.contains(&p.pid) {
            pids.push(p.pid);
        }
    }
    pids
}

/// The frames of a PES payload: one unit per frame that adds time (an
/// E-AC-3 dependent substream belongs to the frame before it).
#[derive(Debug)]
struct Frames {
    /// (offset in the payload, samples) of each unit.
    units: Vec<(usize, u64)>,
    rate: u64,
}

impl Frames {
    /// Ticks from the first unit's start to unit `k`'s, rounded.
    fn ticks_before(&self, k: usize) -> u64 {
        let samples: u64 = self.units.iter().take(k).map(|u| u.1).sum();
        (samples * HZ + self.rate / 2) / self.rate
    }
}

/// Splits an audio PES payload into frames: ADTS, MPEG audio or AC-3/E-AC-3,
/// told apart by the first header. The payload must start with a frame and
/// every frame must have the same sample rate; bytes after the last complete
/// frame (a frame continued in the next PES) are allowed.
fn split_frames(es: &[u8]) -> Result<Frames, &'static str> {
    let reader: fn(&[u8]) -> Option<AudioFrame> = match es {
        [0xff, b, ..] if b & 0xf6 == 0xf0 => adts_frame,
        [0xff, b, ..] if b & 0xe0 == 0xe0 => mpeg_audio_frame,
        [0x0b, 0x77, ..] => ac3_frame,
        _ => return Err("the PES does not start with an ADTS, MPEG audio or AC-3 frame header"),
    };
    let mut units: Vec<(usize, u64)> = Vec::new();
    let mut rate = None;
    let mut pos = 0;
    while let Some(f) = es.get(pos..).and_then(reader) {
        if f.samples > 0 {
            if rate.is_some_and(|r| r != f.rate) {
                return Err("the sample rate changes inside the PES");
            }
            rate = Some(f.rate);
            units.push((pos, f.samples));
        } else if units.is_empty() {
            return Err("the PES starts with an E-AC-3 dependent substream");
        }
        pos += f.len;
    }
    match rate {
        Some(rate) if rate > 0 => Ok(Frames { units, rate }),
        _ => Err("no complete audio frame in the PES"),
    }
}

/// How a PES that starts before the trim point is served.
enum Cut {
    /// Every complete frame starts before it (that many): dropped whole.
    All(usize),
    /// Rewritten: `dropped` frames fewer, the first kept at `pts`, as these
    /// packets (in place of the PES's first ones; the rest become null packets).
    Rewritten {
        dropped: usize,
        pts: u64,
        packets: Vec<[u8; PACKET]>,
    },
}

/// Cuts the audio PES `pes` at `trim_pts`: its frames that start before it
/// (by more than [`ROUNDING_TICKS`]) are dropped. `next_cc` is the
/// continuity counter of the PID's next packet in the segment, which the
/// rewritten packets lead up to.
fn rewrite(
    pes: &Pes,
    head: &Head,
    es: &[u8],
    trim_pts: u64,
    next_cc: Option<u8>,
) -> Result<Cut, &'static str> {
    let pts = head.pts.ok_or("the PES has no PTS")?;
    if pes.scrambled || head.flags6 & 0x30 != 0 {
        return Err("the PES is scrambled");
    }
    let frames = split_frames(es)?;
    let kept = (0..frames.units.len()).find(|&k| {
        let t = (pts + frames.ticks_before(k)) & MASK_33;
        !starts_before(t, trim_pts, ROUNDING_TICKS)
    });
    let Some(k) = kept else {
        return Ok(Cut::All(frames.units.len()));
    };
    if pes.af_data {
        return Err("the PES's packets carry a PCR or other adaptation field data");
    }
    let first_pts = (pts + frames.ticks_before(k)) & MASK_33;
    let cut_at = frames.units[k].0;
    // The new PES: a header with only the PTS, then the kept bytes.
    let mut bytes = Vec::with_capacity(14 + es.len() - cut_at);
    let length = if head.packet_length == 0 {
        0
    } else {
        // The declared length, less the bytes dropped from the header and the payload.
        let declared_es = head.packet_length.saturating_sub(head.header_end - 6);
        8 + declared_es.saturating_sub(cut_at)
    };
    let length = u16::try_from(length).map_err(|_| "the PES is too long")?;
    bytes.extend_from_slice(&[0, 0, 1, head.stream_id]);
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(&[head.flags6, 0x80, 5]);
    bytes.extend_from_slice(&pts_field(first_pts));
    bytes.extend_from_slice(&es[cut_at..]);
    let packets = packetise(pes, &bytes, next_cc);
    if packets.len() > pes.offsets.len() {
        return Err("the rewritten PES needs more packets than the original");
    }
    Ok(Cut::Rewritten {
        dropped: k,
        pts: first_pts,
        packets,
    })
}

/// A 5-byte PTS field ('0010' prefix, marker bits).
fn pts_field(t: u64) -> [u8; 5] {
    let v =
        0x21_0001_0001u64 | ((t >> 30) & 7) << 33 | ((t >> 15) & 0x7fff) << 17 | (t & 0x7fff) << 1;
    let mut out = [0; 5];
    out.copy_from_slice(&v.to_be_bytes()[3..]);
    out
}

/// TS packets of `pes`'s PID carrying `bytes`: the first with the payload
/// unit start indicator and the original first packet's adaptation-field
/// flags, the last padded with adaptation-field stuffing. Continuity
/// counters end one before `next_cc` (or start at the original first
/// packet's without a next packet).
fn packetise(pes: &Pes, bytes: &[u8], next_cc: Option<u8>) -> Vec<[u8; PACKET]> {
    let mut out: Vec<[u8; PACKET]> = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let first = out.is_empty();
        let flags = if first { pes.af_flags } else { 0 };
        // Adaptation field bytes needed: length byte and flags when a flag is set.
        let af_min = if flags != 0 { 2 } else { 0 };
        let take = rest.len().min(PACKET - 4 - af_min);
        let af_len = PACKET - 4 - take; // 0, or the adaptation field including its length byte
        let mut p = [0xffu8; PACKET];
        p[0] = SYNC;
        p[1] = (if first { 0x40 } else { 0 })
            | (if pes.priority { 0x20 } else { 0 })
            | ((pes.pid >> 8) as u8 & 0x1f);
        p[2] = pes.pid as u8;
        p[3] = if af_len > 0 { 0x30 } else { 0x10 };
        if af_len > 0 {
            p[4] = (af_len - 1) as u8;
            if af_len > 1 {
                p[5] = flags;
            }
        }
        p[4 + af_len..].copy_from_slice(&rest[..take]);
        rest = &rest[take..];
        out.push(p);
    }
    let first_cc = match next_cc {
        Some(cc) => cc.wrapping_sub(out.len() as u8),
        None => pes.ccs.first().copied().unwrap_or(0),
    };
    for (j, p) in out.iter_mut().enumerate() {
        p[3] |= first_cc.wrapping_add(j as u8) & 0x0f;
    }
    out
}
