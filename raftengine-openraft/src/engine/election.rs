//! The adapter's election timer.
//!
//! openraft campaigns once a timeout drawn from `[election_timeout_min, election_timeout_max)`
//! passed without a leader's message, while its followers refuse votes for a leader lease
//! hard-wired to `election_timeout_max`. So every campaign that starts before the maximum is
//! refused, and a leader's crash cost one to two timeouts more than the engine's timing says.
//! The adapter therefore turns openraft's timer off, sets openraft's lease to a refusal window
//! just under the shortest timeout (`settings::refusal_window_ms`), and campaigns itself here:
//! a pre-vote once a timeout drawn from the engine's `[election_timeout_min,
//! election_timeout_max)` passed without contact from a leader. Safety does not rest on this
//! timer: a voter still refuses any (pre-)vote inside its own lease, and openraft itself skips
//! a campaign while this node's lease is live.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use raftengine::Clock;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::types::Raft;

/// When this node last heard from a leader it accepted (or granted a vote), on the engine
/// clock: the start of its election timeout. Written by the inbound handler, read by the timer.
#[derive(Debug)]
pub(crate) struct LeaderContact {
    clock: Arc<dyn Clock>,
    last: Mutex<Instant>,
}

impl LeaderContact {
    /// Contact "now": a node starts its first timeout when it starts.
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        let last = Mutex::new(clock.now());
        Arc::new(Self { clock, last })
    }

    /// Records contact now.
    pub(crate) fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = self.clock.now();
    }

    fn last(&self) -> Instant {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The draws of one node's election timeouts.
#[derive(Debug)]
pub(crate) struct Timeouts {
    rng: ChaCha8Rng,
    min: Duration,
    max: Duration,
}

impl Timeouts {
    /// Timeouts in `[min, max)`, seeded by the engine's seed and the node id, so nodes that
    /// share a seed still draw different timeouts and a run replays for the same seeds.
    pub(crate) fn new(seed: u64, node: u64, min: Duration, max: Duration) -> Self {
        let mixed = seed ^ node.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            rng: ChaCha8Rng::seed_from_u64(mixed),
            min,
            max: max.max(min + Duration::from_millis(1)),
        }
    }

    fn draw(&mut self) -> Duration {
        self.rng.gen_range(self.min..self.max)
    }
}

/// Campaigns (with a pre-vote) each time a fresh timeout passes on the engine clock without
/// leader contact, until `stop` turns true or openraft's core stops.
///
/// The timeout runs on the engine clock, as the engine's timing is stated there (and as the
/// raft-rs driver ticks): the timer sleeps on tokio's clock in steps of at most `step` and
/// looks at the engine clock after each, so a clock that runs fast or jumps (a suspend)
/// brings the campaign forward. Each sleep is scaled by the engine clock's rate against
/// tokio's over the previous one, so the campaign lands when it is due rather than on the
/// step grid, where nodes that started together would campaign together and split the vote.
pub(crate) async fn run_election_timer(
    raft: Raft,
    contact: Arc<LeaderContact>,
    mut timeouts: Timeouts,
    step: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut rate = ClockRate::default();
    loop {
        // A fresh timeout for every contact, as a Raft follower redraws its timeout when it
        // hears from a new leader: after a crash each follower's wait is a new draw, and the
        // soonest of them decides the failover.
        let mut drawn_at = contact.last();
        let mut timeout = timeouts.draw();
        loop {
            let last = contact.last();
            if last != drawn_at {
                drawn_at = last;
                timeout = timeouts.draw();
            }
            let engine_before = contact.clock.now();
            let wait = (last + timeout).saturating_duration_since(engine_before);
            if wait.is_zero() {
                break;
            }
            let tokio_before = Instant::now();
            tokio::select! {
                () = tokio::time::sleep(rate.tokio_time(wait).min(step)) => {}
                changed = stop.changed() => if changed.is_err() { return },
            }
            if *stop.borrow() {
                return;
            }
            rate.observe(
                contact.clock.now().saturating_duration_since(engine_before),
                tokio_before.elapsed(),
            );
        }
        let leading = raft.metrics().borrow_watched().state == ServerState::Leader;
        // The next timeout runs from this campaign, as a candidate's does in Raft.
        contact.touch();
        if !leading && raft.trigger().elect(true).await.is_err() {
            return;
        }
    }
}

/// How fast the engine clock ran against tokio's over the timer's last sleep.
#[derive(Debug, Clone, Copy)]
struct ClockRate(f64);

impl Default for ClockRate {
    fn default() -> Self {
        Self(1.0)
    }
}

impl ClockRate {
    /// Bounds on the estimate, so one jump (a suspend) or a stalled clock cannot make the
    /// next sleep vanish or last forever; `step` caps it anyway.
    const RANGE: (f64, f64) = (0.01, 100.0);

    fn observe(&mut self, engine: Duration, tokio: Duration) {
        if !tokio.is_zero() {
            let rate = engine.as_secs_f64() / tokio.as_secs_f64();
            self.0 = rate.clamp(Self::RANGE.0, Self::RANGE.1);
        }
    }

    /// Tokio time for `engine` time to pass at this rate.
    fn tokio_time(self, engine: Duration) -> Duration {
        engine.div_f64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_stay_in_range_differ_per_node_and_replay_per_seed() {
        let (min, max) = (Duration::from_millis(300), Duration::from_millis(600));
        let draws = |seed, node| {
            let mut timeouts = Timeouts::new(seed, node, min, max);
            (0..200).map(|_| timeouts.draw()).collect::<Vec<_>>()
        };
        let one = draws(7, 1);
        assert!(one.iter().all(|t| (min..max).contains(t)));
        assert!(one.iter().any(|t| *t < Duration::from_millis(350)));
        assert!(one.iter().any(|t| *t > Duration::from_millis(550)));
        assert_eq!(one, draws(7, 1), "the same seed and node replay");
        assert_ne!(one, draws(7, 2), "nodes sharing a seed draw apart");
    }

    #[test]
    fn sleeps_scale_with_the_observed_clock_rate() {
        let ms = Duration::from_millis;
        let mut rate = ClockRate::default();
        assert_eq!(rate.tokio_time(ms(40)), ms(40));
        rate.observe(ms(50), ms(10));
        assert_eq!(
            rate.tokio_time(ms(40)),
            ms(8),
            "a clock at 5x needs a fifth"
        );
        rate.observe(ms(2), ms(10));
        assert_eq!(
            rate.tokio_time(ms(40)),
            ms(200),
            "a clock at 0.2x needs five times"
        );
        rate.observe(Duration::from_secs(3600), ms(10));
        assert!(rate.tokio_time(ms(40)) >= ms(40) / 100, "a jump is bounded");
        rate.observe(ms(5), Duration::ZERO);
        assert!(
            rate.tokio_time(ms(40)) > Duration::ZERO,
            "no sleep is unmeasured"
        );
    }
}
