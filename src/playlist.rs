//! Rendering a live media playlist for one window. Pure.

use std::sync::Once;

use chrono::DateTime;
use m3u8_rs::{MediaPlaylist, MediaSegment};

use crate::library::{Stream, Track};
use crate::ticks::{HZ, to_ms};
use crate::timeline::Window;

/// Decimals written in `#EXTINF`.
pub const EXTINF_DECIMALS: usize = 5;

fn set_precision() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        m3u8_rs::WRITE_OPT_FLOAT_PRECISION
            .store(EXTINF_DECIMALS, std::sync::atomic::Ordering::Relaxed)
    });
}

/// The media playlist of `track` for `window`, with program date-times
/// counted from `anchor_unix_ticks` (the stream's anchor, 90 kHz ticks since
/// the Unix epoch).
pub fn render_media(
    stream: &Stream,
    track: &Track,
    window: &Window,
    anchor_unix_ticks: u64,
) -> Vec<u8> {
    set_precision();
    let schedule = &stream.schedule;
    let n = track.segments.len() as u64;
    let mut segments = Vec::with_capacity((window.last - window.first + 1) as usize);
    let mut previous: Option<&crate::library::TrackSegment> = None;
    for g in window.first..=window.last {
        let seg = &track.segments[(g % n) as usize];
        let discontinuity = schedule.has_discontinuity(g);
        let program_date_time = (g == window.first || discontinuity)
            .then(|| {
                let ms = to_ms(anchor_unix_ticks + schedule.start_of(g));
                DateTime::from_timestamp_millis(ms as i64).map(|d| d.fixed_offset())
            })
            .flatten();
        let key = match previous {
            Some(p) if p.key == seg.key => None,
            _ => seg.key.clone(),
        };
        let map = match previous {
            Some(p) if p.map == seg.map => None,
            _ => seg.map.clone(),
        };
        segments.push(MediaSegment {
            uri: seg.uri.clone(),
            duration: (seg.ticks as f64 / HZ as f64) as f32,
            discontinuity,
            key,
            map,
            program_date_time,
            ..MediaSegment::default()
        });
        previous = Some(seg);
    }
    let playlist = MediaPlaylist {
        version: Some(stream.version),
        target_duration: stream.target_duration,
        segments,
        ..MediaPlaylist::default()
    };
    let mut body = Vec::with_capacity(64 * (window.last - window.first + 2) as usize);
    // Writing to a Vec cannot fail.
    let _ = playlist.write_to(&mut body);
    insert_sequences(body, window)
}

/// m3u8-rs omits MEDIA-SEQUENCE and DISCONTINUITY-SEQUENCE when zero; a live
/// playlist always carries both, right after TARGETDURATION.
fn insert_sequences(body: Vec<u8>, window: &Window) -> Vec<u8> {
    const TD: &[u8] = b"#EXT-X-TARGETDURATION:";
    let Some(at) = body.windows(TD.len()).position(|w| w == TD) else {
        return body;
    };
    let eol = at
        + body[at..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(body.len() - at - 1)
        + 1;
    let mut out = Vec::with_capacity(body.len() + 80);
    out.extend_from_slice(&body[..eol]);
    out.extend_from_slice(
        format!(
            "#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            window.first, window.discontinuity_sequence
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body[eol..]);
    out
}
