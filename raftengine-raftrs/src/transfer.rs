//! Leadership transfer: target validation and the watch that resolves a running transfer.
//!
//! raft-rs's `transfer_leader` returns nothing and silently ignores bad targets, so targets are
//! validated here first. A running transfer resolves when this node sees the target lead. It
//! fails with `Timeout` when raft-rs aborts it (the target did not catch up and win within one
//! election timeout) or when our own watchdog (one maximum election timeout plus a heartbeat)
//! fires: `Timeout` rather than `Unavailable`, because the target may already have received
//! `MsgTimeoutNow` and can still win the election after we answer, so the outcome is not known.
//! If another node wins instead, the transfer fails with `LeadershipLost`.

use raft::eraftpb::ConfState;
use raftengine::{Error, ErrorKind, RejectReason, Result, WriteOutcome};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A caller waiting for a transfer.
pub(crate) type TransferReply = oneshot::Sender<Result<u64>>;

/// Chooses and validates the target. `None` picks the voter with the highest matched index.
pub(crate) fn choose_target(
    requested: Option<u64>,
    conf: &ConfState,
    self_id: u64,
    matched: impl Fn(u64) -> u64,
) -> Result<u64> {
    let voters: Vec<u64> = conf
        .get_voters()
        .iter()
        .chain(conf.get_voters_outgoing())
        .copied()
        .collect();
    let Some(target) = requested else {
        return voters
            .iter()
            .copied()
            .filter(|v| *v != self_id)
            .max_by_key(|v| (matched(*v), std::cmp::Reverse(*v)))
            .ok_or_else(|| {
                Error::new(ErrorKind::Unavailable)
                    .with_context("no other voter to hand leadership to")
            });
    };
    if target == self_id {
        return Err(Error::rejected(RejectReason::TargetIsSelf(target)));
    }
    if voters.contains(&target) {
        return Ok(target);
    }
    if conf
        .get_learners()
        .iter()
        .chain(conf.get_learners_next())
        .any(|l| *l == target)
    {
        return Err(Error::rejected(RejectReason::NotAVoter(target)));
    }
    Err(Error::rejected(RejectReason::UnknownNode(target)))
}

/// A transfer this node started as leader.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// Node leadership goes to.
    pub(crate) target: u64,
    /// Term this node led in when it started.
    pub(crate) term: u64,
    /// Watchdog deadline.
    pub(crate) deadline: Instant,
    /// Callers waiting.
    pub(crate) waiters: Vec<TransferReply>,
}

/// What the node looks like now, for resolving a transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed {
    pub(crate) is_leader: bool,
    pub(crate) term: u64,
    pub(crate) leader_id: u64,
    pub(crate) lead_transferee: Option<u64>,
    pub(crate) now: Instant,
}

impl Transfer {
    /// `Some(result)` once the transfer has an outcome.
    pub(crate) fn outcome(&self, seen: Observed) -> Option<Result<u64>> {
        if !seen.is_leader && seen.leader_id == self.target {
            return Some(Ok(self.target));
        }
        if seen.is_leader && seen.term == self.term && seen.lead_transferee.is_none() {
            return Some(Err(Error::new(ErrorKind::Timeout).with_context(format!(
                "raft-rs aborted the transfer: node {} did not take over within an election \
                 timeout; this node still leads",
                self.target
            ))));
        }
        if seen.is_leader && seen.term != self.term {
            return Some(Err(Error::new(ErrorKind::Timeout).with_context(format!(
                "node {} did not take over; this node leads again in term {}",
                self.target, seen.term
            ))));
        }
        if !seen.is_leader && seen.leader_id != 0 && seen.leader_id != self.target {
            return Some(Err(Error::leadership_lost(WriteOutcome::NotApplied)
                .with_context(format!(
                    "node {} took over instead of node {}",
                    seen.leader_id, self.target
                ))));
        }
        if seen.now >= self.deadline {
            return Some(Err(Error::new(ErrorKind::Timeout).with_context(format!(
                "node {} did not take over within one election timeout",
                self.target
            ))));
        }
        None
    }

    /// Answers every waiter.
    pub(crate) fn finish(self, result: &Result<u64>) {
        for waiter in self.waiters {
            let answer = match result {
                Ok(id) => Ok(*id),
                Err(e) => Err(clone_error(e)),
            };
            let _ = waiter.send(answer);
        }
    }
}

fn clone_error(e: &Error) -> Error {
    let mut copy = Error::new(e.kind().clone()).with_outcome(e.outcome());
    if let Some(context) = e.context() {
        copy = copy.with_context(context.to_owned());
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn conf() -> ConfState {
        ConfState::from(([1, 2, 3], [4]))
    }

    #[test]
    fn targets_are_validated() {
        let m = |_| 0;
        assert_eq!(choose_target(Some(2), &conf(), 1, m).unwrap(), 2);
        let kind = |r: Result<u64>| r.unwrap_err().kind().clone();
        assert_eq!(
            kind(choose_target(Some(1), &conf(), 1, m)),
            ErrorKind::Rejected(RejectReason::TargetIsSelf(1))
        );
        assert_eq!(
            kind(choose_target(Some(4), &conf(), 1, m)),
            ErrorKind::Rejected(RejectReason::NotAVoter(4))
        );
        assert_eq!(
            kind(choose_target(Some(9), &conf(), 1, m)),
            ErrorKind::Rejected(RejectReason::UnknownNode(9))
        );
        let best = choose_target(None, &conf(), 1, |v| if v == 3 { 10 } else { 5 });
        assert_eq!(best.unwrap(), 3);
        let alone = ConfState::from(([1], Vec::<u64>::new()));
        assert_eq!(
            kind(choose_target(None, &alone, 1, m)),
            ErrorKind::Unavailable
        );
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_follow_what_the_node_sees() {
        let now = Instant::now();
        let t = Transfer {
            target: 2,
            term: 5,
            deadline: now + Duration::from_secs(1),
            waiters: Vec::new(),
        };
        let seen = Observed {
            is_leader: true,
            term: 5,
            leader_id: 1,
            lead_transferee: Some(2),
            now,
        };
        assert!(t.outcome(seen).is_none());
        let done = Observed {
            is_leader: false,
            term: 6,
            leader_id: 2,
            lead_transferee: None,
            ..seen
        };
        assert_eq!(t.outcome(done).unwrap().unwrap(), 2);
        let aborted = Observed {
            lead_transferee: None,
            ..seen
        };
        assert_eq!(
            t.outcome(aborted).unwrap().unwrap_err().kind(),
            &ErrorKind::Timeout
        );
        let other = Observed {
            is_leader: false,
            term: 6,
            leader_id: 3,
            lead_transferee: None,
            ..seen
        };
        assert_eq!(
            t.outcome(other).unwrap().unwrap_err().kind(),
            &ErrorKind::LeadershipLost
        );
        let late = Observed {
            now: now + Duration::from_secs(2),
            is_leader: false,
            leader_id: 0,
            ..seen
        };
        assert_eq!(
            t.outcome(late).unwrap().unwrap_err().kind(),
            &ErrorKind::Timeout
        );
    }
}
