//! The purge point: what a purged log still knows, and reads across it.

use super::{StoreFactory, assert_log, entries, entry, ok, refused};

/// Purging drops the prefix but remembers the last purged entry's term.
pub fn purge_keeps_the_boundary_term<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 5, 1)), "append 1..=5");
    ok(store.purge_to(3, 1), "purge to 3");
    let state = ok(store.log_state(), "log_state");
    assert_eq!(state.purged, Some((3, 1)));
    assert_eq!(state.first_index(), 4);
    assert_eq!(state.last, Some((5, 1)));
    assert_eq!(
        ok(store.term(3), "term(3)"),
        Some(1),
        "the purge point's term"
    );
    assert_eq!(ok(store.term(2), "term(2)"), None, "a purged entry's term");
    assert_log(&*store, &entries(4, 5, 1));
}

/// Reads that start before the purge point fail; reads from the first kept entry work.
pub fn entries_across_the_purge_point<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 10, 1)), "append 1..=10");
    ok(store.purge_to(4, 1), "purge to 4");
    refused(store.entries(2, 8), "entries(2, 8) across the purge point");
    refused(
        store.entries(4, 6),
        "entries(4, 6) starting at the purge point",
    );
    assert_eq!(ok(store.entries(5, 8), "entries(5, 8)"), entries(5, 7, 1));
    assert!(ok(store.entries(3, 3), "an empty range below the purge point").is_empty());
}

/// A purge that names the wrong term for a stored entry is refused.
pub fn purge_with_the_wrong_term_is_refused<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 5, 2)), "append 1..=5");
    refused(
        store.purge_to(3, 1),
        "purge to 3 with term 1 (the log has 2)",
    );
    assert_eq!(ok(store.log_state(), "log_state").purged, None);
    assert_log(&*store, &entries(1, 5, 2));
}

/// Purging past the last entry empties the log; the next append continues after the point.
pub fn purge_past_the_end_empties_the_log<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 3, 1)), "append 1..=3");
    ok(store.purge_to(7, 2), "purge to 7");
    let state = ok(store.log_state(), "log_state");
    assert_eq!(state.purged, Some((7, 2)));
    assert_eq!(
        state.last,
        Some((7, 2)),
        "an empty log's last is its purge point"
    );
    assert_log(&*store, &[]);
    refused(
        store.append(&[entry(9, 2)]),
        "append at 9 after the purge point 7",
    );
    ok(
        store.append(&[entry(8, 2)]),
        "append at 8 after the purge point 7",
    );
    assert_log(&*store, &[entry(8, 2)]);
}

/// A purge to an index already purged changes nothing.
pub fn an_older_purge_changes_nothing<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 6, 1)), "append 1..=6");
    ok(store.purge_to(4, 1), "purge to 4");
    ok(store.purge_to(2, 1), "purge to 2 after 4");
    ok(store.purge_to(4, 1), "purge to 4 again");
    assert_eq!(ok(store.log_state(), "log_state").purged, Some((4, 1)));
    assert_log(&*store, &entries(5, 6, 1));
}

/// The purged prefix cannot be rewritten by an append.
pub fn appends_below_the_purge_point_are_refused<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 6, 1)), "append 1..=6");
    ok(store.purge_to(4, 1), "purge to 4");
    refused(
        store.append(&entries(3, 7, 2)),
        "append from 3 below purge point 4",
    );
    refused(
        store.truncate_from(3),
        "truncate from 3 below purge point 4",
    );
    assert_log(&*store, &entries(5, 6, 1));
    ok(
        store.append(&entries(5, 5, 2)),
        "overwrite from the first kept entry",
    );
    assert_log(&*store, &[entry(5, 2)]);
}
