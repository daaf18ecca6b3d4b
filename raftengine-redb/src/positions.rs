//! Every group's log positions (purge point and last entry) kept in memory, so `log_state` and
//! the term lookups a Raft library makes on every message are answered without a read
//! transaction. The `LogStore` contract expects reads to be served from memory; a redb read
//! transaction per call cost a third of a node's CPU under load.
//!
//! The writer thread publishes what each committed batch left, before it answers the batch's
//! callers, so a caller always reads its own writes. A reader that finds nothing cached reads
//! the file and fills the gap only if the writer has not published since: the writer's value
//! always wins, so a reader's older view can never replace it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use raftengine::LogState;

/// The cached positions of every group touched or read since the file was opened.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    groups: Mutex<HashMap<u64, LogState>>,
}

impl Positions {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, LogState>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached positions of `group`, if any.
    pub(crate) fn get(&self, group: u64) -> Option<LogState> {
        self.lock().get(&group).copied()
    }

    /// Keeps what a reader read from the file, unless the writer published first.
    pub(crate) fn fill(&self, group: u64, state: LogState) {
        self.lock().entry(group).or_insert(state);
    }

    /// Replaces the positions of the groups a committed batch changed.
    pub(crate) fn publish(&self, states: impl IntoIterator<Item = (u64, LogState)>) {
        let mut groups = self.lock();
        for (group, state) in states {
            groups.insert(group, state);
        }
    }
}

/// The answer to "term of the entry at `index`" when the positions alone decide it: the purge
/// point, the last entry, and anything outside them. `None` means the entry table must be read.
pub(crate) fn known_term(state: &LogState, index: u64) -> Option<Option<u64>> {
    if let Some((purged, term)) = state.purged {
        if index == purged {
            return Some(Some(term));
        }
        if index < purged {
            return Some(None);
        }
    }
    match state.last {
        None => Some(None),
        Some((last, term)) if index == last => Some(Some(term)),
        Some((last, _)) if index > last => Some(None),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(purged: Option<(u64, u64)>, last: Option<(u64, u64)>) -> LogState {
        LogState { purged, last }
    }

    #[test]
    fn the_writer_wins_over_an_older_read() {
        let positions = Positions::default();
        let old = state(None, Some((5, 1)));
        let new = state(None, Some((6, 2)));
        positions.publish([(1, new)]);
        positions.fill(1, old);
        assert_eq!(positions.get(1), Some(new));
        positions.fill(2, old);
        positions.publish([(2, new)]);
        assert_eq!(positions.get(2), Some(new));
        assert_eq!(positions.get(3), None);
    }

    #[test]
    fn terms_known_from_positions_alone() {
        let s = state(Some((10, 3)), Some((20, 4)));
        assert_eq!(known_term(&s, 10), Some(Some(3)));
        assert_eq!(known_term(&s, 9), Some(None));
        assert_eq!(known_term(&s, 20), Some(Some(4)));
        assert_eq!(known_term(&s, 21), Some(None));
        assert_eq!(known_term(&s, 15), None);
        assert_eq!(known_term(&state(None, None), 1), Some(None));
        // An empty log after a purge: `last` falls back to the purge point.
        let purged_only = state(Some((7, 2)), Some((7, 2)));
        assert_eq!(known_term(&purged_only, 7), Some(Some(2)));
        assert_eq!(known_term(&purged_only, 8), Some(None));
    }
}
