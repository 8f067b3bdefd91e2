//! Serving segment (and key, init) files from disk with Range, ETag and
//! Last-Modified: small files from a memory cache re-checked every second,
//! large ones streamed. Nothing outside the
//! library root is ever served, whatever the path or symlinks say.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use warp::Reply;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::reply::HttpError;

/// Cache lifetime of media files: they never change while served.
const SEGMENT_CACHE: &str = "public, max-age=86400";

/// Content type by file extension.
fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("ts") => "video/mp2t",
        Some("aac") => "audio/aac",
        Some("m4s" | "mp4") => "video/mp4",
        Some("vtt" | "webvtt") => "text/vtt",
        Some("m3u8") => super::reply::M3U8,
        _ => "application/octet-stream",
    }
}

/// A single byte range of a `len`-byte file: `Ok(None)` for no (or an
/// unsupported multi-) range, an error when it lies outside the file.
pub fn parse_range(value: Option<&HeaderValue>, len: u64) -> Result<Option<(u64, u64)>, HttpError> {
    let Some(spec) = value.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(spec) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let Ok(suffix) = end.parse::<u64>() else {
            return Ok(None);
        };
        if suffix == 0 || len == 0 {
            return Err(HttpError::RangeNotSatisfiable(len));
        }
        (len.saturating_sub(suffix), len - 1)
    } else {
        let Ok(start) = start.parse::<u64>() else {
            return Ok(None);
        };
        let end = if end.is_empty() {
            len.saturating_sub(1)
        } else {
            match end.parse::<u64>() {
                Ok(e) => e.min(len.saturating_sub(1)),
                Err(_) => return Ok(None),
            }
        };
        if start >= len || end < start {
            return Err(HttpError::RangeNotSatisfiable(len));
        }
        (start, end)
    };
    Ok(Some(range))
}

/// Files up to this size are read whole (and cached); larger ones are streamed.
const WHOLE_FILE_MAX: u64 = 16 << 20;
/// A cached file is checked on disk again after this long.
const REVALIDATE: Duration = Duration::from_secs(1);
/// Memory for cached files: the live edge of every variant fits many times over.
const CACHE_BUDGET: u64 = 128 << 20;

/// A file as last seen on disk.
#[derive(Debug, Clone)]
struct Seen {
    real: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    /// The whole file, when small enough.
    body: Option<Bytes>,
    checked: Instant,
    used: Instant,
}

/// Recently served files, so the players of a live stream, who all ask for
/// the same few newest segments, are answered from memory: one `Bytes` clone,
/// no syscall, re-checked on disk at most once a second.
#[derive(Debug)]
pub struct FileCache {
    root: PathBuf,
    /// `root` with symlinks resolved, once: what every served file must be under.
    real_root: PathBuf,
    entries: Mutex<HashMap<PathBuf, Seen>>,
}

impl FileCache {
    /// A cache for files under `root`.
    pub fn new(root: &Path) -> Self {
        FileCache {
            root: root.to_path_buf(),
            real_root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn fresh(&self, path: &Path) -> Option<Seen> {
        let mut entries = self.entries.lock().ok()?;
        let seen = entries.get_mut(path)?;
        if seen.checked.elapsed() > REVALIDATE {
            return None;
        }
        seen.used = Instant::now();
        Some(seen.clone())
    }

    fn remember(&self, path: PathBuf, seen: &Seen) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if seen.body.is_none() {
            entries.remove(&path);
            return;
        }
        entries.insert(path, seen.clone());
        let mut total: u64 = entries.values().map(|e| e.len).sum();
        while total > CACHE_BUDGET {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            total -= entries.remove(&oldest).map_or(0, |e| e.len);
        }
    }

    /// Resolves, checks and (when small) reads a file: blocking IO.
    fn load(real_root: &Path, path: &Path, previous: Option<Seen>) -> Option<Seen> {
        let real = std::fs::canonicalize(path).ok()?;
        if !real.starts_with(real_root) {
            tracing::warn!(path = %path.display(), "refused: resolves outside the library root");
            return None;
        }
        let meta = std::fs::metadata(&real).ok()?;
        if !meta.is_file() {
            return None;
        }
        let (len, modified) = (meta.len(), meta.modified().ok());
        let now = Instant::now();
        if let Some(p) = previous
            && p.real == real
            && p.len == len
            && p.modified == modified
        {
            return Some(Seen {
                checked: now,
                used: now,
                ..p
            });
        }
        let body = if len <= WHOLE_FILE_MAX {
            let data = std::fs::read(&real).ok()?;
            (data.len() as u64 == len).then(|| Bytes::from(data))
        } else {
            None
        };
        Some(Seen {
            real,
            len,
            modified,
            body,
            checked: now,
            used: now,
        })
    }

    async fn get(&self, path: PathBuf) -> Option<Seen> {
        if let Some(seen) = self.fresh(&path) {
            return Some(seen);
        }
        let previous = self.entries.lock().ok().and_then(|e| e.get(&path).cloned());
        let real_root = self.real_root.clone();
        let p = path.clone();
        let seen = tokio::task::spawn_blocking(move || Self::load(&real_root, &p, previous))
            .await
            .ok()
            .flatten();
        match &seen {
            Some(s) => self.remember(path, s),
            None => {
                if let Ok(mut e) = self.entries.lock() {
                    e.remove(&path);
                }
            }
        }
        seen
    }
}

/// Serves `root/<parts...>`. `parts` are already decoded and free of `..`.
pub async fn serve(
    cache: &FileCache,
    parts: &[String],
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, HttpError> {
    let wanted = parts.join("/");
    let not_found = || HttpError::NotFound(format!("no such file: /{wanted}"));
    let mut path = cache.root.clone();
    parts.iter().for_each(|p| path.push(p));
    let seen = cache.get(path).await.ok_or_else(not_found)?;
    let len = seen.len;
    let mtime = seen
        .modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let etag = format!("\"{len:x}-{mtime:x}\"");

    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut res = Response::new(Bytes::new().into());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        let range = parse_range(headers.get(header::RANGE), len)?;
        let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
        let count = if len == 0 { 0 } else { end - start + 1 };
        let mut res = if head || count == 0 {
            Response::new(Bytes::new().into())
        } else if let Some(body) = &seen.body {
            Response::new(body.slice(start as usize..(start + count) as usize).into())
        } else {
            let mut file = tokio::fs::File::open(&seen.real)
                .await
                .map_err(|_| not_found())?;
            file.seek(SeekFrom::Start(start))
                .await
                .map_err(|e| HttpError::Io(format!("cannot read /{wanted}: {e}")))?;
            let stream = tokio_util::io::ReaderStream::with_capacity(file.take(count), 256 * 1024);
            warp::reply::stream(stream).into_response()
        };
        let h = res.headers_mut();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if range.is_some() {
            *res.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        res
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&seen.real)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(SEGMENT_CACHE),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(m) = seen.modified
        && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m))
    {
        h.insert(header::LAST_MODIFIED, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, len: u64) -> Result<Option<(u64, u64)>, HttpError> {
        parse_range(Some(&HeaderValue::from_str(v).unwrap()), len)
    }

    #[test]
    fn ranges() {
        assert_eq!(range("bytes=0-99", 1000), Ok(Some((0, 99))));
        assert_eq!(range("bytes=900-", 1000), Ok(Some((900, 999))));
        assert_eq!(range("bytes=-100", 1000), Ok(Some((900, 999))));
        assert_eq!(range("bytes=990-2000", 1000), Ok(Some((990, 999))));
        assert_eq!(
            range("bytes=1000-", 1000),
            Err(HttpError::RangeNotSatisfiable(1000))
        );
        assert_eq!(
            range("bytes=5-2", 1000),
            Err(HttpError::RangeNotSatisfiable(1000))
        );
        assert_eq!(range("bytes=0-1,5-6", 1000), Ok(None));
        assert_eq!(range("items=0-1", 1000), Ok(None));
        assert_eq!(range("bytes=x-y", 1000), Ok(None));
        assert_eq!(parse_range(None, 10), Ok(None));
    }
}
