//! The shared [`raftengine::Config`] translated to openraft's `Config`, and the timing facts
//! that follow from it.

use std::time::Duration;

use raftengine::{Config, Error, RejectReason, Timing};

/// Whole milliseconds (openraft's unit), at least 1.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// openraft's configuration for `config`.
///
/// - the heartbeat is taken as whole milliseconds;
/// - openraft's own election timer is off (`enable_elect = false`): the adapter campaigns
///   itself, after a timeout drawn from the engine's `[election_timeout_min,
///   election_timeout_max)` (see `engine::election`);
/// - an unreachable peer is retried once per heartbeat (openraft's `backoff`);
/// - openraft's `election_timeout_max` is the vote-refusal window instead, because openraft
///   hard-wires its leader lease, during which followers refuse votes, to that value; it sits
///   just under the engine's shortest election timeout ([`refusal_window_ms`]);
/// - `snapshot_after_entries` becomes `SnapshotPolicy::LogsSinceLast` (0 = `Never`);
/// - the log is purged right up to a snapshot (`max_in_snapshot_log_to_keep = 0`), so a
///   follower that lags behind a snapshot catches up by installing it.
pub(crate) fn openraft_config(config: &Config) -> Result<openraft::Config, Error> {
    let snapshot_policy = match config.snapshot_after_entries {
        0 => openraft::SnapshotPolicy::Never,
        n => openraft::SnapshotPolicy::LogsSinceLast(n),
    };
    let heartbeat = millis(config.heartbeat_interval);
    let lease = refusal_window_ms(config);
    let native = openraft::Config {
        cluster_name: "raftengine".to_string(),
        heartbeat_interval: heartbeat,
        // Only bounds vote RPCs now that openraft's timer is off; it must lie between the
        // heartbeat and the lease for openraft to accept the config.
        election_timeout_min: lease.saturating_sub(1).max(heartbeat + 1),
        election_timeout_max: lease,
        enable_elect: false,
        // openraft retries an unreachable peer every 200 ms by default, so a follower that
        // restarted lagged that long behind, and could be the first to campaign after a crash
        // and be refused for its short log. Retrying once per heartbeat is what the
        // heartbeats cost anyway.
        backoff: format!("{heartbeat}ms"),
        install_snapshot_timeout: millis(config.rpc_timeout),
        snapshot_policy,
        max_in_snapshot_log_to_keep: 0,
        ..openraft::Config::default()
    };
    native
        .validate()
        .map_err(|e| Error::rejected(RejectReason::InvalidConfig(e.to_string())))
}

/// openraft's leader lease, in milliseconds: the shortest election timeout less a fifth of a
/// heartbeat (at least 1 ms). With a refusal window under every election timeout, the first
/// follower to campaign after a leader's crash finds every other follower's window ended, as
/// on raft-rs; with openraft's own `election_timeout_max` as the lease, every campaign before
/// that maximum was refused and failover took one to two timeouts longer.
pub(crate) fn refusal_window_ms(config: &Config) -> u64 {
    let margin = (millis(config.heartbeat_interval) / 5).max(1);
    millis(config.election_timeout_min).saturating_sub(margin)
}

/// Timing facts of a node started with `config` and running `native`.
///
/// openraft's followers refuse votes for one leader lease after the last AppendEntries from
/// the leader, and the lease is hard-wired to its `election_timeout_max`; that is the
/// vote-refusal window (transfer elections excepted, and restarts covered by the adapter, see
/// `network::InboundHandler`). Elections follow the engine's own timeouts.
pub(crate) fn timing(config: &Config, native: &openraft::Config) -> Timing {
    Timing {
        heartbeat_interval: Duration::from_millis(native.heartbeat_interval),
        election_timeout_min: Duration::from_millis(millis(config.election_timeout_min)),
        election_timeout_max: Duration::from_millis(millis(config.election_timeout_max)),
        vote_refusal_window: Duration::from_millis(native.election_timeout_max),
        max_clock_drift: config.max_clock_drift,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_maps_timeouts_and_snapshot_policy() {
        let mut config = Config::new(1, [1, 2, 3]);
        config.snapshot_after_entries = 0;
        let native = openraft_config(&config).unwrap();
        assert_eq!(native.heartbeat_interval, 50);
        assert!(!native.enable_elect, "the adapter runs the election timer");
        assert_eq!(
            native.backoff, "50ms",
            "a restarted peer is retried every heartbeat"
        );
        assert_eq!(
            native.election_timeout_max, 290,
            "the lease is the refusal window"
        );
        assert!(native.election_timeout_min > native.heartbeat_interval);
        assert!(native.election_timeout_min < native.election_timeout_max);
        assert_eq!(native.snapshot_policy, openraft::SnapshotPolicy::Never);
        config.snapshot_after_entries = 7;
        let native = openraft_config(&config).unwrap();
        assert_eq!(
            native.snapshot_policy,
            openraft::SnapshotPolicy::LogsSinceLast(7)
        );
        let timing = timing(&config, &native);
        assert_eq!(timing.vote_refusal_window, Duration::from_millis(290));
        assert_eq!(timing.election_timeout_min, Duration::from_millis(300));
        assert_eq!(timing.election_timeout_max, Duration::from_millis(600));
        assert_eq!(timing.max_clock_drift, config.max_clock_drift);
    }

    #[test]
    fn the_refusal_window_ends_before_any_election_timeout() {
        for (heartbeat, min) in [(50, 300), (10, 30), (1, 3), (100, 1000)] {
            let mut config = Config::new(1, [1, 2, 3]);
            config.heartbeat_interval = Duration::from_millis(heartbeat);
            config.election_timeout_min = Duration::from_millis(min);
            config.election_timeout_max = Duration::from_millis(min * 2);
            let window = refusal_window_ms(&config);
            assert!(
                window < min && window > heartbeat,
                "{heartbeat}/{min}: {window}"
            );
        }
    }
}
