//! 5. After an aborted transfer, no lease for the rest of that term.

use super::*;

/// A transfer to an isolated node aborts. At the abort the lease is invalid, an
/// acknowledgement sent before the abort does not renew it, the first read after it is slow,
/// no lease is held again in the transfer's term, and one held in a later term is anchored
/// after the abort.
pub async fn no_lease_for_rest_of_term_after_aborted_transfer<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let (leader, mut leases, lease) = warm_leader(&cluster).await?;
    let engine = cluster.engine(leader)?;
    let clock = engine.clock();
    let target = cluster.others(leader)[0];
    cluster.isolate(target);
    let started = clock.now();
    let outcome = cluster
        .bounded(
            format!("transfer_leadership({target}) through the lease"),
            lease.transfer_leadership(Some(target)),
        )
        .await?;
    let aborted = clock.now();
    println!(
        "{}: transfer to isolated node {target} ended after {:.0} ms: {outcome:?}",
        B::NAME,
        ms(aborted - started)
    );
    ensure!(
        outcome.is_err(),
        "a transfer to an isolated node succeeded: {outcome:?}"
    );
    // The instant the transfer ends, nothing acknowledged after it exists yet: an
    // acknowledgement the engine still reports from before the abort must not grant a lease.
    let ack = engine.quorum_ack();
    let renewed = lease.renew_from_ack();
    println!(
        "{}: at the abort the engine reports {ack:?} (sent {} the abort); renewed from it: \
         {renewed}",
        B::NAME,
        match ack {
            Some(ack) if ack.sent_at <= aborted => "before",
            Some(_) => "after",
            None => "-",
        }
    );
    ensure!(!renewed, "a pre-abort acknowledgement renewed the lease");
    ensure!(lease.check().is_err(), "the lease is valid at the abort");
    let duration = lease.duration();
    let first = lease_get(&cluster, &lease, leader, 1).await?;
    println!("{}: first read after the abort: {first:?}", B::NAME);
    if let Ok(read) = &first {
        ensure!(
            read.path == kv_lease::ReadPath::Slow,
            "the first read after an aborted transfer was served on the fast path"
        );
    }
    // For the rest of the transfer's term this node holds no lease at all (a late trigger
    // message could still start the target's forced election); a later term may lead afresh,
    // and then any lease is anchored after the abort.
    let transfer_term = engine.status().term;
    let mut fast = 0;
    for _ in 0..1000 {
        // The engine itself offers no acknowledgement in that term either: the lease layer
        // is not the only guard (`Engine::quorum_ack`).
        let status = engine.status();
        let leading_in_transfer_term = status.term == transfer_term && status.role == Role::Leader;
        if let (true, Some(ack)) = (leading_in_transfer_term, engine.quorum_ack()) {
            fail!(
                "node {leader} offers {ack:?} in term {transfer_term}, after a transfer it \
                 started in that term was aborted"
            );
        }
        if lease.check().is_ok() {
            fast += 1;
            let term = engine.status().term;
            ensure!(
                term != transfer_term,
                "a lease in term {term}, after a transfer in that term was aborted"
            );
            let Some(expiry) = lease.state().expires_at() else {
                fail!("a valid lease without an expiry");
            };
            ensure!(
                expiry + MS >= aborted + duration,
                "a lease anchored before the abort: it expires +{:.0} ms after it",
                ms(expiry.saturating_duration_since(aborted))
            );
        }
        tokio::time::sleep(MS).await;
    }
    let after = engine.status();
    println!(
        "{}: lease valid for {fast} of the 1000 ms after the abort; node {leader} is now {:?} \
         in term {}",
        B::NAME,
        after.role,
        after.term
    );
    cluster.heal();
    let mut leader = cluster.wait_for_leader(wait).await?;
    if status(&cluster, leader)?.term == transfer_term {
        // Still the same term: a successful transfer starts a new one, whose leader may hold
        // a lease again.
        // Not the node that was isolated: it may still be catching up.
        let next = cluster
            .others(leader)
            .into_iter()
            .find(|&id| id != target)
            .unwrap_or(target);
        let handed = cluster.transfer(Some(next)).await?;
        ensure!(
            handed.is_ok(),
            "a transfer to a healthy node failed after heal: {handed:?}"
        );
        leader = cluster.wait_for_leader(wait).await?;
    }
    let lease = leases.get(leader)?;
    wait_fast_read(&cluster, &lease, leader, 1).await?;
    leases.shutdown().await
}
