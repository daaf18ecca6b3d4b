//! 6. A process pause longer than the lease does not yield a stale read.

use super::*;

/// The leader "pauses" (every link to and from it is held), the others elect a leader and
/// commit a write; when the pause ends, a read on the old node issued before any buffered
/// message arrives must not return the old value. Run twice: with the node's clock running
/// through the pause, and with it standing still (then jumping by the pause, as a monotonic
/// clock does after a stopped process resumes).
pub async fn lease_read_after_pause_is_not_stale<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    for stop_clock in [false, true] {
        pause_phase(h, stop_clock)
            .await
            .map_err(|f| f.context(format!("clock stopped during the pause: {stop_clock}")))?;
    }
    Ok(())
}

async fn pause_phase<B: Backend>(h: &Harness<B>, stop_clock: bool) -> Result<(), Failure> {
    let cluster = h
        .cluster_with(ClusterSpec::new(3), h.seed() + u64::from(stop_clock))
        .await?;
    let wait = cluster.election_wait();
    let (old, mut leases, old_lease) = warm_leader(&cluster).await?;
    let old_term = status(&cluster, old)?.term;
    let rest = cluster.others(old);
    let old_clock = cluster.clock(old)?;
    let engines = rest
        .iter()
        .map(|&id| cluster.engine(id))
        .collect::<Result<Vec<_>, _>>()?;
    let sentinel = Sentinel::watch(
        engines,
        old_term,
        &old_lease,
        Arc::clone(&old_clock) as Arc<dyn Clock>,
    );

    let paused = Instant::now();
    if stop_clock {
        old_clock.set_rate(1e-9);
    }
    hold_all(&cluster, old);
    let new = cluster.wait_for_leader_among(&rest, wait).await?;
    let new_lease = leases.get(new)?;
    lease_put(&cluster, &new_lease, new, 1, 2).await?;
    let acked = paused.elapsed();
    let Some(takeover) = sentinel.takeover() else {
        fail!("node {new} leads but the sentinel saw no takeover");
    };
    if !stop_clock {
        ensure!(
            takeover.old_lease_check.is_err(),
            "node {} was elected while the paused leader's lease was valid",
            takeover.node
        );
        ensure!(
            old_lease.try_read_fast(|| ()).is_err(),
            "the paused leader would serve a fast read after the new leader's write"
        );
    } else {
        tokio::time::sleep_until(paused + Duration::from_secs(2)).await;
        old_clock.set_rate(1.0);
        old_clock.advance(paused.elapsed());
    }
    let at_resume = old_lease.check();
    // The pause ends: a read on the old node right away, before anything buffered arrives;
    // then the buffered traffic flows.
    let read = {
        let (cluster, old_lease) = (cluster.clone(), old_lease.clone());
        tokio::spawn(async move { lease_get(&cluster, &old_lease, old, 1).await })
    };
    tokio::time::sleep(MS).await;
    release_all(&cluster, old);
    let read = cluster
        .bounded("read after the pause", read)
        .await?
        .map_err(|err| Failure::new(format!("read task panicked: {err}")))??;
    println!(
        "{}: paused at 0 (clock stopped: {stop_clock}); node {} led term {}, its write acked \
         at +{:.0} ms; fast path at resumption: {at_resume:?}; read on the resumed node: \
         {read:?}",
        B::NAME,
        takeover.node,
        takeover.term,
        ms(acked)
    );
    if let Ok(read) = read {
        ensure!(
            read.value.map(|v| v.value) == Some(2),
            "stale read after a pause ({:?} path): {:?}",
            read.path,
            read.value
        );
    }
    drop(sentinel);
    leases.shutdown().await
}
