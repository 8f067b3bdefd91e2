//! Unit tests of the TS restamper over synthesized segments; the values are
//! read back with mpeg2ts-reader, independently of the patcher's own parsing.

use mpeg2ts_reader::packet::Packet;
use mpeg2ts_reader::pes::{PesContents, PesHeader, PtsDts};
use proptest::prelude::*;

use super::lead::ROUNDING_TICKS;
use super::*;
use crate::restamp::BASE_TICKS;
use crate::ticks::Ticks;
use crate::timeline::Schedule;

const VIDEO: u16 = 0x100;
const AUDIO: u16 = 0x101;
const PMT: u16 = 0x1000;

/// A packet: header, then an adaptation field (PCR and/or stuffing) when
/// needed, then `payload` (none: adaptation field only).
fn packet(pid: u16, pusi: bool, cc: u8, pcr_27mhz: Option<u64>, payload: Option<&[u8]>) -> Vec<u8> {
    let body = payload.map_or(0, <[u8]>::len);
    assert!(body <= 184);
    let afc = match (payload.is_some(), pcr_27mhz.is_some() || body < 184) {
        (true, false) => 0x10,
        (true, true) => 0x30,
        (false, _) => 0x20,
    };
    let mut p = vec![
        SYNC,
        ((pid >> 8) as u8 & 0x1f) | if pusi { 0x40 } else { 0 },
        pid as u8,
        afc | (cc & 0x0f),
    ];
    if afc & 0x20 != 0 {
        let af_total = 184 - body; // length byte included
        let mut af = vec![(af_total - 1) as u8];
        if af_total > 1 {
            af.push(if pcr_27mhz.is_some() { 0x10 } else { 0 });
        }
        if let Some(pcr) = pcr_27mhz {
            let (base, ext) = ((pcr / 300) & MASK_33, pcr % 300);
            let v = (base << 15) | (0x3f << 9) | ext;
            af.extend_from_slice(&v.to_be_bytes()[2..]);
        }
        assert!(af.len() <= af_total, "payload too long for a PCR");
        af.resize(af_total, 0xff);
        p.extend(af);
    }
    p.extend_from_slice(payload.unwrap_or_default());
    assert_eq!(p.len(), 188);
    p
}

fn ts_bytes(prefix: u8, v: u64) -> [u8; 5] {
    [
        (prefix << 4) | (((v >> 30) as u8 & 0x07) << 1) | 1,
        (v >> 22) as u8,
        (((v >> 15) as u8) << 1) | 1,
        (v >> 7) as u8,
        ((v as u8) << 1) | 1,
    ]
}

fn pes_header(stream_id: u8, pts: u64, dts: Option<u64>) -> Vec<u8> {
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
    p
}

/// Per-PID CC counters of a synthesized stream.
#[derive(Default)]
struct Ccs(Vec<(u16, u8)>);

impl Ccs {
    fn next(&mut self, pid: u16) -> u8 {
        match self.0.iter_mut().find(|e| e.0 == pid) {
            Some(e) => {
                e.1 = (e.1 + 1) & 0x0f;
                e.1
            }
            None => {
                self.0.push((pid, 0));
                0
            }
        }
    }
    fn current(&self, pid: u16) -> u8 {
        self.0.iter().find(|e| e.0 == pid).map_or(0, |e| e.1)
    }
}

/// A segment of `frames` video frames of `frame_ticks` from PTS `start`
/// (DTS one frame earlier, a PCR 0.7 s before the DTS on each frame), each
/// frame two packets; an audio PES per frame; PAT and PMT first; a null packet
/// and an adaptation-only packet now and then. CCs continue from `ccs`.
/// `preroll`: an audio PES of two packets one frame before the video starts,
/// as a run's first segment has (encoder priming).
fn segment(start: u64, frames: u64, frame_ticks: u64, ccs: &mut Ccs, preroll: bool) -> Vec<u8> {
    let mut buf = packet(
        0,
        true,
        ccs.next(0),
        None,
        Some(&[
            0, 0, 0xb0, 13, 0, 1, 0xc1, 0, 0, 0, 1, 0xf0, 0x00, 0, 0, 0, 0,
        ]),
    );
    buf.extend(packet(
        PMT,
        true,
        ccs.next(PMT),
        None,
        Some(&[
            0, 2, 0xb0, 23, 0, 1, 0xc1, 0, 0, 0xe1, 0, 0xf0, 0, 0x1b, 0xe1, 0, 0xf0, 0, 0x0f, 0xe1,
            1, 0xf0, 0, 0, 0, 0, 0,
        ]),
    ));
    if preroll {
        let mut apes = pes_header(0xc0, start.wrapping_sub(frame_ticks) & MASK_33, None);
        apes.resize(184, 0x44);
        buf.extend(packet(AUDIO, true, ccs.next(AUDIO), None, Some(&apes)));
        buf.extend(packet(
            AUDIO,
            false,
            ccs.next(AUDIO),
            None,
            Some(&[0x44; 100]),
        ));
    }
    for f in 0..frames {
        let pts = (start + f * frame_ticks) % PTS_WRAP;
        let dts = pts.wrapping_sub(frame_ticks) & MASK_33;
        let pcr = (dts.wrapping_sub(63_000) & MASK_33) * 300 + 17;
        let mut pes = pes_header(0xe0, pts, Some(dts));
        pes.resize(150, 0x11);
        buf.extend(packet(VIDEO, true, ccs.next(VIDEO), Some(pcr), Some(&pes)));
        buf.extend(packet(
            VIDEO,
            false,
            ccs.next(VIDEO),
            None,
            Some(&[0x22; 184]),
        ));
        if f % 3 == 1 {
            buf.extend(packet(NULL_PID, false, 5, None, Some(&[0xff; 184])));
            // Adaptation only: the CC repeats the last payload packet's.
            buf.extend(packet(
                VIDEO,
                false,
                ccs.current(VIDEO),
                Some(pcr + 300),
                None,
            ));
        }
        let mut apes = pes_header(0xc0, (pts + 150) % PTS_WRAP, None);
        apes.resize(100, 0x33);
        buf.extend(packet(AUDIO, true, ccs.next(AUDIO), None, Some(&apes)));
    }
    buf
}

/// Timestamps as an independent reader sees them.
#[derive(Debug, Default, PartialEq)]
struct Read {
    /// (pid, pts, dts or pts)
    pes: Vec<(u16, u64, u64)>,
    /// PCR in 27 MHz units.
    pcr: Vec<u64>,
    /// (pid, cc) of packets with payload.
    cc: Vec<(u16, u8)>,
}

fn read(buf: &[u8]) -> Read {
    let mut r = Read::default();
    for chunk in buf.chunks_exact(PACKET) {
        let pk = Packet::new(chunk);
        let pid = u16::from(pk.pid());
        if pid == NULL_PID {
            continue;
        }
        if let Some(af) = pk.adaptation_field()
            && let Ok(pcr) = af.pcr()
        {
            r.pcr.push(u64::from(pcr));
        }
        let Some(payload) = pk.payload() else {
            continue;
        };
        r.cc.push((pid, pk.continuity_counter().count()));
        if pk.payload_unit_start_indicator()
            && pid != 0
            && pid != PMT
            && let Some(h) = PesHeader::from_bytes(payload)
            && let PesContents::Parsed(Some(parsed)) = h.contents()
        {
            match parsed.pts_dts() {
                Ok(PtsDts::PtsOnly(Ok(p))) => r.pes.push((pid, p.value(), p.value())),
                Ok(PtsDts::Both {
                    pts: Ok(p),
                    dts: Ok(d),
                }) => r.pes.push((pid, p.value(), d.value())),
                other => panic!("unreadable timestamps {other:?}"),
            }
        }
    }
    r
}

fn signed(a: u64, b: u64) -> i64 {
    let d = crate::ticks::pts_diff(a, b);
    if d > PTS_WRAP / 2 {
        d as i64 - PTS_WRAP as i64
    } else {
        d as i64
    }
}

#[test]
fn fields_shift_by_the_offset_and_wrap() {
    let mut ccs = Ccs::default();
    let seg = segment(PTS_WRAP - 7_200, 6, 3600, &mut ccs, false);
    for offset in [0, 1, 90_000, PTS_WRAP - 1, PTS_WRAP / 2 + 12_345] {
        let shift = TsShift {
            pts_offset_ticks: offset,
            ..TsShift::default()
        };
        let mut out = seg.clone();
        let stats = apply(&mut out, &shift);
        let (a, b) = (read(&seg), read(&out));
        assert_eq!(a.pes.len(), b.pes.len());
        for (x, y) in a.pes.iter().zip(&b.pes) {
            assert_eq!(y.0, x.0);
            assert_eq!(y.1, (x.1 + offset) % PTS_WRAP);
            assert_eq!(y.2, (x.2 + offset) % PTS_WRAP);
        }
        assert_eq!(a.pcr.len(), b.pcr.len());
        for (x, y) in a.pcr.iter().zip(&b.pcr) {
            assert_eq!(y % 300, x % 300, "extension kept");
            assert_eq!(y / 300, (x / 300 + offset) % PTS_WRAP);
        }
        assert_eq!(a.cc, b.cc);
        if offset != 0 {
            assert_eq!(stats.pes_timestamps, 6 * 3);
            assert_eq!(stats.clock_references, 6 + 2);
        }
        assert_eq!(stats.skipped_bytes, 0);
    }
}

#[test]
fn only_timestamp_bits_and_cc_change() {
    let mut ccs = Ccs::default();
    let seg = segment(1_000, 8, 3600, &mut ccs, false);
    let shift = TsShift {
        pts_offset_ticks: 0x1_5555_5555,
        lead: None,
        cc_deltas: vec![
            CcDelta {
                pid: VIDEO,
                delta: 3,
            },
            CcDelta { pid: 0, delta: 9 },
        ],
    };
    let out = restamped(&seg, &shift);
    for (i, (a, b)) in seg.chunks(PACKET).zip(out.chunks(PACKET)).enumerate() {
        let pid = (u16::from(a[1] & 0x1f) << 8) | u16::from(a[2]);
        assert_eq!(a[..3], b[..3], "packet {i}");
        assert_eq!(a[3] & 0xf0, b[3] & 0xf0, "packet {i}");
        let want_cc = match pid {
            VIDEO => (a[3] + 3) & 0x0f,
            0 => (a[3] + 9) & 0x0f,
            _ => a[3] & 0x0f,
        };
        assert_eq!(b[3] & 0x0f, want_cc, "packet {i} pid {pid:#x}");
        // Every other differing byte is a PCR (bytes 6..12 with an AF) or a
        // PES timestamp, and the non-value bits of those stay.
        let pcr = a[3] & 0x20 != 0 && a[4] >= 7 && a[5] & 0x10 != 0;
        let start = if a[3] & 0x20 != 0 {
            5 + usize::from(a[4])
        } else {
            4
        };
        let pes = a[1] & 0x40 != 0 && pid != 0 && pid != PMT && a[3] & 0x10 != 0;
        for j in 4..PACKET {
            if a[j] == b[j] {
                continue;
            }
            let in_pcr = pcr && (6..12).contains(&j);
            let ts_len = if pes {
                (a[start + 7] >> 6) as usize * 5 - 5
            } else {
                0
            };
            let in_pes = pes && (start + 9..start + 9 + ts_len).contains(&j);
            assert!(in_pcr || in_pes, "packet {i} byte {j} changed");
            if in_pcr && j == 10 {
                assert_eq!(a[j] & 0x7f, b[j] & 0x7f, "reserved bits and extension kept");
            }
            if in_pes {
                let k = (j - start - 9) % 5;
                let keep: u8 = [0xf1, 0, 1, 0, 1][k];
                assert_eq!(a[j] & keep, b[j] & keep, "prefix/marker bits kept");
            }
        }
    }
}

#[test]
fn identity_shift_changes_nothing() {
    let mut ccs = Ccs::default();
    let seg = segment(5, 4, 3600, &mut ccs, false);
    let shift = TsShift::default();
    assert!(shift.is_identity());
    assert_eq!(restamped(&seg, &shift), seg);
    let not = TsShift {
        pts_offset_ticks: PTS_WRAP,
        cc_deltas: vec![CcDelta { pid: 7, delta: 16 }],
        lead: None,
    };
    assert!(not.is_identity());
    assert_eq!(restamped(&seg, &not), seg);
}

#[test]
fn facts_count_payload_packets_only() {
    let mut ccs = Ccs::default();
    let _ = segment(0, 3, 3600, &mut ccs, false); // start CCs mid-way
    let seg = segment(0, 7, 3600, &mut ccs, false);
    let facts = TsSegmentFacts::scan(&seg, None);
    let video = facts.pids().iter().find(|p| p.pid == VIDEO).unwrap();
    // 3 earlier frames: video CC at 5; 7 frames × 2 payload packets follow.
    assert_eq!((video.first_cc, video.last_cc), (6, (6 + 13) % 16));
    assert_eq!(video.advance(), 14);
    assert!(facts.pids().iter().all(|p| p.pid != NULL_PID));
    let pids: Vec<u16> = facts.pids().iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![0, VIDEO, AUDIO, PMT]);
}

#[test]
fn duplicate_packets_keep_their_repeated_cc() {
    let mut ccs = Ccs::default();
    let seg = segment(0, 4, 3600, &mut ccs, false);
    // Duplicate the second video packet (same CC twice in a row).
    let mut dup = seg[..3 * PACKET].to_vec();
    dup.extend_from_slice(&seg[2 * PACKET..3 * PACKET]);
    dup.extend_from_slice(&seg[3 * PACKET..]);
    let facts = TsSegmentFacts::scan(&dup, None);
    assert_eq!(facts, TsSegmentFacts::scan(&seg, None));
    let plan = TsRestampPlan::new(&[0], &[facts], BASE_TICKS).unwrap();
    let out = restamped(&dup, &plan.for_segment(1, 180_000));
    let ccs: Vec<u8> = read(&out)
        .cc
        .iter()
        .filter(|c| c.0 == VIDEO)
        .map(|c| c.1)
        .collect();
    assert_eq!(ccs[0], 8, "loop 1 continues after 8 payload packets");
    assert_eq!(ccs[0], ccs[1], "the duplicate still repeats the CC");
}

#[test]
fn plan_errors() {
    assert_eq!(
        TsRestampPlan::new(&[], &[], 0).unwrap_err(),
        PlanError::Empty
    );
    assert_eq!(
        TsRestampPlan::new(&[1], &[], 0).unwrap_err(),
        PlanError::LengthMismatch {
            start_pts: 1,
            facts: 0
        }
    );
}

#[test]
fn pes_without_room_for_its_timestamps_is_left_alone() {
    // A PES header cut by the end of the packet: 180 bytes of adaptation field
    // leave 4 bytes of payload.
    let pes = pes_header(0xe0, 1234, Some(1000));
    let p = packet(VIDEO, true, 0, None, Some(&pes[..4]));
    let mut out = p.clone();
    let stats = apply(
        &mut out,
        &TsShift {
            pts_offset_ticks: 5,
            ..TsShift::default()
        },
    );
    assert_eq!(out, p);
    assert_eq!(stats.split_pes_headers, 1);
    // Stream ids without a PES header (padding) are never touched.
    let mut pad = pes_header(0xbe, 1234, None);
    pad.resize(184, 0xff);
    let p = packet(VIDEO, true, 0, None, Some(&pad));
    assert_eq!(
        restamped(
            &p,
            &TsShift {
                pts_offset_ticks: 5,
                ..TsShift::default()
            }
        ),
        p
    );
}

#[test]
fn opcr_escr_and_dts_next_au_shift_too() {
    // Adaptation field: flags PCR|OPCR|extension; extension with seamless splice.
    let mut af = vec![0x10 | 0x08 | 0x01];
    let pcr = ((1000u64 << 15) | (0x3f << 9) | 299).to_be_bytes();
    let opcr = ((2000u64 << 15) | (0x3f << 9) | 1).to_be_bytes();
    af.extend_from_slice(&pcr[2..]);
    af.extend_from_slice(&opcr[2..]);
    af.extend_from_slice(&[6, 0x20 | 0x1f]); // extension length, seamless_splice_flag
    af.extend_from_slice(&ts_bytes(0b0101, 3000)); // splice type 5, DTS_next_AU
    // PES with PTS and ESCR.
    let escr_base = 4000u64;
    let escr = (0xc000_0000_0000u64
        | ((escr_base >> 30) << 43)
        | (1 << 42)
        | (((escr_base >> 15) & 0x7fff) << 27)
        | (1 << 26)
        | ((escr_base & 0x7fff) << 11)
        | (1 << 10)
        | (123 << 1)
        | 1)
    .to_be_bytes();
    let mut pes = vec![0, 0, 1, 0xbd, 0, 0, 0x80, 0x80 | 0x20, 11];
    pes.extend_from_slice(&ts_bytes(0b0010, 5000));
    pes.extend_from_slice(&escr[2..]);
    let mut p = vec![SYNC, 0x41, 0x00, 0x30, (183 - pes.len()) as u8];
    p.extend_from_slice(&af);
    p.resize(188 - pes.len(), 0xff);
    p.extend_from_slice(&pes);
    assert_eq!(p.len(), 188);
    let mut out = p.clone();
    let stats = apply(
        &mut out,
        &TsShift {
            pts_offset_ticks: 7,
            ..TsShift::default()
        },
    );
    assert_eq!(stats.clock_references, 3);
    assert_eq!(stats.pes_timestamps, 2);
    let field = |b: &[u8], at: usize, n: usize| read_be(&b[at..at + n]);
    assert_eq!(field(&out, 6, 6) >> 15, 1007);
    assert_eq!(field(&out, 6, 6) & 0x7fff, field(&p, 6, 6) & 0x7fff);
    assert_eq!(field(&out, 12, 6) >> 15, 2007);
    let mut next_au = [0u8; 5];
    next_au.copy_from_slice(&out[20..25]);
    assert_eq!(next_au, ts_bytes(0b0101, 3007));
    let s = 188 - pes.len();
    assert_eq!(out[s + 9..s + 14], ts_bytes(0b0010, 5007));
    let e = field(&out, s + 14, 6);
    let base = (((e >> 43) & 7) << 30) | (((e >> 27) & 0x7fff) << 15) | ((e >> 11) & 0x7fff);
    assert_eq!(base, 4007);
    assert_eq!(
        e & 0xc400_0400_07ff,
        field(&p, s + 14, 6) & 0xc400_0400_07ff
    );
}

#[test]
fn garbage_and_partial_packets_are_left_untouched() {
    let mut ccs = Ccs::default();
    let seg = segment(0, 5, 3600, &mut ccs, false);
    let mut buf = vec![0x47, 1, 2, 3, 0x47];
    buf.extend_from_slice(&seg[..188 * 4]);
    buf.extend_from_slice(&[0u8; 333]);
    buf.extend_from_slice(&seg[188 * 4..]);
    buf.extend_from_slice(&[0x47, 0x41, 0x00, 0x10, 0, 0, 1]);
    let shift = TsShift {
        pts_offset_ticks: 90_000,
        ..TsShift::default()
    };
    let out = restamped(&buf, &shift);
    assert_eq!(out[..5], buf[..5]);
    assert_eq!(
        out[5 + 188 * 4..5 + 188 * 4 + 333],
        buf[5 + 188 * 4..5 + 188 * 4 + 333]
    );
    assert_eq!(out[out.len() - 7..], buf[buf.len() - 7..]);
    let stats = apply(&mut buf.clone(), &shift);
    assert_eq!(stats.skipped_bytes, 5 + 333 + 7);
    let clean = restamped(&seg, &shift);
    assert_eq!(out[5..5 + 188 * 4], clean[..188 * 4]);
    assert_eq!(out[5 + 188 * 4 + 333..out.len() - 7], clean[188 * 4..]);
}

/// One loop of a synthesized track: per segment, frames and whether a source
/// discontinuity (new timestamps, CCs from 0) comes before it.
struct Track {
    segments: Vec<Vec<u8>>,
    start_pts: Vec<u64>,
    durations: Vec<u64>,
    discontinuities: Vec<bool>,
}

fn track(frames: &[u64], disc: &[bool], run_starts: &[u64], frame_ticks: u64) -> Track {
    let mut t = Track {
        segments: vec![],
        start_pts: vec![],
        durations: vec![],
        discontinuities: vec![],
    };
    let mut ccs = Ccs::default();
    let mut pts = run_starts[0];
    for (i, &f) in frames.iter().enumerate() {
        let d = i > 0 && disc[i];
        if d {
            pts = run_starts[i];
            ccs = Ccs::default();
        }
        t.segments
            .push(segment(pts, f, frame_ticks, &mut ccs, i == 0 || d));
        t.start_pts.push(pts);
        t.durations.push(f * frame_ticks);
        t.discontinuities.push(d);
        pts = (pts + f * frame_ticks) % PTS_WRAP;
    }
    t
}

/// The plan of segments in memory, runs placed on `durations`.
fn plan_over(segments: &[Vec<u8>], runs: &[bool], durations: &[u64]) -> TsRestampPlan {
    let segs: Vec<PlanSegment> = runs
        .iter()
        .zip(durations)
        .enumerate()
        .map(|(i, (&d, &duration_ticks))| PlanSegment {
            starts_run: i == 0 || d,
            duration_ticks,
        })
        .collect();
    let read = |i: usize| Ok::<_, ()>(&segments[i]);
    TsRestampPlan::build(&segs, BASE_TICKS, read).unwrap().0
}

fn plan_of(t: &Track) -> TsRestampPlan {
    plan_over(&t.segments, &t.discontinuities, &t.durations)
}

fn pids_cc_continuous(buf: &[u8]) -> Result<(), String> {
    let r = read(buf);
    let mut last: Vec<(u16, u8)> = Vec::new();
    for (pid, cc) in r.cc {
        match last.iter_mut().find(|e| e.0 == pid) {
            Some(e) => {
                if cc != (e.1 + 1) & 0x0f {
                    return Err(format!("pid {pid:#x}: {} then {cc}", e.1));
                }
                e.1 = cc;
            }
            None => last.push((pid, cc)),
        }
    }
    Ok(())
}

#[test]
fn cc_continuous_across_loop_points_and_discontinuities() {
    let t = track(
        &[3, 5, 2, 4],
        &[false, false, true, false],
        &[100, 0, 7_000_000, 0],
        3600,
    );
    let plan = plan_of(&t);
    let s = Schedule::new(
        &t.durations.iter().map(|&d| Ticks(d)).collect::<Vec<_>>(),
        &t.discontinuities,
    );
    let mut raw = Vec::new();
    let mut cat = Vec::new();
    for g in 0..4 * 4 + 3 {
        raw.extend_from_slice(&t.segments[(g % 4) as usize]);
        cat.extend(restamped(
            &t.segments[(g % 4) as usize],
            &plan.for_segment(g, s.start_of(g).0),
        ));
    }
    assert!(pids_cc_continuous(&raw).is_err(), "the source restarts CCs");
    pids_cc_continuous(&cat).unwrap();
    // Loop 0 up to the source discontinuity is served with the source's CCs
    // (less the trimmed preroll, now null packets).
    let first: Vec<u8> = t.segments[..2].concat();
    let mut kept = 0;
    for (a, b) in first.chunks(PACKET).zip(cat.chunks(PACKET)) {
        if (b[1], b[2]) != (0x1f, 0xff) {
            assert_eq!(a[3], b[3]);
            kept += 1;
        }
    }
    let not_null = |p: &&[u8]| (p[1] & 0x1f, p[2]) != (0x1f, 0xff);
    assert_eq!(kept, first.chunks(PACKET).filter(not_null).count() - 2);
}

#[test]
fn unreadable_audio_is_trimmed_by_whole_pes_packets() {
    // The preroll's payload is not made of audio frames: the PES that starts
    // before the video is served as null packets, as a whole.
    let mut ccs = Ccs::default();
    let seg = segment(900_000, 4, 3600, &mut ccs, true);
    let timing = crate::probe::ts::scan(&seg, crate::probe::ts::Depth::Start).unwrap();
    let lead = Arc::new(LeadSplice::build(&seg, &timing, &RunEnd::default()));
    let report = &lead.report().pids;
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!((report[0].pid, report[0].dropped_pes), (AUDIO, 1));
    assert!(!report[0].from_previous_run);
    assert!(
        report[0]
            .fallback
            .as_deref()
            .unwrap()
            .contains("frame header")
    );
    let shift = TsShift {
        lead: Some(lead.clone()),
        ..TsShift::default()
    };
    assert!(!shift.is_identity());
    let mut out = seg.clone();
    let stats = apply(&mut out, &shift);
    assert_eq!(stats.trimmed_packets, 2);
    let (a, b) = (read(&seg), read(&out));
    assert_eq!(a.pes.len(), b.pes.len() + 1);
    assert_eq!(a.pes[0], (AUDIO, 900_000 - 3600, 900_000 - 3600));
    assert_eq!(b.pes[0].0, VIDEO);
    // Packets 2 and 3 (after PAT and PMT) are null packets now; nothing else changed.
    for (i, (x, y)) in seg.chunks(PACKET).zip(out.chunks(PACKET)).enumerate() {
        if i == 2 || i == 3 {
            assert_eq!((u16::from(y[1] & 0x1f) << 8) | u16::from(y[2]), NULL_PID);
            assert_eq!(y[1] & 0x40, 0);
        } else {
            assert_eq!(x, y, "packet {i}");
        }
    }
    // The facts read with the same splice count the audio CCs without them.
    let facts = TsSegmentFacts::scan(&seg, Some(lead.clone()));
    let audio = facts.pids().iter().find(|p| p.pid == AUDIO).unwrap();
    assert_eq!((audio.first_cc, audio.last_cc), (2, 5));
    let untrimmed = TsSegmentFacts::scan(&seg, None);
    let audio = untrimmed.pids().iter().find(|p| p.pid == AUDIO).unwrap();
    assert_eq!((audio.first_cc, audio.last_cc), (0, 5));
    // Other bytes than the splice was built from: served without it.
    let other = segment(900_000, 4, 3600, &mut Ccs::default(), false);
    let mut out = other.clone();
    assert!(apply(&mut out, &shift).lead_mismatch);
    assert_eq!(out, other);
    assert!(TsSegmentFacts::scan(&other, Some(lead)).lead().is_none());
    // A PID whose first PES is not before the start is never trimmed.
    let timing = crate::probe::ts::scan(&other, crate::probe::ts::Depth::Start).unwrap();
    assert!(LeadSplice::build(&other, &timing, &RunEnd::default()).is_empty());
}

#[test]
fn first_segment_starts_at_base() {
    let t = track(&[4, 4], &[false, false], &[PTS_WRAP - 10, 0], 3600);
    let plan = plan_of(&t);
    let out = restamped(&t.segments[0], &plan.for_segment(0, 0));
    let r = read(&out);
    assert_eq!(r.pes[0], (VIDEO, BASE_TICKS, BASE_TICKS - 3600));
    // The earliest timestamp of all, the first PCR, is still above 0.
    assert!(
        r.pcr
            .iter()
            .all(|&p| p / 300 < BASE_TICKS && p / 300 > BASE_TICKS - 100_000)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Across any boundary (next segment, source discontinuity, loop point,
    /// 33-bit wrap of the source or of the timeline), the first DTS of g + 1
    /// follows the last DTS of g by one frame, within one frame, per PID; PCR
    /// moves forward; CCs run on.
    #[test]
    fn timestamps_continuous_between_consecutive_segments(
        frames in proptest::collection::vec(1u64..6, 1..6),
        disc in proptest::collection::vec(any::<bool>(), 6),
        starts in proptest::collection::vec(0u64..PTS_WRAP, 6),
        near_wrap in proptest::collection::vec(0u64..100_000, 6),
        wrap_source in any::<bool>(),
        frame_ticks in proptest::sample::select(vec![3600u64, 3003, 1920, 1800]),
        jitter in proptest::collection::vec(-1i64..=1, 6),
        wraps in 0u64..3,
        before_wrap in 0u64..2_000_000,
        first in 0u64..12,
    ) {
        let n = frames.len();
        let run_starts: Vec<u64> = (0..6)
            .map(|i| if wrap_source { PTS_WRAP - near_wrap[i] } else { starts[i] })
            .collect();
        let t = track(&frames, &disc, &run_starts, frame_ticks);
        let plan = plan_of(&t);
        // The shared schedule comes from another variant: off by up to half a frame.
        let sched: Vec<u64> = t
            .durations
            .iter()
            .zip(&jitter)
            .map(|(&d, &j)| d.saturating_add_signed(j * (frame_ticks / 2) as i64).max(1))
            .collect();
        let s = Schedule::new(
            &sched.iter().map(|&d| Ticks(d)).collect::<Vec<_>>(),
            &t.discontinuities,
        );
        // Start where base + start_of(g) is just below a multiple of 2^33.
        let target = (wraps + 1) * PTS_WRAP - BASE_TICKS - before_wrap;
        let k = target / s.loop_duration().0;
        let g0 = k * n as u64 + first;
        let count = 2 * n as u64 + 2;
        let out: Vec<Read> = (g0..g0 + count)
            .map(|g| {
                let i = (g % n as u64) as usize;
                let shift = plan.for_segment(g, s.start_of(g).0);
                let out = restamped(&t.segments[i], &shift);
                prop_assert!(pids_cc_continuous(&out).is_ok());
                let r = read(&out);
                // The reference start lands exactly on base + start_of(g).
                prop_assert_eq!(r.pes[0].1, (BASE_TICKS + s.start_of(g).0) % PTS_WRAP);
                Ok(r)
            })
            .collect::<Result<_, TestCaseError>>()?;
        let mut cat = Vec::new();
        for g in g0..g0 + count {
            let i = (g % n as u64) as usize;
            cat.extend(restamped(&t.segments[i], &plan.for_segment(g, s.start_of(g).0)));
        }
        prop_assert!(pids_cc_continuous(&cat).is_ok(), "{:?}", pids_cc_continuous(&cat));
        let f = frame_ticks as i64;
        for pair in out.windows(2) {
            for pid in [VIDEO, AUDIO] {
                let last = pair[0].pes.iter().rev().find(|p| p.0 == pid).unwrap().2;
                let next = pair[1].pes.iter().find(|p| p.0 == pid).unwrap().2;
                let gap = signed(next, last);
                prop_assert!((gap - f).abs() <= f, "pid {:#x}: DTS {} then {} (gap {})", pid, last, next, gap);
            }
            let gap = signed(pair[1].pcr[0] / 300, *pair[0].pcr.last().unwrap() / 300);
            prop_assert!(gap > 0 && gap <= 2 * f, "PCR gap {}", gap);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..3000),
        offset in any::<u64>(),
        delta in any::<u8>(),
    ) {
        let shift = TsShift { pts_offset_ticks: offset, cc_deltas: vec![CcDelta { pid: 0x100, delta }], lead: None };
        let mut buf = bytes.clone();
        let stats = apply(&mut buf, &shift);
        prop_assert_eq!(buf.len(), bytes.len());
        prop_assert!(stats.skipped_bytes <= bytes.len());
        let _ = TsSegmentFacts::scan(&bytes, None);
    }

    #[test]
    fn packets_with_random_contents_never_panic(
        seed in proptest::collection::vec(any::<u8>(), 0..4000),
        offset in any::<u64>(),
    ) {
        // Sync bytes every 188 bytes, the rest random: every header path runs.
        let mut buf = Vec::new();
        for chunk in seed.chunks(187) {
            buf.push(SYNC);
            buf.extend_from_slice(chunk);
        }
        let facts = TsSegmentFacts::scan(&buf, None);
        let plan = TsRestampPlan::new(&[offset], std::slice::from_ref(&facts), offset).unwrap();
        let before = buf.clone();
        let stats = apply(&mut buf, &plan.for_segment(offset, offset));
        prop_assert_eq!(buf.len(), before.len());
        prop_assert_eq!(stats.packets, before.len() / 188);
        // Sync bytes, PIDs and flags never change.
        for (a, b) in before.chunks_exact(188).zip(buf.chunks_exact(188)) {
            prop_assert_eq!(a[..3].to_vec(), b[..3].to_vec());
            prop_assert_eq!(a[3] & 0xf0, b[3] & 0xf0);
        }
    }
}

/// An ADTS frame of `len` bytes (header without CRC, one raw data block,
/// AAC LC, mono) at sample rate index `rate_index`.
fn adts(len: usize, rate_index: u8, fill: u8) -> Vec<u8> {
    let mut f = vec![
        0xff,
        0xf1,
        (1 << 6) | (rate_index << 2),
        (1 << 6) | ((len >> 11) as u8 & 3),
        (len >> 3) as u8,
        ((len as u8 & 7) << 5) | 0x1f,
        0xfc,
    ];
    f.resize(len, fill);
    f
}

/// An MPEG-1 Layer II frame: 64 kbit/s, 48 kHz, 192 bytes, 1152 samples.
fn mp2(fill: u8) -> Vec<u8> {
    let mut f = vec![0xff, 0xfd, 0x44, 0x00];
    f.resize(192, fill);
    f
}

/// An AC-3 syncframe: 48 kHz, 64 kbit/s, 256 bytes, 1536 samples.
fn ac3(fill: u8) -> Vec<u8> {
    let mut f = vec![0x0b, 0x77, 0, 0, 0x08, 8 << 3];
    f.resize(256, fill);
    f
}

/// The TS packets of one PES: 184 payload bytes a packet, the last padded
/// with adaptation-field stuffing; the first with an adaptation field
/// setting the random access indicator when `rai`, and a PCR when `pcr`.
fn pes_packets(pid: u16, pes: &[u8], ccs: &mut Ccs, rai: bool, pcr: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = pes;
    let mut first = true;
    while !rest.is_empty() {
        let mut af: Vec<u8> = Vec::new();
        if first && (rai || pcr.is_some()) {
            af.push(if rai { 0x40 } else { 0 } | if pcr.is_some() { 0x10 } else { 0 });
            if let Some(pcr) = pcr {
                let v = ((pcr / 300) << 15) | (0x3f << 9) | (pcr % 300);
                af.extend_from_slice(&v.to_be_bytes()[2..]);
            }
        }
        let room = 184 - if af.is_empty() { 0 } else { 1 + af.len() };
        let take = rest.len().min(room);
        let af_total = 184 - take; // length byte included
        let mut p = vec![
            SYNC,
            (if first { 0x40 } else { 0 }) | ((pid >> 8) as u8 & 0x1f),
            pid as u8,
            if af_total > 0 { 0x30 } else { 0x10 } | ccs.next(pid),
        ];
        if af_total > 0 {
            p.push((af_total - 1) as u8);
            if af_total > 1 {
                if af.is_empty() {
                    af.push(0);
                }
                p.extend_from_slice(&af);
                p.resize(4 + af_total, 0xff);
            }
        }
        p.extend_from_slice(&rest[..take]);
        assert_eq!(p.len(), 188);
        out.extend(p);
        rest = &rest[take..];
        first = false;
    }
    out
}

/// An audio-and-video segment: PAT, PMT, then audio PES `j` before video
/// frame `j`. Audio PES `j` holds `pes[j]` (frames as bytes) and starts at
/// `audio_start` plus the samples before it at `rate` Hz; video frames of
/// 3600 ticks from `video_start`.
struct Av {
    video_start: u64,
    video_frames: u64,
    audio_start: u64,
    rate: u64,
    /// Frames (bytes, samples) of each audio PES.
    pes: Vec<Vec<(Vec<u8>, u64)>>,
    rai: bool,
    /// A PCR on the first audio packet.
    audio_pcr: bool,
    /// The first PES's payload starts with this garbage.
    garbage: Vec<u8>,
}

impl Av {
    fn aac(video_start: u64, audio_start: u64, frames_per_pes: &[usize], rate_index: u8) -> Av {
        let rate = [
            96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000,
        ][usize::from(rate_index)];
        let mut n = 0u8;
        let pes = frames_per_pes
            .iter()
            .map(|&k| {
                (0..k)
                    .map(|_| {
                        n = n.wrapping_add(1);
                        (adts(100 + usize::from(n % 7) * 13, rate_index, n), 1024)
                    })
                    .collect()
            })
            .collect();
        Av {
            video_start,
            video_frames: 8,
            audio_start,
            rate,
            pes,
            rai: false,
            audio_pcr: false,
            garbage: Vec::new(),
        }
    }

    /// PTS of every frame, in order, as the source has them: each PES's PTS
    /// plus the rounded duration of the frames before it in that PES.
    fn frame_pts(&self) -> Vec<u64> {
        let mut out = Vec::new();
        let mut samples = 0;
        for pes in &self.pes {
            let pts = self.audio_start + (samples * 90_000 + self.rate / 2) / self.rate;
            let mut inner = 0;
            for (_, s) in pes {
                out.push((pts + (inner * 90_000 + self.rate / 2) / self.rate) % PTS_WRAP);
                inner += s;
            }
            samples += inner;
        }
        out
    }

    fn bytes(&self) -> Vec<u8> {
        let mut ccs = Ccs::default();
        let mut buf = segment(0, 0, 3600, &mut ccs, false); // PAT and PMT
        let mut samples = 0;
        let mut video = 0;
        for (j, pes) in self.pes.iter().enumerate() {
            let pts =
                (self.audio_start + (samples * 90_000 + self.rate / 2) / self.rate) % PTS_WRAP;
            let mut bytes = pes_header(0xc0, pts, None);
            let es: Vec<u8> = pes.iter().flat_map(|f| f.0.clone()).collect();
            if j == 0 {
                bytes.extend_from_slice(&self.garbage);
            }
            bytes.extend_from_slice(&es);
            let len = (bytes.len() - 6) as u16;
            bytes[4..6].copy_from_slice(&len.to_be_bytes());
            let pcr = (j == 0 && self.audio_pcr).then_some(pts * 300);
            buf.extend(pes_packets(AUDIO, &bytes, &mut ccs, self.rai, pcr));
            samples += pes.iter().map(|f| f.1).sum::<u64>();
            if video < self.video_frames {
                buf.extend(self.video_frame(video, &mut ccs));
                video += 1;
            }
        }
        while video < self.video_frames {
            buf.extend(self.video_frame(video, &mut ccs));
            video += 1;
        }
        buf
    }

    fn video_frame(&self, f: u64, ccs: &mut Ccs) -> Vec<u8> {
        let pts = (self.video_start + f * 3600) % PTS_WRAP;
        let dts = pts.wrapping_sub(3600) & MASK_33;
        let pcr = (dts.wrapping_sub(63_000) & MASK_33) * 300;
        let mut pes = pes_header(0xe0, pts, Some(dts));
        pes.resize(150, 0x11);
        let mut out = packet(VIDEO, true, ccs.next(VIDEO), Some(pcr), Some(&pes));
        out.extend(packet(
            VIDEO,
            false,
            ccs.next(VIDEO),
            None,
            Some(&[0x22; 184]),
        ));
        out
    }
}

/// The audio PES packets of a segment as an independent reader sees them:
/// (PTS, elementary stream bytes), PES by PES.
fn audio_pes(buf: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    for chunk in buf.chunks_exact(PACKET) {
        let pk = Packet::new(chunk);
        if u16::from(pk.pid()) != AUDIO {
            continue;
        }
        let Some(payload) = pk.payload() else {
            continue;
        };
        if pk.payload_unit_start_indicator() {
            let h = PesHeader::from_bytes(payload).expect("a PES header");
            let PesContents::Parsed(Some(parsed)) = h.contents() else {
                panic!("unparsed PES header");
            };
            let Ok(PtsDts::PtsOnly(Ok(pts))) = parsed.pts_dts() else {
                panic!("no PTS");
            };
            out.push((pts.value(), parsed.payload().to_vec()));
        } else {
            out.last_mut()
                .expect("a PES start")
                .1
                .extend_from_slice(payload);
        }
    }
    out
}

fn timing_of(buf: &[u8]) -> crate::probe::ts::TsTiming {
    crate::probe::ts::scan(buf, crate::probe::ts::Depth::Start).unwrap()
}

/// A previous run whose audio of PID `AUDIO` ends at `trim` on the clock of
/// a segment whose video starts at `video_start`.
fn ending_at(trim: u64, video_start: u64) -> RunEnd {
    // Its video started at 0 and lasted 2 s: its end is this run's start.
    RunEnd::new(
        0,
        180_000,
        vec![(AUDIO, (trim + 180_000 + PTS_WRAP - video_start) % PTS_WRAP)],
    )
}

#[test]
fn the_straddling_aac_pes_is_cut_to_the_frame() {
    let av = Av {
        rai: true,
        ..Av::aac(900_000, 900_000 - 1920, &[8, 8, 8], 3)
    };
    let seg = av.bytes();
    // The previous run's audio ends 480 ticks (10 ms) into this run's video.
    let lead = LeadSplice::build(&seg, &timing_of(&seg), &ending_at(900_480, 900_000));
    let t = &lead.report().pids[0];
    assert_eq!(
        (t.pid, t.trim_pts, t.from_previous_run),
        (AUDIO, 900_480, true)
    );
    // Frames at -1920 and 0 overlap the previous run; the one at 1920 is kept.
    assert_eq!((t.dropped_pes, t.dropped_frames), (0, 2));
    assert_eq!(t.rewritten_pts, Some(901_920));
    assert_eq!(t.fallback, None);
    let shift = TsShift {
        lead: Some(Arc::new(lead)),
        ..TsShift::default()
    };
    let mut out = seg.clone();
    let stats = apply(&mut out, &shift);
    assert_eq!(out.len(), seg.len());
    let (before, after) = (audio_pes(&seg), audio_pes(&out));
    assert_eq!(after.len(), before.len());
    assert_eq!(after[0].0, 901_920);
    let frames: Vec<u8> = av.pes[0][2..].iter().flat_map(|f| f.0.clone()).collect();
    assert_eq!(after[0].1, frames);
    assert_eq!(after[1..], before[1..]);
    // 14 + 6 frames of the 8 take fewer packets: the rest are null packets.
    let new_len = 14 + frames.len() + 2; // + the random access flag's bytes
    assert_eq!(stats.rewritten_packets, new_len.div_ceil(184));
    let old_len = 14 + av.pes[0].iter().map(|f| f.0.len()).sum::<usize>() + 2;
    assert_eq!(
        stats.trimmed_packets,
        old_len.div_ceil(184) - new_len.div_ceil(184)
    );
    // The random access indicator is kept; the CCs lead up to the next PES.
    let first = out
        .chunks(PACKET)
        .find(|p| (u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])) == AUDIO)
        .unwrap();
    assert_eq!(
        (first[1] & 0x40, first[3] & 0x20, first[5]),
        (0x40, 0x20, 0x40)
    );
    pids_cc_continuous(&out).unwrap();
    assert_eq!(
        read(&out).cc.iter().rfind(|c| c.0 == AUDIO),
        read(&seg).cc.iter().rfind(|c| c.0 == AUDIO)
    );
    // Video, PAT and PMT untouched.
    for (a, b) in seg.chunks(PACKET).zip(out.chunks(PACKET)) {
        if (u16::from(a[1] & 0x1f) << 8 | u16::from(a[2])) != AUDIO {
            assert_eq!(a, b);
        }
    }
}

#[test]
fn a_frame_starting_at_the_trim_point_within_rounding_is_kept() {
    let av = Av::aac(900_000, 900_000 - 1920, &[8, 8], 3);
    let seg = av.bytes();
    let cut = |trim: u64| {
        let lead = LeadSplice::build(&seg, &timing_of(&seg), &ending_at(trim, 900_000));
        let t = lead.report().pids[0].clone();
        (t.dropped_frames, t.rewritten_pts)
    };
    assert_eq!(cut(900_000 + ROUNDING_TICKS), (1, Some(900_000)));
    assert_eq!(cut(900_000 + ROUNDING_TICKS + 1), (2, Some(901_920)));
    // Beyond the first PES: it goes whole, the second is cut.
    let lead = LeadSplice::build(
        &seg,
        &timing_of(&seg),
        &ending_at(900_000 + 8 * 1920, 900_000),
    );
    let t = &lead.report().pids[0];
    assert_eq!((t.dropped_pes, t.dropped_frames), (1, 9));
    assert_eq!(t.rewritten_pts, Some(900_000 + 8 * 1920));
    // Before the first frame: nothing to do.
    assert!(
        LeadSplice::build(&seg, &timing_of(&seg), &ending_at(900_000 - 1920, 900_000)).is_empty()
    );
}

#[test]
fn frame_times_at_44_1_khz_are_rounded_per_pes() {
    // 1024 samples at 44.1 kHz: 2089.8 ticks.
    let av = Av::aac(900_000, 900_000 - 2090, &[10, 10], 4);
    let seg = av.bytes();
    let pts = av.frame_pts();
    for (k, &at) in pts.iter().enumerate().take(12).skip(1) {
        let lead = LeadSplice::build(&seg, &timing_of(&seg), &ending_at(at, 900_000));
        let t = &lead.report().pids[0];
        assert_eq!(t.dropped_frames, k, "cut at frame {k}");
        // At the second PES's first frame, the first PES goes whole.
        let rewritten = (k != 10).then_some(at);
        assert_eq!(
            (t.dropped_pes, t.rewritten_pts),
            (usize::from(k >= 10), rewritten)
        );
        let out = restamped(
            &seg,
            &TsShift {
                lead: Some(Arc::new(lead.clone())),
                ..TsShift::default()
            },
        );
        let served = audio_pes(&out);
        let all: Vec<u8> = av
            .pes
            .iter()
            .flatten()
            .skip(k)
            .flat_map(|f| f.0.clone())
            .collect();
        assert_eq!(
            served.iter().flat_map(|p| p.1.clone()).collect::<Vec<_>>(),
            all
        );
        assert_eq!(served[0].0, pts[k]);
    }
}

#[test]
fn mpeg_audio_and_ac3_pes_are_cut_to_the_frame() {
    for (frame, samples) in [(mp2 as fn(u8) -> Vec<u8>, 1152u64), (ac3, 1536)] {
        let ticks = samples * 90_000 / 48_000;
        let mut av = Av::aac(900_000, 900_000 - ticks, &[], 3);
        av.pes = (0..3)
            .map(|j| (0..5).map(|i| (frame(j * 5 + i), samples)).collect())
            .collect();
        let seg = av.bytes();
        let lead = LeadSplice::build(
            &seg,
            &timing_of(&seg),
            &ending_at(900_000 + ticks / 2, 900_000),
        );
        let t = &lead.report().pids[0];
        assert_eq!((t.dropped_frames, t.fallback.as_deref()), (2, None));
        assert_eq!(t.rewritten_pts, Some(900_000 + ticks));
        let out = restamped(
            &seg,
            &TsShift {
                lead: Some(Arc::new(lead.clone())),
                ..TsShift::default()
            },
        );
        let served = audio_pes(&out);
        assert_eq!(served[0].0, 900_000 + ticks);
        assert_eq!(
            served[0].1,
            av.pes[0][2..]
                .iter()
                .flat_map(|f| f.0.clone())
                .collect::<Vec<_>>()
        );
        pids_cc_continuous(&out).unwrap();
    }
}

#[test]
fn unreadable_frames_fall_back_to_whole_pes_packets() {
    let trim = ending_at(900_480, 900_000);
    // The PES does not start with a frame.
    let av = Av {
        garbage: vec![1, 2, 3],
        ..Av::aac(900_000, 900_000 - 1920, &[8, 8], 3)
    };
    let seg = av.bytes();
    let lead = LeadSplice::build(&seg, &timing_of(&seg), &trim);
    let t = &lead.report().pids[0];
    assert_eq!((t.dropped_pes, t.rewritten_pts), (1, None));
    assert!(t.fallback.as_deref().unwrap().contains("does not start"));
    assert_eq!(lead.report().fallbacks().count(), 1);
    // A PCR on the audio PID: a rewrite would lose it.
    let av = Av {
        audio_pcr: true,
        ..Av::aac(900_000, 900_000 - 1920, &[8, 8], 3)
    };
    let seg = av.bytes();
    let lead = LeadSplice::build(&seg, &timing_of(&seg), &trim);
    let t = &lead.report().pids[0];
    assert_eq!((t.dropped_pes, t.rewritten_pts), (1, None));
    assert!(t.fallback.as_deref().unwrap().contains("PCR"));
    // The previous run's audio ends 2 s into this run: not trusted, the
    // reference start is the trim point (cut to the frame there).
    let av = Av::aac(900_000, 900_000 - 1920, &[8, 8], 3);
    let seg = av.bytes();
    let lead = LeadSplice::build(&seg, &timing_of(&seg), &ending_at(1_080_000, 900_000));
    let t = &lead.report().pids[0];
    assert_eq!((t.trim_pts, t.from_previous_run), (900_000, false));
    assert_eq!((t.dropped_frames, t.rewritten_pts), (1, Some(900_000)));
    assert!(t.fallback.as_deref().unwrap().contains("2.000 s"));
    // No previous run known: cut at the reference start, no fallback.
    let lead = LeadSplice::build(&seg, &timing_of(&seg), &RunEnd::default());
    let t = &lead.report().pids[0];
    assert_eq!(
        (t.trim_pts, t.dropped_frames, t.fallback.as_deref()),
        (900_000, 1, None)
    );
}

#[test]
fn run_end_is_after_the_last_frame_of_the_last_pes() {
    let av = Av::aac(900_000, 900_000 - 1920, &[8, 8, 3], 3);
    let seg = av.bytes();
    let end = RunEnd::scan(&seg, &timing_of(&seg), 30 * 3600);
    assert_eq!(end.audio_end(AUDIO), Some(900_000 - 1920 + 19 * 1920));
    assert_eq!(end.audio_end(VIDEO), None);
    // Unreadable audio has no end.
    let av = Av {
        garbage: vec![0],
        ..Av::aac(900_000, 900_000, &[3], 3)
    };
    let seg = av.bytes();
    assert_eq!(
        RunEnd::scan(&seg, &timing_of(&seg), 1).audio_end(AUDIO),
        None
    );
}

#[test]
fn a_plan_cuts_each_run_where_the_previous_one_ends() {
    // Two runs of 2 s, each with 96 audio frames of 1920 ticks from one
    // frame before its video: each run's audio ends 96 × 1920 − 1920 −
    // 180 000 = 2400 ticks after its video, where the other run's is cut.
    let a = Av::aac(900_000, 900_000 - 1920, &[8; 12], 3);
    let b = Av::aac(5_000_000, 5_000_000 - 1920, &[8; 12], 3);
    let segs = vec![a.bytes(), b.bytes()];
    let plan = plan_over(&segs, &[true, true], &[180_000, 180_000]);
    let leads: Vec<(usize, &LeadSplice)> = plan.leads().collect();
    assert_eq!(leads.len(), 2);
    for (i, lead) in leads {
        let t = &lead.report().pids[0];
        let start = [900_000, 5_000_000][i];
        assert_eq!(
            (t.trim_pts, t.from_previous_run),
            (start + 2400, true),
            "{i}"
        );
        assert_eq!(t.dropped_frames, 3, "{i}");
        assert_eq!(t.rewritten_pts, Some(start + 3840), "{i}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever the frames, the sample rate, the lead and the trim point:
    /// the served audio is the source's less the frames that start before
    /// the trim point (all of them and no more), the first kept frame's PTS
    /// is its source PTS, every other packet is untouched, CCs run on and the
    /// length stays.
    #[test]
    fn a_lead_splice_drops_exactly_the_frames_before_the_trim_point(
        frames in proptest::collection::vec(1usize..14, 1..5),
        sizes in proptest::collection::vec(7usize..400, 60),
        rate_index in proptest::sample::select(vec![3u8, 4, 6, 11]),
        lead_frames in 0u64..4,
        trim_frames in -3i64..8,
        trim_extra in 0u64..3000,
        near_wrap in any::<bool>(),
        rai in any::<bool>(),
    ) {
        let rate = [96000u64, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000][usize::from(rate_index)];
        let frame_ticks = 1024 * 90_000 / rate;
        let video_start = if near_wrap { PTS_WRAP - 5000 } else { 900_000 };
        let audio_start = (video_start + PTS_WRAP - lead_frames * frame_ticks) % PTS_WRAP;
        let mut av = Av::aac(video_start, audio_start, &frames, rate_index);
        av.rai = rai;
        let mut n = 0;
        for pes in &mut av.pes {
            for f in pes.iter_mut() {
                f.0 = adts(sizes[n % sizes.len()], rate_index, n as u8);
                n += 1;
            }
        }
        let seg = av.bytes();
        let trim = (video_start as i64 + trim_frames * frame_ticks as i64 + trim_extra as i64)
            .rem_euclid(PTS_WRAP as i64) as u64;
        let lead = LeadSplice::build(&seg, &timing_of(&seg), &ending_at(trim, video_start));
        let pts = av.frame_pts();
        let before = |t: u64| {
            let d = crate::ticks::pts_diff(trim, t);
            d > ROUNDING_TICKS && d < PTS_WRAP / 2
        };
        let dropped = pts.iter().take_while(|&&t| before(t)).count();
        let out = restamped(&seg, &TsShift { lead: Some(Arc::new(lead.clone())), ..TsShift::default() });
        prop_assert_eq!(out.len(), seg.len());
        let served = audio_pes(&out);
        let es: Vec<u8> = served.iter().flat_map(|p| p.1.clone()).collect();
        let want: Vec<u8> = av.pes.iter().flatten().skip(dropped).flat_map(|f| f.0.clone()).collect();
        prop_assert_eq!(es, want);
        if dropped < pts.len() {
            prop_assert_eq!(served[0].0, pts[dropped]);
        } else {
            prop_assert!(served.is_empty());
        }
        prop_assert!(lead.report().fallbacks().next().is_none());
        prop_assert!(pids_cc_continuous(&out).is_ok(), "{:?}", pids_cc_continuous(&out));
        for (a, b) in seg.chunks(PACKET).zip(out.chunks(PACKET)) {
            if (u16::from(a[1] & 0x1f) << 8 | u16::from(a[2])) != AUDIO {
                prop_assert_eq!(a, b);
            }
        }
    }

    /// Damaged audio or headers: building and applying a splice never
    /// panics, keeps the length, and replaces only packets of other PIDs than
    /// the reference.
    #[test]
    fn damaged_run_starts_never_panic(
        frames in proptest::collection::vec(1usize..10, 1..4),
        damage in proptest::collection::vec((0usize..3000, any::<u8>()), 1..40),
        trim in 0u64..40_000,
        cut in 0usize..3000,
    ) {
        let av = Av::aac(900_000, 900_000 - 1920, &frames, 3);
        let mut seg = av.bytes();
        for (at, v) in damage {
            if let Some(b) = seg.get_mut(at) {
                *b = v;
            }
        }
        let previous = RunEnd::scan(&seg, &timing_of(&av.bytes()), trim);
        for seg in [&seg[..], &seg[..cut.min(seg.len())]] {
            let Ok(timing) = crate::probe::ts::scan(seg, crate::probe::ts::Depth::Start) else {
                continue;
            };
            for end in [&previous, &ending_at(900_000 + trim, 900_000)] {
                let lead = Arc::new(LeadSplice::build(seg, &timing, end));
                let _ = TsSegmentFacts::scan(seg, Some(lead.clone()));
                let shift = TsShift {
                    pts_offset_ticks: 12_345,
                    lead: Some(lead),
                    ..TsShift::default()
                };
                let out = restamped(seg, &shift);
                prop_assert_eq!(out.len(), seg.len());
                for (a, b) in seg.chunks(PACKET).zip(out.chunks(PACKET)) {
                    let pid = |p: &[u8]| u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]);
                    if a.len() == PACKET && a[0] == SYNC && pid(a) == timing.pid {
                        prop_assert_eq!(pid(b), timing.pid);
                    }
                }
            }
        }
    }
}

#[test]
fn packet_aligned_slices_restamp_like_the_whole() {
    // What a part cut from a segment may rely on (see `TsShift`).
    let t = track(&[6, 6], &[false, false], &[900_000, 0], 3600);
    let plan = plan_of(&t);
    let shift = plan.for_segment(2 * 2 + 1, 5 * 21_600);
    assert!(shift.lead.is_none() && !shift.cc_deltas.is_empty());
    let seg = &t.segments[1];
    let whole = restamped(seg, &shift);
    let packets = seg.len() / PACKET;
    for (a, b) in [
        (0, 1),
        (0, packets / 2),
        (3, packets),
        (packets / 3, packets / 3 + 2),
    ] {
        let part = &seg[a * PACKET..b * PACKET];
        assert_eq!(
            restamped(part, &shift),
            whole[a * PACKET..b * PACKET],
            "{a}..{b}"
        );
    }
    // A run's first segment: its splice applies to the whole segment only;
    // a slice of the whole's output is what a part carries.
    let shift = plan.for_segment(2 * 2, 4 * 21_600);
    let lead = shift.lead.clone().expect("a run start");
    let seg = &t.segments[0];
    let whole = restamped(seg, &shift);
    assert_eq!(whole.len(), seg.len());
    assert!(!lead.fits(&seg[..PACKET * 4]));
    let mut part = seg[..PACKET * 4].to_vec();
    assert!(apply(&mut part, &shift).lead_mismatch);
}
