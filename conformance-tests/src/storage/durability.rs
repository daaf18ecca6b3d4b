//! Close and reopen: nothing written before is lost, and large entries survive too.

use bytes::Bytes;

use super::{StoreFactory, assert_log, entries, entry, ok, snapshot};
use raftengine::LogEntry;

/// Entries, the purge point, the hard state and the snapshot all survive a reopen.
pub fn reopen_keeps_everything<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    ok(store.append(&entries(1, 10, 1)), "append 1..=10");
    ok(store.append(&entries(8, 12, 2)), "overwrite from 8");
    ok(store.truncate_from(12), "truncate from 12");
    ok(
        store.install_snapshot(snapshot(5, 1)),
        "install a snapshot at 5",
    );
    ok(
        store.save_hard_state(Bytes::from_static(b"term 2, vote 1")),
        "save hard state",
    );
    let state = ok(store.log_state(), "log_state");
    let log = ok(store.entries(state.first_index(), u64::MAX), "read the log");

    let store = factory.reopen(store);
    assert_eq!(ok(store.log_state(), "log_state after reopen"), state);
    assert_log(&*store, &log);
    let expected: Vec<_> = entries(6, 7, 1)
        .into_iter()
        .chain(entries(8, 11, 2))
        .collect();
    assert_eq!(log, expected);
    assert_eq!(ok(store.term(5), "term(5)"), Some(1));
    assert_eq!(
        ok(store.hard_state(), "hard_state after reopen"),
        Some(Bytes::from_static(b"term 2, vote 1"))
    );
    assert_eq!(
        ok(store.snapshot(), "snapshot after reopen"),
        Some(snapshot(5, 1))
    );

    ok(store.append(&[entry(12, 3)]), "append after reopen");
    let store = factory.reopen(store);
    assert_eq!(
        ok(store.entries(11, 13), "entries(11, 13)"),
        vec![entry(11, 2), entry(12, 3)]
    );
}

/// An empty store reopens empty.
pub fn reopen_an_empty_store<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    let store = factory.reopen(store);
    assert_log(&*store, &[]);
    assert_eq!(ok(store.hard_state(), "hard_state"), None);
    assert_eq!(ok(store.snapshot(), "snapshot"), None);
}

fn large(index: u64, size: usize) -> LogEntry {
    let payload: Vec<u8> = (0..size).map(|i| (i as u64 * 31 + index) as u8).collect();
    LogEntry {
        index,
        term: 1,
        payload: Bytes::from(payload),
    }
}

/// Entries of 16 MiB and more, and a large snapshot, round-trip before and after a reopen.
pub fn large_entries<F: StoreFactory>(factory: &F) {
    const MIB: usize = 1 << 20;
    let store = factory.open();
    let big = vec![large(1, 16 * MIB), large(2, 17 * MIB + 3)];
    ok(store.append(&big), "append two entries of 16+ MiB");
    ok(
        store.append(&[entry(3, 1)]),
        "append a small entry after them",
    );
    let mut snap = snapshot(2, 1);
    snap.data = Bytes::from(vec![7u8; 20 * MIB]);
    ok(store.save_snapshot(snap.clone()), "save a 20 MiB snapshot");
    let check = |store: &dyn raftengine::LogStore| {
        let got = ok(store.entries(1, 4), "read the large entries");
        assert_eq!(got.len(), 3);
        assert!(got[..2] == big[..], "a large entry came back different");
        assert_eq!(got[2], entry(3, 1));
        assert!(
            ok(store.snapshot(), "snapshot") == Some(snap.clone()),
            "the large snapshot differs"
        );
    };
    check(&*store);
    let store = factory.reopen(store);
    check(&*store);
}

/// Hundreds of single-entry appends and hard-state saves, then a reopen.
pub fn many_small_batches_then_reopen<F: StoreFactory>(factory: &F) {
    let store = factory.open();
    for index in 1..=300u64 {
        ok(store.append(&[entry(index, 1 + index / 100)]), "append one");
        if index % 10 == 0 {
            ok(
                store.save_hard_state(Bytes::from(format!("commit {index}"))),
                "save hard state",
            );
        }
    }
    let expected: Vec<_> = (1..=300).map(|i| entry(i, 1 + i / 100)).collect();
    let store = factory.reopen(store);
    assert_log(&*store, &expected);
    assert_eq!(
        ok(store.hard_state(), "hard_state"),
        Some(Bytes::from("commit 300"))
    );
}
