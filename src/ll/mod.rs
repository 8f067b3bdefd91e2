//! Low-Latency HLS parts: a segment's frames, carved into partial segments
//! (RFC 8216bis 4.4.4.9) and cut into bytes of their own.
//!
//! Served by the library: [`read_frames`] once per track, [`StreamParts`]
//! once per part target, and [`edge`] places the parts on the timeline
//! (which exist at an instant, what a blocking reload waits for).
//!
//! Three steps, each pure except the loader in [`load`]:
//!
//! 1. **Frames.** [`ts_frames`] and [`fmp4_frames`] read a segment once and
//!    keep, per access unit of its *lead* stream (video when there is one,
//!    else the first audio stream), its decode time since the segment's first
//!    lead frame and whether it starts an independently decodable run
//!    ([`Frame`]), plus the few facts needed to cut bytes later (the byte
//!    offset where each frame's part would begin in MPEG-TS; the lead track
//!    and its first decode time in fMP4). No segment bytes are kept: a track's
//!    frames cost about 20 bytes per frame.
//! 2. **Carving.** [`carve()`] chooses the part boundaries for a PART-TARGET:
//!    every part at most the target, at least 85 % of it unless it starts with
//!    an independent frame or ends the segment, a boundary at every keyframe
//!    (so `INDEPENDENT=YES` parts start exactly there), the fewest parts and,
//!    among those, the most even ones. The last part ends at the duration the
//!    playlist writes for the segment, so part durations add up to it exactly.
//! 3. **Cutting.** [`ts_part`] and [`fmp4_part`] turn one part into bytes,
//!    given the segment's bytes again (the server keeps those in its file
//!    cache): one pass over the part's bytes.
//!
//! **MPEG-TS parts are standalone files, not byte ranges of the segment.** A
//! byte range cut from the middle of a segment has no PAT or PMT, and RFC
//! 8216bis 3.1.1 wants both in every TS segment (or an `EXT-X-MAP`). hls.js
//! re-probes the format of the first chunk after a start, a discontinuity or
//! a level switch, and its TS probe needs a PAT *inside* that chunk: a byte
//! range part there fails. So each part is the segment's packets from its
//! first frame's PES start to the next part's, with the segment's PAT and PMT
//! put in front when the part does not already start with them (copies of
//! the latest ones before the cut, so a single-packet table is a legal
//! duplicate packet to a demuxer reading the parts in a row). Other PIDs go
//! with the part their packets fall in; the first part starts at byte 0 and
//! the last one runs to the end, so the parts without their added tables are
//! exactly the segment. An audio PES that straddles a cut is split between
//! two parts, which a demuxer reading the parts in a row (a player) joins
//! again. TS parts are cut at PES starts only: when the lead is audio, a
//! "frame" is one PES (ffmpeg packs about 0.37 s of AAC into one), which
//! bounds the smallest target.
//!
//! **fMP4 parts are new fragments.** For each source `moof` the part takes
//! samples from, a new `moof` (its `mfhd`, then per track a `tfhd` with
//! default-base-is-moof, a `tfdt` at the part's first sample of that track
//! and one `trun` of exactly those samples) and an `mdat` of their bytes.
//! The lead track's samples are split at the part's frames; another track's
//! sample goes to the part whose time span holds its decode time.

pub mod carve;
pub mod edge;
pub mod fmp4;
pub mod load;
mod stream;
pub mod ts;

pub use carve::{CarveError, carve};
pub use fmp4::{fmp4_frames, fmp4_part};
pub use load::{TrackFrames, track_frames};
pub use stream::{StreamParts, TrackParts, read_frames};
pub use ts::{ts_frames, ts_part};

use crate::ticks::Ticks;

/// One access unit (frame) of a segment's lead stream: video if present,
/// else the first audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Decode time since the segment's first lead frame, 90 kHz ticks.
    pub at: Ticks,
    /// Starts an independently decodable run: an IDR or other random-access
    /// picture, or any audio frame (every audio PES of an MPEG-TS lead).
    pub independent: bool,
}

/// A segment's lead frames, plus what cutting its bytes into parts needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFrames {
    /// The lead stream's frames in decode order; the first is at zero.
    pub frames: Vec<Frame>,
    /// What the cutters need, by container.
    cut: Cut,
}

/// The container-specific facts of a segment for cutting.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cut {
    /// Frames only (built by [`SegmentFrames::from_frames`]): nothing to cut.
    None,
    /// MPEG-TS.
    Ts(ts::TsCut),
    /// fMP4.
    Fmp4(fmp4::Fmp4Cut),
}

impl SegmentFrames {
    /// Frames without cutting data: enough to [`carve()`], not to cut bytes
    /// (for tests and for planning).
    pub fn from_frames(frames: Vec<Frame>) -> SegmentFrames {
        SegmentFrames {
            frames,
            cut: Cut::None,
        }
    }

    /// Whether the frames were read from MPEG-TS.
    pub fn is_ts(&self) -> bool {
        matches!(self.cut, Cut::Ts(_))
    }

    /// Whether the frames were read from fMP4.
    pub fn is_fmp4(&self) -> bool {
        matches!(self.cut, Cut::Fmp4(_))
    }
}

/// One part of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Start, since the segment's start.
    pub start: Ticks,
    /// Duration (`EXT-X-PART:DURATION`).
    pub duration: Ticks,
    /// Starts with an independent frame (`INDEPENDENT=YES`).
    pub independent: bool,
    /// Its lead frames: `first..end` of the segment's frames.
    first: u32,
    end: u32,
}

impl Part {
    /// The indices of its lead frames in [`SegmentFrames::frames`].
    pub fn frames(&self) -> std::ops::Range<usize> {
        self.first as usize..self.end as usize
    }
}

/// Why a segment's frames could not be read, or a part's bytes not cut.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlError {
    /// The bytes are not of the container expected, or too damaged to read.
    #[error("{0}")]
    Malformed(String),
    /// No video or audio stream to take frames from.
    #[error("no video or audio stream with timestamps")]
    NoLeadStream,
    /// The lead stream's decode times go backwards.
    #[error("lead stream decode time goes backwards at frame {frame}")]
    Backwards {
        /// Index of the frame.
        frame: usize,
    },
    /// MPEG-TS without a PAT and a PMT: its parts could not be made standalone.
    #[error("no PAT and PMT in the segment: its parts could not carry them")]
    NoPsi,
    /// Encrypted samples (`senc`, `saiz`), which cannot be re-cut.
    #[error("encrypted (CENC) fragments cannot be cut into parts")]
    Encrypted,
    /// The part or its frames do not belong to these bytes (or to this container).
    #[error("the part does not match the segment's bytes: {0}")]
    Mismatch(String),
}
