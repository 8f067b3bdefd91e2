//! The HTTP layer: one route list, handlers that return responses, and the
//! warp filter that feeds them. GET and HEAD on every route, OPTIONS
//! answered as a CORS preflight, anything else 405.

mod files;
mod pages;
pub mod reply;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use crate::live::{Library, LiveStream, StreamState, now_unix_ticks};
use crate::ticks;
use reply::{HttpError, M3U8};

/// Shared state of the server.
#[derive(Debug)]
pub struct App {
    /// The streams.
    pub library: Arc<Library>,
    /// How long a playlist request waits for a stream that is still loading.
    pub load_wait: Duration,
    files: files::FileCache,
}

impl App {
    /// The server state over `library`.
    pub fn new(library: Arc<Library>, load_wait: Duration) -> Arc<App> {
        let files = files::FileCache::new(&library.config().root);
        Arc::new(App {
            library,
            load_wait,
            files,
        })
    }
}

/// Every route of the server.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// GET / — HTML index of the streams.
    Index,
    /// GET /streams.json — the same as JSON.
    StreamsJson,
    /// GET /<stream>.m3u8 — master playlist;
    /// GET /<stream>_<variant>.m3u8 — live media playlist of one variant.
    Playlist(String),
    /// GET /<stream>/<variant>/<file> — a segment (or key, init section) from disk.
    File(Vec<String>),
}

/// Splits and decodes a request path into a route.
fn route(path: &str) -> Result<Route, HttpError> {
    let bad = |why: &str| HttpError::BadRequest(format!("bad path: {why}"));
    let mut parts = Vec::new();
    for raw in path.trim_start_matches('/').split('/') {
        let part = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| bad("not UTF-8 after percent-decoding"))?;
        if part == ".." || part == "." || part.contains(['/', '\\', '\0']) {
            return Err(bad("path traversal"));
        }
        parts.push(part.into_owned());
    }
    match parts.as_slice() {
        [p] if p.is_empty() => Ok(Route::Index),
        [p] if p == "streams.json" => Ok(Route::StreamsJson),
        [p] => match p.strip_suffix(".m3u8") {
            Some(name) if !name.is_empty() => Ok(Route::Playlist(name.to_string())),
            _ => Err(HttpError::NotFound(format!("not found: {path}"))),
        },
        [stream, rest @ ..] if !stream.is_empty() && rest.iter().all(|p| !p.is_empty()) => {
            Ok(Route::File(parts))
        }
        _ => Err(HttpError::NotFound(format!("not found: {path}"))),
    }
}

/// Latest `?now=`: the last millisecond of the year 9999.
const MAX_NOW_MS: u64 = 253_402_300_799_999;

/// The instant a request asks about: `?now=<unix ms>`, else the clock.
fn request_now(query: &str) -> Result<u64, HttpError> {
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("now=") {
            return v
                .parse::<u64>()
                .ok()
                .filter(|&ms| ms <= MAX_NOW_MS)
                .map(ticks::from_ms)
                .ok_or_else(|| {
                    HttpError::BadRequest(format!(
                        "bad now={v}: expected Unix milliseconds before the year 10000"
                    ))
                });
        }
    }
    Ok(now_unix_ticks())
}

/// The warp filter serving `app`.
pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .then(
            move |method: Method, path: warp::path::FullPath, query: String, headers: HeaderMap| {
                let app = app.clone();
                async move {
                    let mut res = handle(&app, &method, path.as_str(), &query, &headers).await;
                    reply::add_cors(res.headers_mut());
                    res
                }
            },
        )
        .boxed()
}

async fn handle(
    app: &Arc<App>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> Response {
    let head = match *method {
        Method::GET => false,
        Method::HEAD => true,
        Method::OPTIONS => return reply::preflight(headers),
        _ => return HttpError::MethodNotAllowed.into_response(),
    };
    let result = match route(path) {
        Ok(Route::Index) => Ok(pages::index(&app.library, now_unix_ticks(), head)),
        Ok(Route::StreamsJson) => Ok(pages::streams_json(&app.library, now_unix_ticks(), head)),
        Ok(Route::Playlist(name)) => playlist(app, &name, query, headers, head).await,
        Ok(Route::File(parts)) => files::serve(&app.files, &parts, headers, head).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(HttpError::into_response)
}

/// A ready stream, waiting (bounded) for one that is loading.
async fn ready(app: &Arc<App>, name: &str) -> Result<Arc<LiveStream>, HttpError> {
    let Some(slot) = app.library.get(name) else {
        return Err(HttpError::NotFound(format!("unknown stream {name}")));
    };
    let mut state = slot.state();
    if matches!(state, StreamState::Loading) {
        app.library.prioritise(&slot);
        state = slot.settled(app.load_wait).await;
    }
    match state {
        StreamState::Ready(live) => Ok(live),
        StreamState::Failed(reason) => Err(HttpError::Failed(reason.to_string())),
        StreamState::Loading => Err(HttpError::Loading(name.to_string())),
    }
}

/// `name` is a stream (master) or `<stream>_<variant>` split against the
/// streams that exist, longest stream name first.
async fn playlist(
    app: &Arc<App>,
    name: &str,
    query: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, HttpError> {
    let now = request_now(query)?;
    let gzip = reply::accepts_gzip(headers);
    if app.library.get(name).is_none() {
        app.library.rescan_rate_limited();
    }
    if app.library.get(name).is_some() {
        let live = ready(app, name).await?;
        live.anchor(now);
        let cache = "public, max-age=60".to_string();
        let zipped = gzip.then(|| live.master_gzip.clone());
        return Ok(reply::text(
            live.stream.master.clone(),
            zipped,
            M3U8,
            cache,
            head,
        ));
    }
    let splits = name
        .match_indices('_')
        .map(|(i, _)| (&name[..i], &name[i + 1..]))
        .rev();
    for (stream, variant) in splits {
        if app.library.get(stream).is_none() {
            continue;
        }
        let live = ready(app, stream).await?;
        let Some(index) = live.stream.tracks.iter().position(|t| t.name == variant) else {
            continue;
        };
        let rendered = live.media_playlist(index, now);
        let cache = format!("public, max-age={}", live.stream.target_duration / 2);
        return Ok(reply::text(
            rendered.plain,
            gzip.then_some(rendered.gzip),
            M3U8,
            cache,
            head,
        ));
    }
    let known: Vec<String> = app.library.slots().iter().map(|s| s.name.clone()).collect();
    Err(HttpError::NotFound(format!(
        "no stream or variant playlist {name}.m3u8; known streams: {}",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse() {
        assert_eq!(route("/"), Ok(Route::Index));
        assert_eq!(route("/streams.json"), Ok(Route::StreamsJson));
        assert_eq!(
            route("/big_buck_bunny.m3u8"),
            Ok(Route::Playlist("big_buck_bunny".into()))
        );
        assert_eq!(
            route("/my%20stream.m3u8"),
            Ok(Route::Playlist("my stream".into()))
        );
        assert_eq!(
            route("/demo/low/seg_000.ts"),
            Ok(Route::File(vec![
                "demo".into(),
                "low".into(),
                "seg_000.ts".into()
            ]))
        );
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
        ] {
            assert!(matches!(route(p), Err(HttpError::BadRequest(_))), "{p}");
        }
        assert!(matches!(route("/.m3u8"), Err(HttpError::NotFound(_))));
        assert!(matches!(route("/demo//x.ts"), Err(HttpError::NotFound(_))));
    }

    #[test]
    fn now_parameter() {
        assert_eq!(request_now("now=1000"), Ok(90_000));
        assert!(request_now("now=abc").is_err());
        assert!(request_now("now=18446744073709551615").is_err());
    }
}
