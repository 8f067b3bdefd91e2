//! Continuous timestamps for MPEG-TS: the load-time facts of a segment, the
//! per-track plan that turns them into the shift for global segment `g` in O(1),
//! and the in-place patcher that applies a shift to the bytes of a segment.
//!
//! Per 188-byte packet the patcher rewrites, and nothing else:
//! - PCR and OPCR (adaptation field): base + offset mod 2^33, the 9-bit
//!   extension and reserved bits kept (a shift of offset × 300 at 27 MHz);
//! - `DTS_next_AU` (adaptation field extension, seamless splice);
//! - PTS, DTS and ESCR of a PES header that starts in the packet (any stream
//!   with a PES header: video, audio, private data), marker and prefix bits kept;
//! - the continuity counter, by the PID's delta;
//! - in a segment that starts a run (the loop's first segment, or the first
//!   after a source discontinuity), the packets of a precomputed
//!   [`LeadSplice`]: the leading audio that would overlap the previous run's
//!   end is dropped, to the frame (see [`lead`]).
//!
//! Null packets, packets with the transport error indicator, PES payloads and
//! PSI sections are left byte-identical (PSI PIDs only get their CC nibble
//! rewritten, like every other PID). Bytes that are not in sync are left as they
//! are; the patcher resynchronises the way `probe::ts` does and never panics.

use std::sync::Arc;

use crate::ticks::PTS_WRAP;

pub mod lead;

pub use lead::{LeadReport, LeadSplice, PidTrim, RunEnd};

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const NULL_PID: u16 = 0x1fff;
const PAT_PID: u16 = 0;
/// Marks a PID that has no payload packet in a segment, in a plan's table.
const ABSENT: u8 = 0xff;

/// Continuity-counter facts of one PID in one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidCc {
    /// The PID.
    pub pid: u16,
    /// CC of the PID's first packet with a payload.
    pub first_cc: u8,
    /// CC of the PID's last packet with a payload.
    pub last_cc: u8,
}

impl PidCc {
    /// How far the PID's CC moves over the segment: the CC the next segment has
    /// to start with, minus `first_cc`, mod 16.
    ///
    /// For a segment whose CCs are continuous inside (every source seen), this
    /// is the number of payload-carrying packets mod 16, duplicates (which
    /// repeat the CC) not counted. Taken from the last CC rather than counted,
    /// it also keeps segment boundaries continuous when a source has a CC error
    /// inside a segment (that error is served as it is).
    pub fn advance(&self) -> u8 {
        self.last_cc.wrapping_add(1).wrapping_sub(self.first_cc) & 0x0f
    }
}

/// The PTS of a PES header at the start of `payload`, when it is all there.
fn pes_pts(payload: &[u8]) -> Option<u64> {
    let h = payload.get(..14)?;
    if h[..3] != [0, 0, 1] || !has_pes_header(h[3]) || h[6] & 0xc0 != 0x80 || h[7] & 0x80 == 0 {
        return None;
    }
    if usize::from(h[8]) < 5 {
        return None;
    }
    let v = read_be(&h[9..14]);
    Some(((v >> 3) & (7 << 30)) | ((v >> 2) & (0x7fff << 15)) | ((v >> 1) & 0x7fff))
}

/// Turns a packet into a null packet in place: PID 0x1FFF, no PUSI, payload only.
fn make_null(p: &mut [u8; PACKET]) {
    p[1] = (p[1] & 0x80) | 0x1f;
    p[2] = 0xff;
    p[3] = 0x10 | (p[3] & 0x0f);
}

/// What a loader keeps per TS segment to restamp it later: the CC facts of
/// each PID that carries payload as the segment is served (null packets
/// excluded, a run's first segment with its [`LeadSplice`]) and that splice.
/// A few bytes per PID, and the splice's packets for a run's first segment.
///
/// The reference start PTS comes from [`crate::probe::ts::scan`]
/// (`TsTiming::start_pts`), which the loader already runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsSegmentFacts {
    pids: Box<[PidCc]>,
    lead: Option<Arc<LeadSplice>>,
}

impl TsSegmentFacts {
    /// Reads the CC facts of a segment as it will be served with `lead` (a
    /// run's first segment; `None` for the others). Packets with the
    /// transport error indicator and null packets are ignored; bytes out of
    /// sync are skipped. A splice that does not fit `buf`
    /// ([`LeadSplice::fits`]) is left out, as [`apply`] would.
    pub fn scan(buf: &[u8], lead: Option<Arc<LeadSplice>>) -> Self {
        let lead = lead.filter(|l| !l.is_empty() && l.fits(buf));
        let mut pids: Vec<PidCc> = Vec::new();
        let mut cursor = 0;
        let mut pos = 0;
        let mut in_sync = false;
        while let Some(at) = next_packet(buf, pos, in_sync) {
            in_sync = true;
            pos = at + PACKET;
            let Some(Ok(mut packet)) = buf.get(at..at + PACKET).map(<&[u8; PACKET]>::try_from)
            else {
                break;
            };
            if let Some(with) = lead.as_ref().and_then(|l| l.replacement(at, &mut cursor)) {
                match with {
                    Some(p) => packet = p,
                    None => continue,
                }
            }
            let [_, b1, b2, b3, ..] = *packet;
            let pid = (u16::from(b1 & 0x1f) << 8) | u16::from(b2);
            if b1 & 0x80 != 0 || pid == NULL_PID || b3 & 0x10 == 0 {
                continue;
            }
            let cc = b3 & 0x0f;
            match pids.iter_mut().find(|p| p.pid == pid) {
                Some(p) => p.last_cc = cc,
                None => pids.push(PidCc {
                    pid,
                    first_cc: cc,
                    last_cc: cc,
                }),
            }
        }
        pids.sort_by_key(|p| p.pid);
        TsSegmentFacts {
            pids: pids.into_boxed_slice(),
            lead,
        }
    }

    /// The splice the facts were read with, when it fits the segment.
    pub fn lead(&self) -> Option<&Arc<LeadSplice>> {
        self.lead.as_ref()
    }

    /// The PIDs with payload, by PID.
    pub fn pids(&self) -> &[PidCc] {
        &self.pids
    }
}

/// Why a plan could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// No segments.
    #[error("a restamp plan needs at least one segment")]
    Empty,
    /// One start PTS per segment facts is needed.
    #[error("{start_pts} start PTS values for {facts} segments")]
    LengthMismatch {
        /// Number of start PTS values given.
        start_pts: usize,
        /// Number of segment facts given.
        facts: usize,
    },
}

/// Why [`TsRestampPlan::build`] failed.
#[derive(Debug)]
pub enum BuildError<E> {
    /// Reading segment bytes failed (the caller's error).
    Read(E),
    /// Segment `index` has no timestamps to rewrite.
    Timing {
        /// The segment's index in the loop.
        index: usize,
        /// What [`crate::probe::ts::scan`] said.
        error: crate::probe::ts::TsError,
    },
    /// The plan itself.
    Plan(PlanError),
}

/// What the lead splice of each run's first segment did, by segment index.
pub type LeadReports = Vec<(usize, LeadReport)>;

/// What [`TsRestampPlan::build`] needs to know of a segment besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSegment {
    /// It starts a run: the loop's first segment, or a source discontinuity before it.
    pub starts_run: bool,
    /// Its duration on the schedule the track is served on, in 90 kHz ticks.
    pub duration_ticks: u64,
}

/// One PID of a plan.
#[derive(Debug, Clone)]
struct PlanPid {
    pid: u16,
    /// CC advance over a whole loop, mod 16.
    per_loop: u8,
    /// Per segment of the loop: the CC delta of loop 0, or [`ABSENT`].
    delta_loop0: Box<[u8]>,
}

/// Everything needed to restamp any global segment of one track (variant or
/// rendition), precomputed at load from the per-segment facts.
///
/// At load, per segment `i`: `timing = probe::ts::scan(bytes, ..)` (already
/// run for durations). For each segment `r` that starts a run (`r == 0`, or a
/// source discontinuity before `r`), the segment before it in the loop `p`
/// (the loop's last for `r == 0`) ends a run: [`RunEnd::scan`]`(p's bytes,
/// p's timing, p's duration on the track's schedule)`, then
/// [`LeadSplice::build`]`(r's bytes, r's timing, &run_end)`. Then
/// [`TsSegmentFacts::scan`]`(bytes, splice)` for every segment (the splice
/// of a run's first segment, `None` for the others), and once per track
/// [`TsRestampPlan::new`] over every `timing.start_pts` and facts (the facts
/// can be dropped after). `loader::ts_restamp_plan` does all of this.
///
/// Per request: [`TsRestampPlan::for_segment`] with `g` and
/// `Schedule::start_of(g)` (O(number of PIDs)), then [`apply`] on a copy of
/// the cached bytes, or [`restamped`].
///
/// Memory: 8 bytes per segment for the start PTS, one byte per segment per
/// PID, and per run the splice's packets (the rewritten start of its first
/// audio PES: usually a few packets; a 10 000-segment track with 5 PIDs
/// and 10 runs: 130 KB and 10 × ~2 KB).
#[derive(Debug, Clone)]
pub struct TsRestampPlan {
    start_pts: Box<[u64]>,
    base_ticks: u64,
    pids: Box<[PlanPid]>,
    /// (segment index, splice) of the segments that start a run.
    leads: Box<[(usize, Arc<LeadSplice>)]>,
}

impl TsRestampPlan {
    /// A plan over one loop of a track: `start_pts[i]` is the reference start
    /// PTS of segment `i` (`TsTiming::start_pts`), `facts[i]` its CC facts;
    /// `base_ticks` is the media time of the timeline's origin (usually
    /// [`super::BASE_TICKS`]).
    ///
    /// The CCs of loop 0 stay as the source has them from the first segment on
    /// (a source whose CCs run on across its files, as ffmpeg's segmenter
    /// writes them, is served unchanged); after that every PID continues by
    /// its own count, through source discontinuities and loop points.
    pub fn new(
        start_pts: &[u64],
        facts: &[TsSegmentFacts],
        base_ticks: u64,
    ) -> Result<Self, PlanError> {
        if start_pts.len() != facts.len() {
            return Err(PlanError::LengthMismatch {
                start_pts: start_pts.len(),
                facts: facts.len(),
            });
        }
        if facts.is_empty() {
            return Err(PlanError::Empty);
        }
        let mut all: Vec<u16> = facts
            .iter()
            .flat_map(|f| f.pids.iter().map(|p| p.pid))
            .collect();
        all.sort_unstable();
        all.dedup();
        let pids = all
            .into_iter()
            .map(|pid| {
                // Output CC of the PID's first packet in segment i of loop 0:
                // its first CC in the first segment that has it, plus the
                // advances of the segments between.
                let mut next: Option<u8> = None;
                let mut delta_loop0 = Vec::with_capacity(facts.len());
                for f in facts {
                    match f.pids.iter().find(|p| p.pid == pid) {
                        Some(p) => {
                            let out_first = next.unwrap_or(p.first_cc);
                            delta_loop0.push(out_first.wrapping_sub(p.first_cc) & 0x0f);
                            next = Some(out_first.wrapping_add(p.advance()) & 0x0f);
                        }
                        None => delta_loop0.push(ABSENT),
                    }
                }
                let per_loop = facts
                    .iter()
                    .filter_map(|f| f.pids.iter().find(|p| p.pid == pid))
                    .fold(0u8, |acc, p| acc.wrapping_add(p.advance()) & 0x0f);
                PlanPid {
                    pid,
                    per_loop,
                    delta_loop0: delta_loop0.into_boxed_slice(),
                }
            })
            .collect();
        let leads = facts
            .iter()
            .enumerate()
            .filter_map(|(i, f)| Some((i, f.lead.clone()?)))
            .collect();
        Ok(TsRestampPlan {
            start_pts: start_pts.into(),
            base_ticks,
            pids,
            leads,
        })
    }

    /// The plan of a track from its segments' bytes, as [`TsRestampPlan`]
    /// describes: `read(i)` gives segment `i`'s bytes; each segment is read
    /// once, and a run's first and last segments once more. Also returns
    /// what the lead splice of each run's first segment did (by segment
    /// index), for the caller to log.
    pub fn build<B: AsRef<[u8]>, E>(
        segments: &[PlanSegment],
        base_ticks: u64,
        mut read: impl FnMut(usize) -> Result<B, E>,
    ) -> Result<(TsRestampPlan, LeadReports), BuildError<E>> {
        use crate::probe::ts::{Depth, TsTiming, scan};
        let n = segments.len();
        let mut timed = |i: usize| -> Result<(B, TsTiming), BuildError<E>> {
            let bytes = read(i).map_err(BuildError::Read)?;
            let timing = scan(bytes.as_ref(), Depth::Start)
                .map_err(|error| BuildError::Timing { index: i, error })?;
            Ok((bytes, timing))
        };
        let mut start_pts = Vec::with_capacity(n);
        let mut facts = Vec::with_capacity(n);
        for i in 0..n {
            let (bytes, timing) = timed(i)?;
            facts.push(TsSegmentFacts::scan(bytes.as_ref(), None));
            start_pts.push(timing.start_pts);
        }
        let mut reports = Vec::new();
        for r in (0..n).filter(|&r| segments[r].starts_run) {
            let p = (r + n - 1) % n;
            let (bytes, timing) = timed(p)?;
            let run_end = RunEnd::scan(bytes.as_ref(), &timing, segments[p].duration_ticks);
            let (bytes, timing) = timed(r)?;
            let lead = LeadSplice::build(bytes.as_ref(), &timing, &run_end);
            reports.push((r, lead.report().clone()));
            if !lead.is_empty() {
                facts[r] = TsSegmentFacts::scan(bytes.as_ref(), Some(Arc::new(lead)));
            }
        }
        let plan = TsRestampPlan::new(&start_pts, &facts, base_ticks).map_err(BuildError::Plan)?;
        Ok((plan, reports))
    }

    /// Segments per loop.
    pub fn len(&self) -> usize {
        self.start_pts.len()
    }

    /// Always false: a plan has at least one segment.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The splices of the segments that start a run, by segment index.
    pub fn leads(&self) -> impl Iterator<Item = (usize, &LeadSplice)> {
        self.leads.iter().map(|(i, l)| (*i, &**l))
    }

    /// The 90 kHz offset (mod 2^33) of segment `g` starting at
    /// `start_of_g_ticks`: what [`Self::for_segment`] adds to its timestamps.
    pub fn pts_offset(&self, g: u64, start_of_g_ticks: u64) -> u64 {
        let i = (g % self.start_pts.len().max(1) as u64) as usize;
        self.start_pts.get(i).map_or(0, |&start| {
            super::pts_offset_ticks(start, start_of_g_ticks, self.base_ticks)
        })
    }

    /// The shift for global segment `g` (loop `g / len`, index `g % len`) of
    /// this track, which starts `start_of_g_ticks` after the timeline's anchor.
    /// It depends on `g` and `start_of_g_ticks` only: the same segment number
    /// always gets the same shift, and so the same bytes.
    pub fn for_segment(&self, g: u64, start_of_g_ticks: u64) -> TsShift {
        let n = self.start_pts.len() as u64;
        let (k, i) = (g / n, (g % n) as usize);
        let pts_offset_ticks = self.pts_offset(g, start_of_g_ticks);
        // Only k mod 16 matters for a 4-bit counter.
        let k16 = (k % 16) as u8;
        let cc_deltas = self
            .pids
            .iter()
            .filter_map(|p| {
                let d0 = *p.delta_loop0.get(i)?;
                let delta = d0.wrapping_add(k16.wrapping_mul(p.per_loop)) & 0x0f;
                (d0 != ABSENT && delta != 0).then_some(CcDelta { pid: p.pid, delta })
            })
            .collect();
        let lead = self
            .leads
            .iter()
            .find(|(at, _)| *at == i)
            .map(|(_, l)| l.clone());
        TsShift {
            pts_offset_ticks,
            cc_deltas,
            lead,
        }
    }
}

/// Added to the continuity counter of every packet of one PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CcDelta {
    /// The PID.
    pub pid: u16,
    /// Added mod 16.
    pub delta: u8,
}

/// What [`apply`] does to one segment.
///
/// What a caller may rely on (the low-latency parts of a segment are cut from
/// its served bytes):
/// - [`apply`] and [`restamped`] take the whole segment as the plan read it
///   (the cached file, or its byte range); the output has the input's
///   length and every TS packet at the same offset, so a packet-aligned
///   slice of the output is the served form of the same slice of the source;
/// - a packet is changed in place (timestamp fields, the CC nibble) or,
///   only in a run's first segment ([`TsShift::lead`]), replaced whole (by a
///   null packet, or a packet of the same PID of the rewritten audio PES);
/// - the shift depends only on the global segment number and its start on
///   the schedule, so the same segment number always gives the same bytes;
/// - without a lead splice, packets are independent: applying the shift to
///   any packet-aligned slice gives that slice of the whole's output. With
///   one, the splice is used only when given the whole segment
///   ([`LeadSplice::fits`]): restamp the whole segment, then slice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsShift {
    /// Added to every PTS, DTS, ESCR, PCR and OPCR base (90 kHz) mod 2^33.
    pub pts_offset_ticks: u64,
    /// Non-zero CC deltas; PIDs not listed keep their CCs.
    pub cc_deltas: Vec<CcDelta>,
    /// In a segment that starts a run: the packets served in place of the
    /// source's (the leading audio cut where the previous run's ends).
    pub lead: Option<Arc<LeadSplice>>,
}

impl TsShift {
    /// True when applying it changes nothing.
    pub fn is_identity(&self) -> bool {
        self.pts_offset_ticks & (PTS_WRAP - 1) == 0
            && self.cc_deltas.iter().all(|d| d.delta & 0x0f == 0)
            && self.lead.as_ref().is_none_or(|l| l.is_empty())
    }
}

/// A shift's CC delta by PID, remembering the last PID asked for: a
/// segment's packets come in runs of one PID (a video frame is many packets).
struct CcLookup<'a> {
    deltas: &'a [CcDelta],
    /// The last PID looked up (none yet: a value no PID has) and its delta.
    last: (u16, u8),
}

impl<'a> CcLookup<'a> {
    fn new(deltas: &'a [CcDelta]) -> Self {
        CcLookup {
            deltas,
            last: (u16::MAX, 0),
        }
    }

    /// The delta of `pid` (0 when it has none).
    #[inline(always)]
    fn delta(&mut self, pid: u16) -> u8 {
        if pid != self.last.0 {
            let delta = self
                .deltas
                .iter()
                .find(|d| d.pid == pid)
                .map_or(0, |d| d.delta);
            self.last = (pid, delta);
        }
        self.last.1
    }
}

/// What [`apply`] found and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TsPatchStats {
    /// Packets read (null packets and packets with the error indicator included).
    pub packets: usize,
    /// PTS, DTS and ESCR fields shifted.
    pub pes_timestamps: usize,
    /// PCR, OPCR and `DTS_next_AU` fields shifted.
    pub clock_references: usize,
    /// PES headers whose timestamps run past the end of their TS packet (left as they are).
    pub split_pes_headers: usize,
    /// Bytes outside any packet: garbage before a resync and a trailing partial packet.
    pub skipped_bytes: usize,
    /// Packets turned into null packets by the lead splice.
    pub trimmed_packets: usize,
    /// Packets replaced by rewritten ones by the lead splice.
    pub rewritten_packets: usize,
    /// The shift had a lead splice that did not fit the bytes (another file
    /// than the plan read): served without it.
    pub lead_mismatch: bool,
}

/// Shifts the timestamps and continuity counters of a TS segment in place,
/// and replaces the packets of its lead splice (see [`TsShift`] for what a
/// caller may rely on).
pub fn apply(buf: &mut [u8], shift: &TsShift) -> TsPatchStats {
    let offset = shift.pts_offset_ticks & (PTS_WRAP - 1);
    let mut stats = TsPatchStats::default();
    let lead = shift.lead.as_deref().filter(|l| !l.is_empty());
    let lead = match lead {
        Some(l) if !l.fits(buf) => {
            stats.lead_mismatch = true;
            None
        }
        other => other,
    };
    let mut cursor = 0;
    let mut ccs = CcLookup::new(&shift.cc_deltas);
    let mut pos = 0;
    let mut in_sync = false;
    while let Some(at) = next_packet(buf, pos, in_sync) {
        in_sync = true;
        stats.skipped_bytes += at - pos;
        pos = at + PACKET;
        let Some(Ok(packet)) = buf
            .get_mut(at..at + PACKET)
            .map(<&mut [u8; PACKET]>::try_from)
        else {
            break;
        };
        stats.packets += 1;
        if let Some(with) = lead.and_then(|l| l.replacement(at, &mut cursor)) {
            match with {
                Some(p) => {
                    *packet = *p;
                    stats.rewritten_packets += 1;
                }
                None => {
                    make_null(packet);
                    stats.trimmed_packets += 1;
                    continue;
                }
            }
        }
        patch_packet(packet, offset, &mut ccs, &mut stats);
    }
    stats.skipped_bytes += buf.len().saturating_sub(pos);
    stats
}

/// A shifted copy of a TS segment.
pub fn restamped(buf: &[u8], shift: &TsShift) -> Vec<u8> {
    let mut out = buf.to_vec();
    apply(&mut out, shift);
    out
}

/// Offset of the next packet at or after `pos`. `in_sync`: a packet ended at
/// `pos`, so a sync byte there is enough; otherwise (the start, or after sync
/// loss) a packet start needs sync bytes at `i`, `i+188` and `i+376` (where in
/// range), like `probe::ts` when it resynchronises.
///
/// The in-sync case is inlined into the packet loops (it is every packet of
/// a clean segment); looking for sync is not.
#[inline(always)]
fn next_packet(buf: &[u8], pos: usize, in_sync: bool) -> Option<usize> {
    if in_sync && buf.get(pos) == Some(&SYNC) && buf.len() - pos >= PACKET {
        return Some(pos);
    }
    find_packet(buf, pos)
}

/// [`next_packet`] when the bytes at `pos` do not continue the packets before.
#[cold]
#[inline(never)]
fn find_packet(buf: &[u8], pos: usize) -> Option<usize> {
    if pos.checked_add(PACKET)? > buf.len() {
        return None;
    }
    let starts_packet = |i: usize| {
        buf[i] == SYNC
            && buf.get(i + PACKET).is_none_or(|&b| b == SYNC)
            && buf.get(i + 2 * PACKET).is_none_or(|&b| b == SYNC)
    };
    (pos..=buf.len() - PACKET).find(|&i| starts_packet(i))
}

fn patch_packet(p: &mut [u8; PACKET], offset: u64, ccs: &mut CcLookup, stats: &mut TsPatchStats) {
    let b1 = p[1];
    let pid = (u16::from(b1 & 0x1f) << 8) | u16::from(p[2]);
    if b1 & 0x80 != 0 || pid == NULL_PID {
        return;
    }
    let b3 = p[3];
    let afc = (b3 >> 4) & 3;
    if afc == 0 {
        return; // reserved: decoders discard the packet
    }
    let delta = ccs.delta(pid);
    if delta != 0 {
        p[3] = (b3 & 0xf0) | (b3.wrapping_add(delta) & 0x0f);
    }
    if offset == 0 {
        return;
    }
    let mut payload_start = 4;
    if afc & 2 != 0 {
        let len = usize::from(p[4]);
        payload_start = 5 + len;
        if payload_start > PACKET {
            return; // an adaptation field longer than the packet: not touched
        }
        patch_adaptation_field(&mut p[5..payload_start], offset, stats);
    }
    let pusi = b1 & 0x40 != 0;
    let scrambled = b3 & 0xc0 != 0;
    if afc & 1 != 0 && pusi && !scrambled && pid != PAT_PID {
        patch_pes_header(&mut p[payload_start..], offset, stats);
    }
}

/// The adaptation field after its length byte.
fn patch_adaptation_field(af: &mut [u8], offset: u64, stats: &mut TsPatchStats) {
    let Some(&flags) = af.first() else {
        return;
    };
    let mut at = 1;
    for flag in [0x10, 0x08] {
        // PCR, then OPCR.
        if flags & flag != 0 {
            let Some(field) = af.get_mut(at..at + 6) else {
                return;
            };
            shift_pcr(field, offset);
            stats.clock_references += 1;
            at += 6;
        }
    }
    if flags & 0x04 != 0 {
        at += 1; // splice_countdown
    }
    if flags & 0x02 != 0 {
        let Some(&len) = af.get(at) else {
            return;
        };
        at += 1 + usize::from(len); // transport private data
    }
    if flags & 0x01 == 0 {
        return;
    }
    // Adaptation field extension: length, flags, then ltw (2), piecewise rate (3),
    // seamless splice (5: splice type and DTS_next_AU).
    let Some(&ext_len) = af.get(at) else {
        return;
    };
    let Some(ext) = af.get_mut(at + 1..at + 1 + usize::from(ext_len)) else {
        return;
    };
    let Some(&ext_flags) = ext.first() else {
        return;
    };
    let mut j = 1;
    if ext_flags & 0x80 != 0 {
        j += 2;
    }
    if ext_flags & 0x40 != 0 {
        j += 3;
    }
    if ext_flags & 0x20 != 0
        && let Some(field) = ext.get_mut(j..j + 5)
    {
        shift_timestamp(field, offset);
        stats.clock_references += 1;
    }
}

/// Stream ids whose PES packets have no optional header (ISO/IEC 13818-1
/// 2.4.3.7): program stream map, padding, private stream 2, ECM, EMM,
/// program stream directory, DSM-CC, H.222.1 type E.
fn has_pes_header(stream_id: u8) -> bool {
    !matches!(
        stream_id,
        0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xff | 0xf2 | 0xf8
    )
}

/// The payload of a packet whose payload unit starts here.
fn patch_pes_header(payload: &mut [u8], offset: u64, stats: &mut TsPatchStats) {
    let Some(head) = payload.get(..3) else {
        return;
    };
    if head != [0, 0, 1] {
        return;
    }
    let (Some(&stream_id), Some(&marker), Some(&flags), Some(&header_len)) = (
        payload.get(3),
        payload.get(6),
        payload.get(7),
        payload.get(8),
    ) else {
        if payload.get(3).is_none_or(|&id| has_pes_header(id)) {
            stats.split_pes_headers += 1;
        }
        return;
    };
    if !has_pes_header(stream_id) || marker & 0xc0 != 0x80 {
        return;
    }
    let header_end = 9 + usize::from(header_len);
    // (field length, is a 5-byte PTS/DTS rather than a 6-byte ESCR)
    let fields: &[(usize, bool)] = match (flags >> 6, flags & 0x20 != 0) {
        (2, false) => &[(5, true)],
        (3, false) => &[(5, true), (5, true)],
        (2, true) => &[(5, true), (6, false)],
        (3, true) => &[(5, true), (5, true), (6, false)],
        (_, true) => &[(6, false)],
        _ => &[],
    };
    let mut at = 9;
    for &(len, is_pts) in fields {
        if at + len > header_end {
            return; // the header says it is shorter than its flags: not a header to trust
        }
        let Some(field) = payload.get_mut(at..at + len) else {
            stats.split_pes_headers += 1;
            return;
        };
        if is_pts {
            shift_timestamp(field, offset);
        } else {
            shift_escr(field, offset);
        }
        stats.pes_timestamps += 1;
        at += len;
    }
}

/// A big-endian field of up to 8 bytes (timestamps are 5 or 6); longer
/// fields count by their last 8 bytes.
fn read_be(field: &[u8]) -> u64 {
    let n = field.len().min(8);
    let mut b = [0u8; 8];
    b[8 - n..].copy_from_slice(&field[field.len() - n..]);
    u64::from_be_bytes(b)
}

/// Writes the low bytes of `v` into a big-endian field of up to 8 bytes
/// (longer fields get their last 8 bytes written).
fn write_be(field: &mut [u8], v: u64) {
    let n = field.len().min(8);
    let len = field.len();
    field[len - n..].copy_from_slice(&v.to_be_bytes()[8 - n..]);
}

const MASK_33: u64 = PTS_WRAP - 1;

/// A 5-byte PTS/DTS (4-bit prefix, 33 bits in 3 + 15 + 15 with a marker bit after each).
fn shift_timestamp(field: &mut [u8], offset: u64) {
    const KEEP: u64 = 0xf1_0001_0001; // prefix and marker bits
    let v = read_be(field);
    let t = ((v >> 3) & (7 << 30)) | ((v >> 2) & (0x7fff << 15)) | ((v >> 1) & 0x7fff);
    let t = t.wrapping_add(offset) & MASK_33;
    let v = (v & KEEP) | ((t >> 30) << 33) | (((t >> 15) & 0x7fff) << 17) | ((t & 0x7fff) << 1);
    write_be(field, v);
}

/// A 6-byte PCR or OPCR: 33-bit base, 6 reserved bits, 9-bit extension.
fn shift_pcr(field: &mut [u8], offset: u64) {
    let v = read_be(field);
    let base = ((v >> 15).wrapping_add(offset)) & MASK_33;
    write_be(field, (base << 15) | (v & 0x7fff));
}

/// A 6-byte ESCR: 2 reserved bits, 33-bit base in 3 + 15 + 15 with markers,
/// 9-bit extension, marker.
fn shift_escr(field: &mut [u8], offset: u64) {
    const KEEP: u64 = 0xc400_0400_07ff;
    let v = read_be(field);
    let b = ((v >> 13) & (7 << 30)) | ((v >> 12) & (0x7fff << 15)) | ((v >> 11) & 0x7fff);
    let b = b.wrapping_add(offset) & MASK_33;
    let v = (v & KEEP) | ((b >> 30) << 43) | (((b >> 15) & 0x7fff) << 27) | ((b & 0x7fff) << 11);
    write_be(field, v);
}

#[cfg(test)]
mod tests;
