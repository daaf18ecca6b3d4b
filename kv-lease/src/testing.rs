//! A scripted mock [`Engine`] for tests of the lease layer: no Raft, every fact (role, term,
//! applied term, transfer, acknowledgements, errors, delays) is set by the test, and every
//! quorum operation is counted. Time is tokio's, so `start_paused` tests run in virtual time.
//!
//! Available in this crate's tests and, with the `testing` feature, to other crates.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use raftengine::adapter::LeadershipTracker;
use raftengine::{
    Applied, Capabilities, Clock, Engine, Error, ErrorKind, LeaderLossCallback, LossCause,
    Membership, NodeId, QuorumAck, ReadIndex, RejectReason, Result, Role, SharedStateMachine,
    SnapshotInfo, StateMachine, Status, Subscription, Timing, TokioClock,
};
use tokio::sync::watch;

/// How a scripted transfer plays out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferPlan {
    /// After `after`, the target leads (this node steps down into the next term).
    Succeed {
        /// How long the transfer takes.
        after: Duration,
    },
    /// After `after`, the transfer is aborted (this node keeps leading) and fails with Timeout.
    Abort {
        /// How long the transfer runs before it is aborted.
        after: Duration,
    },
}

#[derive(Debug)]
struct Script {
    propose_errors: VecDeque<Error>,
    read_errors: VecDeque<Error>,
    propose_delay: Duration,
    read_delay: Duration,
    quorum_ack: Option<QuorumAck>,
    transfer: TransferPlan,
    timing: Timing,
}

/// The scripted engine. See the module docs.
pub struct MockEngine {
    id: NodeId,
    status: watch::Sender<Status>,
    clock: Arc<dyn Clock>,
    tracker: LeadershipTracker,
    script: Mutex<Script>,
    state_machine: Option<SharedStateMachine<dyn StateMachine>>,
    proposals: AtomicU64,
    reads: AtomicU64,
    transfers: AtomicU64,
}

impl std::fmt::Debug for MockEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockEngine")
            .field("status", &*self.status.borrow())
            .field("proposals", &self.propose_calls())
            .field("reads", &self.read_calls())
            .finish()
    }
}

/// Timing the mock reports by default: 50 ms heartbeats, 300–600 ms election timeouts, a
/// 300 ms vote-refusal window, 1% drift. With the default 50 ms margin the lease lasts 247 ms.
pub fn default_timing() -> Timing {
    Timing {
        heartbeat_interval: Duration::from_millis(50),
        election_timeout_min: Duration::from_millis(300),
        election_timeout_max: Duration::from_millis(600),
        vote_refusal_window: Duration::from_millis(300),
        max_clock_drift: 0.01,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MockEngine {
    /// A follower in term 0 with no state machine, on tokio's clock.
    pub fn new(id: NodeId) -> Arc<Self> {
        Self::build(id, None, Arc::new(TokioClock))
    }

    /// A follower that applies proposals to `state_machine`.
    pub fn with_state_machine(
        id: NodeId,
        state_machine: SharedStateMachine<dyn StateMachine>,
    ) -> Arc<Self> {
        Self::build(id, Some(state_machine), Arc::new(TokioClock))
    }

    /// A follower on a custom clock.
    pub fn with_clock(id: NodeId, clock: Arc<dyn Clock>) -> Arc<Self> {
        Self::build(id, None, clock)
    }

    fn build(
        id: NodeId,
        state_machine: Option<SharedStateMachine<dyn StateMachine>>,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let status = Status {
            id,
            membership: std::sync::Arc::new(Membership {
                voters: [id, id + 1, id + 2].into_iter().collect(),
                ..Membership::default()
            }),
            ..Status::default()
        };
        Arc::new(Self {
            id,
            status: watch::Sender::new(status),
            clock,
            tracker: LeadershipTracker::new(),
            script: Mutex::new(Script {
                propose_errors: VecDeque::new(),
                read_errors: VecDeque::new(),
                propose_delay: Duration::ZERO,
                read_delay: Duration::ZERO,
                quorum_ack: None,
                transfer: TransferPlan::Abort {
                    after: Duration::from_millis(300),
                },
                timing: default_timing(),
            }),
            state_machine,
            proposals: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            transfers: AtomicU64::new(0),
        })
    }

    /// Changes the status with `change` and publishes it.
    pub fn update(&self, change: impl FnOnce(&mut Status)) {
        self.status.send_modify(change);
    }

    /// Becomes leader of `term` and applies its first entry (so `applied_term == term`).
    pub fn make_leader(&self, term: u64) {
        self.make_leader_unapplied(term);
        self.apply_term_entry();
    }

    /// Becomes leader of `term` without applying an entry of it yet.
    pub fn make_leader_unapplied(&self, term: u64) {
        let id = self.id;
        self.update(|s| {
            s.role = Role::Leader;
            s.term = term;
            s.leader = Some(id);
            s.transferring_to = None;
        });
        self.tracker.became_leader(term);
    }

    /// Commits and applies the current term's first (no-op) entry.
    pub fn apply_term_entry(&self) {
        self.update(|s| {
            s.last_log_index += 1;
            s.commit_index = s.last_log_index;
            s.applied_index = s.last_log_index;
            s.applied_term = s.term;
        });
    }

    /// Steps down into `term` following `leader`, firing leader-loss callbacks with `cause`.
    pub fn step_down(&self, term: u64, leader: Option<NodeId>, cause: LossCause) {
        self.update(|s| {
            s.role = Role::Follower;
            s.term = term;
            s.leader = leader;
            s.transferring_to = None;
        });
        self.tracker.lost(cause);
    }

    /// Changes the term in the status only (no callback): models a status that shows a newer
    /// term before the engine's loss edge is delivered.
    pub fn set_term_silently(&self, term: u64) {
        self.update(|s| s.term = term);
    }

    /// Fires the leader-loss callbacks with `cause` while the status keeps saying this node
    /// leads: models a loss edge delivered late or spuriously (the lease must still drop).
    pub fn fire_leader_loss(&self, cause: LossCause) {
        let term = self.status.borrow().term;
        self.tracker.became_leader(term);
        self.tracker.lost(cause);
        if self.status.borrow().role == Role::Leader {
            self.tracker.became_leader(term);
        }
    }

    /// How many status receivers are alive (the lease's background task holds one).
    pub fn subscriber_count(&self) -> usize {
        self.status.receiver_count()
    }

    /// Sets or clears `transferring_to`; setting a target counts a started transfer in the
    /// current term.
    pub fn set_transferring(&self, target: Option<NodeId>) {
        self.update(|s| {
            if target.is_some() {
                s.transfers_started += 1;
                s.transfer_term = Some(s.term);
            }
            s.transferring_to = target;
        });
    }

    /// What the engine reports from `quorum_ack()` while leading.
    pub fn set_quorum_ack(&self, ack: Option<QuorumAck>) {
        lock(&self.script).quorum_ack = ack;
    }

    /// Reports an acknowledgement of a message sent now, in the current term.
    pub fn ack_now(&self) {
        let term = self.status.borrow().term;
        let sent_at = self.clock.now();
        self.set_quorum_ack(Some(QuorumAck { term, sent_at }));
    }

    /// The next proposal fails with `err` (queued in order).
    pub fn fail_next_propose(&self, err: Error) {
        lock(&self.script).propose_errors.push_back(err);
    }

    /// The next linearizable read fails with `err` (queued in order).
    pub fn fail_next_read(&self, err: Error) {
        lock(&self.script).read_errors.push_back(err);
    }

    /// Virtual time each proposal takes.
    pub fn set_propose_delay(&self, delay: Duration) {
        lock(&self.script).propose_delay = delay;
    }

    /// Virtual time each linearizable read takes.
    pub fn set_read_delay(&self, delay: Duration) {
        lock(&self.script).read_delay = delay;
    }

    /// How the next transfers play out.
    pub fn set_transfer_plan(&self, plan: TransferPlan) {
        lock(&self.script).transfer = plan;
    }

    /// What `timing()` reports.
    pub fn set_timing(&self, timing: Timing) {
        lock(&self.script).timing = timing;
    }

    /// Proposals received (including failed ones).
    pub fn propose_calls(&self) -> u64 {
        self.proposals.load(Ordering::SeqCst)
    }

    /// Linearizable reads received (quorum rounds; including failed ones).
    pub fn read_calls(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// Transfers received.
    pub fn transfer_calls(&self) -> u64 {
        self.transfers.load(Ordering::SeqCst)
    }

    fn leader_check(&self) -> Result<Status> {
        let status = self.status.borrow().clone();
        match status.role {
            Role::Shutdown => Err(Error::shutdown()),
            Role::Leader => match status.transferring_to {
                Some(target) => Err(Error::transfer_in_progress(Some(target))),
                None => Ok(status),
            },
            _ => Err(Error::not_leader(status.leader)),
        }
    }
}

#[async_trait]
impl Engine for MockEngine {
    fn id(&self) -> NodeId {
        self.id
    }

    fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.clock)
    }

    async fn propose(&self, command: Bytes) -> Result<Applied> {
        self.proposals.fetch_add(1, Ordering::SeqCst);
        let (delay, scripted) = {
            let mut script = lock(&self.script);
            (script.propose_delay, script.propose_errors.pop_front())
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(err) = scripted {
            return Err(err);
        }
        let status = self.leader_check()?;
        let index = status.last_log_index + 1;
        let term = status.term;
        let response = match &self.state_machine {
            Some(sm) => sm.lock().apply(index, term, &command),
            None => Bytes::new(),
        };
        self.update(|s| {
            s.last_log_index = index;
            s.commit_index = index;
            s.applied_index = index;
            s.applied_term = term;
        });
        Ok(Applied {
            index,
            term,
            response,
        })
    }

    async fn linearizable_read(&self) -> Result<ReadIndex> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let (delay, scripted) = {
            let mut script = lock(&self.script);
            (script.read_delay, script.read_errors.pop_front())
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(err) = scripted {
            return Err(err);
        }
        let status = self.leader_check()?;
        Ok(ReadIndex {
            index: status.commit_index,
            term: status.term,
        })
    }

    fn on_leader_loss(&self, callback: LeaderLossCallback) -> Subscription {
        self.tracker.subscribe(callback)
    }

    fn timing(&self) -> Timing {
        lock(&self.script).timing
    }

    fn quorum_ack(&self) -> Option<QuorumAck> {
        if self.status.borrow().role != Role::Leader {
            return None;
        }
        lock(&self.script).quorum_ack
    }

    async fn transfer_leadership(&self, target: Option<NodeId>) -> Result<NodeId> {
        self.transfers.fetch_add(1, Ordering::SeqCst);
        let status = self.leader_check()?;
        let target = target.unwrap_or(self.id + 1);
        if target == self.id {
            return Err(Error::rejected(RejectReason::TargetIsSelf(target)));
        }
        if status.membership.learners.contains(&target) {
            return Err(Error::rejected(RejectReason::NotAVoter(target)));
        }
        let plan = lock(&self.script).transfer;
        self.set_transferring(Some(target));
        match plan {
            TransferPlan::Succeed { after } => {
                tokio::time::sleep(after).await;
                self.step_down(status.term + 1, Some(target), LossCause::Transferred);
                Ok(target)
            }
            TransferPlan::Abort { after } => {
                tokio::time::sleep(after).await;
                self.set_transferring(None);
                Err(Error::timeout(after).with_context("transfer target did not take over"))
            }
        }
    }

    async fn add_learner(&self, _id: NodeId) -> Result<Membership> {
        Err(Error::new(ErrorKind::Unsupported))
    }

    async fn promote_learner(&self, _id: NodeId) -> Result<Membership> {
        Err(Error::new(ErrorKind::Unsupported))
    }

    async fn remove_node(&self, _id: NodeId) -> Result<Membership> {
        Err(Error::new(ErrorKind::Unsupported))
    }

    async fn snapshot(&self) -> Result<SnapshotInfo> {
        let status = self.status();
        Ok(SnapshotInfo {
            last_index: status.applied_index,
            last_term: status.applied_term,
        })
    }

    async fn shutdown(&self) -> Result<()> {
        self.update(|s| {
            s.role = Role::Shutdown;
            s.transferring_to = None;
        });
        self.tracker.lost(LossCause::Shutdown);
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::LEADERSHIP_TRANSFER.and(Capabilities::QUORUM_ACK)
    }
}
