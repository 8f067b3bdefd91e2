//! Held requests (blocking playlist reloads, a preload-hinted part asked
//! for early): however many requests wait for the same instant, one timer
//! wakes them all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::clock::Clock;
use crate::ticks::Ticks;

/// The instants requests wait for, each with its one timer.
#[derive(Debug, Default)]
pub struct Waits {
    pending: Arc<Mutex<HashMap<Ticks, watch::Receiver<bool>>>>,
}

impl Waits {
    /// Completes once `clock` shows `unix`; requests waiting for the same
    /// instant share one timer.
    pub fn until(
        &self,
        clock: &Arc<dyn Clock>,
        unix: Ticks,
    ) -> impl std::future::Future<Output = ()> + use<> {
        let rx = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending
                .entry(unix)
                .or_insert_with(|| {
                    let (tx, rx) = watch::channel(false);
                    let sleep = clock.sleep_until(unix);
                    let pending = self.pending.clone();
                    tokio::spawn(async move {
                        sleep.await;
                        let _ = tx.send(true);
                        pending
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&unix);
                    });
                    rx
                })
                .clone()
        };
        async move {
            let mut rx = rx;
            let _ = rx.wait_for(|&woken| woken).await;
        }
    }

    /// Timers running.
    pub fn timers(&self) -> usize {
        self.pending.lock().map_or(0, |p| p.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::time::Duration;

    #[tokio::test]
    async fn one_timer_wakes_every_request_waiting_for_an_instant() {
        let manual = Arc::new(ManualClock::new(Ticks(0)));
        let clock: Arc<dyn Clock> = manual.clone();
        let waits = Waits::default();
        let held: Vec<_> = (0..100)
            .map(|_| tokio::spawn(waits.until(&clock, Ticks(10))))
            .collect();
        let later = tokio::spawn(waits.until(&clock, Ticks(20)));
        assert_eq!(waits.timers(), 2);
        tokio::task::yield_now().await;
        assert!(held.iter().all(|h| !h.is_finished()));
        manual.set(Ticks(10));
        for h in held {
            tokio::time::timeout(Duration::from_secs(5), h)
                .await
                .expect("woken")
                .unwrap();
        }
        assert!(!later.is_finished());
        manual.set(Ticks(25));
        tokio::time::timeout(Duration::from_secs(5), later)
            .await
            .expect("woken")
            .unwrap();
        // Timers remove themselves.
        for _ in 0..100 {
            if waits.timers() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(waits.timers(), 0);
    }
}
