//! Segment and part responses beyond a plain file: segments with their
//! timestamps moved onto the timeline (continuous mode; MPEG-TS, fMP4 and
//! WebVTT, each rewritten once and then kept), LL-HLS parts, and the fault
//! a segment request gets.

use std::sync::Arc;

use bytes::Bytes;
use warp::reply::Response;

use super::{Ctx, hold, ready, stream_parts};
use crate::http::reply::{self, HttpError};
use crate::http::{App, files};
use crate::library::{LiveStream, RestampPlan};
use crate::options::{Fault, FaultRequest, Resource};
use crate::restamp::ts::restamped;
use crate::restamp::webvtt;
use crate::ticks::Ticks;

/// The track of a stream whose segment `g` (or, without a number, some
/// segment) is the file `file`.
fn segment_track(live: &LiveStream, file: &str, g: Option<u64>) -> Option<usize> {
    let (first, _) = live.segment_at(file)?;
    let numbered = g.and_then(|g| {
        live.stream.tracks.iter().position(|t| {
            let n = t.segments.len() as u64;
            t.segments[(g % n) as usize].path == file
        })
    });
    Some(numbered.unwrap_or(first))
}

/// Segment `g` (MPEG-TS, fMP4 or WebVTT) with its timestamps moved onto
/// the timeline (continuous mode); `None` when the file is not such a
/// segment (then it is served as it is).
pub(super) async fn continuous(
    app: &Arc<App>,
    stream: &str,
    path: &[String],
    g: u64,
) -> Result<Option<Response>, HttpError> {
    let Some(slot) = app.library.get(stream) else {
        return Ok(None);
    };
    let live = ready(app, &slot.name).await?;
    let file = path.join("/");
    let Some(index) = segment_track(&live, &file, Some(g)) else {
        return Ok(None);
    };
    let track = &live.stream.tracks[index];
    let n = track.segments.len() as u64;
    if track.segments[(g % n) as usize].path != file {
        return Err(HttpError::NotFound(format!(
            "segment {g} of {stream}/{} is not {file}",
            track.name
        )));
    }
    let segment = &track.segments[(g % n) as usize];
    if segment.byte_range.is_some() || segment.key.as_ref().is_some_and(|k| k.method != "NONE") {
        return Ok(None); // A byte range of a file, or encrypted: served as it is.
    }
    let mut parts = vec![stream.to_string()];
    parts.extend(path.iter().cloned());
    let source = files::bytes(&app.files, &parts).await?;
    let (data, content_type) = (&source.data, source.content_type);
    if webvtt::looks_like_webvtt(data) {
        if let Some(body) = source
            .cached
            .then(|| live.rewritten(index).get(g, data))
            .flatten()
        {
            return Ok(Some(reply::segment(body, content_type)));
        }
        let Some(offset) = webvtt_offset(app, &live, index, g).await? else {
            return Ok(None); // Nothing timed to move it with: served as it is.
        };
        let body = kept_or_rewritten(&live, index, g, &source, || {
            webvtt::apply(data, offset)
                .map(Bytes::from)
                .map_err(|e| HttpError::Failed(format!("/{stream}/{file}: {e}")))
        })?;
        return Ok(Some(reply::segment(body, content_type)));
    }
    let fmp4 = crate::probe::fmp4::looks_like_mp4(data);
    if !fmp4 && data.first() != Some(&0x47) {
        return Ok(None); // Neither MPEG-TS, fMP4 nor WebVTT: served as it is.
    }
    let dir = app.library.config().root.join(stream);
    let plan = live
        .restamp_plan(index, dir, fmp4)
        .await
        .map_err(|e| HttpError::BadRequest(format!("ts=continuous: {e}")))?;
    let body = rewritten_segment(&live, index, g, &source, &plan, &file)?;
    Ok(Some(reply::segment(body, content_type)))
}

/// The offset (90 kHz) by which continuous mode moves the media that WebVTT
/// segment `g` of track `index` is timed against: that of the segment
/// playing at the middle of it of the stream's first video track, else of
/// its first audio track (MPEG-TS or fMP4, whole files, not encrypted).
/// Audio and video segments are each moved to where they are listed, so
/// their offsets differ by as much as their boundaries do: the pictures are
/// what cues are read against. `None` without such a track.
async fn webvtt_offset(
    app: &Arc<App>,
    live: &Arc<LiveStream>,
    index: usize,
    g: u64,
) -> Result<Option<u64>, HttpError> {
    let tracks = &live.stream.tracks;
    let schedule = live.stream.schedule_of(&tracks[index]);
    let middle = schedule.start_of(g) + Ticks(schedule.duration_of(g).0 / 2);
    let mut audio = None;
    for (r, reference) in tracks.iter().enumerate() {
        let first = &reference.segments[0];
        if r == index
            || first.byte_range.is_some()
            || first.key.as_ref().is_some_and(|k| k.method != "NONE")
        {
            continue;
        }
        let ref_schedule = live.stream.schedule_of(reference);
        let rg = ref_schedule.listed(middle);
        let i = (rg % reference.segments.len() as u64) as usize;
        let mut parts = vec![live.stream.name.clone()];
        parts.extend(reference.segments[i].path.split('/').map(String::from));
        let data = files::bytes(&app.files, &parts).await?.data;
        let fmp4 = crate::probe::fmp4::looks_like_mp4(&data);
        if !fmp4 && data.first() != Some(&0x47) {
            continue; // Subtitles too, or something else untimed.
        }
        let dir = app.library.config().root.join(&live.stream.name);
        let plan = live
            .restamp_plan(r, dir, fmp4)
            .await
            .map_err(|e| HttpError::BadRequest(format!("ts=continuous: {e}")))?;
        let start = ref_schedule.start_of(rg).0;
        let (offset, video) = match plan.as_ref() {
            RestampPlan::Ts(plan) => {
                let kind = crate::probe::ts::scan(&data, crate::probe::ts::Depth::Start)
                    .map(|t| t.kind)
                    .ok();
                (
                    Some(plan.pts_offset(rg, start)),
                    kind == Some(crate::probe::ts::StreamKind::Video),
                )
            }
            RestampPlan::Fmp4(plan) => (plan.pts_offset(i, start), plan.reference_is_video),
        };
        if video {
            return Ok(offset);
        }
        audio = audio.or(Some(offset));
    }
    Ok(audio.flatten())
}

/// Segment `g` of track `index` rewritten from its file's bytes `source`:
/// the kept rewrite of these very bytes, else `rewrite()`, kept when the
/// bytes are the file cache's (bytes read for one request alone are never
/// seen again, so a rewrite kept from them would only pin memory).
fn kept_or_rewritten(
    live: &LiveStream,
    index: usize,
    g: u64,
    source: &files::FileBytes,
    rewrite: impl FnOnce() -> Result<Bytes, HttpError>,
) -> Result<Bytes, HttpError> {
    if source.cached {
        live.rewritten(index)
            .get_or_rewrite(g, &source.data, rewrite)
    } else {
        rewrite()
    }
}

/// Segment `g` of track `index` (its file's bytes `source`) with continuous
/// timestamps: rewritten once, then kept while clients ask for it.
fn rewritten_segment(
    live: &LiveStream,
    index: usize,
    g: u64,
    source: &files::FileBytes,
    plan: &RestampPlan,
    file: &str,
) -> Result<Bytes, HttpError> {
    let track = &live.stream.tracks[index];
    let start = live.stream.schedule_of(track).start_of(g);
    let data = &source.data;
    kept_or_rewritten(live, index, g, source, || {
        Ok(match plan {
            RestampPlan::Ts(plan) => restamped(data, &plan.for_segment(g, start.0)).into(),
            RestampPlan::Fmp4(plan) => {
                let i = (g % track.segments.len() as u64) as usize;
                let shifts = plan.for_segment(i, start.0).ok_or_else(|| {
                    HttpError::BadRequest(format!("ts=continuous: {file}: offset out of range"))
                })?;
                crate::restamp::fmp4::apply(data, &shifts)
                    .map_err(|e| HttpError::BadRequest(format!("ts=continuous: {file}: {e}")))?
                    .into()
            }
        })
    })
}

/// Part `p` of global segment `g`, the file `path` of `stream`: once it
/// has ended; the part in progress (the one a preload hint names) is held
/// until it ends; a later one is not found yet.
pub(super) async fn part(
    app: &Arc<App>,
    stream: &str,
    path: &[String],
    g: u64,
    p: u64,
    ctx: &Ctx,
) -> Result<Response, HttpError> {
    let file = path.join("/");
    let Some(target) = ctx.part_target() else {
        return Err(HttpError::NotFound(format!(
            "/{stream}/{file}: parts are served under ll=<part target>/ only"
        )));
    };
    if app.library.get(stream).is_none() {
        return Err(HttpError::NotFound(format!("unknown stream {stream}")));
    }
    let live = ready(app, stream).await?;
    let not_found = |why: String| {
        HttpError::NotFound(format!(
            "part {p} of segment {g} of /{stream}/{file}: {why}"
        ))
    };
    let index = segment_track(&live, &file, Some(g))
        .ok_or_else(|| not_found("no track lists that file".into()))?;
    let track = &live.stream.tracks[index];
    let i = (g % track.segments.len() as u64) as usize;
    if track.segments[i].path != file {
        return Err(not_found(format!(
            "segment {g} of {} is another file",
            track.name
        )));
    }
    let parts = stream_parts(app, &live, target).await?;
    let track_parts = parts.tracks[index]
        .as_ref()
        .ok_or_else(|| not_found(format!("{} is listed by whole segments", track.name)))?;
    let times = track_parts.times.of(g);
    let time = times
        .get(p as usize)
        .ok_or_else(|| not_found(format!("the segment has {} parts", times.len())))?;
    let anchor = ctx.anchor(&live);
    let segment_start = anchor + live.stream.schedule_of(track).start_of(g);
    let now = ctx.time.clock_unix;
    let end = segment_start + time.end();
    if now < end {
        if now < segment_start + time.start {
            return Err(not_found("not available yet".into()));
        }
        hold(app, &live, end, target * 2).await?;
    }
    let mut file_parts = Vec::with_capacity(path.len() + 1);
    file_parts.push(stream.to_string());
    file_parts.extend(path.iter().cloned());
    let mut source = files::bytes(&app.files, &file_parts).await?;
    let content_type = source.content_type;
    source.data = match track.segments[i].byte_range {
        Some(r) => {
            let range = r.offset as usize..(r.offset + r.length) as usize;
            if range.end > source.data.len() {
                return Err(HttpError::Failed(format!(
                    "/{stream}/{file}: byte range outside the file"
                )));
            }
            source.data.slice(range)
        }
        None => source.data,
    };
    let data = &source.data;
    let cut = |bytes: &[u8]| {
        track_parts
            .cut(i, bytes, p as usize)
            .map_err(|e| HttpError::Failed(format!("/{stream}/{file}: {e}")))
    };
    // A byte range of a file is served as it is in continuous mode (see
    // `continuous`), so are its parts: segment and parts on one clock.
    let body = if ctx.continuous() && track.segments[i].byte_range.is_none() {
        let dir = app.library.config().root.join(stream);
        let fmp4 = crate::probe::fmp4::looks_like_mp4(data);
        let plan = live
            .restamp_plan(index, dir, fmp4)
            .await
            .map_err(|e| HttpError::BadRequest(format!("ts=continuous: {e}")))?;
        let start = live.stream.schedule_of(track).start_of(g);
        match plan.as_ref() {
            // The whole segment as served, then the part: every packet
            // keeps its offset, and a run's first segment its audio splice.
            RestampPlan::Ts(_) => cut(&rewritten_segment(&live, index, g, &source, &plan, &file)?)?,
            RestampPlan::Fmp4(plan) => {
                let shifts = plan.for_segment(i, start.0).ok_or_else(|| {
                    HttpError::BadRequest(format!("ts=continuous: {file}: offset out of range"))
                })?;
                crate::restamp::fmp4::apply(&cut(data)?, &shifts)
                    .map_err(|e| HttpError::BadRequest(format!("ts=continuous: {file}: {e}")))?
            }
        }
    } else {
        cut(data)?
    };
    Ok(reply::segment(body.into(), content_type))
}

/// The fault a segment request gets: its track from the file, its media
/// sequence number from `g=` when the URL carries one.
pub(super) async fn segment_fault(
    app: &Arc<App>,
    stream: &str,
    path: &[String],
    segment_number: Option<u64>,
    ctx: &Ctx,
) -> Option<Fault> {
    ctx.options.faults.as_ref()?;
    app.library.get(stream)?;
    let live = ready(app, stream).await.ok()?;
    let track_index = segment_track(&live, &path.join("/"), segment_number)?;
    let anchor = ctx.anchor(&live);
    let rule = live.rule(ctx.options.window_segments, ctx.options.dvr_secs);
    let window = live.track_window(track_index, anchor, ctx.time.now_unix, rule);
    ctx.fault(&FaultRequest {
        kind: Resource::Segment,
        variant: &live.stream.tracks[track_index].name,
        msn: segment_number,
        edge_msn: Some(window.last),
        timeline_ticks: ctx.time.now_unix.saturating_sub(anchor).0,
    })
}
