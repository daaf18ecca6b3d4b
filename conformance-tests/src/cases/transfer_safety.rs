//! Lease safety around leadership transfers: a transfer's forced election ignores the
//! followers' vote refusal, so a lease may never rest on acknowledgements that a transfer
//! started in the same term can undercut.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use raftengine::Role;
use tokio::time::Instant;

use super::lease::{MS, ms, status, warm_leader};
use crate::harness::{Backend, Failure, Harness};
use crate::sm::Versioned;
use crate::{ensure, fail};

/// A transfer whose message to the target is delayed past the transfer's abort must not let
/// the old leader serve the old value once the target, woken by that late message, has won
/// and committed a newer one.
///
/// The leader's link to the target is held, so the transfer aborts; the leader keeps hearing
/// from the other follower, which may renew its lease; then the leader is cut off from
/// everything it would hear from, and the held messages (with the transfer's trigger among
/// them) reach the target. The old leader is read on its fast path every virtual millisecond
/// while the others elect and commit: once the new value is acknowledged, an old value read
/// there is stale.
pub async fn no_stale_lease_read_after_aborted_transfer<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let (old, leases, lease) = warm_leader(&cluster).await?;
    let old_term = status(&cluster, old)?.term;
    let rest = cluster.others(old);
    let (target, other) = (rest[0], rest[1]);
    let heartbeat = cluster.config().heartbeat_interval;

    // Heartbeats queue on the held link first, so the target, whatever state its own timer put
    // it in, hears from the leader again before the transfer's trigger reaches it.
    cluster.net().hold(old, target);
    tokio::time::sleep(2 * heartbeat).await;
    let outcome = cluster
        .bounded(
            format!("transfer_leadership({target}) over a held link"),
            lease.transfer_leadership(Some(target)),
        )
        .await?;
    let engine = cluster.engine(old)?;
    let after_abort = engine.status();
    println!(
        "{}: transfer to {target} over a held link: {outcome:?}; node {old} is {:?} in term {}",
        B::NAME,
        after_abort.role,
        after_abort.term
    );
    if outcome.is_ok() || after_abort.role != Role::Leader || after_abort.term != old_term {
        // The engine handed over or lost leadership some other way: nothing aborted to probe.
        println!("{}: no aborted transfer to probe", B::NAME);
        return leases.shutdown().await;
    }
    // Acknowledgements from the other follower keep arriving; give them time to renew.
    tokio::time::sleep(4 * heartbeat).await;
    let renewed = lease.check();
    println!(
        "{}: lease after the abort, with {other} acknowledging: {renewed:?}",
        B::NAME
    );

    // The old leader hears nothing more; the target gets everything that was held.
    cluster.partition_one_way(target, old);
    cluster.partition_one_way(other, old);
    cluster.net().release(old, target);
    let released = Instant::now();

    let acked_at = Arc::new(AtomicU64::new(u64::MAX));
    let writer = {
        let (cluster, acked_at) = (cluster.clone(), Arc::clone(&acked_at));
        tokio::spawn(async move {
            let new = cluster
                .wait_for_leader_among(&[target, other], cluster.election_wait())
                .await?;
            match cluster.put(new, 1, 2).await? {
                Ok(_) => {
                    let at = Instant::now().saturating_duration_since(released);
                    acked_at.store(at.as_micros() as u64, Ordering::Release);
                    Ok::<_, Failure>(Some(new))
                }
                Err(_) => Ok(None),
            }
        })
    };

    let sm = cluster.state_machine(old)?;
    let horizon = lease.duration() + cluster.config().election_timeout_max;
    let (mut fast, mut stale) = (0u32, 0u32);
    while Instant::now() < released + horizon {
        let acked = acked_at.load(Ordering::Acquire);
        if let Ok(value) = lease.try_read_fast(|| sm.read(|sm| sm.get(1))) {
            fast += 1;
            let now = Instant::now().saturating_duration_since(released);
            if acked != u64::MAX && (now.as_micros() as u64) > acked && is_old(&value) {
                stale += 1;
                if stale == 1 {
                    println!(
                        "{}: stale fast read on node {old} {:.0} ms after node {:?} acked the \
                         newer value",
                        B::NAME,
                        ms(now) - acked as f64 / 1000.0,
                        cluster.leader()
                    );
                }
            }
        }
        tokio::time::sleep(MS).await;
    }
    let new = cluster
        .bounded("the new leader's write", writer)
        .await?
        .map_err(|err| Failure::new(format!("writer task panicked: {err}")))??;
    let acked = acked_at.load(Ordering::Acquire);
    println!(
        "{}: after the release, node {old} served {fast} fast reads; new leader {new:?} acked \
         the newer value {}; {stale} stale",
        B::NAME,
        if acked == u64::MAX {
            "never".to_owned()
        } else {
            format!("at +{:.0} ms", acked as f64 / 1000.0)
        }
    );
    if stale > 0 {
        fail!(
            "node {old} served {stale} stale fast reads after a transfer it had aborted in \
             term {old_term} (lease after the abort: {renewed:?})"
        );
    }
    ensure!(
        lease.check().is_err() || engine.status().term != old_term,
        "node {old} still holds a lease in term {old_term} after another node committed"
    );
    cluster.heal();
    leases.shutdown().await
}

fn is_old(value: &Option<Versioned>) -> bool {
    value.as_ref().is_some_and(|v| v.value == 1)
}

/// A caller that gives up on `transfer_leadership` (a timeout or `select!` around it) must not
/// leave the node "transferring": once the cluster has settled, the node can lead again, shows
/// no transfer, and can hand leadership over on request.
pub async fn abandoned_transfer_leaves_no_transfer_behind<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    let rest = cluster.others(old);
    let (target, other) = (rest[0], rest[1]);
    let engine = cluster.engine(old)?;
    cluster.net().hold(old, target);
    let abandoned = tokio::time::timeout(20 * MS, engine.transfer_leadership(Some(target))).await;
    ensure!(
        abandoned.is_err(),
        "the transfer over a held link finished within 20 ms: {abandoned:?}"
    );
    cluster.net().release(old, target);
    // Let whatever the abandoned transfer set in motion play out.
    tokio::time::sleep(2 * cluster.config().election_timeout_max).await;
    let mut leader = cluster.wait_for_leader(wait).await?;
    if leader != old {
        let back = cluster.transfer(Some(old)).await?;
        ensure!(
            back.is_ok(),
            "handing leadership back to node {old} failed: {back:?}"
        );
        leader = cluster.wait_for_leader(wait).await?;
    }
    ensure!(
        leader == old,
        "node {old} does not lead after the hand-back (node {leader} does)"
    );
    let shown = engine.status().transferring_to;
    ensure!(
        shown.is_none(),
        "node {old} still shows a transfer to {shown:?} long after its caller gave up"
    );
    let handed = cluster.transfer(Some(other)).await?;
    println!(
        "{}: abandoned transfer to {target}; later transfer from node {old} to {other}: \
         {handed:?}",
        B::NAME
    );
    ensure!(
        handed.is_ok(),
        "node {old} could not transfer after an abandoned transfer: {handed:?}"
    );
    cluster.shutdown().await
}
