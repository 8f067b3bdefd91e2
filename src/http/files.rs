//! Serving segment (and key, init) files straight from disk: streamed, never
//! buffered whole, with Range, ETag and Last-Modified. Nothing outside the
//! library root is ever served, whatever the path or symlinks say.

use std::io::SeekFrom;
use std::path::Path;
use std::time::UNIX_EPOCH;

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

/// Serves `root/<parts...>`. `parts` are already decoded and free of `..`.
pub async fn serve(
    root: &Path,
    parts: &[String],
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, HttpError> {
    let wanted = parts.join("/");
    let not_found = || HttpError::NotFound(format!("no such file: /{wanted}"));
    let mut path = root.to_path_buf();
    parts.iter().for_each(|p| path.push(p));
    let real = tokio::fs::canonicalize(&path)
        .await
        .map_err(|_| not_found())?;
    let real_root = tokio::fs::canonicalize(root)
        .await
        .map_err(|_| not_found())?;
    if !real.starts_with(&real_root) {
        tracing::warn!(path = %path.display(), "refused: resolves outside the library root");
        return Err(not_found());
    }
    let mut file = tokio::fs::File::open(&real)
        .await
        .map_err(|_| not_found())?;
    let meta = file.metadata().await.map_err(|_| not_found())?;
    if !meta.is_file() {
        return Err(not_found());
    }
    let len = meta.len();
    let modified = meta.modified().ok();
    let mtime = modified
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let etag = format!("\"{len:x}-{mtime:x}\"");

    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut res = Response::new(bytes::Bytes::new().into());
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        res
    } else {
        let range = parse_range(headers.get(header::RANGE), len)?;
        let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
        let count = if len == 0 { 0 } else { end - start + 1 };
        let mut res = if head || count == 0 {
            Response::new(bytes::Bytes::new().into())
        } else {
            file.seek(SeekFrom::Start(start))
                .await
                .map_err(|e| HttpError::Io(format!("cannot read /{wanted}: {e}")))?;
            let stream = tokio_util::io::ReaderStream::with_capacity(file.take(count), 64 * 1024);
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
        HeaderValue::from_static(content_type(&real)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(SEGMENT_CACHE),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(m) = modified
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
