//! Appending and reading: the conflict rule, gaps, truncation and the empty log.

use raftengine::LogState;

use super::{StoreFactory, assert_log, entries, entry, ok, refused};

/// A fresh store is empty in every view, and no-op requests on it succeed.
pub fn empty_log_edge_cases<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    assert_eq!(ok(store.log_state(), "log_state"), LogState::default());
    assert_eq!(ok(store.log_state(), "log_state").first_index(), 1);
    assert_eq!(ok(store.log_state(), "log_state").last_index(), 0);
    assert!(ok(store.entries(1, 10), "entries(1, 10)").is_empty());
    assert!(ok(store.entries(5, 3), "entries(5, 3)").is_empty());
    assert!(ok(store.entries(1, 1), "entries(1, 1)").is_empty());
    assert_eq!(ok(store.term(0), "term(0)"), None);
    assert_eq!(ok(store.term(1), "term(1)"), None);
    assert_eq!(ok(store.hard_state(), "hard_state"), None);
    assert_eq!(ok(store.snapshot(), "snapshot"), None);
    ok(store.append(&[]), "an empty append");
    ok(store.truncate_from(1), "truncating an empty log");
    assert_log(&*store, &[]);
    refused(store.append(&[entry(2, 1)]), "a first entry at index 2");
    ok(store.append(&[entry(1, 1)]), "a first entry at index 1");
    assert_log(&*store, &[entry(1, 1)]);
}

/// Entries come back exactly as written, in any sub-range.
pub fn append_and_read<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 3, 1)), "append 1..=3");
    ok(store.append(&entries(4, 6, 2)), "append 4..=6");
    let all: Vec<_> = entries(1, 3, 1)
        .into_iter()
        .chain(entries(4, 6, 2))
        .collect();
    assert_log(&*store, &all);
    assert_eq!(ok(store.entries(2, 5), "entries(2, 5)"), all[1..4].to_vec());
    assert_eq!(ok(store.entries(6, 7), "entries(6, 7)"), vec![entry(6, 2)]);
    assert_eq!(ok(store.term(3), "term(3)"), Some(1));
    assert_eq!(ok(store.term(4), "term(4)"), Some(2));
}

/// Asking past the last entry returns what exists, not an error.
pub fn reads_are_clamped_to_the_stored_log<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 4, 1)), "append 1..=4");
    assert_eq!(
        ok(store.entries(3, 100), "entries(3, 100)"),
        entries(3, 4, 1)
    );
    assert!(ok(store.entries(5, 100), "entries(5, 100)").is_empty());
    assert!(ok(store.entries(50, 100), "entries(50, 100)").is_empty());
    assert_eq!(ok(store.term(5), "term(5)"), None);
}

/// Raft's conflict rule: an append that starts inside the log replaces everything from there.
pub fn conflicting_append_replaces_the_suffix<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 6, 1)), "append 1..=6");
    ok(
        store.append(&entries(3, 4, 2)),
        "overwrite from 3 with 3..=4 of term 2",
    );
    let expected: Vec<_> = entries(1, 2, 1)
        .into_iter()
        .chain(entries(3, 4, 2))
        .collect();
    assert_log(&*store, &expected);
    assert!(
        ok(store.entries(5, 7), "entries(5, 7)").is_empty(),
        "entries 5 and 6 of the old term survived the overwrite"
    );
    ok(
        store.append(&entries(1, 1, 3)),
        "overwrite from the very first entry",
    );
    assert_log(&*store, &[entry(1, 3)]);
}

/// An append right after the last entry keeps everything before it.
pub fn appending_at_the_end_keeps_the_prefix<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    for index in 1..=20 {
        ok(store.append(&[entry(index, 1 + index / 7)]), "append one");
    }
    let expected: Vec<_> = (1..=20).map(|i| entry(i, 1 + i / 7)).collect();
    assert_log(&*store, &expected);
}

/// An append that would leave a hole is refused and leaves the log untouched.
pub fn a_gap_is_refused_and_changes_nothing<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 3, 1)), "append 1..=3");
    refused(store.append(&entries(5, 6, 1)), "append 5..=6 after 3");
    assert_log(&*store, &entries(1, 3, 1));
    ok(store.append(&entries(4, 4, 1)), "append 4 after 3");
    assert_log(&*store, &entries(1, 4, 1));
}

/// A batch whose indexes are not consecutive is refused as a whole.
pub fn a_non_contiguous_batch_is_refused<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 2, 1)), "append 1..=2");
    refused(
        store.append(&[entry(3, 1), entry(5, 1)]),
        "a batch with indexes 3 and 5",
    );
    refused(
        store.append(&[entry(3, 1), entry(3, 1)]),
        "a batch with index 3 twice",
    );
    assert_log(&*store, &entries(1, 2, 1));
}

/// `truncate_from(i)` removes `i` and everything after it, and appends continue from `i`.
pub fn truncate_removes_the_suffix<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 8, 1)), "append 1..=8");
    ok(store.truncate_from(6), "truncate from 6");
    assert_log(&*store, &entries(1, 5, 1));
    ok(store.truncate_from(20), "truncate past the end");
    assert_log(&*store, &entries(1, 5, 1));
    ok(
        store.append(&entries(6, 7, 2)),
        "append 6..=7 after the truncation",
    );
    let expected: Vec<_> = entries(1, 5, 1)
        .into_iter()
        .chain(entries(6, 7, 2))
        .collect();
    assert_log(&*store, &expected);
    ok(store.truncate_from(1), "truncate everything");
    assert_log(&*store, &[]);
}
