//! Lossy networks and skewed clocks.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Cluster, Recorder, base_config, cmd};
use raftengine::sim::{DriftClock, LinkFaults, MemNetwork};
use raftengine::{Engine, LogStore, MemLogStore, Role, SharedStateMachine};
use raftengine_openraft::OpenraftEngine;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_lossy_duplicating_network_converges_and_keeps_acknowledged_writes() {
    let cluster = Cluster::start(3, 31).await;
    cluster.leader().await;
    cluster.net.set_default_faults(LinkFaults {
        drop_rate: 0.05,
        duplicate_rate: 0.1,
        delay: Duration::from_millis(2),
        jitter: Duration::from_millis(5),
        ..LinkFaults::default()
    });
    let mut acked = BTreeSet::new();
    let mut attempted = BTreeSet::new();
    for i in 0..40 {
        let leader = cluster
            .nodes
            .keys()
            .copied()
            .find(|id| cluster.status(*id).role == Role::Leader);
        let Some(leader) = leader else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        attempted.insert(cmd(i).to_vec());
        if cluster.engine(leader).propose(cmd(i)).await.is_ok() {
            acked.insert(cmd(i).to_vec());
        }
    }
    assert!(
        acked.len() >= 20,
        "only {} of 40 writes succeeded",
        acked.len()
    );

    cluster.net.set_default_faults(LinkFaults::default());
    let leader = cluster.leader().await;
    let last = cluster
        .engine(leader)
        .propose(cmd(1000))
        .await
        .unwrap()
        .index;
    cluster.wait_applied(&[1, 2, 3], last).await;
    let reference = cluster.commands(leader);
    for id in 1..=3 {
        assert_eq!(cluster.commands(id), reference, "node {id} diverged");
    }
    let applied: BTreeSet<Vec<u8>> = reference.iter().cloned().collect();
    assert_eq!(applied.len(), reference.len(), "a command applied twice");
    assert!(
        acked.is_subset(&applied),
        "an acknowledged write is missing"
    );
    assert!(
        applied
            .iter()
            .all(|c| attempted.contains(c) || *c == cmd(1000).to_vec()),
        "a phantom command was applied"
    );
    cluster.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn quorum_acks_are_reported_on_the_engine_clock() {
    let net = MemNetwork::new(32);
    let voters = [1, 2, 3];
    let mut engines = Vec::new();
    for id in voters {
        let clock = Arc::new(DriftClock::new(Duration::from_secs(id * 100), 1.0));
        let engine = OpenraftEngine::start_with_clock(
            base_config(id, &voters),
            SharedStateMachine::new(Recorder::default()),
            Arc::new(MemLogStore::new()) as Arc<dyn LogStore>,
            Arc::new(net.transport(id)),
            clock,
        )
        .await
        .unwrap();
        engines.push(engine);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let leader = loop {
        if let Some(e) = engines
            .iter()
            .find(|e| e.status().role == Role::Leader && e.quorum_ack().is_some())
        {
            break e.clone();
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let now = leader.clock().now();
    let ack = leader.quorum_ack().unwrap();
    assert!(ack.sent_at <= now);
    assert!(
        now - ack.sent_at <= leader.timing().heartbeat_interval * 2,
        "ack is {:?} old on the engine clock",
        now - ack.sent_at
    );
    // The engine clock is offset from tokio's by the node's id × 100 s.
    let offset = Duration::from_secs(leader.id() * 100);
    assert!(ack.sent_at > Instant::now() + offset - Duration::from_secs(1));
    for engine in engines {
        engine.shutdown().await.unwrap();
    }
}
