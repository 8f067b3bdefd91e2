//! The public URL scheme, in one place: every URL the server writes is built
//! here and every request path is parsed here. Pure.
//!
//! | URL | what |
//! |---|---|
//! | `/` , `/streams.json` | index page, the same as JSON |
//! | `/[<opt>/…]<stream>.m3u8` | master playlist |
//! | `/[<opt>/…]<stream>_<track>.m3u8` | live media playlist (the seed's form) |
//! | `/[<opt>/…]<stream>/<track>.m3u8` | the same, when the seed's form would be ambiguous |
//! | `/[<opt>/…][g=<n>/]<stream>/<path…>` | a file of the stream; `g=<n>` names the global segment served |
//! | `/[<opt>/…]g=<n>/part=<p>/<stream>/<path…>` | part `p` of global segment `n` of that file (low latency) |
//!
//! Leading path segments of the form `key=value` are options; stream names
//! containing `=` are refused at load, so a path segment with `=` before the
//! stream is never a stream. Every URI written into a playlist is relative,
//! so the options of the URL a player was given reach every playlist and
//! segment it asks for next.
//!
//! `<stream>_<track>` is split against the names that exist: a master
//! playlist of a stream of that exact name first, then the longest stream
//! name that has such a track. A master links a track by the seed's form only
//! when that form resolves back to the same stream and track; otherwise by
//! `<stream>/<track>.m3u8`, which cannot be ambiguous.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::options::Options;

/// File name of a stream's master playlist in its directory.
pub const MASTER_FILE: &str = "abr.m3u8";

/// Key of the option segment that names a global segment number.
pub const SEGMENT_NUMBER_KEY: &str = "g";

/// Key of the option segment that names a part of a segment.
pub const PART_KEY: &str = "part";

/// Largest `part=`: far more parts than any segment has.
pub const MAX_PART: u64 = 1 << 20;

/// Largest `g=`: a 1 ms segment looping until the year 10000 stays below it,
/// and times computed from it cannot overflow.
pub const MAX_SEGMENT_NUMBER: u64 = 1 << 40;

/// Characters kept as they are in URL path segments.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one URL path segment.
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// Percent-encodes a `/`-separated relative path, segment by segment.
pub fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// A request path that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Malformed: bad percent-encoding, traversal, empty segments where a name is needed.
    #[error("bad path: {0}")]
    Bad(String),
    /// Well-formed but names nothing this server has.
    #[error("not found: {0}")]
    NotFound(String),
}

/// What a request path names, before it is checked against the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/`
    Index,
    /// `/streams.json`
    StreamsJson,
    /// `/<stream>`: the stream's page (decoded name).
    StreamPage(String),
    /// `/<stream>.json`: the stream's live state and segments (decoded name).
    StreamJson(String),
    /// `/<name>.m3u8`: a master, or `<stream>_<track>`; see [`resolve_playlist`].
    Playlist(PlaylistName),
    /// `/<stream>/<path…>`: a file, or `/<stream>/<track>.m3u8`.
    InStream {
        /// The stream directory (decoded).
        stream: String,
        /// The path inside it (decoded segments, none empty, no `.` or `..`).
        path: Vec<String>,
    },
}

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The options of the leading `key=value` segments (other than `g=`).
    pub options: Options,
    /// `g=<n>`: the global segment number a file URL was written for.
    pub segment_number: Option<u64>,
    /// `part=<p>`: the part of that segment (only with `g=`).
    pub part: Option<u64>,
    /// What the rest names.
    pub target: Target,
}

/// The name of a playlist at the root, `.m3u8` stripped, still
/// percent-encoded: a literal `_` separates stream and track, an encoded one
/// (`%5F`) does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaylistName {
    raw: String,
}

/// What a playlist name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaylistTarget {
    /// The master playlist of a stream.
    Master(String),
    /// The media playlist of a stream's track.
    Media {
        /// Stream name.
        stream: String,
        /// Track name.
        track: String,
    },
}

fn decode(raw: &str) -> Result<String, UrlError> {
    let part = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| UrlError::Bad("not UTF-8 after percent-decoding".into()))?;
    if part == ".." || part == "." || part.contains(['/', '\\', '\0']) {
        return Err(UrlError::Bad("path traversal".into()));
    }
    Ok(part.into_owned())
}

/// Parses a request path (`/…`, still percent-encoded).
pub fn parse(path: &str) -> Result<Parsed, UrlError> {
    let not_found = || UrlError::NotFound(path.to_string());
    let raw: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut options = Options::default();
    let mut segment_number = None;
    let mut part = None;
    let mut rest = raw.as_slice();
    while let [first, tail @ ..] = rest
        && !tail.is_empty()
    {
        if let Some(value) = first.strip_prefix("g=") {
            let n = value
                .parse::<u64>()
                .ok()
                .filter(|&n| n <= MAX_SEGMENT_NUMBER)
                .ok_or_else(|| {
                    UrlError::Bad(format!(
                        "g={value}: expected a segment number up to {MAX_SEGMENT_NUMBER}"
                    ))
                })?;
            segment_number = Some(n);
        } else if let Some(value) = first.strip_prefix("part=") {
            let p = value
                .parse::<u64>()
                .ok()
                .filter(|&p| p <= MAX_PART)
                .ok_or_else(|| {
                    UrlError::Bad(format!(
                        "part={value}: expected a part number up to {MAX_PART}"
                    ))
                })?;
            part = Some(p);
        } else {
            match Options::parse_segment(first) {
                Ok(Some(setting)) => options
                    .apply(setting)
                    .map_err(|e| UrlError::Bad(e.to_string()))?,
                Ok(None) => break,
                Err(e) => return Err(UrlError::Bad(e.to_string())),
            }
        }
        rest = tail;
    }
    if part.is_some() && segment_number.is_none() {
        return Err(UrlError::Bad(
            "part= needs g= (the segment's number)".into(),
        ));
    }
    let target = match rest {
        [p] if p.is_empty() && options.is_empty() && segment_number.is_none() => Target::Index,
        [p] if *p == "streams.json" && options.is_empty() => Target::StreamsJson,
        [p] if options.is_empty() && segment_number.is_none() && !p.ends_with(".m3u8") => {
            let name = decode(p)?;
            match name.strip_suffix(".json") {
                Some(stream) if !stream.is_empty() => Target::StreamJson(stream.to_string()),
                _ if !name.is_empty() => Target::StreamPage(name),
                _ => return Err(not_found()),
            }
        }
        [p] => {
            let raw_name = p.strip_suffix(".m3u8").ok_or_else(not_found)?;
            // Validate the encoding of the whole name once.
            if decode(raw_name)?.is_empty() {
                return Err(not_found());
            }
            Target::Playlist(PlaylistName {
                raw: raw_name.to_string(),
            })
        }
        [stream, tail @ ..] => {
            let stream = decode(stream)?;
            let path = tail
                .iter()
                .map(|p| decode(p))
                .collect::<Result<Vec<_>, _>>()?;
            if stream.is_empty() || path.iter().any(String::is_empty) {
                return Err(not_found());
            }
            Target::InStream { stream, path }
        }
        [] => return Err(not_found()),
    };
    if part.is_some() && !matches!(target, Target::InStream { .. }) {
        return Err(not_found());
    }
    Ok(Parsed {
        options,
        segment_number,
        part,
        target,
    })
}

impl PlaylistName {
    /// The whole name, decoded.
    pub fn decoded(&self) -> String {
        decode(&self.raw).unwrap_or_default()
    }

    /// Every reading of the name, in the order they are tried: the master of
    /// a stream of that exact name, then `<stream>_<track>` split at each
    /// literal `_`, longest stream name first.
    pub fn candidates(&self) -> impl Iterator<Item = PlaylistTarget> + '_ {
        let master = std::iter::once(PlaylistTarget::Master(self.decoded()));
        let splits = self.raw.match_indices('_').rev().filter_map(|(i, _)| {
            let stream = decode(&self.raw[..i]).ok()?;
            let track = decode(&self.raw[i + 1..]).ok()?;
            (!stream.is_empty() && !track.is_empty())
                .then_some(PlaylistTarget::Media { stream, track })
        });
        master.chain(splits)
    }
}

/// The first reading of `name` that exists: `has_stream(stream)` and
/// `has_track(stream, track)` say what the library holds.
pub fn resolve_playlist(
    name: &PlaylistName,
    has_stream: impl Fn(&str) -> bool,
    has_track: impl Fn(&str, &str) -> bool,
) -> Option<PlaylistTarget> {
    name.candidates().find(|c| match c {
        PlaylistTarget::Master(s) => has_stream(s),
        PlaylistTarget::Media { stream, track } => has_track(stream, track),
    })
}

/// Where a media playlist is linked, which decides how its own URIs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaForm {
    /// `<stream>_<track>.m3u8`, beside the master.
    Root,
    /// `<stream>/<track>.m3u8`, inside the stream's directory.
    InStream,
}

/// The URI of `stream`'s master playlist, relative to the server root
/// (prefix `/` and any options for an absolute URL).
pub fn master(stream: &str) -> String {
    format!("{}.m3u8", encode(stream))
}

/// The URI of a media playlist in `form`, relative to the master playlist.
pub fn media(stream: &str, track: &str, form: MediaForm) -> String {
    match form {
        MediaForm::Root => format!("{}_{}.m3u8", encode(stream), encode(track)),
        MediaForm::InStream => format!("{}/{}.m3u8", encode(stream), encode(track)),
    }
}

/// The form in which `stream`'s master links `track`: the seed's form when
/// it resolves back to the same track against what the library holds.
pub fn media_form(
    stream: &str,
    track: &str,
    has_stream: impl Fn(&str) -> bool,
    has_track: impl Fn(&str, &str) -> bool,
) -> MediaForm {
    let name = PlaylistName {
        raw: format!("{}_{}", encode(stream), encode(track)),
    };
    let back = resolve_playlist(&name, has_stream, has_track);
    let own = PlaylistTarget::Media {
        stream: stream.to_string(),
        track: track.to_string(),
    };
    if back == Some(own) {
        MediaForm::Root
    } else {
        MediaForm::InStream
    }
}

/// The URI of a file of `stream` (`path` relative to the stream directory,
/// `/`-separated), relative to a media playlist in `form`; `segment_number`
/// when the bytes served depend on which global segment this is.
pub fn file(stream: &str, path: &str, form: MediaForm, segment_number: Option<u64>) -> String {
    match (form, segment_number) {
        (MediaForm::Root, None) => format!("{}/{}", encode(stream), encode_path(path)),
        (MediaForm::InStream, None) => encode_path(path),
        (MediaForm::Root, Some(g)) => {
            format!(
                "{SEGMENT_NUMBER_KEY}={g}/{}/{}",
                encode(stream),
                encode_path(path)
            )
        }
        (MediaForm::InStream, Some(g)) => format!(
            "../{SEGMENT_NUMBER_KEY}={g}/{}/{}",
            encode(stream),
            encode_path(path)
        ),
    }
}

/// The URI of part `part` of global segment `g`, the file `path` of
/// `stream`, relative to a media playlist in `form`.
pub fn part(stream: &str, path: &str, form: MediaForm, g: u64, part: u64) -> String {
    let up = match form {
        MediaForm::Root => "",
        MediaForm::InStream => "../",
    };
    format!(
        "{up}{SEGMENT_NUMBER_KEY}={g}/{PART_KEY}={part}/{}/{}",
        encode(stream),
        encode_path(path)
    )
}

/// The URI of `track`'s media playlist (linked in `to`) relative to a media
/// playlist of the same stream linked in `from`.
pub fn sibling_media(stream: &str, track: &str, from: MediaForm, to: MediaForm) -> String {
    match (from, to) {
        (MediaForm::InStream, MediaForm::InStream) => format!("{}.m3u8", encode(track)),
        (MediaForm::InStream, MediaForm::Root) => format!("../{}", media(stream, track, to)),
        (MediaForm::Root, _) => media(stream, track, to),
    }
}

/// The page of `stream`, relative to the server root.
pub fn page(stream: &str) -> String {
    encode(stream)
}

/// The live state of `stream` as JSON, relative to the server root.
pub fn state(stream: &str) -> String {
    format!("{}.json", encode(stream))
}

/// An absolute URL path (`/…`) from a URI relative to the server root.
pub fn absolute(relative: &str) -> String {
    format!("/{relative}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str) -> Target {
        parse(path).unwrap().target
    }

    #[test]
    fn paths_parse() {
        assert_eq!(target("/"), Target::Index);
        assert_eq!(target("/streams.json"), Target::StreamsJson);
        let Target::Playlist(name) = target("/my%20stream.m3u8") else {
            panic!()
        };
        assert_eq!(name.decoded(), "my stream");
        assert_eq!(
            target("/demo/low/seg_000.ts"),
            Target::InStream {
                stream: "demo".into(),
                path: vec!["low".into(), "seg_000.ts".into()]
            }
        );
        let p = parse("/window=10/g=42/demo/low/seg_000.ts").unwrap();
        assert_eq!(p.options.window_segments, Some(10));
        assert_eq!(p.segment_number, Some(42));
        assert!(matches!(parse("/g=x/demo/a.ts"), Err(UrlError::Bad(_))));
        let Err(UrlError::Bad(why)) = parse("/colour=red/demo.m3u8") else {
            panic!("an unknown key is refused")
        };
        assert!(why.contains("colour") && why.contains("window="), "{why}");
        let p = parse("/fault=404,every=10/dvr=60/demo_low.m3u8").unwrap();
        assert_eq!(p.options.dvr_secs, Some(60));
        assert_eq!(p.options.faults.map(|f| f.0.len()), Some(1));
    }

    #[test]
    fn traversal_and_bad_encoding_are_rejected() {
        for p in [
            "/demo/../x.ts",
            "/demo/%2e%2e/x.ts",
            "/demo/%2E%2E/x",
            "/demo/a%2fb",
            "/a/%00",
            "/demo/%ff.ts",
            "/demo/..%5c..%5cetc",
            "/%ff%fe.m3u8",
        ] {
            assert!(matches!(parse(p), Err(UrlError::Bad(_))), "{p}");
        }
        assert!(matches!(parse("/.m3u8"), Err(UrlError::NotFound(_))));
        assert!(matches!(parse("/demo//x.ts"), Err(UrlError::NotFound(_))));
        assert_eq!(target("/x.ts"), Target::StreamPage("x.ts".into()));
        assert_eq!(target("/my%20show"), Target::StreamPage("my show".into()));
        assert_eq!(
            target("/my%20show.json"),
            Target::StreamJson("my show".into())
        );
        assert!(matches!(
            parse("/window=3/x.ts"),
            Err(UrlError::NotFound(_))
        ));
    }

    /// Streams `x` (track `y_z`) and `x_y` (track `z`), and `a` (track `b`) beside `a_b`.
    fn library() -> (impl Fn(&str) -> bool, impl Fn(&str, &str) -> bool) {
        let tracks = [("x", "y_z"), ("x_y", "z"), ("a", "b"), ("a_b", "c")];
        (
            move |s: &str| tracks.iter().any(|(t, _)| *t == s),
            move |s: &str, v: &str| tracks.contains(&(s, v)),
        )
    }

    fn route_back(stream: &str, track: &str) -> Option<PlaylistTarget> {
        let (has_stream, has_track) = library();
        let form = media_form(stream, track, &has_stream, &has_track);
        let link = absolute(&media(stream, track, form));
        match parse(&link).unwrap().target {
            Target::Playlist(name) => resolve_playlist(&name, &has_stream, &has_track),
            Target::InStream { stream, path } => {
                let track = path[0].strip_suffix(".m3u8")?.to_string();
                (path.len() == 1 && has_track(&stream, &track))
                    .then_some(PlaylistTarget::Media { stream, track })
            }
            _ => None,
        }
    }

    #[test]
    fn every_link_routes_back_to_its_own_stream() {
        for (stream, track) in [("x", "y_z"), ("x_y", "z"), ("a", "b"), ("a_b", "c")] {
            assert_eq!(
                route_back(stream, track),
                Some(PlaylistTarget::Media {
                    stream: stream.into(),
                    track: track.into()
                }),
                "{stream} {track}"
            );
        }
        let (has_stream, has_track) = library();
        // The seed's form where it is unambiguous, the in-stream form where not.
        assert_eq!(
            media_form("x_y", "z", &has_stream, &has_track),
            MediaForm::Root
        );
        assert_eq!(
            media_form("x", "y_z", &has_stream, &has_track),
            MediaForm::InStream
        );
        assert_eq!(
            media_form("a", "b", &has_stream, &has_track),
            MediaForm::InStream
        );
    }

    #[test]
    fn file_uris_resolve_to_the_stream_from_either_form() {
        assert_eq!(
            file("my show", "low/seg 1.ts", MediaForm::Root, None),
            "my%20show/low/seg%201.ts"
        );
        assert_eq!(
            file("s", "low/a.ts", MediaForm::InStream, Some(7)),
            "../g=7/s/low/a.ts"
        );
        let p = parse(&absolute(&file("s", "low/a.ts", MediaForm::Root, Some(7)))).unwrap();
        assert_eq!(p.segment_number, Some(7));
    }

    #[test]
    fn part_uris_name_segment_and_part() {
        let uri = part("s", "low/a.ts", MediaForm::Root, 7, 3);
        assert_eq!(uri, "g=7/part=3/s/low/a.ts");
        let p = parse(&absolute(&uri)).unwrap();
        assert_eq!((p.segment_number, p.part), (Some(7), Some(3)));
        assert_eq!(
            p.target,
            Target::InStream {
                stream: "s".into(),
                path: vec!["low".into(), "a.ts".into()]
            }
        );
        // From a playlist inside the stream's directory, the same file.
        assert_eq!(
            part("s", "low/a.ts", MediaForm::InStream, 7, 3),
            "../g=7/part=3/s/low/a.ts"
        );
        assert!(matches!(parse("/part=1/s/low/a.ts"), Err(UrlError::Bad(_))));
        assert!(matches!(parse("/g=1/part=x/s/a.ts"), Err(UrlError::Bad(_))));
        assert!(matches!(
            parse("/g=1/part=1/s.m3u8"),
            Err(UrlError::NotFound(_))
        ));
    }

    #[test]
    fn sibling_playlists_resolve_from_either_form() {
        assert_eq!(
            sibling_media("s", "b", MediaForm::Root, MediaForm::Root),
            "s_b.m3u8"
        );
        assert_eq!(
            sibling_media("s", "b", MediaForm::InStream, MediaForm::InStream),
            "b.m3u8"
        );
        assert_eq!(
            sibling_media("s", "b", MediaForm::InStream, MediaForm::Root),
            "../s_b.m3u8"
        );
        assert_eq!(
            sibling_media("s", "b", MediaForm::Root, MediaForm::InStream),
            "s/b.m3u8"
        );
    }
}
