//! LL-HLS parts of the fixture streams: every segment carved for several
//! targets and every part cut, then read on its own by ffprobe (MPEG-TS), or
//! after its init segment (fMP4): the parts hold exactly the segment's
//! frames, in order, and start as players need them to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use pseudolive::ll::{CarveError, Part, TrackFrames, track_frames};
use pseudolive::loader::load_stream;
use pseudolive::model::{Resource, Segment, Stream};
use pseudolive::probe::{ProbeMode, Prober};
use pseudolive::ticks::Ticks;
use rayon::prelude::*;
use serde_json::Value;

use crate::util::{fixture, root, temp_dir};

const PACKET: usize = 188;

/// A loaded stream and the directory its files are under.
struct Loaded {
    dir: PathBuf,
    stream: Stream,
}

fn prober() -> Prober {
    Prober {
        mode: ProbeMode::Native,
        ffprobe: None,
    }
}

/// A stream directory holding `abr.m3u8`, loaded as the server does.
fn load(parent: &Path, name: &str) -> Loaded {
    let loaded = load_stream(parent, name, &prober()).unwrap_or_else(|e| panic!("{name}: {e}"));
    Loaded {
        dir: parent.join(name),
        stream: loaded.stream,
    }
}

/// A fixture with only `index.m3u8`, copied under a library with a master.
fn load_single(name: &str) -> Loaded {
    let root = temp_dir(&format!("parts-{name}"));
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        dir.join("abr.m3u8"),
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nindex.m3u8\n",
    )
    .unwrap();
    load(&root, name)
}

/// A segment's bytes (its byte range only).
fn segment_bytes(dir: &Path, seg: &Segment) -> Vec<u8> {
    let data = std::fs::read(dir.join(&seg.path)).unwrap();
    match seg.byte_range {
        Some(r) => data[r.offset as usize..(r.offset + r.length) as usize].to_vec(),
        None => data,
    }
}

/// One packet as ffprobe shows it.
#[derive(Debug, Clone, PartialEq)]
struct Pkt {
    stream: u64,
    kind: String,
    dts: Option<i64>,
    pts: Option<i64>,
    duration: Option<i64>,
    key: bool,
}

/// ffprobe's packets of a file and what it said on stderr; `decode` lets it
/// decode frames to find stream parameters (else it only demuxes).
fn ffprobe(path: &Path, decode: bool) -> (Vec<Pkt>, String) {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error"]);
    if !decode {
        cmd.arg("-nofind_stream_info");
    }
    if path.extension().is_some_and(|e| e == "ts") {
        // A small part can look like MPEG program stream to the format probe;
        // a player knows the format from the PAT (hls.js) or the playlist.
        cmd.args(["-f", "mpegts"]);
    }
    let out = cmd
        .args(["-show_packets", "-show_entries"])
        .args([
            "packet=stream_index,codec_type,dts,pts,duration,flags",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe on PATH");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let packets = json["packets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| Pkt {
                    stream: p["stream_index"].as_u64().unwrap(),
                    kind: p["codec_type"].as_str().unwrap_or("").to_string(),
                    dts: p["dts"].as_i64(),
                    pts: p["pts"].as_i64(),
                    duration: p["duration"].as_i64(),
                    key: p["flags"].as_str().is_some_and(|f| f.starts_with('K')),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        stderr.push_str("(ffprobe failed)");
    }
    (packets, stderr)
}

/// What ffprobe said, less the H.264/H.265 parser's complaint that a
/// dependent part's pictures name parameter sets it has not seen: they come
/// with the keyframe before, in an earlier part.
fn demux_errors(stderr: &str, part: &Part) -> String {
    stderr
        .lines()
        .filter(|l| part.independent || !l.contains("non-existing PPS"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pid(packet: &[u8]) -> u16 {
    (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2])
}

/// The PMT PID named by the first PAT of a segment (its first program).
fn pmt_pid(segment: &[u8]) -> u16 {
    let pat = segment.chunks(PACKET).find(|pk| pid(pk) == 0).unwrap();
    let payload = if pat[3] & 0x20 != 0 {
        &pat[5 + usize::from(pat[4])..]
    } else {
        &pat[4..]
    };
    let section = &payload[1 + usize::from(payload[0])..];
    let programs =
        &section[8..3 + (usize::from(section[1] & 0x0f) << 8 | usize::from(section[2])) - 4];
    let program = programs.chunks(4).find(|p| p[0] != 0 || p[1] != 0).unwrap();
    (u16::from(program[2] & 0x1f) << 8) | u16::from(program[3])
}

/// The lead stream's packets of a TS file, grouped by PES (a packet with a
/// DTS starts a group; ffprobe splits an audio PES into frames without one).
fn lead_groups(packets: &[Pkt]) -> Vec<Vec<Pkt>> {
    let kind = if packets.iter().any(|p| p.kind == "video") {
        "video"
    } else {
        "audio"
    };
    let Some(stream) = packets.iter().find(|p| p.kind == kind).map(|p| p.stream) else {
        return Vec::new();
    };
    let mut groups: Vec<Vec<Pkt>> = Vec::new();
    for p in packets.iter().filter(|p| p.stream == stream) {
        match groups.last_mut() {
            Some(g) if p.dts.is_none() => g.push(p.clone()),
            _ => groups.push(vec![p.clone()]),
        }
    }
    groups
}

/// Targets to carve for: whichever of them the lead's frames allow.
const TARGETS_MS: [u64; 4] = [200, 333, 500, 1000];

/// Carves every segment of every track for every target and checks every
/// TS part; a target may fail only for an audio lead whose PES (ffmpeg packs
/// about 0.37 s of audio into one) are longer. Returns how many parts were checked.
fn check_ts_stream(loaded: &Loaded, out: &Path) -> usize {
    let mut jobs = Vec::new();
    for track in &loaded.stream.tracks {
        if track.segments[0].path.ends_with(".vtt") {
            // Subtitles: no frames to cut at.
            let err = track_frames(&loaded.dir, track).unwrap_err();
            assert!(
                err.to_string().contains("cannot be cut into parts"),
                "{err}"
            );
            continue;
        }
        let tf = Arc::new(track_frames(&loaded.dir, track).unwrap());
        assert_eq!(tf.len(), track.segments.len());
        // Some target near 200 ms suits every segment of the track.
        let durations: Vec<Ticks> = track.segments.iter().map(|s| s.duration).collect();
        let fitted = tf.fit_target(&durations, Ticks::from_ms(200));
        assert!(fitted.is_some(), "{}: no target near 200 ms", track.name);
        let n = track.segments.len();
        for (i, seg) in track.segments.iter().enumerate() {
            // ffprobe (a tenth of a second a run) reads the parts of the
            // first two segments and the last.
            let probe = i < 2 || i + 1 == n;
            let dir = out.join(format!("{}-{i}", track.name));
            jobs.push((tf.clone(), i, seg, dir, probe.then_some(i + 1 == n)));
        }
    }
    jobs.par_iter()
        .map(|(tf, i, seg, out, probe_parts)| {
            // Which target's parts ffprobe reads: in turn, the longest for the last segment.
            std::fs::create_dir_all(out).unwrap();
            let bytes = segment_bytes(&loaded.dir, seg);
            let whole = out.join("whole.ts");
            std::fs::write(&whole, &bytes).unwrap();
            let (packets, _) = ffprobe(&whole, false);
            let groups = lead_groups(&packets);
            let frames = tf.segment(*i).unwrap();
            assert_eq!(
                frames.frames.len(),
                groups.len(),
                "{}: lead frames, ffprobe's PES",
                seg.path
            );
            let audio = groups[0][0].kind == "audio";
            let flags: Vec<bool> = frames.frames.iter().map(|f| f.independent).collect();
            let keys: Vec<bool> = groups.iter().map(|g| audio || g[0].key).collect();
            assert_eq!(
                flags, keys,
                "{}: independent frames, ffprobe's keyframes",
                seg.path
            );
            let mut carved = Vec::new();
            for target in TARGETS_MS.map(Ticks::from_ms) {
                match tf.carve(*i, seg.duration, target) {
                    Ok(parts) => carved.push(parts),
                    Err(e) => {
                        // No whole number of frames makes 85–100 % of the target.
                        let step = frames.frames[1].at.0;
                        let no_fit = !(1..=100)
                            .any(|k| k * step * 20 >= target.0 * 17 && k * step <= target.0);
                        assert!(
                            (audio && matches!(e, CarveError::FrameTooLong { .. }))
                                || (matches!(e, CarveError::Infeasible { .. }) && no_fit),
                            "{} for {target:?}: {e}",
                            seg.path
                        );
                    }
                }
            }
            assert!(
                !carved.is_empty(),
                "{}: no target could be carved",
                seg.path
            );
            // The bytes are checked for every target.
            let probed = match probe_parts {
                Some(true) => Some(carved.len() - 1),
                Some(false) => Some(i % carved.len()),
                None => None,
            };
            for (k, parts) in carved.iter().enumerate() {
                let probe = (probed == Some(k)).then_some(&groups[..]);
                check_ts_parts(tf, *i, &bytes, parts, probe, out, &seg.path);
            }
            carved.iter().map(Vec::len).sum::<usize>()
        })
        .sum()
}

fn check_ts_parts(
    tf: &TrackFrames,
    i: usize,
    segment: &[u8],
    parts: &[Part],
    probe: Option<&[Vec<Pkt>]>,
    out: &Path,
    name: &str,
) {
    let pmt = pmt_pid(segment);
    let mut all = Vec::new();
    for (p, part) in parts.iter().enumerate() {
        let bytes = tf.cut(i, segment, part).unwrap();
        let what = format!("{name} part {p} of {} ({:?})", parts.len(), part.frames());
        assert_eq!(bytes.len() % PACKET, 0, "{what}: whole packets");
        // PAT then PMT first, after other tables (an SDT) if any.
        let first: Vec<u16> = bytes
            .chunks(PACKET)
            .map(pid)
            .skip_while(|&p| (0x10..0x20).contains(&p))
            .take(2)
            .collect();
        assert_eq!(first, [0, pmt], "{what}: starts with PAT and PMT");
        // Each part's data for a PID starts with a unit (PES or section) of
        // its own, but at the segment's start.
        if p > 0 {
            let mut seen: Vec<u16> = Vec::new();
            for pk in bytes.chunks(PACKET) {
                let id = pid(pk);
                if !seen.contains(&id) && id != 0x1fff {
                    seen.push(id);
                    assert!(pk[1] & 0x40 != 0, "{what}: PID {id:#x} starts mid-unit");
                }
            }
        }
        all.extend_from_slice(&bytes);
        let Some(groups) = probe else {
            continue;
        };
        let file = out.join("part.ts");
        std::fs::write(&file, &bytes).unwrap();
        let (packets, stderr) = ffprobe(&file, false);
        assert_eq!(demux_errors(&stderr, part), "", "{what}: ffprobe");
        let own = lead_groups(&packets);
        let expected = &groups[part.frames()];
        assert_eq!(own.len(), expected.len(), "{what}: lead PES count");
        let dts = |g: &[Vec<Pkt>]| g.iter().map(|g| (g[0].dts, g.len())).collect::<Vec<_>>();
        assert_eq!(dts(&own), dts(expected), "{what}: lead DTS and frames");
        if part.independent && own[0][0].kind == "video" {
            assert!(own[0][0].key, "{what}: INDEPENDENT but no keyframe first");
            let (_, stderr) = ffprobe(&file, true);
            assert_eq!(stderr, "", "{what}: an independent part decodes");
        }
    }
    // The parts read in a row carry every packet of the segment once, each
    // PID's in order; the tables added are copies of the segment's.
    assert!(
        all.starts_with(&segment[..PACKET]),
        "{name}: first part at byte 0"
    );
    let by_pid = |buf: &[u8]| {
        let mut m: BTreeMap<u16, Vec<Vec<u8>>> = BTreeMap::new();
        for pk in buf.chunks_exact(PACKET) {
            m.entry(pid(pk)).or_default().push(pk.to_vec());
        }
        m
    };
    let (mut got, want) = (by_pid(&all), by_pid(segment));
    for table in [0, pmt] {
        let added = got.remove(&table).unwrap_or_default();
        let own = &want[&table];
        assert!(added.len() >= own.len() && added.iter().all(|pk| own.contains(pk)));
    }
    for (id, packets) in &want {
        if *id != 0 && *id != pmt {
            assert!(
                got.get(id) == Some(packets),
                "{name}: PID {id:#x} across the parts"
            );
        }
    }
    assert_eq!(got.len() + 2, want.len(), "{name}: no PID added");
}

fn check_ts_streams(test: &str, streams: &[(&Path, &str)], min_parts: usize) {
    let out = temp_dir(test);
    let mut total = 0;
    for (parent, name) in streams {
        let loaded = if parent.as_os_str().is_empty() {
            load_single(name)
        } else {
            load(parent, name)
        };
        total += check_ts_stream(&loaded, &out.join(name));
    }
    assert!(total >= min_parts, "{total} parts checked");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn ts_parts_of_ffmpeg_fixtures() {
    let single = Path::new("");
    check_ts_streams(
        "parts-ts-ffmpeg",
        &[
            (single, "av25"),
            (single, "av2997"),
            (single, "bframes"),
            (single, "audio_only"),
        ],
        300,
    );
}

#[test]
fn ts_parts_of_packager_fixtures() {
    let pkg = fixture("pkg");
    check_ts_streams(
        "parts-ts-pkg",
        &[
            (&pkg, "ff_demux"),
            (&pkg, "gst_hlssink2"),
            (&pkg, "shaka_ts"),
            (&pkg, "ff_ts_single"),
        ],
        300,
    );
}

#[test]
fn ts_parts_of_the_player_stream() {
    let player = root().join("tests/player/static");
    if !player.join("loop/abr.m3u8").is_file() {
        return; // Built by scripts/make-player-stream.sh.
    }
    check_ts_streams("parts-ts-loop", &[(&player, "loop")], 300);
}

/// A segment's init section (its `EXT-X-MAP`, byte range applied).
fn init_bytes(dir: &Path, seg: &Segment) -> Vec<u8> {
    let map = seg.map.as_ref().expect("an fMP4 segment with EXT-X-MAP");
    let Resource::File(rel) = &map.uri else {
        panic!("external map")
    };
    let data = std::fs::read(dir.join(rel)).unwrap();
    match map.byte_range {
        Some(r) => data[r.offset as usize..(r.offset + r.length) as usize].to_vec(),
        None => data,
    }
}

/// ffprobe's packets of one stream.
fn stream_packets(packets: &[Pkt], stream: u64) -> Vec<Pkt> {
    packets
        .iter()
        .filter(|p| p.stream == stream)
        .cloned()
        .collect()
}

/// Carves every segment of every track of an fMP4 stream for every target
/// and checks that init + part reads on its own, that each part holds its
/// lead frames, and that the parts' packets, in order, are the segment's.
fn check_fmp4_stream(loaded: &Loaded, out: &Path) -> usize {
    let mut jobs = Vec::new();
    for track in &loaded.stream.tracks {
        let tf = Arc::new(track_frames(&loaded.dir, track).unwrap());
        for (i, seg) in track.segments.iter().enumerate() {
            jobs.push((tf.clone(), i, seg, out.join(format!("{}-{i}", track.name))));
        }
    }
    jobs.par_iter()
        .map(|(tf, i, seg, out)| {
            std::fs::create_dir_all(out).unwrap();
            let init = init_bytes(&loaded.dir, seg);
            let bytes = segment_bytes(&loaded.dir, seg);
            let whole = out.join("whole.mp4");
            std::fs::write(&whole, [&init[..], &bytes].concat()).unwrap();
            let (packets, stderr) = ffprobe(&whole, false);
            assert_eq!(stderr, "", "{}: ffprobe", seg.path);
            let streams: Vec<u64> = {
                let mut s: Vec<u64> = packets.iter().map(|p| p.stream).collect();
                s.sort();
                s.dedup();
                s
            };
            let lead = packets
                .iter()
                .find(|p| p.kind == "video")
                .or(packets.first())
                .unwrap()
                .stream;
            let frames = tf.segment(*i).unwrap();
            assert_eq!(frames.frames.len(), stream_packets(&packets, lead).len());
            let mut checked = 0;
            for (t, target) in TARGETS_MS.map(Ticks::from_ms).into_iter().enumerate() {
                let parts = tf.carve(*i, seg.duration, target).unwrap();
                let cuts: Vec<Vec<u8>> = parts
                    .iter()
                    .map(|p| tf.cut(*i, &bytes, p).unwrap())
                    .collect();
                checked += parts.len();
                // ffprobe reads the parts of one target per segment, in turn.
                if t != i % TARGETS_MS.len() {
                    continue;
                }
                let mut per_stream = vec![Vec::new(); streams.len()];
                for (p, (part, cut)) in parts.iter().zip(&cuts).enumerate() {
                    let what = format!("{} {target:?} part {p} ({:?})", seg.path, part.frames());
                    let file = out.join("part.mp4");
                    std::fs::write(&file, [&init[..], cut].concat()).unwrap();
                    let (own, stderr) = ffprobe(&file, part.independent);
                    assert_eq!(stderr, "", "{what}: ffprobe");
                    let lead_packets = stream_packets(&own, lead);
                    assert_eq!(
                        lead_packets.len(),
                        part.frames().len(),
                        "{what}: lead samples"
                    );
                    if part.independent && own.iter().any(|p| p.kind == "video") {
                        assert!(own.iter().find(|p| p.stream == lead).unwrap().key, "{what}");
                    }
                    for (k, &s) in streams.iter().enumerate() {
                        per_stream[k].extend(stream_packets(&own, s));
                    }
                }
                for (k, &s) in streams.iter().enumerate() {
                    // ffprobe gives audio durations only when it decodes.
                    let times = |p: &[Pkt]| p.iter().map(|p| (p.dts, p.pts)).collect::<Vec<_>>();
                    assert_eq!(
                        times(&per_stream[k]),
                        times(&stream_packets(&packets, s)),
                        "{} {target:?}: stream {s} over all parts",
                        seg.path
                    );
                    // Continuous across part boundaries: each packet ends where
                    // the next starts (where ffprobe gave a duration).
                    for w in per_stream[k].windows(2) {
                        if let (Some(a), Some(d), Some(b)) = (w[0].dts, w[0].duration, w[1].dts) {
                            assert_eq!(a + d, b, "{} {target:?}: stream {s}", seg.path);
                        }
                    }
                }
            }
            checked
        })
        .sum()
}

#[test]
fn fmp4_parts_of_the_fixtures() {
    let out = temp_dir("parts-fmp4");
    let mut total = 0;
    for name in ["fmp4_avc", "fmp4_hevc_ac3", "fmp4_single"] {
        total += check_fmp4_stream(&load_single(name), &out.join(name));
    }
    total += check_fmp4_stream(&load(&fixture(""), "cmaf_shaka"), &out.join("cmaf_shaka"));
    let player = root().join("tests/player/static");
    if player.join("loopf/abr.m3u8").is_file() {
        total += check_fmp4_stream(&load(&player, "loopf"), &out.join("loopf"));
    }
    assert!(total > 300, "{total} parts checked");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn tracks_that_cannot_be_cut_name_the_file() {
    let first_error = |loaded: &Loaded| track_frames(&loaded.dir, &loaded.stream.tracks[0]);
    let err = first_error(&load(&fixture("pkg"), "ff_aes_iv")).unwrap_err();
    assert!(err.path.ends_with("v/seg_000.ts"), "{err}");
    assert!(err.problem.contains("encrypted"), "{err}");
    let err = first_error(&load_single("not_ts")).unwrap_err();
    assert!(err.path.ends_with("seg_003.ts"), "{err}");
    assert!(err.problem.contains("not MPEG-TS"), "{err}");
    // One PES timestamp moved by an hour: its frames go backwards after it.
    let err = first_error(&load_single("glitch")).unwrap_err();
    assert!(err.path.ends_with("seg_004.ts"), "{err}");
    assert!(err.problem.contains("backwards"), "{err}");
    // A segment cut short in a packet still has frames and parts, but its
    // frames stop 0.88 s before its end: the last part holds that gap.
    let truncated = load_single("truncated");
    let tf = first_error(&truncated).unwrap();
    let seg = &truncated.stream.tracks[0].segments[2];
    let bytes = segment_bytes(&truncated.dir, seg);
    let err = tf.carve(2, seg.duration, Ticks::from_ms(500)).unwrap_err();
    assert!(
        matches!(err, CarveError::FrameTooLong { frame: 28, .. }),
        "{err}"
    );
    let parts = tf.carve(2, seg.duration, Ticks::from_ms(1000)).unwrap();
    let total: usize = parts
        .iter()
        .map(|p| tf.cut(2, &bytes, p).unwrap().len())
        .sum();
    assert!(total >= bytes.len());
    // Bytes that are not the segment's are refused, not cut.
    assert!(tf.cut(1, &bytes, &parts[0]).is_err());
    assert!(tf.cut(99, &bytes, &parts[0]).is_err());
}
