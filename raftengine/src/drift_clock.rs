//! [`DriftClock`]: a test clock with its own offset and rate.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::Clock;
#[cfg(test)]
use crate::clock::TokioClock;

/// A test clock that runs at `rate` times tokio's speed, shifted by an offset. Changing the
/// rate keeps the reading continuous, like a real oscillator drifting.
#[derive(Debug)]
pub struct DriftClock {
    state: Mutex<DriftState>,
}

#[derive(Debug, Clone, Copy)]
struct DriftState {
    real_anchor: Instant,
    local_anchor: Instant,
    rate: f64,
}

impl DriftClock {
    /// A clock `offset` ahead of tokio's, advancing at `rate` (1.0 = no drift).
    ///
    /// # Panics
    /// Never for `rate` in (0, ∞); a non-positive or non-finite rate is clamped to 1.0.
    pub fn new(offset: Duration, rate: f64) -> Self {
        let now = Instant::now();
        Self {
            state: Mutex::new(DriftState {
                real_anchor: now,
                local_anchor: now + offset,
                rate: sanitize_rate(rate),
            }),
        }
    }

    /// Changes the rate from now on without a jump in the reading.
    pub fn set_rate(&self, rate: f64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let real_now = Instant::now();
        let local_now = state.reading_at(real_now);
        *state = DriftState {
            real_anchor: real_now,
            local_anchor: local_now,
            rate: sanitize_rate(rate),
        };
    }

    /// Jumps the clock forward (monotonic clocks never go back).
    pub fn advance(&self, by: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.local_anchor += by;
    }
}

fn sanitize_rate(rate: f64) -> f64 {
    if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        1.0
    }
}

impl DriftState {
    fn reading_at(&self, real_now: Instant) -> Instant {
        let real_elapsed = real_now.saturating_duration_since(self.real_anchor);
        self.local_anchor + real_elapsed.mul_f64(self.rate)
    }
}

impl Clock for DriftClock {
    fn now(&self) -> Instant {
        let state = *self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.reading_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn drift_clock_runs_at_its_rate_and_stays_continuous() {
        let clock = DriftClock::new(Duration::from_secs(5), 1.5);
        let start = clock.now();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(clock.now() - start, Duration::from_secs(3));
        clock.set_rate(0.5);
        let before = clock.now();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(clock.now() - before, Duration::from_secs(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now() - before, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let start = TokioClock.now();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(TokioClock.now() - start, Duration::from_millis(700));
    }
}
