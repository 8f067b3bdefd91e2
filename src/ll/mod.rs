//! Low-latency HLS: the live edge at part granularity and the blocking
//! rules ([`edge`]).

pub mod edge;

use crate::ticks::Ticks;

/// One track's parts for one part target.
#[derive(Debug)]
pub struct TrackParts {
    /// When each part of the loop starts and how long it lasts.
    pub times: edge::LoopParts,
}

/// Every track's parts for one part target: `None` for a track listed by
/// whole segments (subtitles, encrypted media).
#[derive(Debug)]
pub struct StreamParts {
    /// The part target.
    pub target: Ticks,
    /// Per track of the stream.
    pub tracks: Vec<Option<TrackParts>>,
}
