//! Waiters for proposed entries (commands and membership changes), keyed by `(term, index)`.
//!
//! A waiter is resolved when its index is applied: the same term means it is our entry (the
//! context is checked too); a different term means a newer leader overwrote it, so it never
//! committed (`LeadershipLost`, not applied). When this node stops leading, waiters whose entry
//! is already committed keep waiting (they will apply), waiters whose entry is gone from the log
//! are provably not applied, and the rest get `LeadershipLost` with an unknown outcome.

use std::collections::VecDeque;

use raftengine::{Applied, Error, Membership, RejectReason, Result, WriteOutcome};
use tokio::sync::oneshot;

use crate::codec::RequestId;

/// Where a waiter's answer goes.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A user command.
    Command(oneshot::Sender<Result<Applied>>),
    /// A membership change.
    Membership(oneshot::Sender<Result<Membership>>),
}

impl Reply {
    /// Fails the waiter.
    pub(crate) fn fail(self, err: Error) {
        match self {
            Self::Command(tx) => {
                let _ = tx.send(Err(err));
            }
            Self::Membership(tx) => {
                let _ = tx.send(Err(err));
            }
        }
    }
}

/// One proposed entry awaiting its outcome.
#[derive(Debug)]
pub(crate) struct Pending {
    /// Term the entry was proposed in.
    pub(crate) term: u64,
    /// Index the entry was appended at.
    pub(crate) index: u64,
    /// Request identity stored in the entry's context.
    pub(crate) id: RequestId,
    /// Where the answer goes.
    pub(crate) reply: Reply,
}

/// What applying an entry means for the waiters.
#[derive(Debug, Default)]
pub(crate) struct AtApply {
    /// The waiter whose entry this is, if any.
    pub(crate) matched: Option<Pending>,
}

/// The waiters of this node, in index order.
#[derive(Debug, Default)]
pub(crate) struct Proposals {
    queue: VecDeque<Pending>,
}

impl Proposals {
    /// Adds a waiter for an entry just appended.
    pub(crate) fn push(&mut self, pending: Pending) {
        self.queue.push_back(pending);
    }

    /// Number of waiters.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether a membership change waiter is outstanding.
    pub(crate) fn has_membership_waiter(&self) -> bool {
        self.queue
            .iter()
            .any(|p| matches!(p.reply, Reply::Membership(_)))
    }

    /// Called for every applied entry `(index, term)` carrying request `id` (if any). Fails
    /// waiters that were skipped or overwritten and returns the one this entry answers.
    pub(crate) fn on_apply(&mut self, index: u64, term: u64, id: Option<RequestId>) -> AtApply {
        let mut out = AtApply::default();
        while let Some(front) = self.queue.front() {
            if front.index > index {
                break;
            }
            let pending = self.queue.pop_front().expect("front exists");
            if pending.index < index {
                // Applied past it without seeing it (e.g. a snapshot jumped over it).
                pending.reply.fail(
                    Error::leadership_lost(WriteOutcome::Unknown)
                        .with_context("the entry was covered by a snapshot before it applied"),
                );
            } else if pending.term == term && id == Some(pending.id) {
                out.matched = Some(pending);
            } else if pending.term == term {
                // Same term, same index, other content: raft-rs rewrote our entry (it turns a
                // membership change proposed while another is pending into an empty entry).
                pending.reply.fail(
                    Error::rejected(RejectReason::MembershipChangePending)
                        .with_context("raft-rs replaced the change with an empty entry"),
                );
            } else {
                pending.reply.fail(
                    Error::leadership_lost(WriteOutcome::NotApplied).with_context(format!(
                        "index {index} was overwritten by an entry of term {term}"
                    )),
                );
            }
        }
        out
    }

    /// A snapshot up to `index` was installed: waiters at or below it cannot be matched.
    pub(crate) fn on_snapshot(&mut self, index: u64) {
        while self.queue.front().is_some_and(|p| p.index <= index) {
            let pending = self.queue.pop_front().expect("front exists");
            pending.reply.fail(
                Error::leadership_lost(WriteOutcome::Unknown)
                    .with_context("a snapshot from the new leader replaced the entry"),
            );
        }
    }

    /// This node stopped leading. `term_at` reads the local log's term at an index (`None` if
    /// absent or compacted); `committed` is the local commit index.
    pub(crate) fn on_leadership_end(
        &mut self,
        term_at: impl Fn(u64) -> Option<u64>,
        committed: u64,
    ) {
        let mut keep = VecDeque::new();
        for pending in self.queue.drain(..) {
            let present = term_at(pending.index);
            if present == Some(pending.term) {
                if pending.index <= committed {
                    // Committed: it will apply here and answer with the real response.
                    keep.push_back(pending);
                } else {
                    pending.reply.fail(
                        Error::leadership_lost(WriteOutcome::Unknown)
                            .with_context("the entry is in the log but not yet committed"),
                    );
                }
            } else if present.is_some() && pending.index <= committed {
                // A committed entry of another term holds the index: ours can never commit.
                pending.reply.fail(
                    Error::leadership_lost(WriteOutcome::NotApplied)
                        .with_context("a committed entry of a newer leader holds the index"),
                );
            } else {
                // Replaced or truncated here only shows that the newer leader lacks the entry;
                // another voter may still hold it and win a later term, so it may yet commit.
                pending
                    .reply
                    .fail(Error::leadership_lost(WriteOutcome::Unknown).with_context(
                        "a newer leader replaced the entry here; another node may still hold it",
                    ));
            }
        }
        self.queue = keep;
    }

    /// Fails every waiter with `err()`.
    pub(crate) fn fail_all(&mut self, err: impl Fn() -> Error) {
        for pending in self.queue.drain(..) {
            pending.reply.fail(err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftengine::ErrorKind;

    fn id(seq: u64) -> RequestId {
        RequestId {
            node: 1,
            incarnation: 1,
            seq,
        }
    }

    fn pending(term: u64, index: u64) -> (Pending, oneshot::Receiver<Result<Applied>>) {
        let (tx, rx) = oneshot::channel();
        (
            Pending {
                term,
                index,
                id: id(index),
                reply: Reply::Command(tx),
            },
            rx,
        )
    }

    #[test]
    fn same_term_matches_newer_term_is_not_applied() {
        let mut p = Proposals::default();
        let (a, _ra) = pending(2, 5);
        let (b, mut rb) = pending(2, 6);
        p.push(a);
        p.push(b);
        assert!(p.on_apply(5, 2, Some(id(5))).matched.is_some());
        assert!(p.on_apply(6, 3, None).matched.is_none());
        let err = rb.try_recv().unwrap().unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::LeadershipLost);
        assert_eq!(err.outcome(), WriteOutcome::NotApplied);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn step_down_keeps_committed_and_classifies_the_rest() {
        let mut p = Proposals::default();
        let (a, _ra) = pending(2, 5);
        let (b, mut rb) = pending(2, 6);
        let (c, mut rc) = pending(2, 7);
        let (d, mut rd) = pending(2, 8);
        for x in [a, b, c, d] {
            p.push(x);
        }
        // 5 committed, 6 present uncommitted, 7 overwritten by term 3 (not committed), 8
        // truncated. Only an entry of another term at a committed index proves "not applied";
        // an overwrite or truncation here does not (another voter may still hold ours).
        let term_at = |i: u64| match i {
            5 | 6 => Some(2),
            7 => Some(3),
            _ => None,
        };
        p.on_leadership_end(term_at, 5);
        assert_eq!(p.len(), 1);
        let e = rb.try_recv().unwrap().unwrap_err();
        assert_eq!(e.outcome(), WriteOutcome::Unknown);
        let e = rc.try_recv().unwrap().unwrap_err();
        assert_eq!(e.outcome(), WriteOutcome::Unknown);
        let e = rd.try_recv().unwrap().unwrap_err();
        assert_eq!(e.outcome(), WriteOutcome::Unknown);
    }

    #[test]
    fn step_down_under_a_committed_entry_of_another_term_is_not_applied() {
        let mut p = Proposals::default();
        let (a, mut ra) = pending(2, 5);
        p.push(a);
        p.on_leadership_end(|_| Some(3), 6);
        assert_eq!(p.len(), 0);
        let e = ra.try_recv().unwrap().unwrap_err();
        assert_eq!(e.outcome(), WriteOutcome::NotApplied);
    }

    #[test]
    fn snapshot_over_waiters_is_unknown() {
        let mut p = Proposals::default();
        let (a, mut ra) = pending(2, 5);
        p.push(a);
        p.on_snapshot(9);
        let e = ra.try_recv().unwrap().unwrap_err();
        assert_eq!(e.outcome(), WriteOutcome::Unknown);
    }
}
