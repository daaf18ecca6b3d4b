//! Transfers suspend the lease; after an abort nothing in the same term grants one again (a
//! late trigger message can still force an election that ignores the followers' vote refusal),
//! and the next term starts afresh.

use std::sync::Arc;

use raftengine::{Engine, ErrorKind, QuorumAck};

use super::*;
use crate::testing::TransferPlan;
use crate::{InvalidationCause, LeaseCheck};

#[tokio::test(start_paused = true)]
async fn the_fast_path_refuses_while_a_transfer_runs() {
    let (engine, lease) = leader();
    warm(&lease).await;
    engine.set_transferring(Some(2));
    assert_eq!(lease.check(), Err(MissReason::Transferring));
    assert_eq!(
        kind_of(lease.fence().await),
        ErrorKind::TransferInProgress { target: Some(2) }
    );
    assert_eq!(miss(&lease, MissReason::Transferring), 1);
    assert!(lease.state().is_suspect());
    let stats = lease.stats();
    assert_eq!(
        stats.invalidations_for(InvalidationCause::TransferStarted),
        1
    );
    // Even an acknowledgement cannot grant while the transfer runs.
    engine.ack_now();
    assert!(!lease.renew_from_ack());
}

#[tokio::test(start_paused = true)]
async fn after_an_abort_nothing_in_that_term_grants() {
    let (engine, lease) = leader();
    warm(&lease).await;
    engine.set_transferring(Some(2));
    lease.observe_status();
    assert!(lease.state().is_suspect());
    tokio::time::advance(20 * MS).await;
    let before_abort = now();
    engine.ack_now(); // sent while the transfer ran
    tokio::time::advance(20 * MS).await;
    engine.set_transferring(None);
    let aborted_at = now();
    lease.observe_status();
    assert!(!lease.state().is_suspect());
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::TransferAborted),
        1
    );
    // An ack sent during the transfer, or at the abort instant, does not grant.
    assert!(!lease.renew_from_ack());
    engine.set_quorum_ack(Some(QuorumAck {
        term: 1,
        sent_at: aborted_at,
    }));
    assert!(!lease.renew_from_ack());
    assert_eq!(lease.check(), Err(MissReason::Transferring));
    assert!(before_abort < aborted_at);
    // Nor does one sent after the abort, in the same term.
    tokio::time::advance(MS).await;
    engine.ack_now();
    assert!(!lease.renew_from_ack());
    assert_eq!(lease.check(), Err(MissReason::Transferring));
    // The next term starts afresh.
    engine.make_leader(2);
    lease.observe_status();
    tokio::time::advance(MS).await;
    engine.ack_now();
    assert!(lease.renew_from_ack());
    assert_eq!(lease.check(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn the_transfer_wrapper_suspends_first_and_an_abort_ends_leases_for_the_term() {
    let (engine, lease) = leader();
    warm(&lease).await;
    engine.set_transfer_plan(TransferPlan::Abort { after: 100 * MS });
    let transfer = {
        let lease = lease.clone();
        tokio::spawn(async move { lease.transfer_leadership(Some(2)).await })
    };
    tokio::task::yield_now().await;
    assert!(lease.state().is_suspect());
    assert_eq!(lease.check(), Err(MissReason::Transferring));
    // Acks during the transfer are useless, now and later.
    tokio::time::advance(50 * MS).await;
    engine.ack_now();
    assert!(!lease.renew_from_ack());
    tokio::time::advance(50 * MS).await;
    let err = transfer.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Timeout);
    assert!(!lease.state().is_suspect());
    assert!(!lease.renew_from_ack(), "the ack predates the abort");
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::TransferAborted),
        1
    );
    // Rounds after the abort succeed but grant nothing for the rest of the term.
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(
        lease.stats().round_renewals,
        1,
        "only the warm-up round granted"
    );
    engine.make_leader(2);
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(path(&lease).await, ReadPath::Fast);
}

#[tokio::test(start_paused = true)]
async fn a_round_started_during_the_transfer_cannot_grant_after_the_abort() {
    let (engine, lease) = leader();
    engine.set_transferring(Some(2));
    lease.observe_status();
    // A proposal in flight during the transfer (the mock accepts it: a scripted race).
    engine.set_transferring(None);
    engine.set_propose_delay(30 * MS);
    let generation_during = lease.state().generation();
    let writer = {
        let lease = lease.clone();
        tokio::spawn(async move { lease.propose(bytes::Bytes::from_static(b"x")).await })
    };
    tokio::task::yield_now().await;
    tokio::time::advance(10 * MS).await;
    // Now the abort is observed: the in-flight write must not grant when it lands.
    lease.observe_status();
    assert_ne!(lease.state().generation(), generation_during);
    writer.await.unwrap().unwrap();
    assert_eq!(lease.state().check(now(), 1), LeaseCheck::Invalidated);
    assert_eq!(lease.stats().round_renewals, 0);
}

#[tokio::test(start_paused = true)]
async fn a_completed_transfer_leaves_the_lease_invalid() {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let lease = Lease::new(engine.clone() as Arc<dyn Engine>, quiet()).unwrap();
    warm(&lease).await;
    engine.set_transfer_plan(TransferPlan::Succeed { after: 50 * MS });
    assert_eq!(lease.transfer_leadership(Some(2)).await.unwrap(), 2);
    assert_eq!(lease.check(), Err(MissReason::NotLeader));
    assert_eq!(lease.state().check(now(), 1), LeaseCheck::Invalidated);
    let stats = lease.stats();
    // The transfer suspended the lease first; the loss edge found nothing left to drop.
    assert_eq!(
        stats.invalidations_for(InvalidationCause::TransferStarted),
        1
    );
    assert_eq!(stats.invalidations_for(InvalidationCause::LeaderLoss), 0);
    assert_eq!(
        stats.invalidations_for(InvalidationCause::TransferAborted),
        0
    );
    assert!(!lease.state().is_suspect(), "a later term may lead again");
}

#[tokio::test(start_paused = true)]
async fn a_transfer_that_started_and_ended_unobserved_still_ends_the_lease() {
    let (engine, lease) = leader();
    warm(&lease).await;
    assert_eq!(lease.check(), Ok(()));
    let before_transfer = now();
    // Started and aborted before the lease looked at the status even once.
    engine.set_transferring(Some(2));
    engine.set_transferring(None);
    assert_eq!(lease.check(), Err(MissReason::Transferring));
    lease.observe_status();
    assert!(!lease.state().is_suspect());
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::TransferStarted),
        1
    );
    // An acknowledgement from before the transfer proves nothing any more.
    engine.set_quorum_ack(Some(QuorumAck {
        term: 1,
        sent_at: before_transfer,
    }));
    assert!(!lease.renew_from_ack());
    assert_ne!(lease.check(), Ok(()));
    // Nor does a later one: the transfer happened in this term.
    tokio::time::advance(MS).await;
    engine.ack_now();
    assert!(!lease.renew_from_ack());
    assert_eq!(lease.check(), Err(MissReason::Transferring));
}

#[tokio::test(start_paused = true)]
async fn a_rejected_transfer_leaves_the_lease_alone() {
    let (engine, lease) = leader();
    warm(&lease).await;
    let err = lease.transfer_leadership(Some(1)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Rejected(_)), "{err}");
    assert_eq!(
        lease.check(),
        Ok(()),
        "nothing started, so nothing to suspect"
    );
    engine.step_down(2, Some(2), raftengine::LossCause::SteppedDown);
    let err = lease.transfer_leadership(Some(2)).await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotLeader { .. }), "{err}");
    assert_eq!(engine.status().transfers_started, 0);
}
