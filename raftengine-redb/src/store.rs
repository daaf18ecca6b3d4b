//! `RedbLogStore`: one redb file, many Raft groups, one writer thread that group-commits.

use std::fmt;
use std::fs::OpenOptions;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use raftengine::{
    Error, ErrorKind, LogEntry, LogState, LogStore, Result, StoredSnapshot, WriteOutcome,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::backend::{DiskBackend, DiskCounters};
use crate::codec::{self, META_HARD_STATE, META_PURGED, META_SNAPSHOT};
use crate::error::{corrupted, map_redb, refused};
use crate::positions::{Positions, known_term};

/// `(group, index) -> crc | term | payload`.
const ENTRIES: TableDefinition<'_, (u64, u64), &[u8]> = TableDefinition::new("raft_entries");
/// `(group, kind) -> crc | body`, kinds in [`codec`].
const META: TableDefinition<'_, (u64, u8), &[u8]> = TableDefinition::new("raft_meta");

/// A batch stops growing past this many payload bytes, so one huge append does not hold many
/// small ones behind a multi-second commit, and memory stays bounded.
const MAX_BATCH_BYTES: usize = 64 << 20;
/// ... or past this many requests.
const MAX_BATCH_OPS: usize = 4096;

/// How long [`RedbLogStore`] waits for the writer thread to finish its last batch on drop.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings for [`RedbLogStore::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long a write waits for its batch to become durable before it fails with a
    /// [`ErrorKind::Storage`] error of unknown outcome (the batch may still commit later).
    pub write_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// What the store has done since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Write requests received (appends, truncations, purges, hard states, snapshots).
    pub writes: u64,
    /// redb write transactions committed; each carries one or more writes.
    pub commits: u64,
    /// `fsync`s (data syncs) issued on the file.
    pub syncs: u64,
}

/// A durable log store: one redb database file holding the logs of any number of Raft groups.
///
/// Every write returns once it is on disk (a redb commit with [`Durability::Immediate`]).
/// Writes from all groups and threads go to one writer thread, which commits everything that
/// queued up while the previous commit was syncing as one transaction: one fsync per batch,
/// however many groups and entries it carries. Readers never wait for the writer.
///
/// Every value carries a CRC32 over its key and bytes, and the file's page checksums are
/// verified when it is opened, so damage surfaces as an [`ErrorKind::Storage`] error that names
/// the file, never as wrong entries. Verifying on open reads the whole file: opening costs time
/// proportional to the log's size, which purging keeps small.
///
/// Cloning is cheap and every clone shares the file; the file is closed when the last clone and
/// the last [`RedbGroup`] are dropped.
#[derive(Clone)]
pub struct RedbLogStore {
    core: Arc<Core>,
}

/// The [`LogStore`] of one Raft group inside a [`RedbLogStore`].
#[derive(Clone)]
pub struct RedbGroup {
    core: Arc<Core>,
    group: u64,
}

struct Core {
    path: PathBuf,
    db: Arc<Database>,
    requests: Option<Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    writer_done: Mutex<Receiver<()>>,
    counters: Arc<DiskCounters>,
    stats: Arc<WriterStats>,
    positions: Arc<Positions>,
    options: StoreOptions,
}

#[derive(Debug, Default)]
struct WriterStats {
    writes: AtomicU64,
    commits: AtomicU64,
}

#[derive(Debug)]
enum Op {
    /// Entries already encoded by the caller's thread: `(index, term, value)`.
    Append(Vec<(u64, Vec<u8>)>),
    TruncateFrom(u64),
    PurgeTo(u64, u64),
    SaveHardState(Vec<u8>),
    SaveSnapshot(u64, Vec<u8>),
    InstallSnapshot(u64, u64, Vec<u8>),
}

impl Op {
    fn bytes(&self) -> usize {
        match self {
            Op::Append(entries) => entries.iter().map(|(_, v)| v.len()).sum(),
            Op::SaveHardState(value) | Op::SaveSnapshot(_, value) => value.len(),
            Op::InstallSnapshot(_, _, value) => value.len(),
            Op::TruncateFrom(_) | Op::PurgeTo(..) => 0,
        }
    }
}

struct Request {
    group: u64,
    op: Op,
    reply: SyncSender<Result<()>>,
}

impl RedbLogStore {
    /// Opens (or creates) the database file at `path` with default [`StoreOptions`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, StoreOptions::default())
    }

    /// Opens (or creates) the database file at `path`. A damaged file fails here with an
    /// [`ErrorKind::Storage`] error naming it.
    pub fn open_with(path: impl AsRef<Path>, options: StoreOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let counters = Arc::new(DiskCounters::default());
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| map_redb(&path, "open", e))?;
        let db = guarded(&path, "open", || {
            let backend =
                DiskBackend::new(file, counters.clone()).map_err(|e| map_redb(&path, "open", e))?;
            let db = Database::builder()
                .set_check_integrity_on_open(true)
                .create_with_backend(backend)
                .map_err(|e| map_redb(&path, "open", e))?;
            let txn = db.begin_write().map_err(|e| map_redb(&path, "open", e))?;
            {
                txn.open_table(ENTRIES)
                    .map_err(|e| map_redb(&path, "open", e))?;
                txn.open_table(META)
                    .map_err(|e| map_redb(&path, "open", e))?;
            }
            txn.commit().map_err(|e| map_redb(&path, "open", e))?;
            Ok(db)
        })?;
        let db = Arc::new(db);
        let stats = Arc::new(WriterStats::default());
        let positions = Arc::new(Positions::default());
        let (requests, queue) = mpsc::channel();
        let (done_tx, writer_done) = mpsc::sync_channel(1);
        let writer = {
            let db = db.clone();
            let writer_path = path.clone();
            let stats = stats.clone();
            let positions = positions.clone();
            std::thread::Builder::new()
                .name("redb-log-writer".into())
                .spawn(move || {
                    run_writer(&db, &writer_path, &queue, &stats, &positions);
                    drop(db);
                    let _ = done_tx.send(());
                })
                .map_err(|e| {
                    Error::new(ErrorKind::Storage)
                        .with_context(format!(
                            "{}: cannot start the writer thread",
                            path.display()
                        ))
                        .with_source(e)
                })?
        };
        Ok(Self {
            core: Arc::new(Core {
                path,
                db,
                requests: Some(requests),
                writer: Some(writer),
                writer_done: Mutex::new(writer_done),
                counters,
                stats,
                positions,
                options,
            }),
        })
    }

    /// The log store of Raft group `group_id`. Groups share the file and its fsyncs but never
    /// see each other's data.
    pub fn group(&self, group_id: u64) -> RedbGroup {
        RedbGroup {
            core: self.core.clone(),
            group: group_id,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.core.path
    }

    /// Counters since open: how many writes were batched into how many commits and fsyncs.
    pub fn stats(&self) -> StoreStats {
        self.core.stats()
    }

    /// Makes every following disk write and sync fail, as a full or dying disk would, until
    /// turned off. A failed commit leaves redb unusable until the file is reopened, exactly as a
    /// real I/O error does; reads of what was committed before keep working.
    pub fn set_fail_writes(&self, fail: bool) {
        self.core
            .counters
            .fail_writes
            .store(fail, Ordering::Relaxed);
    }
}

impl Core {
    fn stats(&self) -> StoreStats {
        StoreStats {
            writes: self.stats.writes.load(Ordering::Relaxed),
            commits: self.stats.commits.load(Ordering::Relaxed),
            syncs: self.counters.syncs.load(Ordering::Relaxed),
        }
    }

    fn submit(&self, group: u64, op: Op) -> Result<()> {
        let (reply, answer) = mpsc::sync_channel(1);
        let stopped = || {
            Error::new(ErrorKind::Storage)
                .with_outcome(WriteOutcome::NotApplied)
                .with_context(format!(
                    "{}: the writer thread has stopped",
                    self.path.display()
                ))
        };
        let requests = self.requests.as_ref().ok_or_else(stopped)?;
        requests
            .send(Request { group, op, reply })
            .map_err(|_| stopped())?;
        match answer.recv_timeout(self.options.write_timeout) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(Error::new(ErrorKind::Storage)
                .with_outcome(WriteOutcome::Unknown)
                .with_context(format!(
                    "{}: the write was not durable within {:?}; it may still commit",
                    self.path.display(),
                    self.options.write_timeout
                ))),
            Err(RecvTimeoutError::Disconnected) => Err(Error::new(ErrorKind::Storage)
                .with_context(format!(
                    "{}: the writer thread stopped before answering",
                    self.path.display()
                ))),
        }
    }

    fn read<T>(
        &self,
        what: &str,
        f: impl FnOnce(
            &redb::ReadOnlyTable<(u64, u64), &[u8]>,
            &redb::ReadOnlyTable<(u64, u8), &[u8]>,
        ) -> Result<T>,
    ) -> Result<T> {
        let path = &self.path;
        guarded(path, what, || {
            let txn = self.db.begin_read().map_err(|e| map_redb(path, what, e))?;
            let entries = txn
                .open_table(ENTRIES)
                .map_err(|e| map_redb(path, what, e))?;
            let meta = txn.open_table(META).map_err(|e| map_redb(path, what, e))?;
            f(&entries, &meta)
        })
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // Closing the queue is the writer's signal to finish its batch and exit; waiting for it
        // means the file is closed (and can be reopened) once the last handle is gone.
        drop(self.requests.take());
        let done = match self.writer_done.get_mut() {
            Ok(done) => done.recv_timeout(CLOSE_TIMEOUT).is_ok(),
            Err(mut poisoned) => poisoned.get_mut().recv_timeout(CLOSE_TIMEOUT).is_ok(),
        };
        if done && let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Runs `f`, turning a panic inside redb (which a damaged file can cause) into a storage error.
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(Error::new(ErrorKind::Storage).with_context(format!(
            "{}: {what}: redb failed on the file's contents; the file is likely corrupted",
            path.display()
        )))
    })
}

fn run_writer(
    db: &Database,
    path: &Path,
    queue: &Receiver<Request>,
    stats: &WriterStats,
    positions: &Positions,
) {
    while let Ok(first) = queue.recv() {
        let mut bytes = first.op.bytes();
        let mut batch = vec![first];
        while bytes < MAX_BATCH_BYTES && batch.len() < MAX_BATCH_OPS {
            match queue.try_recv() {
                Ok(next) => {
                    bytes += next.op.bytes();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        stats
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        match guarded(path, "commit", || commit_batch(db, path, &batch)) {
            Ok((outcomes, changed)) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                // Before any answer: a caller reads its own write's positions from the cache.
                positions.publish(changed);
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = request.reply.send(outcome);
                }
            }
            Err(err) => {
                let context = err.context().unwrap_or("commit failed").to_owned();
                for request in batch {
                    let _ = request.reply.send(Err(
                        Error::new(ErrorKind::Storage).with_context(context.clone())
                    ));
                }
            }
        }
    }
}

type EntriesTable<'t> = Table<'t, (u64, u64), &'static [u8]>;
type MetaTable<'t> = Table<'t, (u64, u8), &'static [u8]>;

/// Each request's own outcome, and the log positions of every group the batch touched.
type Committed = (Vec<Result<()>>, Vec<(u64, LogState)>);

/// One transaction for the whole batch. The outer error aborts the batch (nothing in it is
/// durable); an inner error refuses one request, which changed nothing, while the rest commit.
/// Also returns the log positions of every group the batch touched, as committed.
fn commit_batch(db: &Database, path: &Path, batch: &[Request]) -> Result<Committed> {
    let redb_err = |e: redb::Error| map_redb(path, "commit", e);
    let mut txn = db.begin_write().map_err(|e| redb_err(e.into()))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| redb_err(e.into()))?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut changed = Vec::new();
    {
        let mut entries = txn.open_table(ENTRIES).map_err(|e| redb_err(e.into()))?;
        let mut meta = txn.open_table(META).map_err(|e| redb_err(e.into()))?;
        for request in batch {
            let mut group = GroupTx {
                path,
                group: request.group,
                entries: &mut entries,
                meta: &mut meta,
            };
            outcomes.push(group.apply(&request.op)?);
        }
        let mut groups: Vec<u64> = batch.iter().map(|r| r.group).collect();
        groups.sort_unstable();
        groups.dedup();
        for group in groups {
            let view = View {
                path,
                group,
                entries: &entries,
                meta: &meta,
            };
            changed.push((group, view.log_state()?));
        }
    }
    txn.commit().map_err(|e| redb_err(e.into()))?;
    Ok((outcomes, changed))
}

/// Reads shared by readers and the writer, over any readable pair of tables.
struct View<'a, E, M> {
    path: &'a Path,
    group: u64,
    entries: &'a E,
    meta: &'a M,
}

impl<E, M> View<'_, E, M>
where
    E: ReadableTable<(u64, u64), &'static [u8]>,
    M: ReadableTable<(u64, u8), &'static [u8]>,
{
    fn redb(&self, e: impl Into<redb::Error>) -> Error {
        map_redb(self.path, &format!("group {}", self.group), e)
    }

    fn purged(&self) -> Result<Option<(u64, u64)>> {
        let Some(value) = self
            .meta
            .get((self.group, META_PURGED))
            .map_err(|e| self.redb(e))?
        else {
            return Ok(None);
        };
        codec::decode_purged(self.group, value.value())
            .map(Some)
            .ok_or_else(|| corrupted(self.path, format!("purge point of group {}", self.group)))
    }

    fn first_index(&self) -> Result<u64> {
        Ok(self.purged()?.map_or(1, |(index, _)| index + 1))
    }

    fn last_entry(&self) -> Result<Option<(u64, u64)>> {
        let mut range = self
            .entries
            .range((self.group, 0)..=(self.group, u64::MAX))
            .map_err(|e| self.redb(e))?;
        let Some(item) = range.next_back() else {
            return Ok(None);
        };
        let (key, value) = item.map_err(|e| self.redb(e))?;
        let index = key.value().1;
        Ok(Some((index, self.entry_term(index, value.value())?)))
    }

    fn entry_term(&self, index: u64, value: &[u8]) -> Result<u64> {
        codec::decode_entry(self.group, index, value)
            .map(|(term, _)| term)
            .ok_or_else(|| self.damaged_entry(index))
    }

    fn damaged_entry(&self, index: u64) -> Error {
        corrupted(self.path, format!("entry {index} of group {}", self.group))
    }

    fn log_state(&self) -> Result<LogState> {
        let purged = self.purged()?;
        let last = self.last_entry()?.or(purged);
        Ok(LogState { purged, last })
    }

    fn term(&self, index: u64) -> Result<Option<u64>> {
        let purged = self.purged()?;
        if let Some((purged_index, term)) = purged {
            if index == purged_index {
                return Ok(Some(term));
            }
            if index < purged_index {
                return Ok(None);
            }
        }
        match self
            .entries
            .get((self.group, index))
            .map_err(|e| self.redb(e))?
        {
            Some(value) => Ok(Some(self.entry_term(index, value.value())?)),
            None => Ok(None),
        }
    }

    fn entries(&self, from: u64, to: u64) -> Result<Vec<LogEntry>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let first = self.first_index()?;
        if from < first {
            return Err(Error::new(ErrorKind::Storage).with_context(format!(
                "{}: group {}: entries from {from} were purged (first index {first})",
                self.path.display(),
                self.group
            )));
        }
        let range = self
            .entries
            .range((self.group, from)..(self.group, to))
            .map_err(|e| self.redb(e))?;
        let mut out = Vec::new();
        for item in range {
            let (key, value) = item.map_err(|e| self.redb(e))?;
            let index = key.value().1;
            let expected = from + out.len() as u64;
            if index != expected {
                // The log is contiguous by construction; a hole means the index is damaged.
                return Err(self.damaged_entry(expected));
            }
            let (term, payload) = codec::decode_entry(self.group, index, value.value())
                .ok_or_else(|| self.damaged_entry(index))?;
            out.push(LogEntry {
                index,
                term,
                payload: Bytes::copy_from_slice(payload),
            });
        }
        Ok(out)
    }

    fn hard_state(&self) -> Result<Option<Bytes>> {
        self.meta_value(META_HARD_STATE, "hard state", codec::decode_hard_state)
    }

    fn snapshot(&self) -> Result<Option<StoredSnapshot>> {
        self.meta_value(META_SNAPSHOT, "snapshot", codec::decode_snapshot)
    }

    fn snapshot_last_index(&self) -> Result<Option<u64>> {
        self.meta_value(META_SNAPSHOT, "snapshot", codec::snapshot_last_index)
    }

    /// The group's metadata record `kind`, decoded; `None` when absent, a `Storage` error naming
    /// the file and `what` when it does not decode.
    fn meta_value<T>(
        &self,
        kind: u8,
        what: &str,
        decode: impl FnOnce(u64, &[u8]) -> Option<T>,
    ) -> Result<Option<T>> {
        let Some(value) = self
            .meta
            .get((self.group, kind))
            .map_err(|e| self.redb(e))?
        else {
            return Ok(None);
        };
        decode(self.group, value.value())
            .map(Some)
            .ok_or_else(|| corrupted(self.path, format!("{what} of group {}", self.group)))
    }
}

/// The writer's view of one group inside the batch's transaction.
struct GroupTx<'a, 't> {
    path: &'a Path,
    group: u64,
    entries: &'a mut EntriesTable<'t>,
    meta: &'a mut MetaTable<'t>,
}

impl GroupTx<'_, '_> {
    fn view(&self) -> View<'_, EntriesTable<'_>, MetaTable<'_>> {
        View {
            path: self.path,
            group: self.group,
            entries: &*self.entries,
            meta: &*self.meta,
        }
    }

    fn refuse(&self, what: impl fmt::Display) -> Result<Result<()>> {
        Ok(Err(refused(self.path, self.group, what)))
    }

    fn apply(&mut self, op: &Op) -> Result<Result<()>> {
        match op {
            Op::Append(entries) => self.append(entries),
            Op::TruncateFrom(index) => {
                let first = self.view().first_index()?;
                if *index < first {
                    return self.refuse(format!(
                        "truncate from {index} reaches into the purged prefix (first index {first})"
                    ));
                }
                self.remove_from(*index)?;
                Ok(Ok(()))
            }
            Op::PurgeTo(index, term) => {
                if let Some(stored) = self.view().term(*index)?
                    && stored != *term
                {
                    return self.refuse(format!(
                        "purge to {index} expects term {term} but the log has term {stored}"
                    ));
                }
                self.purge_to(*index, *term)?;
                Ok(Ok(()))
            }
            Op::SaveHardState(value) => {
                self.put_meta(META_HARD_STATE, value)?;
                Ok(Ok(()))
            }
            Op::SaveSnapshot(last_index, value) => {
                let newer = self
                    .view()
                    .snapshot_last_index()?
                    .is_none_or(|stored| stored <= *last_index);
                if newer {
                    self.put_meta(META_SNAPSHOT, value)?;
                }
                Ok(Ok(()))
            }
            Op::InstallSnapshot(last_index, last_term, value) => {
                if self.view().term(*last_index)? == Some(*last_term) {
                    self.purge_to(*last_index, *last_term)?;
                } else {
                    self.remove_from(0)?;
                    self.put_meta(
                        META_PURGED,
                        &codec::encode_purged(self.group, *last_index, *last_term),
                    )?;
                }
                self.put_meta(META_SNAPSHOT, value)?;
                Ok(Ok(()))
            }
        }
    }

    fn append(&mut self, entries: &[(u64, Vec<u8>)]) -> Result<Result<()>> {
        let Some(&(first, _)) = entries.first() else {
            return Ok(Ok(()));
        };
        let view = self.view();
        let first_index = view.first_index()?;
        let next = view.last_entry()?.map_or(first_index, |(last, _)| last + 1);
        if first < first_index {
            return self.refuse(format!(
                "append at index {first} overlaps the purged prefix (first index {first_index})"
            ));
        }
        if first > next {
            return self.refuse(format!(
                "append at index {first} leaves a gap after index {}",
                next - 1
            ));
        }
        if first < next {
            self.remove_from(first)?;
        }
        let (path, group) = (self.path, self.group);
        for (index, value) in entries {
            self.entries
                .insert((group, *index), value.as_slice())
                .map_err(|e| map_redb(path, &format!("group {group}"), e))?;
        }
        Ok(Ok(()))
    }

    fn remove_from(&mut self, index: u64) -> Result<()> {
        let group = self.group;
        self.entries
            .retain_in((group, index)..=(group, u64::MAX), |_, _| false)
            .map_err(|e| map_redb(self.path, &format!("group {group}"), e))
    }

    fn purge_to(&mut self, index: u64, term: u64) -> Result<()> {
        let view = self.view();
        let first = view.first_index()?;
        if index < first {
            return Ok(());
        }
        let purged = view.purged()?;
        let group = self.group;
        self.entries
            .retain_in((group, 0)..=(group, index), |_, _| false)
            .map_err(|e| map_redb(self.path, &format!("group {group}"), e))?;
        if purged.is_none_or(|(purged, _)| purged < index) {
            self.put_meta(META_PURGED, &codec::encode_purged(group, index, term))?;
        }
        Ok(())
    }

    fn put_meta(&mut self, kind: u8, value: &[u8]) -> Result<()> {
        self.meta
            .insert((self.group, kind), value)
            .map_err(|e| map_redb(self.path, &format!("group {}", self.group), e))?;
        Ok(())
    }
}

impl RedbGroup {
    /// The group id inside the file.
    pub fn group_id(&self) -> u64 {
        self.group
    }

    /// The file's write counters (shared by all groups of the file).
    pub fn stats(&self) -> StoreStats {
        self.core.stats()
    }

    fn read<T>(
        &self,
        what: &str,
        f: impl FnOnce(
            &View<
                '_,
                redb::ReadOnlyTable<(u64, u64), &'static [u8]>,
                redb::ReadOnlyTable<(u64, u8), &'static [u8]>,
            >,
        ) -> Result<T>,
    ) -> Result<T> {
        let path = self.core.path.as_path();
        let group = self.group;
        self.core.read(what, |entries, meta| {
            f(&View {
                path,
                group,
                entries,
                meta,
            })
        })
    }
}

impl LogStore for RedbGroup {
    fn append(&self, entries: &[LogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if entries.windows(2).any(|w| w[1].index != w[0].index + 1) {
            return Err(refused(
                &self.core.path,
                self.group,
                "appended entries are not contiguous",
            ));
        }
        let encoded = entries
            .iter()
            .map(|e| {
                (
                    e.index,
                    codec::encode_entry(self.group, e.index, e.term, &e.payload),
                )
            })
            .collect();
        self.core.submit(self.group, Op::Append(encoded))
    }

    fn truncate_from(&self, index: u64) -> Result<()> {
        self.core.submit(self.group, Op::TruncateFrom(index))
    }

    fn purge_to(&self, index: u64, term: u64) -> Result<()> {
        self.core.submit(self.group, Op::PurgeTo(index, term))
    }

    fn entries(&self, from: u64, to: u64) -> Result<Vec<LogEntry>> {
        self.read("read entries", |view| view.entries(from, to))
    }

    fn term(&self, index: u64) -> Result<Option<u64>> {
        if let Some(term) = known_term(&self.log_state()?, index) {
            return Ok(term);
        }
        self.read("read term", |view| view.term(index))
    }

    fn log_state(&self) -> Result<LogState> {
        if let Some(state) = self.core.positions.get(self.group) {
            return Ok(state);
        }
        let state = self.read("read log state", |view| view.log_state())?;
        self.core.positions.fill(self.group, state);
        Ok(state)
    }

    fn save_hard_state(&self, state: Bytes) -> Result<()> {
        let value = codec::encode_hard_state(self.group, &state);
        self.core.submit(self.group, Op::SaveHardState(value))
    }

    fn hard_state(&self) -> Result<Option<Bytes>> {
        self.read("read hard state", |view| view.hard_state())
    }

    fn save_snapshot(&self, snapshot: StoredSnapshot) -> Result<()> {
        let value = codec::encode_snapshot(self.group, &snapshot);
        self.core.submit(
            self.group,
            Op::SaveSnapshot(snapshot.meta.last_index, value),
        )
    }

    fn install_snapshot(&self, snapshot: StoredSnapshot) -> Result<()> {
        let value = codec::encode_snapshot(self.group, &snapshot);
        let meta = &snapshot.meta;
        self.core.submit(
            self.group,
            Op::InstallSnapshot(meta.last_index, meta.last_term, value),
        )
    }

    fn snapshot(&self) -> Result<Option<StoredSnapshot>> {
        self.read("read snapshot", |view| view.snapshot())
    }
}

impl fmt::Debug for RedbLogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbLogStore")
            .field("path", &self.core.path)
            .field("stats", &self.core.stats())
            .finish()
    }
}

impl fmt::Debug for RedbGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbGroup")
            .field("path", &self.core.path)
            .field("group", &self.group)
            .finish()
    }
}
