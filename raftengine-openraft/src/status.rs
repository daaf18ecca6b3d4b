//! Status from openraft's metrics, and the task that follows them: it publishes [`Status`] on a
//! watch channel and drives leader-loss callbacks, including the prompt `QuorumLost` edge for an
//! isolated leader that openraft itself keeps in the Leader state.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use openraft::type_config::alias::WatchReceiverOf;
use raftengine::{LeadershipTracker, LossCause, Membership, NodeId, Role, Status};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::types::{Metrics, StoredMembership, TypeConfig, engine_index, engine_index_of, term_of};

/// The engine's view of a membership config.
pub(crate) fn membership_of(stored: &StoredMembership) -> Membership {
    let joint = stored.get_joint_config();
    let voters: BTreeSet<NodeId> = joint.iter().flatten().copied().collect();
    let learners = stored
        .nodes()
        .map(|(id, _)| *id)
        .filter(|id| !voters.contains(id))
        .collect();
    Membership {
        voters,
        learners,
        joint: joint.len() > 1,
    }
}

/// The engine's role for an openraft server state.
pub(crate) fn role_of(state: ServerState) -> Role {
    match state {
        ServerState::Leader => Role::Leader,
        ServerState::Follower => Role::Follower,
        ServerState::Candidate => Role::Candidate,
        ServerState::Learner => Role::Learner,
        ServerState::Shutdown => Role::Shutdown,
    }
}

/// The status a metrics snapshot describes. A node whose core failed fatally reports
/// [`Role::Shutdown`]: it serves nothing until restarted.
pub(crate) fn status_of(
    metrics: &Metrics,
    transferring_to: Option<NodeId>,
    transfers_started: u64,
) -> Status {
    let role = if metrics.running_state.is_err() {
        Role::Shutdown
    } else {
        role_of(metrics.state)
    };
    Status {
        id: metrics.id,
        role,
        term: metrics.current_term,
        leader: metrics.current_leader,
        commit_index: engine_index_of(metrics.local_committed.as_ref()),
        applied_index: engine_index_of(metrics.last_applied.as_ref()),
        applied_term: metrics.last_applied.as_ref().map_or(0, term_of),
        last_log_index: metrics.last_log_index.map_or(0, engine_index),
        transferring_to: if role == Role::Leader {
            transferring_to
        } else {
            None
        },
        transfers_started,
        membership: membership_of(&metrics.membership_config),
    }
}

/// How old the newest quorum acknowledgement is, if this node leads and has one.
pub(crate) fn quorum_ack_age(metrics: &Metrics) -> Option<Duration> {
    if metrics.state != ServerState::Leader
        || metrics.current_leader != Some(metrics.id)
        || metrics.running_state.is_err()
    {
        return None;
    }
    metrics
        .last_quorum_acked
        .as_ref()
        .map(|acked| openraft::Instant::elapsed(&**acked))
}

/// What the follower task needs from one metrics snapshot (copied out of the borrow).
struct Observed {
    status: Status,
    leading: bool,
    fatal: bool,
    /// Age of the newest quorum acknowledgement, when leading.
    ack_age: Option<Duration>,
}

/// Shared state the engine and the follower task both touch.
#[derive(Debug)]
pub(crate) struct StatusShared {
    /// Publishes the latest status.
    pub(crate) status: watch::Sender<Status>,
    /// The transfer this node runs as leader, if any.
    pub(crate) transferring_to: Mutex<Option<NodeId>>,
    /// Transfers started so far (published as `Status::transfers_started`).
    pub(crate) transfers_started: AtomicU64,
    /// The term and time (engine clock) of the latest transfer this node started as leader.
    /// openraft stops heartbeats and followers drop their vote refusal once a transfer starts,
    /// so quorum acks from before it prove nothing; see `OpenraftEngine::quorum_ack`.
    pub(crate) transfer_started: Mutex<Option<(u64, Instant)>>,
    /// Leader-loss callbacks.
    pub(crate) tracker: LeadershipTracker,
    /// openraft's leader lease (`election_timeout_max`): the quorum-ack age past which this
    /// node no longer counts as leading.
    pub(crate) lease: Duration,
}

impl StatusShared {
    /// The current transfer target.
    pub(crate) fn transferring_to(&self) -> Option<NodeId> {
        *self
            .transferring_to
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Transfers started so far.
    pub(crate) fn transfers_started(&self) -> u64 {
        self.transfers_started.load(Ordering::Acquire)
    }

    /// Sets or clears the transfer target and republishes the status. Setting a target counts
    /// a started transfer.
    pub(crate) fn set_transferring_to(&self, target: Option<NodeId>) {
        *self
            .transferring_to
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = target;
        if target.is_some() {
            self.transfers_started.fetch_add(1, Ordering::AcqRel);
        }
        let transfers_started = self.transfers_started();
        self.status.send_modify(|status| {
            status.transfers_started = transfers_started;
            status.transferring_to = if status.role == Role::Leader {
                target
            } else {
                None
            };
        });
    }
}

/// Follows `metrics` until it closes or `stop` fires. Never holds a metrics borrow across an
/// await.
pub(crate) async fn follow_metrics(
    shared: Arc<StatusShared>,
    mut metrics: WatchReceiverOf<TypeConfig, Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    // When this node became leader in the current term, for leaders not yet acknowledged.
    let mut leader_since: Option<(u64, Instant)> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        // Read before publishing: a transfer call clears it once it sees the new status.
        let transferring_to = shared.transferring_to();
        let transfers_started = shared.transfers_started();
        let observed = {
            let m = metrics.borrow_watched();
            let status = status_of(&m, transferring_to, transfers_started);
            Observed {
                leading: status.role == Role::Leader && status.leader == Some(m.id),
                fatal: m.running_state.is_err(),
                ack_age: quorum_ack_age(&m),
                status,
            }
        };
        let term = observed.status.term;
        let role = observed.status.role;

        // Deadline after which a leader without a newer quorum ack counts as lost.
        let mut quorum_deadline = None;
        if observed.leading {
            let since = match leader_since {
                Some((t, at)) if t == term => at,
                _ => {
                    let now = Instant::now();
                    leader_since = Some((term, now));
                    now
                }
            };
            let age = observed
                .ack_age
                .unwrap_or_else(|| Instant::now().saturating_duration_since(since));
            if age < shared.lease {
                shared.tracker.became_leader(term);
                quorum_deadline = Some(Instant::now() + (shared.lease - age));
            } else {
                shared.tracker.lost(LossCause::QuorumLost);
            }
        } else {
            leader_since = None;
            let cause = if observed.fatal {
                LossCause::Fatal
            } else if role == Role::Shutdown {
                LossCause::Shutdown
            } else if transferring_to.is_some() {
                LossCause::Transferred
            } else {
                LossCause::SteppedDown
            };
            shared.tracker.lost(cause);
        }
        // Published after the leadership edge, so a subscriber that sees this node no longer
        // leading also finds its leader-loss callbacks already run.
        shared.status.send_replace(observed.status);

        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    // openraft stopped: its last metrics were handled above.
                    shared.tracker.lost(LossCause::Shutdown);
                    return;
                }
            }
            _ = sleep_until_opt(quorum_deadline) => {
                // Re-evaluated at the top of the loop: a stale ack now reports QuorumLost.
            }
            _ = stop.changed() => return,
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
