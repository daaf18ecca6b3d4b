//! Converting the shared [`Config`]'s durations into raft-rs ticks, and back into the honest
//! [`Timing`] this backend guarantees.
//!
//! One tick is `heartbeat_interval / HEARTBEAT_TICKS` (at least 1 ms), so the leader heartbeats
//! every `HEARTBEAT_TICKS` ticks. The election timeout range is rounded **down** to whole ticks.
//! Ticks follow the engine's [`raftengine::Clock`], so a drifting test clock drifts elections too.

use std::time::Duration;

use raftengine::{Config, Timing};

/// Ticks per heartbeat interval.
pub(crate) const HEARTBEAT_TICKS: usize = 5;

/// Tick settings derived from a [`Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticks {
    /// Length of one tick.
    pub(crate) tick: Duration,
    /// raft-rs `heartbeat_tick`.
    pub(crate) heartbeat: usize,
    /// raft-rs `election_tick` (= `min_election_tick`).
    pub(crate) election: usize,
    /// raft-rs `max_election_tick` (exclusive upper bound of the randomized timeout).
    pub(crate) max_election: usize,
}

impl Ticks {
    /// Derives ticks from a validated config.
    pub(crate) fn from_config(config: &Config) -> Self {
        let tick =
            (config.heartbeat_interval / HEARTBEAT_TICKS as u32).max(Duration::from_millis(1));
        let ticks_in = |d: Duration| (d.as_nanos() / tick.as_nanos()).max(1) as usize;
        let heartbeat = ticks_in(config.heartbeat_interval).max(1);
        // At least three ticks, so the vote-refusal window (one tick shorter) is never empty.
        let election = ticks_in(config.election_timeout_min)
            .max(heartbeat + 1)
            .max(3);
        let max_election = ticks_in(config.election_timeout_max).max(election + 1);
        Self {
            tick,
            heartbeat,
            election,
            max_election,
        }
    }

    /// The (non-randomized) election timeout raft-rs uses for check-quorum and vote refusal.
    pub(crate) fn election_timeout(&self) -> Duration {
        self.tick * self.election as u32
    }

    /// The timing facts this backend guarantees.
    ///
    /// `vote_refusal_window`: with check-quorum, a follower refuses (pre-)votes while
    /// `election_elapsed < election_tick`; `election_elapsed` restarts at 0 when it hears from
    /// the leader and then counts ticks, so the vote is refused until its `election_tick`-th
    /// tick after the message. The driver samples its clock after collecting a batch of
    /// messages, applies a due tick before handling them, and never schedules the next tick
    /// less than a tick after the grid point it just applied. So the first tick that counts
    /// comes after that sample (and after the message arrived), every later one at least a
    /// tick after the previous: the window is `(election_tick - 1)` whole ticks from arrival,
    /// however late the driver wakes.
    pub(crate) fn timing(&self, config: &Config) -> Timing {
        Timing {
            heartbeat_interval: self.tick * self.heartbeat as u32,
            election_timeout_min: self.election_timeout(),
            election_timeout_max: self.tick * self.max_election as u32,
            vote_refusal_window: self.tick * (self.election as u32).saturating_sub(1),
            max_clock_drift: config.max_clock_drift,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_give_ten_millisecond_ticks() {
        let config = Config::new(1, [1, 2, 3]);
        let ticks = Ticks::from_config(&config);
        assert_eq!(ticks.tick, Duration::from_millis(10));
        assert_eq!(ticks.heartbeat, 5);
        assert_eq!(ticks.election, 30);
        assert_eq!(ticks.max_election, 60);
        let timing = ticks.timing(&config);
        assert_eq!(timing.vote_refusal_window, Duration::from_millis(290));
        assert!(timing.vote_refusal_window < timing.election_timeout_min);
        assert!(timing.election_timeout_max <= config.election_timeout_max);
    }
}
