//! Unit tests of the fMP4 restamper over segments built here, read back by a
//! small independent box walker that checks every size and data offset.

use proptest::prelude::*;

use super::*;

fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
}

fn full(kind: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = (flags | (u32::from(version) << 24)).to_be_bytes().to_vec();
    p.extend_from_slice(payload);
    bx(kind, &p)
}

fn tfdt(version: u8, time: u64) -> Vec<u8> {
    if version == 0 {
        full(b"tfdt", 0, 0, &(time as u32).to_be_bytes())
    } else {
        full(b"tfdt", 1, 0, &time.to_be_bytes())
    }
}

/// How a fragment's `traf`s locate their data.
#[derive(Clone, Copy, Debug)]
enum DataBase {
    /// default-base-is-moof.
    Moof,
    /// Neither flag: the first traf counts from the moof, later ones from the previous data.
    Implicit,
    /// An explicit base data offset (the mdat payload's position in the segment).
    Explicit,
}

/// A fragment: per track (id, tfdt version, tfdt value), each with 4 bytes of
/// sample data `[id; 4]` in one mdat after the moof.
fn fragment(at: usize, tracks: &[(u32, u8, u64)], base: DataBase) -> Vec<u8> {
    // Two passes: the moof size decides the data offsets.
    let build = |moof_size: usize| {
        let mut trafs = Vec::new();
        for (n, &(id, version, time)) in tracks.iter().enumerate() {
            let mdat_payload = at + moof_size + 8;
            let (flags, explicit) = match base {
                DataBase::Moof => (0x02_0000, None),
                DataBase::Implicit => (0, None),
                DataBase::Explicit => (0x01, Some(mdat_payload as u64)),
            };
            let mut tfhd = id.to_be_bytes().to_vec();
            if let Some(b) = explicit {
                tfhd.extend_from_slice(&b.to_be_bytes());
            }
            let data_offset: i32 = match base {
                DataBase::Moof => (moof_size + 8 + 4 * n) as i32,
                DataBase::Implicit if n == 0 => (moof_size + 8) as i32,
                DataBase::Implicit => 0,
                DataBase::Explicit => (4 * n) as i32,
            };
            let mut trun = 1u32.to_be_bytes().to_vec(); // sample_count
            trun.extend_from_slice(&data_offset.to_be_bytes());
            trun.extend_from_slice(&4u32.to_be_bytes()); // sample size
            let mut traf = full(b"tfhd", 0, flags, &tfhd);
            traf.extend(tfdt(version, time));
            traf.extend(full(b"trun", 0, 0x000201, &trun));
            trafs.extend(bx(b"traf", &traf));
        }
        let mut moof = full(b"mfhd", 0, 0, &1u32.to_be_bytes());
        moof.extend(trafs);
        bx(b"moof", &moof)
    };
    let size = build(0).len();
    let mut out = build(size);
    assert_eq!(out.len(), size);
    let data: Vec<u8> = tracks.iter().flat_map(|t| [t.0 as u8; 4]).collect();
    out.extend(bx(b"mdat", &data));
    out
}

/// What the walker saw in a segment.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    /// Per traf: (track, tfdt version, tfdt value, sample bytes found at the data offset).
    trafs: Vec<(u32, u8, u64, Vec<u8>)>,
    /// Per sidx: (version, earliest presentation time, referenced sizes, actual sizes).
    sidx: Vec<(u8, u64, Vec<u32>, Vec<u32>)>,
    /// emsg v1 presentation times and prft media times.
    emsg: Vec<u64>,
    prft: Vec<(u8, u64)>,
}

fn be(buf: &[u8], at: usize, n: usize) -> u64 {
    buf[at..at + n]
        .iter()
        .fold(0, |v, &b| (v << 8) | u64::from(b))
}

/// Boxes `start..end`, asserting the sizes tile the range exactly.
fn tile(buf: &[u8], start: usize, end: usize) -> Vec<(usize, [u8; 4], usize)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let size = be(buf, at, 4) as usize;
        assert!(
            size >= 8 && at + size <= end,
            "box at {at} of size {size} overruns {end}"
        );
        out.push((at, buf[at + 4..at + 8].try_into().unwrap(), at + size));
        at += size;
    }
    assert_eq!(at, end);
    out
}

fn walk(buf: &[u8]) -> Seen {
    let mut seen = Seen::default();
    let top = tile(buf, 0, buf.len());
    for (i, &(start, kind, end)) in top.iter().enumerate() {
        match &kind {
            b"moof" => {
                let mut data_end: Option<usize> = None;
                for (t, k, e) in tile(buf, start + 8, end) {
                    if &k != b"traf" {
                        continue;
                    }
                    let kids = tile(buf, t + 8, e);
                    let find = |name: &[u8; 4]| kids.iter().find(|c| &c.1 == name).unwrap().0;
                    let (h, d, r) = (find(b"tfhd"), find(b"tfdt"), find(b"trun"));
                    let flags = be(buf, h + 8, 4) & 0xff_ffff;
                    let id = be(buf, h + 12, 4) as u32;
                    let version = buf[d + 8];
                    let time = be(buf, d + 12, if version == 0 { 4 } else { 8 });
                    let off = be(buf, r + 16, 4) as i32 as i64;
                    let base = if flags & 1 != 0 {
                        be(buf, h + 16, 8) as i64
                    } else if flags & 0x02_0000 != 0 || data_end.is_none() {
                        start as i64
                    } else {
                        data_end.unwrap() as i64
                    };
                    let pos = (base + off) as usize;
                    data_end = Some(pos + 4);
                    seen.trafs
                        .push((id, version, time, buf[pos..pos + 4].to_vec()));
                }
            }
            b"sidx" => {
                let v = buf[start + 8];
                let (ept, first, refs) = if v == 0 {
                    (be(buf, start + 20, 4), be(buf, start + 24, 4), start + 28)
                } else {
                    (be(buf, start + 20, 8), be(buf, start + 28, 8), start + 36)
                };
                assert_eq!(first, 0, "references start right after the sidx");
                let count = be(buf, refs + 2, 2) as usize;
                let sizes: Vec<u32> = (0..count)
                    .map(|r| be(buf, refs + 4 + 12 * r, 4) as u32 & 0x7fff_ffff)
                    .collect();
                // Each reference: one fragment, from its emsg to the next one.
                let mut bounds: Vec<usize> = top[i + 1..]
                    .iter()
                    .filter(|b| &b.1 == b"emsg")
                    .map(|b| b.0)
                    .collect();
                bounds.push(buf.len());
                let actual: Vec<u32> = bounds.windows(2).map(|w| (w[1] - w[0]) as u32).collect();
                seen.sidx.push((v, ept, sizes, actual));
            }
            b"emsg" if buf[start + 8] == 1 => seen.emsg.push(be(buf, start + 16, 8)),
            b"prft" => {
                let v = buf[start + 8];
                seen.prft
                    .push((v, be(buf, start + 24, if v == 0 { 4 } else { 8 })));
            }
            _ => {}
        }
    }
    seen
}

fn sidx(version: u8, track: u32, timescale: u32, ept: u64, sizes: &[u32]) -> Vec<u8> {
    let mut p = track.to_be_bytes().to_vec();
    p.extend_from_slice(&timescale.to_be_bytes());
    if version == 0 {
        p.extend_from_slice(&(ept as u32).to_be_bytes());
        p.extend_from_slice(&0u32.to_be_bytes());
    } else {
        p.extend_from_slice(&ept.to_be_bytes());
        p.extend_from_slice(&0u64.to_be_bytes());
    }
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&(sizes.len() as u16).to_be_bytes());
    for &s in sizes {
        p.extend_from_slice(&s.to_be_bytes());
        p.extend_from_slice(&1000u32.to_be_bytes());
        p.extend_from_slice(&0x9000_0000u32.to_be_bytes());
    }
    full(b"sidx", version, 0, &p)
}

fn emsg_v1(timescale: u32, time: u64) -> Vec<u8> {
    let mut p = timescale.to_be_bytes().to_vec();
    p.extend_from_slice(&time.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 1]);
    p.extend_from_slice(b"urn:x\0v\0data");
    full(b"emsg", 1, 0, &p)
}

fn prft(version: u8, track: u32, time: u64) -> Vec<u8> {
    let mut p = track.to_be_bytes().to_vec();
    p.extend_from_slice(&0xe000_0000_0000_0001u64.to_be_bytes());
    if version == 0 {
        p.extend_from_slice(&(time as u32).to_be_bytes());
    } else {
        p.extend_from_slice(&time.to_be_bytes());
    }
    full(b"prft", version, 0, &p)
}

const VIDEO: TrackShift = TrackShift {
    track_id: 1,
    timescale: 90_000,
    offset: 0,
};
const AUDIO: TrackShift = TrackShift {
    track_id: 2,
    timescale: 48_000,
    offset: 0,
};

fn shifts(video: i64, audio: i64) -> [TrackShift; 2] {
    [
        TrackShift {
            offset: video,
            ..VIDEO
        },
        TrackShift {
            offset: audio,
            ..AUDIO
        },
    ]
}

/// styp, then per fragment an emsg, a prft and a moof/mdat with both tracks.
fn segment(fragments: &[(u64, u64)], version: u8, base: DataBase) -> Vec<u8> {
    let mut out = bx(b"styp", b"msdhmsdh");
    for &(v, a) in fragments {
        out.extend(emsg_v1(1000, v / 90));
        out.extend(prft(0, 1, v));
        let at = out.len();
        out.extend(fragment(at, &[(1, version, v), (2, version, a)], base));
    }
    out
}

#[test]
fn small_shift_keeps_version_0_and_every_other_byte() {
    let seg = segment(
        &[(900_000, 480_000), (1_080_000, 576_000)],
        0,
        DataBase::Moof,
    );
    let out = apply(&seg, &shifts(90_000, 48_000)).unwrap();
    assert_eq!(out.len(), seg.len());
    let (a, b) = (walk(&seg), walk(&out));
    for (x, y) in a.trafs.iter().zip(&b.trafs) {
        let off = if x.0 == 1 { 90_000 } else { 48_000 };
        assert_eq!((y.0, y.1, y.2, &y.3), (x.0, 0, x.2 + off, &x.3));
    }
    assert_eq!(b.emsg, vec![11_000, 13_000]);
    assert_eq!(b.prft, vec![(0, 990_000), (0, 1_170_000)]);
    // Only the time fields differ.
    let diff = seg.iter().zip(&out).filter(|(x, y)| x != y).count();
    assert!(
        (1..=2 * (4 + 4 + 4 + 8 + 4)).contains(&diff),
        "{diff} bytes changed"
    );
}

#[test]
fn version_0_tfdt_grows_and_offsets_follow() {
    for base in [DataBase::Moof, DataBase::Implicit, DataBase::Explicit] {
        let seg = segment(&[(900_000, 480_000), (1_080_000, 576_000), (7, 9)], 0, base);
        let big = 1i64 << 33;
        let out = apply(&seg, &shifts(big, big + 1)).unwrap();
        // 2 tfdts per fragment grow by 4, each prft by 4.
        assert_eq!(out.len(), seg.len() + 3 * (8 + 4), "{base:?}");
        let (a, b) = (walk(&seg), walk(&out));
        assert_eq!(a.trafs.len(), 6);
        for (x, y) in a.trafs.iter().zip(&b.trafs) {
            let off = if x.0 == 1 { big } else { big + 1 };
            assert_eq!((y.0, y.1, y.2), (x.0, 1, x.2 + off as u64), "{base:?}");
            assert_eq!(y.3, x.3, "{base:?}: data offset follows the sample");
            assert_eq!(y.3, vec![y.0 as u8; 4]);
        }
        assert!(b.prft.iter().all(|p| p.0 == 1));
        assert_eq!(b.prft[2].1, 7 + big as u64);
    }
}

#[test]
fn version_1_stays_and_negative_times_are_refused() {
    let seg = segment(&[(900_000, 480_000)], 1, DataBase::Moof);
    let out = apply(&seg, &shifts(-900_000, -480_000)).unwrap();
    assert_eq!(out.len(), seg.len());
    assert_eq!(walk(&out).trafs[0].2, 0);
    let err = apply(&seg, &shifts(-900_001, 0)).unwrap_err();
    // The prft comes first in the segment, and its media time would be -1.
    assert!(
        matches!(err, Fmp4Error::TimeOutOfRange { ref kind, time: 900_000, offset: -900_001, .. } if kind == "prft"),
        "{err}"
    );
    let only_tfdt = fragment(0, &[(1, 1, 900_000)], DataBase::Moof);
    let err = apply(&only_tfdt, &shifts(-900_001, 0)).unwrap_err();
    assert!(
        matches!(err, Fmp4Error::TimeOutOfRange { ref kind, .. } if kind == "tfdt"),
        "{err}"
    );
}

#[test]
fn sidx_grows_and_its_references_follow() {
    let frags = [(100, 200), (300, 400)];
    let body = segment(&frags, 0, DataBase::Moof);
    let styp_len = 16;
    let refs = walk(&{
        let mut s = body[..styp_len].to_vec();
        s.extend(sidx(0, 1, 90_000, 100, &[0, 0]));
        s.extend_from_slice(&body[styp_len..]);
        s
    })
    .sidx[0]
        .3
        .clone();
    let mut seg = body[..styp_len].to_vec();
    seg.extend(sidx(0, 1, 90_000, 100, &refs));
    seg.extend_from_slice(&body[styp_len..]);
    let before = walk(&seg);
    assert_eq!(
        before.sidx[0].2, before.sidx[0].3,
        "the test segment is consistent"
    );

    let big = 1i64 << 32;
    let out = apply(&seg, &shifts(big, big)).unwrap();
    let after = walk(&out);
    let (version, ept, sizes, actual) = &after.sidx[0];
    assert_eq!((*version, *ept), (1, 100 + big as u64));
    assert_eq!(sizes, actual, "referenced sizes follow the grown moofs");
    assert_ne!(sizes, &refs);
    assert!(
        after
            .trafs
            .iter()
            .zip(&before.trafs)
            .all(|(a, b)| a.3 == b.3)
    );
    // The last reference's SAP word is kept.
    let end = styp_len + sidx(0, 1, 90_000, 100, &refs).len();
    assert_eq!(out[end + 8 - 4..end + 8], seg[end - 4..end]);

    // A small shift keeps version 0; a sidx in another timescale is rescaled.
    let mut other = body[..styp_len].to_vec();
    other.extend(sidx(0, 2, 1000, 5, &refs));
    other.extend_from_slice(&body[styp_len..]);
    let out = apply(&other, &shifts(0, 96_000)).unwrap();
    assert_eq!(walk(&out).sidx[0].1, 5 + 2000);
    assert_eq!(out.len(), other.len());
}

#[test]
fn typed_errors() {
    let seg = segment(&[(900_000, 480_000)], 0, DataBase::Moof);
    let only_video = [VIDEO];
    assert!(matches!(
        apply(&seg, &only_video),
        Err(Fmp4Error::UnknownTrack { track_id: 2, .. })
    ));
    assert!(matches!(
        apply(&seg[..seg.len() - 3], &shifts(0, 0)),
        Err(Fmp4Error::Truncated { ref kind, .. }) if kind == "mdat"
    ));
    let mut bad = seg.clone();
    bad[3] = 3; // styp size 3
    assert!(matches!(
        apply(&bad, &shifts(0, 0)),
        Err(Fmp4Error::BadSize { size: 3, .. })
    ));
    let no_tfdt = bx(
        b"moof",
        &bx(b"traf", &full(b"tfhd", 0, 0, &1u32.to_be_bytes())),
    );
    assert!(matches!(
        apply(&no_tfdt, &shifts(0, 0)),
        Err(Fmp4Error::MissingTfdt { track_id: 1, .. })
    ));
    let no_tfhd = bx(b"moof", &bx(b"traf", &tfdt(0, 0)));
    assert!(matches!(
        apply(&no_tfhd, &shifts(0, 0)),
        Err(Fmp4Error::MissingTfhd { .. })
    ));
    let v2 = bx(
        b"moof",
        &bx(
            b"traf",
            &[
                full(b"tfhd", 0, 0, &1u32.to_be_bytes()),
                full(b"tfdt", 2, 0, &[0; 8]),
            ]
            .concat(),
        ),
    );
    assert!(matches!(
        apply(&v2, &shifts(0, 0)),
        Err(Fmp4Error::UnsupportedVersion { version: 2, .. })
    ));
    assert_eq!(apply(&[], &shifts(0, 0)).unwrap(), Vec::<u8>::new());
}

#[test]
fn large_size_and_size_to_end_boxes() {
    // A moof written with a 64-bit size, an mdat with size 0 (to the end).
    let seg = segment(&[(5, 6)], 0, DataBase::Moof);
    let moof_at = seg.windows(4).position(|w| w == b"moof").unwrap() - 4;
    let moof_len = be(&seg, moof_at, 4) as usize;
    let mut large = seg[..moof_at].to_vec();
    large.extend_from_slice(&1u32.to_be_bytes());
    large.extend_from_slice(b"moof");
    large.extend_from_slice(&((moof_len + 8) as u64).to_be_bytes());
    large.extend_from_slice(&seg[moof_at + 8..moof_at + moof_len]);
    let mdat = &seg[moof_at + moof_len..];
    large.extend_from_slice(&0u32.to_be_bytes());
    large.extend_from_slice(&mdat[4..]);
    let out = apply(&large, &shifts(1 << 33, 1 << 33)).unwrap();
    assert_eq!(out.len(), large.len() + 12);
    let moof_at = moof_at + 4; // after the prft, grown by 4
    assert_eq!(&out[moof_at + 4..moof_at + 8], b"moof");
    let new_size = be(&out, moof_at + 8, 8) as usize;
    assert_eq!(new_size, moof_len + 8 + 8);
    assert_eq!(
        &out[moof_at + new_size + 4..moof_at + new_size + 8],
        b"mdat"
    );
    assert_eq!(be(&out, moof_at + new_size, 4), 0);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), off in any::<i64>()) {
        let _ = apply(&bytes, &shifts(off, off));
    }

    #[test]
    fn mutated_segments_never_panic(
        at in 0usize..2000,
        value in any::<u8>(),
        cut in 0usize..2000,
        off in any::<i64>(),
    ) {
        let mut seg = segment(&[(900_000, 480_000), (1 << 40, 9)], 0, DataBase::Moof);
        let mut s = seg[..16].to_vec();
        s.extend(sidx(0, 1, 90_000, 100, &[300, 300]));
        s.extend_from_slice(&seg[16..]);
        seg = s;
        let n = seg.len();
        seg[at % n] = value;
        seg.truncate(n - cut % n);
        if let Ok(out) = apply(&seg, &shifts(off, off / 2)) {
            prop_assert!(out.len() >= seg.len(), "boxes only grow");
        }
    }

    #[test]
    fn any_shift_keeps_samples_in_place(
        v in 0u64..(1 << 34),
        a in 0u64..(1 << 34),
        dv in -(1i64 << 33)..(1i64 << 35),
        version in 0u8..2,
    ) {
        let seg = segment(&[(v, a), (v + 90_000, a + 48_000)], version, DataBase::Moof);
        let shift = shifts(dv, dv / 2);
        let out = apply(&seg, &shift);
        let before = walk(&seg);
        match out {
            Ok(out) => {
                let after = walk(&out);
                for (x, y) in before.trafs.iter().zip(&after.trafs) {
                    let d = if x.0 == 1 { dv } else { dv / 2 };
                    let t = if version == 0 { x.2 & 0xffff_ffff } else { x.2 };
                    prop_assert_eq!(i128::from(y.2), i128::from(t) + i128::from(d));
                    prop_assert_eq!(&y.3, &x.3);
                }
            }
            Err(e) => prop_assert!(matches!(e, Fmp4Error::TimeOutOfRange { .. }), "{}", e),
        }
    }
}
