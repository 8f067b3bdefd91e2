//! Tests of the fMP4 reader: hand-built boxes (init, fragments, 64-bit
//! sizes, sidx), errors, and the fixtures mutated and truncated.

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
        (
            t.track_id,
            t.timescale,
            t.start_units,
            t.duration_units,
            t.fragments
        ),
        (1, 12_800, Some(25_600), 25 * 512 + 10 * 512 + 2 * 256, 3)
    );
    // The audio track alone: 10 samples of the trex default.
    let audio = Init {
        tracks: vec![init.tracks[0].clone()],
    };
    let t = scan(&audio, &seg).unwrap();
    assert_eq!(
        (t.start_units, t.duration_units, t.fragments),
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
    assert_eq!((t.start_units, t.duration_units), (Some(1 << 40), 2048));
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
    assert_eq!(t.duration_units, 2 * 12_800);
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
    let read = |p: &str| std::fs::read(dir.join(p)).expect("fixture (made by fixtures/make.sh)");
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
        assert!(t.duration_units > 0 && t.start_units.is_some());
    }
}
