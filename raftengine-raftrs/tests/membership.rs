//! Membership changes: add a learner, promote it, remove a voter; bad requests are rejected.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, eventually, no_tweak};
use raftengine::{Engine, ErrorKind, MemLogStore, RejectReason, Role};

fn cmd(i: usize) -> Bytes {
    Bytes::from(format!("m-{i}"))
}

fn reason<T: std::fmt::Debug>(r: raftengine::Result<T>) -> RejectReason {
    match r.unwrap_err().kind() {
        ErrorKind::Rejected(reason) => reason.clone(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn add_learner_promote_and_remove() {
    let mut c = Cluster::start(3, 21, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    for i in 0..5 {
        engine.propose(cmd(i)).await.unwrap();
    }
    // Node 4 starts empty and waits to be added.
    c.start_node(4, MemLogStore::new(), false).await;
    assert_eq!(c.engine(4).status().role, Role::Learner);

    let membership = engine.add_learner(4).await.unwrap();
    assert!(membership.learners.contains(&4));
    assert!(!membership.voters.contains(&4));
    assert_eq!(
        reason(engine.add_learner(4).await),
        RejectReason::AlreadyMember(4)
    );
    assert_eq!(
        reason(engine.transfer_leadership(Some(4)).await),
        RejectReason::NotAVoter(4)
    );
    let last = engine.propose(cmd(5)).await.unwrap().index;
    c.wait_applied(&[4], last).await;
    let expected: Vec<Bytes> = (0..6).map(cmd).collect();
    assert_eq!(
        c.commands(4),
        expected,
        "the learner caught up (from a snapshot)"
    );
    assert_eq!(c.engine(4).status().role, Role::Learner);

    assert_eq!(
        reason(engine.promote(9).await),
        RejectReason::UnknownNode(9)
    );
    assert_eq!(
        reason(engine.promote(2).await),
        RejectReason::NotALearner(2)
    );
    let membership = engine.promote(4).await.unwrap();
    assert!(membership.voters.contains(&4));
    assert!(membership.learners.is_empty());
    assert!(
        eventually(Duration::from_secs(2), || c.engine(4).status().role
            == Role::Follower)
        .await
    );

    assert_eq!(
        reason(engine.remove_node(9).await),
        RejectReason::UnknownNode(9)
    );
    assert_eq!(
        reason(engine.remove_node(leader).await),
        RejectReason::TargetIsSelf(leader)
    );
    let victim = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let membership = engine.remove_node(victim).await.unwrap();
    assert!(!membership.voters.contains(&victim));
    assert_eq!(membership.voters.len(), 3);
    assert_eq!(engine.membership(), membership);

    // The cluster keeps committing without the removed node.
    c.crash(victim).await;
    let last = engine.propose(cmd(6)).await.unwrap().index;
    let live: Vec<u64> = [1, 2, 3, 4]
        .into_iter()
        .filter(|id| *id != victim)
        .collect();
    c.wait_applied(&live, last).await;
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn a_second_change_while_one_is_pending_is_rejected() {
    let mut c = Cluster::start(3, 22, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    c.start_node(4, MemLogStore::new(), false).await;
    c.start_node(5, MemLogStore::new(), false).await;
    let first = {
        let e = engine.clone();
        tokio::spawn(async move { e.add_learner(4).await })
    };
    let second = {
        let e = engine.clone();
        tokio::spawn(async move { e.add_learner(5).await })
    };
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert!(first.unwrap().learners.contains(&4));
    assert_eq!(reason(second), RejectReason::MembershipChangePending);
    // Once the first committed, the next change goes through.
    assert!(engine.add_learner(5).await.unwrap().learners.contains(&5));
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn removing_the_last_voter_is_rejected() {
    let mut c = Cluster::start(1, 23, no_tweak).await;
    let leader = c.wait_leader().await;
    assert_eq!(leader, 1);
    let engine = c.engine(1);
    engine.propose(cmd(0)).await.unwrap();
    assert_eq!(
        reason(engine.remove_node(1).await),
        RejectReason::LastVoter(1)
    );
    // A single voter confirms reads and acks on its own.
    engine.linearizable_read().await.unwrap();
    assert!(engine.quorum_ack().is_some());
    c.shutdown_all().await;
}
