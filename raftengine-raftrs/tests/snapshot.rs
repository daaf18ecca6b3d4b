//! Snapshots: explicit and policy-driven builds, log compaction, catch-up of a lagging follower
//! by snapshot install, and restart from a compacted store.

mod common;

use bytes::Bytes;
use common::Cluster;
use raftengine::{Engine, LogStore};

fn cmd(i: usize) -> Bytes {
    Bytes::from(format!("s-{i}"))
}

#[tokio::test(start_paused = true)]
async fn a_partitioned_follower_catches_up_from_a_snapshot() {
    let mut c = Cluster::start(3, 31, |config| config.snapshot_after_entries = 20).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    engine.propose(cmd(0)).await.unwrap();
    let lagging = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
    c.wait_applied(&[lagging], engine.status().applied_index)
        .await;
    let lagging_last = c.engine(lagging).status().last_log_index;
    c.net.isolate(lagging);
    let mut last = 0;
    for i in 1..60 {
        last = engine.propose(cmd(i)).await.unwrap().index;
    }
    let leader_store = &c.nodes[&leader].store;
    let first_kept = leader_store.log_state().unwrap().first_index();
    assert!(
        first_kept > lagging_last + 1,
        "the leader compacted past the follower ({first_kept} vs {lagging_last})"
    );
    assert!(leader_store.snapshot().unwrap().is_some());
    c.net.heal();
    c.wait_applied(&[1, 2, 3], last).await;
    let expected: Vec<Bytes> = (0..60).map(cmd).collect();
    for id in [1, 2, 3] {
        assert_eq!(c.commands(id), expected, "node {id}");
    }
    let installed = c.nodes[&lagging].store.snapshot().unwrap().unwrap();
    assert!(
        installed.meta.last_index > lagging_last,
        "the follower installed a snapshot"
    );
    c.shutdown_all().await;
}

#[tokio::test(start_paused = true)]
async fn explicit_snapshot_compacts_and_a_restart_restores_from_it() {
    let mut c = Cluster::start(3, 32, common::no_tweak).await;
    let leader = c.wait_leader().await;
    let engine = c.engine(leader);
    for i in 0..10 {
        engine.propose(cmd(i)).await.unwrap();
    }
    let applied = engine.status().applied_index;
    let info = engine.snapshot().await.unwrap();
    assert_eq!(info.last_index, applied);
    assert_eq!(info.last_term, engine.status().term);
    let store = c.nodes[&leader].store.clone();
    assert_eq!(store.log_state().unwrap().first_index(), applied + 1);
    // Snapshotting again without new entries is a no-op at the same point.
    assert_eq!(engine.snapshot().await.unwrap(), info);

    let store = c.crash(leader).await;
    c.start_node(leader, store, true).await;
    let restarted = c.nodes[&leader].sm.read(|sm| sm.commands.len());
    assert_eq!(restarted, 10, "restored from the snapshot at start");
    let leader = c.wait_leader().await;
    let last = c.engine(leader).propose(cmd(10)).await.unwrap().index;
    c.wait_applied(&[1, 2, 3], last).await;
    let expected: Vec<Bytes> = (0..11).map(cmd).collect();
    for id in [1, 2, 3] {
        assert_eq!(c.commands(id), expected, "node {id}");
    }
    c.shutdown_all().await;
}
