//! The read path: the four fast-path conditions, expiry, and the slow path's extension rule.

use std::sync::Arc;

use raftengine::{Engine, Error, ErrorKind, RejectReason, Timing};

use super::*;
use crate::testing::default_timing;
use crate::{InvalidationCause, LeaseCheck};

#[tokio::test(start_paused = true)]
async fn first_read_is_slow_then_fast_without_another_round() {
    let (engine, lease) = leader();
    assert_eq!(lease.duration(), LEASE);
    let first = lease.read(|| 7).await.unwrap();
    assert_eq!((first.value, first.path), (7, ReadPath::Slow));
    assert_eq!(engine.read_calls(), 1);
    for _ in 0..100 {
        assert_eq!(path(&lease).await, ReadPath::Fast);
    }
    assert_eq!(engine.read_calls(), 1, "fast reads run no quorum round");
    let stats = lease.stats();
    assert_eq!(stats.hits, 100);
    assert_eq!(stats.misses_for(MissReason::Expired), 1);
    assert_eq!(stats.slow_rounds, 1);
    assert_eq!(stats.round_renewals, 1);
}

#[tokio::test(start_paused = true)]
async fn the_lease_runs_out_after_its_duration() {
    let (engine, lease) = leader();
    let start = now();
    warm(&lease).await;
    tokio::time::advance(LEASE - MS).await;
    assert_eq!(path(&lease).await, ReadPath::Fast);
    assert_eq!(now() - start, LEASE - MS);
    tokio::time::advance(MS).await;
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(miss(&lease, MissReason::Expired), 2);
    assert_eq!(engine.read_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_slow_path_extends_from_the_instant_before_the_round() {
    let (engine, lease) = leader();
    engine.set_read_delay(100 * MS);
    let start = now();
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(now() - start, 100 * MS);
    assert_eq!(lease.state().expires_at(), Some(start + LEASE));
    tokio::time::advance(LEASE - 100 * MS - MS).await;
    assert_eq!(lease.check(), Ok(()));
    tokio::time::advance(MS).await;
    assert_eq!(lease.check(), Err(MissReason::Expired));
}

#[tokio::test(start_paused = true)]
async fn a_round_slower_than_the_lease_grants_nothing_usable() {
    // The elastickv congestion case: the round outlives the lease, so the extension (anchored
    // before the round) is already expired. It must not be anchored at completion instead.
    let (engine, lease) = leader();
    engine.set_read_delay(LEASE + 10 * MS);
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(lease.check(), Err(MissReason::Expired));
}

#[tokio::test(start_paused = true)]
async fn refuses_before_the_current_terms_first_entry_is_applied() {
    let engine = MockEngine::new(1);
    engine.make_leader_unapplied(2);
    let lease = Lease::new(engine.clone() as Arc<dyn Engine>, quiet()).unwrap();
    // The slow round grants a lease for term 2, but the leader has not applied term 2 yet.
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(lease.state().check(now(), 2), LeaseCheck::Valid);
    assert_eq!(lease.check(), Err(MissReason::TermNotApplied));
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(miss(&lease, MissReason::TermNotApplied), 1);
    assert_eq!(engine.read_calls(), 2);
    engine.apply_term_entry();
    assert_eq!(path(&lease).await, ReadPath::Fast);
    assert_eq!(engine.read_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn refuses_and_invalidates_after_the_term_changes() {
    let (engine, lease) = leader();
    warm(&lease).await;
    // The status shows a newer term before any callback arrives.
    engine.set_term_silently(2);
    assert_eq!(lease.check(), Err(MissReason::TermChanged));
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(miss(&lease, MissReason::TermChanged), 1);
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::TermChanged),
        1
    );
    // Term 2's first entry is not applied (applied_term is still 1).
    assert_eq!(lease.check(), Err(MissReason::TermNotApplied));
    engine.apply_term_entry();
    assert_eq!(path(&lease).await, ReadPath::Fast);
}

#[tokio::test(start_paused = true)]
async fn refuses_on_a_follower_and_forwards_the_engine_error() {
    let (engine, lease) = leader();
    warm(&lease).await;
    engine.update(|s| {
        s.role = raftengine::Role::Follower;
        s.leader = Some(2);
    });
    assert_eq!(lease.check(), Err(MissReason::NotLeader));
    assert_eq!(
        kind_of(lease.fence().await),
        ErrorKind::NotLeader { hint: Some(2) }
    );
    assert_eq!(miss(&lease, MissReason::NotLeader), 1);
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::RoleChanged),
        1
    );
    assert_eq!(lease.state().check(now(), 1), LeaseCheck::Invalidated);
}

#[tokio::test(start_paused = true)]
async fn leader_loss_callback_invalidates() {
    let (engine, lease) = leader();
    warm(&lease).await;
    engine.step_down(2, Some(2), raftengine::LossCause::SteppedDown);
    assert_eq!(lease.state().check(now(), 1), LeaseCheck::Invalidated);
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::LeaderLoss),
        1
    );
    assert!(lease.fence().await.is_err());
}

#[tokio::test(start_paused = true)]
async fn a_late_loss_edge_invalidates_even_while_status_says_leader() {
    let (engine, lease) = leader();
    warm(&lease).await;
    engine.fire_leader_loss(raftengine::LossCause::QuorumLost);
    assert_eq!(lease.check(), Err(MissReason::Invalidated));
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(miss(&lease, MissReason::Invalidated), 1);
}

#[tokio::test(start_paused = true)]
async fn an_extend_sampled_before_an_invalidation_cannot_resurrect_the_lease() {
    let (engine, lease) = leader();
    engine.set_read_delay(50 * MS);
    // The slow round samples the generation, then the loss edge arrives mid-round.
    let reader = {
        let lease = lease.clone();
        tokio::spawn(async move { lease.read(|| ()).await })
    };
    tokio::task::yield_now().await;
    tokio::time::advance(20 * MS).await;
    engine.fire_leader_loss(raftengine::LossCause::QuorumLost);
    let outcome = reader.await.unwrap().unwrap();
    assert_eq!(
        outcome.path,
        ReadPath::Slow,
        "the round itself fenced the read"
    );
    assert_eq!(lease.check(), Err(MissReason::Invalidated));
    assert_eq!(lease.stats().round_renewals, 0);
    // A round that starts after the invalidation may grant again.
    assert_eq!(path(&lease).await, ReadPath::Slow);
    assert_eq!(path(&lease).await, ReadPath::Fast);
    assert_eq!(engine.read_calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_round_confirmed_in_another_term_does_not_extend() {
    let (engine, lease) = leader();
    engine.set_read_delay(10 * MS);
    let reader = {
        let lease = lease.clone();
        tokio::spawn(async move { lease.read(|| ()).await })
    };
    tokio::task::yield_now().await;
    tokio::time::advance(5 * MS).await;
    engine.make_leader(2);
    reader.await.unwrap().unwrap();
    assert_eq!(lease.stats().round_renewals, 0);
    assert_ne!(lease.check(), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn read_errors_that_prove_loss_invalidate_and_others_do_not() {
    let (engine, lease) = leader();
    warm(&lease).await;
    tokio::time::advance(LEASE).await; // expired, so the next read runs a round
    engine.fail_next_read(Error::timeout(MS));
    assert_eq!(kind_of(lease.fence().await), ErrorKind::Timeout);
    assert_eq!(lease.stats().invalidations(), 0);
    engine.fail_next_read(Error::not_leader(None));
    assert_eq!(
        kind_of(lease.fence().await),
        ErrorKind::NotLeader { hint: None }
    );
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::NotLeader),
        1
    );
    assert_eq!(lease.stats().slow_round_errors, 2);
}

#[tokio::test(start_paused = true)]
async fn an_acknowledgement_renews_on_a_miss_without_a_round() {
    let (engine, lease) = leader();
    tokio::time::advance(10 * MS).await;
    engine.ack_now();
    tokio::time::advance(5 * MS).await;
    assert_eq!(path(&lease).await, ReadPath::Fast);
    assert_eq!(engine.read_calls(), 0);
    let stats = lease.stats();
    assert_eq!((stats.hits, stats.misses(), stats.ack_renewals), (1, 0, 1));
    // Anchored at the send time, not at the read.
    let ack_sent = now() - 5 * MS;
    assert_eq!(lease.state().expires_at(), Some(ack_sent + LEASE));
}

#[tokio::test(start_paused = true)]
async fn acknowledgements_of_another_term_or_from_the_future_do_not_grant() {
    let (engine, lease) = leader();
    engine.set_quorum_ack(Some(raftengine::QuorumAck {
        term: 0,
        sent_at: now(),
    }));
    assert!(!lease.renew_from_ack());
    engine.set_quorum_ack(Some(raftengine::QuorumAck {
        term: 1,
        sent_at: now() + 10 * MS,
    }));
    assert!(!lease.renew_from_ack());
    engine.set_quorum_ack(Some(raftengine::QuorumAck {
        term: 1,
        sent_at: now(),
    }));
    assert!(lease.renew_from_ack());
}

#[tokio::test(start_paused = true)]
async fn unsafe_timing_is_rejected_at_construction() {
    let engine = MockEngine::new(1);
    engine.set_timing(Timing {
        vote_refusal_window: 40 * MS,
        ..default_timing()
    });
    let err = Lease::new(engine.clone() as Arc<dyn Engine>, quiet()).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Rejected(RejectReason::InvalidConfig(what)) if what.contains("safety_margin")),
        "{err}"
    );
    let margin = LeaseConfig {
        safety_margin: Duration::ZERO,
        ..quiet()
    };
    engine.set_timing(default_timing());
    assert!(Lease::new(engine as Arc<dyn Engine>, margin).is_err());
}

#[test]
fn a_background_lease_needs_a_runtime() {
    let engine = MockEngine::new(1);
    let err = Lease::new(engine as Arc<dyn Engine>, LeaseConfig::default()).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn try_read_fast_serves_only_under_a_valid_lease() {
    let (_engine, lease) = leader();
    assert_eq!(lease.try_read_fast(|| 1), Err(MissReason::Expired));
    warm(&lease).await;
    assert_eq!(lease.try_read_fast(|| 1), Ok(1));
}

#[tokio::test(start_paused = true)]
async fn a_followers_repeated_reads_count_one_invalidation() {
    let (engine, lease) = leader();
    warm(&lease).await;
    engine.step_down(2, Some(2), raftengine::LossCause::SteppedDown);
    for _ in 0..10 {
        assert!(lease.fence().await.is_err());
    }
    assert_eq!(lease.stats().invalidations(), 1);
    assert_eq!(miss(&lease, MissReason::NotLeader), 10);
}

#[tokio::test(start_paused = true)]
async fn a_voter_set_change_invalidates() {
    let (engine, lease) = leader();
    warm(&lease).await;
    lease.observe_status();
    assert_eq!(
        lease.check(),
        Ok(()),
        "an unchanged membership keeps the lease"
    );
    engine.update(|s| {
        std::sync::Arc::make_mut(&mut s.membership).voters.insert(4);
        std::sync::Arc::make_mut(&mut s.membership).voters.insert(5);
    });
    lease.observe_status();
    assert_eq!(lease.check(), Err(MissReason::Invalidated));
    assert_eq!(
        lease
            .stats()
            .invalidations_for(InvalidationCause::MembershipChanged),
        1
    );
    // A learner joining does not change the voters.
    assert_eq!(path(&lease).await, ReadPath::Slow);
    engine.update(|s| {
        std::sync::Arc::make_mut(&mut s.membership)
            .learners
            .insert(6);
    });
    assert_eq!(path(&lease).await, ReadPath::Fast);
    lease.observe_status();
    assert_eq!(lease.check(), Ok(()));
}
