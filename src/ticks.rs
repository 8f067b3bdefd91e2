//! Time as integer 90 kHz ticks, the clock of MPEG-TS timestamps.
//!
//! [`Ticks`] is the type of every duration and timeline position outside the
//! parsers; the free functions work on raw 33-bit PTS values and `u64` tick
//! counts inside the probes.

use std::ops::{Add, AddAssign, Mul, Sub};

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
pub const fn round_secs(ticks: u64) -> u64 {
    (ticks + HZ / 2) / HZ
}

/// A duration or instant in 90 kHz ticks. Instants are counted from the
/// Unix epoch (wall clock) or from a stream's anchor (timeline); the name of
/// each field says which.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticks(pub u64);

impl Ticks {
    /// Zero.
    pub const ZERO: Ticks = Ticks(0);

    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> Ticks {
        Ticks(secs.saturating_mul(HZ))
    }

    /// Seconds, rounded to the nearest tick; negative or NaN input gives zero.
    pub fn from_secs_f64(secs: f64) -> Ticks {
        Ticks(from_secs(secs))
    }

    /// Milliseconds.
    pub const fn from_ms(ms: u64) -> Ticks {
        Ticks(ms.saturating_mul(HZ / 1000))
    }

    /// Milliseconds, rounded down.
    pub const fn as_ms(self) -> u64 {
        self.0 / (HZ / 1000)
    }

    /// Seconds, for text output.
    pub fn as_secs_f64(self) -> f64 {
        to_secs(self.0)
    }

    /// Whole seconds rounded to the nearest (the target-duration rule).
    pub const fn round_secs(self) -> u64 {
        round_secs(self.0)
    }

    /// `self − other`, or zero when `other` is later.
    pub const fn saturating_sub(self, other: Ticks) -> Ticks {
        Ticks(self.0.saturating_sub(other.0))
    }
}

impl Add for Ticks {
    type Output = Ticks;
    fn add(self, rhs: Ticks) -> Ticks {
        Ticks(self.0 + rhs.0)
    }
}

impl AddAssign for Ticks {
    fn add_assign(&mut self, rhs: Ticks) {
        self.0 += rhs.0;
    }
}

impl Sub for Ticks {
    type Output = Ticks;
    fn sub(self, rhs: Ticks) -> Ticks {
        Ticks(self.0 - rhs.0)
    }
}

impl Mul<u64> for Ticks {
    type Output = Ticks;
    fn mul(self, rhs: u64) -> Ticks {
        Ticks(self.0 * rhs)
    }
}

impl std::iter::Sum for Ticks {
    fn sum<I: Iterator<Item = Ticks>>(iter: I) -> Ticks {
        Ticks(iter.map(|t| t.0).sum())
    }
}

impl std::fmt::Display for Ticks {
    /// Seconds with five decimals (the precision of `#EXTINF`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.5}", self.as_secs_f64())
    }
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
        assert_eq!(Ticks::from_ms(1234).as_ms(), 1234);
        assert_eq!(Ticks::from_secs_f64(2.002).to_string(), "2.00200");
        assert_eq!((Ticks::from_secs(2) * 3 - Ticks(1)).0, 539_999);
    }
}
