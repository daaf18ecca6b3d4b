//! Store writes in order on one thread per engine, so openraft's core task never waits for a
//! disk sync.
//!
//! openraft asks `RaftLogStorage::append` to return once the entries are readable and to report
//! durability later through a callback. Blocking the core task for the sync instead delays
//! everything behind it: on a leader, replication of the entries starts only after the local
//! sync, so the leader's and the followers' syncs run one after the other instead of side by
//! side. Here an append joins a queue served by a dedicated thread, and its entries stay
//! readable from memory (the *pending* tail) until the store has synced them.
//!
//! The queue and its thread are `raftengine::adapter::LogWriter`. Every other write
//! (truncation, purge, vote, snapshots) goes through the same queue and is awaited, so it lands after every append submitted before it, as openraft expects. Stores
//! that never block and current-thread runtimes (the paused-clock suite, where a wait on another
//! thread would let virtual time run) write inline, exactly as before.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::IOFlushed;
use raftengine::adapter::LogWriter;
use raftengine::{LogEntry, LogStore};
use tokio::sync::oneshot;

use super::io_error;
use super::log::write;
use crate::types::{Entry, LogId, TypeConfig};

/// What an append hands the writer: its tail submission number and openraft's callback.
type Flush = (u64, IOFlushed<TypeConfig>);

/// Entries handed to the queue and not yet durable, by openraft index, oldest first. Each
/// append drops the pending entries at and after its first index (Raft's conflict rule), so the
/// tail is ordered by index and by submission at once.
#[derive(Default)]
struct Pending {
    entries: VecDeque<(u64, Entry)>,
    /// Submission number of each entry in `entries`, in the same order.
    seqs: VecDeque<u64>,
    next_seq: u64,
}

/// What the pending tail holds for a read of `[from, to)`.
#[derive(Debug, Default)]
pub(crate) struct PendingView {
    /// Index of the first pending entry: the store's entries from here on are being replaced.
    pub(crate) first: Option<u64>,
    /// Log id of the last pending entry: the end of the log as openraft sees it.
    pub(crate) last: Option<LogId>,
    /// The pending entries inside the range, in order.
    pub(crate) entries: Vec<Entry>,
}

/// The write path of one engine's store.
pub(crate) struct LogPipeline {
    store: Arc<dyn LogStore>,
    /// `None` when writes run inline.
    writer: Option<LogWriter<Flush>>,
    pending: Arc<Mutex<Pending>>,
}

impl fmt::Debug for LogPipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogPipeline")
            .field("queued", &self.writer.is_some())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl LogPipeline {
    /// Queues writes on a dedicated thread when `store` may block and the current runtime has
    /// other workers; writes inline otherwise.
    pub(crate) fn new(store: Arc<dyn LogStore>) -> io::Result<Arc<Self>> {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let writer = if multi_thread && store.may_block() {
            let tail = Arc::clone(&pending);
            let on_durable = move |flushes: Vec<Flush>, result: raftengine::Result<()>| {
                // Durable (or failed for good: the node stops): either way the store, not the
                // tail, is the truth for these entries from now on.
                if let Some(&(seq, _)) = flushes.last() {
                    let mut pending = lock(&tail);
                    while pending.seqs.front().is_some_and(|s| *s <= seq) {
                        pending.seqs.pop_front();
                        pending.entries.pop_front();
                    }
                }
                for (_, callback) in flushes {
                    callback.io_completed(result.as_ref().map(|_| ()).map_err(io_error));
                }
            };
            Some(
                LogWriter::start("raft-log-io", Arc::clone(&store), on_durable)
                    .map_err(io_error)?,
            )
        } else {
            None
        };
        Ok(Arc::new(Self {
            store,
            writer,
            pending,
        }))
    }

    /// The store written through this pipeline.
    pub(crate) fn store(&self) -> &Arc<dyn LogStore> {
        &self.store
    }

    /// Appends `entries` (the store's records and openraft's entries, index by index). Returns
    /// once they are readable; `callback` reports when they are durable.
    pub(crate) fn append(
        &self,
        entries: Vec<(LogEntry, Entry)>,
        callback: IOFlushed<TypeConfig>,
    ) -> io::Result<()> {
        let Some(writer) = &self.writer else {
            let stored: Vec<LogEntry> = entries.into_iter().map(|(stored, _)| stored).collect();
            let store = &*self.store;
            write(store, || store.append(&stored)).map_err(io_error)?;
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let Some((first, _)) = entries.first() else {
            callback.io_completed(Ok(()));
            return Ok(());
        };
        let first = first.index - 1;
        let mut stored = Vec::with_capacity(entries.len());
        let seq;
        {
            let mut pending = lock(&self.pending);
            seq = pending.next_seq;
            pending.next_seq += 1;
            let keep = pending.entries.partition_point(|(index, _)| *index < first);
            pending.entries.truncate(keep);
            pending.seqs.truncate(keep);
            for (record, entry) in entries {
                pending.entries.push_back((record.index - 1, entry));
                pending.seqs.push_back(seq);
                stored.push(record);
            }
        }
        writer
            .append(stored, None, (seq, callback))
            .map_err(io_error)
    }

    /// Runs one store write after everything queued before it, and waits for it.
    pub(crate) async fn write(
        &self,
        run: impl FnOnce(&dyn LogStore) -> raftengine::Result<()> + Send + 'static,
    ) -> io::Result<()> {
        let Some(writer) = &self.writer else {
            let store = &*self.store;
            return write(store, || run(store)).map_err(io_error);
        };
        let (reply, answer) = oneshot::channel();
        writer
            .write(run, move |result| {
                let _ = reply.send(result);
            })
            .map_err(io_error)?;
        // Each store write has its own deadline (the store's), so this wait is bounded by the
        // writes queued ahead of it.
        answer.await.map_err(|_| stopped())?.map_err(io_error)
    }

    /// The pending entries with index in `[from, to)` (`to = None`: to the end).
    pub(crate) fn pending(&self, from: u64, to: Option<u64>) -> PendingView {
        let pending = lock(&self.pending);
        let first = pending.entries.front().map(|(index, _)| *index);
        let last = pending.entries.back().map(|(_, entry)| entry.log_id);
        let entries = pending
            .entries
            .iter()
            .filter(|(index, _)| *index >= from && to.is_none_or(|to| *index < to))
            .map(|(_, entry)| entry.clone())
            .collect();
        PendingView {
            first,
            last,
            entries,
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("the log writer thread has stopped")
}

#[cfg(test)]
mod tests {
    use std::sync::Condvar;

    use bytes::Bytes;
    use openraft::entry::RaftEntry;
    use openraft::storage::RaftLogStorage;
    use openraft::type_config::TypeConfigExt;
    use openraft::{EntryPayload, RaftLogReader};
    use raftengine::{LogState, MemLogStore, Result, StoredSnapshot};

    use super::*;
    use crate::storage::LogStorage;
    use crate::types::log_id;

    /// A store whose appends wait until the gate opens: a slow disk.
    #[derive(Debug, Default)]
    struct Gated {
        inner: MemLogStore,
        open: Mutex<bool>,
        opened: Condvar,
    }

    impl Gated {
        fn open(&self) {
            *lock(&self.open) = true;
            self.opened.notify_all();
        }
    }

    impl LogStore for Gated {
        fn append(&self, entries: &[LogEntry]) -> Result<()> {
            let mut open = lock(&self.open);
            while !*open {
                open = self.opened.wait(open).unwrap_or_else(|p| p.into_inner());
            }
            self.inner.append(entries)
        }
        fn truncate_from(&self, index: u64) -> Result<()> {
            self.inner.truncate_from(index)
        }
        fn purge_to(&self, index: u64, term: u64) -> Result<()> {
            self.inner.purge_to(index, term)
        }
        fn entries(&self, from: u64, to: u64) -> Result<Vec<LogEntry>> {
            self.inner.entries(from, to)
        }
        fn term(&self, index: u64) -> Result<Option<u64>> {
            self.inner.term(index)
        }
        fn log_state(&self) -> Result<LogState> {
            self.inner.log_state()
        }
        fn save_hard_state(&self, state: Bytes) -> Result<()> {
            self.inner.save_hard_state(state)
        }
        fn hard_state(&self) -> Result<Option<Bytes>> {
            self.inner.hard_state()
        }
        fn save_snapshot(&self, snapshot: StoredSnapshot) -> Result<()> {
            self.inner.save_snapshot(snapshot)
        }
        fn install_snapshot(&self, snapshot: StoredSnapshot) -> Result<()> {
            self.inner.install_snapshot(snapshot)
        }
        fn snapshot(&self) -> Result<Option<StoredSnapshot>> {
            self.inner.snapshot()
        }
    }

    fn blank(term: u64, index: u64) -> Entry {
        Entry::new(log_id(term, index), EntryPayload::Blank)
    }

    fn terms(entries: &[Entry]) -> Vec<(u64, u64)> {
        entries
            .iter()
            .map(|e| (e.log_id.index(), e.log_id.leader_id.term))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_are_readable_before_they_are_durable_and_a_conflict_replaces_the_tail() {
        let store = Arc::new(Gated::default());
        let pipeline = LogPipeline::new(store.clone()).unwrap();
        let mut log = LogStorage::new(pipeline);
        let (first_done, first_flushed) = TypeConfig::oneshot();
        log.append(
            [blank(1, 0), blank(1, 1), blank(1, 2)],
            IOFlushed::signal(first_done),
        )
        .await
        .unwrap();
        // Not durable yet, but readable, and the log's end is the tail's.
        assert!(store.inner.is_empty());
        let read = log.try_get_log_entries(0..3).await.unwrap();
        assert_eq!(terms(&read), [(0, 1), (1, 1), (2, 1)]);
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 2)));

        // A new leader's entry at index 1 replaces the tail from there on.
        let (second_done, second_flushed) = TypeConfig::oneshot();
        log.append([blank(2, 1)], IOFlushed::signal(second_done))
            .await
            .unwrap();
        let read = log.try_get_log_entries(0..).await.unwrap();
        assert_eq!(terms(&read), [(0, 1), (1, 2)]);

        store.open();
        first_flushed.await.unwrap().unwrap();
        second_flushed.await.unwrap().unwrap();
        let stored = store.inner.entries(1, 3).unwrap();
        assert_eq!(
            stored.iter().map(|e| (e.index, e.term)).collect::<Vec<_>>(),
            [(1, 1), (2, 2)]
        );
        assert_eq!(store.inner.len(), 2);
        let read = log.try_get_log_entries(0..).await.unwrap();
        assert_eq!(terms(&read), [(0, 1), (1, 2)]);
    }
}
