//! The data model: streams, tracks and segments as plain values, built by
//! the loader and read by the timeline, the playlist writer and the HTTP
//! layer. No IO, no provenance from loading (files on disk are named by
//! their path relative to the stream directory).

use crate::probe::Method;
use crate::ticks::{HZ, Ticks};
use crate::timeline::Schedule;

/// A file of a stream, or a resource outside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A file under the stream directory: `/`-separated path relative to it.
    File(String),
    /// Anything not served from disk (`https://…`, `data:`, `skd:`), written as it is.
    External(String),
}

/// A byte range of a file (`EXT-X-BYTERANGE`, `EXT-X-MAP:BYTERANGE`), offset resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// Length in bytes.
    pub length: u64,
    /// Offset of the first byte.
    pub offset: u64,
}

/// An `EXT-X-KEY` in force for a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// `METHOD` (`NONE`, `AES-128`, `SAMPLE-AES`, …).
    pub method: String,
    /// `URI` of the key.
    pub uri: Option<Resource>,
    /// `IV` as written (`0x…`). The loader makes an implied IV explicit,
    /// because re-numbering segments changes the media sequence number.
    pub iv: Option<String>,
    /// `KEYFORMAT`.
    pub keyformat: Option<String>,
    /// `KEYFORMATVERSIONS`.
    pub keyformatversions: Option<String>,
}

/// An `EXT-X-MAP` (initialisation section) in force for a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Map {
    /// The initialisation section's file.
    pub uri: Resource,
    /// Its byte range, when it is part of a file.
    pub byte_range: Option<ByteRange>,
}

/// One media segment of a track, as measured and as the source described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The media file, relative to the stream directory.
    pub path: String,
    /// The part of the file that is this segment, when it is a byte range.
    pub byte_range: Option<ByteRange>,
    /// Measured duration.
    pub duration: Ticks,
    /// How `duration` was measured.
    pub method: Method,
    /// The source's `#EXTINF`, for comparison (zero when it had none).
    pub source_duration: Ticks,
    /// `EXT-X-DISCONTINUITY` before this segment in the source.
    pub discontinuity: bool,
    /// `EXT-X-KEY` in force.
    pub key: Option<Key>,
    /// `EXT-X-MAP` in force.
    pub map: Option<Map>,
    /// Other segment-level tag lines of the source, verbatim and in order
    /// (`#EXT-X-CUE-OUT:30`, `#EXT-X-DATERANGE:…`, `#EXT-X-GAP`, …).
    pub tags: Vec<String>,
    /// The source's program date-time of this segment (its own tag, or the
    /// last one plus the `#EXTINF`s since), Unix milliseconds.
    pub source_pdt_ms: Option<i64>,
}

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// A variant of the master (`EXT-X-STREAM-INF`).
    Variant,
    /// An alternative rendition (`EXT-X-MEDIA`).
    Rendition,
}

/// A variant or rendition: one media playlist served live.
#[derive(Debug, Clone)]
pub struct Track {
    /// Name in URLs: `/<stream>_<name>.m3u8`.
    pub name: String,
    /// Variant or rendition.
    pub kind: TrackKind,
    /// Segments in source order: one loop.
    pub segments: Vec<Segment>,
    /// Playlist-level tags kept from the source (`EXT-X-START`, `EXT-X-INDEPENDENT-SEGMENTS`).
    pub header_tags: Vec<String>,
    /// How the track is timed against the stream's clock (set by [`Stream::new`]).
    pub timing: TrackTiming,
}

/// How a track is laid on the stream's clock.
#[derive(Debug, Clone, Default)]
pub enum TrackTiming {
    /// Segmented like the reference and as long: the stream's schedule, its
    /// own durations as `#EXTINF`.
    #[default]
    Shared,
    /// Segmented like the reference, but its segments last a little longer
    /// or shorter: the stream's schedule, its own `#EXTINF`, and a program
    /// date-time on every segment so the two never disagree.
    SharedWithOwnDurations,
    /// Segmented differently (more or fewer segments, other discontinuity
    /// points): its own schedule, fitted to the reference's loop length, so
    /// it lists the same span of time without drifting.
    Own(Schedule),
}

impl Track {
    /// Sum of this track's own durations.
    pub fn loop_duration(&self) -> Ticks {
        self.segments.iter().map(|s| s.duration).sum()
    }
}

/// A loaded stream: immutable, shared by all requests.
#[derive(Debug)]
pub struct Stream {
    /// Directory name under the library root.
    pub name: String,
    /// The master playlist, its URIs pointing at the live playlists.
    pub master: String,
    /// Variants first (in master order), then renditions with their own playlist.
    pub tracks: Vec<Track>,
    /// The timetable shared by all tracks (from the first variant).
    pub schedule: Schedule,
    /// `EXT-X-TARGETDURATION`, whole seconds, over all tracks and segments.
    pub target_duration_s: u64,
    /// `EXT-X-VERSION` the media playlists need.
    pub version: u8,
    /// The source's program date-time of the loop's start (Unix ms), when the
    /// source has program date-times: a looped `EXT-X-DATERANGE` moves by the
    /// loop's live start minus this, the same for every tag and track.
    pub source_pdt_base_ms: Option<i64>,
    /// A program date-time on every segment of every playlist: some variant's
    /// durations differ from the schedule's, and every variant must show the
    /// same date-time for the same media sequence number.
    pub pdt_every_segment: bool,
}

impl Stream {
    /// A stream from checked tracks (at least one, the first track's
    /// segments all > 0): target duration, version and the shared schedule
    /// computed here.
    pub fn new(name: &str, master: String, tracks: Vec<Track>) -> Stream {
        let segs = || tracks.iter().flat_map(|t| &t.segments);
        let target_duration_s = segs()
            .map(|s| s.duration.round_secs())
            .max()
            .unwrap_or(1)
            .max(1);
        let version = if segs().any(|s| s.map.is_some()) {
            6
        } else if segs().any(|s| {
            s.key
                .as_ref()
                .is_some_and(|k| k.keyformat.is_some() || k.keyformatversions.is_some())
        }) {
            5
        } else if segs().any(|s| s.byte_range.is_some()) {
            4
        } else {
            3
        };
        let durations = |t: &Track| t.segments.iter().map(|s| s.duration).collect::<Vec<_>>();
        let discontinuities = |t: &Track| {
            t.segments
                .iter()
                .map(|s| s.discontinuity)
                .collect::<Vec<_>>()
        };
        let schedule = Schedule::new(&durations(&tracks[0]), &discontinuities(&tracks[0]));
        let mut tracks = tracks;
        let reference_disc = discontinuities(&tracks[0]);
        let reference_durations = durations(&tracks[0]);
        for track in &mut tracks {
            let (own, disc) = (durations(track), discontinuities(track));
            track.timing = if own.len() != reference_durations.len() || disc != reference_disc {
                match Schedule::fitted(&own, &disc, schedule.loop_duration()) {
                    Some(fitted) => TrackTiming::Own(fitted),
                    None => TrackTiming::Own(Schedule::new(&own, &disc)),
                }
            } else if own
                .iter()
                .zip(&reference_durations)
                .any(|(a, b)| a.0.abs_diff(b.0) > HZ / 1000)
            {
                TrackTiming::SharedWithOwnDurations
            } else {
                TrackTiming::Shared
            };
        }
        let pdt_every_segment = tracks
            .iter()
            .any(|t| matches!(t.timing, TrackTiming::SharedWithOwnDurations));
        // A track on its own schedule writes its fitted durations.
        let fitted_td = tracks
            .iter()
            .filter_map(|t| match &t.timing {
                TrackTiming::Own(own) => (0..own.len() as u64)
                    .map(|g| own.duration_of(g).round_secs())
                    .max(),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        let target_duration_s = target_duration_s.max(fitted_td);
        let source_pdt_base_ms = tracks[0].segments.iter().enumerate().find_map(|(i, seg)| {
            seg.source_pdt_ms
                .map(|pdt| pdt - schedule.start_of(i as u64).as_ms() as i64)
        });
        Stream {
            source_pdt_base_ms,
            pdt_every_segment,
            name: name.to_string(),
            master,
            tracks,
            schedule,
            target_duration_s,
            version,
        }
    }

    /// A stream from known durations, without files: one variant per entry
    /// of `tracks` (name, durations in ticks, all of the same length and > 0),
    /// discontinuities as in the source. For tests and benchmarks.
    pub fn from_durations(
        name: &str,
        tracks: &[(&str, Vec<u64>)],
        discontinuities: &[bool],
    ) -> Stream {
        let tracks = tracks
            .iter()
            .map(|(track, durations)| Track {
                name: track.to_string(),
                kind: TrackKind::Variant,
                segments: durations
                    .iter()
                    .enumerate()
                    .map(|(i, &ticks)| Segment {
                        path: format!("{track}/seg_{i:05}.ts"),
                        byte_range: None,
                        duration: Ticks(ticks),
                        method: Method::Native,
                        source_duration: Ticks(ticks),
                        discontinuity: discontinuities.get(i).copied().unwrap_or(false),
                        key: None,
                        map: None,
                        tags: Vec::new(),
                        source_pdt_ms: None,
                    })
                    .collect(),
                header_tags: Vec::new(),
                timing: TrackTiming::Shared,
            })
            .collect();
        Stream::new(name, String::new(), tracks)
    }

    /// The schedule a track is listed on.
    pub fn schedule_of<'a>(&'a self, track: &'a Track) -> &'a Schedule {
        match &track.timing {
            TrackTiming::Own(schedule) => schedule,
            _ => &self.schedule,
        }
    }

    /// The track called `name`.
    pub fn track(&self, name: &str) -> Option<&Track> {
        self.tracks.iter().find(|t| t.name == name)
    }
}
