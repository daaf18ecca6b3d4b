//! Per-shard leases: independent groups, multi-group reads fence every group touched.

use std::sync::Arc;

use raftengine::{Engine, ErrorKind, LossCause, RejectReason};

use super::*;
use crate::ShardedLeases;

fn two_groups() -> (Arc<MockEngine>, Arc<MockEngine>, ShardedLeases<u64>) {
    let a = MockEngine::new(1);
    let b = MockEngine::new(1);
    a.make_leader(1);
    b.make_leader(7);
    let leases = ShardedLeases::from_engines(
        [
            (10, a.clone() as Arc<dyn Engine>),
            (20, b.clone() as Arc<dyn Engine>),
        ],
        &quiet(),
    )
    .unwrap();
    (a, b, leases)
}

#[tokio::test(start_paused = true)]
async fn a_loss_in_one_group_leaves_the_others_alone() {
    let (a, b, leases) = two_groups();
    let all = leases.read_all(|| ()).await.unwrap();
    assert!(!all.all_fast());
    assert!(leases.read_all(|| ()).await.unwrap().all_fast());
    a.step_down(2, Some(2), LossCause::SteppedDown);
    assert_eq!(
        leases.lease(&10).unwrap().check(),
        Err(MissReason::NotLeader)
    );
    assert_eq!(leases.lease(&20).unwrap().check(), Ok(()));
    assert_eq!(leases.read(&20, || ()).await.unwrap().path, ReadPath::Fast);
    assert_eq!(b.read_calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_multi_group_read_fences_every_group_and_fails_closed() {
    let (a, b, leases) = two_groups();
    leases.read_all(|| ()).await.unwrap();
    a.step_down(2, Some(2), LossCause::SteppedDown);
    let mut ran = false;
    let err = leases
        .read_groups(&[20, 10], || ran = true)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: Some(2) });
    assert!(!ran, "the read must not run when a group cannot be fenced");
    // Group 10 leads again: it needs a round, group 20 stays fast.
    a.make_leader(3);
    let outcome = leases.read_groups(&[20, 10, 20], || 5).await.unwrap();
    assert_eq!(outcome.value, 5);
    assert_eq!(
        outcome.paths,
        vec![(10, ReadPath::Slow), (20, ReadPath::Fast)]
    );
    assert_eq!((a.read_calls(), b.read_calls()), (3, 1));
    assert!(
        leases
            .read_groups(&[10, 20], || ())
            .await
            .unwrap()
            .all_fast()
    );
}

#[tokio::test(start_paused = true)]
async fn stale_groups_run_their_rounds_concurrently() {
    let (a, b, leases) = two_groups();
    a.set_read_delay(40 * MS);
    b.set_read_delay(40 * MS);
    let start = now();
    let outcome = leases.read_all(|| ()).await.unwrap();
    assert_eq!(now() - start, 40 * MS, "rounds overlap");
    assert_eq!(
        outcome.paths,
        vec![(10, ReadPath::Slow), (20, ReadPath::Slow)]
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_group_is_rejected() {
    let (_a, _b, leases) = two_groups();
    let err = leases.read(&99, || ()).await.unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::Rejected(RejectReason::InvalidConfig(_))
    ));
    assert!(leases.read_groups(&[10, 99], || ()).await.is_err());
    assert_eq!(leases.groups().copied().collect::<Vec<_>>(), vec![10, 20]);
}

#[tokio::test(start_paused = true)]
async fn a_group_fenced_fast_is_still_valid_when_the_read_runs() {
    let (a, b, leases) = two_groups();
    leases.read_all(|| ()).await.unwrap();
    let lease_a = leases.lease(&10).unwrap().clone();
    // Let group 10's lease run down to its last few milliseconds, and make group 20 slow:
    // group 20's round outlasts what is left of group 10's lease.
    let expiry = lease_a.state().expires_at().unwrap();
    tokio::time::advance(expiry - now() - 5 * MS).await;
    assert_eq!(lease_a.check(), Ok(()));
    leases
        .lease(&20)
        .unwrap()
        .invalidate(crate::InvalidationCause::LeaderLoss);
    b.set_read_delay(40 * MS);
    let outcome = leases
        .read_groups(&[10, 20], || lease_a.check())
        .await
        .unwrap();
    let fast_10 = outcome.paths.contains(&(10, ReadPath::Fast));
    assert!(
        !fast_10 || outcome.value.is_ok(),
        "group 10 counted as fenced on its fast path, but its lease ran out before the read: \
         {:?} (paths {:?})",
        outcome.value,
        outcome.paths
    );
    assert!(a.read_calls() >= 1);
}
