//! Cluster scenarios on three nodes over `MemNetwork`, in virtual time.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Cluster, cmd};
use raftengine::{
    Engine, ErrorKind, LinkFaults, LogStore, LossCause, MemLogStore, RejectReason, Role,
};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn three_nodes_elect_and_replicate() {
    let cluster = Cluster::start(3, 1).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader);
    let mut last = 0;
    for i in 0..10 {
        let applied = engine.propose(cmd(i)).await.expect("propose");
        assert!(applied.index > last, "indexes increase");
        assert_eq!(applied.response, format!("applied@{}", applied.index));
        assert_eq!(applied.term, engine.status().term);
        last = applied.index;
    }
    cluster.wait_applied(&[1, 2, 3], last).await;
    let expected: Vec<Vec<u8>> = (0..10).map(|i| cmd(i).to_vec()).collect();
    for id in 1..=3 {
        assert_eq!(cluster.commands(id), expected, "node {id}");
    }
    let status = engine.status();
    assert_eq!(status.commit_index, last);
    assert!(status.last_log_index >= last);
    assert_eq!(status.membership.voters.len(), 3);
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn follower_propose_is_not_leader_with_hint() {
    let cluster = Cluster::start(3, 2).await;
    let leader = cluster.leader().await;
    let follower = cluster.followers(leader)[0];
    let err = cluster.engine(follower).propose(cmd(1)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: Some(leader) });
    assert!(err.is_leadership_loss());
    assert!(err.is_safe_to_retry());
    let read = cluster
        .engine(follower)
        .linearizable_read()
        .await
        .unwrap_err();
    assert_eq!(read.kind(), &ErrorKind::NotLeader { hint: Some(leader) });
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn oversized_commands_are_rejected_before_raft() {
    let cluster = Cluster::start_with(3, 3, |c| c.max_command_bytes = 16).await;
    let leader = cluster.leader().await;
    let err = cluster
        .engine(leader)
        .propose(vec![0u8; 17].into())
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::Rejected(_)), "{err}");
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn leader_crash_and_restart_keeps_every_acknowledged_write() {
    let mut cluster = Cluster::start(3, 4).await;
    let old = cluster.leader().await;
    let old_term = cluster.status(old).term;
    let mut acked = Vec::new();
    for i in 0..5 {
        cluster.engine(old).propose(cmd(i)).await.expect("propose");
        acked.push(cmd(i).to_vec());
    }
    // Crash the leader, keeping its store.
    cluster.engine(old).shutdown().await.unwrap();
    let store = cluster.nodes.remove(&old).unwrap().store;
    cluster.net.isolate(old);

    let survivors = cluster.nodes.keys().copied().collect::<Vec<_>>();
    let new = cluster.leader_after(old_term, &survivors).await;
    assert_ne!(new, old);
    let mut last = 0;
    for i in 5..8 {
        last = cluster
            .engine(new)
            .propose(cmd(i))
            .await
            .expect("propose")
            .index;
        acked.push(cmd(i).to_vec());
    }

    // Restart the old leader on the same store with a fresh state machine.
    cluster.net.heal();
    cluster.boot(old, store, true).await;
    cluster.wait_applied(&[1, 2, 3], last).await;
    for id in 1..=3 {
        assert_eq!(cluster.commands(id), acked, "node {id}");
    }
    let leader = cluster.leader().await;
    cluster
        .engine(leader)
        .propose(cmd(99))
        .await
        .expect("writes after restart");
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn transfer_to_a_live_follower_completes() {
    let cluster = Cluster::start(3, 5).await;
    let leader = cluster.leader().await;
    let target = cluster.followers(leader)[1];
    cluster.engine(leader).propose(cmd(1)).await.unwrap();

    // Hold the leader's traffic to the target so the transfer stays observable.
    cluster.net.hold(leader, target);
    let started_before = cluster.status(leader).transfers_started;
    let mut status = cluster.engine(leader).subscribe();
    let engine = cluster.engine(leader).clone();
    let transfer = tokio::spawn(async move { engine.transfer_leadership(Some(target)).await });
    tokio::time::timeout(
        Duration::from_secs(1),
        status.wait_for(|s| s.transferring_to == Some(target)),
    )
    .await
    .expect("transferring_to is published while the transfer runs")
    .unwrap();
    // New writes are refused while the transfer runs.
    let err = cluster.engine(leader).propose(cmd(9)).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::TransferInProgress {
            target: Some(target)
        },
        "{err}"
    );
    assert!(err.is_leadership_loss());
    cluster.net.release(leader, target);
    assert_eq!(transfer.await.unwrap().expect("transfer"), target);
    assert_eq!(cluster.leader().await, target);
    assert_eq!(cluster.status(leader).transferring_to, None);
    assert_eq!(cluster.status(leader).transfers_started, started_before + 1);
    let applied = cluster.engine(target).propose(cmd(2)).await.unwrap();
    cluster.wait_applied(&[1, 2, 3], applied.index).await;
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn transfer_without_target_picks_an_up_to_date_voter() {
    let cluster = Cluster::start(3, 6).await;
    let leader = cluster.leader().await;
    let new = cluster
        .engine(leader)
        .transfer_leadership(None)
        .await
        .expect("transfer");
    assert_ne!(new, leader);
    assert_eq!(cluster.leader().await, new);
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn transfer_validates_its_target() {
    let mut cluster = Cluster::start(3, 7).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();

    let err = engine.transfer_leadership(Some(42)).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Rejected(RejectReason::UnknownNode(42))
    );
    let err = engine.transfer_leadership(Some(leader)).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Rejected(RejectReason::TargetIsSelf(leader))
    );

    cluster.boot(4, MemLogStore::new(), false).await;
    engine.add_learner(4).await.expect("add learner");
    let err = engine.transfer_leadership(Some(4)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Rejected(RejectReason::NotAVoter(4)));

    let follower = cluster.followers(leader)[0];
    let err = cluster
        .engine(follower)
        .transfer_leadership(Some(leader))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: Some(leader) });
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn transfer_to_a_dead_target_fails_in_bounded_time_and_the_cluster_recovers() {
    let mut cluster = Cluster::start(3, 8).await;
    let leader = cluster.leader().await;
    let target = cluster.followers(leader)[0];
    cluster.engine(target).shutdown().await.unwrap();
    cluster.nodes.remove(&target);

    let engine = cluster.engine(leader).clone();
    let timing = engine.timing();
    let term = engine.status().term;
    let started = Instant::now();
    let err = engine.transfer_leadership(Some(target)).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), &ErrorKind::Timeout, "{err}");
    assert!(
        took <= timing.election_timeout_max + Duration::from_millis(100),
        "took {took:?}"
    );
    assert_eq!(engine.status().transferring_to, None);

    // openraft cannot abort the transfer: the old leader refuses writes until a follower's
    // election timer fires and the cluster elects a leader in a newer term.
    let alive = cluster.nodes.keys().copied().collect::<Vec<_>>();
    let new = cluster.leader_after(term, &alive).await;
    cluster
        .engine(new)
        .propose(cmd(1))
        .await
        .expect("cluster works again");
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn linearizable_read_waits_for_apply_and_fails_on_an_isolated_leader() {
    let cluster = Cluster::start(3, 9).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    let applied = engine.propose(cmd(1)).await.unwrap();
    let read = engine.linearizable_read().await.expect("read");
    assert!(read.index >= applied.index);
    assert_eq!(read.term, engine.status().term);
    assert!(engine.status().applied_index >= read.index);

    cluster.net.isolate(leader);
    let started = Instant::now();
    let err = engine.linearizable_read().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Unavailable, "{err}");
    assert!(
        started.elapsed() <= Duration::from_secs(2),
        "read did not hang"
    );
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn an_isolated_leader_reports_leader_loss_promptly() {
    let cluster = Cluster::start(3, 10).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    let losses = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&losses);
    let _sub = engine.on_leader_loss(Box::new(move |loss| {
        seen.lock().unwrap().push((loss, Instant::now()));
    }));
    let ack = engine.quorum_ack().expect("a leader has a quorum ack");
    assert_eq!(ack.term, engine.status().term);

    cluster.net.isolate(leader);
    let isolated_at = Instant::now();
    tokio::time::sleep(engine.timing().vote_refusal_window * 2).await;
    let losses = losses.lock().unwrap().clone();
    let (loss, at) = losses.first().copied().expect("leader loss reported");
    assert_eq!(loss.cause, LossCause::QuorumLost);
    let window = engine.timing().vote_refusal_window;
    assert!(
        at - isolated_at <= window + Duration::from_millis(50),
        "reported after {:?}",
        at - isolated_at
    );
    // The quorum ack is stale now: its send time is more than one window ago.
    if let Some(ack) = engine.quorum_ack() {
        assert!(engine.clock().now() - ack.sent_at >= window);
    }
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn proposals_on_an_isolated_leader_fail_within_their_deadline() {
    let cluster = Cluster::start(3, 11).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    cluster.net.isolate(leader);
    // In flight when the partition starts: may still commit elsewhere, so outcome unknown.
    let started = Instant::now();
    let err = engine.propose(cmd(1)).await.unwrap_err();
    assert!(started.elapsed() <= Duration::from_secs(2) + Duration::from_millis(10));
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::NotLeader { .. }),
        "{err}"
    );
    // After the lease has run out, new proposals are refused without waiting.
    tokio::time::sleep(engine.timing().vote_refusal_window).await;
    let started = Instant::now();
    let err = engine.propose(cmd(2)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: None }, "{err}");
    assert!(err.is_safe_to_retry());
    assert!(started.elapsed() < Duration::from_millis(100));
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn a_lagging_follower_catches_up_from_a_snapshot() {
    let cluster = Cluster::start(3, 12).await;
    let leader = cluster.leader().await;
    let lagging = cluster.followers(leader)[0];
    cluster.net.isolate(lagging);
    let engine = cluster.engine(leader).clone();
    let mut last = 0;
    for i in 0..20 {
        last = engine.propose(cmd(i)).await.unwrap().index;
    }
    let info = engine.snapshot().await.expect("snapshot");
    assert!(info.last_index >= last, "{info:?}");
    assert_eq!(info.last_term, engine.status().term);
    // The leader compacts its log behind the snapshot (openraft postpones the purge while a
    // replication request that reads those entries is in flight).
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let purged = cluster.nodes[&leader].store.log_state().unwrap().purged;
        if purged.is_some_and(|(index, _)| index >= last) {
            break;
        }
        assert!(Instant::now() < deadline, "log not purged: {purged:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    cluster.net.heal();
    cluster.wait_applied(&[lagging], last).await;
    assert_eq!(cluster.commands(lagging), cluster.commands(leader));
    let installed = cluster.nodes[&lagging].store.snapshot().unwrap();
    assert!(installed.is_some_and(|s| s.meta.last_index >= last));
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn snapshots_are_taken_by_policy() {
    let cluster = Cluster::start_with(3, 13, |c| c.snapshot_after_entries = 5).await;
    let leader = cluster.leader().await;
    for i in 0..12 {
        cluster.engine(leader).propose(cmd(i)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for id in 1..=3 {
        let snapshot = cluster.nodes[&id].store.snapshot().unwrap();
        assert!(
            snapshot.is_some_and(|s| s.meta.last_index >= 5),
            "node {id} built no snapshot"
        );
    }
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn membership_add_promote_remove_and_bad_requests() {
    let mut cluster = Cluster::start(3, 14).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    for i in 0..5 {
        engine.propose(cmd(i)).await.unwrap();
    }
    cluster.boot(4, MemLogStore::new(), false).await;

    let membership = engine.add_learner(4).await.expect("add learner");
    assert!(membership.learners.contains(&4));
    assert_eq!(
        cluster.commands(4),
        cluster.commands(leader),
        "learner caught up"
    );
    let err = engine.add_learner(4).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Rejected(RejectReason::AlreadyMember(4))
    );
    let err = engine.promote(9).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Rejected(RejectReason::UnknownNode(9))
    );
    let err = engine.promote(leader).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Rejected(RejectReason::NotALearner(leader))
    );

    let membership = engine.promote(4).await.expect("promote");
    assert_eq!(membership.voters, BTreeSet::from([1, 2, 3, 4]));
    assert!(membership.learners.is_empty());
    assert!(!membership.joint);
    assert_eq!(engine.membership().voters.len(), 4);

    let membership = engine.remove_node(4).await.expect("remove");
    assert_eq!(membership.voters, BTreeSet::from([1, 2, 3]));
    assert!(!membership.contains(4));
    let err = engine.remove_node(4).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Rejected(RejectReason::UnknownNode(4))
    );
    engine
        .propose(cmd(100))
        .await
        .expect("cluster still writes");
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn the_last_voter_cannot_be_removed() {
    let cluster = Cluster::start(1, 15).await;
    let leader = cluster.leader().await;
    let err = cluster
        .engine(leader)
        .remove_node(leader)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Rejected(RejectReason::LastVoter(leader))
    );
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_fails_waiters_fires_callbacks_and_is_idempotent() {
    let cluster = Cluster::start(3, 16).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    let losses = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&losses);
    let _sub = engine.on_leader_loss(Box::new(move |loss| seen.lock().unwrap().push(loss)));

    // A proposal that cannot commit (followers unreachable) is waiting when shutdown starts.
    for follower in cluster.followers(leader) {
        cluster.net.partition(leader, follower);
    }
    let pending = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.propose(cmd(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    engine.shutdown().await.expect("shutdown");
    engine.shutdown().await.expect("second shutdown is a no-op");
    let err = pending.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Shutdown, "{err}");
    assert_eq!(engine.status().role, Role::Shutdown);
    assert_eq!(
        engine.propose(cmd(2)).await.unwrap_err().kind(),
        &ErrorKind::Shutdown
    );
    assert_eq!(
        engine.linearizable_read().await.unwrap_err().kind(),
        &ErrorKind::Shutdown
    );
    let losses = losses.lock().unwrap().clone();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(losses[0].cause, LossCause::Shutdown);
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn a_stepped_down_leader_reports_the_loss_and_capabilities_are_complete() {
    let cluster = Cluster::start(3, 17).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    let caps = engine.capabilities();
    assert!(
        caps.leadership_transfer && caps.membership_change && caps.snapshots && caps.quorum_ack
    );
    let count = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&count);
    let _sub = engine.on_leader_loss(Box::new(move |loss| seen.lock().unwrap().push(loss)));
    let target = cluster.followers(leader)[0];
    engine.transfer_leadership(Some(target)).await.unwrap();
    let losses = count.lock().unwrap().clone();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(losses[0].cause, LossCause::Transferred);
    assert_eq!(engine.quorum_ack(), None, "a follower has no quorum ack");
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn a_whole_cluster_restarts_from_its_stores() {
    let mut cluster = Cluster::start(3, 18).await;
    let leader = cluster.leader().await;
    let mut acked = Vec::new();
    for i in 0..6 {
        cluster.engine(leader).propose(cmd(i)).await.unwrap();
        acked.push(cmd(i).to_vec());
    }
    cluster.engine(leader).snapshot().await.expect("snapshot");
    let last = cluster.engine(leader).propose(cmd(6)).await.unwrap().index;
    acked.push(cmd(6).to_vec());
    cluster.wait_applied(&[1, 2, 3], last).await;

    cluster.shutdown_all().await;
    let stores: Vec<_> = (1..=3)
        .map(|id| cluster.nodes.remove(&id).unwrap().store)
        .collect();
    for (id, store) in (1..=3).zip(stores) {
        cluster.boot(id, store, true).await;
    }
    let leader = cluster.leader().await;
    let applied = cluster.engine(leader).propose(cmd(7)).await.unwrap();
    acked.push(cmd(7).to_vec());
    assert!(applied.index > last);
    cluster.wait_applied(&[1, 2, 3], applied.index).await;
    for id in 1..=3 {
        assert_eq!(cluster.commands(id), acked, "node {id}");
    }
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_is_fatal_and_reported() {
    let cluster = Cluster::start(3, 19).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    let term = engine.status().term;
    let losses = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&losses);
    let _sub = engine.on_leader_loss(Box::new(move |loss| seen.lock().unwrap().push(loss)));
    cluster.nodes[&leader].store.set_fail_writes(true);
    let err = engine.propose(cmd(1)).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Storage | ErrorKind::Fatal | ErrorKind::Shutdown
        ),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(engine.status().role, Role::Shutdown);
    let losses = losses.lock().unwrap().clone();
    assert_eq!(losses.len(), 1, "{losses:?}");
    assert_eq!(losses[0].cause, LossCause::Fatal);
    // The others elect a new leader.
    let others = cluster.followers(leader);
    cluster.net.isolate(leader);
    let new = cluster.leader_after(term, &others).await;
    cluster.engine(new).propose(cmd(2)).await.unwrap();
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn no_quorum_ack_is_reported_during_or_before_a_transfer() {
    let cluster = Cluster::start(3, 20).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    let before = engine.quorum_ack().expect("leader has an ack");
    let target = cluster.followers(leader)[0];
    cluster.net.hold(leader, target);
    let transfer = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.transfer_leadership(Some(target)).await })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(engine.status().transferring_to, Some(target));
    assert_eq!(engine.quorum_ack(), None);
    cluster.net.release(leader, target);
    assert_eq!(transfer.await.unwrap().unwrap(), target);
    assert_eq!(engine.quorum_ack(), None);
    let new = cluster.engine(target);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ack = new.quorum_ack().expect("the new leader has an ack");
    assert!(ack.term > before.term);
    assert!(ack.sent_at > before.sent_at);
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn too_much_in_flight_data_is_busy() {
    let cluster = Cluster::start_with(3, 21, |c| {
        c.max_command_bytes = 16;
        c.max_uncommitted_bytes = 32;
    })
    .await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    for follower in cluster.followers(leader) {
        cluster.net.partition(leader, follower);
    }
    let pending: Vec<_> = (0..2)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.propose(vec![1u8; 16].into()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let err = engine.propose(vec![2u8; 16].into()).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Busy, "{err}");
    assert!(err.is_safe_to_retry());
    assert!(!err.is_leadership_loss());
    cluster.net.heal();
    for proposal in pending {
        proposal.await.unwrap().expect("committed after heal");
    }
    engine
        .propose(vec![3u8; 16].into())
        .await
        .expect("budget released");
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn a_healthy_leader_keeps_a_fresh_quorum_ack_and_reports_no_loss() {
    let cluster = Cluster::start(3, 22).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    let losses = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&losses);
    let _sub = engine.on_leader_loss(Box::new(move |loss| seen.lock().unwrap().push(loss)));
    let timing = engine.timing();
    let mut oldest = Duration::ZERO;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(37)).await;
        let ack = engine
            .quorum_ack()
            .expect("a healthy leader has a quorum ack");
        assert_eq!(ack.term, engine.status().term);
        oldest = oldest.max(engine.clock().now() - ack.sent_at);
    }
    assert!(
        oldest <= timing.heartbeat_interval * 2,
        "quorum ack aged {oldest:?}"
    );
    assert!(
        losses.lock().unwrap().is_empty(),
        "{:?}",
        losses.lock().unwrap()
    );
    assert_eq!(engine.status().role, Role::Leader);
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn slow_round_trips_are_tolerated() {
    let cluster = Cluster::start(3, 23).await;
    let leader = cluster.leader().await;
    let engine = cluster.engine(leader).clone();
    let losses = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&losses);
    let _sub = engine.on_leader_loss(Box::new(move |loss| seen.lock().unwrap().push(loss)));
    // A 40 ms round trip, just under the 50 ms heartbeat interval: everything works.
    cluster.net.set_default_faults(LinkFaults {
        delay: Duration::from_millis(20),
        ..LinkFaults::default()
    });
    let mut last = 0;
    for i in 0..5 {
        last = engine.propose(cmd(i)).await.expect("propose").index;
    }
    engine.linearizable_read().await.expect("read");
    cluster.wait_applied(&[1, 2, 3], last).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        losses.lock().unwrap().is_empty(),
        "{:?}",
        losses.lock().unwrap()
    );
    assert!(engine.quorum_ack().is_some());

    // A 60 ms round trip exceeds the heartbeat interval. openraft times heartbeats out after
    // one interval (so lease refresh and ReadIndex stop working), but replication runs under
    // `rpc_timeout` and proposals still commit.
    cluster.net.set_default_faults(LinkFaults {
        delay: Duration::from_millis(30),
        ..LinkFaults::default()
    });
    engine
        .propose(cmd(9))
        .await
        .expect("propose with a slow network");
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_stops_the_node_like_a_crash() {
    let mut cluster = Cluster::start(3, 12).await;
    let old = cluster.leader().await;
    let old_term = cluster.status(old).term;
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::clone(&lost);
    let _subscription = cluster.engine(old).on_leader_loss(Box::new(move |_| {
        seen.store(true, std::sync::atomic::Ordering::SeqCst);
    }));
    drop(cluster.nodes.remove(&old));
    assert!(
        lost.load(std::sync::atomic::Ordering::SeqCst),
        "drop fires leader loss"
    );
    assert!(
        !cluster.net.nodes().contains(&old),
        "a dropped node stops serving"
    );
    // Only a stopped core lets the others elect: a running one would keep heartbeating.
    let survivors: Vec<raftengine::NodeId> = cluster.nodes.keys().copied().collect();
    let new = cluster.leader_after(old_term, &survivors).await;
    assert_ne!(new, old);
    cluster
        .engine(new)
        .propose(cmd(1))
        .await
        .expect("the survivors serve");
    cluster.shutdown_all().await;
}
