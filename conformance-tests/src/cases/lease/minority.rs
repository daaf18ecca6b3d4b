//! 2. Old leader partitioned into the minority.

use super::*;

/// The old leader is partitioned into the minority: its fast path stops no later than its lease
/// expiry (nothing sent after the partition can renew it), never resumes, and stops before any
/// other node leads; after the majority commits a write, the old node never serves the old
/// value.
pub async fn lease_stops_on_minority_leader_before_new_leader<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let (old, mut leases, old_lease) = warm_leader(&cluster).await?;
    let old_term = status(&cluster, old)?.term;
    let majority = cluster.others(old);
    let clock: Arc<dyn Clock> = cluster.clock(old)?;
    let engines = majority
        .iter()
        .map(|&id| cluster.engine(id))
        .collect::<Result<Vec<_>, _>>()?;
    let sentinel = Sentinel::watch(engines, old_term, &old_lease, Arc::clone(&clock));

    let parted = clock.now();
    cluster.partition_groups(&[&[old], &majority]);
    let duration = old_lease.duration();
    let mut max_expiry = old_lease.state().expires_at();
    let mut stopped_at = None;
    // The clock sample taken before the last check that passed: the check's own sample is no
    // earlier, so this is a lower bound on when the fast path last served.
    let mut last_open = None;
    loop {
        let now = clock.now();
        max_expiry = max_expiry.max(old_lease.state().expires_at());
        match (old_lease.check(), stopped_at) {
            (Ok(()), None) => last_open = Some(now),
            (Err(_), None) => stopped_at = Some(now),
            (Ok(()), Some(at)) => fail!(
                "the old leader's fast path resumed at +{:.0} ms after stopping at +{:.0} ms \
                 in the minority",
                ms(now - parted),
                ms(at - parted)
            ),
            _ => {}
        }
        if sentinel.takeover().is_some() {
            break;
        }
        ensure!(
            now - parted < Duration::from_secs(10),
            "no new leader in the majority within 10 s: {}",
            cluster.describe()
        );
        tokio::time::sleep(MS).await;
    }
    let takeover = sentinel.takeover().expect("seen");
    let Some(stopped_at) = stopped_at else {
        fail!(
            "node {} leads term {} while the old leader's fast path is still open",
            takeover.node,
            takeover.term
        );
    };
    let Some(expiry) = max_expiry else {
        fail!("the old leader held no lease");
    };
    println!(
        "{}: partitioned at 0; lease expiry +{:.0} ms, fast path stopped +{:.0} ms, node {} \
         leads term {} at +{:.0} ms",
        B::NAME,
        ms(expiry - parted),
        ms(stopped_at - parted),
        takeover.node,
        takeover.term,
        ms(takeover.at - parted)
    );
    ensure!(
        expiry <= parted + duration + MS,
        "the lease reaches past the partition: +{:.0} ms > {duration:?}",
        ms(expiry - parted)
    );
    ensure!(
        last_open.is_none_or(|open| open < expiry),
        "the fast path outlived the lease expiry"
    );
    ensure!(
        takeover.old_lease_check.is_err(),
        "node {} led term {} while the old leader's lease was still valid",
        takeover.node,
        takeover.term
    );
    ensure!(
        takeover.at >= expiry,
        "new leader at +{:.0} ms, before the old lease expired at +{:.0} ms",
        ms(takeover.at - parted),
        ms(expiry - parted)
    );

    // A write acknowledged by the new leader; the old leader must never serve the old value.
    let new = cluster.wait_for_leader_among(&majority, wait).await?;
    let new_lease = leases.get(new)?;
    lease_put(&cluster, &new_lease, new, 1, 2).await?;
    ensure!(
        old_lease.try_read_fast(|| ()).is_err(),
        "the deposed leader's fast path is open after the new leader's write"
    );
    match lease_get(&cluster, &old_lease, old, 1).await? {
        Ok(read) => ensure!(
            read.value.map(|v| v.value) == Some(2),
            "stale read on the deposed leader via {:?}: {:?}",
            read.path,
            read.value
        ),
        Err(err) => println!(
            "{}: read on the deposed leader failed as it should: {err}",
            B::NAME
        ),
    }
    drop(sentinel);
    cluster.heal();
    leases.shutdown().await
}
