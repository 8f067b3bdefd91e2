//! The wall clock, injected: the HTTP layer asks a [`Clock`] for the time and
//! passes it down, so tests set the time instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::ticks::{HZ, Ticks};

/// A future a clock completes.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, as ticks since the Unix epoch.
    fn now_unix(&self) -> Ticks;

    /// Completes once the clock shows `unix` or later.
    fn sleep_until(&self, unix: Ticks) -> Sleep;
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

    fn sleep_until(&self, unix: Ticks) -> Sleep {
        Box::pin(async move {
            // The system clock may be set back or forth meanwhile: look again.
            loop {
                let left = unix.saturating_sub(SystemClock.now_unix());
                if left == Ticks::ZERO {
                    return;
                }
                let micros = left.0.saturating_mul(100).div_ceil(9);
                tokio::time::sleep(Duration::from_micros(micros)).await;
            }
        })
    }
}

/// A clock that only moves when told to: for tests. Sleepers wake when it
/// is moved past their instant.
#[derive(Debug)]
pub struct ManualClock(tokio::sync::watch::Sender<Ticks>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new(Ticks::ZERO)
    }
}

impl ManualClock {
    /// A clock showing `now_unix`.
    pub fn new(now_unix: Ticks) -> Self {
        ManualClock(tokio::sync::watch::Sender::new(now_unix))
    }

    /// Sets the time.
    pub fn set(&self, now_unix: Ticks) {
        self.0.send_replace(now_unix);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Ticks) {
        self.0.send_modify(|t| *t += by);
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> Ticks {
        *self.0.borrow()
    }

    fn sleep_until(&self, unix: Ticks) -> Sleep {
        let mut rx = self.0.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock; a dropped clock never wakes.
            if rx.wait_for(|&t| t >= unix).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
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

    #[tokio::test]
    async fn manual_sleepers_wake_when_the_clock_passes_their_instant() {
        let c = std::sync::Arc::new(ManualClock::new(Ticks(0)));
        let sleeper = tokio::spawn(c.sleep_until(Ticks(100)));
        tokio::task::yield_now().await;
        c.advance(Ticks(99));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        c.advance(Ticks(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken")
            .unwrap();
        // An instant already passed completes at once.
        tokio::time::timeout(Duration::from_secs(5), c.sleep_until(Ticks(50)))
            .await
            .expect("already passed");
    }
}
