//! Raft log entries for the unit tests of the log-holding modules.

use raft::eraftpb::Entry;

/// An empty entry at `index` in `term`.
pub(crate) fn entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        ..Default::default()
    }
}

/// An entry at `index` in `term` carrying `data`.
pub(crate) fn entry_with(index: u64, term: u64, data: &[u8]) -> Entry {
    Entry {
        data: data.to_vec().into(),
        ..entry(index, term)
    }
}
