//! Hard state, snapshots built locally, and snapshots installed from a leader.

use bytes::Bytes;

use super::{StoreFactory, assert_log, entries, entry, ok, snapshot};

/// The hard state is a single slot: each save replaces the previous one.
pub fn hard_state_is_replaced<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(
        store.save_hard_state(Bytes::from_static(b"term 1, vote 2")),
        "save hard state",
    );
    assert_eq!(
        ok(store.hard_state(), "hard_state"),
        Some(Bytes::from_static(b"term 1, vote 2"))
    );
    ok(
        store.save_hard_state(Bytes::from_static(b"term 2")),
        "save hard state again",
    );
    assert_eq!(
        ok(store.hard_state(), "hard_state"),
        Some(Bytes::from_static(b"term 2"))
    );
    ok(
        store.save_hard_state(Bytes::new()),
        "save an empty hard state",
    );
    assert_eq!(ok(store.hard_state(), "hard_state"), Some(Bytes::new()));
}

/// A local snapshot comes back byte for byte and leaves the log alone.
pub fn snapshot_round_trip<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 5, 1)), "append 1..=5");
    ok(store.save_snapshot(snapshot(4, 1)), "save a snapshot at 4");
    assert_eq!(ok(store.snapshot(), "snapshot"), Some(snapshot(4, 1)));
    assert_log(&*store, &entries(1, 5, 1));
    assert_eq!(ok(store.log_state(), "log_state").purged, None);
    ok(
        store.save_snapshot(snapshot(5, 1)),
        "save a newer snapshot at 5",
    );
    assert_eq!(ok(store.snapshot(), "snapshot"), Some(snapshot(5, 1)));
}

/// Saving an older local snapshot keeps the newer one.
pub fn an_older_local_snapshot_does_not_replace_a_newer_one<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 9, 1)), "append 1..=9");
    ok(store.save_snapshot(snapshot(8, 1)), "save a snapshot at 8");
    ok(
        store.save_snapshot(snapshot(3, 1)),
        "save an older snapshot at 3",
    );
    assert_eq!(ok(store.snapshot(), "snapshot"), Some(snapshot(8, 1)));
}

/// Installing a snapshot the log agrees with drops the covered prefix and keeps the suffix.
pub fn install_snapshot_keeps_a_matching_suffix<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 6, 1)), "append 1..=6");
    ok(
        store.install_snapshot(snapshot(4, 1)),
        "install a snapshot at 4@1",
    );
    let state = ok(store.log_state(), "log_state");
    assert_eq!(state.purged, Some((4, 1)));
    assert_log(&*store, &entries(5, 6, 1));
    assert_eq!(ok(store.snapshot(), "snapshot"), Some(snapshot(4, 1)));
}

/// Installing a snapshot whose last entry the log does not have (or has in another term)
/// discards the whole log.
pub fn install_snapshot_drops_a_conflicting_log<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 6, 1)), "append 1..=6");
    ok(
        store.install_snapshot(snapshot(4, 2)),
        "install a snapshot at 4@2",
    );
    let state = ok(store.log_state(), "log_state");
    assert_eq!(state.purged, Some((4, 2)));
    assert_eq!(state.last, Some((4, 2)));
    assert_log(&*store, &[]);
    assert_eq!(
        ok(store.term(5), "term(5)"),
        None,
        "entry 5 of the old term survived"
    );
    ok(store.append(&[entry(5, 2)]), "append after the snapshot");
    assert_log(&*store, &[entry(5, 2)]);
}

/// A snapshot beyond the end of the log replaces it entirely.
pub fn install_snapshot_past_the_end<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 3, 1)), "append 1..=3");
    ok(
        store.install_snapshot(snapshot(9, 3)),
        "install a snapshot at 9@3",
    );
    let state = ok(store.log_state(), "log_state");
    assert_eq!(state.purged, Some((9, 3)));
    assert_eq!(state.last, Some((9, 3)));
    assert_eq!(state.first_index(), 10);
    assert_log(&*store, &[]);
    assert_eq!(ok(store.snapshot(), "snapshot"), Some(snapshot(9, 3)));
    ok(store.append(&[entry(10, 3)]), "append after the snapshot");
    assert_log(&*store, &[entry(10, 3)]);
}
