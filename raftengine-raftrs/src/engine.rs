//! [`RaftRsEngine`]: the handle applications hold; every call becomes an event for the driver
//! task and waits (with the configured deadline) for its answer.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use raft::ReadOnlyOption;
use raftengine::adapter::{LeadershipTracker, StatusChannel, with_deadline};
use raftengine::{
    Applied, Capabilities, Clock, Config, Engine, EngineParts, Error, ErrorKind, Inbound,
    LeaderLossCallback, Membership, NodeId, QuorumAck, ReadIndex, RejectReason, Result,
    SnapshotInfo, StartEngine, StateMachine, Status, Subscription, Timing,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::{Driver, DriverInit};
use crate::errors::{NodeView, map_error};
use crate::membership::Change;
use crate::quorum::QuorumTime;
use crate::shared::{EVENT_QUEUE, Event, SHUTDOWN_GRACE, Shared};
use crate::storage::RaftStorage;
use crate::timing::Ticks;

/// The [`Engine`] contract on tikv raft-rs 0.7 (`RawNode` driven by one tokio task).
///
/// Construct with [`raftengine::StartEngine::start`], from the same
/// [`raftengine::EngineParts`] as every other backend. Dropping the engine without calling
/// [`Engine::shutdown`] stops it too (like a crash: the log store keeps what was written).
///
/// Behaviour worth knowing:
/// - check-quorum and pre-vote are on; reads use ReadIndex with `ReadOnlyOption::Safe`
///   (never `LeaseBased`);
/// - a follower refuses proposals with `NotLeader` (raft-rs would forward them silently);
/// - after a **restart** (the store held state) the node drops vote requests for one election
///   timeout, so a leader's lease cannot be broken by a node that forgot it heard from it;
/// - the state machine is volatile: at start it is restored from the newest stored snapshot and
///   the log after it is replayed up to the stored commit index, so pass a state machine in its
///   initial state;
/// - `transfer_leadership(Some(self))` is rejected with `TargetIsSelf`, like any other
///   invalid target; a leader asked to remove itself is rejected with `TargetIsSelf` too
///   (transfer first, then remove it through the new leader).
pub struct RaftRsEngine {
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
}

impl std::fmt::Debug for RaftRsEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftRsEngine")
            .field("id", &self.shared.id)
            .field("status", &*self.shared.status.borrow())
            .finish()
    }
}

/// Hands inbound peer messages to the driver task without blocking.
struct InboundHandler {
    events: mpsc::Sender<Event>,
    dropped: Arc<AtomicU64>,
}

#[async_trait]
impl Inbound for InboundHandler {
    async fn on_call(&self, _from: NodeId, _request: Bytes) -> Bytes {
        // raft-rs speaks one-way messages only.
        Bytes::new()
    }

    fn on_message(&self, from: NodeId, message: Bytes) {
        let event = Event::Message {
            from,
            bytes: message,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(event) {
            // Raft retransmits; an overloaded driver must not buffer peers without bound.
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "raft-rs driver queue full: dropping peer messages");
            }
        }
    }
}

/// Starts a node whose ticks and reported times follow the parts' clock. One raft tick is
/// `heartbeat_interval / 5` (see [`Engine::timing`]).
impl StartEngine for RaftRsEngine {
    async fn start<S: StateMachine>(parts: EngineParts<S>) -> Result<Self> {
        Self::start_parts(parts).await
    }
}

impl RaftRsEngine {
    async fn start_parts<S: StateMachine>(parts: EngineParts<S>) -> Result<Self> {
        let EngineParts {
            config,
            state_machine,
            store,
            transport,
            clock,
            ..
        } = parts;
        config.validate()?;
        if transport.local_id() != config.node_id {
            return Err(Error::rejected(RejectReason::InvalidConfig(format!(
                "the transport sends as node {} but node_id is {}",
                transport.local_id(),
                config.node_id
            ))));
        }
        let state_machine = state_machine.into_dyn();
        let voters: Vec<u64> = config.initial_voters.iter().copied().collect();
        let (storage, boot) = RaftStorage::open(Arc::clone(&store), &voters, || {
            state_machine.lock().snapshot()
        })?;
        if let Some(data) = &boot.snapshot_data {
            state_machine.lock().restore(data).map_err(|e| {
                Error::new(ErrorKind::Storage).with_context(format!(
                    "the state machine refused the stored snapshot: {e}"
                ))
            })?;
        }
        let ticks = Ticks::from_config(&config);
        let raft_config = raft_config(&config, &ticks, boot.applied);
        raft_config
            .validate()
            .map_err(|e| map_error(e, &startup_view()))?;
        let incarnation = storage.incarnation();
        let node = catch_unwind(AssertUnwindSafe(|| {
            raft::RawNode::new(&raft_config, storage, &crate::logger::logger())
        }))
        .map_err(|_| {
            Error::new(ErrorKind::Fatal).with_context("raft-rs panicked loading the stored state")
        })?
        .map_err(|e| map_error(e, &startup_view()))?;
        let mut node = node;
        let completions = node.mut_store().start_persister()?;

        let (events, receiver) = mpsc::channel(EVENT_QUEUE);
        let status = StatusChannel::new(Status {
            id: config.node_id,
            ..Status::default()
        });
        let (done, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            id: config.node_id,
            ticks,
            clock,
            transport: Arc::clone(&transport),
            status,
            tracker: LeadershipTracker::new(),
            ack: Mutex::new(None),
            halted: Mutex::new(None),
            done,
            released: std::sync::atomic::AtomicBool::new(false),
            stop: tokio::sync::Notify::new(),
            dropped_messages: Arc::new(AtomicU64::new(0)),
            config,
        });
        let driver = Driver::new(DriverInit {
            shared: Arc::clone(&shared),
            node,
            state_machine,
            incarnation,
            applied: boot.applied,
            applied_term: boot.applied_term,
            restarted: boot.restarted,
            completions,
        });
        let span = tracing::info_span!("raftrs", node = shared.id);
        let task = tokio::spawn(tracing::Instrument::instrument(driver.run(receiver), span));
        // Supervisor: a panic that escaped the driver's own guard still ends every wait.
        let supervised = Arc::clone(&shared);
        tokio::spawn(async move {
            if let Err(err) = task.await
                && err.is_panic()
            {
                tracing::error!(node = supervised.id, %err, "the raft driver task ended abnormally");
                supervised.set_halted(ErrorKind::Fatal);
                supervised.finish(raftengine::LossCause::Fatal);
            }
        });
        transport.serve(Arc::new(InboundHandler {
            events: events.clone(),
            dropped: Arc::clone(&shared.dropped_messages),
        }));
        Ok(Self { shared, events })
    }

    fn halted_or_shutdown(&self) -> Error {
        self.shared.halted_error().unwrap_or_else(Error::shutdown)
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Event,
    ) -> Result<T> {
        if let Some(err) = self.shared.halted_error() {
            return Err(err);
        }
        let (tx, rx) = oneshot::channel();
        match self.events.try_send(make(tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(Error::new(ErrorKind::Busy).with_context(format!(
                    "the raft-rs driver has {EVENT_QUEUE} events queued; nothing was proposed"
                )));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(self.halted_or_shutdown()),
        }
        with_deadline(self.shared.config.request_timeout, async {
            match rx.await {
                Ok(result) => result,
                Err(_) => Err(self.halted_or_shutdown()),
            }
        })
        .await
    }
}

fn startup_view() -> NodeView {
    NodeView {
        role: raft::StateRole::Follower,
        leader_id: 0,
        lead_transferee: None,
        in_config: false,
    }
}

fn raft_config(config: &Config, ticks: &Ticks, applied: u64) -> raft::Config {
    let max_uncommitted = config.max_uncommitted_bytes as u64;
    raft::Config {
        id: config.node_id,
        election_tick: ticks.election,
        heartbeat_tick: ticks.heartbeat,
        min_election_tick: ticks.election,
        max_election_tick: ticks.max_election,
        applied,
        max_size_per_msg: (1u64 << 20).min(max_uncommitted),
        max_inflight_msgs: 256,
        // Off (raft-rs's default), deliberately: with it, duplicated or reordered messages made
        // a follower panic inside raft-rs ("to_commit … is out of range"). The driver batches
        // the proposals of an iteration into one `MsgPropose` instead, which gives the same one
        // append per follower.
        batch_append: false,
        check_quorum: true,
        pre_vote: true,
        read_only_option: ReadOnlyOption::Safe,
        max_uncommitted_size: max_uncommitted,
        ..raft::Config::default()
    }
}

impl Drop for RaftRsEngine {
    /// Dropping the handle stops the node like a crash. The transport handler is removed right
    /// away (not when the task gets to it), so a new engine started on the same transport
    /// immediately afterwards keeps its own handler.
    fn drop(&mut self) {
        self.shared.release_transport();
        self.shared.stop.notify_one();
    }
}

#[async_trait]
impl Engine for RaftRsEngine {
    fn id(&self) -> NodeId {
        self.shared.id
    }

    fn status(&self) -> Status {
        self.shared.status.borrow().clone()
    }

    fn watch_status(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe()
    }

    fn watch_leadership(&self) -> watch::Receiver<Status> {
        self.shared.status.subscribe_leadership()
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.shared.clock)
    }

    async fn propose(&self, command: Bytes) -> Result<Applied> {
        self.shared.config.check_command_size(command.len())?;
        self.request(|reply| Event::Propose { command, reply })
            .await
    }

    async fn linearizable_read(&self) -> Result<ReadIndex> {
        self.request(|reply| Event::Read { reply }).await
    }

    fn on_leader_loss(&self, callback: LeaderLossCallback) -> Subscription {
        self.shared.tracker.subscribe(callback)
    }

    fn timing(&self) -> Timing {
        self.shared.ticks.timing(&self.shared.config)
    }

    fn quorum_ack(&self) -> Option<QuorumAck> {
        let published = *self.shared.ack.lock().unwrap_or_else(|p| p.into_inner());
        let published = published?;
        let sent_at = match published.time {
            QuorumTime::At(t) => t,
            // The driver publishes a single voter's own proof as `At(iteration time)`; a time
            // taken here would postdate the caller's clock sample and never renew a lease.
            QuorumTime::SelfOnly | QuorumTime::None => return None,
        };
        Some(QuorumAck {
            term: published.term,
            sent_at,
        })
    }

    async fn transfer_leadership(&self, target: Option<NodeId>) -> Result<NodeId> {
        self.request(|reply| Event::Transfer { target, reply })
            .await
    }

    async fn add_learner(&self, id: NodeId) -> Result<Membership> {
        self.request(|reply| Event::Membership {
            change: Change::AddLearner(id),
            reply,
        })
        .await
    }

    async fn promote_learner(&self, id: NodeId) -> Result<Membership> {
        self.request(|reply| Event::Membership {
            change: Change::Promote(id),
            reply,
        })
        .await
    }

    async fn remove_node(&self, id: NodeId) -> Result<Membership> {
        self.request(|reply| Event::Membership {
            change: Change::Remove(id),
            reply,
        })
        .await
    }

    async fn snapshot(&self) -> Result<SnapshotInfo> {
        self.request(|reply| Event::Snapshot { reply }).await
    }

    async fn shutdown(&self) -> Result<()> {
        let mut done = self.shared.done.subscribe();
        if !*done.borrow() {
            self.shared.stop.notify_one();
            let wait = async {
                let _ = done.wait_for(|finished| *finished).await;
                Ok(())
            };
            with_deadline(SHUTDOWN_GRACE, wait).await?;
        }
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }
}
