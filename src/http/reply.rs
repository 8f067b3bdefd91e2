//! Building responses: content types, CORS, caching, compression, and the
//! one place where errors become status codes.

use bytes::Bytes;
use warp::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use warp::reply::Response as WarpResponse;

/// The methods every route answers.
const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// Content type of HLS playlists.
pub const M3U8: &str = "application/vnd.apple.mpegurl";

/// Everything that can go wrong answering a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Unknown stream, variant or file.
    NotFound(String),
    /// A malformed request (bad encoding, traversal attempt).
    BadRequest(String),
    /// A method other than GET, HEAD, OPTIONS.
    MethodNotAllowed,
    /// A stream still loading after the wait.
    Loading(String),
    /// A stream that failed to load: the reason names the file.
    Failed(String),
    /// A Range that lies outside the file.
    RangeNotSatisfiable(u64),
    /// An If-Match or If-Unmodified-Since that the file no longer meets.
    PreconditionFailed(String),
    /// Reading a file failed.
    Io(String),
    /// A status asked for by a `fault=` option.
    Injected(u16),
    /// A held request that could not be answered: blocked for too long, or
    /// the server is shutting down.
    Unavailable(String),
}

impl HttpError {
    /// The status code of each error: the only place it is chosen.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::NotFound(_) => StatusCode::NOT_FOUND,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::Loading(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            HttpError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            HttpError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Injected(code) => {
                StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            HttpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn message(&self) -> String {
        match self {
            HttpError::NotFound(m) | HttpError::BadRequest(m) | HttpError::Io(m) => m.clone(),
            HttpError::PreconditionFailed(m) | HttpError::Unavailable(m) => m.clone(),
            HttpError::MethodNotAllowed => "method not allowed: use GET, HEAD or OPTIONS".into(),
            HttpError::Loading(s) => format!("stream {s} is still loading; retry shortly"),
            HttpError::Failed(m) => format!("stream failed to load: {m}"),
            HttpError::RangeNotSatisfiable(len) => {
                format!("range not satisfiable: the file has {len} bytes")
            }
            HttpError::Injected(code) => format!("{code}: injected by a fault= option"),
        }
    }

    /// The error as a one-line text response.
    pub fn into_response(self) -> WarpResponse {
        let mut body = self.message().replace(['\n', '\r'], " ");
        body.push('\n');
        let mut res = Response::new(Bytes::from(body).into());
        *res.status_mut() = self.status();
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            HttpError::MethodNotAllowed => {
                h.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
            }
            HttpError::Loading(_) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            HttpError::RangeNotSatisfiable(len) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        res
    }
}

impl From<crate::urls::UrlError> for HttpError {
    fn from(e: crate::urls::UrlError) -> Self {
        match e {
            crate::urls::UrlError::Bad(_) => HttpError::BadRequest(e.to_string()),
            crate::urls::UrlError::NotFound(_) => HttpError::NotFound(e.to_string()),
        }
    }
}

/// A request no route took: a method other than GET, HEAD and OPTIONS
/// (405), or a path nothing matches (404). warp would answer 405 for both.
pub async fn unmatched(err: warp::Rejection) -> Result<WarpResponse, std::convert::Infallible> {
    let error = if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        HttpError::MethodNotAllowed
    } else {
        HttpError::NotFound("not found".into())
    };
    Ok(error.into_response())
}

/// Adds the CORS headers every response carries.
pub fn add_cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range, Age, Date, ETag, Last-Modified"),
    );
}

/// The answer to a CORS preflight.
pub fn preflight(request_headers: &HeaderMap) -> WarpResponse {
    let mut res = Response::new(Bytes::new().into());
    *res.status_mut() = StatusCode::NO_CONTENT;
    let allow_headers = request_headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned()
        .unwrap_or(HeaderValue::from_static(
            "Range, Accept, Accept-Encoding, Origin, Content-Type",
        ));
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    h.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    res
}

/// Whether the client accepts a gzip body.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                let p = p.replace(' ', "");
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

/// A media segment made for this request (rewritten): cacheable for long,
/// because its URL names exactly these bytes.
pub fn segment(body: Bytes, content_type: &'static str) -> WarpResponse {
    let len = body.len();
    let mut res = Response::new(body.into());
    // Room for these and the CORS headers added later: the map never grows.
    *res.headers_mut() = HeaderMap::with_capacity(8);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    res
}

/// A playlist (or other small text) response, gzip-compressed when `gzip`
/// is given. (HEAD requests lose the body in one place, `routes`.)
pub fn text(
    body: Bytes,
    gzip: Option<Bytes>,
    content_type: &'static str,
    cache: String,
) -> WarpResponse {
    let (body, encoded) = match gzip {
        Some(g) => (g, true),
        None => (body, false),
    };
    let len = body.len();
    let mut res = Response::new(body.into());
    // Room for these and the CORS headers added later: the map never grows.
    *res.headers_mut() = HeaderMap::with_capacity(8);
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if encoded {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        accepts_gzip(&h)
    }

    #[test]
    fn gzip_refused_with_any_spelling_of_q_zero() {
        assert!(accepts("gzip"));
        assert!(accepts("br, gzip;q=0.5"));
        assert!(accepts("*"));
        for refused in [
            "gzip;q=0",
            "gzip;q=0.0",
            "gzip;q=0.00",
            "gzip; q=0.000",
            "identity",
        ] {
            assert!(!accepts(refused), "{refused}");
        }
    }
}
