use super::*;
use crate::ll::carve;

fn fixture(path: &str) -> Vec<u8> {
    let full = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/");
    std::fs::read(format!("{full}{path}")).unwrap()
}

fn pid_at(buf: &[u8], packet: usize) -> u16 {
    let p = &buf[packet * PACKET..];
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// Every part of `segment` for `target`, checked to hold, once their added
/// tables are left out, every whole packet of the segment once, each PID's
/// in order, and every PID's data after the first part starting with a unit.
fn parts_tile(segment: &[u8], target: Ticks) -> Vec<Vec<u8>> {
    let frames = ts_frames(segment).unwrap();
    let total = Ticks(frames.frames.last().unwrap().at.0 + 3600);
    let parts = carve::carve(&frames, total, target).unwrap();
    let cut: Vec<Vec<u8>> = parts
        .iter()
        .map(|p| ts_part(segment, &frames, p).unwrap())
        .collect();
    let Cut::Ts(ts) = &frames.cut else {
        unreachable!()
    };
    let by_pid = |packets: &mut dyn Iterator<Item = &[u8]>| {
        let mut m: std::collections::BTreeMap<u16, Vec<Vec<u8>>> = Default::default();
        for pk in packets {
            m.entry(pid_at(pk, 0)).or_default().push(pk.to_vec());
        }
        m
    };
    let mut rest: Vec<&[u8]> = Vec::new();
    for (part, bytes) in parts.iter().zip(&cut) {
        let from = ts.starts[part.frames().start];
        let added = if from > 0 && !ts.tables_at(from) {
            let count = |pat| ts.table_before(pat, from).map_or(0, |t| t.packets.len());
            count(true) + count(false)
        } else {
            0
        };
        let own: Vec<&[u8]> = bytes.chunks_exact(PACKET).skip(added).collect();
        if from > 0 {
            let mut seen = Vec::new();
            for pk in &own {
                let id = pid_at(pk, 0);
                if !seen.contains(&id) {
                    seen.push(id);
                    assert!(pk[1] & 0x40 != 0, "PID {id:#x} starts mid-unit");
                }
            }
        }
        rest.extend(own);
    }
    let whole = (0..)
        .map_while(|i| next_packet(segment, i * PACKET).filter(|&at| at == i * PACKET))
        .map(|at| &segment[at..at + PACKET]);
    assert_eq!(
        by_pid(&mut rest.into_iter()),
        by_pid(&mut whole.into_iter())
    );
    cut
}

#[test]
fn picture_types() {
    let aud_sps_pps_idr = [
        0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x4d, 0, 0, 1, 0x68, 0xee, 0, 0, 1, 0x65, 0x88,
    ];
    assert_eq!(
        first_picture_irap(&aud_sps_pps_idr, 0, Codec::H264),
        Some(true)
    );
    let non_idr = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x41, 0x9a];
    assert_eq!(first_picture_irap(&non_idr, 0, Codec::H264), Some(false));
    assert_eq!(
        first_picture_irap(&[0, 0, 1, 0x67, 0x4d], 0, Codec::H264),
        None
    );
    // H.265: AUD (35), then IDR_W_RADL (19), CRA (21) or TRAIL_R (1).
    for (t, irap) in [(19u8, true), (21, true), (1, false)] {
        let es = [0, 0, 0, 1, 35 << 1, 1, 0x50, 0, 0, 1, t << 1, 1];
        assert_eq!(first_picture_irap(&es, 0, Codec::H265), Some(irap), "{t}");
    }
    assert_eq!(
        first_picture_irap(&aud_sps_pps_idr, 0, Codec::OtherVideo),
        None
    );
}

#[test]
fn a_start_code_split_across_packets_is_found() {
    let mut scan = NalScan {
        frame: 0,
        es: Vec::new(),
    };
    assert_eq!(
        scan.push(&[0, 0, 0, 1, 0x09, 0xf0, 0, 0], Codec::H264),
        None
    );
    assert_eq!(scan.push(&[1, 0x65, 0x88], Codec::H264), Some(true));
    // Nothing found within the scan limit: not independent.
    let mut scan = NalScan {
        frame: 0,
        es: Vec::new(),
    };
    let filler = vec![0xffu8; 4096];
    let decided = (0..=MAX_NAL_SCAN / 4096).find_map(|_| scan.push(&filler, Codec::H264));
    assert_eq!(decided, Some(false));
}

#[test]
fn ffmpeg_segment_one_keyframe_two_seconds() {
    let seg = fixture("av25/seg_001.ts");
    let frames = ts_frames(&seg).unwrap();
    assert_eq!(frames.frames.len(), 50);
    assert!(frames.is_ts() && !frames.is_fmp4());
    let independent: Vec<usize> = (0..50).filter(|&i| frames.frames[i].independent).collect();
    assert_eq!(independent, [0]);
    assert!(
        frames
            .frames
            .iter()
            .enumerate()
            .all(|(i, f)| f.at == Ticks(i as u64 * 3600))
    );
    let parts = parts_tile(&seg, Ticks::from_ms(500));
    // ffmpeg writes SDT, PAT and PMT at the start only: the first part has
    // them, every other gets PAT and PMT added.
    assert_eq!([pid_at(&parts[0], 0), pid_at(&parts[0], 1)], [0x11, 0]);
    for p in &parts[1..] {
        assert_eq!(
            [pid_at(p, 0), pid_at(p, 1), pid_at(p, 2)],
            [0, 0x1000, 0x100]
        );
    }
}

#[test]
fn a_pes_straddling_a_cut_stays_whole() {
    // ffmpeg writes each PES's packets in a row; interleave one audio PES
    // with the video PES that starts a part, as packet-level muxers do.
    let seg = fixture("av25/seg_001.ts");
    let frames = ts_frames(&seg).unwrap();
    let parts = carve::carve(&frames, Ticks(180_000), Ticks::from_ms(500)).unwrap();
    let Cut::Ts(ts) = &frames.cut else {
        unreachable!()
    };
    let straddled = parts[1..].iter().find_map(|part| {
        let cut = ts.starts[part.frames().start] as usize / PACKET;
        let last = (0..cut).rev().find(|&i| pid_at(&seg, i) == 0x101)?;
        // Its last packet continues a PES: move it after the video's start.
        (seg[last * PACKET + 1] & 0x40 == 0).then(|| {
            let mut packets: Vec<&[u8]> = seg.chunks(PACKET).collect();
            let moved = packets.remove(last);
            packets.insert(cut, moved);
            packets.concat()
        })
    });
    let straddled = straddled.expect("an audio PES of several packets before a cut");
    assert_ne!(straddled, seg);
    parts_tile(&straddled, Ticks::from_ms(500));
}

#[test]
fn keyframes_found_without_random_access_indicator() {
    // Shaka Packager sets no random_access_indicator: the IDR NAL tells.
    let seg = fixture("pkg/shaka_ts/video/seg_002.ts");
    let frames = ts_frames(&seg).unwrap();
    assert!(frames.frames[0].independent);
    assert_eq!(frames.frames.iter().filter(|f| f.independent).count(), 1);
    // B-frames, keyframes at 1.2 s, 3.0 s, 3.8 s…: a segment from each.
    let seg = fixture("bframes/seg_001.ts");
    let frames = ts_frames(&seg).unwrap();
    let keys: Vec<u64> = frames
        .frames
        .iter()
        .filter(|f| f.independent)
        .map(|f| f.at.0)
        .collect();
    assert_eq!(keys, [0], "one keyframe, at the segment's start");
}

#[test]
fn repeated_tables_before_a_keyframe_start_its_part() {
    // GStreamer repeats PAT and PMT before video PES: a part moves back over
    // them, and needs none added.
    let seg = fixture("pkg/gst_hlssink2/v/seg_000.ts");
    let frames = ts_frames(&seg).unwrap();
    let Cut::Ts(ts) = &frames.cut else {
        unreachable!()
    };
    assert!(ts.tables.len() > 4);
    let from_tables = (1..frames.frames.len())
        .filter(|&i| ts.tables_at(ts.starts[i]))
        .count();
    assert!(from_tables > 0);
    for part in parts_tile(&seg, Ticks::from_ms(200)) {
        assert_eq!(pid_at(&part, 0), 0);
        assert_eq!(pid_at(&part, 1), 0x20);
        // Never two PATs in a row: tables are added only when missing.
        assert_ne!(pid_at(&part, 2), 0);
    }
}

#[test]
fn audio_lead_each_pes_a_frame() {
    let seg = fixture("audio_only/seg_001.ts");
    let frames = ts_frames(&seg).unwrap();
    assert_eq!(frames.frames.len(), 6);
    assert!(frames.frames.iter().all(|f| f.independent));
    parts_tile(&seg, Ticks::from_ms(500));
}

#[test]
fn a_cut_short_segment_still_tiles() {
    let seg = fixture("truncated/seg_002.ts");
    assert_ne!(seg.len() % PACKET, 0);
    parts_tile(&seg, Ticks::from_ms(500));
}

#[test]
fn bad_input_is_an_error() {
    assert!(matches!(ts_frames(&[]), Err(LlError::Malformed(_))));
    assert!(matches!(
        ts_frames(b"not a transport stream at all"),
        Err(LlError::Malformed(_))
    ));
    assert_eq!(
        ts_frames(&fixture("not_ts/seg_003.ts")),
        Err(LlError::Malformed("not MPEG-TS: no packet sync".into()))
    );
    let seg = fixture("av25/seg_001.ts");
    // Tables only, no PES.
    let tables: Vec<u8> = seg[..3 * PACKET].to_vec();
    assert_eq!(ts_frames(&tables), Err(LlError::NoLeadStream));
    // PES without PAT and PMT.
    assert_eq!(ts_frames(&seg[3 * PACKET..]), Err(LlError::NoPsi));
    // A timestamp going back.
    let glitch = fixture("glitch/seg_004.ts");
    assert!(matches!(ts_frames(&glitch), Err(LlError::Backwards { .. })));
}

#[test]
fn a_part_of_other_bytes_is_refused() {
    let seg = fixture("av25/seg_001.ts");
    let frames = ts_frames(&seg).unwrap();
    let parts = carve::carve(&frames, Ticks(180_000), Ticks::from_ms(500)).unwrap();
    assert!(matches!(
        ts_part(&seg[..seg.len() - PACKET], &frames, &parts[1]),
        Err(LlError::Mismatch(_))
    ));
    // A part of a longer segment.
    let long = Part {
        end: 60,
        ..parts[0].clone()
    };
    assert!(matches!(
        ts_part(&seg, &frames, &long),
        Err(LlError::Mismatch(_))
    ));
    let synthetic = SegmentFrames::from_frames(frames.frames.clone());
    assert!(matches!(
        ts_part(&seg, &synthetic, &parts[0]),
        Err(LlError::Mismatch(_))
    ));
}

#[test]
fn damaged_segments_never_panic() {
    let seg = fixture("av25/seg_001.ts");
    let mut state = 0x2545_f491_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..400 {
        let mut bytes = seg.clone();
        match round % 3 {
            0 => bytes.truncate(next() as usize % seg.len()),
            1 => {
                for _ in 0..8 {
                    let at = next() as usize % bytes.len();
                    bytes[at] = next() as u8;
                }
            }
            _ => {
                let at = next() as usize % bytes.len();
                bytes.drain(at..(at + next() as usize % 400).min(bytes.len()));
            }
        }
        let Ok(frames) = ts_frames(&bytes) else {
            continue;
        };
        let total = Ticks(frames.frames.last().unwrap().at.0 + 3600);
        for target in [Ticks::from_ms(200), Ticks::from_ms(1000)] {
            if let Ok(parts) = carve::carve(&frames, total, target) {
                for p in &parts {
                    ts_part(&bytes, &frames, p).unwrap();
                }
            }
        }
    }
}
