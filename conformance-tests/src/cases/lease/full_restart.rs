//! 10. No lease read behind a full restart.

use super::*;

const FULL_RESTART_KEY: Key = 7;

/// Every node crashes at once and restarts from its store; a lease built on whichever node
/// leads afterwards must not serve a read older than the last write acknowledged before the
/// crash. A backend may resume leadership in the term it had (no new term whose first entry
/// must be applied) with a state machine that restarted behind its log, for instance when the
/// commit index is kept in memory only; "applied an entry of the current term" then proves
/// nothing, and the engine itself must withhold acknowledgements until it caught up.
pub async fn no_lease_read_behind_a_full_restart<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    // Snapshots on the way, so a restart restores from one and replays the log after it.
    let spec = ClusterSpec::new(3).with_config(|config| config.snapshot_after_entries = 8);
    let cluster = h.cluster_with(spec, h.seed()).await?;
    let wait = cluster.election_wait();
    for round in 0..3u64 {
        let (leader, leases, lease) = warm_leader(&cluster).await?;
        let mut last = 0;
        for step in 0..20u64 {
            last = lease_put(
                &cluster,
                &lease,
                leader,
                FULL_RESTART_KEY,
                round * 100 + step,
            )
            .await?;
        }
        for lease in leases.leases.values() {
            lease.shutdown().await;
        }
        drop(lease);
        cluster.restart_all().await?;
        let mut leases = Leases::new(&cluster);
        let deadline = Instant::now() + 2 * wait;
        let mut answered = 0;
        while Instant::now() < deadline && answered < 200 {
            if let Some(id) = cluster.leader() {
                let lease = leases.get(id)?;
                if let Ok(read) = lease_get(&cluster, &lease, id, FULL_RESTART_KEY).await? {
                    answered += 1;
                    let seen = read.value.map_or(0, |v| v.version);
                    ensure!(
                        seen >= last,
                        "round {round}: node {id} answered a {:?} lease read {} after a full \
                         restart with {:?}, but a write at index {last} was acknowledged before \
                         the crash",
                        read.path,
                        answered,
                        read.value
                    );
                }
            }
            tokio::time::sleep(MS).await;
        }
        ensure!(
            answered > 0,
            "round {round}: no lease read answered within {:?} of a full restart",
            2 * wait
        );
        println!(
            "{}: round {round}: {answered} lease reads after the restart, none stale",
            B::NAME
        );
        for lease in leases.leases.values() {
            lease.shutdown().await;
        }
    }
    cluster.shutdown().await
}
