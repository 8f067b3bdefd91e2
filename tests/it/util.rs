//! Helpers shared by the behaviour tests.

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture directory.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// One row of a fixture's `expected.tsv`.
pub struct Expected {
    pub uri: String,
    pub ticks: u64,
    pub rule: String,
}

/// The expected durations of a fixture (made by `fixtures/expected.py`).
pub fn expected(name: &str) -> Vec<Expected> {
    let path = fixture(name).join("expected.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run fixtures/make.sh)", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Expected {
                uri: f[0].to_string(),
                ticks: f[1].parse().unwrap(),
                rule: f[3].to_string(),
            }
        })
        .collect()
}

/// A fresh, empty temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pseudolive-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One segment of a parsed live playlist.
#[derive(Debug, Clone)]
pub struct ParsedSegment {
    pub uri: String,
    pub duration: f64,
    pub discontinuity: bool,
    /// Program date-time in Unix ms, when the segment carries one.
    pub pdt_ms: Option<i64>,
}

/// A parsed live media playlist.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub target_duration: u64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub segments: Vec<ParsedSegment>,
}

/// Parses a media playlist with m3u8-rs (it must parse) and reads the EXTINF
/// text exactly (m3u8-rs keeps it as f32).
pub fn parse(body: &[u8]) -> Parsed {
    let pl = m3u8_rs::parse_media_playlist_res(body).expect("a valid media playlist");
    let text = std::str::from_utf8(body).unwrap();
    let extinf: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|v| v.trim_end_matches(',').parse().unwrap())
        .collect();
    assert_eq!(extinf.len(), pl.segments.len());
    Parsed {
        target_duration: pl.target_duration,
        media_sequence: pl.media_sequence,
        discontinuity_sequence: pl.discontinuity_sequence,
        segments: pl
            .segments
            .iter()
            .zip(extinf)
            .map(|(s, d)| ParsedSegment {
                uri: s.uri.clone(),
                duration: d,
                discontinuity: s.discontinuity,
                pdt_ms: s.program_date_time.map(|t| t.timestamp_millis()),
            })
            .collect(),
    }
}

/// Writes a stream `name` under `root` with the given variants, each a copy
/// of a fixture's playlist and segments, and an abr.m3u8 listing them.
pub fn make_stream(root: &std::path::Path, name: &str, variants: &[&str], fixture_name: &str) {
    let dir = root.join(name);
    let mut master = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    for (i, v) in variants.iter().enumerate() {
        let vdir = dir.join(v);
        std::fs::create_dir_all(&vdir).unwrap();
        for entry in std::fs::read_dir(fixture(fixture_name)).unwrap() {
            let p = entry.unwrap().path();
            let file = p.file_name().unwrap().to_str().unwrap().to_string();
            if file.ends_with(".ts") || file == "index.m3u8" {
                std::fs::copy(&p, vdir.join(file)).unwrap();
            }
        }
        master.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},RESOLUTION=192x108,CODECS=\"avc1.4d400b,mp4a.40.2\"\n{v}/index.m3u8\n",
            (i + 1) * 200_000
        ));
    }
    std::fs::write(dir.join("abr.m3u8"), master).unwrap();
}

/// A listed segment as a player remembers it: URI, EXTINF text,
/// discontinuity sequence, program date-time (ms).
pub type SegmentSeen = (String, String, u64, Option<i64>);

/// Like [`make_stream`], copying every file of the fixture (init sections,
/// `.m4s`, single files) but its `expected.tsv`.
pub fn make_stream_all(root: &std::path::Path, name: &str, variants: &[&str], fixture_name: &str) {
    make_stream(root, name, variants, fixture_name);
    for v in variants {
        for entry in std::fs::read_dir(fixture(fixture_name)).unwrap() {
            let p = entry.unwrap().path();
            let file = p.file_name().unwrap().to_str().unwrap().to_string();
            if file != "expected.tsv" && p.is_file() {
                std::fs::copy(&p, root.join(name).join(v).join(file)).unwrap();
            }
        }
    }
}

/// Copies a whole fixture directory (one with its own `abr.m3u8`) as stream `name`.
pub fn copy_stream(root: &std::path::Path, name: &str, fixture_name: &str) {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let p = entry.unwrap().path();
            let target = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy(&p, &target);
            } else {
                std::fs::copy(&p, &target).unwrap();
            }
        }
    }
    copy(&fixture(fixture_name), &root.join(name));
}

/// A request through the server's routes, without a socket.
pub async fn get(
    app: &std::sync::Arc<pseudolive::http::App>,
    path: &str,
) -> warp::http::Response<bytes::Bytes> {
    warp::test::request()
        .path(path)
        .reply(&pseudolive::http::routes(app.clone()))
        .await
}

/// A response's body as text.
pub fn body(res: &warp::http::Response<bytes::Bytes>) -> String {
    String::from_utf8_lossy(res.body()).into_owned()
}

/// `reference` resolved against the absolute path `base`, as a player does
/// (RFC 3986 5.2 for paths: `..` and `.` segments removed).
pub fn resolve(base: &str, reference: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for seg in reference.split('/') {
        match seg {
            ".." => {
                if parts.len() > 1 {
                    parts.pop();
                }
            }
            "." => {}
            s => parts.push(s),
        }
    }
    parts.join("/")
}
