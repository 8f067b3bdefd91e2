//! Time as integer 90 kHz ticks, the clock of MPEG-TS timestamps.

/// Ticks per second of every time value in pseudolive.
pub const HZ: u64 = 90_000;

/// PTS/DTS values are 33-bit counters: they wrap at 2^33 ticks (≈ 26.5 h).
pub const PTS_WRAP: u64 = 1 << 33;

/// Seconds (for text output only) from ticks.
pub fn to_secs(ticks: u64) -> f64 {
    ticks as f64 / HZ as f64
}

/// Ticks from seconds, rounded to the nearest tick; negative or NaN input gives 0.
pub fn from_secs(secs: f64) -> u64 {
    if secs.is_finite() && secs > 0.0 {
        (secs * HZ as f64).round() as u64
    } else {
        0
    }
}

/// Ticks from milliseconds.
pub fn from_ms(ms: u64) -> u64 {
    ms.saturating_mul(HZ / 1000)
}

/// Milliseconds (rounded down) from ticks.
pub fn to_ms(ticks: u64) -> u64 {
    ticks / (HZ / 1000)
}

/// `later − earlier` on the 33-bit PTS clock, so a wrap between them is harmless.
pub fn pts_diff(later: u64, earlier: u64) -> u64 {
    later.wrapping_sub(earlier) & (PTS_WRAP - 1)
}

/// Target-duration rounding: a duration in whole seconds, rounded to the nearest.
pub fn round_secs(ticks: u64) -> u64 {
    (ticks + HZ / 2) / HZ
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_across_wrap() {
        assert_eq!(pts_diff(100, PTS_WRAP - 50), 150);
        assert_eq!(pts_diff(540_540, 0), 540_540);
    }

    #[test]
    fn conversions() {
        assert_eq!(from_secs(6.006), 540_540);
        assert_eq!(from_secs(-1.0), 0);
        assert_eq!(from_secs(f64::NAN), 0);
        assert_eq!(round_secs(from_secs(2.49)), 2);
        assert_eq!(round_secs(from_secs(2.5)), 3);
        assert_eq!(to_ms(from_ms(1234)), 1234);
    }
}
