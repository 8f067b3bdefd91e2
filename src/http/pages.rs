//! GET / and GET /streams.json: what the library holds and in what state.

use bytes::Bytes;
use serde::Serialize;
use warp::reply::Response;

use super::reply;
use crate::library::{Library, StreamState};
use crate::ticks::Ticks;
use crate::urls;

#[derive(Serialize)]
struct VariantInfo {
    name: String,
    /// `variant` or `rendition`.
    kind: &'static str,
    url: String,
}

/// Segments by how their duration was measured.
#[derive(Serialize, Default)]
struct MethodCounts {
    native: usize,
    ffprobe: usize,
    playlist: usize,
}

#[derive(Serialize)]
struct StreamInfo {
    name: String,
    state: &'static str,
    master: String,
    page: String,
    variants: Vec<VariantInfo>,
    methods: Option<MethodCounts>,
    segments: Option<usize>,
    loop_seconds: Option<f64>,
    target_duration: Option<u64>,
    media_sequence: Option<u64>,
    /// When a stream with a future `--epoch` starts (RFC 3339).
    starts_at: Option<String>,
    error: Option<String>,
}

fn infos(library: &Library, now_unix: Ticks) -> Vec<StreamInfo> {
    library
        .slots()
        .iter()
        .map(|slot| {
            let name = slot.name.clone();
            let mut info = StreamInfo {
                master: urls::absolute(&urls::master(&name)),
                page: urls::absolute(&urls::page(&name)),
                methods: None,
                name,
                state: "loading",
                variants: Vec::new(),
                segments: None,
                loop_seconds: None,
                target_duration: None,
                media_sequence: None,
                starts_at: None,
                error: None,
            };
            match slot.state() {
                StreamState::Loading => {}
                StreamState::Failed(reason) => {
                    info.state = "failed";
                    info.error = Some(reason.to_string());
                }
                StreamState::Ready(live) => {
                    let s = &live.stream;
                    info.state = "ready";
                    info.variants = s
                        .tracks
                        .iter()
                        .map(|t| VariantInfo {
                            name: t.name.clone(),
                            kind: match t.kind {
                                crate::model::TrackKind::Variant => "variant",
                                crate::model::TrackKind::Rendition => "rendition",
                            },
                            url: urls::absolute(&urls::media(
                                &s.name,
                                &t.name,
                                library.media_form(&s.name, &t.name),
                            )),
                        })
                        .collect();
                    let mut methods = MethodCounts::default();
                    for seg in s.tracks.iter().flat_map(|t| &t.segments) {
                        match seg.method {
                            crate::probe::Method::Native => methods.native += 1,
                            crate::probe::Method::Ffprobe => methods.ffprobe += 1,
                            crate::probe::Method::Playlist => methods.playlist += 1,
                        }
                    }
                    info.methods = Some(methods);
                    info.segments = Some(s.schedule.len());
                    info.loop_seconds =
                        Some((s.schedule.loop_duration().as_secs_f64() * 1000.0).round() / 1000.0);
                    info.target_duration = Some(s.target_duration_s);
                    info.media_sequence = live
                        .started_anchor()
                        .map(|a| live.window(a, now_unix, live.default_rule).first);
                    info.starts_at = live.starts_in_future(now_unix).and_then(|t| {
                        chrono::DateTime::from_timestamp_millis(t.as_ms() as i64)
                            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    });
                }
            }
            info
        })
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// GET /streams.json
pub fn streams_json(library: &Library, now_unix: Ticks) -> Response {
    let body = serde_json::to_vec_pretty(&infos(library, now_unix)).unwrap_or_default();
    reply::text(
        Bytes::from(body),
        None,
        "application/json",
        "no-store".into(),
    )
}

/// GET /
pub fn index(library: &Library, now_unix: Ticks) -> Response {
    let mut html = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>pseudolive</title>\
         <style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;vertical-align:top}\
         .failed{color:#b00}</style></head><body>\n<h1>pseudolive</h1>\n\
         <table><tr><th>stream</th><th>state</th><th>variants and renditions</th><th>media sequence</th><th>loop</th>\
         <th>segments</th><th>measured (native / ffprobe / playlist)</th><th></th></tr>\n",
    );
    let streams = infos(library, now_unix);
    for s in &streams {
        let variants: Vec<String> = s
            .variants
            .iter()
            .map(|v| {
                let mark = if v.kind == "rendition" {
                    " (rendition)"
                } else {
                    ""
                };
                format!(
                    "<a href=\"{}\">{}</a>{mark}",
                    escape(&v.url),
                    escape(&v.name)
                )
            })
            .collect();
        let state = match &s.error {
            Some(e) => format!("<span class=\"failed\">failed: {}</span>", escape(e)),
            None => s.state.to_string(),
        };
        let sequence = match (&s.starts_at, s.media_sequence, s.state) {
            (Some(at), _, _) => format!("starts at {}", escape(at)),
            (None, Some(m), _) => m.to_string(),
            (None, None, "ready") => "not started".to_string(),
            _ => String::new(),
        };
        html.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td><a href=\"{}\">master playlist</a></td></tr>\n",
            escape(&s.page),
            escape(&s.name),
            state,
            variants.join(" "),
            sequence,
            s.loop_seconds.map(|l| format!("{l} s")).unwrap_or_default(),
            s.segments.map(|n| n.to_string()).unwrap_or_default(),
            s.methods
                .as_ref()
                .map(|m| format!("{} / {} / {}", m.native, m.ffprobe, m.playlist))
                .unwrap_or_default(),
            escape(&s.master),
        ));
    }
    if streams.is_empty() {
        html.push_str("<tr><td colspan=\"8\">no streams: add directories with an abr.m3u8 under the library root</td></tr>\n");
    }
    html.push_str("</table>\n<p>Master playlist of a stream: <code>/&lt;stream&gt;.m3u8</code>. <a href=\"/streams.json\">streams.json</a></p>\n</body></html>\n");
    reply::text(
        Bytes::from(html),
        None,
        "text/html; charset=utf-8",
        "no-store".into(),
    )
}

/// Default location of hls.js for the stream page (`--hlsjs-url` overrides it).
pub const DEFAULT_HLSJS_URL: &str = "https://cdn.jsdelivr.net/npm/hls.js@1.7.4/dist/hls.min.js";

/// A JSON string literal safe inside a `<script>` element.
fn js_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_else(|_| "\"\"".into())
        .replace("</", "<\\/")
}

/// `GET /<stream>`: a player, the live state and the timeline of one stream.
pub fn stream_page(stream: &str, hlsjs_url: &str) -> Response {
    let html = include_str!("stream_page.html")
        .replace("{{STREAM_JSON}}", &js_string(stream))
        .replace("{{STATE_URL}}", &js_string(&urls::state(stream)))
        .replace("{{MASTER_URL}}", &js_string(&urls::master(stream)))
        .replace("{{HLSJS}}", &escape(hlsjs_url))
        .replace("{{STREAM}}", &escape(stream));
    reply::text(
        Bytes::from(html),
        None,
        "text/html; charset=utf-8",
        "no-store".into(),
    )
}

#[derive(Serialize)]
struct SegmentState {
    duration: f64,
    source_duration: f64,
    method: &'static str,
    discontinuity: bool,
}

#[derive(Serialize)]
struct TrackState {
    name: String,
    url: String,
    segments: Vec<SegmentState>,
    /// Loop indices of the segments listed now.
    window_indices: Vec<u64>,
}

#[derive(Serialize)]
struct LiveState {
    name: String,
    state: &'static str,
    error: Option<String>,
    starts_at: Option<String>,
    server_time_ms: u64,
    loop_seconds: f64,
    target_duration: u64,
    media_sequence: Option<u64>,
    discontinuity_sequence: Option<u64>,
    /// Loop number of the newest listed segment.
    #[serde(rename = "loop")]
    loop_index: Option<u64>,
    position_seconds: Option<f64>,
    next_loop_point_seconds: Option<f64>,
    tracks: Vec<TrackState>,
}

/// `GET /<stream>.json`: the live state of a stream and its measured segments.
pub fn stream_json(library: &Library, stream: &str, now_unix: Ticks) -> Option<Response> {
    let slot = library.get(stream)?;
    let mut st = LiveState {
        name: stream.to_string(),
        state: "loading",
        error: None,
        starts_at: None,
        server_time_ms: now_unix.as_ms(),
        loop_seconds: 0.0,
        target_duration: 0,
        media_sequence: None,
        discontinuity_sequence: None,
        loop_index: None,
        position_seconds: None,
        next_loop_point_seconds: None,
        tracks: Vec::new(),
    };
    match slot.state() {
        crate::library::StreamState::Loading => {}
        crate::library::StreamState::Failed(e) => {
            st.state = "failed";
            st.error = Some(e.to_string());
        }
        crate::library::StreamState::Ready(live) => {
            let s = &live.stream;
            st.state = "ready";
            let loop_duration = s.schedule.loop_duration();
            st.loop_seconds = loop_duration.as_secs_f64();
            st.target_duration = s.target_duration_s;
            st.starts_at = live.starts_in_future(now_unix).and_then(|t| {
                chrono::DateTime::from_timestamp_millis(t.as_ms() as i64)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            });
            let anchor = live.started_anchor();
            if let Some(anchor) = anchor {
                let w = live.window(anchor, now_unix, live.default_rule);
                let t = now_unix.saturating_sub(anchor);
                let position = Ticks(t.0 % loop_duration.0);
                st.media_sequence = Some(w.first);
                st.discontinuity_sequence = Some(w.discontinuity_sequence);
                st.loop_index = Some(t.0 / loop_duration.0);
                st.position_seconds = Some(position.as_secs_f64());
                st.next_loop_point_seconds = Some((loop_duration - position).as_secs_f64());
            }
            for (i, track) in s.tracks.iter().enumerate() {
                let n = track.segments.len() as u64;
                let window_indices = anchor
                    .map(|a| {
                        let w = live.track_window(i, a, now_unix, live.default_rule);
                        (w.first..=w.last).map(|g| g % n).collect()
                    })
                    .unwrap_or_default();
                st.tracks.push(TrackState {
                    name: track.name.clone(),
                    url: urls::absolute(&urls::media(
                        &s.name,
                        &track.name,
                        library.media_form(&s.name, &track.name),
                    )),
                    segments: track
                        .segments
                        .iter()
                        .map(|seg| SegmentState {
                            duration: seg.duration.as_secs_f64(),
                            source_duration: seg.source_duration.as_secs_f64(),
                            method: seg.method.name(),
                            discontinuity: seg.discontinuity,
                        })
                        .collect(),
                    window_indices,
                });
            }
        }
    }
    let body = serde_json::to_vec(&st).unwrap_or_default();
    Some(reply::text(
        Bytes::from(body),
        None,
        "application/json",
        "no-store".into(),
    ))
}
