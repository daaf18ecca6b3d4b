//! [`OpenraftEngine`]: the [`Engine`] contract on openraft 0.10.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::InitializeError;
use openraft::{EmptyNode, LinearizerOption};
use raftengine::adapter::{LeadershipTracker, with_deadline};
use raftengine::{
    Applied, Capabilities, Clock, Config, Engine, EngineParts, Error, ErrorKind,
    LeaderLossCallback, Membership, NodeId, QuorumAck, ReadIndex, Result, Role, SnapshotInfo,
    StartEngine, StateMachine, Status, Subscription, Timing, Transport,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod election;
mod membership;
mod transfer;

pub(crate) use election::LeaderContact;

/// How long `shutdown` waits for openraft's core (and then each of our tasks) to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

use crate::budget::{Answer, InFlight};
use crate::errors::{is_lease_expired, map_error};
use crate::network::{InboundHandler, NetworkFactory};
use crate::recovery::Recovery;
use crate::settings::{openraft_config, timing};
use crate::status::{StatusShared, follow_metrics, membership_of, quorum_ack_age, status_of};
use crate::storage::{LogPipeline, LogStorage, StateMachineStore};
use crate::types::{Command, Raft, engine_index, engine_index_of, seeded, term_of};

/// A Raft node on openraft `=0.10.0-alpha.37`, driven through the [`Engine`] contract.
///
/// Indexes reported by this engine (in [`Status`], [`Applied`], [`ReadIndex`],
/// [`SnapshotInfo`] and to the state machine) are openraft's log indexes plus one, matching the
/// shared [`raftengine::LogStore`] whose first entry is 1.
///
/// Bootstrap: on a store without state, every node listed in `Config::initial_voters` (and
/// itself among them) calls openraft's `initialize` with those voters; all of them write the
/// same membership entry, and "already initialized" is ignored. A node with empty
/// `initial_voters` (or not listed) waits to be added as a learner. A store that holds state
/// ignores `initial_voters`.
#[derive(Clone)]
pub struct OpenraftEngine {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    /// No reads until the state machine holds what was committed before this start.
    recovery: Recovery,
    config: Config,
    timing: Timing,
    raft: Raft,
    clock: Arc<dyn Clock>,
    transport: Arc<dyn Transport>,
    shared: Arc<StatusShared>,
    /// `true` once shutdown began; every waiter watches it.
    stopping: watch::Sender<bool>,
    /// Serializes shutdown so it is idempotent and the second caller waits for the first.
    shutdown_done: tokio::sync::Mutex<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Bytes of this node's proposals that have not been answered yet.
    in_flight: Arc<AtomicUsize>,
    /// Set once the user's state machine panicked: the node is stopped for good (`Fatal`).
    sm_panicked: Arc<std::sync::atomic::AtomicBool>,
}

impl fmt::Debug for OpenraftEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenraftEngine")
            .field("id", &self.inner.id)
            .field("status", &*self.inner.shared.status.borrow())
            .finish()
    }
}

/// The contract's answer once the user's state machine panicked.
fn sm_panic() -> Error {
    Error::new(ErrorKind::Fatal)
        .with_context("the user's state machine panicked; the node stopped and must be restarted")
}

fn storage_error(context: &str, err: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Storage).with_context(format!("{context}: {err}"))
}

/// Starts a node: restores from the store (or bootstraps per `config.initial_voters`), serves
/// peers on the transport, and reports times on the clock. If the store holds a snapshot it is
/// restored into the (empty) state machine and openraft re-applies the committed log after it.
impl StartEngine for OpenraftEngine {
    async fn start<S: StateMachine>(parts: EngineParts<S>) -> Result<Self> {
        Self::start_parts(parts).await
    }
}

impl OpenraftEngine {
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
        let native = openraft_config(&config)?;
        let timing = timing(&config, &native);
        let id = config.node_id;

        let log_state = store.log_state()?;
        let pristine = store.hard_state()?.is_none()
            && log_state.last.is_none()
            && store.snapshot()?.is_none();

        let pipeline = LogPipeline::new(Arc::clone(&store))
            .map_err(|e| storage_error("starting the log writer thread", e))?;
        let state_machine =
            StateMachineStore::open(state_machine.into_dyn(), Arc::clone(&pipeline)).map_err(
                |e| storage_error("restoring the state machine from the stored snapshot", e),
            )?;
        let sm_panicked = state_machine.panic_flag();
        let log = LogStorage::new(pipeline);
        let network = NetworkFactory::new(Arc::clone(&transport), config.rpc_timeout);
        let raft = seeded(
            config.seed,
            Raft::new(id, Arc::new(native), network, log, state_machine),
        )
        .await
        .map_err(map_error)?;

        let refuse_votes_until = (!pristine).then(|| clock.now() + timing.vote_refusal_window);
        let contact = LeaderContact::new(Arc::clone(&clock));
        transport.serve(Arc::new(InboundHandler::new(
            raft.clone(),
            Arc::clone(&clock),
            refuse_votes_until,
            Arc::clone(&contact),
        )));

        if pristine && config.initial_voters.contains(&id) {
            let voters: BTreeMap<NodeId, EmptyNode> = config
                .initial_voters
                .iter()
                .map(|&voter| (voter, EmptyNode {}))
                .collect();
            match raft.initialize(voters).await {
                Ok(()) => {}
                Err(openraft::errors::RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => {
                    transport.stop_serving();
                    let _ = raft.shutdown().await;
                    return Err(map_error(e));
                }
            }
        }

        let initial = status_of(&raft.metrics().borrow_watched());
        let shared = Arc::new(StatusShared::new(
            initial,
            LeadershipTracker::new(),
            timing.vote_refusal_window,
            Arc::clone(&clock),
        ));
        let (stopping, stop_rx) = watch::channel(false);
        let follower = tokio::spawn(follow_metrics(
            Arc::clone(&shared),
            raft.metrics(),
            stop_rx.clone(),
        ));
        let elections = tokio::spawn(election::run_election_timer(
            raft.clone(),
            contact,
            election::Timeouts::new(
                config.seed,
                id,
                timing.election_timeout_min,
                timing.election_timeout_max,
            ),
            // The raft-rs adapter's tick: a fifth of a heartbeat.
            (timing.heartbeat_interval / 5).max(Duration::from_millis(1)),
            stop_rx,
        ));

        Ok(Self {
            inner: Arc::new(Inner {
                id,
                recovery: Recovery::new(log_state.last),
                config,
                timing,
                raft,
                clock,
                transport,
                shared,
                stopping,
                shutdown_done: tokio::sync::Mutex::new(false),
                tasks: Mutex::new(vec![follower, elections]),
                in_flight: Arc::new(AtomicUsize::new(0)),
                sm_panicked,
            }),
        })
    }

    fn check_running(&self) -> Result<()> {
        if self
            .inner
            .sm_panicked
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(sm_panic());
        }
        if *self.inner.stopping.borrow() {
            return Err(Error::shutdown());
        }
        // openraft stops its core for good on a failed store write (the call that met it got
        // `Storage`); every later call is `Fatal` until the node restarts on a healthy store.
        let metrics = self.inner.raft.metrics();
        match &metrics.borrow_watched().running_state {
            Ok(()) => Ok(()),
            Err(openraft::errors::Fatal::Stopped) => Err(Error::shutdown()),
            Err(fatal) => Err(Error::new(ErrorKind::Fatal).with_context(format!(
                "the node stopped after a failure ({fatal}); restart it on a healthy store"
            ))),
        }
    }

    /// Runs `operation` under `limit`, failing it with `Shutdown` as soon as shutdown begins.
    async fn guarded<T>(
        &self,
        limit: Duration,
        operation: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.check_running()?;
        let mut stopping = self.inner.stopping.subscribe();
        let result = tokio::select! {
            result = with_deadline(limit, operation) => result,
            _ = stopping.wait_for(|stopping| *stopping) => Err(Error::shutdown()),
        };
        // openraft reports a panic of the user's state machine as a storage failure.
        match result {
            Err(err)
                if err.kind() == &ErrorKind::Storage
                    && self
                        .inner
                        .sm_panicked
                        .load(std::sync::atomic::Ordering::SeqCst) =>
            {
                Err(sm_panic())
            }
            other => other,
        }
    }

    /// Whether this start has applied everything committed before it (see [`Recovery`]).
    fn recovered(&self) -> bool {
        let status = self.inner.shared.status.borrow();
        self.inner.recovery.is_done(&status)
    }

    /// Waits until [`OpenraftEngine::recovered`]; the caller bounds the wait.
    async fn wait_recovered(&self) -> Result<()> {
        if self.recovered() {
            return Ok(());
        }
        let mut statuses = self.inner.shared.status.subscribe();
        statuses
            .wait_for(|status| self.inner.recovery.is_done(status))
            .await
            .map(|_| ())
            .map_err(|_| Error::shutdown())
    }

    /// The membership openraft currently applies (effective config), from metrics.
    fn current_membership(&self) -> Membership {
        let receiver = self.inner.raft.metrics();
        let metrics = receiver.borrow_watched();
        membership_of(&metrics.membership_config)
    }

    fn require_leader(&self) -> Result<()> {
        let status = self.status();
        match status.role {
            Role::Leader => Ok(()),
            Role::Shutdown => Err(Error::shutdown()),
            _ => Err(Error::not_leader(status.leader)),
        }
    }
}

impl Drop for Inner {
    /// Dropping the last handle without `shutdown` stops the node like a crash: it stops
    /// serving peers, leader-loss callbacks fire, the adapter's tasks end, and openraft's core
    /// is shut down in the background (when a tokio runtime is still there to run it).
    fn drop(&mut self) {
        let already_stopped = self.stopping.send_replace(true);
        for task in self
            .tasks
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
        if already_stopped {
            return;
        }
        self.shared.tracker.lost(raftengine::LossCause::Shutdown);
        self.transport.stop_serving();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let raft = self.raft.clone();
            runtime.spawn(async move {
                let _ = raft.shutdown().await;
            });
        }
    }
}

#[async_trait]
impl Engine for OpenraftEngine {
    fn id(&self) -> NodeId {
        self.inner.id
    }

    fn status(&self) -> Status {
        self.inner.shared.status.borrow().clone()
    }

    fn watch_status(&self) -> watch::Receiver<Status> {
        self.inner.shared.status.subscribe()
    }

    fn watch_leadership(&self) -> watch::Receiver<Status> {
        self.inner.shared.status.subscribe_leadership()
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.inner.clock)
    }

    /// Proposes through openraft's `client_write` under `Config::request_timeout`.
    ///
    /// openraft has no uncommitted-size limit; the adapter approximates
    /// `Config::max_uncommitted_bytes` by the bytes of this node's proposals that openraft has
    /// not answered yet, and refuses a proposal that would exceed it with `Busy` (nothing
    /// appended). A proposal keeps its share of that budget until openraft answers it (applied,
    /// discarded, or the node stopped), not merely until its caller stops waiting: an entry
    /// still in openraft's pipeline after a timeout still counts.
    async fn propose(&self, command: Bytes) -> Result<Applied> {
        self.check_running()?;
        self.inner.config.check_command_size(command.len())?;
        let bytes = command.len();
        let reserve = || {
            InFlight::reserve(
                &self.inner.in_flight,
                bytes,
                self.inner.config.max_uncommitted_bytes,
            )
        };
        let budget = reserve()?;
        let raft = &self.inner.raft;
        let command = Command(command);
        let response = self
            .guarded(self.inner.config.request_timeout, async {
                match submit(raft, command.clone(), budget).await? {
                    // Boxed: the rare path's futures would otherwise size every proposal's
                    // future, which is moved on each call.
                    Err(native) if is_lease_expired(&native) => {
                        Box::pin(retry_after_first_ack(self, command, native, reserve)).await
                    }
                    result => result.map_err(map_error),
                }
            })
            .await?;
        Ok(Applied {
            index: engine_index(response.log_id.index()),
            term: term_of(&response.log_id),
            response: response.data.0,
        })
    }

    async fn linearizable_read(&self) -> Result<ReadIndex> {
        let limit = self.inner.config.request_timeout;
        // ReadIndex: a quorum must acknowledge a heartbeat sent after the request; concurrent
        // reads share one round inside openraft. openraft waits at most `wait` for it.
        let wait = limit.min(self.inner.timing.vote_refusal_window);
        let option = LinearizerOption::new(Some(Duration::ZERO), true).with_wait_timeout(wait);
        let raft = self.inner.raft.clone();
        let read = self
            .guarded(limit, async move {
                let read = raft.ensure_linearizable(option).await.map_err(map_error)?;
                self.wait_recovered().await?;
                Ok(read)
            })
            .await?;
        Ok(ReadIndex {
            index: engine_index(read.index()),
            term: read.committed_leader_id().term,
        })
    }

    fn on_leader_loss(&self, callback: LeaderLossCallback) -> Subscription {
        self.inner.shared.tracker.subscribe(callback)
    }

    fn timing(&self) -> Timing {
        self.inner.timing
    }

    /// The newest quorum-acknowledged send time of this leader's current term, converted to
    /// the engine's clock. `None` while a transfer runs and for the rest of any term in which
    /// this node started one: every voter that received openraft's `TransferLeader` keeps its
    /// vote refusal off for that term.
    fn quorum_ack(&self) -> Option<QuorumAck> {
        if !self.recovered() {
            return None;
        }
        // Read before the age is measured, so the send instants below err early (the safe
        // direction).
        let now = self.inner.clock.now();
        let tokio_now = tokio::time::Instant::now();
        let (term, age) = {
            let receiver = self.inner.raft.metrics();
            let metrics = receiver.borrow_watched();
            (metrics.current_term, quorum_ack_age(&metrics)?)
        };
        let transfer = self.inner.shared.transfer();
        if transfer.target.is_some() || transfer.term == Some(term) {
            return None;
        }
        let membership = &self.inner.shared.status.borrow().membership;
        if membership.voters.len() == 1 && membership.voters.contains(&self.inner.id) {
            // The only voter: nobody else can be elected, so leadership is proven now. openraft
            // refreshes its own ack time only when it writes, so its age would grow idle.
            return Some(QuorumAck { term, sent_at: now });
        }
        // openraft measures the age on tokio's clock; the conversion keeps a jump of the engine
        // clock since the send (a suspend) out of the reported time.
        let sent = tokio_now.checked_sub(age)?;
        let sent_at = self.inner.shared.ack_clock.engine_time_of(sent)?;
        Some(QuorumAck { term, sent_at })
    }

    async fn transfer_leadership(&self, target: Option<NodeId>) -> Result<NodeId> {
        self.transfer(target).await
    }

    async fn add_learner(&self, id: NodeId) -> Result<Membership> {
        self.join_learner(id).await
    }

    async fn promote_learner(&self, id: NodeId) -> Result<Membership> {
        self.promote_to_voter(id).await
    }

    async fn remove_node(&self, id: NodeId) -> Result<Membership> {
        self.remove_member(id).await
    }

    async fn snapshot(&self) -> Result<SnapshotInfo> {
        self.check_running()?;
        let raft = self.inner.raft.clone();
        let limit = self.inner.config.request_timeout;
        let metrics = self
            .guarded(limit, async move {
                let applied = raft.metrics().borrow_watched().last_applied;
                raft.trigger().snapshot().await.map_err(map_error)?;
                let target = engine_index_of(applied.as_ref());
                raft.wait(Some(limit))
                    .metrics(
                        move |m| engine_index_of(m.snapshot.as_ref()) >= target,
                        "snapshot covering the applied index",
                    )
                    .await
                    .map_err(map_error)
            })
            .await?;
        Ok(SnapshotInfo {
            last_index: engine_index_of(metrics.snapshot.as_ref()),
            last_term: metrics.snapshot.as_ref().map_or(0, term_of),
        })
    }

    async fn shutdown(&self) -> Result<()> {
        let mut done = self.inner.shutdown_done.lock().await;
        if *done {
            return Ok(());
        }
        self.inner.stopping.send_replace(true);
        self.inner
            .shared
            .tracker
            .lost(raftengine::LossCause::Shutdown);
        self.inner.transport.stop_serving();
        // openraft joins its core, which waits for the state machine and the log store: a stuck
        // `apply` (or an application holding the state machine's lock) would hold shutdown
        // forever. Past the grace period the engine reports itself stopped and says why.
        let stopped = tokio::time::timeout(SHUTDOWN_GRACE, self.inner.raft.shutdown()).await;
        let tasks: Vec<_> =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for mut task in tasks {
            // Our own tasks watch `stopping`; one that does not end in time is aborted.
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        self.inner.shared.status.mark_shutdown();
        *done = true;
        match stopped {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::new(ErrorKind::Fatal)
                .with_context(format!("openraft's core task failed: {e}"))),
            Err(_) => Err(Error::timeout(SHUTDOWN_GRACE).with_context(
                "openraft's core did not stop within the shutdown grace period: a state-machine \
                 apply or a log-store call is stuck; the node serves nothing from now on",
            )),
        }
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }
}

/// One `client_write`, retried once for a leader elected a moment ago: it has no quorum
/// acknowledgement yet and openraft refuses writes until its first heartbeat round answers. An
/// isolated leader gets no ack and still fails, two heartbeats later.
/// A leader elected a moment ago has no quorum acknowledgement yet, and openraft refuses
/// writes (`native`) until it has one: waits for the first, once, then proposes again.
async fn retry_after_first_ack(
    engine: &OpenraftEngine,
    command: Command,
    native: openraft::errors::ClientWriteError<crate::types::TypeConfig>,
    reserve: impl FnOnce() -> Result<InFlight>,
) -> Result<openraft::raft::ClientWriteResponse<crate::types::TypeConfig>> {
    let raft = &engine.inner.raft;
    let acked = raft
        .wait(Some(engine.inner.config.heartbeat_interval * 2))
        .metrics(
            |m| quorum_ack_age(m).is_some(),
            "first quorum acknowledgement of this leader",
        )
        .await;
    if acked.is_err() {
        return Err(map_error(native));
    }
    submit(raft, command, reserve()?).await?.map_err(map_error)
}

/// Hands `command` to openraft with an answer holding `budget`, and waits for the answer.
async fn submit(
    raft: &Raft,
    command: Command,
    budget: InFlight,
) -> Result<openraft::raft::ClientWriteResult<crate::types::TypeConfig>> {
    let (answer, answered) = Answer::new(budget);
    raft.client_write_ff(command, Some(answer))
        .await
        .map_err(map_error)?;
    match answered.await {
        Ok(result) => Ok(result),
        // openraft drops an unanswered answer when it stops: report why it stopped.
        Err(_) => Err(Box::pin(stop_error(raft)).await),
    }
}

/// Why openraft's core stopped (a storage failure, a panic, or a shutdown), as `client_write`
/// reports it; waits a bounded time for the core to publish it.
async fn stop_error(raft: &Raft) -> Error {
    let stopped = raft
        .wait(Some(Duration::from_secs(1)))
        .metrics(|m| m.running_state.is_err(), "openraft's core stopped")
        .await;
    match stopped.map(|metrics| metrics.running_state) {
        Ok(Err(fatal)) => map_error(fatal),
        _ => Error::shutdown(),
    }
}
