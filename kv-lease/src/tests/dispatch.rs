//! Write-side bookkeeping: successes extend, only leadership-loss errors invalidate, and a
//! conflict storm keeps the lease warm.

use std::sync::Arc;

use bytes::Bytes;
use raftengine::{Engine, Error, ErrorKind, RejectReason, SharedStateMachine, WriteOutcome};

use super::*;
use crate::InvalidationCause;
use crate::kv::{KvStateMachine, KvStore, StormConfig, StormReport, conflict_storm};

#[tokio::test(start_paused = true)]
async fn a_successful_write_extends_from_before_the_proposal() {
    let (engine, lease) = leader();
    engine.set_propose_delay(30 * MS);
    let start = now();
    lease.propose(Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(lease.state().expires_at(), Some(start + LEASE));
    assert_eq!(path(&lease).await, ReadPath::Fast);
    assert_eq!(engine.read_calls(), 0, "the write warmed the lease");
    assert_eq!(lease.stats().round_renewals, 1);
}

#[tokio::test(start_paused = true)]
async fn writes_keep_extending_the_lease() {
    let (engine, lease) = leader();
    for _ in 0..20 {
        lease.propose(Bytes::from_static(b"x")).await.unwrap();
        tokio::time::advance(100 * MS).await;
        assert_eq!(path(&lease).await, ReadPath::Fast);
    }
    assert_eq!(engine.read_calls(), 0);
}

async fn assert_invalidates(err: Error, cause: InvalidationCause) {
    let (engine, lease) = leader();
    warm(&lease).await;
    let rounds = engine.read_calls();
    engine.fail_next_propose(err.clone_kind());
    let got = lease.propose(Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(got.kind(), err.kind());
    assert_ne!(lease.check(), Ok(()), "{err:?} must invalidate");
    assert_eq!(lease.stats().invalidations_for(cause), 1, "{err:?}");
    // The next read pays a round (and may grant again: the mock still leads).
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(engine.read_calls(), rounds + 1);
}

trait CloneKind {
    fn clone_kind(&self) -> Error;
}

impl CloneKind for Error {
    fn clone_kind(&self) -> Error {
        Error::new(self.kind().clone()).with_outcome(self.outcome())
    }
}

#[tokio::test(start_paused = true)]
async fn not_leader_invalidates() {
    assert_invalidates(Error::not_leader(Some(2)), InvalidationCause::NotLeader).await;
}

#[tokio::test(start_paused = true)]
async fn transfer_in_progress_invalidates() {
    assert_invalidates(
        Error::transfer_in_progress(Some(2)),
        InvalidationCause::TransferError,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn leadership_lost_invalidates() {
    assert_invalidates(
        Error::leadership_lost(WriteOutcome::Unknown),
        InvalidationCause::LeadershipLost,
    )
    .await;
    assert_invalidates(
        Error::leadership_lost(WriteOutcome::NotApplied),
        InvalidationCause::LeadershipLost,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_and_fatal_errors_invalidate() {
    assert_invalidates(Error::shutdown(), InvalidationCause::Shutdown).await;
    assert_invalidates(Error::new(ErrorKind::Fatal), InvalidationCause::Shutdown).await;
}

#[tokio::test(start_paused = true)]
async fn errors_that_do_not_prove_loss_keep_the_lease() {
    let (engine, lease) = leader();
    warm(&lease).await;
    let keep = [
        Error::timeout(MS),
        Error::new(ErrorKind::Unavailable),
        Error::new(ErrorKind::Busy),
        Error::rejected(RejectReason::TooLarge { size: 9, limit: 1 }),
        Error::new(ErrorKind::Storage),
        Error::new(ErrorKind::Unsupported),
    ];
    for err in keep {
        assert!(!err.is_leadership_loss());
        let kind = err.kind().clone();
        engine.fail_next_propose(err);
        let got = lease.propose(Bytes::from_static(b"x")).await.unwrap_err();
        assert_eq!(got.kind(), &kind);
        assert_eq!(lease.check(), Ok(()), "{kind:?} must keep the lease");
        assert_eq!(path(&lease).await, ReadPath::Fast);
    }
    assert_eq!(lease.stats().invalidations(), 0);
    assert_eq!(engine.read_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_write_committed_in_an_older_term_does_not_extend() {
    let (engine, lease) = leader();
    engine.set_propose_delay(10 * MS);
    let writer = {
        let lease = lease.clone();
        tokio::spawn(async move { lease.propose(Bytes::from_static(b"x")).await })
    };
    tokio::task::yield_now().await;
    tokio::time::advance(5 * MS).await;
    engine.make_leader(2);
    let applied = writer.await.unwrap().unwrap();
    assert_eq!(applied.term, 2);
    assert_eq!(lease.stats().round_renewals, 0);
}

/// Half of all conditional writes conflict while reads run on the leader. `broken` emulates the
/// seed bug: the lease is invalidated on every conflict. Returns the report and the quorum
/// rounds the mock counted after warm-up.
async fn storm(broken: bool) -> (StormReport, u64) {
    let sm = SharedStateMachine::new(KvStateMachine::new());
    let engine = MockEngine::with_state_machine(1, sm.clone().into_dyn());
    engine.make_leader(1);
    let lease = Lease::new(engine.clone() as Arc<dyn Engine>, quiet()).unwrap();
    let kv = KvStore::new(lease.clone(), sm);
    warm(&lease).await;
    let rounds = engine.read_calls();
    let config = StormConfig {
        writes: 2_000,
        reads_per_write: 4,
        pause: 5 * MS,
        invalidate_on_conflict: broken,
    };
    let report = conflict_storm(&kv, b"k", &config).await.unwrap();
    assert_eq!(report.stale_reads, 0);
    assert_eq!(report.writes, 2_000);
    assert_eq!(report.conflicts, 1_000, "half the writes conflict");
    assert_eq!(report.reads, 8_000);
    (report, engine.read_calls() - rounds)
}

#[tokio::test(start_paused = true)]
async fn a_conflict_storm_keeps_the_lease_warm() {
    let (report, rounds) = storm(false).await;
    assert!(report.hit_rate() >= 0.99, "hit rate {}", report.hit_rate());
    assert_eq!(rounds, 0, "no extra quorum rounds on the engine");
    assert_eq!(report.quorum_rounds, 0);
}

#[tokio::test(start_paused = true)]
async fn the_storm_test_sees_the_seed_bug() {
    let (report, rounds) = storm(true).await;
    let rate = report.hit_rate();
    assert!(
        rate < 0.9,
        "a lease invalidated on conflicts must collapse: {rate}"
    );
    assert!(
        rounds >= report.conflicts,
        "every conflict costs a round: {rounds} rounds for {} conflicts",
        report.conflicts
    );
    assert_eq!(report.quorum_rounds, rounds);
}
