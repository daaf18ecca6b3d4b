//! 3. No lease read during a transfer.

use super::*;

/// While a leadership transfer runs (started on the engine directly, so the lease layer learns
/// of it only from the status), the fast path refuses every read; full reads are served on the
/// slow path or not at all.
pub async fn no_lease_read_during_transfer<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
    let mut leases = Leases::on_all(&cluster)?;
    let lease = leases.get(leader)?;
    let engine = cluster.engine(leader)?;
    lease_put(&cluster, &lease, leader, 1, 1).await?;
    wait_fast_read(&cluster, &lease, leader, 1).await?;
    let target = cluster.others(leader)[0];
    // Hold the leader's messages to the target: the transfer stays in progress.
    cluster.net().hold(leader, target);
    let transfer = {
        let cluster = cluster.clone();
        tokio::spawn(async move { cluster.transfer(Some(target)).await })
    };
    ensure!(
        eventually(Duration::from_secs(1), || engine.status().transferring_to
            == Some(target))
        .await,
        "the transfer to {target} never showed in the status: {}",
        cluster.describe()
    );
    let (mut observed, mut reads) = (0, 0);
    for _ in 0..100 {
        if engine.status().transferring_to.is_none() {
            break;
        }
        observed += 1;
        ensure!(
            lease.check() == Err(MissReason::Transferring),
            "the fast path accepted a read during a transfer: {:?}",
            lease.check()
        );
        ensure!(lease.try_read_fast(|| ()).is_err(), "fast read in transfer");
        if observed % 20 == 1 {
            // A full read: never on the fast path (it may be slow, fail, or time out here).
            if let Ok(Ok(Ok(read))) =
                tokio::time::timeout(5 * MS, lease_get(&cluster, &lease, leader, 1)).await
            {
                ensure!(
                    read.path == kv_lease::ReadPath::Slow,
                    "a lease read during a transfer was served on the fast path"
                );
                reads += 1;
            }
        }
        tokio::time::sleep(MS).await;
    }
    println!(
        "{}: transfer to {target} observed running for {observed} ms; fast path refused \
         throughout ({reads} slow reads served)",
        B::NAME
    );
    ensure!(
        observed >= 20,
        "the transfer ended too early ({observed} ms)"
    );
    cluster.net().release(leader, target);
    let outcome = cluster
        .bounded("transfer task", transfer)
        .await?
        .map_err(|err| Failure::new(format!("transfer task panicked: {err}")))??;
    println!("{}: transfer outcome after release: {outcome:?}", B::NAME);
    if outcome.is_ok() {
        ensure!(
            lease.check().is_err(),
            "the old leader still serves fast reads after handing over"
        );
        let new = cluster
            .wait_for_leader_among(&[target], cluster.election_wait())
            .await?;
        let new_lease = leases.get(new)?;
        wait_fast_read(&cluster, &new_lease, new, 1).await?;
    }
    leases.shutdown().await
}
