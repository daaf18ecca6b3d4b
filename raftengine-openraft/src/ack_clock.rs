//! [`AckClock`]: openraft's quorum-acknowledgement times, read on the engine's clock.
//!
//! openraft stamps the newest acknowledged heartbeat with tokio's monotonic instant, while a
//! [`QuorumAck`](raftengine::QuorumAck) must be a reading of the engine's clock taken when the
//! message was sent. "Engine now minus the tokio age" is wrong as soon as the two clocks part
//! ways between the send and the reading: a clock that counts a suspend (`CLOCK_BOOTTIME`)
//! jumps ahead of tokio's, and an acknowledgement from before the suspend would look as young
//! as its tokio age. So the offset between the two clocks is sampled as time goes on, and a
//! send time is converted with the offset in force at or before the send. The offset only
//! grows across a suspend, so an earlier sample errs early, the safe side for a lease.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftengine::Clock;
use tokio::time::Instant;

/// A change of the offset worth a new sample; smaller changes (drift) are covered by also
/// taking the age-based reading, which errs early for a slow clock.
const OFFSET_STEP: Duration = Duration::from_micros(100);
/// A sample at least this often even when the offset holds still.
const SAMPLE_AT_LEAST_EVERY: Duration = Duration::from_secs(1);
/// Samples kept: with a 1% drift one is taken every 10 ms, so this covers seconds, far more
/// than any lease; an acknowledgement older than every sample is converted with the oldest.
const SAMPLES: usize = 256;

/// One reading of both clocks; the engine clock is read first, so `engine` is never later
/// than the engine clock's reading at `tokio`.
#[derive(Debug, Clone, Copy)]
struct Sample {
    engine: Instant,
    tokio: Instant,
}

impl Sample {
    /// `engine - tokio`, in nanoseconds.
    fn offset(&self) -> i128 {
        signed_nanos(self.engine, self.tokio)
    }

    /// The engine reading at tokio instant `at`, assuming this sample's offset.
    fn engine_at(&self, at: Instant) -> Option<Instant> {
        if at >= self.tokio {
            self.engine.checked_add(at - self.tokio)
        } else {
            self.engine.checked_sub(self.tokio - at)
        }
    }
}

fn signed_nanos(a: Instant, b: Instant) -> i128 {
    if a >= b {
        (a - b).as_nanos() as i128
    } else {
        -((b - a).as_nanos() as i128)
    }
}

/// Converts tokio instants in the past to readings of the engine clock.
pub(crate) struct AckClock {
    clock: Arc<dyn Clock>,
    samples: Mutex<VecDeque<Sample>>,
}

impl fmt::Debug for AckClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckClock")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl AckClock {
    /// A converter onto `clock`, with a first sample taken now.
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Self {
        let converter = Self {
            clock,
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
        };
        converter.take_sample();
        converter
    }

    /// Reads both clocks, keeping the reading when the offset moved or the last kept one is
    /// old. Called on every metrics change and every conversion, so samples exist from before
    /// any acknowledged send.
    pub(crate) fn sample(&self) {
        self.take_sample();
    }

    fn take_sample(&self) -> Sample {
        let sample = Sample {
            engine: self.clock.now(),
            tokio: Instant::now(),
        };
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let keep = samples.back().is_none_or(|last| {
            (sample.offset() - last.offset()).unsigned_abs() > OFFSET_STEP.as_nanos()
                || sample.tokio.saturating_duration_since(last.tokio) >= SAMPLE_AT_LEAST_EVERY
        });
        if keep {
            if samples.len() == SAMPLES {
                samples.pop_front();
            }
            samples.push_back(sample);
        }
        sample
    }

    /// The engine-clock reading at tokio instant `sent` (in the past): the earlier of "now
    /// minus the tokio age" and the conversion with the newest sample taken at or before
    /// `sent`. `None` when the result would precede the clock's range.
    pub(crate) fn engine_time_of(&self, sent: Instant) -> Option<Instant> {
        let now = self.take_sample();
        let by_age = now
            .engine
            .checked_sub(now.tokio.saturating_duration_since(sent))?;
        let anchor = {
            let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
            samples
                .iter()
                .rev()
                .find(|s| s.tokio <= sent)
                .or_else(|| samples.front())
                .copied()
                .unwrap_or(now)
        };
        let by_anchor = anchor.engine_at(sent)?;
        Some(by_age.min(by_anchor))
    }
}

#[cfg(test)]
mod tests {
    use raftengine::sim::DriftClock;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_jump_after_the_send_does_not_make_it_recent() {
        let clock = Arc::new(DriftClock::new(Duration::from_secs(100), 1.0));
        let acks = AckClock::new(clock.clone());
        tokio::time::sleep(Duration::from_millis(10)).await;
        let sent = Instant::now();
        let sent_on_engine = clock.now();
        tokio::time::sleep(Duration::from_millis(10)).await;
        clock.advance(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(10)).await;
        let converted = acks.engine_time_of(sent).expect("in range");
        assert!(
            converted <= sent_on_engine,
            "{converted:?} > {sent_on_engine:?}"
        );
        assert!(sent_on_engine - converted < Duration::from_millis(11));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_jump_the_reading_is_the_send_time() {
        let clock = Arc::new(DriftClock::new(Duration::from_secs(5), 1.0));
        let acks = AckClock::new(clock.clone());
        tokio::time::sleep(Duration::from_millis(30)).await;
        let sent = Instant::now();
        let sent_on_engine = clock.now();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(acks.engine_time_of(sent), Some(sent_on_engine));
    }

    #[tokio::test(start_paused = true)]
    async fn a_drifting_clock_errs_early() {
        for rate in [0.9, 1.1] {
            let clock = Arc::new(DriftClock::new(Duration::ZERO, rate));
            let acks = AckClock::new(clock.clone());
            for _ in 0..50 {
                tokio::time::sleep(Duration::from_millis(3)).await;
                acks.sample();
            }
            let sent = Instant::now();
            let sent_on_engine = clock.now();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let converted = acks.engine_time_of(sent).expect("in range");
            assert!(
                converted <= sent_on_engine,
                "rate {rate}: {converted:?} later than the send {sent_on_engine:?}"
            );
        }
    }
}
