use super::*;
use crate::ll::carve;
use crate::probe::fmp4::parse_init;

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = ((u32::from(version) << 24) | flags).to_be_bytes().to_vec();
    b.extend_from_slice(body);
    bx(kind, &b)
}

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// A track of a synthetic init segment: id, handler, timescale, trex
/// default duration and flags.
struct T(u32, &'static [u8; 4], u32, u32, u32);

fn init(tracks: &[T]) -> Vec<u8> {
    let mut moov = Vec::new();
    for t in tracks {
        let tkhd = full(b"tkhd", 0, 7, &words(&[0, 0, t.0, 0, 0]));
        let mdhd = full(b"mdhd", 0, 0, &words(&[0, 0, t.2, 0, 0]));
        let hdlr = full(b"hdlr", 0, 0, &[&words(&[0])[..], t.1, &[0; 13]].concat());
        let mdia = bx(b"mdia", &[mdhd, hdlr].concat());
        moov.extend(bx(b"trak", &[tkhd, mdia].concat()));
    }
    let trex: Vec<u8> = tracks
        .iter()
        .flat_map(|t| full(b"trex", 0, 0, &words(&[t.0, 1, t.3, 0, t.4])))
        .collect();
    moov.extend(bx(b"mvex", &trex));
    bx(b"moov", &moov)
}

/// One sample: duration, flags, composition offset; its data is `size`
/// bytes of a pattern unique to the sample.
#[derive(Clone, Copy)]
struct S(u32, u32, u32, u32);

const SYNC: u32 = 0x0200_0000;
const DEP: u32 = 0x0101_0000;

/// How a synthetic `traf` says where its data is.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// default-base-is-moof and a data_offset in every trun.
    MoofBase,
    /// No base in tfhd: the first traf's data_offset counts from the moof,
    /// the next traf's data follows the previous one's (no data_offset).
    Implicit,
    /// An explicit base_data_offset in tfhd.
    Explicit,
}

/// A media segment of one moof: per traf (track, tfdt, trun version, samples).
fn segment(trafs: &[(u32, u64, u8, Vec<S>)], layout: Layout, first_flags: bool) -> Vec<u8> {
    let styp = bx(b"styp", b"msdh\0\0\0\0msdh");
    let emsg = full(b"emsg", 0, 0, &[&b"urn:x\0\0"[..], &[0; 16]].concat());
    let prefix = styp.len() + emsg.len();
    // Two passes: the moof's size decides the data offsets.
    let build = |moof_size: usize| {
        let mut trafs_bytes = Vec::new();
        let mut data = Vec::new();
        for (k, (track, tfdt, version, samples)) in trafs.iter().enumerate() {
            let data_start = moof_size + 8 + data.len();
            let tfhd = match layout {
                Layout::MoofBase => full(b"tfhd", 0, 0x02_0000, &words(&[*track])),
                Layout::Implicit => full(b"tfhd", 0, 0, &words(&[*track])),
                Layout::Explicit => {
                    let mut b = words(&[*track]);
                    b.extend_from_slice(&((prefix + data_start) as u64).to_be_bytes());
                    full(b"tfhd", 0, 0x01, &b)
                }
            };
            let tfdt = full(b"tfdt", 1, 0, &tfdt.to_be_bytes());
            let mut trun_flags = 0x100 | 0x200 | 0x800;
            let mut body = words(&[samples.len() as u32]);
            if layout == Layout::MoofBase || (layout == Layout::Implicit && k == 0) {
                trun_flags |= 0x01;
                body.extend(words(&[(moof_size + 8 + data.len()) as u32]));
            }
            if first_flags {
                trun_flags |= 0x04;
                body.extend(words(&[samples[0].1]));
            } else {
                trun_flags |= 0x400;
            }
            for (i, s) in samples.iter().enumerate() {
                body.extend(words(&[s.0, s.3]));
                if !first_flags {
                    body.extend(words(&[s.1]));
                }
                body.extend(words(&[s.2]));
                data.extend(std::iter::repeat_n((k * 64 + i) as u8, s.3 as usize));
            }
            let trun = full(b"trun", *version, trun_flags, &body);
            trafs_bytes.extend(bx(b"traf", &[tfhd, tfdt, trun].concat()));
        }
        let mfhd = full(b"mfhd", 0, 0, &words(&[7]));
        let moof = bx(b"moof", &[mfhd, trafs_bytes].concat());
        (moof, data)
    };
    let (moof, _) = build(0);
    let (moof, data) = build(moof.len());
    [styp, emsg, moof, bx(b"mdat", &data)].concat()
}

/// Every sample of a segment's fragments per track: dts, duration, flags,
/// composition offset and data bytes.
fn samples_of(init: &Init, buf: &[u8]) -> Vec<(u32, u64, u32, u32, u32, Vec<u8>)> {
    let mut out = Vec::new();
    for f in fragments(init, buf).unwrap() {
        for t in &f.trafs {
            for s in &t.samples {
                let data = buf[s.offset..s.offset + s.size as usize].to_vec();
                out.push((t.track, s.dts, s.duration, s.flags, s.cto, data));
            }
        }
    }
    out.sort_by_key(|s| (s.0, s.1));
    out
}

/// Carves and cuts `seg` for several targets: the parts hold, together,
/// exactly the segment's samples, each with its fields and bytes, and each
/// part its lead frames.
fn round_trip(init_bytes: &[u8], seg: &[u8], total: Ticks) -> usize {
    let init = parse_init(init_bytes).unwrap();
    let frames = fmp4_frames(&init, seg).unwrap();
    assert!(frames.is_fmp4());
    let want = samples_of(&init, seg);
    // The source's samples are read where the builder put them: each one
    // bytes of its own value.
    assert!(want.iter().all(|s| s.5.iter().all(|&b| b == s.5[0])));
    let lead = init.reference().unwrap().id;
    let mut checked = 0;
    for ms in [100, 200, 333, 500, 1000] {
        let Ok(parts) = carve::carve(&frames, total, Ticks::from_ms(ms)) else {
            continue;
        };
        let mut got = Vec::new();
        let mut emsgs = 0;
        for part in &parts {
            let bytes = fmp4_part(&init, seg, &frames, part).unwrap();
            emsgs += children(&bytes, 0, bytes.len())
                .unwrap()
                .iter()
                .filter(|b| &b.kind == b"emsg")
                .count();
            let own = samples_of(&init, &bytes);
            assert_eq!(
                own.iter().filter(|s| s.0 == lead).count(),
                part.frames().len()
            );
            got.extend(own);
            checked += 1;
        }
        got.sort_by_key(|s| (s.0, s.1));
        assert_eq!(got, want, "{ms} ms");
        assert_eq!(emsgs, 1, "{ms} ms: the event goes with one part");
    }
    assert!(checked > 0);
    checked
}

/// 25 fps video (timescale 12 800, 512 a frame), keyframe every 25 frames,
/// B-frame-like composition offsets.
fn video(n: usize) -> Vec<S> {
    (0..n)
        .map(|i| {
            let flags = if i % 25 == 0 { SYNC } else { DEP };
            S(
                512,
                flags,
                [1024, 0, 2048, 512][i % 4],
                100 + (i as u32 % 7),
            )
        })
        .collect()
}

/// AAC at 48 kHz: 1024 a frame.
fn audio(n: usize) -> Vec<S> {
    (0..n)
        .map(|i| S(1024, SYNC, 0, 20 + i as u32 % 5))
        .collect()
}

#[test]
fn muxed_video_and_audio_in_every_layout() {
    let init_bytes = init(&[T(1, b"vide", 12_800, 0, 0), T(2, b"soun", 48_000, 0, 0)]);
    for layout in [Layout::MoofBase, Layout::Implicit, Layout::Explicit] {
        // Audio starting a little before the video, as encoders prime it.
        let trafs = [(1, 25_600, 0, video(50)), (2, 95_000, 0, audio(95))];
        let seg = segment(&trafs, layout, false);
        round_trip(&init_bytes, &seg, Ticks(180_000));
    }
}

#[test]
fn first_sample_flags_and_trex_defaults() {
    // Flags from trex for every sample but the first of the trun.
    let init_bytes = init(&[T(1, b"vide", 90_000, 3600, DEP)]);
    let samples: Vec<S> = (0..50)
        .map(|i| S(3600, if i == 0 { SYNC } else { DEP }, 0, 50))
        .collect();
    let seg = segment(&[(1, 900_000, 0, samples)], Layout::MoofBase, true);
    let init = parse_init(&init_bytes).unwrap();
    let frames = fmp4_frames(&init, &seg).unwrap();
    assert_eq!(frames.frames.iter().filter(|f| f.independent).count(), 1);
    assert!(frames.frames[0].independent);
    round_trip(&init_bytes, &seg, Ticks(180_000));
}

#[test]
fn negative_composition_offsets_in_version_1() {
    let init_bytes = init(&[T(1, b"vide", 12_800, 0, 0)]);
    let samples: Vec<S> = video(50)
        .into_iter()
        .map(|s| S(s.0, s.1, s.2.wrapping_sub(1024), s.3))
        .collect();
    let seg = segment(&[(1, 0, 1, samples)], Layout::MoofBase, false);
    round_trip(&init_bytes, &seg, Ticks(180_000));
}

#[test]
fn audio_lead_every_sample_independent() {
    let init_bytes = init(&[T(5, b"soun", 44_100, 0, 0)]);
    let seg = segment(&[(5, 0, 0, audio(86))], Layout::Implicit, false);
    let init = parse_init(&init_bytes).unwrap();
    let frames = fmp4_frames(&init, &seg).unwrap();
    assert!(frames.frames.iter().all(|f| f.independent));
    round_trip(&init_bytes, &seg, Ticks(86 * 1024 * 90_000 / 44_100 + 1));
}

#[test]
fn bad_input_is_an_error() {
    let init_bytes = init(&[T(1, b"vide", 12_800, 0, 0)]);
    let init = parse_init(&init_bytes).unwrap();
    let seg = segment(&[(1, 0, 0, video(50))], Layout::MoofBase, false);
    assert!(matches!(
        fmp4_frames(&init, &[]),
        Err(LlError::Malformed(_))
    ));
    assert!(matches!(
        fmp4_frames(&init, b"garbage!"),
        Err(LlError::Malformed(_))
    ));
    // Cut in the middle of the mdat: samples past the end.
    let cut = &seg[..seg.len() - 100];
    let err = fmp4_frames(&init, cut).unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
    // No moof.
    assert!(matches!(
        fmp4_frames(&init, &bx(b"free", &[0; 8])),
        Err(LlError::Malformed(_))
    ));
    // Fragments of another track only.
    let other = segment(&[(9, 0, 0, video(10))], Layout::MoofBase, false);
    assert!(matches!(
        fmp4_frames(&init, &other),
        Err(LlError::Malformed(_))
    ));
    // An init segment with no video or audio track.
    let text = Init {
        tracks: vec![Track {
            kind: TrackKind::Other,
            ..init.tracks[0].clone()
        }],
    };
    assert_eq!(fmp4_frames(&text, &seg), Err(LlError::NoLeadStream));
    // Encrypted samples.
    let senc = {
        let s = segment(&[(1, 0, 0, video(5))], Layout::Implicit, false);
        let at = s.windows(4).position(|w| w == b"trun").unwrap() - 4;
        let extra = full(b"senc", 0, 0, &[0; 4]);
        let mut out = s[..at].to_vec();
        out.extend_from_slice(&extra);
        out.extend_from_slice(&s[at..]);
        // Grow the traf and moof sizes by the senc's.
        for kind in [b"traf", b"moof"] {
            let p = out.windows(4).position(|w| w == kind).unwrap() - 4;
            let size = u32::from_be_bytes(out[p..p + 4].try_into().unwrap()) + extra.len() as u32;
            out[p..p + 4].copy_from_slice(&size.to_be_bytes());
        }
        out
    };
    assert_eq!(fmp4_frames(&init, &senc), Err(LlError::Encrypted));
    // A part cut from other bytes.
    let frames = fmp4_frames(&init, &seg).unwrap();
    let parts = carve::carve(&frames, Ticks(180_000), Ticks::from_ms(500)).unwrap();
    assert!(matches!(
        fmp4_part(&init, &seg[..seg.len() - 1], &frames, &parts[0]),
        Err(LlError::Mismatch(_))
    ));
    let ts_frames = SegmentFrames::from_frames(frames.frames.clone());
    assert!(matches!(
        fmp4_part(&init, &seg, &ts_frames, &parts[0]),
        Err(LlError::Mismatch(_))
    ));
}

#[test]
fn damaged_segments_never_panic() {
    let init_bytes = init(&[T(1, b"vide", 12_800, 0, 0), T(2, b"soun", 48_000, 0, 0)]);
    let init = parse_init(&init_bytes).unwrap();
    let seg = segment(
        &[(1, 25_600, 0, video(50)), (2, 95_000, 0, audio(95))],
        Layout::MoofBase,
        false,
    );
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..2000 {
        let mut bytes = seg.clone();
        // Damage the moof mostly: the mdat is only copied.
        let limit = if round % 2 == 0 { 1200 } else { bytes.len() };
        match round % 3 {
            0 => bytes.truncate(next() as usize % limit),
            _ => {
                for _ in 0..1 + round % 4 {
                    let at = next() as usize % limit;
                    bytes[at] = next() as u8;
                }
            }
        }
        let Ok(frames) = fmp4_frames(&init, &bytes) else {
            continue;
        };
        let Some(last) = frames.frames.last() else {
            continue;
        };
        let total = Ticks(last.at.0 + 3600);
        for target in [Ticks::from_ms(200), Ticks::from_ms(1000)] {
            if let Ok(parts) = carve::carve(&frames, total, target) {
                for p in &parts {
                    let _ = fmp4_part(&init, &bytes, &frames, p);
                }
            }
        }
    }
}
