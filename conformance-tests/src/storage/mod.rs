//! The storage suite: the [`LogStore`] contract as plain functions over a [`StoreFactory`],
//! stamped per store by [`log_store_suite!`](crate::log_store_suite).
//!
//! A database author who writes a `LogStore` over their own engine adds `conformance-tests` as
//! a dev-dependency, implements [`StoreFactory`] (open a fresh store; close and reopen it) and
//! stamps every case with one macro call:
//!
//! ```ignore
//! // tests/storage_mine.rs
//! use std::sync::Arc;
//! use conformance_tests::storage::StoreFactory;
//! use raftengine::LogStore;
//!
//! #[derive(Default)]
//! struct Mine(tempfile::TempDir);
//!
//! impl StoreFactory for Mine {
//!     fn open(&self) -> Arc<dyn LogStore> {
//!         Arc::new(my_store::open(self.0.path()).expect("open"))
//!     }
//!     fn reopen(&self, store: Arc<dyn LogStore>) -> Arc<dyn LogStore> {
//!         drop(store); // the last handle: the store closes its files
//!         self.open()
//!     }
//! }
//!
//! conformance_tests::log_store_suite!(mine, Mine);
//! ```
//!
//! Every case becomes its own `#[test]` (`mine::conflicting_append_replaces_the_suffix`) with a
//! fresh factory from `Default`. A case fails by panicking with what the store did wrong.
//!
//! - [`log`]: append, reads, the conflict rule, gaps, truncation, empty-log edge cases.
//! - [`purge`]: the purge point and reads across it.
//! - [`state`]: hard state, local snapshots, installing a leader's snapshot.
//! - [`durability`]: close/reopen keeps everything, large entries.

pub mod durability;
pub mod log;
mod macros;
pub mod purge;
pub mod state;

use std::sync::Arc;

use bytes::Bytes;
use raftengine::{ErrorKind, LogEntry, LogStore, SnapshotMeta, StoredSnapshot};

/// Makes the store under test. One factory is built (through `Default`) per stamped case.
pub trait StoreFactory: Default {
    /// A fresh, empty store. Called once per case, before any `reopen`.
    fn open(&self) -> Arc<dyn LogStore>;

    /// Closes `store` and opens the same store again, as a process restart would. `store` is
    /// the caller's last handle: dropping it must release the files. An in-memory store
    /// returns a handle that shares the old one's state.
    fn reopen(&self, store: Arc<dyn LogStore>) -> Arc<dyn LogStore>;
}

/// The entry the suite writes at `index` in `term`; its payload names both, so a store that
/// returns the wrong entry is caught by comparing payloads.
pub fn entry(index: u64, term: u64) -> LogEntry {
    LogEntry {
        index,
        term,
        payload: Bytes::from(format!("entry {index} of term {term}")),
    }
}

/// Entries `from..=to`, all in `term`.
pub fn entries(from: u64, to: u64, term: u64) -> Vec<LogEntry> {
    (from..=to).map(|index| entry(index, term)).collect()
}

/// A snapshot ending at `(last_index, last_term)` with recognisable membership and data.
pub fn snapshot(last_index: u64, last_term: u64) -> StoredSnapshot {
    StoredSnapshot {
        meta: SnapshotMeta {
            last_index,
            last_term,
            membership: Bytes::from(format!("members at {last_index}")),
        },
        data: Bytes::from(format!("state at {last_index}@{last_term}")),
    }
}

/// Unwraps a store call, failing the case with what was being done.
#[track_caller]
pub fn ok<T>(result: raftengine::Result<T>, doing: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{doing}: the store failed: {err}"),
    }
}

/// Asserts that a store call was refused with a storage error.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(result: raftengine::Result<T>, doing: &str) {
    match result {
        Ok(value) => panic!("{doing}: the store accepted it (returned {value:?})"),
        Err(err) => assert_eq!(
            err.kind(),
            &ErrorKind::Storage,
            "{doing}: refused with the wrong kind: {err}"
        ),
    }
}

/// Asserts the whole readable log is exactly `expected` (and nothing follows it).
#[track_caller]
pub fn assert_log(store: &dyn LogStore, expected: &[LogEntry]) {
    let state = ok(store.log_state(), "log_state");
    let first = state.first_index();
    let got = ok(store.entries(first, u64::MAX), "read the whole log");
    assert_eq!(
        got, expected,
        "the stored log differs (log state {state:?})"
    );
    let last = expected.last().map(|e| (e.index, e.term)).or(state.purged);
    assert_eq!(state.last, last, "log_state().last is wrong");
    for e in expected {
        assert_eq!(
            ok(store.term(e.index), "term"),
            Some(e.term),
            "term({}) is wrong",
            e.index
        );
    }
    let after = state.last_index() + 1;
    assert_eq!(
        ok(store.term(after), "term"),
        None,
        "term({after}) past the end"
    );
}
