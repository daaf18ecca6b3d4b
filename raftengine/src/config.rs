//! The configuration both adapters take, in backend-neutral terms.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::NodeId;
use crate::error::{Error, RejectReason, Result};

/// Settings shared by every backend. Build with [`Config::new`] and adjust fields; adapters call
/// [`Config::validate`] before starting.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// This node's id (non-zero).
    pub node_id: NodeId,
    /// Voters of a brand-new cluster. Empty for a node that joins an existing cluster as a
    /// learner. Ignored when the log store already holds state.
    pub initial_voters: BTreeSet<NodeId>,
    /// Leader heartbeat interval.
    pub heartbeat_interval: Duration,
    /// Smallest randomized election timeout.
    pub election_timeout_min: Duration,
    /// Largest randomized election timeout.
    pub election_timeout_max: Duration,
    /// Assumed bound on the clock-rate difference between any two nodes (0.01 = 1%): over an
    /// interval that one node measures as `t`, another measures between `t × (1 − d)` and
    /// `t × (1 + d)`.
    pub max_clock_drift: f64,
    /// Default deadline for proposals, reads, membership changes and snapshots.
    pub request_timeout: Duration,
    /// Deadline for one network round trip between two nodes.
    pub rpc_timeout: Duration,
    /// Largest accepted command, in bytes.
    pub max_command_bytes: usize,
    /// Largest amount of proposed-but-uncommitted data before proposals get `Busy`.
    pub max_uncommitted_bytes: usize,
    /// Build a snapshot (and compact the log) after this many applied entries; 0 disables.
    pub snapshot_after_entries: u64,
    /// Seed for any randomness inside the engine (election jitter where the backend allows it).
    pub seed: u64,
}

impl Config {
    /// Defaults suited to an in-process or LAN cluster: 50 ms heartbeats, 300–600 ms
    /// election timeouts, 1% drift bound, 5 s request deadline.
    pub fn new(node_id: NodeId, initial_voters: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            node_id,
            initial_voters: initial_voters.into_iter().collect(),
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(600),
            max_clock_drift: 0.01,
            request_timeout: Duration::from_secs(5),
            rpc_timeout: Duration::from_millis(250),
            max_command_bytes: 4 << 20,
            max_uncommitted_bytes: 64 << 20,
            snapshot_after_entries: 10_000,
            seed: node_id,
        }
    }

    /// Checks the settings are consistent; the error names the offending setting.
    pub fn validate(&self) -> Result<()> {
        let invalid = |what: &str| Err(Error::rejected(RejectReason::InvalidConfig(what.into())));
        if self.node_id == 0 {
            return invalid("node_id must be non-zero");
        }
        if self.initial_voters.contains(&0) {
            return invalid("initial_voters must not contain node 0");
        }
        if self.heartbeat_interval.is_zero() {
            return invalid("heartbeat_interval must be positive");
        }
        if self.election_timeout_min < self.heartbeat_interval * 3 {
            return invalid("election_timeout_min must be at least three heartbeat intervals");
        }
        if self.election_timeout_max <= self.election_timeout_min {
            return invalid("election_timeout_max must exceed election_timeout_min");
        }
        if !(0.0..0.5).contains(&self.max_clock_drift) {
            return invalid("max_clock_drift must be in [0, 0.5)");
        }
        if self.request_timeout.is_zero() || self.rpc_timeout.is_zero() {
            return invalid("request_timeout and rpc_timeout must be positive");
        }
        if self.max_command_bytes == 0 || self.max_uncommitted_bytes < self.max_command_bytes {
            return invalid("max_uncommitted_bytes must be at least max_command_bytes (> 0)");
        }
        Ok(())
    }

    /// Rejects a command larger than [`Config::max_command_bytes`].
    pub fn check_command_size(&self, size: usize) -> Result<()> {
        if size > self.max_command_bytes {
            return Err(Error::rejected(RejectReason::TooLarge {
                size,
                limit: self.max_command_bytes,
            }));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn defaults_are_valid() {
        Config::new(1, [1, 2, 3]).validate().unwrap();
    }

    #[test]
    fn bad_settings_are_named() {
        let mut config = Config::new(1, [1, 2, 3]);
        config.election_timeout_max = config.election_timeout_min;
        let err = config.validate().unwrap_err();
        assert!(matches!(
            err.kind(),
            ErrorKind::Rejected(RejectReason::InvalidConfig(_))
        ));
        assert!(err.to_string().contains("election_timeout_max"), "{err}");

        let zero = Config::new(0, [1]);
        assert!(zero.validate().unwrap_err().to_string().contains("node_id"));
    }

    #[test]
    fn oversized_command_is_rejected_with_sizes() {
        let mut config = Config::new(1, [1]);
        config.max_command_bytes = 8;
        assert!(config.check_command_size(8).is_ok());
        let err = config.check_command_size(9).unwrap_err();
        assert_eq!(
            err.kind(),
            &ErrorKind::Rejected(RejectReason::TooLarge { size: 9, limit: 8 })
        );
    }
}
