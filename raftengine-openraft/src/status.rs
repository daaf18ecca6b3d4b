//! Status from openraft's metrics, and the task that follows them: it publishes [`Status`] on a
//! watch channel and drives leader-loss callbacks, including the prompt `QuorumLost` edge for an
//! isolated leader that openraft itself keeps in the Leader state.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::ServerState;
use openraft::async_runtime::WatchReceiver;
use openraft::type_config::alias::WatchReceiverOf;
use raftengine::adapter::{LeadershipTracker, StatusChannel};
use raftengine::{Clock, LossCause, Membership, NodeId, Role, Status};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::ack_clock::AckClock;
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
/// The transfer fields are left empty: [`StatusShared`] fills them in when it publishes.
pub(crate) fn status_of(metrics: &Metrics) -> Status {
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
        transferring_to: None,
        transfers_started: 0,
        transfer_term: None,
        membership: Arc::new(membership_of(&metrics.membership_config)),
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

/// The leadership transfers this node started, as one value so a reader never sees half of
/// an update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TransferState {
    /// The running transfer's target.
    pub(crate) target: Option<NodeId>,
    /// Transfers started so far (published as `Status::transfers_started`).
    pub(crate) started: u64,
    /// openraft's term when the latest transfer started (published as
    /// `Status::transfer_term`). Every voter that receives openraft's `TransferLeader` turns its
    /// vote refusal off until its vote changes, so no acknowledgement of that term proves a
    /// lease; see `OpenraftEngine::quorum_ack`.
    pub(crate) term: Option<u64>,
}

/// Shared state the engine and the follower task both touch.
#[derive(Debug)]
pub(crate) struct StatusShared {
    /// Publishes the latest status.
    pub(crate) status: StatusChannel,
    /// Transfers this node started. Read inside every status publication, so a publication
    /// built from older metrics cannot undo a transfer that started meanwhile.
    transfer: Mutex<TransferState>,
    /// Leader-loss callbacks.
    pub(crate) tracker: LeadershipTracker,
    /// openraft's leader lease (the vote-refusal window): the quorum-ack age past which this
    /// node no longer counts as leading.
    pub(crate) lease: Duration,
    /// Converts openraft's acknowledgement instants to the engine clock.
    pub(crate) ack_clock: AckClock,
}

impl StatusShared {
    /// Shared state publishing `initial`.
    pub(crate) fn new(
        initial: Status,
        tracker: LeadershipTracker,
        lease: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            status: StatusChannel::new(initial),
            transfer: Mutex::new(TransferState::default()),
            tracker,
            lease,
            ack_clock: AckClock::new(clock),
        }
    }

    /// The transfers this node started.
    pub(crate) fn transfer(&self) -> TransferState {
        *self.transfer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current transfer target.
    pub(crate) fn transferring_to(&self) -> Option<NodeId> {
        self.transfer().target
    }

    /// Starts a transfer to `target` in openraft's `term`, unless one runs (then its target is
    /// the error). The status shows the transfer before this returns; dropping the guard ends
    /// it, so a caller that abandons the transfer future cannot leave it set.
    pub(crate) fn begin_transfer(
        self: &Arc<Self>,
        target: NodeId,
        term: u64,
    ) -> Result<TransferGuard, NodeId> {
        {
            let mut transfer = self.transfer.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(running) = transfer.target {
                return Err(running);
            }
            transfer.target = Some(target);
            transfer.started += 1;
            transfer.term = Some(term);
        }
        self.publish_transfer();
        Ok(TransferGuard {
            shared: Arc::clone(self),
        })
    }

    /// Replaces the published status with `status`, with the transfer fields read under the
    /// channel's lock.
    fn publish(&self, mut status: Status) {
        self.status.send_if_modified(|current| {
            apply_transfer(&mut status, self.transfer());
            if status.membership == current.membership {
                // Keep the shared copy readers already hold.
                status.membership = Arc::clone(&current.membership);
            }
            if *current == status {
                false
            } else {
                *current = status;
                true
            }
        });
    }

    fn publish_transfer(&self) {
        self.status.send_if_modified(|current| {
            let before = current.clone();
            apply_transfer(current, self.transfer());
            *current != before
        });
    }
}

fn apply_transfer(status: &mut Status, transfer: TransferState) {
    status.transferring_to = if status.role == Role::Leader {
        transfer.target
    } else {
        None
    };
    status.transfers_started = transfer.started;
    status.transfer_term = transfer.term;
}

/// A running transfer; dropping it ends the transfer and republishes the status.
#[derive(Debug)]
pub(crate) struct TransferGuard {
    shared: Arc<StatusShared>,
}

impl Drop for TransferGuard {
    fn drop(&mut self) {
        self.shared
            .transfer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .target = None;
        self.shared.publish_transfer();
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
        shared.ack_clock.sample();
        let transferring_to = shared.transferring_to();
        let observed = {
            let m = metrics.borrow_watched();
            let status = status_of(&m);
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
        shared.publish(observed.status);

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
