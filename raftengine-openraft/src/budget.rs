//! The adapter's stand-in for an uncommitted-size limit, which openraft lacks: the bytes of
//! this node's proposals still awaiting an answer, bounded by `Config::max_uncommitted_bytes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use openraft::OptionalSend;
use openraft::raft::responder::Responder;
use raftengine::{Error, ErrorKind, Result};
use tokio::sync::oneshot;

use crate::types::TypeConfig;

/// Holds `bytes` of the in-flight budget until dropped.
pub(crate) struct InFlight {
    counter: Arc<AtomicUsize>,
    bytes: usize,
}

impl InFlight {
    /// Reserves `bytes` unless that would exceed `limit` (then `Busy`, nothing appended).
    pub(crate) fn reserve(counter: &Arc<AtomicUsize>, bytes: usize, limit: usize) -> Result<Self> {
        let before = counter.fetch_add(bytes, Ordering::SeqCst);
        if before + bytes > limit {
            counter.fetch_sub(bytes, Ordering::SeqCst);
            return Err(Error::new(ErrorKind::Busy).with_context(format!(
                "{before} bytes of proposals are still in flight (limit {limit})"
            )));
        }
        Ok(Self {
            counter: Arc::clone(counter),
            bytes,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// openraft's answer to one proposal, handed to openraft with the proposal: it sends the
/// result to the proposer and holds the proposal's share of the in-flight budget until
/// openraft answers, or drops it unanswered when it stops. The proposer may stop waiting
/// earlier; the entry keeps counting while openraft still has it.
pub(crate) struct Answer<T> {
    tx: oneshot::Sender<T>,
    _budget: InFlight,
}

impl<T> Answer<T> {
    /// An answer that releases `budget` once openraft is done, and the receiver of the result.
    pub(crate) fn new(budget: InFlight) -> (Self, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        let answer = Self {
            tx,
            _budget: budget,
        };
        (answer, rx)
    }
}

impl<T: OptionalSend + 'static> Responder<TypeConfig, T> for Answer<T> {
    fn on_complete(self, result: T) {
        // A proposer that stopped waiting has dropped the receiver; the budget goes either way.
        let _ = self.tx.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_released_on_drop() {
        let counter = Arc::new(AtomicUsize::new(0));
        let first = InFlight::reserve(&counter, 6, 10).unwrap();
        let err = InFlight::reserve(&counter, 5, 10).err().unwrap();
        assert_eq!(err.kind(), &ErrorKind::Busy);
        assert_eq!(counter.load(Ordering::SeqCst), 6);
        drop(first);
        let _second = InFlight::reserve(&counter, 10, 10).unwrap();
        assert_eq!(counter.load(Ordering::SeqCst), 10);
    }

    #[test]
    fn an_answer_holds_the_budget_until_openraft_is_done_with_it() {
        let counter = Arc::new(AtomicUsize::new(0));
        let (answered, rx) = Answer::<u8>::new(InFlight::reserve(&counter, 4, 10).unwrap());
        let (dropped, _) = Answer::<u8>::new(InFlight::reserve(&counter, 5, 10).unwrap());
        drop(rx);
        assert_eq!(
            counter.load(Ordering::SeqCst),
            9,
            "a caller that left frees nothing"
        );
        Responder::<TypeConfig, u8>::on_complete(answered, 1);
        assert_eq!(counter.load(Ordering::SeqCst), 5);
        drop(dropped);
        assert_eq!(
            counter.load(Ordering::SeqCst),
            0,
            "an unanswered drop frees it too"
        );
        let (answer, mut rx) = Answer::<u8>::new(InFlight::reserve(&counter, 1, 10).unwrap());
        Responder::<TypeConfig, u8>::on_complete(answer, 7);
        assert_eq!(rx.try_recv(), Ok(7));
    }
}
