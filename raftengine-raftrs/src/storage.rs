//! raft-rs [`Storage`] over the shared [`LogStore`], plus the writes the ready loop performs.
//!
//! Layout in the log store:
//! - entries: `LogEntry { index, term, payload }` with `payload` = the protobuf-encoded raft
//!   `Entry` (type, data, context included);
//! - hard-state slot: [`crate::codec::Meta`] (raft `HardState` + incarnation counter);
//! - snapshot: `StoredSnapshot { meta: { last_index, last_term, membership = protobuf
//!   ConfState }, data = StateMachine::snapshot() }`.
//!
//! A brand-new cluster is bootstrapped with a snapshot at index 1, term 1 holding the initial
//! voters and the state machine's initial state, exactly the same on every initial voter. That
//! keeps index 1 out of every log, so a node added later always starts from a snapshot that
//! carries the membership (raft-rs refuses a snapshot whose configuration lacks the receiver).
//!
//! The state machine is volatile: on restart it is restored from the newest stored snapshot and
//! raft-rs replays committed entries after it (`Config.applied` = snapshot index). That is why
//! the raft configuration handed to raft-rs at start is the snapshot's, not the latest one:
//! replaying the log re-applies later membership changes in order.

use std::cell::{RefCell, RefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use raftengine::{Error, ErrorKind, LogEntry, LogStore, SnapshotMeta, StoredSnapshot};

/// How many entries `Storage::entries` reads from the store at a time.
const ENTRIES_WINDOW: u64 = 64;

use crate::codec::{self, Meta};
use crate::persist::{Completions, Persister};
use crate::recent::Recent;

/// Index and term of the bootstrap snapshot of a brand-new cluster.
pub(crate) const BOOTSTRAP_INDEX: u64 = 1;

/// What the store held when the engine started.
#[derive(Debug)]
pub(crate) struct Boot {
    /// True when the store already held state from an earlier run of this node.
    pub(crate) restarted: bool,
    /// Index the state machine is at after restoring `snapshot` (raft's `Config.applied`).
    pub(crate) applied: u64,
    /// Term of `applied`.
    pub(crate) applied_term: u64,
    /// State machine data to restore, if any.
    pub(crate) snapshot_data: Option<Bytes>,
}

/// The raft-rs storage of one node.
pub(crate) struct RaftStorage {
    store: Arc<dyn LogStore>,
    meta: Meta,
    initial_conf: ConfState,
    snapshot_wanted: AtomicBool,
    /// The writer thread, when writes are asynchronous (`crate::persist`).
    persister: Option<Persister>,
    /// The newest entries written, so raft-rs's reads of them skip the store.
    /// (A `RefCell`: only the driver's raft-rs node touches it, and a lock on every
    /// `last_index` and `term` showed in profiles.)
    recent: RefCell<Recent>,
    /// The store's purge point, as of the last purge or snapshot install through this
    /// storage (the only writer of the store): raft-rs asks for the first index many times
    /// per ready, and the store would answer each time under a lock or in a read transaction.
    purged: Option<(u64, u64)>,
}

impl std::fmt::Debug for RaftStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftStorage")
            .field("store", &self.store)
            .field("meta", &self.meta)
            .finish()
    }
}

fn storage_err(context: impl Into<String>) -> Error {
    Error::new(ErrorKind::Storage).with_context(context)
}

/// Raft entries as the store's records (the payload is the whole protobuf entry).
fn encode_entries(entries: &[Entry]) -> raftengine::Result<Vec<LogEntry>> {
    entries
        .iter()
        .map(|entry| {
            Ok(LogEntry {
                index: entry.index,
                term: entry.term,
                payload: codec::encode_entry(entry)
                    .ok_or_else(|| storage_err("a raft entry failed to encode"))?,
            })
        })
        .collect()
}

/// raft-rs's `limit_size` rule, applied while entries are gathered (from the store and from the
/// pending tail alike): the first entry always, then entries while the total of their encoded
/// sizes stays within the limit.
struct SizeLimit {
    used: u64,
    limit: u64,
    admitted_any: bool,
}

impl SizeLimit {
    fn new(limit: u64) -> Self {
        Self {
            used: 0,
            limit,
            admitted_any: false,
        }
    }

    /// Whether an entry of `len` bytes is still taken; counts it if so.
    fn admit(&mut self, len: u64) -> bool {
        let total = self.used.saturating_add(len);
        if self.admitted_any && total > self.limit {
            return false;
        }
        self.used = total;
        self.admitted_any = true;
        true
    }
}

/// Where `store`'s log was last purged.
fn store_purged(store: &dyn LogStore) -> raftengine::Result<Option<(u64, u64)>> {
    Ok(store.log_state()?.purged)
}

fn native(e: Error) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

/// Runs a store write, which may wait for a disk sync. On a multi-thread runtime the worker
/// first hands its other tasks to another thread (`block_in_place`), so a slow disk stalls this
/// node only, never other engines or client I/O sharing the runtime. Current-thread runtimes
/// (the paused-clock suite) and stores that never block are called directly.
fn write<T>(store: &dyn LogStore, f: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread && store.may_block() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

impl RaftStorage {
    /// Opens the store: reads what is there, bootstraps a new cluster when it is empty and
    /// `initial_voters` is not, and bumps the incarnation counter.
    pub(crate) fn open(
        store: Arc<dyn LogStore>,
        initial_voters: &[u64],
        initial_state: impl FnOnce() -> Bytes,
    ) -> raftengine::Result<(Self, Boot)> {
        let stored_meta = match store.hard_state()? {
            Some(bytes) => Some(
                codec::decode_meta(&bytes)
                    .ok_or_else(|| storage_err("the stored hard state does not decode"))?,
            ),
            None => None,
        };
        let log_state = store.log_state()?;
        let mut snapshot = store.snapshot()?;
        let restarted = stored_meta.is_some() || snapshot.is_some() || log_state.last_index() > 0;
        let mut meta = stored_meta.unwrap_or_default();
        if !restarted && !initial_voters.is_empty() {
            let conf = ConfState::from((initial_voters.iter().copied(), Vec::<u64>::new()));
            let boot = StoredSnapshot {
                meta: SnapshotMeta {
                    last_index: BOOTSTRAP_INDEX,
                    last_term: 1,
                    membership: codec::encode_conf_state(&conf),
                },
                data: initial_state(),
            };
            write(&*store, || store.install_snapshot(boot.clone()))?;
            meta.hard_state.term = 1;
            meta.hard_state.commit = BOOTSTRAP_INDEX;
            snapshot = Some(boot);
        }
        let (initial_conf, applied, applied_term, snapshot_data) = match &snapshot {
            Some(s) => (
                codec::decode_conf_state(&s.meta.membership)
                    .ok_or_else(|| storage_err("the stored snapshot membership does not decode"))?,
                s.meta.last_index,
                s.meta.last_term,
                Some(s.data.clone()),
            ),
            None => (ConfState::default(), 0, 0, None),
        };
        meta.hard_state.commit = meta.hard_state.commit.max(applied);
        meta.incarnation += 1;
        write(&*store, || store.save_hard_state(codec::encode_meta(&meta)))?;
        let purged = store_purged(&*store)?;
        let storage = Self {
            store,
            meta,
            initial_conf,
            snapshot_wanted: AtomicBool::new(false),
            persister: None,
            recent: RefCell::default(),
            purged,
        };
        let boot = Boot {
            restarted,
            applied,
            applied_term,
            snapshot_data,
        };
        Ok((storage, boot))
    }

    /// This start's incarnation number (≥ 1).
    pub(crate) fn incarnation(&self) -> u64 {
        self.meta.incarnation
    }

    /// Appends (or overwrites from the first index on) raft entries.
    pub(crate) fn append(&self, entries: &[Entry]) -> raftengine::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let batch = encode_entries(entries)?;
        self.write_store(move |store| store.append(&batch))?;
        self.recent().append(entries);
        Ok(())
    }

    fn recent(&self) -> RefMut<'_, Recent> {
        self.recent.borrow_mut()
    }

    /// Moves writes to a thread of their own when the store may block and the runtime has
    /// other workers (see `crate::persist`); returns the driver's end of the completions.
    pub(crate) fn start_persister(&mut self) -> raftengine::Result<Option<Completions>> {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !multi_thread || !self.store.may_block() || self.persister.is_some() {
            return Ok(None);
        }
        let (persister, completions) = Persister::start(Arc::clone(&self.store))?;
        self.persister = Some(persister);
        Ok(Some(completions))
    }

    /// Whether ready writes go to the writer thread.
    pub(crate) fn is_async(&self) -> bool {
        self.persister.is_some()
    }

    /// Hands a ready's entries and hard state to the writer thread; the entries are readable
    /// at once. The hard state is written only if its term or vote changed (see
    /// [`RaftStorage::set_hard_state`]).
    pub(crate) fn persist_async(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        number: u64,
    ) -> raftengine::Result<()> {
        let meta = hard_state.and_then(|hs| {
            let durable = self.changes_durable_state(Some(hs));
            self.meta.hard_state = hs.clone();
            durable.then(|| codec::encode_meta(&self.meta))
        });
        let batch = encode_entries(entries)?;
        let persister = self
            .persister
            .as_ref()
            .ok_or_else(|| storage_err("asynchronous persistence is not running"))?;
        persister.submit(entries, batch, meta, number)?;
        // Readable at once, like the pending tail; if the write fails the node stops.
        self.recent().append(entries);
        Ok(())
    }

    /// Runs one store write, after everything queued before it when writes are asynchronous.
    fn write_store(
        &self,
        run: impl FnOnce(&dyn LogStore) -> raftengine::Result<()> + Send + 'static,
    ) -> raftengine::Result<()> {
        let Some(persister) = &self.persister else {
            return write(&*self.store, || run(&*self.store));
        };
        let answer = persister.enqueue(run)?;
        write(&*self.store, || answer.recv())
            .map_err(|_| storage_err("the store writer thread stopped before answering"))?
    }

    /// Takes a new hard state, persisting it when the term or vote changed.
    ///
    /// The commit index is volatile state in Raft: a restarted node learns it again from the
    /// leader (or, alone, by committing an entry of its new term), and raft-rs only needs the
    /// stored one to lie between the snapshot and the last stored entry, which an older commit
    /// index does. So a change of the commit index alone is kept in memory and reaches the disk
    /// with the next term, vote or snapshot write: a commit costs the entries' sync, not a
    /// second sync for the hard state.
    pub(crate) fn set_hard_state(&mut self, hard_state: &HardState) -> raftengine::Result<()> {
        let durable_changed = self.changes_durable_state(Some(hard_state));
        self.meta.hard_state = hard_state.clone();
        if durable_changed {
            self.persist_meta()?;
        }
        Ok(())
    }

    /// Whether `hard_state` changes the term or the vote, which must reach the disk.
    pub(crate) fn changes_durable_state(&self, hard_state: Option<&HardState>) -> bool {
        hard_state.is_some_and(|hs| {
            hs.term != self.meta.hard_state.term || hs.vote != self.meta.hard_state.vote
        })
    }

    /// Takes a new commit index (never moving it back), in memory only: see
    /// [`RaftStorage::set_hard_state`].
    pub(crate) fn set_commit(&mut self, commit: u64) {
        self.meta.hard_state.commit = self.meta.hard_state.commit.max(commit);
    }

    fn persist_meta(&self) -> raftengine::Result<()> {
        let bytes = codec::encode_meta(&self.meta);
        self.write_store(move |store| store.save_hard_state(bytes))
    }

    /// Installs a snapshot received from the leader (after the state machine restored it).
    pub(crate) fn install_snapshot(&mut self, snapshot: &Snapshot) -> raftengine::Result<()> {
        self.recent().clear();
        let meta = snapshot.get_metadata();
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_index: meta.index,
                last_term: meta.term,
                membership: codec::encode_conf_state(meta.get_conf_state()),
            },
            data: snapshot.data.clone(),
        };
        self.write_store(move |store| store.install_snapshot(stored))?;
        // raft-rs treats the log as ending at the snapshot after a restore; drop any suffix the
        // store kept so storage and raft-rs agree (the leader resends what follows).
        let after = meta.index + 1;
        self.write_store(move |store| store.truncate_from(after))?;
        self.purged = store_purged(&*self.store)?;
        if meta.index > self.meta.hard_state.commit {
            self.meta.hard_state.commit = meta.index;
        }
        self.meta.hard_state.term = self.meta.hard_state.term.max(meta.term);
        self.persist_meta()
    }

    /// Saves a locally built snapshot and compacts the log up to it.
    pub(crate) fn save_local_snapshot(
        &mut self,
        index: u64,
        term: u64,
        conf_state: &ConfState,
        data: Bytes,
    ) -> raftengine::Result<()> {
        let stored = StoredSnapshot {
            meta: SnapshotMeta {
                last_index: index,
                last_term: term,
                membership: codec::encode_conf_state(conf_state),
            },
            data,
        };
        self.write_store(move |store| store.save_snapshot(stored))?;
        self.recent().purge_to(index);
        self.write_store(move |store| store.purge_to(index, term))?;
        self.purged = store_purged(&*self.store)?;
        self.snapshot_wanted.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Index of the newest stored snapshot (0 if none).
    pub(crate) fn snapshot_index(&self) -> u64 {
        self.store
            .snapshot()
            .ok()
            .flatten()
            .map_or(0, |s| s.meta.last_index)
    }

    /// True (once) when raft-rs asked for a snapshot that is not there yet.
    pub(crate) fn take_snapshot_request(&self) -> bool {
        self.snapshot_wanted.swap(false, Ordering::Relaxed)
    }

    fn log_state(&self) -> raft::Result<raftengine::LogState> {
        self.store.log_state().map_err(native)
    }

    /// The first index the log can hold.
    fn first(&self) -> u64 {
        raftengine::LogState {
            purged: self.purged,
            last: None,
        }
        .first_index()
    }
}

impl Storage for RaftStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.meta.hard_state.clone(),
            self.initial_conf.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let max_size = max_size.into().unwrap_or(u64::MAX);
        {
            // The cache never holds a purged entry, so a range it covers is not compacted.
            let recent = self.recent();
            if low < high && recent.covers(low, high) {
                let mut size = SizeLimit::new(max_size);
                return Ok((low..high)
                    .filter_map(|index| recent.get(index))
                    .take_while(|e| size.admit(u64::from(protobuf::Message::compute_size(*e))))
                    .cloned()
                    .collect());
            }
        }
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        let state = self.log_state()?;
        // Entries still on their way to the disk: read from memory, and they hide whatever the
        // store holds from their first index on (they replace it).
        let (pending, pending_from) = match &self.persister {
            Some(p) => {
                let tail = p.tail();
                let from = tail.first().unwrap_or(u64::MAX);
                let in_range: Vec<Entry> = (low.max(from)..high)
                    .map_while(|index| tail.get(index).cloned())
                    .collect();
                let last = tail.last().map(|(index, _)| index);
                (Some((in_range, last)), from)
            }
            None => (None, u64::MAX),
        };
        let last_index = match &pending {
            Some((_, Some(last))) => *last,
            _ => state.last_index(),
        };
        if high > last_index + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let stored_high = high.min(pending_from);
        // raft-rs asks for everything from a follower's next index to the end of the log and
        // keeps only `max_size` bytes of it: read and decode in windows and stop at the limit,
        // so catching up a follower costs what is sent, not the whole lag. The size rule is
        // raft-rs's own `limit_size`: at least one entry, then entries while the total of their
        // encoded sizes (the stored payloads) stays within the limit.
        let mut size = SizeLimit::new(max_size);
        let mut entries = Vec::new();
        let mut next = low;
        'windows: while next < stored_high {
            let end = stored_high.min(next.saturating_add(ENTRIES_WINDOW));
            for e in self.store.entries(next, end).map_err(native)? {
                if !size.admit(e.payload.len() as u64) {
                    break 'windows;
                }
                let entry = codec::decode_entry(&e.payload).ok_or_else(|| {
                    native(storage_err(format!(
                        "log entry {} does not decode",
                        e.index
                    )))
                })?;
                entries.push(entry);
            }
            next = end;
        }
        if next >= stored_high
            && let Some((in_range, _)) = pending
        {
            for entry in in_range {
                if !size.admit(u64::from(protobuf::Message::compute_size(&entry))) {
                    break;
                }
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if let Some(entry) = self.recent().get(idx) {
            return Ok(entry.term);
        }
        if let Some(persister) = &self.persister {
            let tail = persister.tail();
            if let Some(entry) = tail.get(idx) {
                return Ok(entry.term);
            }
            if tail.first().is_some_and(|first| idx >= first) {
                return Err(raft::Error::Store(StorageError::Unavailable));
            }
        }
        match self.purged {
            Some((index, term)) if index == idx => return Ok(term),
            None if idx == 0 => return Ok(0),
            _ => {}
        }
        if idx < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match self.store.term(idx).map_err(native)? {
            Some(term) => Ok(term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        // The cache ends where the newest write (durable or still pending) ends.
        if let Some(last) = self.recent().last() {
            return Ok(last);
        }
        if let Some(persister) = &self.persister
            && let Some((last, _)) = persister.tail().last()
        {
            return Ok(last);
        }
        Ok(self.log_state()?.last_index())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let stored = self.store.snapshot().map_err(native)?;
        if let Some(stored) = stored
            && stored.meta.last_index >= request_index
            && let Some(conf) = codec::decode_conf_state(&stored.meta.membership)
            && conf
                .get_voters()
                .iter()
                .chain(conf.get_learners())
                .chain(conf.get_voters_outgoing())
                .any(|id| *id == to)
        {
            let mut snapshot = Snapshot {
                data: stored.data,
                ..Default::default()
            };
            let meta = snapshot.mut_metadata();
            meta.index = stored.meta.last_index;
            meta.term = stored.meta.last_term;
            meta.set_conf_state(conf);
            return Ok(snapshot);
        }
        // Older than asked for, or built before `to` joined: the driver builds a fresh one and
        // raft-rs retries on its next attempt.
        self.snapshot_wanted.store(true, Ordering::Relaxed);
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entries::entry_with;
    use raftengine::MemLogStore;

    #[test]
    fn bootstrap_then_restart_reads_back_the_same_state() {
        let mem = MemLogStore::new();
        let store: Arc<dyn LogStore> = Arc::new(mem.clone());
        let (mut storage, boot) =
            RaftStorage::open(store.clone(), &[1, 2, 3], || Bytes::from_static(b"init")).unwrap();
        assert!(!boot.restarted);
        assert_eq!(boot.applied, 1);
        assert_eq!(storage.first_index().unwrap(), 2);
        assert_eq!(storage.last_index().unwrap(), 1);
        assert_eq!(storage.term(1).unwrap(), 1);
        storage
            .append(&[entry_with(2, 2, b"a"), entry_with(3, 2, b"b")])
            .unwrap();
        let hs = HardState {
            term: 2,
            vote: 1,
            commit: 3,
            ..Default::default()
        };
        storage.set_hard_state(&hs).unwrap();
        let got = storage
            .entries(2, 4, None, GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].data.as_ref(), b"b");
        assert!(storage.term(0).is_err());
        drop(storage);

        let (storage, boot) = RaftStorage::open(store, &[1, 2, 3], Bytes::new).unwrap();
        assert!(boot.restarted);
        assert_eq!(storage.incarnation(), 2);
        let state = storage.initial_state().unwrap();
        assert_eq!(state.hard_state, hs);
        assert_eq!(state.conf_state.get_voters().len(), 3);
        assert_eq!(boot.snapshot_data.as_deref(), Some(&b"init"[..]));
    }

    #[test]
    fn entries_stop_at_the_size_limit_exactly_like_raft_rs() {
        let store: Arc<dyn LogStore> = Arc::new(MemLogStore::new());
        let (storage, _) = RaftStorage::open(store.clone(), &[1], Bytes::new).unwrap();
        let batch: Vec<Entry> = (2..=301)
            .map(|i| entry_with(i, 2, &vec![7u8; (i % 13) as usize * 10]))
            .collect();
        storage.append(&batch).unwrap();
        // First from the cache of recent entries, then, reopened, from the store alone.
        let (reopened, _) = RaftStorage::open(store, &[1], Bytes::new).unwrap();
        assert!(reopened.recent().first().is_none());
        for storage in [&storage, &reopened] {
            for limit in [
                None,
                Some(0),
                Some(1),
                Some(100),
                Some(2_000),
                Some(u64::MAX),
            ] {
                let got = storage
                    .entries(2, 302, limit, GetEntriesContext::empty(false))
                    .unwrap();
                let mut expected = batch.clone();
                raft::util::limit_size(&mut expected, limit);
                assert_eq!(got, expected, "limit {limit:?}");
            }
            // A window boundary inside the range changes nothing.
            let got = storage
                .entries(60, 140, None, GetEntriesContext::empty(false))
                .unwrap();
            assert_eq!(got.as_slice(), &batch[58..138]);
            assert_eq!(storage.term(301).unwrap(), 2);
        }
    }

    #[test]
    fn the_recent_cache_never_answers_for_purged_or_replaced_entries() {
        let store: Arc<dyn LogStore> = Arc::new(MemLogStore::new());
        let (mut storage, _) = RaftStorage::open(store, &[1, 2], Bytes::new).unwrap();
        storage
            .append(&[
                entry_with(2, 2, b"a"),
                entry_with(3, 2, b"b"),
                entry_with(4, 2, b"c"),
            ])
            .unwrap();
        storage.append(&[entry_with(4, 3, b"d")]).unwrap();
        let got = storage
            .entries(2, 5, None, GetEntriesContext::empty(false))
            .unwrap();
        assert_eq!(got[2].data.as_ref(), b"d");
        assert_eq!(storage.term(4).unwrap(), 3);
        assert_eq!(storage.last_index().unwrap(), 4);
        storage
            .append(&[entry_with(4, 4, b"e"), entry_with(5, 4, b"f")])
            .unwrap();
        storage.append(&[entry_with(5, 5, b"g")]).unwrap();
        assert_eq!(storage.last_index().unwrap(), 5);
        assert_eq!(storage.term(5).unwrap(), 5);
        // An overwrite may also end the log earlier.
        storage.append(&[entry_with(4, 6, b"h")]).unwrap();
        assert_eq!(storage.last_index().unwrap(), 4);
        assert_eq!(
            storage.term(5),
            Err(raft::Error::Store(StorageError::Unavailable))
        );
        let conf = ConfState::from(([1, 2], Vec::<u64>::new()));
        storage
            .save_local_snapshot(3, 2, &conf, Bytes::from_static(b"s"))
            .unwrap();
        assert_eq!(
            storage.entries(2, 5, None, GetEntriesContext::empty(false)),
            Err(raft::Error::Store(StorageError::Compacted))
        );
        assert_eq!(
            storage.term(2),
            Err(raft::Error::Store(StorageError::Compacted))
        );
        assert_eq!(
            storage.term(3).unwrap(),
            2,
            "the purge point keeps its term"
        );
        assert_eq!(storage.recent().first(), Some(4));
    }

    #[test]
    fn snapshot_must_contain_the_receiver_else_a_build_is_requested() {
        let store: Arc<dyn LogStore> = Arc::new(MemLogStore::new());
        let (storage, _) = RaftStorage::open(store, &[1], Bytes::new).unwrap();
        assert_eq!(storage.snapshot(0, 1).unwrap().get_metadata().index, 1);
        assert!(!storage.take_snapshot_request());
        assert_eq!(
            storage.snapshot(0, 4).unwrap_err(),
            raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable)
        );
        assert!(storage.take_snapshot_request());
    }

    #[test]
    fn an_installed_snapshot_replaces_the_log_and_raises_commit() {
        let store: Arc<dyn LogStore> = Arc::new(MemLogStore::new());
        let (mut storage, _) = RaftStorage::open(store.clone(), &[1, 2], Bytes::new).unwrap();
        storage
            .append(&[
                entry_with(2, 2, b"a"),
                entry_with(3, 2, b"b"),
                entry_with(4, 2, b"c"),
            ])
            .unwrap();
        let mut snapshot = Snapshot {
            data: Bytes::from_static(b"state"),
            ..Default::default()
        };
        snapshot.mut_metadata().index = 3;
        snapshot.mut_metadata().term = 2;
        snapshot
            .mut_metadata()
            .set_conf_state(ConfState::from(([1, 2], Vec::<u64>::new())));
        storage.install_snapshot(&snapshot).unwrap();
        assert_eq!(storage.first_index().unwrap(), 4);
        assert_eq!(storage.last_index().unwrap(), 3, "the suffix is dropped");
        assert_eq!(storage.term(3).unwrap(), 2);
        assert_eq!(storage.initial_state().unwrap().hard_state.commit, 3);
        let stored = store.snapshot().unwrap().unwrap();
        assert_eq!(stored.data.as_ref(), b"state");
        drop(storage);
        let (_, boot) = RaftStorage::open(store, &[1, 2], Bytes::new).unwrap();
        assert_eq!(boot.applied, 3);
        assert_eq!(boot.applied_term, 2);
    }

    #[test]
    fn an_empty_learner_store_starts_empty() {
        let store: Arc<dyn LogStore> = Arc::new(MemLogStore::new());
        let (storage, boot) = RaftStorage::open(store, &[], Bytes::new).unwrap();
        assert!(!boot.restarted);
        assert_eq!(boot.applied, 0);
        assert_eq!(storage.term(0).unwrap(), 0);
        assert_eq!(storage.first_index().unwrap(), 1);
        assert_eq!(storage.last_index().unwrap(), 0);
        assert!(
            storage
                .initial_state()
                .unwrap()
                .conf_state
                .get_voters()
                .is_empty()
        );
    }
}
