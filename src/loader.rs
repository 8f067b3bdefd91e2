//! Loading one stream from disk into a [`Stream`]: parse the master and
//! media playlists, check the files, measure every segment, check that the
//! variants line up. Blocking IO; runs off the async runtime.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use percent_encoding::percent_decode_str;

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
/// into a path relative to the stream dir: percent-decoded, query and
/// fragment dropped, never outside the stream dir.
pub fn resolve(
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

/// A relative path as the `/`-separated form the model keeps.
fn slash_path(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
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

    // Every playlist to serve live: variants in master order, then renditions.
    let mut uris: Vec<(String, TrackKind)> = Vec::new();
    let variants = master
        .variants
        .iter()
        .filter(|v| !v.is_i_frame)
        .map(|v| (v.uri.clone(), TrackKind::Variant));
    let renditions = master
        .alternatives
        .iter()
        .filter_map(|a| a.uri.clone())
        .map(|u| (u, TrackKind::Rendition));
    for (uri, kind) in variants.chain(renditions) {
        if !uris.iter().any(|(u, _)| *u == uri) {
            uris.push((uri, kind));
        }
    }

    let real_root = std::fs::canonicalize(root)
        .map_err(|e| SourceError::new(root, format!("cannot resolve: {e}")))?;
    let mut tracks: Vec<Track> = Vec::with_capacity(uris.len());
    let mut playlists = Vec::with_capacity(uris.len());
    for (uri, kind) in &uris {
        let rel = resolve(&dir, Path::new(""), uri, &master_path)?;
        let mut track = load_track(&dir, &rel, *kind, prober, &real_root)?;
        if tracks.iter().any(|t| t.name == track.name) {
            track.name = format!("{}-{}", track.name, tracks.len());
        }
        tracks.push(track);
        playlists.push(dir.join(&rel));
    }
    check_alignment(name, &tracks, &playlists)?;
    let master_uris = uris
        .iter()
        .enumerate()
        .map(|(i, (u, _))| (u.clone(), i))
        .collect();
    Ok(Loaded {
        stream: Stream::new(name, master_text, tracks),
        master_uris,
        load_time: started.elapsed(),
    })
}

/// Every track must have the reference's (the first variant's) segment
/// count and discontinuity points; loop lengths that differ are logged.
fn check_alignment(name: &str, tracks: &[Track], playlists: &[PathBuf]) -> Result<(), SourceError> {
    let reference = &tracks[0];
    let n = reference.segments.len();
    let disc = |t: &Track, i: usize| t.segments[i].discontinuity;
    for (track, playlist) in tracks.iter().zip(playlists).skip(1) {
        if track.segments.len() != n {
            return Err(SourceError::new(
                playlist,
                format!(
                    "variant {} has {} segments but variant {} has {n}: all variants must have the same segments",
                    track.name,
                    track.segments.len(),
                    reference.name
                ),
            ));
        }
        if let Some(i) = (1..n).find(|&i| disc(track, i) != disc(reference, i)) {
            let has = disc(track, i);
            return Err(SourceError::new(
                playlist,
                format!(
                    "variant {} {} a discontinuity before segment {i} but variant {} {}",
                    track.name,
                    if has { "has" } else { "lacks" },
                    reference.name,
                    if has { "does not" } else { "has one" },
                ),
            ));
        }
        let (own, theirs) = (track.loop_duration(), reference.loop_duration());
        if own.0.abs_diff(theirs.0) > HZ / 24 {
            tracing::warn!(
                stream = name,
                "variant {} loops in {:.3} s, variant {} in {:.3} s: it is scheduled on {}'s timeline",
                track.name,
                own.as_secs_f64(),
                reference.name,
                theirs.as_secs_f64(),
                reference.name
            );
        }
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
fn explicit_iv(key: &Key, source_msn: u64) -> Option<String> {
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
        check_inside(&input.path, real_root)?;
        rels.push(seg_rel);
    }
    let measured = prober.measure_playlist(&inputs);
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
        Ok(Resource::File(slash_path(&resolve(dir, base, uri, &path)?)))
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
            iv: explicit_iv(k, pl.media_sequence + i as u64),
            ..k.clone()
        });
        segments.push(Segment {
            path: slash_path(seg_rel),
            byte_range: None,
            duration: Ticks(m.ticks),
            method,
            source_duration: Ticks(inputs[i].extinf_ticks),
            discontinuity: seg.discontinuity,
            key,
            map: map.clone(),
            tags: seg_tags,
            source_pdt_ms,
        });
    }
    Ok(Track {
        name: track_name(rel),
        kind,
        segments,
        header_tags: tags.header,
    })
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
