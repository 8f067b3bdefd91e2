//! The handlers behind the routes: plain async functions from a parsed
//! request to a response. Domain outcomes are [`HttpError`]s, mapped to
//! statuses in `reply`.

use std::sync::Arc;

use warp::http::HeaderMap;
use warp::reply::Response;

use super::reply::{self, HttpError, M3U8};
use super::{App, LiveQuery, files, pages};
use crate::library::{LiveStream, StreamState};
use crate::ticks::Ticks;
use crate::urls::{self, MediaForm, PlaylistTarget, Target};

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

/// Everything under the URL scheme: playlists and files.
pub async fn resource(
    app: &Arc<App>,
    path: &str,
    query: &LiveQuery,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, HttpError> {
    let parsed = urls::parse(path)?;
    if let Some((key, value)) = parsed.options.first() {
        return Err(HttpError::BadRequest(format!(
            "unknown option {key}={value}: no URL options are known"
        )));
    }
    let gzip = reply::accepts_gzip(headers);
    match parsed.target {
        Target::Index => Ok(index(app)),
        Target::StreamsJson => Ok(streams_json(app)),
        Target::Playlist(name) => {
            let time = request_time(app, query)?;
            if let Some(res) = playlist(app, &name, time, gzip).await? {
                return Ok(res);
            }
            // Nothing of that name: perhaps a stream added since the last scan.
            app.library.rescan_soon().await;
            playlist(app, &name, time, gzip)
                .await?
                .ok_or_else(|| not_found(app, &name.decoded()))
        }
        Target::InStream { stream, path } => {
            if let [file] = path.as_slice()
                && let Some(track) = file.strip_suffix(".m3u8")
                && app.library.get(&stream).is_some()
            {
                let live = ready(app, &stream).await?;
                let time = request_time(app, query)?;
                return match live.stream.tracks.iter().position(|t| t.name == track) {
                    Some(index) => Ok(media(&live, index, MediaForm::InStream, time, gzip)),
                    None => Err(HttpError::NotFound(format!(
                        "stream {stream} has no track {track}; source playlists are not served"
                    ))),
                };
            }
            let mut parts = Vec::with_capacity(path.len() + 1);
            parts.push(stream);
            parts.extend(path);
            files::serve(&app.files, &parts, headers, head).await
        }
    }
}

/// The master or media playlist `name` resolves to, if any.
async fn playlist(
    app: &Arc<App>,
    name: &urls::PlaylistName,
    time: RequestTime,
    gzip: bool,
) -> Result<Option<Response>, HttpError> {
    for candidate in name.candidates() {
        match candidate {
            PlaylistTarget::Master(stream) if app.library.get(&stream).is_some() => {
                let live = ready(app, &stream).await?;
                let master = live.master_playlist(&app.library);
                let zipped = gzip.then(|| master.gzip.clone());
                let cache = "public, max-age=60".to_string();
                return Ok(Some(reply::text(master.plain, zipped, M3U8, cache)));
            }
            PlaylistTarget::Media { stream, track } if app.library.get(&stream).is_some() => {
                let live = ready(app, &stream).await?;
                if let Some(index) = live.stream.tracks.iter().position(|t| t.name == track) {
                    return Ok(Some(media(&live, index, MediaForm::Root, time, gzip)));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The live media playlist of one track.
fn media(
    live: &LiveStream,
    index: usize,
    form: MediaForm,
    time: RequestTime,
    gzip: bool,
) -> Response {
    let anchor = live.anchor(time.clock_unix);
    let rendered = live.media_playlist(
        index,
        form,
        anchor,
        time.now_unix,
        live.default_rule,
        !time.from_query,
    );
    let cache = format!("public, max-age={}", live.stream.target_duration_s / 2);
    reply::text(rendered.plain, gzip.then_some(rendered.gzip), M3U8, cache)
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
            app.library.rescan_soon().await;
            Err(HttpError::Failed(reason.to_string()))
        }
        StreamState::Loading => Err(HttpError::Loading(name.to_string())),
    }
}
