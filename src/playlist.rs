//! Writing playlists: the live media playlist of one window, and the master
//! playlist rewritten from the source's own lines. Pure; written by hand so
//! any tag the specs need can be emitted (m3u8-rs only parses input).

use std::fmt::Write;

use chrono::DateTime;

use crate::model::{ByteRange, Key, Map, Resource, Stream, Track, TrackTiming};
use crate::tags;
use crate::ticks::Ticks;
use crate::timeline::Window;
use crate::timeline::parts::{Edge, LoopParts};
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
    /// Low-latency parts, when served.
    pub ll: Option<LowLatencyView<'a>>,
}

/// What a low-latency media playlist adds: the parts near the live edge,
/// the server's blocking and skipping abilities, a preload hint and the
/// other renditions' edges.
#[derive(Debug, Clone, Copy)]
pub struct LowLatencyView<'a> {
    /// `PART-TARGET`, the same for every track of the stream.
    pub part_target: Ticks,
    /// The track's parts and its live edge; `None` for a track listed by
    /// whole segments (subtitles, encrypted media).
    pub parts: Option<(&'a LoopParts, Edge)>,
    /// Every other rendition of the stream: its playlist's URI relative to
    /// this one and its newest part.
    pub reports: &'a [RenditionReport],
    /// Segments at the window's start replaced by `EXT-X-SKIP` (a delta update).
    pub skipped: u64,
    /// Whether the skipped segments' `EXT-X-DATERANGE` tags go too
    /// (`_HLS_skip=v2`); with `YES` they are kept after the skip tag.
    pub skip_dateranges: bool,
    /// Whether the stream carries date ranges (`CAN-SKIP-DATERANGES=YES`).
    pub has_dateranges: bool,
    /// With `skip_dateranges`: the first segment whose date ranges count as
    /// recently removed when it has left the window (a client may hold a
    /// playlist up to half the skip boundary old).
    pub removed_from: u64,
}

/// `EXT-X-RENDITION-REPORT` of another rendition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenditionReport {
    /// Its media playlist, relative to the playlist carrying the report.
    pub uri: String,
    /// Its newest segment: with parts, the parent of its newest part.
    pub last_msn: u64,
    /// The index of its newest part in that segment, when it has parts.
    pub last_part: Option<u64>,
}

/// `CAN-SKIP-UNTIL` as a multiple of the target duration (the minimum allowed).
pub const SKIP_UNTIL_TARGET_DURATIONS: u64 = 6;
/// `PART-HOLD-BACK` as a multiple of the part target (what the spec recommends).
pub const PART_HOLD_BACK_PART_TARGETS: u64 = 3;
/// Parts are listed for segments ending within this many target durations
/// of the playlist's end (§6.2.2).
pub const PARTS_KEPT_TARGET_DURATIONS: u64 = 3;

/// Seconds with up to five decimals and no trailing zeros: `0.5`, `1.001`.
fn secs(t: Ticks) -> String {
    let s = format!("{:.5}", t.as_secs_f64());
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_string()
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
        ..
    } = *req;
    let schedule = stream.schedule_of(track);
    let n = track.segments.len() as u64;
    let pdt_every_segment = stream.pdt_every_segment;
    let own_schedule = matches!(track.timing, TrackTiming::Own(_));
    let count = (window.last - window.first + 1) as usize;
    let mut out = String::with_capacity(160 + 96 * count);
    let td = Ticks::from_secs(stream.target_duration_s);
    let version = match req.ll {
        // EXT-X-SKIP needs 9, or 10 when it removes date ranges.
        Some(ll) if ll.has_dateranges => stream.version.max(10),
        Some(_) => stream.version.max(9),
        None => stream.version,
    };
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{}\n",
        stream.target_duration_s,
    );
    if let Some(ll) = req.ll {
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={}{},PART-HOLD-BACK={}",
            secs(td * SKIP_UNTIL_TARGET_DURATIONS),
            if ll.has_dateranges {
                ",CAN-SKIP-DATERANGES=YES"
            } else {
                ""
            },
            secs(ll.part_target * PART_HOLD_BACK_PART_TARGETS),
        );
        if ll.parts.is_some() {
            let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={}", secs(ll.part_target));
        }
    }
    let _ = write!(
        out,
        "#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
        window.first, window.discontinuity_sequence
    );
    for tag in &track.header_tags {
        let _ = writeln!(out, "{tag}");
    }
    let skipped = req
        .ll
        .map_or(0, |ll| ll.skipped.min(window.last - window.first));
    if skipped > 0 {
        let _ = write!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        if let Some(ll) = req.ll.filter(|ll| ll.skip_dateranges) {
            let removed: Vec<String> = (ll.removed_from..window.first)
                .flat_map(|g| {
                    let seg = &track.segments[(g % n) as usize];
                    seg.tags.iter().filter_map(move |tag| {
                        Some(format!("{}-{}", tags::daterange_id(tag)?, g / n))
                    })
                })
                .collect();
            let _ = write!(
                out,
                ",RECENTLY-REMOVED-DATERANGES=\"{}\"",
                removed.join("\t")
            );
        }
        out.push('\n');
    }
    // With parts, the playlist ends at the newest part; parts are listed
    // for the segments ending within three target durations of that.
    let parts = req.ll.and_then(|ll| ll.parts);
    let parts_from = parts.map(|(parts, edge)| {
        let end = anchor_unix
            + schedule.start_of(edge.partial)
            + edge
                .parts_done
                .checked_sub(1)
                .map_or(Ticks::ZERO, |p| parts.of(edge.partial)[p as usize].end());
        end.saturating_sub(td * PARTS_KEPT_TARGET_DURATIONS)
    });
    let mut previous = None;
    let last = parts.map_or(window.last, |(_, edge)| edge.partial.max(window.last));
    for g in window.first..=last {
        let seg = &track.segments[(g % n) as usize];
        let in_skip = g < window.first + skipped;
        let in_progress = g > window.last;
        if in_progress && parts.is_some_and(|(_, edge)| edge.parts_done == 0) {
            break; // No part of it yet: only the preload hint names it.
        }
        if in_skip {
            // Skipped, but with `_HLS_skip=YES` its date ranges stay.
            if req.ll.is_some_and(|ll| !ll.skip_dateranges) {
                write_source_tags(&mut out, req, seg, g, true);
            }
            continue;
        }
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
        if (g == window.first + skipped || discontinuity || pdt_every_segment)
            && let Some(pdt) = date_time(start_unix)
        {
            let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{pdt}");
        }
        write_source_tags(&mut out, req, seg, g, false);
        if let Some((parts, edge)) = parts {
            let start = anchor_unix + schedule.start_of(g);
            let listed = if in_progress {
                edge.parts_done as usize
            } else {
                parts.of(g).len()
            };
            // hls.js (1.7) reloads the parts of segment 0 forever: a
            // timeline's first segment is listed without parts.
            let recent = parts_from.is_some_and(|from| start + schedule.duration_of(g) > from);
            if g > 0 && (in_progress || recent) {
                for (p, part) in parts.of(g)[..listed].iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "#EXT-X-PART:DURATION={},URI=\"{}\"{}",
                        secs(part.duration),
                        urls::part(&stream.name, &seg.path, form, g, p as u64),
                        if part.independent {
                            ",INDEPENDENT=YES"
                        } else {
                            ""
                        }
                    );
                }
            }
            if in_progress {
                break;
            }
        }
        if let Some(r) = seg.byte_range {
            write_byte_range(&mut out, r);
        }
        // A track on its own schedule writes the fitted durations, so its
        // program date-times and EXTINFs add up; a track with parts, the
        // schedule's duration its parts add up to.
        let duration = if own_schedule || parts.is_some() {
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
    if let Some(ll) = req.ll {
        write_tail(&mut out, req, ll);
    }
    out
}

/// The end of a low-latency playlist: the preload hint of the next part
/// and the other renditions' reports.
fn write_tail(out: &mut String, req: &MediaRequest<'_>, ll: LowLatencyView<'_>) {
    if let Some((_, edge)) = ll.parts {
        let hint = edge.hint();
        let n = req.track.segments.len() as u64;
        let seg = &req.track.segments[(hint.msn % n) as usize];
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"",
            urls::part(&req.stream.name, &seg.path, req.form, hint.msn, hint.part)
        );
    }
    for report in ll.reports {
        let _ = write!(
            out,
            "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}",
            report.uri, report.last_msn
        );
        if let Some(part) = report.last_part {
            let _ = write!(out, ",LAST-PART={part}");
        }
        out.push('\n');
    }
}

/// The source's own tags of segment `g` (date ranges only when
/// `dateranges_only`), moved to its loop.
fn write_source_tags(
    out: &mut String,
    req: &MediaRequest<'_>,
    seg: &crate::model::Segment,
    g: u64,
    dateranges_only: bool,
) {
    let MediaRequest {
        stream,
        track,
        anchor_unix,
        form,
        ..
    } = *req;
    let schedule = stream.schedule_of(track);
    let loop_index = g / track.segments.len() as u64;
    for tag in &seg.tags {
        if dateranges_only && !tag.starts_with("#EXT-X-DATERANGE:") {
            continue;
        }
        // With source date-times, every date of a loop moves by one amount.
        let (live_ms, source_ms) = match stream.source_pdt_base_ms {
            Some(base) => {
                let loop_start = anchor_unix + schedule.loop_duration() * loop_index;
                (loop_start.as_ms() as i64 - base, Some(0))
            }
            None => ((anchor_unix + schedule.start_of(g)).as_ms() as i64, None),
        };
        let tag =
            tags::map_relative_uris(tag, |path| Some(urls::file(&stream.name, path, form, None)));
        let _ = writeln!(
            out,
            "{}",
            tags::for_loop(&tag, loop_index, live_ms, source_ms)
        );
    }
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
            ll: None,
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

    fn ll_stream() -> (Stream, LoopParts) {
        let s = Stream::from_durations("s", &[("v", vec![180_000; 4])], &[false; 4]);
        let seg: Vec<crate::timeline::parts::PartTime> = (0..4)
            .map(|p| crate::timeline::parts::PartTime {
                start: Ticks(p * 45_000),
                duration: Ticks(45_000),
                independent: p == 0,
            })
            .collect();
        (s, LoopParts::new(Ticks(45_000), vec![seg; 4]))
    }

    #[test]
    fn low_latency_playlist_lists_recent_parts_a_hint_and_reports() {
        let (s, parts) = ll_stream();
        let reports = [RenditionReport {
            uri: "s_a.m3u8".into(),
            last_msn: 6,
            last_part: Some(1),
        }];
        let text = render_media(&MediaRequest {
            stream: &s,
            track: &s.tracks[0],
            window: Window {
                first: 2,
                last: 5,
                discontinuity_sequence: 0,
            },
            anchor_unix: Ticks::from_ms(1_700_000_000_000),
            form: MediaForm::Root,
            numbered: false,
            ll: Some(LowLatencyView {
                part_target: Ticks(45_000),
                parts: Some((
                    &parts,
                    Edge {
                        partial: 6,
                        parts_done: 2,
                    },
                )),
                reports: &reports,
                skipped: 0,
                skip_dateranges: false,
                has_dateranges: false,
                removed_from: 0,
            }),
        });
        let head = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
            #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.5\n\
            #EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-MEDIA-SEQUENCE:2\n";
        assert!(text.starts_with(head), "{text}");
        // The playlist ends 13 s in: parts of segments ending after 7 s.
        let parts_of = |g: u64| text.matches(&format!("g={g}/part=")).count();
        assert_eq!(
            (
                parts_of(2),
                parts_of(3),
                parts_of(4),
                parts_of(5),
                parts_of(6)
            ),
            (0, 4, 4, 4, 2 + 1)
        );
        assert!(text.contains(
            "#EXT-X-PART:DURATION=0.5,URI=\"g=3/part=0/s/v/seg_00003.ts\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.5,URI=\"g=3/part=1/s/v/seg_00003.ts\"\n"
        ));
        assert!(text.ends_with(
            "#EXTINF:2.00000,\ns/v/seg_00001.ts\n\
             #EXT-X-PART:DURATION=0.5,URI=\"g=6/part=0/s/v/seg_00002.ts\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.5,URI=\"g=6/part=1/s/v/seg_00002.ts\"\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"g=6/part=2/s/v/seg_00002.ts\"\n\
             #EXT-X-RENDITION-REPORT:URI=\"s_a.m3u8\",LAST-MSN=6,LAST-PART=1\n"
        ));
    }

    #[test]
    fn delta_update_skips_old_segments_and_keeps_the_first_date() {
        let (s, parts) = ll_stream();
        let view = LowLatencyView {
            part_target: Ticks(45_000),
            parts: Some((
                &parts,
                Edge {
                    partial: 9,
                    parts_done: 0,
                },
            )),
            reports: &[],
            skipped: 3,
            skip_dateranges: false,
            has_dateranges: false,
            removed_from: 0,
        };
        let text = render_media(&MediaRequest {
            stream: &s,
            track: &s.tracks[0],
            window: Window {
                first: 2,
                last: 8,
                discontinuity_sequence: 0,
            },
            anchor_unix: Ticks::from_ms(1_700_000_000_000),
            form: MediaForm::Root,
            numbered: false,
            ll: Some(view),
        });
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:2\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"), "{text}");
        // Segment 5 is the first written: it carries the date; 2–4 are gone.
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:30.000Z\n"));
        assert_eq!(text.matches("#EXTINF").count(), 4);
        // No part of segment 9 yet: only the hint names it.
        assert!(text.ends_with("s/v/seg_00000.ts\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"g=9/part=0/s/v/seg_00001.ts\"\n"), "{text}");
        // A track without parts: no part information, the same server control.
        let text = render_media(&MediaRequest {
            stream: &s,
            track: &s.tracks[0],
            window: Window {
                first: 2,
                last: 8,
                discontinuity_sequence: 0,
            },
            anchor_unix: Ticks::from_ms(1_700_000_000_000),
            form: MediaForm::Root,
            numbered: false,
            ll: Some(LowLatencyView {
                parts: None,
                skipped: 0,
                ..view
            }),
        });
        assert!(text.contains(
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12,PART-HOLD-BACK=1.5\n"
        ));
        assert!(
            !text.contains("PART-INF")
                && !text.contains("#EXT-X-PART:")
                && !text.contains("PRELOAD")
        );
    }

    #[test]
    fn the_first_segment_of_a_timeline_is_listed_without_parts() {
        let (s, parts) = ll_stream();
        let text = render_media(&MediaRequest {
            stream: &s,
            track: &s.tracks[0],
            window: Window {
                first: 0,
                last: 2,
                discontinuity_sequence: 0,
            },
            anchor_unix: Ticks::from_ms(1_700_000_000_000),
            form: MediaForm::Root,
            numbered: false,
            ll: Some(LowLatencyView {
                part_target: Ticks(45_000),
                parts: Some((
                    &parts,
                    Edge {
                        partial: 3,
                        parts_done: 1,
                    },
                )),
                reports: &[],
                skipped: 0,
                skip_dateranges: false,
                has_dateranges: false,
                removed_from: 0,
            }),
        });
        assert!(!text.contains("g=0/part="), "{text}");
        assert_eq!(text.matches("g=1/part=").count(), 4, "{text}");
    }
}
