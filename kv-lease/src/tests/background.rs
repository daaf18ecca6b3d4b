//! The background task: renews from acknowledgements without traffic, observes status changes,
//! ends on shutdown and on drop.

use std::sync::Arc;

use raftengine::{Engine, ErrorKind};

use super::*;
use crate::{InvalidationCause, LeaseCheck};

fn with_background(engine: &Arc<MockEngine>) -> Lease {
    Lease::new(engine.clone() as Arc<dyn Engine>, LeaseConfig::default()).unwrap()
}

/// Emulates the engine's heartbeats: a fresh quorum ack every 50 ms.
fn heartbeats(engine: &Arc<MockEngine>) -> tokio::task::JoinHandle<()> {
    let engine = Arc::clone(engine);
    tokio::spawn(async move {
        loop {
            engine.ack_now();
            tokio::time::sleep(50 * MS).await;
        }
    })
}

#[tokio::test(start_paused = true)]
async fn acknowledgements_keep_a_read_only_lease_warm_without_rounds() {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let lease = with_background(&engine);
    let beats = heartbeats(&engine);
    tokio::time::sleep(10 * MS).await;
    for _ in 0..500 {
        assert_eq!(path(&lease).await, ReadPath::Fast);
        tokio::time::sleep(10 * MS).await;
    }
    assert_eq!(engine.read_calls(), 0);
    assert!(
        lease.stats().ack_renewals >= 5_000 / 62 - 1,
        "{:?}",
        lease.stats()
    );
    assert_eq!(lease.stats().misses(), 0);
    beats.abort();
}

#[tokio::test(start_paused = true)]
async fn without_acknowledgements_the_lease_lapses() {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let lease = with_background(&engine);
    warm(&lease).await;
    tokio::time::sleep(LEASE).await;
    assert_eq!(lease.check(), Err(MissReason::Expired));
}

#[tokio::test(start_paused = true)]
async fn proactive_renewal_keeps_the_lease_with_rounds_bounded_by_time() {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let config = LeaseConfig {
        proactive_renewal: true,
        ..LeaseConfig::default()
    };
    let lease = Lease::new(engine.clone() as Arc<dyn Engine>, config).unwrap();
    tokio::time::sleep(10 * MS).await;
    let mut fast = 0;
    for _ in 0..1_000 {
        if path(&lease).await == ReadPath::Fast {
            fast += 1;
        }
        tokio::time::sleep(2 * MS).await;
    }
    assert!(fast >= 990, "{fast}");
    // 2 s of virtual time, a round per ~lease/2 at most: far fewer rounds than reads.
    assert!(engine.read_calls() <= 20, "{}", engine.read_calls());
}

#[tokio::test(start_paused = true)]
async fn a_transfer_start_is_observed_without_any_read() {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let lease = with_background(&engine);
    warm(&lease).await;
    engine.set_transferring(Some(3));
    tokio::time::sleep(MS).await;
    assert!(lease.state().is_suspect());
    assert_eq!(lease.state().check(now(), 1), LeaseCheck::Invalidated);
    engine.set_transferring(None);
    tokio::time::sleep(MS).await;
    assert!(!lease.state().is_suspect());
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::TransferAborted),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_term_change_is_observed_without_any_read() {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let lease = with_background(&engine);
    warm(&lease).await;
    engine.set_term_silently(4);
    tokio::time::sleep(MS).await;
    assert_eq!(lease.state().check(now(), 1), LeaseCheck::Invalidated);
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::TermChanged),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn engine_shutdown_invalidates() {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let lease = with_background(&engine);
    warm(&lease).await;
    engine.shutdown().await.unwrap();
    assert_eq!(lease.state().check(now(), 1), LeaseCheck::Invalidated);
    assert_eq!(
        lease.stats().invalidations_for(InvalidationCause::Shutdown),
        1
    );
    assert_eq!(kind_of(lease.fence().await), ErrorKind::Shutdown);
}

#[tokio::test(start_paused = true)]
async fn lease_shutdown_stops_the_task_and_refuses_use() {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let lease = with_background(&engine);
    warm(&lease).await;
    assert_eq!(engine.subscriber_count(), 1);
    lease.shutdown().await;
    assert!(lease.is_shut_down());
    assert_eq!(engine.subscriber_count(), 0, "the task ended");
    assert_eq!(kind_of(lease.fence().await), ErrorKind::Shutdown);
    assert_eq!(lease.try_read_fast(|| ()), Err(MissReason::Invalidated));
    let err = lease
        .propose(bytes::Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Shutdown);
    assert_eq!(engine.propose_calls(), 0);
    engine.ack_now();
    assert!(!lease.renew_from_ack());
    lease.shutdown().await; // idempotent
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_ends_the_task() {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let lease = with_background(&engine);
    let clone = lease.clone();
    tokio::time::sleep(MS).await;
    assert_eq!(engine.subscriber_count(), 1);
    drop(lease);
    tokio::time::sleep(MS).await;
    assert_eq!(engine.subscriber_count(), 1, "a clone keeps it alive");
    drop(clone);
    tokio::time::sleep(MS).await;
    assert_eq!(engine.subscriber_count(), 0);
    // The leader-loss callback was deregistered with the lease.
    engine.step_down(2, None, raftengine::LossCause::SteppedDown);
}
