//! Monotonic time behind a trait, so tests can give each node its own offset and rate.

use std::fmt;

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
