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
/// - heartbeat and election timeouts are taken as whole milliseconds;
/// - `snapshot_after_entries` becomes `SnapshotPolicy::LogsSinceLast` (0 = `Never`);
/// - the log is purged right up to a snapshot (`max_in_snapshot_log_to_keep = 0`), so a
///   follower that lags behind a snapshot catches up by installing it.
pub(crate) fn openraft_config(config: &Config) -> Result<openraft::Config, Error> {
    let snapshot_policy = match config.snapshot_after_entries {
        0 => openraft::SnapshotPolicy::Never,
        n => openraft::SnapshotPolicy::LogsSinceLast(n),
    };
    let native = openraft::Config {
        cluster_name: "raftengine".to_string(),
        heartbeat_interval: millis(config.heartbeat_interval),
        election_timeout_min: millis(config.election_timeout_min),
        election_timeout_max: millis(config.election_timeout_max),
        install_snapshot_timeout: millis(config.rpc_timeout),
        snapshot_policy,
        max_in_snapshot_log_to_keep: 0,
        ..openraft::Config::default()
    };
    native
        .validate()
        .map_err(|e| Error::rejected(RejectReason::InvalidConfig(e.to_string())))
}

/// Timing facts of a node running `native`.
///
/// openraft's followers refuse votes for one leader lease after the last AppendEntries from
/// the leader, and the lease is hard-wired to `election_timeout_max`; that is the
/// vote-refusal window (transfer elections excepted, and restarts covered by the adapter, see
/// `network::InboundHandler`).
pub(crate) fn timing(native: &openraft::Config, max_clock_drift: f64) -> Timing {
    Timing {
        heartbeat_interval: Duration::from_millis(native.heartbeat_interval),
        election_timeout_min: Duration::from_millis(native.election_timeout_min),
        election_timeout_max: Duration::from_millis(native.election_timeout_max),
        vote_refusal_window: Duration::from_millis(native.election_timeout_max),
        max_clock_drift,
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
        assert_eq!(native.election_timeout_min, 300);
        assert_eq!(native.election_timeout_max, 600);
        assert_eq!(native.snapshot_policy, openraft::SnapshotPolicy::Never);
        config.snapshot_after_entries = 7;
        let native = openraft_config(&config).unwrap();
        assert_eq!(
            native.snapshot_policy,
            openraft::SnapshotPolicy::LogsSinceLast(7)
        );
        let timing = timing(&native, 0.01);
        assert_eq!(timing.vote_refusal_window, Duration::from_millis(600));
        assert_eq!(timing.election_timeout_max, Duration::from_millis(600));
    }
}
