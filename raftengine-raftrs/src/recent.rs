//! The newest log entries, kept decoded in memory.
//!
//! raft-rs reads back what it just appended: committed entries to apply, entries to replicate,
//! terms to match. Without this cache every such read goes to the [`raftengine::LogStore`]
//! (a lock and a decode on memory, a read transaction on disk). The cache holds the suffix of
//! the log the driver wrote last, follows the same conflict rule as the store, and never holds
//! an entry the store has purged, so whatever it answers is what the store would answer.

use std::collections::VecDeque;

use raft::eraftpb::Entry;

/// At most this many entries are kept ...
const MAX_ENTRIES: usize = 8192;
/// ... and at most about this many bytes of entry data.
const MAX_BYTES: usize = 8 << 20;

/// A contiguous run of the newest entries.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    entries: VecDeque<Entry>,
    bytes: usize,
}

fn weight(entry: &Entry) -> usize {
    entry.data.len() + entry.context.len() + 32
}

impl Recent {
    /// Takes entries just written: they replace everything from their first index on, as in
    /// the store. A batch that does not continue or overlap the cached run starts a new run.
    pub(crate) fn append(&mut self, batch: &[Entry]) {
        let Some(first) = batch.first() else {
            return;
        };
        match self.first() {
            Some(front) if first.index >= front && first.index <= front + self.len() => {
                self.truncate_from(first.index);
            }
            _ => self.clear(),
        }
        for entry in batch {
            self.bytes += weight(entry);
            self.entries.push_back(entry.clone());
        }
        while self.entries.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            let Some(dropped) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= weight(&dropped);
        }
    }

    /// Forgets every entry with index ≥ `index`.
    pub(crate) fn truncate_from(&mut self, index: u64) {
        let Some(front) = self.first() else {
            return;
        };
        let keep = usize::try_from(index.saturating_sub(front)).unwrap_or(usize::MAX);
        while self.entries.len() > keep {
            if let Some(dropped) = self.entries.pop_back() {
                self.bytes -= weight(&dropped);
            }
        }
    }

    /// Forgets every entry with index ≤ `index` (the store purged them).
    pub(crate) fn purge_to(&mut self, index: u64) {
        while self.entries.front().is_some_and(|e| e.index <= index) {
            if let Some(dropped) = self.entries.pop_front() {
                self.bytes -= weight(&dropped);
            }
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Index of the oldest cached entry.
    pub(crate) fn first(&self) -> Option<u64> {
        self.entries.front().map(|e| e.index)
    }

    /// Index of the newest cached entry: the end of the log whenever the cache is not empty.
    pub(crate) fn last(&self) -> Option<u64> {
        self.entries.back().map(|e| e.index)
    }

    /// The cached entry at `index`.
    pub(crate) fn get(&self, index: u64) -> Option<&Entry> {
        let front = self.first()?;
        let at = usize::try_from(index.checked_sub(front)?).ok()?;
        self.entries.get(at)
    }

    /// Whether every entry in `low..high` is cached.
    pub(crate) fn covers(&self, low: u64, high: u64) -> bool {
        match self.first() {
            Some(front) => low >= front && high <= front + self.len(),
            None => low >= high,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entries::entry;

    fn terms(recent: &Recent) -> Vec<(u64, u64)> {
        recent.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn follows_the_conflict_rule_purges_and_gaps() {
        let mut recent = Recent::default();
        recent.append(&[entry(5, 1), entry(6, 1), entry(7, 1)]);
        recent.append(&[entry(8, 1)]);
        assert_eq!(terms(&recent), [(5, 1), (6, 1), (7, 1), (8, 1)]);
        // An overlapping batch replaces the suffix from its first index.
        recent.append(&[entry(6, 2)]);
        assert_eq!(terms(&recent), [(5, 1), (6, 2)]);
        assert_eq!(recent.last(), Some(6));
        assert!(recent.covers(5, 7));
        assert!(!recent.covers(4, 6));
        assert!(!recent.covers(5, 8));
        assert_eq!(recent.get(6).map(|e| e.term), Some(2));
        assert!(recent.get(4).is_none() && recent.get(7).is_none());
        recent.purge_to(5);
        assert_eq!(terms(&recent), [(6, 2)]);
        // A batch that leaves a gap, or starts before the run, starts a new run.
        recent.append(&[entry(9, 2)]);
        assert_eq!(terms(&recent), [(9, 2)]);
        recent.append(&[entry(3, 3)]);
        assert_eq!(terms(&recent), [(3, 3)]);
        recent.truncate_from(3);
        assert!(recent.first().is_none());
        assert!(recent.covers(4, 4));
    }

    #[test]
    fn stays_within_its_budget() {
        let mut recent = Recent::default();
        let big = Entry {
            data: vec![0u8; MAX_BYTES / 4].into(),
            ..entry(1, 1)
        };
        for index in 1..=10 {
            recent.append(&[Entry {
                index,
                ..big.clone()
            }]);
        }
        assert!(recent.bytes <= MAX_BYTES);
        assert_eq!(recent.entries.back().map(|e| e.index), Some(10));
        let batch: Vec<Entry> = (11..=MAX_ENTRIES as u64 + 20)
            .map(|i| entry(i, 1))
            .collect();
        recent.append(&batch);
        assert_eq!(recent.entries.len(), MAX_ENTRIES);
        assert_eq!(recent.first(), Some(21));
    }
}
