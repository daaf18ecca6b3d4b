//! Leadership transfer: target validation, openraft's trigger, and the watchdog openraft
//! lacks (it has no transfer timeout or abort).

use std::cmp::Reverse;

use openraft::async_runtime::WatchReceiver;
use raftengine::{Engine, Error, ErrorKind, Membership, NodeId, RejectReason, Result, Role};

use super::OpenraftEngine;
use crate::errors::map_error;
use crate::types::engine_index_of;

impl OpenraftEngine {
    /// Validates `target` (or picks the most up-to-date voter), triggers openraft's transfer
    /// and waits at most one `election_timeout_max` for the target to lead. Targeting this
    /// node is rejected with `TargetIsSelf`.
    pub(super) async fn transfer(&self, target: Option<NodeId>) -> Result<NodeId> {
        self.check_running()?;
        self.require_leader()?;
        let membership = self.current_membership();
        let target = match target {
            Some(target) => target,
            None => self.most_up_to_date_voter(&membership).ok_or_else(|| {
                Error::new(ErrorKind::Unavailable)
                    .with_context("no other voter to hand leadership to")
            })?,
        };
        if target == self.inner.id {
            // The contract: a transfer to the node that already leads is a bad request, as on
            // every backend (a caller asking for it has a stale view of the cluster).
            return Err(Error::rejected(RejectReason::TargetIsSelf(target)));
        }
        if membership.learners.contains(&target) {
            return Err(Error::rejected(RejectReason::NotAVoter(target)));
        }
        if !membership.voters.contains(&target) {
            return Err(Error::rejected(RejectReason::UnknownNode(target)));
        }
        // openraft's own term, not the published status: the status may lag the core.
        let term = self.inner.raft.metrics().borrow_watched().current_term;
        let _transfer = self
            .inner
            .shared
            .begin_transfer(target, term)
            .map_err(|running| Error::transfer_in_progress(Some(running)))?;
        let raft = self.inner.raft.clone();
        self.guarded(self.inner.config.request_timeout, async move {
            raft.trigger()
                .transfer_leader(target)
                .await
                .map_err(map_error)?;
            self.wait_for_leader(target).await
        })
        .await
    }

    /// The most up-to-date voter other than this node, by replication progress.
    fn most_up_to_date_voter(&self, membership: &Membership) -> Option<NodeId> {
        let metrics = self.inner.raft.metrics().borrow_watched().clone();
        let replication = metrics.replication.unwrap_or_default();
        membership
            .voters
            .iter()
            .filter(|&&voter| voter != self.inner.id)
            .max_by_key(|&&voter| {
                let matched = replication.get(&voter).cloned().flatten();
                (engine_index_of(matched.as_ref()), Reverse(voter))
            })
            .copied()
    }

    async fn wait_for_leader(&self, target: NodeId) -> Result<NodeId> {
        let mut status = self.inner.shared.status.subscribe();
        let limit = self.inner.timing.election_timeout_max;
        let outcome = tokio::time::timeout(
            limit,
            status.wait_for(|s| s.leader == Some(target) && s.role != Role::Leader),
        )
        .await;
        match outcome {
            Ok(Ok(_)) => Ok(target),
            Ok(Err(_)) => Err(Error::shutdown()),
            Err(_) => {
                let leader = self.status().leader;
                Err(Error::new(ErrorKind::Timeout).with_context(format!(
                    "leadership transfer to node {target} did not complete within {limit:?} \
                     (openraft cannot abort a transfer; the cluster elects a leader on its own; \
                     current leader: {leader:?})"
                )))
            }
        }
    }
}
