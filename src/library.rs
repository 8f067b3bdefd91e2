//! Loading one stream from disk into an immutable [`Stream`]: parse the
//! master and media playlists, check the files, measure every segment,
//! validate that the variants line up, render the master playlist once.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use m3u8_rs::{Key, Map, MasterPlaylist};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::probe::{Method, Prober};
use crate::source::{self, SourceError};
use crate::ticks::{HZ, round_secs, to_secs};
use crate::timeline::Schedule;

/// File name of a stream's master playlist.
pub const MASTER: &str = "abr.m3u8";

/// Characters kept as they are in URL path segments.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one URL path segment.
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

/// One segment of one variant, ready to be listed.
#[derive(Debug, Clone)]
pub struct TrackSegment {
    /// URL of the file relative to the server root (percent-encoded).
    pub uri: String,
    /// Measured duration in ticks (this variant's own).
    pub ticks: u64,
    /// How `ticks` was measured.
    pub method: Method,
    /// `EXT-X-KEY` in force for this segment, URI rewritten.
    pub key: Option<Key>,
    /// `EXT-X-MAP` in force for this segment, URI rewritten.
    pub map: Option<Map>,
}

/// A variant or rendition: one media playlist served live.
#[derive(Debug, Clone)]
pub struct Track {
    /// Name in URLs: `/<stream>_<name>.m3u8`.
    pub name: String,
    /// The source media playlist.
    pub playlist: PathBuf,
    /// Its segments, in order.
    pub segments: Vec<TrackSegment>,
}

impl Track {
    /// Sum of this track's own durations.
    pub fn loop_ticks(&self) -> u64 {
        self.segments.iter().map(|s| s.ticks).sum()
    }
}

/// A loaded stream: immutable, shared by all requests.
#[derive(Debug)]
pub struct Stream {
    /// Directory name under the library root.
    pub name: String,
    /// Rendered master playlist, URIs pointing at the live playlists.
    pub master: Bytes,
    /// Variants first (in master order), then renditions with their own playlist.
    pub tracks: Vec<Track>,
    /// The timetable shared by all tracks (from the first variant).
    pub schedule: Schedule,
    /// `EXT-X-TARGETDURATION`, over all tracks and segments.
    pub target_duration: u64,
    /// `EXT-X-VERSION` the media playlists need.
    pub version: usize,
    /// How long loading took.
    pub load_time: Duration,
}

/// The names of the streams under `root`: directories holding an `abr.m3u8`, sorted.
pub fn find_streams(root: &Path) -> Result<Vec<String>, SourceError> {
    let entries = std::fs::read_dir(root)
        .map_err(|e| SourceError::new(root, format!("cannot read the library root: {e}")))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(MASTER).is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// `a/./b/../c` → `a/c`; `None` when the path leaves its base or is absolute.
fn normalise(rel: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Resolves a URI found in a playlist at `base` (relative to the stream dir)
/// into a path relative to the stream dir.
fn resolve(
    stream_dir: &Path,
    base: &Path,
    uri: &str,
    playlist: &Path,
) -> Result<PathBuf, SourceError> {
    let path_part = uri.split(['?', '#']).next().unwrap_or(uri);
    let decoded = percent_decode_str(path_part)
        .decode_utf8()
        .map_err(|_| SourceError::new(playlist, format!("URI {uri:?} is not valid UTF-8")))?;
    if decoded.contains("://") || decoded.starts_with('/') {
        return Err(SourceError::new(
            playlist,
            format!("URI {uri:?} is absolute; only files inside the stream directory are served"),
        ));
    }
    normalise(&base.join(decoded.as_ref())).ok_or_else(|| {
        SourceError::new(
            playlist,
            format!(
                "URI {uri:?} points outside the stream directory {}",
                stream_dir.display()
            ),
        )
    })
}

/// URL (relative to the server root) of a file at `rel` in stream `stream`.
fn url_of(stream: &str, rel: &Path) -> String {
    let mut url = encode_segment(stream);
    for c in rel.components() {
        url.push('/');
        url.push_str(&encode_segment(&c.as_os_str().to_string_lossy()));
    }
    url
}

/// The URL name of a track: the directory of its playlist, else the file stem.
fn track_name(rel: &Path) -> String {
    let dir = rel.parent().and_then(|p| p.file_name());
    let stem = rel.file_stem();
    dir.or(stem)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "track".into())
}

/// Loads the stream `name` under `root`. Every error names the file at fault.
pub fn load_stream(
    root: &Path,
    name: &str,
    prober: &Prober,
    window: usize,
) -> Result<Stream, SourceError> {
    let started = Instant::now();
    let dir = root.join(name);
    let master_path = dir.join(MASTER);
    if !master_path.is_file() {
        return Err(SourceError::new(&master_path, "master playlist missing"));
    }
    let mut master = source::read_master(&master_path)?;
    if master.variants.iter().all(|v| v.is_i_frame) {
        return Err(SourceError::new(
            &master_path,
            "master playlist lists no variant (#EXT-X-STREAM-INF)",
        ));
    }

    // Every playlist to serve live: variants in master order, then renditions.
    let mut uris: Vec<String> = Vec::new();
    for uri in master
        .variants
        .iter()
        .filter(|v| !v.is_i_frame)
        .map(|v| v.uri.clone())
        .chain(master.alternatives.iter().filter_map(|a| a.uri.clone()))
    {
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }

    let mut tracks = Vec::with_capacity(uris.len());
    let mut discontinuities: Vec<Vec<bool>> = Vec::new();
    for uri in &uris {
        let rel = resolve(&dir, Path::new(""), uri, &master_path)?;
        let (mut track, disc) = load_track(&dir, name, &rel, prober)?;
        if tracks.iter().any(|t: &Track| t.name == track.name) {
            track.name = format!("{}-{}", track.name, tracks.len());
        }
        tracks.push(track);
        discontinuities.push(disc);
    }

    let reference = &tracks[0];
    let n = reference.segments.len();
    for (track, disc) in tracks.iter().zip(&discontinuities).skip(1) {
        if track.segments.len() != n {
            return Err(SourceError::new(
                &track.playlist,
                format!(
                    "variant {} has {} segments but variant {} has {n}: all variants must have the same segments",
                    track.name,
                    track.segments.len(),
                    reference.name
                ),
            ));
        }
        if let Some(i) = (1..n).find(|&i| disc[i] != discontinuities[0][i]) {
            return Err(SourceError::new(
                &track.playlist,
                format!(
                    "variant {} {} a discontinuity before segment {i} but variant {} {}",
                    track.name,
                    if disc[i] { "has" } else { "lacks" },
                    reference.name,
                    if disc[i] { "does not" } else { "has one" },
                ),
            ));
        }
        let drift = track.loop_ticks().abs_diff(reference.loop_ticks());
        if drift > HZ / 24 {
            tracing::warn!(
                stream = name,
                "variant {} loops in {:.3} s, variant {} in {:.3} s: it is scheduled on {}'s timeline",
                track.name,
                to_secs(track.loop_ticks()),
                reference.name,
                to_secs(reference.loop_ticks()),
                reference.name
            );
        }
    }

    let master = render_master(&mut master, name, &uris, &tracks, &master_path);
    let mut stream = Stream::assemble(name, master, tracks, &discontinuities[0], window);
    stream.load_time = started.elapsed();
    Ok(stream)
}

impl Stream {
    /// A stream from checked tracks: target duration, version and the shared
    /// schedule (from the first track) computed here.
    fn assemble(
        name: &str,
        master: Bytes,
        tracks: Vec<Track>,
        discontinuities: &[bool],
        window: usize,
    ) -> Stream {
        let segs = || tracks.iter().flat_map(|t| &t.segments);
        let target_duration = segs()
            .map(|s| round_secs(s.ticks))
            .max()
            .unwrap_or(1)
            .max(1);
        let version = if segs().any(|s| s.map.is_some()) {
            6
        } else if segs().any(|s| {
            s.key
                .as_ref()
                .is_some_and(|k| k.keyformat.is_some() || k.keyformatversions.is_some())
        }) {
            5
        } else {
            3
        };
        let durations: Vec<u64> = tracks[0].segments.iter().map(|s| s.ticks).collect();
        let schedule = Schedule::new(&durations, discontinuities, target_duration, window);
        Stream {
            name: name.to_string(),
            master,
            tracks,
            schedule,
            target_duration,
            version,
            load_time: Duration::ZERO,
        }
    }

    /// A stream from known durations, without files: one track per entry of
    /// `tracks` (name, durations in ticks, all of the same length and > 0),
    /// discontinuities as in the source. For tests and benchmarks.
    pub fn from_durations(
        name: &str,
        tracks: &[(&str, Vec<u64>)],
        discontinuities: &[bool],
        window: usize,
    ) -> Stream {
        let tracks: Vec<Track> = tracks
            .iter()
            .map(|(track, durations)| Track {
                name: track.to_string(),
                playlist: PathBuf::from(format!("{name}/{track}/index.m3u8")),
                segments: durations
                    .iter()
                    .enumerate()
                    .map(|(i, &ticks)| TrackSegment {
                        uri: format!("{name}/{track}/seg_{i:05}.ts"),
                        ticks,
                        method: Method::Native,
                        key: None,
                        map: None,
                    })
                    .collect(),
            })
            .collect();
        Stream::assemble(name, Bytes::new(), tracks, discontinuities, window)
    }
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

/// Loads one media playlist: its segments measured, URIs rewritten, KEY/MAP
/// carried forward; returns the source discontinuity flags too.
fn load_track(
    dir: &Path,
    stream: &str,
    rel: &Path,
    prober: &Prober,
) -> Result<(Track, Vec<bool>), SourceError> {
    let path = dir.join(rel);
    if !path.is_file() {
        return Err(SourceError::new(&path, "variant playlist missing"));
    }
    let pl = source::read_media(&path)?;
    let library_root = dir.parent().unwrap_or(dir);
    let real_root = std::fs::canonicalize(library_root)
        .map_err(|e| SourceError::new(library_root, format!("cannot resolve: {e}")))?;
    check_inside(&path, &real_root)?;
    let base = rel.parent().unwrap_or(Path::new(""));
    let mut inputs = source::segment_inputs(&path, &pl);
    let mut rels = Vec::with_capacity(pl.segments.len());
    for (seg, input) in pl.segments.iter().zip(&mut inputs) {
        let seg_rel = resolve(dir, base, &seg.uri, &path)?;
        input.path = dir.join(&seg_rel);
        if !input.path.is_file() {
            return Err(SourceError::new(
                &input.path,
                format!("segment file missing (listed in {})", path.display()),
            ));
        }
        check_inside(&input.path, &real_root)?;
        rels.push(seg_rel);
    }
    let measured = prober.measure_playlist(&inputs);

    let rewrite = |uri: &str| -> Result<String, SourceError> {
        if uri.contains("://") || uri.starts_with("data:") || uri.starts_with("skd:") {
            return Ok(uri.to_string());
        }
        Ok(url_of(stream, &resolve(dir, base, uri, &path)?))
    };
    let mut key: Option<Key> = None;
    let mut map: Option<Map> = None;
    let mut segments = Vec::with_capacity(pl.segments.len());
    for (i, ((seg, m), seg_rel)) in pl.segments.iter().zip(&measured).zip(&rels).enumerate() {
        if let Some(k) = &seg.key {
            let mut k = k.clone();
            if let Some(u) = &k.uri {
                k.uri = Some(rewrite(u)?);
            }
            key = Some(k);
        }
        if let Some(mp) = &seg.map {
            let mut mp = mp.clone();
            mp.uri = rewrite(&mp.uri)?;
            map = Some(mp);
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
        segments.push(TrackSegment {
            uri: url_of(stream, seg_rel),
            ticks: m.ticks,
            method,
            key: key.clone(),
            map: map.clone(),
        });
    }
    let discontinuities = pl.segments.iter().map(|s| s.discontinuity).collect();
    let track = Track {
        name: track_name(rel),
        playlist: path,
        segments,
    };
    Ok((track, discontinuities))
}

/// The master playlist with every variant and rendition URI pointing at its
/// live playlist; I-frame playlists are dropped (not served live).
fn render_master(
    master: &mut MasterPlaylist,
    stream: &str,
    uris: &[String],
    tracks: &[Track],
    path: &Path,
) -> Bytes {
    let live_uri = |uri: &str| {
        let i = uris.iter().position(|u| u == uri).unwrap_or(0);
        format!(
            "{}_{}.m3u8",
            encode_segment(stream),
            encode_segment(&tracks[i].name)
        )
    };
    let before = master.variants.len();
    master.variants.retain(|v| !v.is_i_frame);
    if master.variants.len() < before {
        tracing::info!(file = %path.display(), "I-frame playlists are not served live; dropped from the master");
    }
    for v in &mut master.variants {
        v.uri = live_uri(&v.uri);
        for (group, kind) in [(&v.audio, "AUDIO"), (&v.subtitles, "SUBTITLES")] {
            if let Some(g) = group
                && !master.alternatives.iter().any(|a| &a.group_id == g)
            {
                tracing::warn!(file = %path.display(), "{kind}=\"{g}\" names no EXT-X-MEDIA GROUP-ID");
            }
        }
    }
    for a in &mut master.alternatives {
        if let Some(u) = &a.uri {
            a.uri = Some(live_uri(u));
        }
    }
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = master.write_to(&mut out);
    Bytes::from(out)
}
