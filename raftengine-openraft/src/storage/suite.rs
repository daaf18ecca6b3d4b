//! openraft's storage conformance suite (`openraft::testing::log::Suite`), run against this
//! adapter's storage.
//!
//! Run twice:
//! - the whole suite over a gap-tolerant in-test [`LogStore`]: several suite cases append
//!   entries that do not start at the log's next index (e.g. index 1 into an empty log), which
//!   the shared store contract refuses as a storage error, while openraft itself never appends
//!   with a gap;
//! - every case that appends contiguously over the shared [`MemLogStore`].

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use openraft::StorageError;
use openraft::errors::ErrorSource;
use openraft::testing::log::{StoreBuilder, Suite};
use raftengine::{
    Error, ErrorKind, LogEntry, LogState, LogStore, MemLogStore, SharedStateMachine, StateMachine,
    StoredSnapshot,
};

use super::{LogPipeline, LogStorage, StateMachineStore};
use crate::types::TypeConfig;

/// A state machine that keeps every applied command, so snapshots carry real data.
#[derive(Default)]
struct Commands(Vec<Vec<u8>>);

impl StateMachine for Commands {
    fn apply(&mut self, _index: u64, _term: u64, command: &[u8]) -> Bytes {
        self.0.push(command.to_vec());
        Bytes::new()
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(self.0.concat())
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.0 = vec![snapshot.to_vec()];
        Ok(())
    }
}

/// A [`LogStore`] on a `BTreeMap` that accepts appends at any index.
#[derive(Default)]
struct GapTolerantStore {
    state: Mutex<GapState>,
}

#[derive(Default)]
struct GapState {
    entries: BTreeMap<u64, LogEntry>,
    purged: Option<(u64, u64)>,
    hard_state: Option<Bytes>,
    snapshot: Option<StoredSnapshot>,
}

impl fmt::Debug for GapTolerantStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GapTolerantStore")
    }
}

impl GapTolerantStore {
    fn lock(&self) -> MutexGuard<'_, GapState> {
        self.state.lock().unwrap()
    }
}

impl GapState {
    fn first_index(&self) -> u64 {
        self.purged.map_or(1, |(i, _)| i + 1)
    }

    fn term(&self, index: u64) -> Option<u64> {
        match self.purged {
            Some((i, t)) if i == index => Some(t),
            _ => self.entries.get(&index).map(|e| e.term),
        }
    }

    fn purge(&mut self, index: u64, term: u64) {
        self.entries.retain(|&i, _| i > index);
        if self.purged.is_none_or(|(p, _)| p < index) {
            self.purged = Some((index, term));
        }
    }
}

impl LogStore for GapTolerantStore {
    fn append(&self, entries: &[LogEntry]) -> raftengine::Result<()> {
        let mut state = self.lock();
        if let Some(first) = entries.first() {
            state.entries.retain(|&i, _| i < first.index);
        }
        for entry in entries {
            state.entries.insert(entry.index, entry.clone());
        }
        Ok(())
    }

    fn truncate_from(&self, index: u64) -> raftengine::Result<()> {
        self.lock().entries.retain(|&i, _| i < index);
        Ok(())
    }

    fn purge_to(&self, index: u64, term: u64) -> raftengine::Result<()> {
        self.lock().purge(index, term);
        Ok(())
    }

    fn entries(&self, from: u64, to: u64) -> raftengine::Result<Vec<LogEntry>> {
        let state = self.lock();
        if from < state.first_index() {
            return Err(Error::new(ErrorKind::Storage).with_context("purged"));
        }
        Ok(state
            .entries
            .range(from..to.max(from))
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn term(&self, index: u64) -> raftengine::Result<Option<u64>> {
        Ok(self.lock().term(index))
    }

    fn log_state(&self) -> raftengine::Result<LogState> {
        let state = self.lock();
        let last = state
            .entries
            .last_key_value()
            .map(|(i, e)| (*i, e.term))
            .or(state.purged);
        Ok(LogState {
            purged: state.purged,
            last,
        })
    }

    fn save_hard_state(&self, state: Bytes) -> raftengine::Result<()> {
        self.lock().hard_state = Some(state);
        Ok(())
    }

    fn hard_state(&self) -> raftengine::Result<Option<Bytes>> {
        Ok(self.lock().hard_state.clone())
    }

    fn save_snapshot(&self, snapshot: StoredSnapshot) -> raftengine::Result<()> {
        let mut state = self.lock();
        if state
            .snapshot
            .as_ref()
            .is_none_or(|s| s.meta.last_index <= snapshot.meta.last_index)
        {
            state.snapshot = Some(snapshot);
        }
        Ok(())
    }

    fn install_snapshot(&self, snapshot: StoredSnapshot) -> raftengine::Result<()> {
        let mut state = self.lock();
        let (index, term) = (snapshot.meta.last_index, snapshot.meta.last_term);
        if state.term(index) != Some(term) {
            state.entries.clear();
            state.purged = Some((index, term));
        } else {
            state.purge(index, term);
        }
        state.snapshot = Some(snapshot);
        Ok(())
    }

    fn snapshot(&self) -> raftengine::Result<Option<StoredSnapshot>> {
        Ok(self.lock().snapshot.clone())
    }
}

/// Builds the adapter's storage over a fresh store made by `S`.
struct Builder<S>(fn() -> S);

impl<S: LogStore> StoreBuilder<TypeConfig, LogStorage, StateMachineStore, Arc<dyn LogStore>>
    for Builder<S>
{
    async fn build(
        &self,
    ) -> Result<(Arc<dyn LogStore>, LogStorage, StateMachineStore), StorageError<TypeConfig>> {
        let store: Arc<dyn LogStore> = Arc::new((self.0)());
        let user = SharedStateMachine::new(Commands::default()).into_dyn();
        let pipeline = LogPipeline::new(Arc::clone(&store))
            .map_err(|e| StorageError::read(ErrorSource::from_error(&e)))?;
        let state_machine = StateMachineStore::open(user, Arc::clone(&pipeline))
            .map_err(|e| StorageError::read(ErrorSource::from_error(&e)))?;
        Ok((store, LogStorage::new(pipeline), state_machine))
    }
}

#[tokio::test(start_paused = true)]
async fn openraft_storage_suite_passes_on_a_gap_tolerant_store() {
    Suite::test_all(Builder(GapTolerantStore::default))
        .await
        .expect("openraft storage suite");
}

type On<S> = Suite<TypeConfig, LogStorage, StateMachineStore, Builder<S>, Arc<dyn LogStore>>;
type Case = Pin<Box<dyn Future<Output = std::io::Result<()>>>>;

macro_rules! cases {
    ($make:expr; $($case:ident),* $(,)?) => {
        vec![$((stringify!($case), Box::pin(async move {
            let (_store, log, sm) = Builder($make).build().await.expect("build");
            On::<S>::$case(log, sm).await
        }) as Case)),*]
    };
}

/// A fresh redb file per case. The directory is removed at once: the open store keeps using
/// the unlinked file, and nothing is left behind when the case drops it.
fn redb_store() -> raftengine_redb::RedbGroup {
    let dir = tempfile::tempdir().expect("temp dir");
    raftengine_redb::RedbLogStore::open(dir.path().join("suite.redb"))
        .expect("open")
        .group(1)
}

#[tokio::test(start_paused = true)]
async fn openraft_storage_suite_contiguous_cases_pass_on_mem_log_store() {
    contiguous_cases(MemLogStore::new).await;
}

#[tokio::test(start_paused = true)]
async fn openraft_storage_suite_contiguous_cases_pass_on_redb_log_store() {
    contiguous_cases(redb_store).await;
}

/// On a multi-thread runtime a redb store's writes go through the log writer thread, and
/// appended entries are read from the pending tail until they are durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_storage_suite_contiguous_cases_pass_on_redb_log_store_through_the_writer_thread()
{
    contiguous_cases(redb_store).await;
}

async fn contiguous_cases<S: LogStore>(make: fn() -> S) {
    let mut failed = Vec::new();
    for (name, case) in cases!(make;
        last_membership_in_log_initial,
        get_membership_initial,
        get_membership_from_empty_log_and_sm,
        get_initial_state_without_init,
        get_initial_state_membership_from_empty_log_and_sm,
        get_initial_state_membership_from_log_insm_is_smaller,
        get_initial_state_with_state,
        get_initial_state_last_log_gt_sm,
        get_initial_state_log_ids,
        save_vote,
        get_log_entries,
        limited_get_log_entries,
        leader_bounded_stream,
        entries_stream,
        try_get_log_entry,
        log_reader_reads_new_entries,
        initial_logs,
        get_log_state,
        get_log_id,
        last_id_in_log,
        last_applied_state,
        purge_logs_upto_0,
        purge_logs_upto_5,
        purge_logs_upto_20,
        delete_logs_after_11,
        delete_logs_after_5,
        delete_logs_after_0,
        delete_logs_after_none,
        append_to_log,
        snapshot_meta,
        snapshot_meta_optional,
        apply_single,
        apply_multiple,
    ) {
        if let Err(e) = case.await {
            failed.push(format!("{name}: {e}"));
        }
    }
    On::<S>::transfer_snapshot(&Builder(make))
        .await
        .unwrap_or_else(|e| failed.push(format!("transfer_snapshot: {e}")));
    assert!(failed.is_empty(), "{failed:#?}");
}
