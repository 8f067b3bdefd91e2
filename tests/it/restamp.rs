//! Continuous timestamps on the fixture streams: only timestamps and CCs change,
//! CCs run on across loop points, and ffprobe/ffmpeg read the concatenation of
//! consecutive restamped segments as one stream with increasing DTS.

use std::path::Path;
use std::process::Command;

use mpeg2ts_reader::packet::Packet;
use mpeg2ts_reader::pes::{PesContents, PesHeader, PtsDts};
use pseudolive::probe::{ProbeMode, Prober};
use pseudolive::restamp::BASE_TICKS;
use pseudolive::restamp::ts::{LeadReport, PlanSegment, TsRestampPlan, restamped};
use pseudolive::source;
use pseudolive::ticks::{PTS_WRAP, Ticks};
use pseudolive::timeline::Schedule;

use crate::util::{fixture, temp_dir};

/// A per-test temporary directory, removed when the test ends (even by a panic).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        TempDir(temp_dir(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One fixture stream loaded the way a server would: bytes, plan, schedule.
struct Loaded {
    segments: Vec<Vec<u8>>,
    plan: TsRestampPlan,
    /// What the lead splice of each run's first segment did.
    reports: Vec<(usize, LeadReport)>,
    schedule: Schedule,
}

impl Loaded {
    fn new(name: &str) -> Self {
        Loaded::from_playlist(&fixture(name).join("index.m3u8"))
    }

    fn from_playlist(playlist: &Path) -> Self {
        let pl = source::read_media(playlist).unwrap();
        let inputs = source::segment_inputs(playlist.parent().unwrap(), playlist, &pl).unwrap();
        let prober = Prober {
            mode: ProbeMode::Native,
            ffprobe: None,
        };
        let durations: Vec<u64> = prober
            .measure_playlist(&inputs)
            .iter()
            .map(|m| m.ticks)
            .collect();
        let discontinuities: Vec<bool> = inputs.iter().map(|s| s.discontinuity).collect();
        let segments: Vec<Vec<u8>> = inputs
            .iter()
            .map(|s| std::fs::read(&s.path).unwrap())
            .collect();
        let plan_segments: Vec<PlanSegment> = durations
            .iter()
            .zip(&discontinuities)
            .enumerate()
            .map(|(i, (&duration_ticks, &d))| PlanSegment {
                starts_run: i == 0 || d,
                duration_ticks,
            })
            .collect();
        let read = |i: usize| Ok::<_, ()>(&segments[i]);
        let (plan, reports) = TsRestampPlan::build(&plan_segments, BASE_TICKS, read).unwrap();
        Loaded {
            plan,
            reports,
            schedule: Schedule::new(
                &durations.iter().map(|&d| Ticks(d)).collect::<Vec<_>>(),
                &discontinuities,
            ),
            segments,
        }
    }

    fn n(&self) -> u64 {
        self.segments.len() as u64
    }

    /// Global segment `g` as served in continuous mode.
    fn serve(&self, g: u64) -> Vec<u8> {
        let shift = self.plan.for_segment(g, self.schedule.start_of(g).0);
        restamped(&self.segments[(g % self.n()) as usize], &shift)
    }

    /// Global segment `g` as the source has it.
    fn source(&self, g: u64) -> &[u8] {
        &self.segments[(g % self.n()) as usize]
    }
}

const NULL_PID: u16 = 0x1fff;

fn pid_of(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])
}

/// Byte ranges of one packet that may change: (start, end, bits that must stay).
fn changeable(p: &[u8]) -> Vec<(usize, usize, &'static [u8])> {
    const TS5: &[u8] = &[0xf1, 0, 1, 0, 1];
    const PCR: &[u8] = &[0, 0, 0, 0, 0x7f, 0xff];
    let mut out = vec![(3, 4, &[0xf0u8][..])];
    let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let has_af = p[3] & 0x20 != 0;
    let mut payload = 4;
    if has_af {
        payload = 5 + usize::from(p[4]);
        if p[4] > 0 {
            let mut at = 6;
            for flag in [0x10, 0x08] {
                if p[5] & flag != 0 {
                    out.push((at, at + 6, PCR));
                    at += 6;
                }
            }
        }
    }
    if p[3] & 0x10 != 0 && p[1] & 0x40 != 0 && pid != 0 && payload + 9 <= 188 {
        let h = &p[payload..];
        if h[..3] == [0, 0, 1] {
            let n = match h[7] >> 6 {
                2 => 1,
                3 => 2,
                _ => 0,
            };
            for k in 0..n {
                out.push((payload + 9 + 5 * k, payload + 14 + 5 * k, TS5));
            }
        }
    }
    out
}

/// (pid, pts, dts) of every PES header.
pub(crate) type PesTimes = Vec<(u16, u64, u64)>;
/// (base, extension) of every PCR.
pub(crate) type Pcrs = Vec<(u64, u16)>;

/// PES timestamps and PCRs, read with mpeg2ts-reader.
pub(crate) fn timestamps(buf: &[u8]) -> (PesTimes, Pcrs) {
    let (mut pes, mut pcr) = (Vec::new(), Vec::new());
    for chunk in buf.chunks_exact(188) {
        let pk = Packet::new(chunk);
        if let Some(af) = pk.adaptation_field()
            && let Ok(c) = af.pcr()
        {
            pcr.push((c.base(), c.extension()));
        }
        if pk.payload_unit_start_indicator()
            && u16::from(pk.pid()) != 0
            && let Some(payload) = pk.payload()
            && let Some(h) = PesHeader::from_bytes(payload)
            && let PesContents::Parsed(Some(parsed)) = h.contents()
        {
            let pid = u16::from(pk.pid());
            match parsed.pts_dts() {
                Ok(PtsDts::PtsOnly(Ok(p))) => pes.push((pid, p.value(), p.value())),
                Ok(PtsDts::Both {
                    pts: Ok(p),
                    dts: Ok(d),
                }) => pes.push((pid, p.value(), d.value())),
                _ => {}
            }
        }
    }
    (pes, pcr)
}

/// Whether `b` is `a` with at most its timestamp fields and CC changed.
fn only_timestamps_and_cc_differ(a: &[u8], b: &[u8]) -> Result<usize, String> {
    let allowed = changeable(a);
    let mut changed = 0;
    for j in 0..188 {
        if a[j] == b[j] {
            continue;
        }
        changed += 1;
        let (s, _, keep) = allowed
            .iter()
            .find(|(s, e, _)| (*s..*e).contains(&j))
            .ok_or_else(|| format!("byte {j} changed"))?;
        if a[j] & keep[j - s] != b[j] & keep[j - s] {
            return Err(format!("flag bits of byte {j} changed"));
        }
    }
    Ok(changed)
}

/// The PES starting at packet `first` (a PUSI packet) of `buf`: its packets'
/// indices (up to the PID's next PUSI packet) and its bytes.
fn pes_at(buf: &[u8], first: usize) -> (Vec<usize>, Vec<u8>) {
    let packets: Vec<&[u8]> = buf.chunks(188).collect();
    let pid = pid_of(packets[first]);
    let mut indices = vec![first];
    for (i, p) in packets.iter().enumerate().skip(first + 1) {
        if pid_of(p) == pid && p[3] & 0x10 != 0 {
            if p[1] & 0x40 != 0 {
                break;
            }
            indices.push(i);
        }
    }
    let bytes = indices
        .iter()
        .flat_map(|&i| {
            let p = packets[i];
            let start = if p[3] & 0x20 != 0 {
                5 + usize::from(p[4])
            } else {
                4
            };
            p[start..].to_vec()
        })
        .collect();
    (indices, bytes)
}

/// PTS and elementary stream bytes of a PES (PTS present, the ES up to its
/// declared length).
fn pes_parts(pes: &[u8]) -> (u64, Vec<u8>) {
    assert_eq!(pes[..3], [0, 0, 1]);
    assert_eq!(pes[7] & 0x80, 0x80, "a PTS");
    let t = &pes[9..14];
    let pts = (u64::from(t[0] >> 1) & 7) << 30
        | u64::from(t[1]) << 22
        | u64::from(t[2] >> 1) << 15
        | u64::from(t[3]) << 7
        | u64::from(t[4] >> 1);
    let len = usize::from(pes[4]) << 8 | usize::from(pes[5]);
    let end = if len == 0 { pes.len() } else { 6 + len };
    assert!(end <= pes.len(), "the PES is complete in the segment");
    (pts, pes[9 + usize::from(pes[8])..end].to_vec())
}

/// Ticks of the ADTS frames that `es` starts with, up to byte `end` (which
/// must fall on a frame boundary): (frames, ticks).
fn adts_ticks(es: &[u8], end: usize) -> (usize, u64) {
    const RATES: [u64; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let (mut at, mut frames, mut samples, mut rate) = (0, 0, 0, 0);
    while at < end {
        let h = &es[at..];
        assert_eq!((h[0], h[1] & 0xf6), (0xff, 0xf0), "ADTS sync at {at}");
        rate = RATES[usize::from((h[2] >> 2) & 0x0f)];
        samples += 1024 * (u64::from(h[6] & 3) + 1);
        at += (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        frames += 1;
    }
    assert_eq!(at, end, "the cut falls on a frame boundary");
    (frames, (samples * 90_000 + rate / 2) / rate)
}

/// Every served segment of loop 3 against its source: every packet is the
/// source's with only timestamp fields and CCs changed, except, in a run's
/// first segment, leading packets of other PIDs than the reference served as
/// null packets, and one rewritten audio PES per PID: the source's PES
/// less whole ADTS frames at its start, its PTS moved by their duration.
/// Returns the number of rewritten PES packets and of frames dropped from them.
fn only_timestamps_ccs_and_the_lead_change(name: &str) -> (usize, usize) {
    let l = Loaded::new(name);
    let (mut rewritten_pes, mut dropped_frames) = (0, 0);
    // Loop 3: every segment gets a CC delta on some PID and a large offset.
    for g in 3 * l.n()..4 * l.n() {
        let (src, out) = (l.source(g), l.serve(g));
        assert_eq!(src.len(), out.len());
        assert_eq!(src.len() % 188, 0, "{name}: fixture packets are whole");
        let i = (g % l.n()) as usize;
        let starts_run = i == 0 || l.schedule.has_discontinuity(g);
        let reference = pseudolive::probe::ts::scan(src, pseudolive::probe::ts::Depth::Start)
            .unwrap()
            .pid;
        let shift = l.plan.for_segment(g, l.schedule.start_of(g).0);
        let offset = shift.pts_offset_ticks;
        let mut changed = 0;
        let (mut kept_src, mut kept_out) = (Vec::new(), Vec::new());
        // Packets replaced other than by a null packet: (index, pid).
        let mut replaced: Vec<(usize, u16)> = Vec::new();
        for (k, (a, b)) in src.chunks(188).zip(out.chunks(188)).enumerate() {
            if pid_of(b) == NULL_PID && pid_of(a) != NULL_PID {
                // Trimmed: only in a run's first segment, never the reference.
                assert!(
                    starts_run,
                    "{name} g={g}: a null packet outside a run's start"
                );
                assert_ne!(pid_of(a), reference, "{name} g={g}");
                continue;
            }
            match only_timestamps_and_cc_differ(a, b) {
                Ok(n) => {
                    changed += n;
                    kept_src.extend_from_slice(a);
                    kept_out.extend_from_slice(b);
                }
                Err(e) => {
                    assert!(starts_run, "{name} g={g} packet {k}: {e}");
                    assert_eq!(pid_of(a), pid_of(b), "{name} g={g} packet {k}");
                    assert_ne!(pid_of(a), reference, "{name} g={g}");
                    replaced.push((k, pid_of(a)));
                }
            }
        }
        assert!(changed > 0, "{name} g={g}: nothing changed");
        // The replaced packets of a PID are exactly one PES of the output,
        // which sits where a PES of the source started.
        let mut pids: Vec<u16> = replaced.iter().map(|r| r.1).collect();
        pids.dedup();
        for pid in pids {
            let mine: Vec<usize> = replaced
                .iter()
                .filter(|r| r.1 == pid)
                .map(|r| r.0)
                .collect();
            let (indices, served) = pes_at(&out, mine[0]);
            assert_eq!(indices, mine, "{name} g={g}: the rewritten PES's packets");
            let (source_indices, source) = pes_at(src, mine[0]);
            assert!(source_indices.len() >= indices.len());
            let ((pts, es), (src_pts, src_es)) = (pes_parts(&served), pes_parts(&source));
            assert!(es.len() < src_es.len(), "{name} g={g}: frames dropped");
            let cut = src_es.len() - es.len();
            assert_eq!(
                es[..],
                src_es[cut..],
                "{name} g={g}: the kept frames as they were"
            );
            let (frames, ticks) = adts_ticks(&src_es, cut);
            assert_eq!(pts, (src_pts + ticks + offset) % PTS_WRAP, "{name} g={g}");
            // The rest of the source PES's packets are null packets now.
            for &k in &source_indices[indices.len()..] {
                assert_eq!(pid_of(&out[188 * k..]), NULL_PID);
            }
            rewritten_pes += 1;
            dropped_frames += frames;
        }
        // Every other value moved by the same offset (mod 2^33), extensions kept.
        let ((pa, ca), (pb, cb)) = (timestamps(&kept_src), timestamps(&kept_out));
        assert_eq!(pa.len(), pb.len());
        assert!(!pa.is_empty());
        for (x, y) in pa.iter().zip(&pb) {
            assert_eq!(y.0, x.0);
            assert_eq!(y.1, (x.1 + offset) % PTS_WRAP);
            assert_eq!(y.2, (x.2 + offset) % PTS_WRAP);
        }
        assert_eq!(ca.len(), cb.len());
        for (x, y) in ca.iter().zip(&cb) {
            assert_eq!((y.0, y.1), ((x.0 + offset) % PTS_WRAP, x.1));
        }
    }
    (rewritten_pes, dropped_frames)
}

#[test]
fn fixtures_change_only_in_timestamps_ccs_and_the_lead() {
    // (fixture, rewritten PES per loop): one per run of streams with video
    // and AAC; none where the audio is the reference.
    for (name, runs) in [
        ("av25", 1),
        ("discontinuity", 2),
        ("bframes", 1),
        ("audio_only", 0),
        ("wrap", 1),
        ("mp2_audio", 0),
    ] {
        let (rewritten, frames) = only_timestamps_ccs_and_the_lead_change(name);
        assert_eq!(rewritten, runs, "{name}");
        // ffmpeg's priming frame, and the frame the previous run's longer
        // audio covers: never the whole PES (of 15 or more frames).
        assert!(
            frames >= rewritten && frames <= 3 * rewritten,
            "{name}: {frames} frames"
        );
    }
}

/// Per PID, whether each payload packet's CC follows the previous one.
fn cc_jumps(buf: &[u8]) -> Vec<String> {
    let mut last: Vec<(u16, u8)> = Vec::new();
    let mut jumps = Vec::new();
    for (i, p) in buf.chunks_exact(188).enumerate() {
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        if pid == 0x1fff || p[3] & 0x10 == 0 {
            continue;
        }
        let cc = p[3] & 0x0f;
        match last.iter_mut().find(|e| e.0 == pid) {
            Some(e) => {
                if cc != (e.1 + 1) & 0x0f {
                    jumps.push(format!("packet {i} pid {pid:#x}: {} then {cc}", e.1));
                }
                e.1 = cc;
            }
            None => last.push((pid, cc)),
        }
    }
    jumps
}

#[test]
fn ccs_run_on_across_loop_points() {
    for name in ["av25", "discontinuity", "bframes", "audio_only"] {
        let l = Loaded::new(name);
        let range = 0..3 * l.n() + 2;
        let source: Vec<u8> = range.clone().flat_map(|g| l.source(g).to_vec()).collect();
        let served: Vec<u8> = range.flat_map(|g| l.serve(g)).collect();
        assert!(
            !cc_jumps(&source).is_empty(),
            "{name}: the source jumps at loop points"
        );
        assert_eq!(cc_jumps(&served), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn fixture_ccs_run_on_across_files_within_a_run() {
    // What the plan relies on for loop 0 to be served unchanged: ffmpeg's
    // segmenter continues every PID's CC from one file to the next. In the
    // first segment, the audio PES rewritten without its leading frames
    // takes fewer packets (the rest are null packets); its CCs lead up to the
    // next audio packet's, so the audio PID's CCs change only before that.
    let l = Loaded::new("av25");
    for g in 0..l.n() {
        let (src, out) = (l.source(g), l.serve(g));
        let mut trimmed = 0;
        for (a, b) in src.chunks(188).zip(out.chunks(188)) {
            if pid_of(b) == NULL_PID && pid_of(a) != NULL_PID {
                trimmed += 1;
            } else if g > 0 || pid_of(a) != 0x101 {
                assert_eq!(a[3], b[3], "g={g}");
            }
        }
        assert_eq!(trimmed > 0, g == 0, "g={g}: {trimmed} packets trimmed");
        assert_ne!(out, src, "g={g}: timestamps move");
    }
    let audio_ccs = |buf: &[u8]| -> Vec<u8> {
        buf.chunks(188)
            .filter(|p| pid_of(p) == 0x101 && p[3] & 0x10 != 0)
            .map(|p| p[3] & 0x0f)
            .collect()
    };
    let (src, out) = (audio_ccs(l.source(0)), audio_ccs(&l.serve(0)));
    assert!(out.len() < src.len());
    assert_eq!(
        out[..],
        src[src.len() - out.len()..],
        "the CCs end as the source's do"
    );
}

/// ffprobe's packets of a file: per stream index, the DTS values in order;
/// and what it printed on stderr.
fn ffprobe_dts(path: &Path) -> (Vec<Vec<i64>>, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_packets", "-show_entries"])
        .args(["packet=pts,dts,stream_index", "-of", "csv"])
        .arg(path)
        .output()
        .expect("ffprobe on PATH");
    assert!(out.status.success(), "ffprobe failed");
    let mut streams: Vec<Vec<i64>> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split(',').collect();
        if f.first() != Some(&"packet") || f.len() < 4 {
            continue;
        }
        let index: usize = f[1].parse().unwrap();
        let Ok(dts) = f[3].parse::<i64>() else {
            continue; // N/A
        };
        if streams.len() <= index {
            streams.resize(index + 1, Vec::new());
        }
        streams[index].push(dts);
    }
    (streams, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn strictly_increasing(streams: &[Vec<i64>]) -> Result<(), String> {
    for (i, s) in streams.iter().enumerate() {
        if let Some(w) = s.windows(2).find(|w| w[1] <= w[0]) {
            return Err(format!("stream {i}: DTS {} then {}", w[0], w[1]));
        }
    }
    Ok(())
}

fn ffmpeg_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg on PATH");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Restamped segments `range` of a fixture, concatenated, read by ffprobe and
/// ffmpeg: increasing DTS per stream, no error. The same bytes unpatched fail.
fn real_tools_read_one_stream(name: &str, range: std::ops::Range<u64>, dir: &Path) {
    let l = Loaded::new(name);
    let served: Vec<u8> = range.clone().flat_map(|g| l.serve(g)).collect();
    let source: Vec<u8> = range.clone().flat_map(|g| l.source(g).to_vec()).collect();
    let (cat, raw) = (
        dir.join(format!("{name}.ts")),
        dir.join(format!("{name}_raw.ts")),
    );
    std::fs::write(&cat, &served).unwrap();
    std::fs::write(&raw, &source).unwrap();

    let (streams, stderr) = ffprobe_dts(&cat);
    assert_eq!(stderr, "", "{name} {range:?}: ffprobe said something");
    assert!(
        streams.len() >= 2 || name == "audio_only",
        "{name}: {} streams",
        streams.len()
    );
    let packets: usize = streams.iter().map(Vec::len).sum();
    assert!(packets > 100, "{name}: {packets} packets");
    strictly_increasing(&streams).unwrap_or_else(|e| panic!("{name} {range:?}: {e}"));
    let errors = ffmpeg_errors(&cat);
    let lower = errors.to_lowercase();
    assert!(
        !lower.contains("monoton") && !lower.contains("discontinuity"),
        "{name} {range:?}: ffmpeg: {errors}"
    );
    assert_eq!(errors, "", "{name} {range:?}: ffmpeg said something");

    // Negative control: the source bytes restart their timestamps.
    let (streams, _) = ffprobe_dts(&raw);
    assert!(
        strictly_increasing(&streams).is_err(),
        "{name}: the source should restart"
    );
    assert!(
        ffmpeg_errors(&raw).contains("monoton"),
        "{name}: ffmpeg should complain"
    );
}

#[test]
fn ffprobe_reads_restamped_segments_as_one_stream() {
    let dir = TempDir::new("restamp-ffprobe");
    let dir = &dir.0;
    // av25: 5 segments; g = 3..13 crosses the loop points at 5 and 10.
    real_tools_read_one_stream("av25", 3..13, dir);
    // discontinuity: 5 segments, a source discontinuity at 3 and loop points at 5 and 10.
    real_tools_read_one_stream("discontinuity", 1..12, dir);
}

#[test]
fn ffprobe_follows_the_33_bit_wrap() {
    let dir = TempDir::new("restamp-wrap");
    let l = Loaded::new("av25");
    // The first loop whose media time reaches 2^33: the wrap falls inside it.
    let k = (PTS_WRAP - BASE_TICKS) / l.schedule.loop_duration().0;
    let range = k * l.n()..(k + 2) * l.n() + 1;
    let end = BASE_TICKS + l.schedule.start_of(range.end).0;
    assert!(BASE_TICKS + l.schedule.start_of(range.start).0 < PTS_WRAP && end > PTS_WRAP);
    let served: Vec<u8> = range.clone().flat_map(|g| l.serve(g)).collect();
    let path = dir.0.join("wrap.ts");
    std::fs::write(&path, &served).unwrap();
    let (streams, stderr) = ffprobe_dts(&path);
    assert_eq!(stderr, "");
    strictly_increasing(&streams).unwrap();
    // ffprobe unwraps, by making the values before the wrap negative or the
    // values after it larger than 2^33: either way, one stream across it.
    for s in &streams {
        let (first, last) = (s[0], s[s.len() - 1]);
        assert!(first < 0 || last > PTS_WRAP as i64, "{first}..{last}");
        assert!(last - first > 19 * 90_000, "{first}..{last}");
    }
    assert_eq!(ffmpeg_errors(&path), "");
}

/// The first `tfdt` of each track in an fMP4 segment: (track_ID, baseMediaDecodeTime).
fn first_decode_times(seg: &[u8]) -> Vec<(u32, u64)> {
    let be = |at: usize, n: usize| {
        seg[at..at + n]
            .iter()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b))
    };
    let mut out: Vec<(u32, u64)> = Vec::new();
    let mut at = 0;
    while at + 8 <= seg.len() {
        let (size, kind) = (be(at, 4) as usize, &seg[at + 4..at + 8]);
        if kind == b"moof" {
            let mut t = at + 8;
            while t < at + size {
                let traf_end = t + be(t, 4) as usize;
                if &seg[t + 4..t + 8] == b"traf" {
                    let (mut c, mut id, mut time) = (t + 8, 0, 0);
                    while c < traf_end {
                        match &seg[c + 4..c + 8] {
                            b"tfhd" => id = be(c + 12, 4) as u32,
                            b"tfdt" if seg[c + 8] == 1 => time = be(c + 12, 8),
                            b"tfdt" => time = be(c + 12, 4),
                            _ => {}
                        }
                        c += be(c, 4) as usize;
                    }
                    if out.iter().all(|e| e.0 != id) {
                        out.push((id, time));
                    }
                }
                t = traf_end;
            }
        }
        at += size;
    }
    out
}

#[test]
fn ffprobe_reads_restamped_fmp4_as_one_stream() {
    use pseudolive::restamp::fmp4::{self, TrackShift};
    use pseudolive::restamp::timescale_offset;

    let dir = TempDir::new("restamp-fmp4");
    // The av25 fixture remuxed (no re-encoding) to fMP4 HLS: same 5 segments.
    let list = dir.0.join("list.txt");
    let files: String = (0..5)
        .map(|i| {
            format!(
                "file '{}'\n",
                fixture("av25").join(format!("seg_00{i}.ts")).display()
            )
        })
        .collect();
    std::fs::write(&list, files).unwrap();
    let status = Command::new("ffmpeg")
        .args([
            "-nostdin", "-v", "error", "-f", "concat", "-safe", "0", "-i",
        ])
        .arg(&list)
        .args([
            "-c",
            "copy",
            "-bsf:a",
            "aac_adtstoasc",
            "-f",
            "hls",
            "-hls_time",
            "2",
        ])
        .args(["-hls_segment_type", "fmp4", "-hls_playlist_type", "vod"])
        .arg("-hls_segment_filename")
        .arg(dir.0.join("seg_%d.m4s"))
        .arg(dir.0.join("index.m3u8"))
        .status()
        .expect("ffmpeg on PATH");
    assert!(status.success());
    let init = std::fs::read(dir.0.join("init.mp4")).unwrap();
    let segments: Vec<Vec<u8>> = (0..5)
        .map(|i| std::fs::read(dir.0.join(format!("seg_{i}.m4s"))).unwrap())
        .collect();
    // Timescales from ffprobe (track i + 1 is stream i in ffmpeg's files).
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=time_base",
            "-of",
            "csv=p=0",
        ])
        .arg(dir.0.join("init.mp4"))
        .output()
        .unwrap();
    let timescales: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches("1/").parse().unwrap())
        .collect();
    assert_eq!(timescales.len(), 2);
    let l = Loaded::new("av25");

    // Every track moves by the same time: the one that puts the video start of
    // source segment i at base + start_of(g), in each track's own units.
    let serve = |g: u64| {
        let seg = &segments[(g % 5) as usize];
        let starts = first_decode_times(seg);
        let video = starts.iter().find(|s| s.0 == 1).unwrap().1;
        let tracks: Vec<TrackShift> = (1..=2u32)
            .map(|id| {
                let timescale = timescales[id as usize - 1];
                let source =
                    (u128::from(video) * u128::from(timescale) / u128::from(timescales[0])) as u64;
                let offset =
                    timescale_offset(source, l.schedule.start_of(g).0, BASE_TICKS, timescale)
                        .unwrap();
                TrackShift {
                    track_id: id,
                    timescale,
                    offset,
                }
            })
            .collect();
        fmp4::apply(seg, &tracks).unwrap()
    };
    let mut cat = init.clone();
    let mut raw = init.clone();
    for g in 3..13 {
        cat.extend(serve(g));
        raw.extend_from_slice(&segments[(g % 5) as usize]);
    }
    let (cat_path, raw_path) = (dir.0.join("cat.mp4"), dir.0.join("raw.mp4"));
    std::fs::write(&cat_path, &cat).unwrap();
    std::fs::write(&raw_path, &raw).unwrap();
    let (streams, stderr) = ffprobe_dts(&cat_path);
    assert_eq!(stderr, "");
    assert_eq!(streams.len(), 2);
    strictly_increasing(&streams[..1]).unwrap();
    // fMP4 has no null packets to drop the audio that overlaps at a loop point:
    // the source's audio is 256 samples longer than its video, so the audio DTS
    // steps back by that much at each loop point (2 here), and never more than
    // one AAC frame.
    let audio = &streams[1];
    let back: Vec<i64> = audio
        .windows(2)
        .filter(|w| w[1] <= w[0])
        .map(|w| w[0] - w[1])
        .collect();
    assert_eq!(back.len(), 2, "{back:?}");
    assert!(back.iter().all(|&b| b < 1024), "{back:?}");
    let (streams, _) = ffprobe_dts(&raw_path);
    assert!(
        strictly_increasing(&streams).is_err(),
        "the source restarts"
    );
}

/// ffprobe's audio packets of a file, per audio stream: (pts, duration) in
/// 90 kHz ticks.
fn ffprobe_audio(path: &Path) -> Vec<Vec<(i64, i64)>> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a", "-show_packets"])
        .args([
            "-show_entries",
            "packet=stream_index,pts,duration",
            "-of",
            "csv",
        ])
        .arg(path)
        .output()
        .expect("ffprobe on PATH");
    assert!(out.status.success(), "ffprobe failed");
    let mut streams: Vec<(usize, Vec<(i64, i64)>)> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split(',').collect();
        if f.first() != Some(&"packet") || f.len() < 4 {
            continue;
        }
        let index: usize = f[1].parse().unwrap();
        let (Ok(pts), Ok(duration)) = (f[2].parse::<i64>(), f[3].parse::<i64>()) else {
            continue;
        };
        match streams.iter_mut().find(|s| s.0 == index) {
            Some(s) => s.1.push((pts, duration)),
            None => streams.push((index, vec![(pts, duration)])),
        }
    }
    streams.into_iter().map(|s| s.1).collect()
}

/// Where consecutive audio packets do not join: (packet index, next PTS minus
/// the end of the previous packet) for every join off by more than `tolerance`
/// ticks (negative: an overlap).
fn audio_joins(packets: &[(i64, i64)], tolerance: i64) -> Vec<(usize, i64)> {
    packets
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i + 1, w[1].0 - (w[0].0 + w[0].1)))
        .filter(|&(_, d)| d.abs() > tolerance)
        .collect()
}

/// Restamped segments `range` of a stream, concatenated and read by ffprobe:
/// every audio stream's packets join within one audio frame, without overlap,
/// across every loop point and source discontinuity in the range. Returns the
/// joins that are not exact, per audio stream.
fn audio_is_continuous(
    l: &Loaded,
    range: std::ops::Range<u64>,
    path: &Path,
) -> Vec<Vec<(usize, i64)>> {
    let served: Vec<u8> = range.clone().flat_map(|g| l.serve(g)).collect();
    std::fs::write(path, &served).unwrap();
    let streams = ffprobe_audio(path);
    assert!(!streams.is_empty(), "{}: no audio", path.display());
    let mut all = Vec::new();
    for packets in &streams {
        assert!(
            packets.len() > 50,
            "{}: {} audio packets",
            path.display(),
            packets.len()
        );
        let frame = packets[0].1;
        assert!(packets.iter().all(|p| p.1 == frame), "one frame duration");
        // ffprobe's durations are whole ticks; at 44.1 kHz a frame is not.
        let joins = audio_joins(packets, 1);
        assert!(
            joins.iter().all(|&(_, d)| (0..frame).contains(&d)),
            "{}: audio joins off by more than one frame, or overlapping: {joins:?} (frame {frame} ticks)",
            path.display()
        );
        all.push(joins);
    }
    all
}

/// A 6 s stream of video and 6.1 s of audio encoded with `audio` (ffmpeg
/// arguments) in three 2 s TS segments, written to `dir`; its playlist. Its
/// last segment's audio runs 0.1 s past the video: the next run's first
/// 0.1 s of audio must go.
fn ffmpeg_stream(dir: &Path, audio: &[&str]) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=192x108:rate=25:duration=6")
        .args(["-f", "lavfi", "-i"])
        .arg("sine=frequency=440:sample_rate=48000:duration=6.1")
        .args(["-c:v", "libx264", "-preset", "veryfast"])
        .args([
            "-b:v", "150k", "-g", "50", "-bf", "0", "-pix_fmt", "yuv420p",
        ])
        .args(audio)
        .args(["-f", "hls", "-hls_time", "2", "-hls_list_size", "0"])
        .args(["-hls_playlist_type", "vod", "-hls_segment_filename"])
        .arg(dir.join("seg_%03d.ts"))
        .arg(dir.join("index.m3u8"))
        .status()
        .expect("ffmpeg on PATH");
    assert!(status.success());
    dir.join("index.m3u8")
}

/// No PID of any run start fell back from cutting frames.
fn no_fallback(l: &Loaded, name: &str) {
    for (r, report) in &l.reports {
        let fallbacks: Vec<_> = report.fallbacks().collect();
        assert!(fallbacks.is_empty(), "{name} segment {r}: {fallbacks:?}");
    }
}

#[test]
fn audio_runs_on_across_loop_points_within_one_frame() {
    let dir = TempDir::new("restamp-audio");
    // av25: loop points at g = 5 and 10.
    let l = Loaded::new("av25");
    no_fallback(&l, "av25");
    let joins = audio_is_continuous(&l, 3..13, &dir.0.join("av25.ts"));
    assert_eq!(joins[0].len(), 2, "{joins:?}");
    // discontinuity: a source discontinuity at 3, loop points at 5 and 10.
    let l = Loaded::new("discontinuity");
    let joins = audio_is_continuous(&l, 1..12, &dir.0.join("discontinuity.ts"));
    assert!(joins[0].len() <= 4, "{joins:?}");
    // The player suite's stream: 9 segments, a discontinuity at 5.
    let l = Loaded::from_playlist(
        &crate::util::root().join("tests/player/static/loop/high/index.m3u8"),
    );
    no_fallback(&l, "loop");
    audio_is_continuous(&l, 7..20, &dir.0.join("loop.ts"));
}

#[test]
fn mpeg_audio_and_ac3_run_on_across_loop_points_within_one_frame() {
    let dir = TempDir::new("restamp-audio-codecs");
    for (name, audio) in [
        ("mp2", &["-c:a", "mp2", "-b:a", "64k"][..]),
        ("ac3", &["-c:a", "ac3", "-b:a", "64k", "-ac", "1"][..]),
        ("eac3", &["-c:a", "eac3", "-b:a", "64k", "-ac", "1"][..]),
    ] {
        let l = Loaded::from_playlist(&ffmpeg_stream(&dir.0.join(name), audio));
        assert_eq!(l.n(), 3, "{name}");
        no_fallback(&l, name);
        // Frames cut, not whole PES packets (of 0.1 s or more here).
        let cut: Vec<_> = l.reports.iter().flat_map(|r| &r.1.pids).collect();
        assert_eq!(cut.len(), 1, "{name}: {cut:?}");
        assert!(
            cut[0].from_previous_run && cut[0].rewritten_pts.is_some(),
            "{name}: {cut:?}"
        );
        assert!(cut[0].dropped_frames >= 3, "{name}: {cut:?}");
        // Loop points at g = 3 and 6.
        audio_is_continuous(&l, 1..8, &dir.0.join(format!("{name}.ts")));
    }
}
