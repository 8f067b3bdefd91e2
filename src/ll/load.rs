//! Reading a track's segments for parts: blocking IO, run once per track
//! off the async workers.
//!
//! Every segment is read once (its `EXT-X-BYTERANGE` applied) and only its
//! frames are kept; the bytes are dropped. MPEG-TS or fMP4 is told from the
//! bytes, as the prober does; an fMP4 segment takes its init segment from
//! its `EXT-X-MAP` (each distinct map read and parsed once), or from a
//! `moov` of its own.

use std::path::Path;

use rayon::prelude::*;

use super::{CarveError, LlError, Part, SegmentFrames, carve, fmp4_frames, fmp4_part};
use super::{ts_frames, ts_part};
use crate::model::{ByteRange, Map, Resource, Track};
use crate::probe::fmp4::{Init, looks_like_mp4, parse_init};
use crate::source::SourceError;
use crate::ticks::Ticks;

/// The frames of every segment of a track, in playlist order.
#[derive(Debug, Clone)]
pub struct TrackFrames {
    segments: Vec<Segment>,
    /// The distinct init segments of the track's fMP4 segments.
    inits: Vec<Init>,
}

#[derive(Debug, Clone)]
struct Segment {
    frames: SegmentFrames,
    /// Index into `inits` (fMP4 only).
    init: Option<usize>,
}

impl TrackFrames {
    /// The number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether the track has no segments.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// The frames of segment `index` of the loop.
    pub fn segment(&self, index: usize) -> Option<&SegmentFrames> {
        self.segments.get(index).map(|s| &s.frames)
    }

    /// Carves segment `index` into parts for `target`; `duration` is the
    /// segment's duration as the playlist writes it.
    pub fn carve(
        &self,
        index: usize,
        duration: Ticks,
        target: Ticks,
    ) -> Result<Vec<Part>, CarveError> {
        let frames = self.segment(index).ok_or(CarveError::NoFrames)?;
        carve(frames, duration, target)
    }

    /// The bytes of `part` of segment `index`, given the segment's bytes
    /// (its byte range only, when it has one).
    pub fn cut(&self, index: usize, segment: &[u8], part: &Part) -> Result<Vec<u8>, LlError> {
        let s = self
            .segments
            .get(index)
            .ok_or_else(|| LlError::Mismatch(format!("no segment {index}")))?;
        match s.init.and_then(|i| self.inits.get(i)) {
            Some(init) => fmp4_part(init, segment, &s.frames, part),
            None => ts_part(segment, &s.frames, part),
        }
    }
}

/// Bytes of a file, or of a range of it.
fn read(path: &Path, range: Option<ByteRange>) -> Result<Vec<u8>, SourceError> {
    let data =
        std::fs::read(path).map_err(|e| SourceError::new(path, format!("cannot read: {e}")))?;
    match range {
        Some(r) => usize::try_from(r.offset)
            .ok()
            .zip(usize::try_from(r.offset.saturating_add(r.length)).ok())
            .and_then(|(a, b)| data.get(a..b))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| SourceError::new(path, "byte range outside the file")),
        None => Ok(data),
    }
}

/// Reads every segment of `track` (files under `stream_dir`) for parts.
/// Encrypted segments are refused.
pub fn track_frames(stream_dir: &Path, track: &Track) -> Result<TrackFrames, SourceError> {
    let problem = |e: &dyn std::fmt::Display| format!("cannot be cut into parts: {e}");
    // The distinct maps, read and parsed once each (when they hold a moov:
    // an MPEG-TS map of PAT and PMT is not used).
    let mut maps: Vec<&Map> = Vec::new();
    for seg in &track.segments {
        if let Some(map) = &seg.map
            && !maps.contains(&map)
        {
            maps.push(map);
        }
    }
    let inits: Vec<Option<Init>> = maps
        .iter()
        .map(|map| match &map.uri {
            Resource::File(rel) => {
                let path = stream_dir.join(rel);
                let bytes = read(&path, map.byte_range)?;
                Ok(looks_like_mp4(&bytes)
                    .then(|| parse_init(&bytes))
                    .transpose()
                    .map_err(|e| SourceError::new(&path, problem(&e)))?)
            }
            Resource::External(uri) => Err(SourceError::new(
                &stream_dir.join(&track.name),
                format!("EXT-X-MAP {uri} is not a file: segments cannot be cut into parts"),
            )),
        })
        .collect::<Result<_, _>>()?;
    let mut own_inits: Vec<Init> = Vec::new();
    let mut index_of: Vec<Option<usize>> = Vec::with_capacity(inits.len());
    for init in inits {
        index_of.push(init.map(|i| {
            own_inits.push(i);
            own_inits.len() - 1
        }));
    }

    let read_segment = |seg: &crate::model::Segment| -> Result<(SegmentFrames, Option<Init>, Option<usize>), SourceError> {
        let path = stream_dir.join(&seg.path);
        if seg.key.as_ref().is_some_and(|k| k.method != "NONE") {
            return Err(SourceError::new(
                &path,
                "encrypted segments cannot be cut into parts",
            ));
        }
        let bytes = read(&path, seg.byte_range)?;
        let fail = |e: LlError| SourceError::new(&path, problem(&e));
        if !looks_like_mp4(&bytes) {
            return Ok((ts_frames(&bytes).map_err(fail)?, None, None));
        }
        let map = seg
            .map
            .as_ref()
            .and_then(|m| maps.iter().position(|x| *x == m))
            .and_then(|i| index_of[i]);
        match map {
            Some(i) => Ok((fmp4_frames(&own_inits[i], &bytes).map_err(fail)?, None, Some(i))),
            None => {
                // No init segment of its own: a file holding moov and fragments.
                let init = parse_init(&bytes).map_err(|e| SourceError::new(&path, problem(&e)))?;
                Ok((fmp4_frames(&init, &bytes).map_err(fail)?, Some(init), None))
            }
        }
    };
    let read: Vec<_> = track
        .segments
        .par_iter()
        .map(read_segment)
        .collect::<Result<_, _>>()?;
    let mut segments = Vec::with_capacity(read.len());
    for (frames, own, init) in read {
        let init = match own {
            Some(own) => {
                own_inits.push(own);
                Some(own_inits.len() - 1)
            }
            None => init,
        };
        segments.push(Segment { frames, init });
    }
    Ok(TrackFrames {
        segments,
        inits: own_inits,
    })
}
