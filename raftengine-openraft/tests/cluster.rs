//! openraft-specific cluster behaviour over `MemNetwork`, in virtual time: transfer target
//! choice, the snapshot policy, shutdown, whole-cluster restart, a failing store, quorum-ack
//! freshness, and openraft's first-acknowledgement wait under slow round trips. What every
//! backend must do is in the conformance suite (`tests/openraft.rs` of `conformance-tests`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Cluster, cmd};
use raftengine::sim::LinkFaults;
use raftengine::{Engine, ErrorKind, LogStore, LossCause, RejectReason, Role};

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
