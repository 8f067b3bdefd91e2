//! Reading source playlists from disk: text normalisation, m3u8-rs parsing
//! and validation, with errors that name the file.

use std::path::{Path, PathBuf};

use m3u8_rs::{MasterPlaylist, MediaPlaylist, Playlist};

use crate::probe::{Aes128, ByteRange, InitSection, SegmentInput};
use crate::ticks::from_secs;

/// A problem with one source file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub struct SourceError {
    /// The offending file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

impl SourceError {
    /// An error about `path`.
    pub fn new(path: &Path, problem: impl Into<String>) -> Self {
        SourceError {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

/// Largest playlist read (a 100 000-segment playlist is a few MB).
const MAX_PLAYLIST_BYTES: u64 = 64 << 20;

/// Reads a playlist file as text: see [`playlist_text`].
pub fn read_playlist_text(path: &Path) -> Result<String, SourceError> {
    let len = std::fs::metadata(path)
        .map_err(|e| SourceError::new(path, format!("cannot read: {e}")))?
        .len();
    if len > MAX_PLAYLIST_BYTES {
        return Err(SourceError::new(
            path,
            format!("{len} bytes: too large for a playlist"),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| SourceError::new(path, format!("cannot read: {e}")))?;
    playlist_text(path, bytes)
}

/// Playlist bytes as normalised text: strips a UTF-8 BOM and leading
/// whitespace, turns CRLF into LF and trims trailing whitespace from every line.
pub fn playlist_text(path: &Path, bytes: Vec<u8>) -> Result<String, SourceError> {
    let text = String::from_utf8(bytes).map_err(|e| {
        SourceError::new(
            path,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).trim_start();
    if !text.starts_with("#EXTM3U") {
        return Err(SourceError::new(
            path,
            "not a playlist: does not start with #EXTM3U",
        ));
    }
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Ok(fix_float_target_duration(out))
}

/// `#EXT-X-TARGETDURATION:6.0` is invalid but common; m3u8-rs misreads it.
fn fix_float_target_duration(text: String) -> String {
    const TAG: &str = "#EXT-X-TARGETDURATION:";
    if !text
        .lines()
        .any(|l| l.starts_with(TAG) && l[TAG.len()..].contains('.'))
    {
        return text;
    }
    text.lines()
        .map(
            |l| match l.strip_prefix(TAG).and_then(|v| v.parse::<f64>().ok()) {
                Some(v) => format!("{TAG}{}\n", v.ceil() as u64),
                None => format!("{l}\n"),
            },
        )
        .collect()
}

/// Reads and parses a master playlist: its normalised text and the parse.
pub fn read_master(path: &Path) -> Result<(String, MasterPlaylist), SourceError> {
    let text = read_playlist_text(path)?;
    let parsed = m3u8_rs::parse_playlist_res(text.as_bytes())
        .map_err(|e| SourceError::new(path, format!("cannot parse: {}", short(&e.to_string()))))?;
    match parsed {
        Playlist::MasterPlaylist(m) => Ok((text, m)),
        Playlist::MediaPlaylist(_) => Err(SourceError::new(
            path,
            "is a media playlist, expected a master playlist with #EXT-X-STREAM-INF",
        )),
    }
}

/// Parses a playlist of either kind (master when it has #EXT-X-STREAM-INF).
pub fn read_playlist(path: &Path) -> Result<Playlist, SourceError> {
    let text = read_playlist_text(path)?;
    m3u8_rs::parse_playlist_res(text.as_bytes())
        .map_err(|e| SourceError::new(path, format!("cannot parse: {}", short(&e.to_string()))))
}

/// Parses a media playlist and checks it has segments.
pub fn read_media(path: &Path) -> Result<MediaPlaylist, SourceError> {
    read_media_text(path).map(|(_, pl)| pl)
}

/// Reads and parses a media playlist: its normalised text and the parse.
pub fn read_media_text(path: &Path) -> Result<(String, MediaPlaylist), SourceError> {
    let text = read_playlist_text(path)?;
    let pl = match m3u8_rs::parse_media_playlist_res(text.as_bytes()) {
        Ok(pl) => pl,
        Err(e) => {
            return Err(SourceError::new(
                path,
                format!("cannot parse: {}", short(&e.to_string())),
            ));
        }
    };
    Ok((text, check_media(path, pl)?))
}

/// Checks that a media playlist can be served: it has segments, none by byte
/// range, none at an absolute URL.
pub fn check_media(path: &Path, pl: MediaPlaylist) -> Result<MediaPlaylist, SourceError> {
    if pl.segments.is_empty() {
        return Err(SourceError::new(path, "media playlist has no segments"));
    }
    check_byte_ranges(path, &pl)?;
    if let Some(s) = pl.segments.iter().find(|s| s.uri.contains("://")) {
        return Err(SourceError::new(
            path,
            format!(
                "segment URI {:?} is absolute; only files beside the playlist are served",
                s.uri
            ),
        ));
    }
    Ok(pl)
}

fn short(msg: &str) -> String {
    let line = msg.lines().next().unwrap_or(msg);
    line.chars().take(160).collect()
}

/// The segments of a media playlist as measurement inputs, paths resolved
/// against the playlist's directory. Each carries the `EXT-X-MAP` in force
/// (m3u8-rs attaches the tag to the next segment only; it holds until the
/// next one) and its `EXT-X-BYTERANGE`, whose offset, when omitted, follows
/// the previous segment's sub-range of the same file (RFC 8216 4.3.2.2); when
/// there is no such previous sub-range the offset is 0, a playlist that
/// [`check_byte_ranges`] refuses.
pub fn segment_inputs(
    root: &Path,
    playlist_path: &Path,
    pl: &MediaPlaylist,
) -> Result<Vec<SegmentInput>, SourceError> {
    let base = playlist_path
        .parent()
        .and_then(|d| d.strip_prefix(root).ok())
        .unwrap_or(Path::new(""));
    let file = |uri: &str| -> Result<PathBuf, SourceError> {
        Ok(root.join(resolve_uri(root, base, uri, playlist_path)?))
    };
    let mut init: Option<InitSection> = None;
    // The AES-128 key in force: (key, explicit IV).
    let mut key: Option<([u8; 16], Option<[u8; 16]>)> = None;
    // The previous segment's file and the end of its sub-range.
    let mut previous: Option<(&str, u64)> = None;
    let mut inputs = Vec::with_capacity(pl.segments.len());
    for (i, s) in pl.segments.iter().enumerate() {
        if let Some(k) = &s.key {
            key = aes128_key(k, file, playlist_path);
        }
        if let Some(map) = &s.map {
            init = Some(InitSection {
                path: file(&map.uri)?,
                byte_range: map.byte_range.as_ref().map(|r| ByteRange {
                    offset: r.offset.unwrap_or(0),
                    length: r.length,
                }),
            });
        }
        let byte_range = s.byte_range.as_ref().map(|r| {
            let follows = previous
                .filter(|(uri, _)| *uri == s.uri)
                .map(|(_, end)| end);
            ByteRange {
                offset: r.offset.or(follows).unwrap_or(0),
                length: r.length,
            }
        });
        previous = byte_range.map(|r| (s.uri.as_str(), r.offset.saturating_add(r.length)));
        inputs.push(SegmentInput {
            path: file(&s.uri)?,
            // A day at most: anything longer is garbage, not a duration.
            extinf_ticks: if s.duration <= 86_400.0 {
                from_secs(f64::from(s.duration))
            } else {
                0
            },
            discontinuity: s.discontinuity,
            byte_range,
            init: init.clone(),
            aes128: key.map(|(key, iv)| Aes128 {
                key,
                iv: iv.unwrap_or_else(|| (u128::from(pl.media_sequence) + i as u128).to_be_bytes()),
            }),
        });
    }
    Ok(inputs)
}

/// The key and explicit IV of an `EXT-X-KEY:METHOD=AES-128` whose key is a
/// local file; `None` for other methods, or (logged) a key that cannot be read.
fn aes128_key(
    key: &m3u8_rs::Key,
    file: impl Fn(&str) -> Result<PathBuf, SourceError>,
    playlist: &Path,
) -> Option<([u8; 16], Option<[u8; 16]>)> {
    if key.method.to_string() != "AES-128" {
        return None;
    }
    let uri = key.uri.as_deref()?;
    if uri.contains("://") || uri.starts_with("data:") || uri.starts_with("skd:") {
        return None;
    }
    let path = match file(uri) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("{e}: encrypted segments will not be measured natively");
            return None;
        }
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) if b.len() == 16 => b,
        Ok(b) => {
            tracing::warn!(file = %path.display(), listed_in = %playlist.display(), "an AES-128 key has 16 bytes, this one {}", b.len());
            return None;
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), listed_in = %playlist.display(), "cannot read the AES-128 key: {e}");
            return None;
        }
    };
    let iv = key.iv.as_deref().and_then(|iv| {
        let hex = iv.strip_prefix("0x").or_else(|| iv.strip_prefix("0X"))?;
        u128::from_str_radix(hex, 16).ok().map(u128::to_be_bytes)
    });
    let mut k = [0u8; 16];
    k.copy_from_slice(&bytes);
    Some((k, iv))
}

/// `a/./b/../c` → `a/c`; `None` when the path leaves its base or is absolute.
fn normalise(rel: &Path) -> Option<PathBuf> {
    use std::path::Component;
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

/// Resolves a URI found in `playlist` (whose directory is `base`, relative
/// to `root`) into a path relative to `root`: percent-decoded, query and
/// fragment dropped, never absolute and never outside `root`. The one rule
/// for the server and for `pseudolive probe`.
pub fn resolve_uri(
    root: &Path,
    base: &Path,
    uri: &str,
    playlist: &Path,
) -> Result<PathBuf, SourceError> {
    let path_part = uri.split(['?', '#']).next().unwrap_or(uri);
    let decoded = percent_encoding::percent_decode_str(path_part)
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
            format!("URI {uri:?} points outside {}", root.display()),
        )
    })
}

/// Checks the byte ranges of a media playlist: an `EXT-X-BYTERANGE` without
/// an offset needs a previous segment that is a sub-range of the same file
/// (RFC 8216 4.3.2.2), and no range may be empty.
pub fn check_byte_ranges(path: &Path, pl: &MediaPlaylist) -> Result<(), SourceError> {
    let mut previous: Option<&str> = None;
    for (i, s) in pl.segments.iter().enumerate() {
        if let Some(r) = &s.byte_range {
            if r.length == 0 {
                return Err(SourceError::new(
                    path,
                    format!("segment {i} ({}) has an empty EXT-X-BYTERANGE", s.uri),
                ));
            }
            if r.offset.is_none() && previous != Some(s.uri.as_str()) {
                return Err(SourceError::new(
                    path,
                    format!(
                        "segment {i} ({}): EXT-X-BYTERANGE without an offset, and the previous \
                         segment is not a byte range of the same file",
                        s.uri
                    ),
                ));
            }
        }
        previous = s.byte_range.as_ref().map(|_| s.uri.as_str());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &[u8]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pseudolive-source-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("index.m3u8");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn bom_crlf_and_trailing_space_are_accepted() {
        let p = write(
            "bom",
            b"\xef\xbb\xbf#EXTM3U\r\n#EXT-X-TARGETDURATION:2 \r\n#EXTINF:2.0,\r\na.ts  \r\n#EXT-X-ENDLIST\r\n",
        );
        let pl = read_media(&p).unwrap();
        assert_eq!(pl.segments.len(), 1);
        assert_eq!(pl.segments[0].uri, "a.ts");
    }

    #[test]
    fn float_target_duration_is_rounded_up() {
        let p = write(
            "float",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:6.5\n#EXTINF:6.0,\na.ts\n#EXTINF:6.0,\nb.ts\n",
        );
        let pl = read_media(&p).unwrap();
        assert_eq!(pl.target_duration, 7);
        assert_eq!(pl.segments.len(), 2);
        assert_eq!(pl.segments[1].uri, "b.ts");
    }

    #[test]
    fn errors_name_the_file_and_problem() {
        let p = write("empty", b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
        let e = read_media(&p).unwrap_err().to_string();
        assert!(e.contains("index.m3u8") && e.contains("no segments"), "{e}");
        let p = write("garbage", b"\x00\xff\xfe binary");
        let e = read_media(&p).unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
        let p = write("text", b"hello");
        assert!(read_master(&p).unwrap_err().to_string().contains("#EXTM3U"));
    }

    fn media(text: &str) -> MediaPlaylist {
        m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap()
    }

    #[test]
    fn segment_inputs_carry_the_map_and_follow_byte_ranges() {
        let pl = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-VERSION:7\n\
             #EXT-X-MAP:URI=\"all.mp4\",BYTERANGE=\"700@0\"\n\
             #EXTINF:2.0,\n#EXT-X-BYTERANGE:1000@700\nall.mp4\n\
             #EXTINF:2.0,\n#EXT-X-BYTERANGE:500\nall.mp4\n\
             #EXTINF:2.0,\n#EXT-X-BYTERANGE:300\nall.mp4\n\
             #EXT-X-MAP:URI=\"init2.mp4\"\n\
             #EXTINF:2.0,\nother.m4s\n\
             #EXTINF:2.0,\n#EXT-X-BYTERANGE:10\nall.mp4\n",
        );
        let dir = Path::new("/lib/s/v");
        let inputs = segment_inputs(dir, &dir.join("index.m3u8"), &pl).unwrap();
        let ranges: Vec<Option<(u64, u64)>> = inputs
            .iter()
            .map(|i| i.byte_range.map(|r| (r.offset, r.length)))
            .collect();
        // The one after other.m4s has no previous range of all.mp4: 0.
        assert_eq!(
            ranges,
            [
                Some((700, 1000)),
                Some((1700, 500)),
                Some((2200, 300)),
                None,
                Some((0, 10))
            ]
        );
        let first = InitSection {
            path: dir.join("all.mp4"),
            byte_range: Some(ByteRange {
                offset: 0,
                length: 700,
            }),
        };
        let second = InitSection {
            path: dir.join("init2.mp4"),
            byte_range: None,
        };
        let inits: Vec<Option<&InitSection>> = inputs.iter().map(|i| i.init.as_ref()).collect();
        assert_eq!(
            inits,
            [
                Some(&first),
                Some(&first),
                Some(&first),
                Some(&second),
                Some(&second)
            ]
        );
        assert!(inputs.iter().all(|i| i.extinf_ticks == 180_000));
        let e = check_byte_ranges(Path::new("x.m3u8"), &pl)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.m3u8") && e.contains("segment 4 (all.mp4)"),
            "{e}"
        );
        // Without the last segment the ranges are well defined.
        let mut ok = pl.clone();
        ok.segments.pop();
        assert_eq!(check_byte_ranges(Path::new("x.m3u8"), &ok), Ok(()));
        ok.segments[1].byte_range = Some(m3u8_rs::ByteRange {
            length: 0,
            offset: None,
        });
        let e = check_byte_ranges(Path::new("x.m3u8"), &ok)
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty EXT-X-BYTERANGE"), "{e}");
    }

    #[test]
    fn byte_ranges_are_accepted_and_bad_ones_refused() {
        let p = write(
            "byterange",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n#EXT-X-BYTERANGE:100@0\na.ts\n\
              #EXTINF:2.0,\n#EXT-X-BYTERANGE:100\na.ts\n",
        );
        let pl = read_media(&p).unwrap();
        let inputs = segment_inputs(p.parent().unwrap(), &p, &pl).unwrap();
        assert_eq!(inputs[1].byte_range.map(|r| r.offset), Some(100));
        let p = write(
            "byterange-bad",
            b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n#EXT-X-BYTERANGE:100\na.ts\n",
        );
        let e = read_media(&p).unwrap_err().to_string();
        assert!(e.contains("EXT-X-BYTERANGE") || e.contains("offset"), "{e}");
    }

    #[test]
    fn segment_uris_resolve_by_one_rule() {
        let root = Path::new("/lib/s");
        let pl = Path::new("/lib/s/v/index.m3u8");
        let ok = |uri: &str| resolve_uri(root, Path::new("v"), uri, pl).unwrap();
        assert_eq!(ok("seg%20one.ts"), PathBuf::from("v/seg one.ts"));
        assert_eq!(ok("../a/x.ts?token=1"), PathBuf::from("a/x.ts"));
        for bad in [
            "../../x.ts",
            "/etc/passwd",
            "http://h/x.ts",
            "%2e%2e/%2e%2e/x.ts",
            "%ff.ts",
        ] {
            assert!(resolve_uri(root, Path::new("v"), bad, pl).is_err(), "{bad}");
        }
    }
}
