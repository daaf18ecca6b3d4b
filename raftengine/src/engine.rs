//! The `Engine` trait: what a replicated state machine needs from a Raft library.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::error::Result;
use crate::leadership::{LeaderLossCallback, Subscription};
use crate::types::{
    Applied, Capabilities, Membership, NodeId, QuorumAck, ReadIndex, SnapshotInfo, Status, Timing,
};

/// One Raft node, whatever library runs it. Object-safe: hold it as `Arc<dyn Engine>`.
///
/// Every method that waits has a deadline (the configured request timeout); none waits forever.
/// Errors are classified by [`crate::ErrorKind`]; see [`crate::Error::is_leadership_loss`].
///
/// Rules every implementation keeps (the conformance suite checks each one):
/// - A command over `Config::max_command_bytes` is `Rejected(TooLarge { size, limit })`, not
///   applied, and nothing is appended.
/// - More proposed-but-uncommitted data than `Config::max_uncommitted_bytes` gets `Busy` (not
///   applied); the budget covers entries still in the pipeline after their caller gave up.
/// - A panic in the user's `StateMachine` stops the node: waiting calls fail with `Fatal`
///   within their deadline, leader loss fires with `LossCause::Fatal`, the status turns to
///   [`crate::Role::Shutdown`], and later calls fail at once.
/// - A failed write to the [`crate::LogStore`] stops the node: the calls waiting on it fail
///   with `Storage`, later calls with `Fatal`, leader loss fires with `LossCause::Fatal`, and
///   the status turns to [`crate::Role::Shutdown`]. Nothing acknowledged before is lost: it
///   was durable when acknowledged.
/// - Dropping the last handle without [`Engine::shutdown`] stops the node like a crash: leader
///   loss fires, it stops serving its peers, and it can restart from its store.
/// - `NotApplied` is promised only when the write can never commit: a write overwritten in
///   this node's log by a newer leader may still commit elsewhere, so it is `Unknown`.
/// - A transfer abandoned by its caller does not leave the node transferring; a membership
///   change interrupted between its steps does not block later changes.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// This node's id.
    fn id(&self) -> NodeId;

    /// The latest published status. Cheap: no lock on the Raft core.
    fn status(&self) -> Status;

    /// A receiver that sees every status change.
    fn watch_status(&self) -> watch::Receiver<Status>;

    /// A receiver that sees every change of role, term, leader, the transfer fields or the
    /// membership, and need not see changes of the log indexes alone. A lease layer watches
    /// this, so it is not woken by every applied entry. The default is
    /// [`Engine::watch_status`]; an engine that publishes through
    /// [`adapter::StatusChannel`](crate::adapter::StatusChannel) gets the filtered channel
    /// from it.
    fn watch_leadership(&self) -> watch::Receiver<Status> {
        self.watch_status()
    }

    /// The clock the engine reports times on ([`QuorumAck::sent_at`]); lease checks must read
    /// this same clock. `sent_at` is a reading of it taken when the acknowledged message was
    /// sent, so a jump of the clock afterwards (a suspend counted by
    /// [`crate::SuspendAwareClock`]) makes no acknowledgement look younger than it is.
    fn clock(&self) -> Arc<dyn Clock>;

    /// Replicates `command` and returns once it is committed **and applied locally**, with the
    /// state machine's response. Fails with `NotLeader` on a follower (never forwards).
    async fn propose(&self, command: Bytes) -> Result<Applied>;

    /// Confirms leadership with a quorum round (ReadIndex) and returns once the local state
    /// machine has applied at least the confirmed index. Concurrent callers share rounds.
    async fn linearizable_read(&self) -> Result<ReadIndex>;

    /// Calls `callback` on every leader→non-leader edge of this node, including shutdown,
    /// fatal failure, and loss of quorum contact (detected from acknowledgement age even when
    /// the library has not stepped down yet). Dropping the subscription deregisters it.
    fn on_leader_loss(&self, callback: LeaderLossCallback) -> Subscription;

    /// Timing facts for lease computations.
    fn timing(&self) -> Timing;

    /// The newest message sent in the current term whose acknowledgement by a quorum of
    /// current voters proves this node's leadership; `None` unless leading, while a transfer
    /// runs, and for the rest of any term in which this node started a transfer (the message
    /// that forces the target's election may still arrive, and it bypasses the followers'
    /// vote refusal).
    fn quorum_ack(&self) -> Option<QuorumAck>;

    /// Hands leadership to `target` (or to the most up-to-date voter when `None`) and returns
    /// the new leader once it leads. Rejected for an unknown node, a learner or this node;
    /// fails after about one election timeout if the target does not take over.
    async fn transfer_leadership(&self, target: Option<NodeId>) -> Result<NodeId>;

    /// Adds `id` as a learner and returns the committed membership.
    async fn add_learner(&self, id: NodeId) -> Result<Membership>;

    /// Promotes learner `id` to voter and returns the committed membership.
    async fn promote_learner(&self, id: NodeId) -> Result<Membership>;

    /// Removes `id` (voter or learner) and returns the committed membership.
    async fn remove_node(&self, id: NodeId) -> Result<Membership>;

    /// The membership as this node currently knows it.
    fn membership(&self) -> Membership {
        Membership::clone(&self.status().membership)
    }

    /// Builds a snapshot of the state machine now and compacts the log behind it.
    async fn snapshot(&self) -> Result<SnapshotInfo>;

    /// Stops the node: every waiter fails with `Shutdown`, every task ends, leader-loss
    /// callbacks fire if it was leading. Idempotent. Returns within a bounded grace period even
    /// when the state machine's `apply` or the log store is stuck: the node then reports
    /// [`crate::Role::Shutdown`] and serves nothing, and the call fails with `Timeout`.
    async fn shutdown(&self) -> Result<()>;

    /// What this backend supports.
    fn capabilities(&self) -> Capabilities;
}
