//! Source tags that pseudolive carries into the live playlists: which lines
//! of a VOD media playlist belong to which segment, and how a looped
//! `EXT-X-DATERANGE` is made unique per loop. Pure.
//!
//! Kept: every segment-level tag pseudolive does not write itself
//! (`EXT-X-CUE-OUT`/`-CONT`/`-IN`, `EXT-X-DATERANGE`, `EXT-X-GAP`,
//! `EXT-X-BITRATE`, `EXT-X-ASSET`, vendor tags…), before the same segment on
//! every loop; `EXT-X-START` and `EXT-X-INDEPENDENT-SEGMENTS` at the top.
//! Rewritten by pseudolive: sequence numbers, target duration, version,
//! `EXTINF`, `EXT-X-BYTERANGE`, `EXT-X-DISCONTINUITY`, `EXT-X-KEY`, `EXT-X-MAP`,
//! `EXT-X-PROGRAM-DATE-TIME`. Dropped (see [`SourceTags::dropped`]): tags after
//! the last segment, VOD-only tags (`EXT-X-PLAYLIST-TYPE`, `EXT-X-ENDLIST`,
//! `EXT-X-I-FRAMES-ONLY`, `EXT-X-ALLOW-CACHE`) and low-latency tags of the source.

use chrono::DateTime;

/// Tags pseudolive writes itself, from its own state.
const REWRITTEN: &[&str] = &[
    "#EXTM3U",
    "#EXT-X-VERSION",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXTINF",
    "#EXT-X-BYTERANGE",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-KEY",
    "#EXT-X-MAP",
    "#EXT-X-PROGRAM-DATE-TIME",
];

/// Tags with no meaning in a live playlist.
const DROPPED: &[&str] = &[
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-ENDLIST",
    "#EXT-X-I-FRAMES-ONLY",
    "#EXT-X-ALLOW-CACHE",
    "#EXT-X-PART",
    "#EXT-X-PART-INF",
    "#EXT-X-SERVER-CONTROL",
    "#EXT-X-PRELOAD-HINT",
    "#EXT-X-RENDITION-REPORT",
    "#EXT-X-SKIP",
];

/// Playlist-level tags kept at the top of every live playlist.
const HEADER: &[&str] = &["#EXT-X-START", "#EXT-X-INDEPENDENT-SEGMENTS"];

/// An ISO 8601 date-time as playlists write them: RFC 3339, or with a
/// `+0000`-style offset (ffmpeg's `program_date_time`).
pub fn parse_date_time(s: &str) -> Option<DateTime<chrono::FixedOffset>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
}

/// The name of a tag line: `#EXT-X-CUE-OUT:30` → `#EXT-X-CUE-OUT`.
fn tag_name(line: &str) -> &str {
    line.split(':').next().unwrap_or(line)
}

/// What a media playlist's text says beyond what m3u8-rs gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceTags {
    /// Playlist-level tags to keep.
    pub header: Vec<String>,
    /// Per segment (in order): its own tag lines, and its source program date-time.
    pub segments: Vec<(Vec<String>, Option<i64>)>,
    /// Names of tags dropped, each once.
    pub dropped: Vec<String>,
}

/// Splits normalised playlist text into header tags and per-segment tags.
pub fn scan(text: &str) -> SourceTags {
    let mut out = SourceTags::default();
    let mut pending: Vec<String> = Vec::new();
    let mut pdt_ms: Option<i64> = None;
    let mut this_pdt: Option<i64> = None;
    let mut extinf_ms = 0i64;
    let drop = |name: &str, out: &mut SourceTags| {
        if !out.dropped.iter().any(|d| d == name) {
            out.dropped.push(name.to_string());
        }
    };
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            // A URI: the tags so far belong to this segment.
            let pdt = this_pdt.take().or(pdt_ms);
            out.segments.push((std::mem::take(&mut pending), pdt));
            pdt_ms = pdt.map(|p| p.saturating_add(extinf_ms));
            extinf_ms = 0;
            continue;
        }
        if !line.starts_with("#EXT") {
            continue; // a comment
        }
        let name = tag_name(line);
        let value = line.get(name.len() + 1..).unwrap_or("");
        if name == "#EXTINF" {
            let secs = value
                .split(',')
                .next()
                .and_then(|v| v.trim().parse::<f64>().ok());
            // A day at most: anything longer is garbage, not a duration.
            extinf_ms = secs
                .filter(|s| s.is_finite() && (0.0..=86_400.0).contains(s))
                .map_or(0, |s| (s * 1000.0).round() as i64);
        } else if name == "#EXT-X-PROGRAM-DATE-TIME" {
            this_pdt = parse_date_time(value).map(|t| t.timestamp_millis());
        }
        if REWRITTEN.contains(&name) {
            continue;
        }
        if DROPPED.contains(&name) {
            drop(name, &mut out);
        } else if HEADER.contains(&name) {
            out.header.push(line.to_string());
        } else {
            pending.push(line.to_string());
        }
    }
    for tag in &pending {
        drop(tag_name(tag), &mut out);
    }
    out
}

/// The value of attribute `key` in an attribute list (`KEY=value` or `KEY="value"`).
fn attribute<'a>(list: &'a str, key: &str) -> Option<(usize, usize, &'a str)> {
    // Skip the tag name of a whole tag line.
    let mut at = if list.starts_with('#') {
        list.find(':')? + 1
    } else {
        0
    };
    while at < list.len() {
        let rest = &list[at..];
        let eq = rest.find('=')?;
        let name = rest[..eq].trim_start_matches(',').trim();
        let value_start = at + eq + 1;
        let value_end = if list[value_start..].starts_with('"') {
            value_start + 1 + list[value_start + 1..].find('"')? + 1
        } else {
            value_start
                + list[value_start..]
                    .find(',')
                    .unwrap_or(list.len() - value_start)
        };
        if name == key {
            return Some((value_start, value_end, &list[value_start..value_end]));
        }
        at = value_end;
    }
    None
}

/// Replaces the value of `key` in `line` (keeping quotes if it had them).
fn replace_attribute(line: &str, key: &str, value: impl FnOnce(&str) -> Option<String>) -> String {
    match attribute(line, key) {
        Some((a, b, old)) => match value(old.trim_matches('"')) {
            Some(new) if old.starts_with('"') => format!("{}\"{new}\"{}", &line[..a], &line[b..]),
            Some(new) => format!("{}{new}{}", &line[..a], &line[b..]),
            None => line.to_string(),
        },
        None => line.to_string(),
    }
}

/// Attributes of carried tags that hold a URI (HLS interstitials).
const URI_ATTRIBUTES: &[&str] = &["X-ASSET-URI", "X-ASSET-LIST"];

/// `tag` with every relative URI attribute value replaced by `f` of it
/// (absolute URLs and `data:` left alone; `f` returning `None` keeps it).
pub fn map_relative_uris(tag: &str, f: impl Fn(&str) -> Option<String>) -> String {
    if tag_name(tag) != "#EXT-X-DATERANGE" {
        return tag.to_string();
    }
    let mut line = tag.to_string();
    for key in URI_ATTRIBUTES {
        line = replace_attribute(&line, key, |v| {
            (!v.contains("://") && !v.starts_with("data:"))
                .then(|| f(v))
                .flatten()
        });
    }
    line
}

/// The `ID` of an `EXT-X-DATERANGE` line (unquoted), if it is one.
pub fn daterange_id(line: &str) -> Option<&str> {
    if tag_name(line) != "#EXT-X-DATERANGE" {
        return None;
    }
    let (_, _, value) = attribute(line, "ID")?;
    Some(value.trim_matches('"'))
}

/// A source `EXT-X-DATERANGE` as it must appear on loop `loop_index`, on a
/// segment whose live program date-time is `live_pdt_ms` and whose source
/// one was `source_pdt_ms`: `ID` made unique per loop (`<id>-<loop>`), the
/// dates moved by the same amount as the segment. Other tags are unchanged.
pub fn for_loop(
    tag: &str,
    loop_index: u64,
    live_pdt_ms: i64,
    source_pdt_ms: Option<i64>,
) -> String {
    if tag_name(tag) != "#EXT-X-DATERANGE" {
        return tag.to_string();
    }
    let shift = |date: &str| -> Option<String> {
        let t = parse_date_time(date)?.timestamp_millis();
        // Without a source date-time, the range starts where its segment does.
        let offset = source_pdt_ms.map_or(0, |s| t - s);
        let moved = DateTime::from_timestamp_millis(live_pdt_ms + offset)?;
        Some(moved.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    };
    let start = attribute(tag, "START-DATE").map(|(_, _, v)| v.trim_matches('"').to_string());
    let start_ms = start
        .as_deref()
        .and_then(parse_date_time)
        .map(|t| t.timestamp_millis());
    let line = replace_attribute(tag, "ID", |id| Some(format!("{id}-{loop_index}")));
    let line = replace_attribute(&line, "START-DATE", shift);
    // END-DATE keeps its distance from START-DATE.
    replace_attribute(&line, "END-DATE", |end| {
        let end = parse_date_time(end)?.timestamp_millis();
        let start_ms = start_ms?;
        let length = end - start_ms;
        let new_start = source_pdt_ms.map_or(live_pdt_ms, |s| live_pdt_ms + (start_ms - s));
        let moved = DateTime::from_timestamp_millis(new_start + length)?;
        Some(moved.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-PLAYLIST-TYPE:VOD\n\
        #EXT-X-PROGRAM-DATE-TIME:2020-01-01T00:00:00.000Z\n#EXTINF:2.0,\na.ts\n\
        # a comment\n#EXT-X-CUE-OUT:4\n\
        #EXT-X-DATERANGE:ID=\"ad\",START-DATE=\"2020-01-01T00:00:02.500Z\",END-DATE=\"2020-01-01T00:00:06.500Z\",SCTE35-OUT=0xFC00\n\
        #EXTINF:2.0,\nb.ts\n#EXT-X-CUE-IN\n#EXT-X-GAP\n#EXTINF:2.0,\nc.ts\n#EXT-X-CUE-OUT:1\n#EXT-X-ENDLIST\n";

    #[test]
    fn tags_belong_to_the_segment_they_precede() {
        let t = scan(SOURCE);
        assert_eq!(t.header, vec!["#EXT-X-INDEPENDENT-SEGMENTS"]);
        assert_eq!(t.segments.len(), 3);
        assert!(t.segments[0].0.is_empty());
        assert_eq!(t.segments[1].0[0], "#EXT-X-CUE-OUT:4");
        assert!(t.segments[1].0[1].starts_with("#EXT-X-DATERANGE:"));
        assert_eq!(t.segments[2].0, vec!["#EXT-X-CUE-IN", "#EXT-X-GAP"]);
        assert_eq!(t.segments[0].1, Some(1_577_836_800_000));
        assert_eq!(t.segments[2].1, Some(1_577_836_804_000));
        assert_eq!(
            t.dropped,
            vec!["#EXT-X-PLAYLIST-TYPE", "#EXT-X-ENDLIST", "#EXT-X-CUE-OUT"]
        );
    }

    #[test]
    fn dates_with_a_colonless_offset_are_read() {
        let a = parse_date_time("2026-11-24T09:17:49.583+0000").unwrap();
        let b = parse_date_time("2026-11-24T09:17:49.583Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_date_time("yesterday").is_none());
    }

    #[test]
    fn a_looped_daterange_gets_a_unique_id_and_moved_dates() {
        let t = scan(SOURCE);
        let tag = &t.segments[1].0[1];
        // Segment b starts at 00:00:02 in the source; live it starts at 2030-01-01T00:00:10Z.
        let live = 1_893_456_010_000;
        let out = for_loop(tag, 3, live, t.segments[1].1);
        assert_eq!(
            out,
            "#EXT-X-DATERANGE:ID=\"ad-3\",START-DATE=\"2030-01-01T00:00:10.500Z\",\
             END-DATE=\"2030-01-01T00:00:14.500Z\",SCTE35-OUT=0xFC00"
        );
        assert_eq!(for_loop("#EXT-X-CUE-IN", 3, live, None), "#EXT-X-CUE-IN");
        // No source date-time: the range starts with its segment.
        let bare = "#EXT-X-DATERANGE:ID=\"x\",START-DATE=\"2020-05-05T00:00:00Z\",DURATION=5";
        assert_eq!(
            for_loop(bare, 0, live, None),
            "#EXT-X-DATERANGE:ID=\"x-0\",START-DATE=\"2030-01-01T00:00:10.000Z\",DURATION=5"
        );
    }
}
