//! `RaftStateMachine` and `RaftSnapshotBuilder` over the user's [`StateMachine`].
//!
//! Snapshots are the user's snapshot bytes plus openraft's metadata (last log id and the
//! membership as of it), kept in the shared [`LogStore`]: locally built ones through
//! `save_snapshot`, ones received from a leader through `install_snapshot` (which also makes the
//! stored log consistent with the snapshot, as openraft expects after an install).
//!
//! On start the user's state machine is restored from the stored snapshot, if any; openraft then
//! re-applies the committed log after it. The state machine handed to the engine must therefore
//! be empty (or be a state the stored snapshot may overwrite).

use std::fmt;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder};
use raftengine::{SharedStateMachine, StateMachine, StoredSnapshot};

use super::io_error;
use super::pipeline::LogPipeline;
use crate::codec::{decode, encode};
use crate::types::{
    LogId, Response, Snapshot, SnapshotMeta, StoredMembership, TypeConfig, engine_index,
    engine_index_of, term_of,
};

/// What has been applied, as openraft needs to know it.
#[derive(Debug, Clone, Default)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

struct Shared {
    user: SharedStateMachine<dyn StateMachine>,
    /// Snapshot writes join the log's queue: an install also trims the log, so it must land
    /// after every append submitted before it.
    pipeline: Arc<LogPipeline>,
    /// Updated while the user's state machine lock is held (lock order: user, then this), so a
    /// snapshot always pairs the user's state with the position it reflects.
    applied: Mutex<Applied>,
    /// Set when the user's state machine panicked: openraft reports it as a storage failure,
    /// and the engine turns that into the contract's `Fatal`.
    panicked: Arc<AtomicBool>,
}

impl Shared {
    fn user_panicked(&self, what: &str) -> io::Error {
        self.panicked.store(true, Ordering::SeqCst);
        user_panicked(what)
    }

    fn applied(&self) -> MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// openraft's state machine: applies entries to the user's state machine and snapshots it.
#[derive(Clone)]
pub(crate) struct StateMachineStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for StateMachineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMachineStore")
            .field("applied", &*self.shared.applied())
            .finish()
    }
}

/// Encodes openraft's snapshot metadata into the store's snapshot record.
fn stored_snapshot(meta: &SnapshotMeta, data: Bytes) -> io::Result<StoredSnapshot> {
    Ok(StoredSnapshot {
        meta: raftengine::SnapshotMeta {
            last_index: engine_index_of(meta.last_log_id.as_ref()),
            last_term: meta.last_log_id.as_ref().map_or(0, term_of),
            membership: Bytes::from(encode(meta).map_err(io_error)?),
        },
        data,
    })
}

fn user_panicked(what: &str) -> io::Error {
    io::Error::other(format!("the user's state machine panicked in {what}"))
}

impl StateMachineStore {
    /// Wraps the user's state machine, restoring it from the store's snapshot if there is one.
    pub(crate) fn open(
        user: SharedStateMachine<dyn StateMachine>,
        pipeline: Arc<LogPipeline>,
    ) -> io::Result<Self> {
        let store = pipeline.store();
        let panicked = Arc::new(AtomicBool::new(false));
        let mut applied = Applied::default();
        if let Some(snapshot) = store.snapshot().map_err(io_error)? {
            let meta: SnapshotMeta = decode(&snapshot.meta.membership).map_err(io_error)?;
            let mut sm = user.lock();
            catch_unwind(AssertUnwindSafe(|| sm.restore(&snapshot.data)))
                .map_err(|_| user_panicked("restore"))?
                .map_err(io_error)?;
            applied = Applied {
                last_applied: meta.last_log_id,
                membership: meta.last_membership,
            };
        }
        Ok(Self {
            shared: Arc::new(Shared {
                user,
                pipeline,
                applied: Mutex::new(applied),
                panicked,
            }),
        })
    }

    /// The flag that tells a panic of the user's state machine apart from a storage failure.
    pub(crate) fn panic_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.shared.panicked)
    }

    fn apply_one(
        &self,
        log_id: LogId,
        payload: EntryPayload<crate::types::Command, u64, openraft::EmptyNode>,
    ) -> io::Result<Response> {
        let mut sm = self.shared.user.lock();
        let response = match payload {
            EntryPayload::Blank => Response::default(),
            EntryPayload::Normal(command) => {
                let (index, term) = (engine_index(log_id.index()), term_of(&log_id));
                let bytes = catch_unwind(AssertUnwindSafe(|| sm.apply(index, term, &command.0)))
                    .map_err(|_| self.shared.user_panicked("apply"))?;
                Response(bytes)
            }
            EntryPayload::Membership(membership) => {
                self.shared.applied().membership = StoredMembership::new(Some(log_id), membership);
                Response::default()
            }
        };
        self.shared.applied().last_applied = Some(log_id);
        drop(sm);
        Ok(response)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = Bytes;
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let applied = self.shared.applied().clone();
        Ok((applied.last_applied, applied.membership))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let response = self.apply_one(entry.log_id, entry.payload)?;
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Bytes,
    ) -> Result<(), io::Error> {
        let record = stored_snapshot(meta, snapshot.clone())?;
        {
            let sm = &mut *self.shared.user.lock();
            catch_unwind(AssertUnwindSafe(|| sm.restore(&snapshot)))
                .map_err(|_| self.shared.user_panicked("restore"))?
                .map_err(io_error)?;
            *self.shared.applied() = Applied {
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
            };
        }
        self.shared
            .pipeline
            .write(move |store| store.install_snapshot(record))
            .await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let Some(stored) = self.shared.pipeline.store().snapshot().map_err(io_error)? else {
            return Ok(None);
        };
        let meta: SnapshotMeta = decode(&stored.meta.membership).map_err(io_error)?;
        Ok(Some(Snapshot {
            meta,
            snapshot: stored.data,
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    type SnapshotData = Bytes;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let (data, applied) = {
            let sm = self.shared.user.lock();
            let applied = self.shared.applied().clone();
            let data = catch_unwind(AssertUnwindSafe(|| sm.snapshot()))
                .map_err(|_| self.shared.user_panicked("snapshot"))?;
            (data, applied)
        };
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership,
        };
        let record = stored_snapshot(&meta, data.clone())?;
        self.shared
            .pipeline
            .write(move |store| store.save_snapshot(record))
            .await?;
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}
