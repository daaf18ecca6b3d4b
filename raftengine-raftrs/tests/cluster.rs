//! raft-rs-specific cluster behaviour over `MemNetwork` on virtual time: batched reads,
//! raft-rs's own transfer abort, shutdown of the driver, malformed native messages, the
//! post-restart vote drop, and a restart on the same transport. What every backend must do is
//! in the conformance suite (`tests/raftrs.rs` of `conformance-tests`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, eventually, no_tweak};
use raftengine::{Engine, ErrorKind, LossCause, Role, Transport, WriteOutcome};

fn cmd(i: usize) -> Bytes {
    Bytes::from(format!("cmd-{i}"))
}

#[tokio::test(start_paused = true)]
async fn linearizable_reads_batch_and_see_every_acknowledged_write() {
    let mut c = Cluster::start(3, 4, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    let written = engine.propose(cmd(0)).await.unwrap();
    let reads = futures_join(Arc::clone(&engine), 8).await;
    for read in reads {
        let read = read.expect("read");
        assert!(read.index >= written.index);
        assert_eq!(read.term, engine.status().term);
        assert!(engine.status().applied_index >= read.index);
    }
    c.shutdown_all().await;
}

async fn futures_join(
    engine: Arc<raftengine_raftrs::RaftRsEngine>,
    n: usize,
) -> Vec<raftengine::Result<raftengine::ReadIndex>> {
    let mut handles = Vec::new();
    for _ in 0..n {
        let e = Arc::clone(&engine);
        handles.push(tokio::spawn(async move { e.linearizable_read().await }));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn transfer_to_an_isolated_target_times_out_and_the_leader_stays() {
    let mut c = Cluster::start(3, 8, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    engine.propose(cmd(0)).await.unwrap();
    let target = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    c.net.isolate(target);
    for i in 1..4 {
        engine.propose(cmd(i)).await.unwrap();
    }
    let during = {
        let e = Arc::clone(&engine);
        tokio::spawn(async move { e.transfer_leadership(Some(target)).await })
    };
    assert!(
        eventually(Duration::from_millis(200), || engine
            .status()
            .transferring_to
            == Some(target))
        .await
    );
    assert!(
        engine.quorum_ack().is_none(),
        "no quorum ack proves a lease while a transfer runs"
    );
    let err = engine.propose(cmd(9)).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::TransferInProgress {
            target: Some(target)
        }
    );
    let err = during.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Timeout, "{err}");
    assert_eq!(engine.status().role, Role::Leader);
    assert_eq!(engine.status().transferring_to, None);
    engine.propose(cmd(10)).await.unwrap();
    assert!(
        engine.quorum_ack().is_none(),
        "a late MsgTimeoutNow may still force an election: no ack proves a lease in this term"
    );
    assert_eq!(engine.status().transfer_term, Some(engine.status().term));
    c.net.heal();
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_fails_waiters_is_idempotent_and_fires_loss() {
    let mut c = Cluster::start(3, 9, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    engine.propose(cmd(0)).await.unwrap();
    let causes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cs = Arc::clone(&causes);
    let _sub = engine.on_leader_loss(Box::new(move |loss| cs.lock().unwrap().push(loss.cause)));
    // A write that cannot commit (followers cut off) is pending when we shut down.
    c.net.isolate(leader);
    let pending = {
        let e = Arc::clone(&engine);
        tokio::spawn(async move { e.propose(cmd(1)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    engine.shutdown().await.unwrap();
    engine.shutdown().await.unwrap();
    let err = pending.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Shutdown);
    assert_eq!(engine.status().role, Role::Shutdown);
    assert_eq!(*causes.lock().unwrap(), vec![LossCause::Shutdown]);
    assert_eq!(
        engine.propose(cmd(2)).await.unwrap_err().kind(),
        &ErrorKind::Shutdown
    );
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn malformed_peer_bytes_are_dropped_not_fatal() {
    let mut c = Cluster::start(3, 10, no_tweak).await;
    let leader = c.wait_leader().await;
    let rogue = c.net.transport(42);
    for target in [1, 2, 3] {
        rogue.send(
            target,
            Bytes::from_static(b"\x01garbage that is not a raft message"),
        );
        rogue.send(target, Bytes::new());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in [1, 2, 3] {
        assert_ne!(c.engine(id).status().role, Role::Shutdown);
    }
    c.engine(leader).propose(cmd(0)).await.unwrap();
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn proposals_without_quorum_end_by_the_deadline() {
    let mut c = Cluster::start(3, 11, |config| {
        config.request_timeout = Duration::from_millis(800);
    })
    .await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    engine.propose(cmd(0)).await.unwrap();
    for id in [1, 2, 3] {
        if id != leader {
            c.crash(id).await;
        }
    }
    let started = tokio::time::Instant::now();
    let err = engine.propose(cmd(1)).await.unwrap_err();
    assert!(started.elapsed() <= Duration::from_millis(800));
    assert!(
        matches!(err.kind(), ErrorKind::Timeout | ErrorKind::LeadershipLost),
        "{err}"
    );
    assert_eq!(err.outcome(), WriteOutcome::Unknown);
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn a_restarted_node_refuses_votes_for_one_election_timeout() {
    // A narrow election-timeout range makes the witness retry its campaign about once per
    // window, so without the vote drop some seed elects inside the window.
    for seed in 40..50 {
        let mut c = Cluster::start(3, seed, |config| {
            config.election_timeout_min = Duration::from_millis(300);
            config.election_timeout_max = Duration::from_millis(330);
        })
        .await;
        let leader = c.wait_leader().await;
        c.engine(leader).propose(cmd(0)).await.unwrap();
        let mut others = [1, 2, 3].into_iter().filter(|id| *id != leader);
        let (restarted, witness) = (others.next().unwrap(), others.next().unwrap());
        let store = c.crash(restarted).await;
        // The old leader is cut off as the node comes back, so the restarted node never hears
        // from it: without the vote drop it would grant the witness's (pre-)vote at once.
        c.net.partition(leader, restarted);
        c.net.partition(leader, witness);
        tokio::time::sleep(Duration::from_millis(700)).await;
        c.start_node(restarted, store, true).await;
        let window = c.engine(restarted).timing().election_timeout_min;
        let started = tokio::time::Instant::now();
        let new_leader = c.wait_leader_among(&[restarted, witness]).await;
        let took = started.elapsed();
        assert!(
            took >= window,
            "seed {seed}: node {new_leader} was elected {took:?} after the restart, inside the \
             {window:?} window"
        );
        c.net.heal();
        c.shutdown_all().await;
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_an_engine_and_restarting_at_once_keeps_the_new_one_reachable() {
    let mut c = Cluster::start(3, 15, no_tweak).await;
    let leader = c.wait_leader().await;
    c.engine(leader).propose(cmd(0)).await.unwrap();
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let node = c.nodes.remove(&follower).unwrap();
    let store = node.store.clone();
    drop(node);
    c.start_node(follower, store, true).await;
    let last = c.engine(leader).propose(cmd(1)).await.unwrap().index;
    c.wait_applied(&[follower], last).await;
    assert_eq!(c.commands(follower), vec![cmd(0), cmd(1)]);
    c.shutdown_all().await;
}
