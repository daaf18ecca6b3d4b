//! Linearizable reads over raft-rs ReadIndex (`ReadOnlyOption::Safe`).
//!
//! Readers arriving between two loop iterations share one ReadIndex round (one context, one
//! heartbeat broadcast). raft-rs drops ReadIndex requests silently when the leader has not
//! committed an entry of its term yet, and discards pending rounds on every role or term change;
//! so readers are queued until the leader has committed in its term, and every reader whose
//! round has not been confirmed fails with `LeadershipLost` on a role or term change. A
//! confirmed round stays valid: its readers are answered once `applied ≥ index`.

use std::collections::HashMap;

use raftengine::{Error, ReadIndex, Result, WriteOutcome};
use tokio::sync::oneshot;

/// A reader's answer channel.
pub(crate) type ReadReply = oneshot::Sender<Result<ReadIndex>>;

#[derive(Debug)]
struct Round {
    term: u64,
    readers: Vec<ReadReply>,
}

/// The readers of this node.
#[derive(Debug, Default)]
pub(crate) struct Reads {
    queued: Vec<ReadReply>,
    in_flight: HashMap<Vec<u8>, Round>,
    confirmed: Vec<(ReadIndex, ReadReply)>,
}

impl Reads {
    /// Adds a reader; it joins the next round.
    pub(crate) fn enqueue(&mut self, reply: ReadReply) {
        self.queued.push(reply);
    }

    /// Whether readers wait for a round to be issued.
    pub(crate) fn has_queued(&self) -> bool {
        self.queued.iter().any(|r| !r.is_closed())
    }

    /// Takes the queued readers to issue one round for them.
    pub(crate) fn take_queued(&mut self) -> Vec<ReadReply> {
        std::mem::take(&mut self.queued)
            .into_iter()
            .filter(|r| !r.is_closed())
            .collect()
    }

    /// Records a round issued with `ctx` in `term`.
    pub(crate) fn issued(&mut self, ctx: Vec<u8>, term: u64, readers: Vec<ReadReply>) {
        self.in_flight.insert(ctx, Round { term, readers });
    }

    /// A ReadState arrived: the round with `ctx` is confirmed at `index`.
    pub(crate) fn on_read_state(&mut self, ctx: &[u8], index: u64, applied: u64) {
        let Some(round) = self.in_flight.remove(ctx) else {
            return;
        };
        let point = ReadIndex {
            index,
            term: round.term,
        };
        for reader in round.readers {
            if applied >= index {
                let _ = reader.send(Ok(point));
            } else {
                self.confirmed.push((point, reader));
            }
        }
    }

    /// The state machine applied up to `applied`.
    pub(crate) fn on_applied(&mut self, applied: u64) {
        if self.confirmed.is_empty() {
            return;
        }
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.confirmed)
            .into_iter()
            .partition(|(point, _)| point.index <= applied);
        self.confirmed = waiting;
        for (point, reader) in ready {
            let _ = reader.send(Ok(point));
        }
    }

    /// Role or term changed: every reader without a confirmed round fails.
    pub(crate) fn on_leadership_change(&mut self) {
        let err = || {
            Error::leadership_lost(WriteOutcome::NotApplied)
                .with_context("leadership changed before a quorum confirmed the read")
        };
        for reader in self.queued.drain(..) {
            let _ = reader.send(Err(err()));
        }
        for (_, round) in self.in_flight.drain() {
            for reader in round.readers {
                let _ = reader.send(Err(err()));
            }
        }
    }

    /// Fails every reader with `err()`.
    pub(crate) fn fail_all(&mut self, err: impl Fn() -> Error) {
        for reader in self.queued.drain(..) {
            let _ = reader.send(Err(err()));
        }
        for (_, round) in self.in_flight.drain() {
            for reader in round.readers {
                let _ = reader.send(Err(err()));
            }
        }
        for (_, reader) in self.confirmed.drain(..) {
            let _ = reader.send(Err(err()));
        }
    }

    /// Drops rounds whose readers all gave up (their deadline passed); raft-rs may keep the
    /// context pending, which is harmless.
    pub(crate) fn prune_abandoned(&mut self) {
        self.in_flight
            .retain(|_, round| round.readers.iter().any(|r| !r.is_closed()));
        self.confirmed.retain(|(_, r)| !r.is_closed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftengine::ErrorKind;

    #[test]
    fn a_confirmed_round_answers_every_reader_once_applied() {
        let mut reads = Reads::default();
        let (a, mut ra) = oneshot::channel();
        let (b, mut rb) = oneshot::channel();
        reads.enqueue(a);
        reads.enqueue(b);
        let readers = reads.take_queued();
        assert_eq!(readers.len(), 2);
        reads.issued(b"ctx".to_vec(), 4, readers);
        reads.on_read_state(b"ctx", 10, 8);
        assert!(ra.try_recv().is_err());
        reads.on_applied(10);
        assert_eq!(
            ra.try_recv().unwrap().unwrap(),
            ReadIndex { index: 10, term: 4 }
        );
        assert_eq!(rb.try_recv().unwrap().unwrap().index, 10);
    }

    #[test]
    fn unconfirmed_readers_fail_on_leadership_change_confirmed_ones_survive() {
        let mut reads = Reads::default();
        let (a, mut ra) = oneshot::channel();
        let (b, mut rb) = oneshot::channel();
        let (c, mut rc) = oneshot::channel();
        reads.issued(b"one".to_vec(), 2, vec![a]);
        reads.issued(b"two".to_vec(), 2, vec![b]);
        reads.enqueue(c);
        reads.on_read_state(b"one", 5, 1);
        reads.on_leadership_change();
        assert_eq!(
            rb.try_recv().unwrap().unwrap_err().kind(),
            &ErrorKind::LeadershipLost
        );
        assert_eq!(
            rc.try_recv().unwrap().unwrap_err().kind(),
            &ErrorKind::LeadershipLost
        );
        assert!(ra.try_recv().is_err());
        reads.on_applied(5);
        assert_eq!(ra.try_recv().unwrap().unwrap().index, 5);
    }
}
