//! Plumbing of the suite that needs no engine: the stamping macro from a downstream crate's
//! point of view, the ignore list, capability gaps, and how a backend that cannot start is
//! reported. The real backends are stamped in `tests/openraft.rs` and `tests/raftrs.rs`.

use std::sync::Arc;

use conformance_tests::harness::{Needs, run_case};
use conformance_tests::{Backend, BoxFuture, ClusterSpec, Harness, TestSm, conformance_suite};
use raftengine::{
    Capabilities, Clock, Config, Engine, Error, ErrorKind, LogStore, SharedStateMachine, Transport,
};

/// A backend that declares nothing and cannot start an engine.
#[derive(Debug, Default)]
struct NoEngine;

impl Backend for NoEngine {
    const NAME: &'static str = "no-engine";

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            leadership_transfer: false,
            membership_change: false,
            snapshots: false,
            quorum_ack: false,
        }
    }

    fn start(
        &self,
        _config: Config,
        _state_machine: SharedStateMachine<TestSm>,
        _store: Arc<dyn LogStore>,
        _transport: Arc<dyn Transport>,
        _clock: Arc<dyn Clock>,
    ) -> BoxFuture<'static, raftengine::Result<Arc<dyn Engine>>> {
        Box::pin(async { Err(Error::new(ErrorKind::Unsupported).with_context("no engine here")) })
    }
}

// Every case stamped, every one ignored with a reason: this shows the macro expands in a
// downstream crate and that ignored cases report as ignored.
conformance_suite!(
    no_engine,
    NoEngine,
    ignore {
        single_leader_per_term: "plumbing test: no engine",
        replicates_in_same_order: "plumbing test: no engine",
        propose_on_follower_is_not_leader: "plumbing test: no engine",
        propose_during_transfer_is_transfer_in_progress: "plumbing test: no engine",
        leadership_lost_mid_proposal: "plumbing test: no engine",
        not_applied_writes_leave_no_trace: "plumbing test: no engine",
        deposed_leader_never_serves_stale_reads: "plumbing test: no engine",
        leader_loss_fires_on_step_down: "plumbing test: no engine",
        leader_loss_fires_when_isolated: "plumbing test: no engine",
        leader_loss_fires_on_transfer: "plumbing test: no engine",
        leader_loss_fires_on_shutdown: "plumbing test: no engine",
        transfer_to_live_target: "plumbing test: no engine",
        transfer_to_dead_target: "plumbing test: no engine",
        transfer_to_isolated_target: "plumbing test: no engine",
        transfer_to_unknown_target_is_rejected: "plumbing test: no engine",
        transfer_to_learner_is_rejected: "plumbing test: no engine",
        membership_add_promote_remove: "plumbing test: no engine",
        membership_bad_requests: "plumbing test: no engine",
        snapshot_catch_up: "plumbing test: no engine",
        crash_restart_keeps_acked_writes: "plumbing test: no engine",
        no_call_hangs_past_deadline: "plumbing test: no engine",
        reads_see_acknowledged_writes: "plumbing test: no engine",
        read_right_after_election_is_not_stale: "plumbing test: no engine",
        quorum_ack_is_anchored_at_send_time: "plumbing test: no engine",
        random_partitions: "plumbing test: no engine",
        random_message_faults: "plumbing test: no engine",
        random_crashes: "plumbing test: no engine",
        random_transfers: "plumbing test: no engine",
        random_clock_drift: "plumbing test: no engine",
        random_snapshots: "plumbing test: no engine",
        random_membership_changes: "plumbing test: no engine",
        random_mixed: "plumbing test: no engine",
        checker_catches_unsafe_local_reads: "plumbing test: no engine",
        lease_conflict_storm_stays_warm: "plumbing test: no engine",
        lease_stops_on_minority_leader_before_new_leader: "plumbing test: no engine",
        no_lease_read_during_transfer: "plumbing test: no engine",
        no_lease_read_before_new_term_applied: "plumbing test: no engine",
        lease_resumes_after_aborted_transfer_only_on_fresh_ack: "plumbing test: no engine",
        lease_read_after_pause_is_not_stale: "plumbing test: no engine",
        restarted_node_cannot_elect_inside_live_lease: "plumbing test: no engine",
        checker_catches_lease_with_excess_drift: "plumbing test: no engine",
    }
);

#[test]
fn the_macro_stamps_exactly_the_listed_cases() {
    let listed: Vec<&str> = conformance_tests::cases::ALL
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(no_engine::CASES, listed.as_slice());
    for name in no_engine::CASES {
        assert!(conformance_tests::cases::needs(name).is_some(), "{name}");
    }
}

#[test]
#[should_panic(expected = "no-engine failed to start node 1")]
fn a_backend_that_cannot_start_fails_the_case_with_its_error() {
    run_case("start_failure", Needs::NOTHING, NoEngine, |h| async move {
        h.cluster(3).await?;
        Ok(())
    });
}

#[test]
#[should_panic(expected = "needs [\"leadership_transfer\"]")]
fn a_capability_gap_fails_loudly_unless_listed_as_ignored() {
    run_case("gap", Needs::TRANSFER, NoEngine, |_h| async move { Ok(()) });
}

#[test]
#[should_panic(expected = "replay with SEED=")]
fn a_failing_case_names_its_seed() {
    run_case("seeded", Needs::NOTHING, NoEngine, |h| async move {
        h.cluster_with(ClusterSpec::new(1), h.seed()).await?;
        Ok(())
    });
}

#[test]
fn cases_run_on_paused_virtual_time() {
    run_case(
        "virtual_time",
        Needs::NOTHING,
        NoEngine,
        |h: Harness<NoEngine>| async move {
            let wall = std::time::Instant::now();
            let start = tokio::time::Instant::now();
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            assert!(start.elapsed() >= std::time::Duration::from_secs(3600));
            assert!(wall.elapsed() < std::time::Duration::from_secs(5));
            assert_eq!(h.case(), "virtual_time");
            Ok(())
        },
    );
}
