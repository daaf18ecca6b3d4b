//! raft-rs-only behaviour, on the conformance suite's harness (`MemNetwork`, paused clock):
//! malformed native messages, the vote refusal after a restart, and the driver's bounded event
//! queue. What every backend must do is in the conformance suite (`tests/raftrs.rs` of
//! `conformance-tests`).

use std::time::Duration;

use bytes::Bytes;
use conformance_tests::harness::run_case;
use conformance_tests::sm::Command;
use conformance_tests::{ClusterSpec, Failure, ensure, fail};
use raftengine::{Capabilities, ErrorKind, Role, Transport};
use tokio::time::Instant;

conformance_tests::engine_backend!(RaftRs, "raftrs", raftengine_raftrs::RaftRsEngine);

/// Bytes that do not decode as a raft-rs message, from a node nobody knows, are dropped: no
/// node stops, and the cluster keeps committing.
#[test]
fn malformed_peer_bytes_are_dropped_not_fatal() {
    run_case(
        "malformed_peer_bytes_are_dropped_not_fatal",
        Capabilities::NONE,
        RaftRs,
        |h| async move {
            let cluster = h.cluster(3).await?;
            let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
            let rogue = cluster.net().transport(42);
            for target in cluster.ids() {
                rogue.send(
                    target,
                    Bytes::from_static(b"\x01garbage that is not a raft message"),
                );
                rogue.send(target, Bytes::new());
            }
            // A window of several heartbeats in which every node has decoded and dropped them.
            tokio::time::sleep(cluster.config().heartbeat_interval * 4).await;
            for (id, status) in cluster.statuses() {
                ensure!(
                    status.role != Role::Shutdown,
                    "node {id} stopped on malformed bytes"
                );
            }
            cluster.put(leader, 1, 1).await?.map_err(|err| {
                Failure::new(format!("a write after the malformed bytes failed: {err}"))
            })?;
            cluster.wait_converged(cluster.election_wait()).await?;
            cluster.shutdown().await
        },
    );
}

/// raft-rs drops vote requests for one election timeout after a restart, so a node that comes
/// back cannot help elect a leader at once (that would cut an old leader's lease short). A
/// narrow election-timeout range makes the witness retry its campaign about once per window,
/// so without the vote drop some seed elects inside the window.
#[test]
fn a_restarted_node_refuses_votes_for_one_election_timeout() {
    run_case(
        "a_restarted_node_refuses_votes_for_one_election_timeout",
        Capabilities::NONE,
        RaftRs,
        |h| async move {
            for seed in 40..50 {
                let spec = ClusterSpec::new(3).with_config(|config| {
                    config.election_timeout_min = Duration::from_millis(300);
                    config.election_timeout_max = Duration::from_millis(330);
                });
                let cluster = h.cluster_with(spec, seed).await?;
                let wait = cluster.election_wait();
                let leader = cluster.wait_for_leader(wait).await?;
                cluster
                    .put(leader, 1, 1)
                    .await?
                    .map_err(|err| Failure::new(format!("seed {seed}: write failed: {err}")))?;
                let others = cluster.others(leader);
                let (restarted, witness) = (others[0], others[1]);
                cluster.crash(restarted).await?;
                // The old leader is cut off as the node comes back, so the restarted node never
                // hears from it: without the vote drop it would grant the witness's (pre-)vote
                // at once.
                cluster.partition(leader, restarted);
                cluster.partition(leader, witness);
                // The witness campaigns in vain while the node is down.
                tokio::time::sleep(Duration::from_millis(700)).await;
                cluster.restart(restarted).await?;
                let window = cluster.engine(restarted)?.timing().election_timeout_min;
                let started = Instant::now();
                let new_leader = cluster
                    .wait_for_leader_among(&[restarted, witness], wait)
                    .await?;
                let took = started.elapsed();
                ensure!(
                    took >= window,
                    "seed {seed}: node {new_leader} was elected {took:?} after the restart, \
                     inside the {window:?} window"
                );
                cluster.heal();
                cluster.shutdown().await?;
            }
            Ok(())
        },
    );
}

/// The driver's event queue is bounded: a burst of requests beyond it is refused with `Busy`
/// at once instead of queueing without limit.
#[test]
fn a_burst_beyond_the_queue_is_busy_not_buffered() {
    run_case(
        "a_burst_beyond_the_queue_is_busy_not_buffered",
        Capabilities::NONE,
        RaftRs,
        |h| async move {
            let cluster = h.cluster(1).await?;
            let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
            let engine = cluster.engine(leader)?;
            const BURST: u64 = 10_000;
            // All spawned before the driver runs again: every request meets the queue at once.
            let burst: Vec<_> = (0..BURST)
                .map(|key| {
                    let engine = engine.clone();
                    tokio::spawn(async move {
                        engine
                            .propose(Command::Put { key, value: key }.encode())
                            .await
                    })
                })
                .collect();
            let (mut busy, mut applied) = (0, 0);
            for task in burst {
                let answer = cluster
                    .bounded("a proposal of the burst", task)
                    .await?
                    .map_err(|err| Failure::new(format!("a proposal task panicked: {err}")))?;
                match answer {
                    Ok(_) => applied += 1,
                    Err(err) if err.kind() == &ErrorKind::Busy => busy += 1,
                    Err(err) => fail!("a proposal of the burst failed with {err}"),
                }
            }
            ensure!(busy > 0, "{BURST} requests at once were all queued");
            ensure!(applied > 0, "nothing of the burst was applied");
            cluster.shutdown().await
        },
    );
}
