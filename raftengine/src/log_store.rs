//! The persistence contract both adapters write through, in backend-neutral terms, and an
//! in-memory implementation that can outlive an engine (that is how tests crash and restart).
//!
//! Entries carry opaque payloads: each adapter encodes its own entry shape. Because there is one
//! store contract, crash/restart and corruption handling are written and tested once.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};

/// One log entry: position, term and the adapter's encoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Log index (first entry is 1).
    pub index: u64,
    /// Term the entry was created in.
    pub term: u64,
    /// Adapter-encoded entry body.
    pub payload: Bytes,
}

/// Where a snapshot ends, plus the adapter's encoded membership as of that point.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// Last log index covered.
    pub last_index: u64,
    /// Term of that entry.
    pub last_term: u64,
    /// Adapter-encoded membership at `last_index`.
    pub membership: Bytes,
}

/// A persisted snapshot: metadata and the state machine's serialized state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// Position and membership.
    pub meta: SnapshotMeta,
    /// Output of `StateMachine::snapshot`.
    pub data: Bytes,
}

/// The shape of the stored log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogState {
    /// `(index, term)` of the last entry removed by purge or snapshot install, if any.
    pub purged: Option<(u64, u64)>,
    /// `(index, term)` of the last entry, falling back to `purged` when the log is empty.
    pub last: Option<(u64, u64)>,
}

impl LogState {
    /// Index of the first entry that can be present.
    pub fn first_index(&self) -> u64 {
        self.purged.map_or(1, |(index, _)| index + 1)
    }

    /// Index of the last entry, or of the purge point, or 0.
    pub fn last_index(&self) -> u64 {
        self.last.map_or(0, |(index, _)| index)
    }
}

/// Durable storage for one node. Every write is durable when it returns `Ok`: a disk store
/// returns only after its data is synced, and batches concurrent writes into one sync (group
/// commit) rather than syncing per entry.
///
/// # Blocking and the async runtime
///
/// Methods are synchronous and a disk store's writes block the calling thread until the sync
/// completes. The adapters keep the runtime live around that wait: on a multi-thread tokio
/// runtime each engine hands its **writes**, in order, to a writer thread of its own. Appends
/// do not wait there (the Raft library reads the entries from memory until they are durable,
/// and appends queued during a sync go to the store as one write); the rare writes an engine
/// must wait for (snapshots, purges) are waited for through `tokio::task::block_in_place`,
/// which hands the worker's other tasks (other engines' heartbeats, client I/O) to another
/// thread first. So a slow disk stalls only the node that writes to it. Writes from one engine
/// never overlap: each starts after the previous one returned. On a current-thread runtime
/// (the paused-clock test suite) there is no other worker to hand over to and the call is made
/// directly. Stores whose writes never block report it through [`LogStore::may_block`] and are
/// always called directly, which spares the thread hand-off on the hot path.
///
/// Reads (`entries`, `term`, `log_state`, `hard_state`, `snapshot`) are called directly: they
/// are expected to be served from memory or the store's cache, so an implementation must not
/// sync or take long locks on the read path.
///
/// An implementation is checked by the storage suite in `conformance-tests`
/// (`log_store_suite!`), which a store author stamps with one macro call.
pub trait LogStore: Send + Sync + fmt::Debug + 'static {
    /// Appends contiguous entries. When the first entry's index is at or below the last stored
    /// index, the stored suffix from that index on is replaced (Raft's conflict rule). A gap
    /// after the last entry is a storage error.
    fn append(&self, entries: &[LogEntry]) -> Result<()>;

    /// Removes every entry with index ≥ `index`.
    fn truncate_from(&self, index: u64) -> Result<()>;

    /// Removes every entry with index ≤ `index` and remembers `(index, term)` as the purge point.
    fn purge_to(&self, index: u64, term: u64) -> Result<()>;

    /// Entries with `from ≤ index < to`. Asking for purged entries is a storage error.
    fn entries(&self, from: u64, to: u64) -> Result<Vec<LogEntry>>;

    /// Term of the entry at `index`, including the purge point; `None` if not stored.
    fn term(&self, index: u64) -> Result<Option<u64>>;

    /// First and last positions.
    fn log_state(&self) -> Result<LogState>;

    /// Replaces the adapter's hard state (vote, term, commit, ...).
    fn save_hard_state(&self, state: Bytes) -> Result<()>;

    /// The last saved hard state.
    fn hard_state(&self) -> Result<Option<Bytes>>;

    /// Stores a snapshot built locally; the log is left as it is (purge separately).
    fn save_snapshot(&self, snapshot: StoredSnapshot) -> Result<()>;

    /// Stores a snapshot received from a leader and makes the log consistent with it: entries
    /// up to the snapshot are dropped; later entries are kept only if the log agrees with the
    /// snapshot's last entry, otherwise the whole log is discarded.
    fn install_snapshot(&self, snapshot: StoredSnapshot) -> Result<()>;

    /// The newest snapshot.
    fn snapshot(&self) -> Result<Option<StoredSnapshot>>;

    /// Whether a write may block the calling thread on I/O (true by default). A store that
    /// answers `false` promises its writes never wait for a disk, and the adapters then call it
    /// without handing the worker thread's other tasks away first.
    fn may_block(&self) -> bool {
        true
    }
}

/// An in-memory [`LogStore`]. Clones share the same storage, so a test keeps a clone, drops the
/// engine ("crash"), and starts a new engine on the same store ("restart"): everything written
/// before the crash survives, exactly as a synced disk would keep it.
#[derive(Clone, Default)]
pub struct MemLogStore {
    inner: Arc<Mutex<MemState>>,
}

#[derive(Default)]
struct MemState {
    entries: VecDeque<LogEntry>,
    purged: Option<(u64, u64)>,
    hard_state: Option<Bytes>,
    snapshot: Option<StoredSnapshot>,
    fail_writes: bool,
}

impl MemLogStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every following write fail with a storage error (a full or broken disk) until
    /// turned off. Reads keep working.
    pub fn set_fail_writes(&self, fail: bool) {
        self.lock().fail_writes = fail;
    }

    /// Number of entries currently stored.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_for_write(&self) -> Result<MutexGuard<'_, MemState>> {
        let state = self.lock();
        if state.fail_writes {
            return Err(storage_error("injected write failure"));
        }
        Ok(state)
    }
}

fn storage_error(context: impl Into<String>) -> Error {
    Error::new(ErrorKind::Storage).with_context(context)
}

impl MemState {
    fn first_index(&self) -> u64 {
        self.purged.map_or(1, |(index, _)| index + 1)
    }

    fn next_index(&self) -> u64 {
        self.first_index() + self.entries.len() as u64
    }

    fn truncate_from(&mut self, index: u64) {
        let keep = index.saturating_sub(self.first_index());
        self.entries
            .truncate(keep.min(self.entries.len() as u64) as usize);
    }

    fn purge_to(&mut self, index: u64, term: u64) {
        if index < self.first_index() {
            return;
        }
        let drop = (index + 1)
            .saturating_sub(self.first_index())
            .min(self.entries.len() as u64);
        self.entries.drain(..drop as usize);
        if self.purged.is_none_or(|(purged, _)| purged < index) {
            self.purged = Some((index, term));
        }
        if self.entries.front().is_some_and(|e| e.index != index + 1) {
            self.entries.clear();
        }
    }

    fn term(&self, index: u64) -> Option<u64> {
        if let Some((purged, term)) = self.purged
            && index == purged
        {
            return Some(term);
        }
        let first = self.first_index();
        if index < first {
            return None;
        }
        self.entries.get((index - first) as usize).map(|e| e.term)
    }
}

impl fmt::Debug for MemLogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("MemLogStore")
            .field("purged", &state.purged)
            .field("entries", &state.entries.len())
            .field("has_snapshot", &state.snapshot.is_some())
            .finish()
    }
}

impl LogStore for MemLogStore {
    fn append(&self, entries: &[LogEntry]) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if entries.windows(2).any(|w| w[1].index != w[0].index + 1) {
            return Err(storage_error("appended entries are not contiguous"));
        }
        let mut state = self.lock_for_write()?;
        if first.index < state.first_index() {
            return Err(storage_error(format!(
                "append at index {} overlaps the purged prefix (first index {})",
                first.index,
                state.first_index()
            )));
        }
        if first.index > state.next_index() {
            return Err(storage_error(format!(
                "append at index {} leaves a gap after index {}",
                first.index,
                state.next_index() - 1
            )));
        }
        state.truncate_from(first.index);
        state.entries.extend(entries.iter().cloned());
        Ok(())
    }

    fn truncate_from(&self, index: u64) -> Result<()> {
        let mut state = self.lock_for_write()?;
        if index < state.first_index() {
            return Err(storage_error(format!(
                "truncate from {index} reaches into the purged prefix"
            )));
        }
        state.truncate_from(index);
        Ok(())
    }

    fn purge_to(&self, index: u64, term: u64) -> Result<()> {
        let mut state = self.lock_for_write()?;
        if let Some(stored) = state.term(index)
            && stored != term
        {
            return Err(storage_error(format!(
                "purge to {index} expects term {term} but the log has term {stored}"
            )));
        }
        state.purge_to(index, term);
        Ok(())
    }

    fn entries(&self, from: u64, to: u64) -> Result<Vec<LogEntry>> {
        let state = self.lock();
        if from >= to {
            return Ok(Vec::new());
        }
        let first = state.first_index();
        if from < first {
            return Err(storage_error(format!(
                "entries from {from} were purged (first index {first})"
            )));
        }
        let start = (from - first) as usize;
        let end = ((to - first) as usize).min(state.entries.len());
        Ok(state.entries.range(start.min(end)..end).cloned().collect())
    }

    fn term(&self, index: u64) -> Result<Option<u64>> {
        Ok(self.lock().term(index))
    }

    fn log_state(&self) -> Result<LogState> {
        let state = self.lock();
        let last = state
            .entries
            .back()
            .map(|e| (e.index, e.term))
            .or(state.purged);
        Ok(LogState {
            purged: state.purged,
            last,
        })
    }

    fn save_hard_state(&self, hard_state: Bytes) -> Result<()> {
        self.lock_for_write()?.hard_state = Some(hard_state);
        Ok(())
    }

    fn hard_state(&self) -> Result<Option<Bytes>> {
        Ok(self.lock().hard_state.clone())
    }

    fn save_snapshot(&self, snapshot: StoredSnapshot) -> Result<()> {
        let mut state = self.lock_for_write()?;
        let newer = state
            .snapshot
            .as_ref()
            .is_none_or(|s| s.meta.last_index <= snapshot.meta.last_index);
        if newer {
            state.snapshot = Some(snapshot);
        }
        Ok(())
    }

    fn install_snapshot(&self, snapshot: StoredSnapshot) -> Result<()> {
        let mut state = self.lock_for_write()?;
        let SnapshotMeta {
            last_index,
            last_term,
            ..
        } = snapshot.meta;
        if state.term(last_index) != Some(last_term) {
            state.entries.clear();
            state.purged = Some((last_index, last_term));
        } else {
            state.purge_to(last_index, last_term);
        }
        state.snapshot = Some(snapshot);
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<StoredSnapshot>> {
        Ok(self.lock().snapshot.clone())
    }

    fn may_block(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> LogEntry {
        LogEntry {
            index,
            term,
            payload: Bytes::from(format!("{index}@{term}")),
        }
    }

    fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<LogEntry> {
        range.map(|i| entry(i, term)).collect()
    }

    #[test]
    fn append_read_and_state() {
        let store = MemLogStore::new();
        assert_eq!(store.log_state().unwrap(), LogState::default());
        store.append(&entries(1..=5, 1)).unwrap();
        assert_eq!(store.entries(2, 4).unwrap(), vec![entry(2, 1), entry(3, 1)]);
        assert_eq!(store.entries(4, 100).unwrap().len(), 2);
        assert_eq!(store.log_state().unwrap().last, Some((5, 1)));
        assert_eq!(store.term(3).unwrap(), Some(1));
        assert_eq!(store.term(6).unwrap(), None);
    }

    #[test]
    fn conflicting_append_replaces_the_suffix() {
        let store = MemLogStore::new();
        store.append(&entries(1..=5, 1)).unwrap();
        store.append(&entries(3..=4, 2)).unwrap();
        assert_eq!(store.log_state().unwrap().last, Some((4, 2)));
        assert_eq!(store.term(2).unwrap(), Some(1));
        assert_eq!(store.term(5).unwrap(), None);
    }

    #[test]
    fn gaps_and_non_contiguous_batches_are_refused() {
        let store = MemLogStore::new();
        store.append(&entries(1..=2, 1)).unwrap();
        let err = store.append(&[entry(4, 1)]).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Storage);
        let err = store.append(&[entry(3, 1), entry(5, 1)]).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Storage);
        assert_eq!(store.log_state().unwrap().last, Some((2, 1)));
    }

    #[test]
    fn purge_keeps_the_boundary_term() {
        let store = MemLogStore::new();
        store.append(&entries(1..=5, 1)).unwrap();
        store.purge_to(3, 1).unwrap();
        let state = store.log_state().unwrap();
        assert_eq!(state.purged, Some((3, 1)));
        assert_eq!(state.first_index(), 4);
        assert_eq!(store.term(3).unwrap(), Some(1));
        assert!(store.entries(2, 5).is_err());
        assert_eq!(store.entries(4, 6).unwrap().len(), 2);
        assert!(
            store.purge_to(4, 9).is_err(),
            "purge with the wrong term must fail"
        );
        store.purge_to(5, 1).unwrap();
        assert_eq!(store.log_state().unwrap().last, Some((5, 1)));
        store.append(&[entry(6, 2)]).unwrap();
        assert_eq!(store.log_state().unwrap().last, Some((6, 2)));
    }

    #[test]
    fn installing_a_snapshot_keeps_a_matching_suffix_and_drops_a_conflicting_log() {
        let store = MemLogStore::new();
        store.append(&entries(1..=6, 1)).unwrap();
        let snap = |last_index, last_term| StoredSnapshot {
            meta: SnapshotMeta {
                last_index,
                last_term,
                membership: Bytes::new(),
            },
            data: Bytes::from_static(b"state"),
        };
        store.install_snapshot(snap(4, 1)).unwrap();
        assert_eq!(store.log_state().unwrap().first_index(), 5);
        assert_eq!(store.entries(5, 7).unwrap().len(), 2);

        store.install_snapshot(snap(9, 3)).unwrap();
        let state = store.log_state().unwrap();
        assert_eq!(state.purged, Some((9, 3)));
        assert_eq!(state.last, Some((9, 3)));
        assert_eq!(store.snapshot().unwrap().unwrap().meta.last_index, 9);
        store.append(&[entry(10, 3)]).unwrap();
    }

    #[test]
    fn clones_share_storage_across_a_simulated_restart() {
        let store = MemLogStore::new();
        let kept = store.clone();
        store.append(&entries(1..=3, 1)).unwrap();
        store.save_hard_state(Bytes::from_static(b"vote")).unwrap();
        drop(store);
        assert_eq!(kept.log_state().unwrap().last, Some((3, 1)));
        assert_eq!(kept.hard_state().unwrap().as_deref(), Some(&b"vote"[..]));
    }

    #[test]
    fn injected_write_failures_lose_nothing_already_stored() {
        let store = MemLogStore::new();
        store.append(&entries(1..=2, 1)).unwrap();
        store.set_fail_writes(true);
        assert_eq!(
            store.append(&[entry(3, 1)]).unwrap_err().kind(),
            &ErrorKind::Storage
        );
        assert_eq!(
            store.save_hard_state(Bytes::new()).unwrap_err().kind(),
            &ErrorKind::Storage
        );
        assert_eq!(store.entries(1, 3).unwrap().len(), 2);
        store.set_fail_writes(false);
        store.append(&[entry(3, 1)]).unwrap();
    }

    #[test]
    fn an_older_local_snapshot_does_not_replace_a_newer_one() {
        let store = MemLogStore::new();
        let snap = |last_index| StoredSnapshot {
            meta: SnapshotMeta {
                last_index,
                last_term: 1,
                membership: Bytes::new(),
            },
            data: Bytes::new(),
        };
        store.save_snapshot(snap(10)).unwrap();
        store.save_snapshot(snap(5)).unwrap();
        assert_eq!(store.snapshot().unwrap().unwrap().meta.last_index, 10);
    }
}
