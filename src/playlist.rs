//! Writing playlists: the live media playlist of one window, and the master
//! playlist rewritten from the source's own lines. Pure; written by hand so
//! any tag the specs need can be emitted (m3u8-rs only parses input).

use std::fmt::Write;

use chrono::DateTime;

use crate::model::{ByteRange, Key, Map, Resource, Stream, Track, TrackTiming};
use crate::tags;
use crate::ticks::Ticks;
use crate::timeline::Window;
use crate::urls::{self, MediaForm};

/// Decimals written in `#EXTINF`.
pub const EXTINF_DECIMALS: usize = 5;

/// One live media playlist request: which track, which window, where it is linked.
#[derive(Debug, Clone, Copy)]
pub struct MediaRequest<'a> {
    /// The stream.
    pub stream: &'a Stream,
    /// One of its tracks.
    pub track: &'a Track,
    /// The segments to list.
    pub window: Window,
    /// Unix time of the timeline's zero, for program date-times.
    pub anchor_unix: Ticks,
    /// How the playlist is linked, so its URIs resolve.
    pub form: MediaForm,
    /// Segment URIs carry their global number (`g=<n>/…`): the bytes or a
    /// fault depend on it.
    pub numbered: bool,
}

fn resource_uri(stream: &str, r: &Resource, form: MediaForm) -> String {
    match r {
        Resource::File(path) => urls::file(stream, path, form, None),
        Resource::External(uri) => uri.clone(),
    }
}

fn write_key(out: &mut String, stream: &str, key: &Key, form: MediaForm) {
    let _ = write!(out, "#EXT-X-KEY:METHOD={}", key.method);
    if let Some(uri) = &key.uri {
        let _ = write!(out, ",URI=\"{}\"", resource_uri(stream, uri, form));
    }
    if let Some(iv) = &key.iv {
        let _ = write!(out, ",IV={iv}");
    }
    if let Some(f) = &key.keyformat {
        let _ = write!(out, ",KEYFORMAT=\"{f}\"");
    }
    if let Some(v) = &key.keyformatversions {
        let _ = write!(out, ",KEYFORMATVERSIONS=\"{v}\"");
    }
    out.push('\n');
}

fn write_map(out: &mut String, stream: &str, map: &Map, form: MediaForm) {
    let _ = write!(
        out,
        "#EXT-X-MAP:URI=\"{}\"",
        resource_uri(stream, &map.uri, form)
    );
    if let Some(r) = map.byte_range {
        let _ = write!(out, ",BYTERANGE=\"{}@{}\"", r.length, r.offset);
    }
    out.push('\n');
}

fn write_byte_range(out: &mut String, r: ByteRange) {
    let _ = writeln!(out, "#EXT-X-BYTERANGE:{}@{}", r.length, r.offset);
}

/// `2026-01-01T00:00:00.000Z` from Unix ticks (milliseconds, floored).
fn date_time(unix: Ticks) -> Option<String> {
    let ms = i64::try_from(unix.as_ms()).ok()?;
    let t = DateTime::from_timestamp_millis(ms)?;
    Some(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// The live media playlist of one track for one window.
pub fn render_media(req: &MediaRequest<'_>) -> String {
    let MediaRequest {
        stream,
        track,
        window,
        anchor_unix,
        form,
        numbered,
    } = *req;
    let schedule = stream.schedule_of(track);
    let n = track.segments.len() as u64;
    let pdt_every_segment = stream.pdt_every_segment;
    let own_schedule = matches!(track.timing, TrackTiming::Own(_));
    let count = (window.last - window.first + 1) as usize;
    let mut out = String::with_capacity(160 + 96 * count);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{}\n\
         #EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
        stream.version, stream.target_duration_s, window.first, window.discontinuity_sequence
    );
    for tag in &track.header_tags {
        let _ = writeln!(out, "{tag}");
    }
    let mut previous = None;
    for g in window.first..=window.last {
        let seg = &track.segments[(g % n) as usize];
        let discontinuity = schedule.has_discontinuity(g);
        if discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let prev: Option<&crate::model::Segment> = previous;
        if let Some(key) = &seg.key
            && prev.is_none_or(|p| p.key.as_ref() != Some(key))
        {
            write_key(&mut out, &stream.name, key, form);
        } else if seg.key.is_none() && prev.is_some_and(|p| p.key.is_some()) {
            out.push_str("#EXT-X-KEY:METHOD=NONE\n");
        }
        if let Some(map) = &seg.map
            && (discontinuity || prev.is_none_or(|p| p.map.as_ref() != Some(map)))
        {
            write_map(&mut out, &stream.name, map, form);
        }
        let start_unix = anchor_unix + schedule.start_of(g);
        if (g == window.first || discontinuity || pdt_every_segment)
            && let Some(pdt) = date_time(start_unix)
        {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{pdt}");
        }
        let loop_index = g / n;
        for tag in &seg.tags {
            // With source date-times, every date of a loop moves by one amount.
            let (live_ms, source_ms) = match stream.source_pdt_base_ms {
                Some(base) => {
                    let loop_start = anchor_unix + schedule.loop_duration() * loop_index;
                    (loop_start.as_ms() as i64 - base, Some(0))
                }
                None => (start_unix.as_ms() as i64, None),
            };
            let tag = tags::map_relative_uris(tag, |path| {
                Some(urls::file(&stream.name, path, form, None))
            });
            let _ = writeln!(
                out,
                "{}",
                tags::for_loop(&tag, loop_index, live_ms, source_ms)
            );
        }
        if let Some(r) = seg.byte_range {
            write_byte_range(&mut out, r);
        }
        // A track on its own schedule writes the fitted durations, so its
        // program date-times and EXTINFs add up.
        let duration = if own_schedule {
            schedule.duration_of(g)
        } else {
            seg.duration
        };
        let _ = writeln!(
            out,
            "#EXTINF:{:.*},\n{}",
            EXTINF_DECIMALS,
            duration.as_secs_f64(),
            urls::file(&stream.name, &seg.path, form, numbered.then_some(g))
        );
        previous = Some(seg);
    }
    out
}

/// The value of `URI="…"` in a tag line, with its byte span.
fn uri_attribute(line: &str) -> Option<(usize, usize)> {
    let at = line.find("URI=\"")? + 5;
    let len = line[at..].find('"')?;
    Some((at, at + len))
}

/// Master tags whose `URI` names a file of the stream (not a playlist).
const MASTER_FILE_TAGS: &[&str] = &[
    "#EXT-X-SESSION-DATA:",
    "#EXT-X-SESSION-KEY:",
    "#EXT-X-CONTENT-STEERING:",
];

/// The master playlist from the source's own text: every line kept as the
/// source wrote it, except that variant and rendition URIs become what
/// `link` returns for them, other relative URIs (session data and keys,
/// steering) what `file` returns, and I-frame playlists (not served live)
/// are dropped.
pub fn render_master(
    source: &str,
    link: impl Fn(&str) -> Option<String>,
    file: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(source.len() + 256);
    let mut uri_follows = false;
    for line in source.lines() {
        let line = line.trim_end();
        if line.starts_with("#EXT-X-I-FRAME-STREAM-INF") {
            continue;
        }
        if line.starts_with("#EXT-X-STREAM-INF") {
            uri_follows = true;
        } else if line.starts_with("#EXT-X-MEDIA:")
            && let Some((a, b)) = uri_attribute(line)
            && let Some(live) = link(&line[a..b])
        {
            let _ = writeln!(out, "{}{live}{}", &line[..a], &line[b..]);
            continue;
        } else if MASTER_FILE_TAGS.iter().any(|t| line.starts_with(t))
            && let Some((a, b)) = uri_attribute(line)
            && !line[a..b].contains("://")
            && !line[a..b].starts_with("data:")
            && let Some(live) = file(&line[a..b])
        {
            let _ = writeln!(out, "{}{live}{}", &line[..a], &line[b..]);
            continue;
        } else if uri_follows && !line.is_empty() && !line.starts_with('#') {
            uri_follows = false;
            if let Some(live) = link(line) {
                let _ = writeln!(out, "{live}");
                continue;
            }
        }
        let _ = writeln!(out, "{line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_keeps_the_source_text_and_rewrites_uris() {
        let source = "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"audio/en.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=800000,FRAME-RATE=30.000,AUDIO=\"aud\"\n\
            low/index.m3u8\n\
            #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"low/iframes.m3u8\"\n";
        let out = render_master(
            source,
            |uri| {
                Some(match uri {
                    "low/index.m3u8" => "s_low.m3u8".into(),
                    "audio/en.m3u8" => "s_en.m3u8".into(),
                    _ => return None,
                })
            },
            |_| None,
        );
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"en\",URI=\"s_en.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=800000,FRAME-RATE=30.000,AUDIO=\"aud\"\n\
            s_low.m3u8\n"
        );
    }

    #[test]
    fn media_playlist_tags() {
        let s = Stream::from_durations("s", &[("v", vec![180_000; 4])], &[false; 4]);
        let text = render_media(&MediaRequest {
            stream: &s,
            track: &s.tracks[0],
            window: Window {
                first: 3,
                last: 5,
                discontinuity_sequence: 0,
            },
            anchor_unix: Ticks::from_ms(1_700_000_000_000),
            form: MediaForm::Root,
            numbered: false,
        });
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:3\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:0\n\
             #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z\n#EXTINF:2.00000,\ns/v/seg_00003.ts\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:28.000Z\n\
             #EXTINF:2.00000,\ns/v/seg_00000.ts\n#EXTINF:2.00000,\ns/v/seg_00001.ts\n"
        );
    }
}
