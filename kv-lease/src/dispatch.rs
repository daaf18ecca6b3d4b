//! Dispatch bookkeeping: writes, explicit linearizable reads and leadership transfers routed
//! through the lease so it is extended by what proves leadership and invalidated only by what
//! disproves it.
//!
//! The rules (`docs/leases.md`):
//! * sample the clock and the generation **before** the quorum operation;
//! * on success in the term sampled before, extend to `t0 + duration` (forward only, and only if
//!   the generation is unchanged);
//! * on error, invalidate only when [`raftengine::Error::is_leadership_loss`] (plus shutdown and
//!   fatal failures). A write conflict is an `Ok` response of the state machine and never
//!   reaches this code as an error; `Timeout`, `Busy`, `Unavailable` and `Rejected` keep the
//!   lease.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use raftengine::{Applied, NodeId, ReadIndex, Result, Role};

use crate::metrics::InvalidationCause;
use crate::reader::Lease;

impl Lease {
    /// Proposes `command` through the engine with lease bookkeeping: a success in the current
    /// term extends the lease from the instant sampled before proposing; a leadership-loss error
    /// invalidates it; any other error leaves it alone. The result is the engine's, unchanged.
    pub async fn propose(&self, command: Bytes) -> Result<Applied> {
        let inner = &self.inner;
        inner.ensure_open()?;
        let generation = inner.state.generation();
        let started = inner.clock.now();
        let term = inner.engine.status().term;
        match inner.engine.propose(command).await {
            Ok(applied) => {
                if applied.term == term {
                    inner.extend_after_round(started, term, generation);
                }
                Ok(applied)
            }
            Err(err) => {
                inner.on_error(&err);
                Err(err)
            }
        }
    }

    /// Runs one `linearizable_read()` round with the same bookkeeping as [`Lease::propose`]
    /// (the slow path of [`Lease::read`], without the fast path in front).
    pub async fn linearizable_read(&self) -> Result<ReadIndex> {
        self.inner.ensure_open()?;
        let status = self.inner.engine.status();
        self.inner.slow_round(&status).await
    }

    /// Transfers leadership with the lease suspended first: the transfer's forced election
    /// bypasses followers' vote refusal, so no local read may rely on the lease from now on.
    /// If the transfer fails (aborted), the suspicion ends at that instant and only an
    /// acknowledgement sent, or a round started, after it grants a lease again.
    ///
    /// A request the engine must refuse before starting anything (this node does not lead, the
    /// target is this node or not a voter) leaves the lease alone. Should the engine start a
    /// transfer anyway, its status shows the transfer's term and the fast path refuses.
    pub async fn transfer_leadership(&self, target: Option<NodeId>) -> Result<NodeId> {
        let inner = &self.inner;
        inner.ensure_open()?;
        let status = inner.engine.status();
        let refused = status.role != Role::Leader
            || target.is_some_and(|t| t == status.id || !status.membership.voters.contains(&t));
        if refused {
            let result = inner.engine.transfer_leadership(target).await;
            if let Err(err) = &result {
                inner.on_error(err);
            }
            return result;
        }
        let in_flight = InFlight::enter(&inner.transfers_in_flight);
        inner.state.suspect();
        inner
            .counters
            .invalidated(InvalidationCause::TransferStarted);
        let result = inner.engine.transfer_leadership(target).await;
        drop(in_flight);
        let ended = inner.clock.now();
        let was_suspect = inner.state.end_suspicion(ended);
        if result.is_err() && was_suspect {
            inner
                .counters
                .invalidated(InvalidationCause::TransferAborted);
        }
        result
    }
}

/// Counts one running transfer; the count drops even when the transfer future is cancelled.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
