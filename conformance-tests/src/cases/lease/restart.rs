//! 7. A restarted node cannot help elect a leader inside a live lease.

use super::*;

/// The eager candidate campaigns every 150–200 ms, so it asks for votes inside any window of a
/// lease's length.
fn eager_candidate(config: &mut raftengine::Config) {
    config.election_timeout_min = Duration::from_millis(150);
    config.election_timeout_max = Duration::from_millis(200);
}

/// Follower f2 (restarted as an eager candidate with a full log) is cut off from the leader;
/// f1 still hears the leader, so the leader holds a lease from f1's acknowledgements. Then the
/// leader is cut off and f1 crashes and restarts at once, forgetting it just heard the leader.
/// No node may lead before the old lease expires: the restarted f1 must not vote inside it.
pub async fn restarted_node_cannot_elect_inside_live_lease<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    let mut leases = Leases::new(&cluster);
    let lease = leases.get(old)?;
    lease_put(&cluster, &lease, old, 1, 1).await?;
    let rest = cluster.others(old);
    let (f1, f2) = (rest[0], rest[1]);
    cluster.reconfigure(f2, eager_candidate)?;
    cluster.crash(f2).await?;
    cluster.restart(f2).await?;
    let last = status(&cluster, old)?.last_log_index;
    ensure!(
        eventually(Duration::from_secs(5), || {
            [f1, f2].iter().all(|&id| {
                cluster
                    .try_engine(id)
                    .is_some_and(|e| e.status().applied_index >= last)
            })
        })
        .await,
        "followers did not catch up: {}",
        cluster.describe()
    );
    let old_term = status(&cluster, old)?.term;
    // f2 stops hearing the leader and keeps campaigning with a log as long as anyone's; f1
    // still hears the leader and refuses. Nothing is written from now on, so f2 stays
    // electable: only vote refusal stands between it and leadership.
    cluster.partition(old, f2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = status(&cluster, old)?;
    ensure!(
        now.role == Role::Leader && now.term == old_term,
        "the leader lost with a live quorum: {}",
        cluster.describe()
    );
    ensure!(
        status(&cluster, f2)?.last_log_index == now.last_log_index,
        "the candidate's log fell behind: {}",
        cluster.describe()
    );
    ensure!(
        eventually(Duration::from_secs(1), || lease.check().is_ok()).await,
        "no lease from f1's acknowledgements: {:?}",
        lease.check()
    );
    let clock: Arc<dyn Clock> = cluster.clock(old)?;
    cluster.isolate(old);
    let cut = clock.now();
    let mut max_expiry = lease.state().expires_at();
    cluster.crash(f1).await?;
    cluster.restart(f1).await?;
    let restarted = clock.now();
    let sentinel = Sentinel::watch(
        vec![cluster.engine(f1)?, cluster.engine(f2)?],
        old_term,
        &lease,
        Arc::clone(&clock),
    );
    loop {
        max_expiry = max_expiry.max(lease.state().expires_at());
        if sentinel.takeover().is_some() {
            break;
        }
        ensure!(
            clock.now() - cut < Duration::from_secs(10),
            "no new leader within 10 s: {}",
            cluster.describe()
        );
        tokio::time::sleep(MS).await;
    }
    let takeover = sentinel.takeover().expect("seen");
    let Some(expiry) = max_expiry else {
        fail!("the old leader held no lease");
    };
    println!(
        "{}: old leader cut off and node {f1} restarted at 0 (+{:.0} ms); old lease expires \
         +{:.0} ms; node {} leads term {} at +{:.0} ms (vote-refusal window {:?})",
        B::NAME,
        ms(restarted - cut),
        ms(expiry.saturating_duration_since(cut)),
        takeover.node,
        takeover.term,
        ms(takeover.at - cut),
        cluster.engine(f1)?.timing().vote_refusal_window,
    );
    ensure!(
        takeover.old_lease_check.is_err(),
        "node {} was elected while the old leader's lease was valid",
        takeover.node
    );
    ensure!(
        takeover.at >= expiry,
        "node {} leads at +{:.0} ms, inside the old lease (expires +{:.0} ms)",
        takeover.node,
        ms(takeover.at - cut),
        ms(expiry.saturating_duration_since(cut))
    );
    drop(sentinel);
    cluster.heal();
    let leader = cluster.wait_for_leader(wait).await?;
    let lease = leases.get(leader)?;
    match lease_get(&cluster, &lease, leader, 1).await? {
        Ok(read) => ensure!(
            read.value.map(|v| v.value) == Some(1),
            "read after the heal returned {:?}",
            read.value
        ),
        Err(err) => fail!("read on the ready leader {leader} failed: {err}"),
    }
    leases.shutdown().await
}
