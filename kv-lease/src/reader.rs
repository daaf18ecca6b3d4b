//! [`Lease`]: the read path over an `Arc<dyn Engine>` — a fast local path under a valid lease,
//! a `linearizable_read()` slow path otherwise — and the bookkeeping that keeps the lease honest
//! (leader-loss callback, status observation, acknowledgement renewal, a background task).
//!
//! Write-side bookkeeping (the `propose` wrapper, transfers) lives in [`crate::dispatch`].

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use raftengine::{
    Clock, Engine, Error, ErrorKind, LeaderLoss, LossCause, NodeId, RejectReason, Result, Role,
    Status, Subscription,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::duration::LeaseConfig;
use crate::lease_state::{Anchor, LeaseCheck, LeaseState, Refusal};
use crate::metrics::{Counters, InvalidationCause, LeaseStats, MissReason, ReadPath};

/// A value read under the lease, and which path served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOutcome<T> {
    /// What the read closure returned.
    pub value: T,
    /// Fast (local, under the lease) or slow (after a quorum round).
    pub path: ReadPath,
}

/// Lease reads over one engine (one Raft group). Cheap to clone; clones share the lease.
///
/// Build it with [`Lease::new`]; read with [`Lease::read`]; send writes through
/// [`Lease::propose`] so successful writes keep the lease warm; transfer leadership through
/// [`Lease::transfer_leadership`] so the lease is suspended first.
#[derive(Clone)]
pub struct Lease {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Arc<dyn Engine>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) state: LeaseState,
    pub(crate) counters: Counters,
    config: LeaseConfig,
    renew_interval: Duration,
    closed: AtomicBool,
    /// Transfers running through [`Lease::transfer_leadership`]; while any runs, a status
    /// without `transferring_to` does not end the suspicion (the engine may not have published
    /// the transfer yet).
    pub(crate) transfers_in_flight: AtomicUsize,
    /// The engine's `Status::transfers_started` as last observed. A status whose count differs
    /// started a transfer this lease has not accounted for, even if it already ended.
    transfers_seen: AtomicU64,
    /// The voter set last observed; a change invalidates the lease.
    voters: Mutex<Option<BTreeSet<NodeId>>>,
    subscription: Mutex<Option<Subscription>>,
    task: Mutex<Option<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("node", &self.inner.engine.id())
            .field("state", &self.inner.state)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Lease {
    /// A lease over `engine`. The duration comes from `engine.timing()` (see
    /// [`crate::lease_duration`]); unsafe timing or configuration is rejected with
    /// `Rejected(InvalidConfig)`. Registers a leader-loss callback, and with
    /// [`LeaseConfig::background`] spawns the watcher/renewer task (which needs a tokio runtime;
    /// without one this fails with `InvalidConfig`).
    pub fn new(engine: Arc<dyn Engine>, config: LeaseConfig) -> Result<Self> {
        let duration = config.duration_for(&engine.timing())?;
        let runtime = if config.background {
            Some(tokio::runtime::Handle::try_current().map_err(|_| {
                Error::rejected(RejectReason::InvalidConfig(
                    "LeaseConfig::background needs a tokio runtime; build the lease inside one \
                     or set background = false"
                        .into(),
                ))
            })?)
        } else {
            None
        };
        let renew_interval = config
            .renew_interval
            .unwrap_or(duration / 4)
            .max(Duration::from_millis(1));
        let clock = engine.clock();
        let epoch = clock.now();
        let (stop, stop_rx) = watch::channel(false);
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let callback_target = weak.clone();
            let subscription = engine.on_leader_loss(Box::new(move |loss: LeaderLoss| {
                if let Some(inner) = callback_target.upgrade() {
                    inner.on_leader_loss(loss);
                }
            }));
            Inner {
                engine: Arc::clone(&engine),
                clock,
                state: LeaseState::new(epoch, duration),
                counters: Counters::default(),
                config,
                renew_interval,
                closed: AtomicBool::new(false),
                transfers_in_flight: AtomicUsize::new(0),
                transfers_seen: AtomicU64::new(engine.status().transfers_started),
                voters: Mutex::new(Some(engine.status().membership.voters.clone())),
                subscription: Mutex::new(Some(subscription)),
                task: Mutex::new(None),
                stop,
            }
        });
        if let Some(runtime) = runtime {
            let status_rx = engine.watch_leadership();
            let handle = runtime.spawn(background(
                Arc::downgrade(&inner),
                status_rx,
                stop_rx,
                renew_interval,
            ));
            *lock(&inner.task) = Some(handle);
        }
        Ok(Self { inner })
    }

    /// The engine this lease reads through.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.inner.engine
    }

    /// The underlying lease state.
    pub fn state(&self) -> &LeaseState {
        &self.inner.state
    }

    /// How long a lease lasts from its anchor.
    pub fn duration(&self) -> Duration {
        self.inner.state.duration()
    }

    /// The background task's polling interval.
    pub fn renew_interval(&self) -> Duration {
        self.inner.renew_interval
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LeaseStats {
        self.inner.counters.snapshot()
    }

    /// Checks the four fast-path conditions against one clock sample, counting nothing:
    /// `Ok(())` means a local read now is linearizable.
    pub fn check(&self) -> Result<(), MissReason> {
        let now = self.inner.clock.now();
        self.inner.fast_check(now, &self.inner.engine.status())
    }

    /// The fast path alone: runs `read` and counts a hit when the lease is valid, returns the
    /// reason otherwise (without counting a miss, since the caller may fall back to
    /// [`Lease::read`], which counts it).
    pub fn try_read_fast<R>(&self, read: impl FnOnce() -> R) -> Result<R, MissReason> {
        let now = self.inner.clock.now();
        self.inner.fast_check(now, &self.inner.engine.status())?;
        self.inner.counters.hit();
        Ok(read())
    }

    /// Makes a local read linearizable: returns [`ReadPath::Fast`] at once when the lease is
    /// valid (or an acknowledgement renews it on the spot), otherwise runs `linearizable_read()`
    /// and extends the lease from the instant sampled before the round. Errors are the
    /// engine's; leadership-loss errors invalidate the lease.
    pub async fn fence(&self) -> Result<ReadPath> {
        self.inner.fence().await.map(|(path, _)| path)
    }

    /// Runs `read` (which reads the local state machine) once the read is fenced: served locally
    /// when all four fast-path conditions hold against one clock sample, else after a
    /// `linearizable_read()` round. The outcome says which path served it.
    pub async fn read<R>(&self, read: impl FnOnce() -> R) -> Result<ReadOutcome<R>> {
        let (path, started) = self.inner.fence().await?;
        let value = read();
        let elapsed = self.inner.clock.now().saturating_duration_since(started);
        self.inner.counters.latency(path, elapsed);
        Ok(ReadOutcome { value, path })
    }

    /// Invalidates the lease now (for callers that learn of a loss some other way). Always
    /// counted under `cause`.
    pub fn invalidate(&self, cause: InvalidationCause) {
        self.inner.state.invalidate(self.inner.clock.now());
        self.inner.counters.invalidated(cause);
    }

    /// Looks at the engine's status and applies the lease rules it implies (term change,
    /// role change, transfer start or abort). The background task does this on every status
    /// change; reads do it on every miss.
    pub fn observe_status(&self) {
        let status = self.inner.engine.status();
        self.inner.observe(&status, self.inner.clock.now());
    }

    /// Renews the lease from `quorum_ack()` if the engine reports an acknowledgement that may
    /// grant one. Returns whether the lease moved.
    pub fn renew_from_ack(&self) -> bool {
        let status = self.inner.engine.status();
        self.inner.renew_from_ack(&status, self.inner.clock.now())
    }

    /// Shuts the lease layer down: invalidates the lease for good, deregisters the leader-loss
    /// callback and waits (at most one renew interval plus a second) for the background task
    /// to end. Reads and writes through this lease fail with `Shutdown` afterwards. Does not
    /// shut the engine down.
    pub async fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.state.close();
        self.inner.counters.invalidated(InvalidationCause::Shutdown);
        let _ = self.inner.stop.send(true);
        lock(&self.inner.subscription).take();
        let task = lock(&self.inner.task).take();
        if let Some(task) = task {
            let limit = self.inner.renew_interval + Duration::from_secs(1);
            if tokio::time::timeout(limit, task).await.is_err() {
                tracing::warn!("lease background task did not stop in time");
            }
        }
    }

    /// Whether [`Lease::shutdown`] ran.
    pub fn is_shut_down(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }
}

impl Inner {
    pub(crate) fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::shutdown().with_context("the lease layer was shut down"))
        } else {
            Ok(())
        }
    }

    /// The fast-path conditions of `docs/leases.md` against one clock sample `now`.
    #[inline]
    pub(crate) fn fast_check(&self, now: Instant, status: &Status) -> Result<(), MissReason> {
        if status.role != Role::Leader {
            return Err(MissReason::NotLeader);
        }
        if status.transferring_to.is_some()
            || status.transfer_started_this_term()
            || status.transfers_started != self.transfers_seen.load(Ordering::Acquire)
        {
            return Err(MissReason::Transferring);
        }
        match self.state.check(now, status.term) {
            LeaseCheck::Valid => {}
            LeaseCheck::Invalidated => {
                return Err(if self.state.is_suspect() {
                    MissReason::Transferring
                } else {
                    MissReason::Invalidated
                });
            }
            LeaseCheck::OtherTerm => return Err(MissReason::TermChanged),
            LeaseCheck::Expired => return Err(MissReason::Expired),
        }
        if status.applied_term != status.term {
            return Err(MissReason::TermNotApplied);
        }
        Ok(())
    }

    async fn fence(&self) -> Result<(ReadPath, Instant)> {
        // No `closed` check before the fast path: shutdown closes the lease state, so a closed
        // lease can never pass `fast_check`; the check below turns the miss into `Shutdown`.
        let now = self.clock.now();
        let status = self.engine.status();
        let reason = match self.fast_check(now, &status) {
            Ok(()) => {
                self.counters.hit();
                return Ok((ReadPath::Fast, now));
            }
            Err(reason) => reason,
        };
        self.ensure_open()?;
        self.observe(&status, now);
        if status.is_ready_leader()
            && self.renew_from_ack(&status, now)
            && self.fast_check(now, &status).is_ok()
        {
            self.counters.hit();
            return Ok((ReadPath::Fast, now));
        }
        self.counters.miss(reason);
        self.slow_round(&status).await?;
        self.counters.slow_read();
        Ok((ReadPath::Slow, now))
    }

    /// One `linearizable_read()` with lease bookkeeping: extend on success in the same term,
    /// invalidate on leadership loss.
    pub(crate) async fn slow_round(&self, status: &Status) -> Result<raftengine::ReadIndex> {
        let generation = self.state.generation();
        let started = self.clock.now();
        let term = status.term;
        match self.engine.linearizable_read().await {
            Ok(read_index) => {
                self.counters.slow_round(true);
                if read_index.term == term {
                    self.extend_after_round(started, term, generation);
                }
                Ok(read_index)
            }
            Err(err) => {
                self.counters.slow_round(false);
                self.on_error(&err);
                Err(err)
            }
        }
    }

    /// Extends from a successful quorum operation of `term` that started at `started`, with
    /// `generation` sampled before it — only if the node still leads in `term` and no transfer
    /// runs.
    pub(crate) fn extend_after_round(&self, started: Instant, term: u64, generation: u64) {
        let status = self.engine.status();
        if !may_grant(&status) || status.term != term {
            self.observe(&status, self.clock.now());
            return;
        }
        match self
            .state
            .extend(Anchor::Round { started }, term, generation)
        {
            Ok(_) => self.counters.round_renewal(),
            Err(Refusal::NotForward) => {}
            Err(refusal) => tracing::trace!(%refusal, term, "lease not extended after a round"),
        }
    }

    /// Grants or extends the lease from the engine's newest quorum acknowledgement.
    pub(crate) fn renew_from_ack(&self, status: &Status, now: Instant) -> bool {
        if !may_grant(status) {
            return false;
        }
        let generation = self.state.generation();
        let Some(ack) = self.engine.quorum_ack() else {
            return false;
        };
        // An anchor must not lie in the future. Compared with a sample taken after the call
        // (not `now`, taken before it): a single voter proves its leadership at the instant it
        // is asked, which is later than `now` but never later than this sample.
        if ack.term != status.term || ack.sent_at > now.max(self.clock.now()) {
            return false;
        }
        match self.state.extend(
            Anchor::Ack {
                sent_at: ack.sent_at,
            },
            ack.term,
            generation,
        ) {
            Ok(_) => {
                self.counters.ack_renewal();
                true
            }
            Err(_) => false,
        }
    }

    /// Applies what a status says about the lease.
    pub(crate) fn observe(&self, status: &Status, now: Instant) {
        let held = self.state.expires_at().is_some();
        if status.role == Role::Shutdown {
            if held {
                self.invalidate(InvalidationCause::Shutdown);
            }
            return;
        }
        if held && status.role != Role::Leader {
            self.invalidate(InvalidationCause::RoleChanged);
        } else if held && status.term != self.state.term() {
            self.invalidate(InvalidationCause::TermChanged);
        }
        let voters_changed = {
            let mut voters = lock(&self.voters);
            let changed = voters.as_ref() != Some(&status.membership.voters);
            if changed {
                *voters = Some(status.membership.voters.clone());
            }
            changed
        };
        if voters_changed {
            self.invalidate(InvalidationCause::MembershipChanged);
        }
        // A transfer this lease has not accounted for, possibly already over: its forced
        // election may have bypassed the followers' vote refusal. Suspect before publishing the
        // new count, so a reader that sees the count finds the lease already cleared.
        if status.transfers_started != self.transfers_seen.load(Ordering::Acquire) {
            self.state.suspect();
            self.counters
                .invalidated(InvalidationCause::TransferStarted);
            self.transfers_seen
                .store(status.transfers_started, Ordering::Release);
            if status.transferring_to.is_none()
                && self.transfers_in_flight.load(Ordering::Acquire) == 0
            {
                self.state.end_suspicion(now);
            }
        }
        match (status.transferring_to, self.state.is_suspect()) {
            (Some(_), false) => {
                self.state.suspect();
                self.counters
                    .invalidated(InvalidationCause::TransferStarted);
                tracing::debug!(term = status.term, "lease suspended: transfer started");
            }
            (None, true) if self.transfers_in_flight.load(Ordering::Acquire) == 0 => {
                let ended = self.state.end_suspicion(now);
                if ended && status.role == Role::Leader {
                    self.counters
                        .invalidated(InvalidationCause::TransferAborted);
                    tracing::debug!(
                        term = status.term,
                        "transfer aborted: only later acknowledgements grant the lease"
                    );
                }
            }
            _ => {}
        }
    }

    /// Invalidates the lease; counts `cause` only when a lease was actually held (so a
    /// follower's repeated `NotLeader` answers do not inflate the counters).
    pub(crate) fn invalidate(&self, cause: InvalidationCause) {
        if self.state.invalidate(self.clock.now()) {
            self.counters.invalidated(cause);
            tracing::debug!(%cause, "lease invalidated");
        }
    }

    /// The error rule: only leadership-loss errors (and shutdown/fatal) touch the lease.
    pub(crate) fn on_error(&self, err: &Error) {
        match err.kind() {
            ErrorKind::NotLeader { .. } => self.invalidate(InvalidationCause::NotLeader),
            ErrorKind::TransferInProgress { .. } => {
                self.state.suspect();
                self.counters.invalidated(InvalidationCause::TransferError);
            }
            ErrorKind::LeadershipLost => self.invalidate(InvalidationCause::LeadershipLost),
            ErrorKind::Shutdown | ErrorKind::Fatal => self.invalidate(InvalidationCause::Shutdown),
            _ => debug_assert!(!err.is_leadership_loss()),
        }
    }

    fn on_leader_loss(&self, loss: LeaderLoss) {
        let cause = match loss.cause {
            LossCause::Shutdown | LossCause::Fatal => InvalidationCause::Shutdown,
            _ => InvalidationCause::LeaderLoss,
        };
        self.invalidate(cause);
    }

    async fn background_tick(&self) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let now = self.clock.now();
        let status = self.engine.status();
        self.observe(&status, now);
        if self.renew_from_ack(&status, now) || !self.config.proactive_renewal {
            return;
        }
        if !may_grant(&status) {
            return;
        }
        let ends_soon = match self.state.expires_at() {
            Some(expiry) => expiry.saturating_duration_since(now) <= self.renew_interval * 2,
            None => true,
        };
        if ends_soon {
            // The engine bounds the round with its own deadline.
            let _ = self.slow_round(&status).await;
        }
    }
}

/// Whether anything may grant or extend a lease under `status`: the node leads, no transfer
/// runs, and none started in this term (its forced election may still come).
fn may_grant(status: &Status) -> bool {
    status.role == Role::Leader
        && status.transferring_to.is_none()
        && !status.transfer_started_this_term()
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.state.close();
        let _ = self.stop.send(true);
    }
}

/// The watcher/renewer: observes every leadership change (`Engine::watch_leadership`, which
/// applied entries alone do not wake) and polls `quorum_ack()` every `interval`. Ends when the
/// lease shuts down or the last handle is dropped.
async fn background(
    inner: Weak<Inner>,
    mut status: watch::Receiver<Status>,
    mut stop: watch::Receiver<bool>,
    interval: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut status_open = true;
    loop {
        tokio::select! {
            biased;
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            changed = status.changed(), if status_open => {
                let Some(inner) = inner.upgrade() else { break };
                match changed {
                    Ok(()) => {
                        let current = status.borrow_and_update().clone();
                        inner.observe(&current, inner.clock.now());
                    }
                    Err(_) => {
                        // The engine dropped its status channel: it is gone.
                        status_open = false;
                        inner.invalidate(InvalidationCause::Shutdown);
                    }
                }
            }
            _ = ticker.tick() => {
                let Some(inner) = inner.upgrade() else { break };
                inner.background_tick().await;
            }
        }
    }
    tracing::trace!("lease background task ended");
}
