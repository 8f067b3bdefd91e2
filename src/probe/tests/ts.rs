//! Tests of the MPEG-TS reader: hand-built packets (PAT, PMT over one or
//! more packets, PES with PTS/DTS), outliers, AC-3 classification, garbage.

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
    let t = scan(
        &video_with_pts(
            (0..50u64)
                .map(|f| PTS_WRAP - 7200 + f * 3600 + if f == 30 { PTS_WRAP - hour } else { 0 }),
        ),
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
