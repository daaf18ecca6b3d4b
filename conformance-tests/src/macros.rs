//! [`conformance_suite!`]: one `#[test]` per case per backend, generated from the suite's one
//! case list ([`__suite_cases!`]).

/// Stamps every case of the suite as its own `#[test]` inside `mod $module`, for backend type
/// `$backend` (which must implement [`crate::Backend`] and `Default`). Failures read
/// `$module::case_name`; the transfer and lease cases run a second time on two threads and the
/// real clock, as `$module::multi_thread::case_name`.
///
/// Each test builds a fresh runtime and runs the case through [`crate::harness::run_case_on`].
/// Cases the backend cannot run are listed with a reason and stamped `#[ignore = "reason"]`, so
/// they show as ignored, never as passed; a case that needs a capability the backend does not
/// declare, and is not listed, fails with an instruction to list it. Naming a case that does
/// not exist is a compile error. `ignore_all = "reason"` stamps every case as ignored (for
/// testing the stamping itself).
///
/// ```ignore
/// conformance_tests::conformance_suite!(raftrs, RaftRsBackend);
///
/// conformance_tests::conformance_suite!(mine, MyBackend, ignore {
///     snapshot_catch_up: "snapshot install is not implemented yet",
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
        $crate::__suite_cases!(__stamp_suite { ($) $module, $backend, [$($case : $reason),*], [] });
    };
    ($module:ident, $backend:ty, ignore_all = $reason:literal $(,)?) => {
        $crate::__suite_cases!(__stamp_suite { ($) $module, $backend, [], [$reason] });
    };
}

/// The suite's one case list: `module::case [capabilities it needs] multi_thread?;`. Hands
/// the list to `$callback` (a macro of this crate) after `{ $args }`. Everything that names
/// the cases (the re-exports and [`crate::cases::ALL`], the stamped tests, the plumbing checks)
/// is generated from here, so a case is listed exactly once; a case function left out of the
/// list is never re-exported and fails the build as dead code.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_cases {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! { { $($args)* }
            contract::single_leader_per_term [];
            contract::replicates_in_same_order [];
            contract::propose_on_follower_is_not_leader [];
            contract::propose_during_transfer_is_transfer_in_progress [LEADERSHIP_TRANSFER];
            contract::leadership_lost_mid_proposal [];
            contract::not_applied_writes_leave_no_trace [];
            contract::deposed_leader_never_serves_stale_reads [];
            contract::leader_loss_fires_on_step_down [];
            contract::leader_loss_fires_when_isolated [];
            contract::leader_loss_fires_on_transfer [LEADERSHIP_TRANSFER];
            contract::leader_loss_fires_on_shutdown [];
            contract::transfer_to_live_target [LEADERSHIP_TRANSFER] multi_thread;
            contract::transfer_to_dead_target [LEADERSHIP_TRANSFER];
            contract::transfer_to_isolated_target [LEADERSHIP_TRANSFER];
            contract::transfer_to_unknown_target_is_rejected [LEADERSHIP_TRANSFER];
            contract::transfer_to_learner_is_rejected [LEADERSHIP_TRANSFER, MEMBERSHIP_CHANGE];
            contract::membership_add_promote_remove [MEMBERSHIP_CHANGE];
            contract::membership_bad_requests [MEMBERSHIP_CHANGE];
            contract::snapshot_catch_up [SNAPSHOTS];
            contract::crash_restart_keeps_acked_writes [];
            contract::no_call_hangs_past_deadline [];
            contract::reads_see_acknowledged_writes [];
            contract::read_right_after_election_is_not_stale [];
            failover::failover_fits_the_election_timeout [];
            contract_rules::leadership_watch_ignores_log_progress [];
            contract::read_right_after_full_restart_is_not_stale [];
            contract::quorum_ack_is_anchored_at_send_time [QUORUM_ACK];
            contract::quorum_ack_is_on_the_engine_clock [QUORUM_ACK];
            contract::quorum_ack_is_not_refreshed_by_a_clock_jump [QUORUM_ACK];
            contract::transfer_without_target_picks_an_up_to_date_voter [LEADERSHIP_TRANSFER];
            contract::snapshot_policy_builds_snapshots [SNAPSHOTS];
            contract_rules::oversized_command_is_rejected_too_large [];
            contract_rules::state_machine_panic_is_fatal [];
            contract_rules::dropped_engine_stops_like_a_crash [];
            contract_rules::a_failing_store_stops_the_node [];
            contract_rules::restart_right_after_drop_rejoins [];
            contract_rules::shutdown_fails_waiters_and_is_idempotent [];
            contract_rules::unsupported_operations_are_unsupported [];
            outcomes::overwritten_entry_is_not_reported_not_applied [];
            outcomes::interrupted_membership_change_does_not_wedge [MEMBERSHIP_CHANGE];
            backpressure::flooding_a_slow_leader_gets_busy [];
            faults::random_partitions [];
            faults::random_message_faults [];
            faults::random_crashes [];
            faults::random_transfers [LEADERSHIP_TRANSFER];
            faults::random_clock_drift [];
            faults::random_snapshots [SNAPSHOTS];
            faults::random_membership_changes [MEMBERSHIP_CHANGE];
            faults::random_mixed [];
            faults::checker_catches_unsafe_local_reads [];
            lease::lease_conflict_storm_stays_warm [];
            lease::lease_stops_on_minority_leader_before_new_leader [] multi_thread;
            lease::no_lease_read_during_transfer [LEADERSHIP_TRANSFER] multi_thread;
            lease::no_lease_read_before_new_term_applied [];
            lease::no_lease_read_behind_a_full_restart [SNAPSHOTS];
            lease::no_lease_for_rest_of_term_after_aborted_transfer [LEADERSHIP_TRANSFER, QUORUM_ACK];
            lease::lease_read_after_pause_is_not_stale [];
            lease::restarted_node_cannot_elect_inside_live_lease [QUORUM_ACK];
            lease::checker_catches_lease_with_excess_drift [];
            transfer_safety::no_stale_lease_read_after_aborted_transfer [LEADERSHIP_TRANSFER] multi_thread;
            transfer_safety::abandoned_transfer_leaves_no_transfer_behind [LEADERSHIP_TRANSFER] multi_thread;
            single_voter::single_voter_lease_renews_from_acks [QUORUM_ACK] multi_thread;
            lease_bound::lease_ends_before_the_earliest_new_leader_commits [QUORUM_ACK];
            replay::a_seed_replays_the_same_schedule [];
        }
    };
}

/// Expands to its body when the flag token is present (used with `$($flag)?`).
#[doc(hidden)]
#[macro_export]
macro_rules! __if_flag {
    ($flag:ident, $($body:tt)*) => {
        $($body)*
    };
}

/// The re-exports and tables of [`crate::cases`], from [`__suite_cases!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __case_index {
    ({} $( $m:ident :: $name:ident [$($need:ident),*] $($mt:ident)? ;)*) => {
        $( pub use $m::$name; )*

        /// Every case, with what it needs from the backend, in the order the macro stamps them.
        pub const ALL: &[(&str, $crate::__private::Capabilities)] = &[
            $( (
                stringify!($name),
                $crate::__private::Capabilities::NONE
                    $(.and($crate::__private::Capabilities::$need))*,
            ), )*
        ];

        /// The cases [`crate::conformance_suite!`] also stamps on a two-thread runtime with the
        /// real clock (as `multi_thread::case`): leadership transfers and leases, where a status
        /// published a moment late, or an acknowledgement that postdates a reader's clock
        /// sample, shows only when readers and engines really run in parallel.
        pub const MULTI_THREAD: &[&str] = &[
            $( $( $crate::__if_flag!($mt, stringify!($name)), )? )*
        ];
    };
}

/// One `#[test]` per case (and per multi-threaded case), from [`__suite_cases!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __stamp_suite {
    (
        { ($d:tt) $module:ident, $backend:ty, [$($case:ident : $reason:literal),*],
          [$($all_reason:literal)?] }
        $( $m:ident :: $name:ident [$($need:ident),*] $($mt:ident)? ;)*
    ) => {
        #[allow(unused_imports)]
        mod $module {
            use super::*;

            macro_rules! __stamp {
                $(
                    ($d runtime:ident, $case) => {
                        #[test]
                        #[ignore = $reason]
                        fn $case() {
                            $crate::__private::run_case_on::<$backend, _, _>(
                                $crate::__private::CaseRuntime::$d runtime,
                                stringify!($case),
                                $crate::__private::needs(stringify!($case)),
                                <$backend as ::core::default::Default>::default(),
                                |h| async move { $crate::cases::$case(&h).await },
                            );
                        }
                    };
                )*
                ($d runtime:ident, $d name:ident) => {
                    #[test]
                    $( #[ignore = $all_reason] )?
                    fn $d name() {
                        $crate::__private::run_case_on::<$backend, _, _>(
                            $crate::__private::CaseRuntime::$d runtime,
                            stringify!($d name),
                            $crate::__private::needs(stringify!($d name)),
                            <$backend as ::core::default::Default>::default(),
                            |h| async move { $crate::cases::$d name(&h).await },
                        );
                    }
                };
            }

            /// Every case this module stamps, in order.
            #[allow(dead_code)]
            pub const CASES: &[&str] = &[ $( stringify!($name), )* ];

            $( __stamp!(Paused, $name); )*

            /// The transfer and lease cases again, on two threads and the real clock.
            pub mod multi_thread {
                use super::*;

                /// Every case this module stamps, in order.
                #[allow(dead_code)]
                pub const CASES: &[&str] = &[
                    $( $( $crate::__if_flag!($mt, stringify!($name)), )? )*
                ];

                $( $( $crate::__if_flag!($mt, __stamp!(MultiThread, $name);); )? )*
            }

            /// Names listed as ignored must be cases of the suite (a typo is a compile error).
            #[allow(dead_code)]
            fn __ignored_cases_exist() {
                $( let _ = $crate::cases::$case::<$backend>; )*
            }
        }
    };
}

/// Declares `$backend`, a [`crate::Backend`] that starts `$engine` through its
/// [`raftengine::StartEngine`] implementation.
/// Capabilities default to all supported; pass `capabilities = <expr>` to state fewer.
///
/// ```no_run
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
            capabilities = ::raftengine::Capabilities::ALL
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
                parts: ::raftengine::EngineParts<$crate::TestSm>,
            ) -> $crate::BoxFuture<
                'static,
                ::raftengine::Result<::std::sync::Arc<dyn ::raftengine::Engine>>,
            > {
                ::std::boxed::Box::pin(async move {
                    let engine = <$engine as ::raftengine::StartEngine>::start(parts).await?;
                    Ok(::std::sync::Arc::new(engine) as ::std::sync::Arc<dyn ::raftengine::Engine>)
                })
            }
        }
    };
}
