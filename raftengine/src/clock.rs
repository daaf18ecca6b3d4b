//! Monotonic time behind a trait, so tests can give each node its own offset and rate.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// A monotonic clock. Readings only compare with readings of the same clock.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The default clock: tokio's, so a paused test runtime drives it.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that keeps counting while the machine is suspended: `CLOCK_BOOTTIME` on Linux,
/// tokio's monotonic clock elsewhere. The clock for engines that serve lease reads in
/// production.
///
/// tokio's clock (`CLOCK_MONOTONIC`) stops during a system suspend, so a leader suspended for
/// longer than its lease would resume with a lease that still looks live while the others
/// have elected a new leader. On this clock the suspended time counts: on resume every lease
/// anchored before the suspend has expired.
///
/// Readings are tokio instants (the [`Clock`] contract) that start at tokio's reading when the
/// clock is created and advance with `CLOCK_BOOTTIME`, so they run ahead of tokio's by the
/// time spent suspended since then. They follow real time, not a paused test runtime: tests on
/// virtual time use [`TokioClock`] (or a simulated clock).
#[derive(Debug, Clone, Copy)]
pub struct SuspendAwareClock {
    tokio_base: Instant,
    boot_base: Duration,
}

impl SuspendAwareClock {
    /// A clock reading tokio's time now and counting suspends from here on.
    pub fn new() -> Self {
        Self {
            boot_base: boot_time(),
            tokio_base: Instant::now(),
        }
    }
}

impl Default for SuspendAwareClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SuspendAwareClock {
    fn now(&self) -> Instant {
        self.tokio_base + boot_time().saturating_sub(self.boot_base)
    }
}

/// Time since boot, suspends included.
#[cfg(target_os = "linux")]
fn boot_time() -> Duration {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    // The kernel never reports a negative boot time or nanoseconds past a second.
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// Without `CLOCK_BOOTTIME`: the monotonic clock, suspends not counted.
#[cfg(not(target_os = "linux"))]
fn boot_time() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a suspend the clock runs with tokio's (real-time runtime): the two readings
    /// stay within a millisecond of each other as both advance.
    #[tokio::test]
    async fn without_a_suspend_it_runs_with_tokio() {
        let clock = SuspendAwareClock::new();
        for _ in 0..5 {
            let before = Instant::now();
            let reading = clock.now();
            let after = Instant::now();
            assert!(
                reading + Duration::from_millis(1) >= before,
                "{reading:?} < {before:?}"
            );
            assert!(
                reading <= after + Duration::from_millis(1),
                "{reading:?} > {after:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn readings_never_go_back() {
        let clock = SuspendAwareClock::new();
        let mut last = clock.now();
        for _ in 0..10_000 {
            let now = clock.now();
            assert!(now >= last);
            last = now;
        }
    }
}
