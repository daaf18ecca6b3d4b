//! Reads issued the instant a node becomes leader, and nodes driven by drifting clocks.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Cluster, TestSm, no_tweak};
use raftengine::sim::{DriftClock, LinkFaults, MemNetwork};
use raftengine::{Clock, Config, Engine, LogStore, MemLogStore, Role, SharedStateMachine};
use raftengine_raftrs::RaftRsEngine;

#[tokio::test(start_paused = true)]
async fn a_read_issued_as_soon_as_a_node_leads_waits_for_its_first_commit() {
    let mut c = Cluster::start(3, 51, no_tweak).await;
    // A round trip of 10 ms: the new leader's first entry cannot commit within the 1 ms poll.
    c.net.set_default_faults(LinkFaults {
        delay: Duration::from_millis(5),
        ..LinkFaults::default()
    });
    // Subscribe before any election and read at the first Leader status.
    let mut watchers: Vec<_> = [1, 2, 3]
        .iter()
        .map(|id| (*id, c.engine(*id).subscribe()))
        .collect();
    let (id, term) = loop {
        let mut found = None;
        for (id, rx) in &mut watchers {
            let s = rx.borrow_and_update().clone();
            if s.role == Role::Leader {
                found = Some((*id, s.term));
            }
        }
        if let Some(found) = found {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let engine = c.engine(id);
    let read = engine
        .linearizable_read()
        .await
        .expect("read after election");
    assert_eq!(read.term, term);
    assert!(
        engine.status().applied_term == term,
        "the read waited for the term's first entry"
    );
    assert!(engine.status().applied_index >= read.index);
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn nodes_on_drifting_clocks_elect_and_replicate() {
    let net = MemNetwork::new(52);
    let mut engines = Vec::new();
    let rates = [1.01, 0.99, 1.0];
    for (i, id) in [1u64, 2, 3].into_iter().enumerate() {
        let clock = Arc::new(DriftClock::new(Duration::from_secs(id * 100), rates[i]));
        let engine = RaftRsEngine::start_with_clock(
            Config::new(id, [1, 2, 3]),
            SharedStateMachine::new(TestSm::default()),
            Arc::new(MemLogStore::new()) as Arc<dyn LogStore>,
            Arc::new(net.transport(id)),
            clock.clone(),
        )
        .await
        .unwrap();
        engines.push((engine, clock));
    }
    let mut leader = None;
    for _ in 0..500 {
        leader = engines
            .iter()
            .find(|(e, _)| e.status().role == Role::Leader && e.status().is_ready_leader());
        if leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (engine, clock) = leader.expect("a leader on drifting clocks");
    engine.propose(Bytes::from_static(b"x")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ack = engine.quorum_ack().expect("acks");
    // Reported on the engine's own clock.
    assert!(ack.sent_at <= clock.now());
    assert!(clock.now() - ack.sent_at < Duration::from_millis(300));
    for (e, _) in &engines {
        e.shutdown().await.unwrap();
    }
}
