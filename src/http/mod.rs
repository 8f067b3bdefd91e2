//! The HTTP layer: the route list (warp filters, one per route), the
//! handlers behind them, and the reply helpers. GET and HEAD on every route,
//! OPTIONS answered as a CORS preflight, anything else 405, an unmatched
//! path 404. The only layer that reads the clock (through [`App::clock`]).

pub mod faults;
mod files;
mod handlers;

pub mod pages;
pub mod reply;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, Method};
use warp::reply::Response;

use crate::clock::{Clock, SystemClock};
use crate::library::Library;
use crate::options::Options;

/// Shared state of the server.
#[derive(Debug)]
pub struct App {
    /// The streams.
    pub library: Arc<Library>,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// How long a playlist request waits for a stream that is still loading.
    pub load_wait: Duration,
    /// The server's options (`--window`, `--fault`, …), under every URL's own.
    pub defaults: Options,
    /// Where the stream page loads hls.js from.
    pub hlsjs_url: String,
    /// Cancelled when the server shuts down: held requests are let go.
    pub shutdown: tokio_util::sync::CancellationToken,
    files: files::FileCache,
}

impl App {
    /// The server state over `library`, on the system clock.
    pub fn new(library: Arc<Library>, load_wait: Duration) -> Arc<App> {
        App::with_clock(library, load_wait, Arc::new(SystemClock))
    }

    /// The server state over `library`, on `clock`.
    pub fn with_clock(
        library: Arc<Library>,
        load_wait: Duration,
        clock: Arc<dyn Clock>,
    ) -> Arc<App> {
        App::with_options(library, load_wait, clock, Options::default(), None)
    }

    /// The server state over `library`, on `clock`, with server-wide options.
    pub fn with_options(
        library: Arc<Library>,
        load_wait: Duration,
        clock: Arc<dyn Clock>,
        defaults: Options,
        hlsjs_url: Option<String>,
    ) -> Arc<App> {
        crate::stats::install();
        let files = files::FileCache::new(&library.config().root);
        Arc::new(App {
            library,
            clock,
            load_wait,
            defaults,
            hlsjs_url: hlsjs_url.unwrap_or_else(|| pages::DEFAULT_HLSJS_URL.to_string()),
            shutdown: Default::default(),
            files,
        })
    }
}

/// The query parameters any route reads.
#[derive(Debug, Default, serde::Deserialize)]
pub struct LiveQuery {
    /// `?now=<Unix ms>`: render the playlist of that instant (read-only).
    pub now: Option<String>,
    /// `_HLS_msn`: hold a low-latency playlist until that segment exists.
    #[serde(rename = "_HLS_msn")]
    pub hls_msn: Option<String>,
    /// `_HLS_part`: … and that part of it.
    #[serde(rename = "_HLS_part")]
    pub hls_part: Option<String>,
    /// `_HLS_skip=YES|v2`: a delta update.
    #[serde(rename = "_HLS_skip")]
    pub hls_skip: Option<String>,
}

fn with_app(
    app: Arc<App>,
) -> impl Filter<Extract = (Arc<App>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || app.clone())
}

fn query() -> BoxedFilter<(LiveQuery,)> {
    warp::query::<LiveQuery>()
        .or(warp::any().map(LiveQuery::default))
        .unify()
        .boxed()
}

/// GET /: the index page.
fn index(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path::end()
        .and(with_app(app))
        .map(|app: Arc<App>| {
            let mut res = handlers::index(&app);
            res.extensions_mut()
                .insert(crate::stats::RouteLabel("index"));
            res
        })
        .boxed()
}

/// GET /streams.json: the index as JSON.
fn streams_json(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("streams.json")
        .and(with_app(app))
        .map(|app: Arc<App>| {
            let mut res = handlers::streams_json(&app);
            res.extensions_mut()
                .insert(crate::stats::RouteLabel("streams_json"));
            res
        })
        .boxed()
}

/// GET /metrics: counters in Prometheus text format.
fn metrics_route() -> BoxedFilter<(Response,)> {
    warp::path!("metrics")
        .map(|| {
            let mut res = reply::text(
                bytes::Bytes::from(crate::stats::render()),
                None,
                "text/plain; version=0.0.4; charset=utf-8",
                "no-store".into(),
            );
            res.extensions_mut()
                .insert(crate::stats::RouteLabel("metrics"));
            res
        })
        .boxed()
}

/// GET /[<opt>/…]<stream>.m3u8, /[<opt>/…]<stream>_<track>.m3u8,
/// /[<opt>/…]<stream>/<track>.m3u8 and /[<opt>/…][g=<n>/]<stream>/<path…>
/// (`?now=<Unix ms>` on playlists): everything the URL scheme (`urls`) names.
fn streams(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path::full()
        .and(query())
        .and(warp::header::headers_cloned())
        .and(warp::method())
        .and(with_app(app))
        .then(
            |path: warp::path::FullPath,
             query: LiveQuery,
             headers: HeaderMap,
             method: Method,
             app: Arc<App>| async move {
                handlers::resource(
                    &app,
                    path.as_str(),
                    &query,
                    &headers,
                    method == Method::HEAD,
                )
                .await
            },
        )
        .boxed()
}

/// OPTIONS on any path: the CORS preflight.
fn preflight() -> BoxedFilter<(Response,)> {
    warp::options()
        .and(warp::header::headers_cloned())
        .map(|headers: HeaderMap| reply::preflight(&headers))
        .boxed()
}

/// Records a response in the request counters.
fn count(res: &Response) {
    let route = res
        .extensions()
        .get::<crate::stats::RouteLabel>()
        .map_or("other", |r| r.0);
    let status = res.status().as_str().to_string();
    ::metrics::counter!("pseudolive_requests_total", "route" => route, "status" => status)
        .increment(1);
    let bytes = res
        .headers()
        .get(warp::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    ::metrics::counter!("pseudolive_response_bytes_total", "route" => route).increment(bytes);
}

/// The warp filter serving `app`: every route, CORS on every response,
/// HEAD answered without a body, unmatched requests mapped to statuses.
pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    let read = warp::get().or(warp::head()).unify();
    let api = read.and(
        index(app.clone())
            .or(streams_json(app.clone()))
            .unify()
            .or(metrics_route())
            .unify()
            .or(streams(app))
            .unify(),
    );
    preflight()
        .or(api)
        .unify()
        .recover(reply::unmatched)
        .unify()
        .and(warp::method())
        .map(|mut res: Response, method: Method| {
            reply::add_cors(res.headers_mut());
            count(&res);
            if method == Method::HEAD {
                *res.body_mut() = Default::default();
            }
            res
        })
        .boxed()
}
