//! The cases. Each is a plain `pub async fn case<B: Backend>(h: &Harness<B>) -> Result<(),
//! Failure>` that builds its own cluster through the harness, so a backend author can also call
//! one directly. [`ALL`] lists every case with the capabilities it needs; the
//! [`crate::conformance_suite!`] macro stamps exactly these.
//!
//! - [`contract`]: deterministic cases, one behaviour of the `Engine` contract each.
//! - [`faults`]: randomized fault schedules checked for linearizability and convergence.
//! - [`lease`]: `kv-lease` lease reads over the backend's engines, and the lease negative test.
//! - [`workload`]: the recording clients the randomized cases run.

pub mod contract;
pub mod faults;
pub mod lease;
pub mod workload;

pub use contract::{
    crash_restart_keeps_acked_writes, deposed_leader_never_serves_stale_reads,
    leader_loss_fires_on_shutdown, leader_loss_fires_on_step_down, leader_loss_fires_on_transfer,
    leader_loss_fires_when_isolated, leadership_lost_mid_proposal, membership_add_promote_remove,
    membership_bad_requests, no_call_hangs_past_deadline, not_applied_writes_leave_no_trace,
    propose_during_transfer_is_transfer_in_progress, propose_on_follower_is_not_leader,
    quorum_ack_is_anchored_at_send_time, read_right_after_election_is_not_stale,
    reads_see_acknowledged_writes, replicates_in_same_order, single_leader_per_term,
    snapshot_catch_up, transfer_to_dead_target, transfer_to_isolated_target,
    transfer_to_learner_is_rejected, transfer_to_live_target,
    transfer_to_unknown_target_is_rejected,
};
pub use faults::{
    checker_catches_unsafe_local_reads, random_clock_drift, random_crashes,
    random_membership_changes, random_message_faults, random_mixed, random_partitions,
    random_snapshots, random_transfers,
};
pub use lease::{
    checker_catches_lease_with_excess_drift, lease_conflict_storm_stays_warm,
    lease_read_after_pause_is_not_stale, lease_resumes_after_aborted_transfer_only_on_fresh_ack,
    lease_stops_on_minority_leader_before_new_leader, no_lease_read_before_new_term_applied,
    no_lease_read_during_transfer, restarted_node_cannot_elect_inside_live_lease,
};

use crate::harness::Needs;

/// Every case, with what it needs from the backend, in the order the macro stamps them.
pub const ALL: &[(&str, Needs)] = &[
    ("single_leader_per_term", Needs::NOTHING),
    ("replicates_in_same_order", Needs::NOTHING),
    ("propose_on_follower_is_not_leader", Needs::NOTHING),
    (
        "propose_during_transfer_is_transfer_in_progress",
        Needs::TRANSFER,
    ),
    ("leadership_lost_mid_proposal", Needs::NOTHING),
    ("not_applied_writes_leave_no_trace", Needs::NOTHING),
    ("deposed_leader_never_serves_stale_reads", Needs::NOTHING),
    ("leader_loss_fires_on_step_down", Needs::NOTHING),
    ("leader_loss_fires_when_isolated", Needs::NOTHING),
    ("leader_loss_fires_on_transfer", Needs::TRANSFER),
    ("leader_loss_fires_on_shutdown", Needs::NOTHING),
    ("transfer_to_live_target", Needs::TRANSFER),
    ("transfer_to_dead_target", Needs::TRANSFER),
    ("transfer_to_isolated_target", Needs::TRANSFER),
    ("transfer_to_unknown_target_is_rejected", Needs::TRANSFER),
    (
        "transfer_to_learner_is_rejected",
        Needs::TRANSFER.and(Needs::MEMBERSHIP),
    ),
    ("membership_add_promote_remove", Needs::MEMBERSHIP),
    ("membership_bad_requests", Needs::MEMBERSHIP),
    ("snapshot_catch_up", Needs::SNAPSHOTS),
    ("crash_restart_keeps_acked_writes", Needs::NOTHING),
    ("no_call_hangs_past_deadline", Needs::NOTHING),
    ("reads_see_acknowledged_writes", Needs::NOTHING),
    ("read_right_after_election_is_not_stale", Needs::NOTHING),
    ("quorum_ack_is_anchored_at_send_time", Needs::QUORUM_ACK),
    ("random_partitions", Needs::NOTHING),
    ("random_message_faults", Needs::NOTHING),
    ("random_crashes", Needs::NOTHING),
    ("random_transfers", Needs::TRANSFER),
    ("random_clock_drift", Needs::NOTHING),
    ("random_snapshots", Needs::SNAPSHOTS),
    ("random_membership_changes", Needs::MEMBERSHIP),
    ("random_mixed", Needs::NOTHING),
    ("checker_catches_unsafe_local_reads", Needs::NOTHING),
    ("lease_conflict_storm_stays_warm", Needs::NOTHING),
    (
        "lease_stops_on_minority_leader_before_new_leader",
        Needs::NOTHING,
    ),
    ("no_lease_read_during_transfer", Needs::TRANSFER),
    ("no_lease_read_before_new_term_applied", Needs::NOTHING),
    (
        "lease_resumes_after_aborted_transfer_only_on_fresh_ack",
        Needs::TRANSFER.and(Needs::QUORUM_ACK),
    ),
    ("lease_read_after_pause_is_not_stale", Needs::NOTHING),
    (
        "restarted_node_cannot_elect_inside_live_lease",
        Needs::QUORUM_ACK,
    ),
    ("checker_catches_lease_with_excess_drift", Needs::NOTHING),
];

/// The capabilities case `name` needs, if it is a case of the suite.
pub fn needs(name: &str) -> Option<Needs> {
    ALL.iter()
        .find(|(case, _)| *case == name)
        .map(|(_, needs)| *needs)
}
