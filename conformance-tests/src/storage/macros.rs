//! [`log_store_suite!`](crate::log_store_suite): one `#[test]` per storage case per store.

/// Stamps every case of the storage suite as its own `#[test]` inside `mod $module`, for the
/// factory type `$factory` (which implements [`StoreFactory`](crate::storage::StoreFactory)).
/// Failures read `$module::case_name`.
///
/// ```ignore
/// conformance_tests::log_store_suite!(mem, MemFactory);
/// ```
#[macro_export]
macro_rules! log_store_suite {
    ($module:ident, $factory:ty $(,)?) => {
        #[allow(unused_imports)]
        mod $module {
            use super::*;

            $crate::__log_store_cases!(
                $factory;
                log::empty_log_edge_cases,
                log::append_and_read,
                log::reads_are_clamped_to_the_stored_log,
                log::conflicting_append_replaces_the_suffix,
                log::appending_at_the_end_keeps_the_prefix,
                log::a_gap_is_refused_and_changes_nothing,
                log::a_non_contiguous_batch_is_refused,
                log::truncate_removes_the_suffix,
                purge::purge_keeps_the_boundary_term,
                purge::entries_across_the_purge_point,
                purge::purge_with_the_wrong_term_is_refused,
                purge::purge_past_the_end_empties_the_log,
                purge::an_older_purge_changes_nothing,
                purge::appends_below_the_purge_point_are_refused,
                state::hard_state_is_replaced,
                state::snapshot_round_trip,
                state::an_older_local_snapshot_does_not_replace_a_newer_one,
                state::install_snapshot_keeps_a_matching_suffix,
                state::install_snapshot_drops_a_conflicting_log,
                state::install_snapshot_past_the_end,
                durability::reopen_keeps_everything,
                durability::reopen_an_empty_store,
                durability::large_entries,
                durability::many_small_batches_then_reopen,
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_store_cases {
    ($factory:ty; $($group:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let factory = <$factory as ::core::default::Default>::default();
                $crate::storage::$group::$case(&factory);
            }
        )*
    };
}
