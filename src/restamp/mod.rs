//! Continuous timestamps ("continuous mode"): the shift that makes segment `g`'s
//! media time follow the live timeline, and the in-place patchers that apply it.
//!
//! Segment `g` = loop `k`, index `i` is served with every timestamp `t` moved to
//! `t − start_pts(i) + base + start_of(g)`: media time then increases across loop
//! points and source discontinuities, is identical on every replica, and keeps a
//! constant relation to the program date-time. Nothing is remuxed or decoded:
//! fixed-size fields are rewritten where they are.
//!
//! - [`ts`]: MPEG-TS (PTS, DTS, ESCR, PCR, OPCR, `DTS_next_AU`, continuity counters).
//! - [`fmp4`]: fragmented MP4 (`tfdt`, `sidx`, `emsg` v1, `prft`).
//! - [`webvtt`]: WebVTT (`X-TIMESTAMP-MAP`), by the offset of the media it goes with.
//!
//! What a caller keeps at load and what it computes per request is described on
//! [`ts::TsRestampPlan`] and [`fmp4::apply`].
pub mod fmp4;
pub mod ts;
pub mod webvtt;

use crate::ticks::{HZ, PTS_WRAP};

/// The media time of the timeline's instant 0 (10 s, in 90 kHz ticks).
///
/// A segment's reference start PTS is mapped to `BASE_TICKS + start_of(g)`. Other
/// timestamps of the segment lie before it: B-frame DTS (a few frames), audio that
/// starts ahead of the first video frame, and PCR, which leads the DTS of the
/// data it carries by the mux delay (ffmpeg: 0.7 s; the T-STD allows up to 1 s,
/// 10 s for still pictures). Without a margin they would land just below 2^33
/// on the very first segment, which players read as a stream starting 26.5 hours
/// in that wraps at once. 10 s covers all of these, and is also where Apple's
/// segmenters start their PTS.
pub const BASE_TICKS: u64 = 10 * HZ;

/// The offset (mod 2^33) that moves a segment whose reference stream starts at
/// `source_start_pts` to `base_ticks + start_of_g_ticks` on the 33-bit clock.
///
/// `start_of_g_ticks` is [`crate::timeline::Schedule::start_of`] of the global
/// segment number; it may be any `u64` (only its value mod 2^33 matters), so the
/// wrap happens where it would in a real stream of that age.
pub fn pts_offset_ticks(source_start_pts: u64, start_of_g_ticks: u64, base_ticks: u64) -> u64 {
    // 2^33 divides 2^64: wrapping arithmetic, then the low 33 bits.
    base_ticks
        .wrapping_add(start_of_g_ticks)
        .wrapping_sub(source_start_pts)
        & (PTS_WRAP - 1)
}

/// The fMP4 counterpart of [`pts_offset_ticks`]: the signed offset, in units of a
/// track's `timescale`, that moves a segment whose reference start is
/// `source_start` (in `timescale` units) to `base_ticks + start_of_g_ticks`.
///
/// Every track of a segment must move by the same time, or audio and video
/// drift apart: `source_start` is the reference track's start (its first
/// `tfdt`) converted to this track's timescale, the same instant for all tracks.
///
/// The target time is converted from 90 kHz to `timescale` with rounding to the
/// nearest unit; it is computed from the absolute `start_of_g_ticks`, so rounding
/// never accumulates over segments or loops. `None` when `timescale` is 0 or the
/// result does not fit an `i64`.
pub fn timescale_offset(
    source_start: u64,
    start_of_g_ticks: u64,
    base_ticks: u64,
    timescale: u32,
) -> Option<i64> {
    if timescale == 0 {
        return None;
    }
    let target_ticks = i128::from(base_ticks) + i128::from(start_of_g_ticks);
    let hz = i128::from(HZ);
    let target = (target_ticks * i128::from(timescale) + hz / 2) / hz;
    i64::try_from(target - i128::from(source_start)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_maps_the_source_start_to_base_plus_start_of_g() {
        let off = pts_offset_ticks(1_000, 180_000, BASE_TICKS);
        assert_eq!((1_000 + off) % PTS_WRAP, BASE_TICKS + 180_000);
        // Source start near the wrap, start_of(g) past several wraps.
        let src = PTS_WRAP - 5;
        let start = 3 * PTS_WRAP + 77;
        let off = pts_offset_ticks(src, start, BASE_TICKS);
        assert!(off < PTS_WRAP);
        assert_eq!((src + off) % PTS_WRAP, (BASE_TICKS + 77) % PTS_WRAP);
        // Values beyond 2^33 count mod 2^33.
        let m = u64::MAX % PTS_WRAP;
        assert_eq!(
            pts_offset_ticks(u64::MAX, u64::MAX, u64::MAX),
            (m + m - m) % PTS_WRAP
        );
        assert_eq!(pts_offset_ticks(PTS_WRAP + 3, 2 * PTS_WRAP + 5, 0), 2);
    }

    #[test]
    fn timescale_offset_rounds_from_absolute_time() {
        // 90 kHz: exact.
        assert_eq!(
            timescale_offset(500, 180_000, BASE_TICKS, 90_000),
            Some(1_080_000 - 500)
        );
        // 48 kHz: 2 s = 96000 samples, base 10 s = 480000.
        assert_eq!(
            timescale_offset(0, 180_000, BASE_TICKS, 48_000),
            Some(576_000)
        );
        // 1 tick at 48 kHz = 0.533 samples: rounds to 1.
        assert_eq!(timescale_offset(0, 1, 0, 48_000), Some(1));
        assert_eq!(timescale_offset(7, 0, 0, 1000), Some(-7));
        assert_eq!(timescale_offset(0, 0, 0, 0), None);
        assert_eq!(timescale_offset(0, u64::MAX, u64::MAX, u32::MAX), None);
    }
}
