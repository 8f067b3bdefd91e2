//! GET / and GET /streams.json: what the library holds and in what state.

use bytes::Bytes;
use serde::Serialize;
use warp::reply::Response;

use super::reply;
use crate::library::encode_segment;
use crate::live::{Library, StreamState};
use crate::ticks::to_secs;

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
    error: Option<String>,
}

fn infos(library: &Library, now: u64) -> Vec<StreamInfo> {
    library
        .slots()
        .iter()
        .map(|slot| {
            let name = slot.name.clone();
            let mut info = StreamInfo {
                master: format!("/{}.m3u8", encode_segment(&name)),
                name,
                state: "loading",
                variants: Vec::new(),
                segments: None,
                loop_seconds: None,
                target_duration: None,
                media_sequence: None,
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
                            url: format!(
                                "/{}_{}.m3u8",
                                encode_segment(&s.name),
                                encode_segment(&t.name)
                            ),
                        })
                        .collect();
                    info.segments = Some(s.schedule.len());
                    info.loop_seconds =
                        Some((to_secs(s.schedule.loop_ticks()) * 1000.0).round() / 1000.0);
                    info.target_duration = Some(s.target_duration);
                    info.media_sequence = live.started_window_at(now).map(|w| w.first);
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
pub fn streams_json(library: &Library, now: u64, head: bool) -> Response {
    let body = serde_json::to_vec_pretty(&infos(library, now)).unwrap_or_default();
    reply::text(
        Bytes::from(body),
        None,
        "application/json",
        "no-store".into(),
        head,
    )
}

/// GET /
pub fn index(library: &Library, now: u64, head: bool) -> Response {
    let mut html = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>pseudolive</title>\
         <style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;vertical-align:top}\
         .failed{color:#b00}</style></head><body>\n<h1>pseudolive</h1>\n\
         <table><tr><th>stream</th><th>state</th><th>variants</th><th>media sequence</th><th>loop</th></tr>\n",
    );
    let streams = infos(library, now);
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
        html.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&s.master),
            escape(&s.name),
            state,
            variants.join(" "),
            match (s.state, s.media_sequence) {
                (_, Some(m)) => m.to_string(),
                ("ready", None) => "not started".to_string(),
                _ => String::new(),
            },
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
        head,
    )
}
