//! The handlers behind the routes: plain async functions from a parsed
//! request to a response. Domain outcomes are [`HttpError`]s, mapped to
//! statuses in `reply`.

use std::sync::Arc;

use warp::http::HeaderMap;
use warp::reply::Response;

use super::reply::{self, HttpError, M3U8};
use super::{App, LiveQuery, faults, files, pages};
use crate::library::{LiveStream, LowLatencyRequest, StreamState};
use crate::ll;
use crate::options::{Fault, FaultAction, FaultRequest, LowLatency, Options, Resource, TsMode};
use crate::stats::RouteLabel;
use crate::ticks::Ticks;
use crate::timeline;
use crate::urls::{self, MediaForm, PlaylistTarget, Target};

mod segments;
use segments::{continuous, part, segment_fault};

/// Latest `?now=`: the last millisecond of the year 9999.
const MAX_NOW_MS: u64 = 253_402_300_799_999;

/// The instant a request asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTime {
    /// The server clock at the request.
    pub clock_unix: Ticks,
    /// The instant to render: `?now=`, else the clock.
    pub now_unix: Ticks,
    /// Whether `now_unix` came from `?now=`.
    pub from_query: bool,
}

/// Reads the clock, and `?now=<unix ms>` when given.
fn request_time(app: &App, query: &LiveQuery) -> Result<RequestTime, HttpError> {
    let clock_unix = app.clock.now_unix();
    let Some(v) = &query.now else {
        return Ok(RequestTime {
            clock_unix,
            now_unix: clock_unix,
            from_query: false,
        });
    };
    let ms = v
        .parse::<u64>()
        .ok()
        .filter(|&ms| ms <= MAX_NOW_MS)
        .ok_or_else(|| {
            HttpError::BadRequest(format!(
                "bad now={v}: expected Unix milliseconds before the year 10000"
            ))
        })?;
    Ok(RequestTime {
        clock_unix,
        now_unix: Ticks::from_ms(ms),
        from_query: true,
    })
}

/// GET /
pub fn index(app: &App) -> Response {
    pages::index(&app.library, app.clock.now_unix())
}

/// GET /streams.json
pub fn streams_json(app: &App) -> Response {
    pages::streams_json(&app.library, app.clock.now_unix())
}

/// One request's view of a stream: its options (the URL's over the
/// server's), the instant, and whether to gzip.
struct Ctx {
    options: Options,
    time: RequestTime,
    gzip: bool,
    /// `_HLS_*` directives; only media playlists read them (a malformed
    /// one is a 400 there, ignored elsewhere).
    reload: Result<Reload, String>,
}

/// A playlist request's `_HLS_msn`, `_HLS_part` and `_HLS_skip`.
#[derive(Debug, Clone, Copy, Default)]
struct Reload {
    msn: Option<u64>,
    part: Option<u64>,
    /// `Some(false)` for `YES`, `Some(true)` for `v2`.
    skip: Option<bool>,
}

impl Reload {
    fn parse(query: &LiveQuery) -> Result<Reload, String> {
        let number = |key: &str, v: &Option<String>| {
            v.as_deref()
                .map(|v| {
                    v.parse::<u64>()
                        .ok()
                        .filter(|&n| n <= urls::MAX_SEGMENT_NUMBER)
                        .ok_or_else(|| format!("bad {key}={v}"))
                })
                .transpose()
        };
        let reload = Reload {
            msn: number("_HLS_msn", &query.hls_msn)?,
            part: number("_HLS_part", &query.hls_part)?,
            skip: match query.hls_skip.as_deref() {
                Some("YES") => Some(false),
                Some("v2") => Some(true),
                _ => None,
            },
        };
        if reload.part.is_some() && reload.msn.is_none() {
            return Err("_HLS_part without _HLS_msn (RFC 8216bis 6.2.5.2)".into());
        }
        Ok(reload)
    }
}

impl Ctx {
    /// The anchor of this request's timeline: its `start=`, else the stream's.
    fn anchor(&self, live: &LiveStream) -> Ticks {
        match self.options.start_ms {
            Some(ms) => live.anchor_from(Ticks::from_ms(ms)),
            None => live.anchor(self.time.clock_unix),
        }
    }

    /// The fault this request gets, if any.
    fn fault(&self, req: &FaultRequest) -> Option<Fault> {
        self.options.faults.as_ref()?.select(req).cloned()
    }

    /// Whether segment URIs must carry their global number: the bytes
    /// (continuous timestamps) or a segment fault may depend on it.
    fn numbered(&self) -> bool {
        self.continuous()
            || self
                .options
                .faults
                .as_ref()
                .is_some_and(|f| f.0.iter().any(|f| f.filters.on == Resource::Segment))
    }

    fn continuous(&self) -> bool {
        self.options.ts == Some(TsMode::Continuous)
    }

    /// The part target, when this request asks for low latency.
    fn part_target(&self) -> Option<Ticks> {
        match self.options.ll {
            Some(LowLatency::Parts { part_target_ms }) => {
                Some(Ticks::from_ms(u64::from(part_target_ms)))
            }
            _ => None,
        }
    }
}

/// Everything under the URL scheme: playlists and files, each response
/// labelled with its route for the metrics.
pub async fn resource(
    app: &Arc<App>,
    path: &str,
    query: &LiveQuery,
    headers: &HeaderMap,
    head: bool,
) -> Response {
    let label = match urls::parse(path).map(|p| p.target) {
        Ok(Target::Index) => "index",
        Ok(Target::StreamsJson) => "streams_json",
        Ok(Target::StreamPage(_) | Target::StreamJson(_)) => "page",
        Ok(Target::Playlist(_)) => "playlist",
        Ok(Target::InStream { path, .. }) if path.len() == 1 && path[0].ends_with(".m3u8") => {
            "playlist"
        }
        Ok(Target::InStream { .. }) => "segment",
        Err(_) => "other",
    };
    let mut res = answer(app, path, query, headers, head)
        .await
        .unwrap_or_else(HttpError::into_response);
    res.extensions_mut().insert(RouteLabel(label));
    if let Some(action) = res.extensions().get::<FaultAction>() {
        ::metrics::counter!("pseudolive_faults_total", "action" => action.name()).increment(1);
    }
    res
}

async fn answer(
    app: &Arc<App>,
    path: &str,
    query: &LiveQuery,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, HttpError> {
    let parsed = urls::parse(path)?;
    let options = parsed.options.over(&app.defaults);
    let ctx = Ctx {
        options,
        time: request_time(app, query)?,
        gzip: reply::accepts_gzip(headers),
        reload: Reload::parse(query),
    };
    match parsed.target {
        Target::Index => Ok(index(app)),
        Target::StreamsJson => Ok(streams_json(app)),
        Target::StreamJson(stream) => {
            match pages::stream_json(&app.library, &stream, app.clock.now_unix()) {
                Some(res) => Ok(res),
                // A stream whose own name ends in .json: its page.
                None if app.library.get(&format!("{stream}.json")).is_some() => Ok(
                    pages::stream_page(&format!("{stream}.json"), &app.hlsjs_url),
                ),
                None => Err(HttpError::NotFound(format!("unknown stream {stream}"))),
            }
        }
        Target::StreamPage(stream) => {
            if app.library.get(&stream).is_none() {
                app.library.rescan_soon().await;
            }
            match app.library.get(&stream) {
                Some(_) => Ok(pages::stream_page(&stream, &app.hlsjs_url)),
                None => Err(not_found(app, &stream)),
            }
        }
        Target::Playlist(name) => {
            if let Some(res) = playlist(app, &name, &ctx).await? {
                return Ok(res);
            }
            // Nothing of that name: perhaps a stream added since the last scan.
            app.library.rescan_soon().await;
            playlist(app, &name, &ctx)
                .await?
                .ok_or_else(|| not_found(app, &name.decoded()))
        }
        Target::InStream { stream, path } => {
            if let (Some(p), Some(g)) = (parsed.part, parsed.segment_number) {
                let fault = segment_fault(app, &stream, &path, Some(g), &ctx).await;
                let res = part(app, &stream, &path, g, p, &ctx).await?;
                return Ok(match fault {
                    Some(fault) => faults::apply(fault.action, res).await,
                    None => res,
                });
            }
            if let [file] = path.as_slice()
                && file.ends_with(".m3u8")
                && app.library.get(&stream).is_none()
            {
                app.library.rescan_soon().await;
            }
            if let [file] = path.as_slice()
                && let Some(track) = file.strip_suffix(".m3u8")
                && app.library.get(&stream).is_some()
            {
                let live = ready(app, &stream).await?;
                return match live.stream.tracks.iter().position(|t| t.name == track) {
                    Some(index) => media(app, &live, index, MediaForm::InStream, &ctx).await,
                    None => Err(HttpError::NotFound(format!(
                        "stream {stream} has no track {track}; source playlists are not served"
                    ))),
                };
            }
            if path
                .last()
                .is_some_and(|f| f.to_ascii_lowercase().ends_with(".m3u8"))
            {
                return Err(HttpError::NotFound(format!(
                    "/{stream}/{}: source playlists are not served; the live ones are /{}",
                    path.join("/"),
                    urls::master(&stream)
                )));
            }
            let fault = segment_fault(app, &stream, &path, parsed.segment_number, &ctx).await;
            let restamped = match parsed.segment_number {
                Some(g) if ctx.continuous() => continuous(app, &stream, &path, g).await?,
                _ => None,
            };
            let res = match restamped {
                Some(res) => res,
                None => {
                    let init = match app.library.get(&stream).map(|s| s.state()) {
                        Some(StreamState::Ready(live)) => live.is_init_section(&path.join("/")),
                        _ => false,
                    };
                    let mut parts = Vec::with_capacity(path.len() + 1);
                    parts.push(stream);
                    parts.extend(path);
                    let mut res = files::serve(&app.files, &parts, headers, head).await?;
                    if init {
                        res.headers_mut().insert(
                            warp::http::header::CONTENT_TYPE,
                            warp::http::HeaderValue::from_static("application/mp4"),
                        );
                    }
                    res
                }
            };
            Ok(match fault {
                Some(fault) => faults::apply(fault.action, res).await,
                None => res,
            })
        }
    }
}

/// The master or media playlist `name` resolves to, if any.
async fn playlist(
    app: &Arc<App>,
    name: &urls::PlaylistName,
    ctx: &Ctx,
) -> Result<Option<Response>, HttpError> {
    for candidate in name.candidates() {
        match candidate {
            PlaylistTarget::Master(stream) if app.library.get(&stream).is_some() => {
                let live = ready(app, &stream).await?;
                let master = live.master_playlist(&app.library);
                let zipped = ctx.gzip.then(|| master.gzip());
                let cache = "public, max-age=60".to_string();
                let res = reply::text(master.plain, zipped, M3U8, cache);
                let anchor = ctx.anchor(&live);
                let fault = ctx.fault(&FaultRequest {
                    kind: Resource::Master,
                    variant: "",
                    msn: None,
                    edge_msn: None,
                    timeline_ticks: ctx.time.now_unix.saturating_sub(anchor).0,
                });
                return Ok(Some(match fault {
                    Some(f) => faults::apply(f.action, res).await,
                    None => res,
                }));
            }
            PlaylistTarget::Media { stream, track } if app.library.get(&stream).is_some() => {
                let live = ready(app, &stream).await?;
                if let Some(index) = live.stream.tracks.iter().position(|t| t.name == track) {
                    return media(app, &live, index, MediaForm::Root, ctx)
                        .await
                        .map(Some);
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The live media playlist of one track, with the request's window,
/// timeline and faults; with low latency, its parts, held until what
/// `_HLS_msn`/`_HLS_part` ask for exists.
async fn media(
    app: &Arc<App>,
    live: &Arc<LiveStream>,
    index: usize,
    form: MediaForm,
    ctx: &Ctx,
) -> Result<Response, HttpError> {
    let anchor = ctx.anchor(live);
    let rule = live.rule(ctx.options.window_segments, ctx.options.dvr_secs);
    let parts = match ctx.part_target() {
        Some(target) => Some(stream_parts(app, live, target).await?),
        None => None,
    };
    let mut now = ctx.time.now_unix;
    let mut blocking = false;
    let reload = ctx.reload.clone().map_err(HttpError::BadRequest)?;
    if let (Some(parts), Some(msn)) = (&parts, reload.msn)
        && !ctx.time.from_query
    {
        let track = &live.stream.tracks[index];
        let verdict = timeline::parts::reload(
            live.stream.schedule_of(track),
            parts.tracks[index].as_ref().map(|p| &p.times),
            live.edge_instant(now.saturating_sub(anchor)),
            msn,
            reload.part,
        );
        match verdict {
            timeline::parts::Reload::Now => {}
            timeline::parts::Reload::BadRequest(why) => return Err(HttpError::BadRequest(why)),
            timeline::parts::Reload::Until(t) => {
                let limit = Ticks::from_secs(3 * live.stream.target_duration_s);
                hold(app, live, anchor + t, limit).await?;
                now = app.clock.now_unix();
            }
        }
        blocking = true;
    }
    let timeline_ticks = now.saturating_sub(anchor).0;
    let newest = live.track_window(index, anchor, now, rule).last;
    let fault = ctx.fault(&FaultRequest {
        kind: Resource::Playlist,
        variant: &live.stream.tracks[index].name,
        msn: Some(newest),
        edge_msn: Some(newest),
        timeline_ticks,
    });
    // A stale playlist is the one of an earlier instant.
    let stale_at = fault
        .as_ref()
        .and_then(|f| f.stale_at_ticks(timeline_ticks));
    let render_at = stale_at.map_or(now, |t| anchor + Ticks(t));
    let numbered = ctx.numbered();
    let forms = live.media_forms(&app.library);
    let ll = parts.as_deref().map(|parts| LowLatencyRequest {
        parts,
        forms: &forms,
        skip: reload.skip,
    });
    let rendered = live.media_playlist(index, form, numbered, anchor, render_at, rule, ll);
    let td = live.stream.target_duration_s;
    let cache = match (&parts, blocking) {
        // The answer to a blocking request never changes (Appendix B.1).
        (Some(_), true) => format!("public, max-age={}", 6 * td),
        (Some(_), false) => "no-cache".to_string(),
        (None, _) => format!("public, max-age={}", td / 2),
    };
    let zipped = ctx.gzip.then(|| rendered.gzip());
    let res = reply::text(rendered.plain, zipped, M3U8, cache);
    Ok(match fault {
        Some(f) => faults::apply(f.action, res).await,
        None => res,
    })
}

/// Holds a request until the clock shows `until_unix`: 503 when that is
/// more than `limit` away (RFC 8216bis 6.2.5.2: blocked for more than three
/// target durations), or when the server shuts down meanwhile.
async fn hold(
    app: &Arc<App>,
    live: &LiveStream,
    until_unix: Ticks,
    limit: Ticks,
) -> Result<(), HttpError> {
    let now = app.clock.now_unix();
    let give_up = now + limit;
    let wait = live.waits.until(&app.clock, until_unix.min(give_up));
    metrics::gauge!("pseudolive_held_requests").increment(1.0);
    let _held = scopeguard(|| metrics::gauge!("pseudolive_held_requests").decrement(1.0));
    tokio::select! {
        _ = wait => {}
        _ = app.shutdown.cancelled() => {
            return Err(HttpError::Unavailable("the server is shutting down".into()));
        }
    }
    if until_unix > give_up {
        return Err(HttpError::Unavailable(format!(
            "blocked for {limit} s without the segment or part asked for"
        )));
    }
    Ok(())
}

/// Runs `f` when dropped: a held request's gauge goes down however it ends
/// (answered, or dropped when the client disconnects).
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// Every track's parts for `target`, carved once per stream and target
/// (reading each track's frames the first time): 400 naming the file when
/// a track cannot be cut into parts of that target.
async fn stream_parts(
    app: &Arc<App>,
    live: &Arc<LiveStream>,
    target: Ticks,
) -> Result<Arc<ll::StreamParts>, HttpError> {
    let dir = app.library.config().root.join(&live.stream.name);
    live.stream_parts(target, dir)
        .await
        .map_err(|e| HttpError::BadRequest(format!("ll={}: {e}", target.as_secs_f64())))
}

fn not_found(app: &App, name: &str) -> HttpError {
    let known: Vec<String> = app.library.slots().iter().map(|s| s.name.clone()).collect();
    HttpError::NotFound(format!(
        "no stream or variant playlist {name}.m3u8; known streams: {}",
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    ))
}

/// A ready stream, waiting (bounded) for one that is loading; a failed one
/// is looked at again (its files may have been fixed).
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
        StreamState::Failed(reason) => {
            // Its files may have been fixed: a rescan loads it again.
            app.library.rescan_soon().await;
            match slot.state() {
                StreamState::Loading => match slot.settled(app.load_wait).await {
                    StreamState::Ready(live) => Ok(live),
                    StreamState::Failed(reason) => Err(HttpError::Failed(reason.to_string())),
                    StreamState::Loading => Err(HttpError::Loading(name.to_string())),
                },
                _ => Err(HttpError::Failed(reason.to_string())),
            }
        }
        StreamState::Loading => Err(HttpError::Loading(name.to_string())),
    }
}
