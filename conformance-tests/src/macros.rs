//! [`conformance_suite!`]: one `#[test]` per case per backend.

/// Stamps every case of the suite as its own `#[test]` inside `mod $module`, for backend type
/// `$backend` (which must implement [`crate::Backend`] and `Default`). Failures read
/// `$module::case_name`.
///
/// Each test builds a current-thread tokio runtime with the clock paused and runs the case
/// through [`crate::harness::run_case`]. Cases the backend cannot run are listed with a reason
/// and stamped `#[ignore = "reason"]`, so they show as ignored, never as passed; a case that
/// needs a capability the backend does not declare, and is not listed, fails with an
/// instruction to list it. Naming a case that does not exist is a compile error.
///
/// ```ignore
/// conformance_tests::conformance_suite!(raftrs, RaftRsBackend);
///
/// conformance_tests::conformance_suite!(openraft, OpenraftBackend, ignore {
///     snapshot_catch_up: "snapshot install not wired yet (issue 12)",
/// });
/// ```
///
/// Randomized cases read `SEED=<n>` (replay one seed) and `CONFORMANCE_SEEDS=<n>` (run more).
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $backend:ty $(,)?) => {
        $crate::conformance_suite!($module, $backend, ignore {});
    };
    ($module:ident, $backend:ty, ignore { $($case:ident : $reason:literal),* $(,)? } $(,)?) => {
        $crate::__conformance_suite!(($) $module, $backend, [$($case : $reason),*]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_suite {
    (($d:tt) $module:ident, $backend:ty, [$($case:ident : $reason:literal),*]) => {
        #[allow(unused_imports)]
        mod $module {
            use super::*;

            macro_rules! __stamp {
                $(
                    ($case) => {
                        #[test]
                        #[ignore = $reason]
                        fn $case() {
                            $crate::__private::run_case::<$backend, _, _>(
                                stringify!($case),
                                $crate::__private::needs(stringify!($case)),
                                <$backend as ::core::default::Default>::default(),
                                |h| async move { $crate::cases::$case(&h).await },
                            );
                        }
                    };
                )*
                ($d name:ident) => {
                    #[test]
                    fn $d name() {
                        $crate::__private::run_case::<$backend, _, _>(
                            stringify!($d name),
                            $crate::__private::needs(stringify!($d name)),
                            <$backend as ::core::default::Default>::default(),
                            |h| async move { $crate::cases::$d name(&h).await },
                        );
                    }
                };
            }

            /// Names listed as ignored must be cases of the suite (a typo is a compile error).
            #[allow(dead_code)]
            fn __ignored_cases_exist() {
                $( let _ = $crate::cases::$case::<$backend>; )*
            }

            /// Every case this module stamps, in order.
            #[allow(dead_code)]
            pub const CASES: &[&str] = &[
                "single_leader_per_term",
                "replicates_in_same_order",
                "propose_on_follower_is_not_leader",
                "propose_during_transfer_is_transfer_in_progress",
                "leadership_lost_mid_proposal",
                "not_applied_writes_leave_no_trace",
                "deposed_leader_never_serves_stale_reads",
                "leader_loss_fires_on_step_down",
                "leader_loss_fires_when_isolated",
                "leader_loss_fires_on_transfer",
                "leader_loss_fires_on_shutdown",
                "transfer_to_live_target",
                "transfer_to_dead_target",
                "transfer_to_isolated_target",
                "transfer_to_unknown_target_is_rejected",
                "transfer_to_learner_is_rejected",
                "membership_add_promote_remove",
                "membership_bad_requests",
                "snapshot_catch_up",
                "crash_restart_keeps_acked_writes",
                "no_call_hangs_past_deadline",
                "reads_see_acknowledged_writes",
                "read_right_after_election_is_not_stale",
                "quorum_ack_is_anchored_at_send_time",
                "random_partitions",
                "random_message_faults",
                "random_crashes",
                "random_transfers",
                "random_clock_drift",
                "random_snapshots",
                "random_membership_changes",
                "random_mixed",
                "checker_catches_unsafe_local_reads",
                "lease_conflict_storm_stays_warm",
                "lease_stops_on_minority_leader_before_new_leader",
                "no_lease_read_during_transfer",
                "no_lease_read_before_new_term_applied",
                "lease_resumes_after_aborted_transfer_only_on_fresh_ack",
                "lease_read_after_pause_is_not_stale",
                "restarted_node_cannot_elect_inside_live_lease",
                "checker_catches_lease_with_excess_drift",
            ];

            __stamp!(single_leader_per_term);
            __stamp!(replicates_in_same_order);
            __stamp!(propose_on_follower_is_not_leader);
            __stamp!(propose_during_transfer_is_transfer_in_progress);
            __stamp!(leadership_lost_mid_proposal);
            __stamp!(not_applied_writes_leave_no_trace);
            __stamp!(deposed_leader_never_serves_stale_reads);
            __stamp!(leader_loss_fires_on_step_down);
            __stamp!(leader_loss_fires_when_isolated);
            __stamp!(leader_loss_fires_on_transfer);
            __stamp!(leader_loss_fires_on_shutdown);
            __stamp!(transfer_to_live_target);
            __stamp!(transfer_to_dead_target);
            __stamp!(transfer_to_isolated_target);
            __stamp!(transfer_to_unknown_target_is_rejected);
            __stamp!(transfer_to_learner_is_rejected);
            __stamp!(membership_add_promote_remove);
            __stamp!(membership_bad_requests);
            __stamp!(snapshot_catch_up);
            __stamp!(crash_restart_keeps_acked_writes);
            __stamp!(no_call_hangs_past_deadline);
            __stamp!(reads_see_acknowledged_writes);
            __stamp!(read_right_after_election_is_not_stale);
            __stamp!(quorum_ack_is_anchored_at_send_time);
            __stamp!(random_partitions);
            __stamp!(random_message_faults);
            __stamp!(random_crashes);
            __stamp!(random_transfers);
            __stamp!(random_clock_drift);
            __stamp!(random_snapshots);
            __stamp!(random_membership_changes);
            __stamp!(random_mixed);
            __stamp!(checker_catches_unsafe_local_reads);
            __stamp!(lease_conflict_storm_stays_warm);
            __stamp!(lease_stops_on_minority_leader_before_new_leader);
            __stamp!(no_lease_read_during_transfer);
            __stamp!(no_lease_read_before_new_term_applied);
            __stamp!(lease_resumes_after_aborted_transfer_only_on_fresh_ack);
            __stamp!(lease_read_after_pause_is_not_stale);
            __stamp!(restarted_node_cannot_elect_inside_live_lease);
            __stamp!(checker_catches_lease_with_excess_drift);
        }
    };
}

/// Declares `$backend`, a [`crate::Backend`] that starts `$engine` through the family's
/// constructor convention, `start_with_clock(config, state_machine, store, transport, clock)`.
/// Capabilities default to all supported; pass `capabilities = <expr>` to state fewer.
///
/// ```ignore
/// conformance_tests::engine_backend!(RaftRs, "raftrs", raftengine_raftrs::RaftRsEngine);
/// conformance_tests::conformance_suite!(raftrs, RaftRs);
/// ```
#[macro_export]
macro_rules! engine_backend {
    ($backend:ident, $name:literal, $engine:path $(,)?) => {
        $crate::engine_backend!(
            $backend,
            $name,
            $engine,
            capabilities = ::raftengine::Capabilities {
                leadership_transfer: true,
                membership_change: true,
                snapshots: true,
                quorum_ack: true,
            }
        );
    };
    ($backend:ident, $name:literal, $engine:path, capabilities = $capabilities:expr $(,)?) => {
        #[derive(Debug, Default)]
        struct $backend;

        impl $crate::Backend for $backend {
            const NAME: &'static str = $name;

            fn capabilities(&self) -> ::raftengine::Capabilities {
                $capabilities
            }

            fn start(
                &self,
                config: ::raftengine::Config,
                state_machine: ::raftengine::SharedStateMachine<$crate::TestSm>,
                store: ::std::sync::Arc<dyn ::raftengine::LogStore>,
                transport: ::std::sync::Arc<dyn ::raftengine::Transport>,
                clock: ::std::sync::Arc<dyn ::raftengine::Clock>,
            ) -> $crate::BoxFuture<
                'static,
                ::raftengine::Result<::std::sync::Arc<dyn ::raftengine::Engine>>,
            > {
                ::std::boxed::Box::pin(async move {
                    let engine =
                        <$engine>::start_with_clock(config, state_machine, store, transport, clock)
                            .await?;
                    Ok(::std::sync::Arc::new(engine) as ::std::sync::Arc<dyn ::raftengine::Engine>)
                })
            }
        }
    };
}
