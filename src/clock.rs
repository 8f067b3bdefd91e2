//! The wall clock, injected: the HTTP layer asks a [`Clock`] for the time and
//! passes it down, so tests set the time instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ticks::{HZ, Ticks};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, as ticks since the Unix epoch.
    fn now_unix(&self) -> Ticks;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> Ticks {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ticks(since.as_secs() * HZ + u64::from(since.subsec_micros()) * 9 / 100)
    }
}

/// A clock that only moves when told to: for tests.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock showing `now_unix`.
    pub fn new(now_unix: Ticks) -> Self {
        ManualClock(AtomicU64::new(now_unix.0))
    }

    /// Sets the time.
    pub fn set(&self, now_unix: Ticks) {
        self.0.store(now_unix.0, Ordering::SeqCst);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Ticks) {
        self.0.fetch_add(by.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> Ticks {
        Ticks(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Ticks(5));
        assert_eq!(c.now_unix(), Ticks(5));
        c.advance(Ticks(10));
        assert_eq!(c.now_unix(), Ticks(15));
        c.set(Ticks(1));
        assert_eq!(c.now_unix(), Ticks(1));
        assert!(SystemClock.now_unix() > Ticks::from_secs(1_700_000_000));
    }
}
