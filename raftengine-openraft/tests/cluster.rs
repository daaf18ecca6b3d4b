//! openraft-only behaviour of a cluster, on the conformance suite's harness (`MemNetwork`,
//! paused clock): how openraft copes with round trips close to the heartbeat interval. What
//! every backend must do is in the conformance suite (`tests/openraft.rs` of
//! `conformance-tests`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance_tests::harness::run_case;
use conformance_tests::{Failure, ensure};
use raftengine::sim::LinkFaults;
use raftengine::{Capabilities, Engine, LossCause};

conformance_tests::engine_backend!(Openraft, "openraft", raftengine_openraft::OpenraftEngine);

/// Every leader-loss cause `engine` reports from now on.
fn record_losses(
    engine: &Arc<dyn Engine>,
) -> (Arc<Mutex<Vec<LossCause>>>, raftengine::Subscription) {
    let causes = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&causes);
    let subscription = engine.on_leader_loss(Box::new(move |loss| {
        sink.lock().unwrap().push(loss.cause);
    }));
    (causes, subscription)
}

/// A 40 ms round trip, just under the 50 ms heartbeat interval, leaves writes, reads and the
/// quorum ack working with no leader loss. A 60 ms round trip exceeds the interval: openraft
/// times heartbeats out after one interval (so lease refresh and ReadIndex stop working), but
/// replication runs under `rpc_timeout` and proposals still commit.
#[test]
fn slow_round_trips_are_tolerated() {
    run_case(
        "slow_round_trips_are_tolerated",
        Capabilities::NONE,
        Openraft,
        |h| async move {
            let cluster = h.cluster(3).await?;
            ensure!(
                cluster.config().heartbeat_interval == Duration::from_millis(50),
                "the delays below are chosen for 50 ms heartbeats"
            );
            let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
            let engine = cluster.engine(leader)?;
            let (causes, _subscription) = record_losses(&engine);
            cluster.net().set_default_faults(LinkFaults {
                delay: Duration::from_millis(20),
                ..LinkFaults::default()
            });
            let mut last = 0;
            for key in 0..5 {
                last = cluster
                    .put(leader, key, key)
                    .await?
                    .map_err(|err| Failure::new(format!("write with 40 ms round trips: {err}")))?;
            }
            cluster
                .bounded("linearizable_read", engine.linearizable_read())
                .await?
                .map_err(|err| Failure::new(format!("read with 40 ms round trips: {err}")))?;
            cluster
                .wait_until(
                    "every node applies the writes",
                    cluster.election_wait(),
                    |c| c.statuses().values().all(|s| s.applied_index >= last),
                )
                .await?;
            // A window of many heartbeats in which the leader must not report a loss.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let causes = causes.lock().unwrap().clone();
            ensure!(
                causes.is_empty(),
                "leader loss fired with 40 ms round trips: {causes:?}"
            );
            ensure!(
                engine.quorum_ack().is_some(),
                "no quorum ack with 40 ms round trips"
            );

            cluster.net().set_default_faults(LinkFaults {
                delay: Duration::from_millis(30),
                ..LinkFaults::default()
            });
            cluster
                .put(leader, 9, 9)
                .await?
                .map_err(|err| Failure::new(format!("write with 60 ms round trips: {err}")))?;
            cluster.heal_all();
            cluster.shutdown().await
        },
    );
}
