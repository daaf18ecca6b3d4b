//! `RaftLogStorage` and `RaftLogReader` over the shared [`LogStore`].
//!
//! Entries are stored as `LogEntry { index: openraft index + 1, term, payload: encoded Entry }`;
//! the vote and the committed log id live in the hard-state blob ([`HardState`]).
//!
//! The committed log id is volatile in Raft (a restarted node learns it again from a leader),
//! so `save_committed` keeps it in memory and it reaches the disk with the next vote: a commit
//! costs the entries' sync only, not a second sync for the hard state. A restarted node then
//! re-applies only up to an older committed point, and openraft may resume leadership in the
//! same term, so the engine serves no read until its state machine caught up with the log it
//! had at start (`crate::recovery`).

use std::fmt;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use raftengine::{LogEntry, LogStore};

use super::io_error;
use super::pipeline::LogPipeline;
use crate::codec::{HardState, decode, encode};
use crate::types::{Entry, LogId, TypeConfig, Vote, engine_index, log_id, term_of};

/// openraft's log storage (and log reader) on a shared [`LogStore`].
#[derive(Clone)]
pub(crate) struct LogStorage {
    store: Arc<dyn LogStore>,
    pipeline: Arc<LogPipeline>,
    /// The newest committed log id openraft reported, shared by every clone.
    committed: Arc<Mutex<Option<LogId>>>,
}

impl fmt::Debug for LogStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStorage")
            .field("store", &self.store)
            .finish()
    }
}

impl LogStorage {
    /// Log storage on the pipeline's store, writing through the pipeline.
    pub(crate) fn new(pipeline: Arc<LogPipeline>) -> Self {
        Self {
            store: Arc::clone(pipeline.store()),
            pipeline,
            committed: Arc::new(Mutex::new(None)),
        }
    }

    fn committed_in_memory(&self) -> Option<LogId> {
        *self.committed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hard_state(&self) -> io::Result<HardState> {
        hard_state_of(&*self.store).map_err(io_error)
    }
}

fn hard_state_of(store: &dyn LogStore) -> raftengine::Result<HardState> {
    match store.hard_state()? {
        None => Ok(HardState::default()),
        Some(bytes) => decode(&bytes).map_err(storage_error),
    }
}

fn storage_error(err: impl fmt::Display) -> raftengine::Error {
    raftengine::Error::new(raftengine::ErrorKind::Storage).with_context(err.to_string())
}

/// Runs a store write, which may wait for a disk sync. On a multi-thread runtime the worker
/// first hands its other tasks to another thread (`block_in_place`), so a slow disk stalls this
/// node only, never other engines or client I/O sharing the runtime. Current-thread runtimes
/// (the paused-clock suite) and stores that never block are called directly.
pub(super) fn write<T>(store: &dyn LogStore, f: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread && store.may_block() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

/// The `[from, to)` openraft index range of `range`; `None` for an unbounded end.
fn index_range(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let from = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i + 1,
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&i) => Some(i + 1),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    (from, to)
}

impl RaftLogReader<TypeConfig> for LogStorage {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let (from, to) = index_range(&range);
        // The pending tail first: the store's entries below its first index cannot change while
        // it is pending, and an entry leaving the tail is already in the store.
        let pending = self.pipeline.pending(from, to);
        let state = self.store.log_state().map_err(io_error)?;
        // openraft tolerates (and expects) a short read at the start of the range for entries
        // already purged; the store refuses to read purged indexes, so start at the first kept.
        let from = from.max(state.first_index() - 1);
        let end = pending
            .last
            .map_or_else(|| state.last_index(), |id| id.index() + 1);
        let to = to.unwrap_or(end);
        let stored_to = pending.first.map_or(to, |first| to.min(first));
        let mut entries = if from < stored_to {
            self.store
                .entries(engine_index(from), engine_index(stored_to))
                .map_err(io_error)?
                .iter()
                .map(|e| decode::<Entry>(&e.payload).map_err(io_error))
                .collect::<io::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        entries.extend(pending.entries);
        Ok(entries)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.hard_state()?.vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStorage {
    type LogReader = LogStorage;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let pending = self.pipeline.pending(u64::MAX, None);
        let state = self.store.log_state().map_err(io_error)?;
        let to_log_id = |(index, term): (u64, u64)| log_id(term, index - 1);
        Ok(LogState {
            last_purged_log_id: state.purged.map(to_log_id),
            last_log_id: pending.last.or(state.last.map(to_log_id)),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let vote = *vote;
        let committed = self.committed_in_memory();
        self.pipeline
            .write(move |store| {
                let mut state = hard_state_of(store)?;
                state.vote = Some(vote);
                state.committed = state.committed.max(committed);
                let bytes = encode(&state).map_err(storage_error)?;
                store.save_hard_state(Bytes::from(bytes))
            })
            .await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        let mut latest = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        *latest = (*latest).max(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.hard_state()?.committed.max(self.committed_in_memory()))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let stored = entries
            .into_iter()
            .map(|entry| {
                let record = LogEntry {
                    index: engine_index(entry.log_id.index()),
                    term: term_of(&entry.log_id),
                    payload: Bytes::from(encode(&entry).map_err(io_error)?),
                };
                Ok((record, entry))
            })
            .collect::<io::Result<Vec<_>>>()?;
        self.pipeline.append(stored, callback)
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        // Keep `..=last_log_id`: drop engine indexes from (openraft index + 1) + 1 on.
        let from = last_log_id.map_or(1, |id| engine_index(id.index()) + 1);
        self.pipeline
            .write(move |store| store.truncate_from(from))
            .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        let (index, term) = (engine_index(log_id.index()), term_of(&log_id));
        self.pipeline
            .write(move |store| store.purge_to(index, term))
            .await
    }
}
