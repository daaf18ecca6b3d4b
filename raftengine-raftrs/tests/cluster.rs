//! Three-node clusters over `MemNetwork` on virtual time: election, replication, routing
//! errors, crash and restart, reads, transfer.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, eventually, no_tweak};
use raftengine::{Engine, ErrorKind, LossCause, RejectReason, Role, Transport, WriteOutcome};

fn cmd(i: usize) -> Bytes {
    Bytes::from(format!("cmd-{i}"))
}

#[tokio::test(start_paused = true)]
async fn three_nodes_elect_a_leader_and_replicate() {
    let mut c = Cluster::start(3, 1, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    let mut last = 0;
    for i in 0..20 {
        let applied = engine.propose(cmd(i)).await.expect("propose");
        assert!(applied.index > last, "indexes increase");
        last = applied.index;
        assert!(
            applied
                .response
                .starts_with(format!("{}:", applied.index).as_bytes())
        );
    }
    c.wait_applied(&[1, 2, 3], last).await;
    let expected: Vec<Bytes> = (0..20).map(cmd).collect();
    for id in [1, 2, 3] {
        assert_eq!(c.commands(id), expected, "node {id} state machine");
    }
    let status = engine.status();
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.leader, Some(leader));
    assert_eq!(status.membership.voters.len(), 3);
    assert!(status.is_ready_leader());
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn follower_refuses_proposals_with_a_leader_hint() {
    let mut c = Cluster::start(3, 2, no_tweak).await;
    let leader = c.wait_leader().await;
    c.engine(leader).propose(cmd(0)).await.unwrap();
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    let err = c.engine(follower).propose(cmd(1)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::NotLeader { hint: Some(leader) });
    assert_eq!(err.outcome(), WriteOutcome::NotApplied);
    let err = c.engine(follower).linearizable_read().await.unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::NotLeader { .. }));
    // Nothing was forwarded: the command never shows up anywhere.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for id in [1, 2, 3] {
        assert!(!c.commands(id).contains(&cmd(1)));
    }
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn leader_crash_and_restart_keeps_every_acknowledged_write() {
    let mut c = Cluster::start(3, 3, no_tweak).await;
    let first = c.wait_leader().await;
    let mut acked = Vec::new();
    for i in 0..10 {
        c.engine(first).propose(cmd(i)).await.unwrap();
        acked.push(cmd(i));
    }
    let store = c.crash(first).await;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != first).collect();
    let second = c.wait_leader_among(&rest).await;
    assert_ne!(second, first);
    for i in 10..20 {
        c.engine(second).propose(cmd(i)).await.unwrap();
        acked.push(cmd(i));
    }
    c.start_node(first, store, true).await;
    let last = c.engine(second).status().last_log_index;
    c.wait_applied(&[1, 2, 3], last).await;
    for id in [1, 2, 3] {
        assert_eq!(c.commands(id), acked, "node {id}");
    }
    // The restarted node serves as a full member again.
    let leader = c.wait_leader().await;
    c.engine(leader).propose(cmd(99)).await.unwrap();
    c.shutdown_all().await;
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
async fn isolated_leader_fails_reads_and_writes_instead_of_hanging() {
    let mut c = Cluster::start(3, 5, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    engine.propose(cmd(0)).await.unwrap();
    let losses = Arc::new(AtomicUsize::new(0));
    let causes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (l, cs) = (Arc::clone(&losses), Arc::clone(&causes));
    let _sub = engine.on_leader_loss(Box::new(move |loss| {
        l.fetch_add(1, Ordering::SeqCst);
        cs.lock().unwrap().push(loss.cause);
    }));
    assert!(engine.quorum_ack().is_some());
    c.net.isolate(leader);
    let started = tokio::time::Instant::now();
    let (read, write) = tokio::join!(engine.linearizable_read(), engine.propose(cmd(1)));
    let elapsed = started.elapsed();
    let read_err = read.unwrap_err();
    let write_err = write.unwrap_err();
    assert!(
        elapsed < Duration::from_secs(5),
        "failed promptly, not at the deadline: {elapsed:?}"
    );
    assert_eq!(read_err.kind(), &ErrorKind::LeadershipLost, "{read_err}");
    assert_eq!(write_err.kind(), &ErrorKind::LeadershipLost, "{write_err}");
    assert_eq!(write_err.outcome(), WriteOutcome::Unknown);
    assert_eq!(losses.load(Ordering::SeqCst), 1, "one loss edge");
    assert_eq!(causes.lock().unwrap()[0], LossCause::QuorumLost);
    assert!(engine.quorum_ack().is_none());
    c.net.heal();
    let leader = c.wait_leader().await;
    c.engine(leader).propose(cmd(2)).await.unwrap();
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn quorum_ack_is_anchored_at_a_recent_send_time() {
    let mut c = Cluster::start(3, 6, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = engine.clock().now();
    let ack = engine.quorum_ack().expect("leader has acks");
    assert_eq!(ack.term, engine.status().term);
    assert!(ack.sent_at <= now);
    assert!(now - ack.sent_at <= engine.timing().heartbeat_interval * 2);
    let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    assert!(c.engine(follower).quorum_ack().is_none());
    let timing = engine.timing();
    assert!(timing.vote_refusal_window < timing.election_timeout_min);
    assert!(timing.vote_refusal_window > Duration::ZERO);
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn transfer_to_a_live_follower_and_rejections() {
    let mut c = Cluster::start(3, 7, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    engine.propose(cmd(0)).await.unwrap();
    let target = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();

    let kind = |r: raftengine::Result<u64>| r.unwrap_err().kind().clone();
    assert_eq!(
        kind(engine.transfer_leadership(Some(9)).await),
        ErrorKind::Rejected(RejectReason::UnknownNode(9))
    );
    assert_eq!(
        kind(engine.transfer_leadership(Some(leader)).await),
        ErrorKind::Rejected(RejectReason::TargetIsSelf(leader))
    );
    assert!(matches!(
        kind(c.engine(target).transfer_leadership(Some(leader)).await),
        ErrorKind::NotLeader { .. }
    ));

    let started_before = engine.status().transfers_started;
    let new_leader = engine.transfer_leadership(Some(target)).await.unwrap();
    assert_eq!(new_leader, target);
    assert_eq!(engine.status().leader, Some(target));
    assert_eq!(
        engine.status().transfers_started,
        started_before + 1,
        "a started transfer is counted (rejected ones are not)"
    );
    assert_ne!(engine.status().role, Role::Leader);
    let leader = c.wait_leader().await;
    assert_eq!(leader, target);
    c.engine(target).propose(cmd(1)).await.unwrap();

    // `None` picks an up-to-date voter.
    let picked = c.engine(target).transfer_leadership(None).await.unwrap();
    assert_ne!(picked, target);
    c.shutdown_all().await;
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
        engine.quorum_ack().is_some(),
        "fresh acks after the abort count again"
    );
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
async fn oversized_commands_are_rejected_and_the_uncommitted_limit_gives_busy() {
    let mut c = Cluster::start(3, 12, |config| {
        config.max_command_bytes = 100;
        config.max_uncommitted_bytes = 100;
    })
    .await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    let err = engine
        .propose(Bytes::from(vec![7u8; 101]))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &ErrorKind::Rejected(RejectReason::TooLarge {
            size: 101,
            limit: 100
        })
    );
    engine.propose(Bytes::from(vec![1u8; 60])).await.unwrap();
    // Cut the followers off so the next write stays uncommitted, then exceed the limit.
    c.net.isolate(leader);
    let stuck = {
        let e = Arc::clone(&engine);
        tokio::spawn(async move { e.propose(Bytes::from(vec![2u8; 60])).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let err = engine
        .propose(Bytes::from(vec![3u8; 60]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Busy, "{err}");
    assert!(!err.is_leadership_loss());
    assert_eq!(err.outcome(), WriteOutcome::NotApplied);
    c.net.heal();
    let _ = stuck.await.unwrap();
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_state_machine_is_fatal_not_a_hang() {
    let mut c = Cluster::start(3, 13, no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    engine.propose(cmd(0)).await.unwrap();
    let causes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let cs = Arc::clone(&causes);
    let _sub = engine.on_leader_loss(Box::new(move |loss| cs.lock().unwrap().push(loss.cause)));
    let err = engine
        .propose(Bytes::from_static(b"boom"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Fatal, "{err}");
    assert_eq!(engine.status().role, Role::Shutdown);
    assert_eq!(*causes.lock().unwrap(), vec![LossCause::Fatal]);
    assert_eq!(
        engine.propose(cmd(1)).await.unwrap_err().kind(),
        &ErrorKind::Fatal
    );
    engine.shutdown().await.unwrap();
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
