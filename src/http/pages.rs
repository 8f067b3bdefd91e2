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
    url: String,
}

#[derive(Serialize)]
struct StreamInfo {
    name: String,
    state: &'static str,
    master: String,
    variants: Vec<VariantInfo>,
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
                            url: urls::absolute(&urls::media(
                                &s.name,
                                &t.name,
                                library.media_form(&s.name, &t.name),
                            )),
                        })
                        .collect();
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
         <table><tr><th>stream</th><th>state</th><th>variants</th><th>media sequence</th><th>loop</th></tr>\n",
    );
    let streams = infos(library, now_unix);
    for s in &streams {
        let variants: Vec<String> = s
            .variants
            .iter()
            .map(|v| format!("<a href=\"{}\">{}</a>", escape(&v.url), escape(&v.name)))
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
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&s.master),
            escape(&s.name),
            state,
            variants.join(" "),
            sequence,
            s.loop_seconds.map(|l| format!("{l} s")).unwrap_or_default(),
        ));
    }
    if streams.is_empty() {
        html.push_str("<tr><td colspan=\"5\">no streams: add directories with an abr.m3u8 under the library root</td></tr>\n");
    }
    html.push_str("</table>\n<p>Master playlist of a stream: <code>/&lt;stream&gt;.m3u8</code>. <a href=\"/streams.json\">streams.json</a></p>\n</body></html>\n");
    reply::text(
        Bytes::from(html),
        None,
        "text/html; charset=utf-8",
        "no-store".into(),
    )
}
