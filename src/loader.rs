//! Loading one stream from disk into a [`Stream`]: parse the master and
//! media playlists, check the files, measure every segment, check that the
//! variants line up. Blocking IO; runs off the async runtime.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::model::{Key, Map, Resource, Segment, Stream, Track, TrackKind};
use crate::probe::Prober;
use crate::source::{self, SourceError};
use crate::tags;
use crate::ticks::{HZ, Ticks};
use crate::urls::MASTER_FILE;

/// A stream as loaded, with how it was obtained.
#[derive(Debug)]
pub struct Loaded {
    /// The stream.
    pub stream: Stream,
    /// Which source URI of the master each track was loaded from.
    pub master_uris: Vec<(String, usize)>,
    /// How long loading took.
    pub load_time: Duration,
}

/// The names of the streams under `root`: directories holding an `abr.m3u8`, sorted.
pub fn find_streams(root: &Path) -> Result<Vec<String>, SourceError> {
    let entries = std::fs::read_dir(root)
        .map_err(|e| SourceError::new(root, format!("cannot read the library root: {e}")))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(MASTER_FILE).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// A name that is one URL path segment: no `/`, `\\` or NUL, not `.` or `..`.
fn url_safe_name(name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect();
    if name == "." || name == ".." {
        name.replace('.', "_")
    } else {
        name
    }
}

/// Whether a file is a WebVTT subtitle segment, by its name.
fn is_webvtt(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("vtt") || e.eq_ignore_ascii_case("webvtt"))
}

/// A relative path as the `/`-separated form the model keeps.
pub(crate) fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The URL names of the tracks, from the source, never from positions: the
/// directory of the playlist when no other playlist shares it, else the file
/// stem, else a rendition's NAME (or GROUP-ID), else directory and stem.
fn track_names(sources: &[(PathBuf, TrackKind, Option<String>)]) -> Vec<String> {
    let text = |s: Option<&std::ffi::OsStr>| s.map(|s| s.to_string_lossy().into_owned());
    let dir = |rel: &Path| text(rel.parent().and_then(|p| p.file_name()));
    let stem = |rel: &Path| text(rel.file_stem()).unwrap_or_else(|| "track".into());
    let shares_dir = |i: usize| {
        let mine = sources[i].0.parent();
        sources
            .iter()
            .enumerate()
            .any(|(j, (r, _, _))| j != i && r.parent() == mine)
    };
    let stems: Vec<String> = sources.iter().map(|(r, _, _)| stem(r)).collect();
    let dirs: Vec<Option<String>> = sources.iter().map(|(r, _, _)| dir(r)).collect();
    let unique_dir = |i: usize| dirs.iter().filter(|d| **d == dirs[i]).count() == 1;
    let mut names: Vec<String> = Vec::with_capacity(sources.len());
    for (i, (_, _, label)) in sources.iter().enumerate() {
        let candidates = [
            dirs[i].clone().filter(|_| !shares_dir(i) && unique_dir(i)),
            Some(stems[i].clone()).filter(|s| stems.iter().filter(|t| *t == s).count() == 1),
            label.as_deref().map(url_safe_name),
            dirs[i].as_ref().map(|d| format!("{d}-{}", stems[i])),
        ];
        let taken = |n: &String| names.contains(n);
        let name = candidates
            .into_iter()
            .flatten()
            .find(|n| !n.is_empty() && !taken(n))
            .unwrap_or_else(|| format!("{}-{i}", stems[i]));
        names.push(name);
    }
    names
}

/// Loads the stream `name` under `root`. Every error names the file at fault.
pub fn load_stream(root: &Path, name: &str, prober: &Prober) -> Result<Loaded, SourceError> {
    let started = Instant::now();
    let dir = root.join(name);
    let master_path = dir.join(MASTER_FILE);
    if name.contains('=') {
        return Err(SourceError::new(
            &dir,
            "stream directory names may not contain '=' (reserved for URL options)",
        ));
    }
    if !master_path.is_file() {
        return Err(SourceError::new(&master_path, "master playlist missing"));
    }
    let (master_text, master) = source::read_master(&master_path)?;
    if master.variants.iter().all(|v| v.is_i_frame) {
        return Err(SourceError::new(
            &master_path,
            "master playlist lists no variant (#EXT-X-STREAM-INF)",
        ));
    }
    for v in master.variants.iter().filter(|v| !v.is_i_frame) {
        for (group, kind) in [(&v.audio, "AUDIO"), (&v.subtitles, "SUBTITLES")] {
            if let Some(g) = group
                && !master.alternatives.iter().any(|a| &a.group_id == g)
            {
                tracing::warn!(file = %master_path.display(), "{kind}=\"{g}\" names no EXT-X-MEDIA GROUP-ID");
            }
        }
    }
    if master.variants.iter().any(|v| v.is_i_frame) {
        tracing::info!(file = %master_path.display(), "I-frame playlists are not served live; dropped from the master");
    }

    // Every playlist to serve live: variants in master order, then
    // renditions; one track per file, however many entries name it.
    let variants = master
        .variants
        .iter()
        .filter(|v| !v.is_i_frame)
        .map(|v| (v.uri.clone(), TrackKind::Variant, None));
    let renditions = master.alternatives.iter().filter_map(|a| {
        let label = if a.name.is_empty() {
            a.group_id.clone()
        } else {
            a.name.clone()
        };
        a.uri
            .clone()
            .map(|u| (u, TrackKind::Rendition, Some(label)))
    });
    let mut master_uris: Vec<(String, usize)> = Vec::new();
    let mut sources: Vec<(PathBuf, TrackKind, Option<String>)> = Vec::new();
    for (uri, kind, label) in variants.chain(renditions) {
        let rel = source::resolve_uri(&dir, Path::new(""), &uri, &master_path)?;
        let index = match sources.iter().position(|(r, _, _)| *r == rel) {
            Some(i) => i,
            None => {
                sources.push((rel, kind, label));
                sources.len() - 1
            }
        };
        if !master_uris.iter().any(|(u, _)| *u == uri) {
            master_uris.push((uri, index));
        }
    }
    let names = track_names(&sources);

    let real_root = std::fs::canonicalize(root)
        .map_err(|e| SourceError::new(root, format!("cannot resolve: {e}")))?;
    let mut tracks: Vec<Track> = Vec::with_capacity(sources.len());
    let mut playlists = Vec::with_capacity(sources.len());
    for ((rel, kind, _), name) in sources.iter().zip(names) {
        let mut track = load_track(&dir, rel, *kind, prober, &real_root)?;
        track.name = name;
        tracks.push(track);
        playlists.push(dir.join(rel));
    }
    check_alignment(name, &tracks, &playlists)?;
    Ok(Loaded {
        stream: Stream::new(name, master_text, tracks),
        master_uris,
        load_time: started.elapsed(),
    })
}

/// Largest difference in loop length a track segmented differently from the
/// reference may have: it is absorbed by its last segment.
const LOOP_TOLERANCE: Ticks = Ticks::from_ms(250);

/// Checks that every track can share the reference's (the first variant's)
/// clock: a track segmented differently must loop in the same time (within
/// [`LOOP_TOLERANCE`]) with as many discontinuities per loop; a track
/// segmented alike whose durations differ is logged.
fn check_alignment(name: &str, tracks: &[Track], playlists: &[PathBuf]) -> Result<(), SourceError> {
    let reference = &tracks[0];
    let n = reference.segments.len();
    let disc = |t: &Track| {
        t.segments
            .iter()
            .skip(1)
            .filter(|s| s.discontinuity)
            .count()
    };
    let (ref_loop, ref_disc) = (reference.loop_duration(), disc(reference));
    for (track, playlist) in tracks.iter().zip(playlists).skip(1) {
        let own_loop = track.loop_duration();
        let aligned = track.segments.len() == n
            && (1..n)
                .all(|i| track.segments[i].discontinuity == reference.segments[i].discontinuity);
        if aligned {
            let worst = track
                .segments
                .iter()
                .zip(&reference.segments)
                .map(|(a, b)| a.duration.0.abs_diff(b.duration.0))
                .max()
                .unwrap_or(0);
            if worst > HZ / 1000 {
                tracing::warn!(
                    stream = name,
                    "variant {}'s segments differ from variant {}'s by up to {:.3} s (loops of {:.3} s and {:.3} s): \
                     listed on {}'s timeline, with a program date-time on every segment",
                    track.name,
                    reference.name,
                    Ticks(worst).as_secs_f64(),
                    own_loop.as_secs_f64(),
                    ref_loop.as_secs_f64(),
                    reference.name,
                );
            }
            continue;
        }
        if disc(track) != ref_disc {
            return Err(SourceError::new(
                playlist,
                format!(
                    "variant {} has {} discontinuities per loop but variant {} has {ref_disc}: \
                     their discontinuity sequences would disagree",
                    track.name,
                    disc(track),
                    reference.name
                ),
            ));
        }
        if own_loop.0.abs_diff(ref_loop.0) > LOOP_TOLERANCE.0 {
            return Err(SourceError::new(
                playlist,
                format!(
                    "variant {} loops in {:.3} s ({} segments) but variant {} in {:.3} s ({n} segments): \
                     a track segmented differently must loop in the same time to within {:.3} s",
                    track.name,
                    own_loop.as_secs_f64(),
                    track.segments.len(),
                    reference.name,
                    ref_loop.as_secs_f64(),
                    LOOP_TOLERANCE.as_secs_f64(),
                ),
            ));
        }
        tracing::info!(
            stream = name,
            "variant {} is segmented differently from variant {} ({} segments, {:.3} s, against {n}, {:.3} s): \
             it gets its own media sequence numbers on the same clock",
            track.name,
            reference.name,
            track.segments.len(),
            own_loop.as_secs_f64(),
            ref_loop.as_secs_f64(),
        );
    }
    Ok(())
}

/// Refuses a file that resolves (through symlinks) outside the library
/// root: it would never be served.
fn check_inside(path: &Path, real_root: &Path) -> Result<(), SourceError> {
    let real = std::fs::canonicalize(path)
        .map_err(|e| SourceError::new(path, format!("cannot resolve: {e}")))?;
    if real.starts_with(real_root) {
        Ok(())
    } else {
        Err(SourceError::new(
            path,
            format!(
                "resolves to {} outside the library root; it would not be served",
                real.display()
            ),
        ))
    }
}

/// An IV made explicit where the source implied it: without `IV`, a key of
/// the identity format uses the media sequence number (RFC 8216 5.2), which
/// live re-numbering changes.
fn explicit_iv(key: &Key, source_msn: u128) -> Option<String> {
    let identity = key.keyformat.as_deref().is_none_or(|f| f == "identity");
    if key.iv.is_some() || key.method == "NONE" || !identity {
        return key.iv.clone();
    }
    Some(format!("0x{source_msn:032x}"))
}

/// Loads one media playlist: its segments measured, KEY/MAP carried forward.
fn load_track(
    dir: &Path,
    rel: &Path,
    kind: TrackKind,
    prober: &Prober,
    real_root: &Path,
) -> Result<Track, SourceError> {
    let path = dir.join(rel);
    if !path.is_file() {
        return Err(SourceError::new(&path, "variant playlist missing"));
    }
    let (text, pl) = source::read_media_text(&path)?;
    check_inside(&path, real_root)?;
    let mut tags = tags::scan(&text);
    if tags.segments.len() != pl.segments.len() {
        tracing::warn!(file = %path.display(), "cannot tell which tags belong to which segment; source tags dropped");
        tags.segments = vec![(Vec::new(), None); pl.segments.len()];
    }
    if !tags.dropped.is_empty() {
        tracing::info!(file = %path.display(), "not carried into the live playlist: {}", tags.dropped.join(", "));
    }
    let base = rel.parent().unwrap_or(Path::new(""));
    let inputs = source::segment_inputs(dir, &path, &pl)?;
    let mut rels = Vec::with_capacity(pl.segments.len());
    for input in &inputs {
        let files = std::iter::once(&input.path).chain(input.init.as_ref().map(|i| &i.path));
        for file in files {
            if !file.is_file() {
                return Err(SourceError::new(
                    file,
                    format!("segment file missing (listed in {})", path.display()),
                ));
            }
            check_inside(file, real_root)?;
        }
        if let Some(r) = input.byte_range {
            let len = std::fs::metadata(&input.path).map_or(0, |m| m.len());
            if r.offset.saturating_add(r.length) > len {
                return Err(SourceError::new(
                    &input.path,
                    format!(
                        "EXT-X-BYTERANGE {}@{} lies beyond the file's {len} bytes (listed in {})",
                        r.length,
                        r.offset,
                        path.display()
                    ),
                ));
            }
        }
        rels.push(
            input
                .path
                .strip_prefix(dir)
                .unwrap_or(&input.path)
                .to_path_buf(),
        );
    }
    let measured = if inputs.iter().all(|i| is_webvtt(&i.path)) {
        // WebVTT has no timing of its own to read: #EXTINF is the truth.
        inputs
            .iter()
            .map(|i| crate::probe::Measured {
                ticks: i.extinf_ticks,
                method: Some(crate::probe::Method::Playlist),
                error: None,
                media: None,
            })
            .collect()
    } else {
        prober.measure_playlist(&inputs)
    };
    if measured.len() != inputs.len() {
        return Err(SourceError::new(
            &path,
            format!("measured {} of {} segments", measured.len(), inputs.len()),
        ));
    }

    let resource = |uri: &str| -> Result<Resource, SourceError> {
        if uri.contains("://") || uri.starts_with("data:") || uri.starts_with("skd:") {
            return Ok(Resource::External(uri.to_string()));
        }
        Ok(Resource::File(slash_path(&source::resolve_uri(
            dir, base, uri, &path,
        )?)))
    };
    let mut key: Option<Key> = None;
    let mut map: Option<Map> = None;
    let mut segments = Vec::with_capacity(pl.segments.len());
    for (i, (((seg, m), seg_rel), (seg_tags, source_pdt_ms))) in pl
        .segments
        .iter()
        .zip(&measured)
        .zip(&rels)
        .zip(tags.segments)
        .enumerate()
    {
        if let Some(k) = &seg.key {
            key = Some(Key {
                method: k.method.to_string(),
                uri: k.uri.as_deref().map(resource).transpose()?,
                iv: k.iv.clone(),
                keyformat: k.keyformat.clone(),
                keyformatversions: k.keyformatversions.clone(),
            });
        }
        if let Some(mp) = &seg.map {
            map = Some(Map {
                uri: resource(&mp.uri)?,
                byte_range: mp.byte_range.as_ref().map(|r| crate::model::ByteRange {
                    length: r.length,
                    offset: r.offset.unwrap_or(0),
                }),
            });
        }
        let method = match m.method {
            Some(method) if m.ticks > 0 => method,
            _ => {
                return Err(SourceError::new(
                    &inputs[i].path,
                    format!(
                        "cannot measure the duration and the playlist gives none: {}",
                        m.error.as_deref().unwrap_or("zero duration")
                    ),
                ));
            }
        };
        let key = key.as_ref().map(|k| Key {
            iv: explicit_iv(k, u128::from(pl.media_sequence) + i as u128),
            ..k.clone()
        });
        segments.push(Segment {
            path: slash_path(seg_rel),
            byte_range: inputs[i].byte_range.map(|r| crate::model::ByteRange {
                length: r.length,
                offset: r.offset,
            }),
            duration: Ticks(m.ticks),
            method,
            source_duration: Ticks(inputs[i].extinf_ticks),
            discontinuity: seg.discontinuity,
            key,
            map: map.clone(),
            // Interstitial assets: relative to the stream directory from here on.
            tags: seg_tags
                .iter()
                .map(|t| {
                    tags::map_relative_uris(t, |uri| {
                        source::resolve_uri(dir, base, uri, &path)
                            .ok()
                            .map(|p| slash_path(&p))
                    })
                })
                .collect(),
            source_pdt_ms,
        });
    }
    Ok(Track {
        name: String::new(),
        kind,
        segments,
        header_tags: tags.header,
        timing: crate::model::TrackTiming::Shared,
    })
}

/// What continuous timestamps need of a track's MPEG-TS segments: each
/// file read once (start PTS, continuity counters), and the first and last
/// segment of every run once more (where the run's audio ends; the next
/// run's start cut there). Blocking IO; built on the first request that asks
/// for continuous timestamps. Runs are placed on the track's own durations
/// (see [`ts_restamp_plan_on`]).
pub fn ts_restamp_plan(
    stream_dir: &Path,
    track: &Track,
) -> Result<crate::restamp::ts::TsRestampPlan, SourceError> {
    ts_restamp_plan_on(stream_dir, track, None)
}

/// [`ts_restamp_plan`] on the schedule the track is served on
/// (`Stream::schedule_of(track)`): a run's first segment is cut where the
/// previous run's audio ends on the served timeline, which depends on the
/// duration the schedule gives the previous run's last segment. Without a
/// schedule, the track's own schedule when it has one, else its own
/// durations: the same for the reference track and for tracks whose
/// durations equal its own; within 1 ms for tracks cut alike
/// (`TrackTiming::Shared`); for a variant with its own durations
/// (`TrackTiming::SharedWithOwnDurations`), off by the difference of the two
/// at the loop point, as every segment of such a variant is.
pub fn ts_restamp_plan_on(
    stream_dir: &Path,
    track: &Track,
    schedule: Option<&crate::timeline::Schedule>,
) -> Result<crate::restamp::ts::TsRestampPlan, SourceError> {
    use crate::model::TrackTiming;
    use crate::restamp::ts::{BuildError, PlanSegment, TsRestampPlan};
    let path_of = |i: usize| stream_dir.join(&track.segments[i].path);
    let read = |i: usize| -> Result<Vec<u8>, SourceError> {
        let seg = &track.segments[i];
        let path = path_of(i);
        if seg.key.as_ref().is_some_and(|k| k.method != "NONE") {
            return Err(SourceError::new(
                &path,
                "encrypted segments cannot have their timestamps rewritten",
            ));
        }
        let data = std::fs::read(&path)
            .map_err(|e| SourceError::new(&path, format!("cannot read: {e}")))?;
        match seg.byte_range {
            Some(r) => data
                .get(r.offset as usize..(r.offset + r.length) as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| SourceError::new(&path, "byte range outside the file")),
            None => Ok(data),
        }
    };
    let schedule = schedule.or(match &track.timing {
        TrackTiming::Own(own) => Some(own),
        _ => None,
    });
    let segments: Vec<PlanSegment> = (0..track.segments.len())
        .map(|i| PlanSegment {
            starts_run: i == 0 || track.segments[i].discontinuity,
            duration_ticks: match schedule {
                Some(s) => s.duration_of(i as u64).0,
                None => track.segments[i].duration.0,
            },
        })
        .collect();
    let (plan, reports) = TsRestampPlan::build(&segments, crate::restamp::BASE_TICKS, read)
        .map_err(|e| match e {
            BuildError::Read(e) => e,
            BuildError::Timing { index, error } => SourceError::new(
                &path_of(index),
                format!("timestamps cannot be rewritten: {error}"),
            ),
            BuildError::Plan(e) => SourceError::new(stream_dir, format!("{}: {e}", track.name)),
        })?;
    for (r, report) in &reports {
        let path = path_of(*r);
        for t in &report.pids {
            tracing::debug!(
                file = %path.display(),
                "ts=continuous: run start, PID {:#x}: cut at PTS {} ({}), {} PES and {} frames dropped{}",
                t.pid,
                t.trim_pts,
                if t.from_previous_run { "where the previous run's audio ends" } else { "the reference start" },
                t.dropped_pes,
                t.dropped_frames,
                t.rewritten_pts
                    .map(|p| format!(", the next PES rewritten from PTS {p}"))
                    .unwrap_or_default(),
            );
        }
        for (pid, why) in report.fallbacks() {
            tracing::warn!(file = %path.display(), "ts=continuous: run start, PID {pid:#x}: {why}");
        }
    }
    Ok(plan)
}

/// What continuous timestamps need of a track's fMP4 segments: the tracks of
/// its init segment and the reference track's first decode time per segment.
/// Blocking IO; built on the first request that asks for it.
pub fn fmp4_restamp_plan(
    stream_dir: &Path,
    track: &Track,
) -> Result<crate::restamp::fmp4::Fmp4Plan, SourceError> {
    use crate::probe::fmp4;
    let read =
        |path: &Path, range: Option<crate::model::ByteRange>| -> Result<Vec<u8>, SourceError> {
            let data = std::fs::read(path)
                .map_err(|e| SourceError::new(path, format!("cannot read: {e}")))?;
            match range {
                Some(r) => data
                    .get(r.offset as usize..(r.offset + r.length) as usize)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| SourceError::new(path, "byte range outside the file")),
                None => Ok(data),
            }
        };
    let mut plan: Option<crate::restamp::fmp4::Fmp4Plan> = None;
    for seg in &track.segments {
        let path = stream_dir.join(&seg.path);
        let Some(crate::model::Map {
            uri: Resource::File(init_path),
            byte_range,
        }) = &seg.map
        else {
            return Err(SourceError::new(
                &path,
                "fMP4 segment without an EXT-X-MAP init section",
            ));
        };
        let init_path = stream_dir.join(init_path);
        let init_bytes = read(&init_path, *byte_range)?;
        let init = fmp4::parse_init(&init_bytes).map_err(|e| {
            SourceError::new(&init_path, format!("timestamps cannot be rewritten: {e}"))
        })?;
        let media = read(&path, seg.byte_range)?;
        let timing = fmp4::scan(&init, &media)
            .map_err(|e| SourceError::new(&path, format!("timestamps cannot be rewritten: {e}")))?;
        let start = timing
            .start_units
            .ok_or_else(|| SourceError::new(&path, "no tfdt: timestamps cannot be rewritten"))?;
        let plan = plan.get_or_insert_with(|| crate::restamp::fmp4::Fmp4Plan {
            tracks: init.tracks.iter().map(|t| (t.id, t.timescale)).collect(),
            reference_timescale: timing.timescale,
            starts: Vec::with_capacity(track.segments.len()),
            reference_is_video: timing.kind == fmp4::TrackKind::Video,
        });
        plan.starts.push(start);
    }
    plan.ok_or_else(|| SourceError::new(stream_dir, format!("{}: no segments", track.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(iv: Option<&str>, keyformat: Option<&str>) -> Key {
        Key {
            method: "AES-128".into(),
            uri: Some(Resource::File("v/key.bin".into())),
            iv: iv.map(str::to_string),
            keyformat: keyformat.map(str::to_string),
            keyformatversions: None,
        }
    }

    fn names(sources: &[(&str, TrackKind, Option<&str>)]) -> Vec<String> {
        let sources: Vec<_> = sources
            .iter()
            .map(|(p, k, l)| (PathBuf::from(p), *k, l.map(str::to_string)))
            .collect();
        track_names(&sources)
    }

    #[test]
    fn track_names_come_from_the_source() {
        use TrackKind::{Rendition as R, Variant as V};
        // One playlist per directory: the directory.
        assert_eq!(
            names(&[("1000k/index.m3u8", V, None), ("2000k/index.m3u8", V, None)]),
            ["1000k", "2000k"]
        );
        // Renditions sharing a directory: their file stems.
        assert_eq!(
            names(&[
                ("v/index.m3u8", V, None),
                ("audio/en.m3u8", R, Some("English")),
                ("audio/fr.m3u8", R, Some("Français")),
            ]),
            ["v", "en", "fr"]
        );
        // Same stems in one directory: the rendition's NAME.
        assert_eq!(
            names(&[
                ("a/index.m3u8", V, None),
                ("a/x/index.m3u8", R, Some("aud")),
                ("b/x/index.m3u8", R, Some("sub")),
            ]),
            ["a", "aud", "sub"]
        );
        // Playlists at the stream root (ffmpeg's default): the stems.
        assert_eq!(
            names(&[
                ("stream_0.m3u8", V, None),
                ("stream_2.m3u8", R, Some("audio"))
            ]),
            ["stream_0", "stream_2"]
        );
    }

    #[test]
    fn implied_iv_becomes_the_source_media_sequence_number() {
        assert_eq!(
            explicit_iv(&key(None, None), 17).as_deref(),
            Some("0x00000000000000000000000000000011")
        );
        assert_eq!(
            explicit_iv(&key(Some("0xAB"), None), 17).as_deref(),
            Some("0xAB")
        );
        assert_eq!(
            explicit_iv(&key(None, Some("identity")), 1).as_deref(),
            Some("0x00000000000000000000000000000001")
        );
        assert_eq!(
            explicit_iv(&key(None, Some("com.apple.streamingkeydelivery")), 1),
            None
        );
        let none = Key {
            method: "NONE".into(),
            uri: None,
            ..key(None, None)
        };
        assert_eq!(explicit_iv(&none, 3), None);
    }
}
