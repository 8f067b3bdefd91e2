//! A stream's parts for one part target, as the server keeps them: per
//! track, when each part starts and ends (for the timeline) and how each is
//! cut (for its bytes).

use std::path::Path;
use std::sync::Arc;

use super::{LlError, Part, TrackFrames, track_frames};
use crate::model::Track;
use crate::probe::fmp4::looks_like_mp4;
use crate::source::SourceError;
use crate::ticks::Ticks;
use crate::timeline::Schedule;
use crate::timeline::parts::{LoopParts, PartTime};

/// One track's parts for one part target.
#[derive(Debug)]
pub struct TrackParts {
    /// When each part of the loop starts and how long it lasts.
    pub times: LoopParts,
    /// Per segment of the loop, its parts as carved.
    carved: Vec<Vec<Part>>,
    frames: Arc<TrackFrames>,
}

/// Every track's parts for one part target.
#[derive(Debug)]
pub struct StreamParts {
    /// The part target.
    pub target: Ticks,
    /// Per track of the stream: `None` for a track listed by whole segments
    /// (subtitles, encrypted media).
    pub tracks: Vec<Option<TrackParts>>,
}

/// The frames of `track`'s segments, read from the files under
/// `stream_dir`; `None` for a track that is listed by whole segments:
/// encrypted, or neither MPEG-TS nor fMP4 (WebVTT). Blocking IO.
pub fn read_frames(stream_dir: &Path, track: &Track) -> Result<Option<TrackFrames>, SourceError> {
    if track
        .segments
        .iter()
        .any(|s| s.key.as_ref().is_some_and(|k| k.method != "NONE"))
    {
        return Ok(None);
    }
    let Some(first) = track.segments.first() else {
        return Ok(None);
    };
    let path = stream_dir.join(&first.path);
    let head = {
        use std::io::Read;
        let mut head = Vec::with_capacity(512);
        let file = std::fs::File::open(&path)
            .map_err(|e| SourceError::new(&path, format!("cannot read: {e}")))?;
        let skip = first.byte_range.map_or(0, |r| r.offset);
        let mut file = std::io::BufReader::new(file);
        std::io::copy(&mut (&mut file).take(skip), &mut std::io::sink())
            .map_err(|e| SourceError::new(&path, format!("cannot read: {e}")))?;
        file.take(512)
            .read_to_end(&mut head)
            .map_err(|e| SourceError::new(&path, format!("cannot read: {e}")))?;
        head
    };
    let media = first.map.is_some() || looks_like_mp4(&head) || head.first() == Some(&0x47);
    if !media {
        return Ok(None);
    }
    track_frames(stream_dir, track).map(Some)
}

impl TrackParts {
    /// Carves every segment of `track` for `target`: each segment's parts
    /// end at its duration on `schedule`, so parts and segments agree on
    /// the timeline. An error names the segment's file.
    pub fn carve(
        frames: Arc<TrackFrames>,
        track: &Track,
        schedule: &Schedule,
        target: Ticks,
    ) -> Result<TrackParts, SourceError> {
        let mut carved = Vec::with_capacity(track.segments.len());
        for (i, seg) in track.segments.iter().enumerate() {
            let parts = frames
                .carve(i, schedule.duration_of(i as u64), target)
                .map_err(|e| SourceError::new(Path::new(&seg.path), e.to_string()))?;
            if parts.is_empty() {
                return Err(SourceError::new(Path::new(&seg.path), "no parts"));
            }
            carved.push(parts);
        }
        let times = carved
            .iter()
            .map(|parts| {
                parts
                    .iter()
                    .map(|p| PartTime {
                        start: p.start,
                        duration: p.duration,
                        independent: p.independent,
                    })
                    .collect()
            })
            .collect();
        Ok(TrackParts {
            times: LoopParts::new(target, times),
            carved,
            frames,
        })
    }

    /// The bytes of part `p` of segment `index` of the loop, from the
    /// segment's bytes (its byte range only, when it has one).
    pub fn cut(&self, index: usize, segment: &[u8], p: usize) -> Result<Vec<u8>, LlError> {
        let part = self
            .carved
            .get(index)
            .and_then(|parts| parts.get(p))
            .ok_or_else(|| LlError::Mismatch(format!("no part {p} of segment {index}")))?;
        self.frames.cut(index, segment, part)
    }
}
