//! 4. No lease read on a new leader before its term's first entry is applied.

use super::*;

/// A new leader whose term's first entry cannot commit (everything it sends is held from the
/// instant it leads) must refuse the fast path throughout, even if a quorum acknowledged it.
pub async fn no_lease_read_before_new_term_applied<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    // Delay on every link so the new leader's first entry is in flight for a while.
    cluster.net().set_default_faults(LinkFaults {
        delay: 2 * MS,
        ..LinkFaults::default()
    });
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    let old_term = status(&cluster, old)?.term;
    cluster.put(old, 1, 1).await?.map_err(|err| {
        Failure::new(format!("put on the leader failed without any fault: {err}"))
    })?;
    let rest = cluster.others(old);
    let mut leases = Leases::new(&cluster);
    for &id in &rest {
        leases.get(id)?;
    }
    cluster.crash(old).await?;

    // The instant a node leads, hold everything it sends: its term's first entry cannot commit.
    let ids = cluster.ids();
    let mut watchers = Vec::new();
    for &id in &rest {
        let engine = cluster.engine(id)?;
        let (cluster, ids) = (cluster.clone(), ids.clone());
        watchers.push(tokio::spawn(async move {
            let mut status = engine.watch_status();
            let leading = status
                .wait_for(|s| s.role == Role::Leader && s.term > old_term)
                .await
                .map(|s| (s.id, s.term, s.applied_term))
                .ok();
            if let Some((id, _, _)) = leading {
                for &peer in ids.iter().filter(|&&p| p != id) {
                    cluster.net().hold(id, peer);
                }
            }
            leading
        }));
    }
    let deadline = Instant::now() + wait;
    let found = loop {
        if let Some(found) = watchers.iter().position(|w| w.is_finished()) {
            break watchers.remove(found).await;
        }
        ensure!(
            Instant::now() < deadline,
            "no new leader within {wait:?}: {}",
            cluster.describe()
        );
        tokio::time::sleep(MS).await;
    };
    for watcher in watchers {
        watcher.abort();
    }
    let Ok(Some((new, term, applied_term))) = found else {
        fail!("the status watcher ended without a leader: {found:?}");
    };
    ensure!(
        applied_term < term,
        "node {new} applied its term's entry before anyone saw it lead"
    );
    let (lease, engine) = (leases.get(new)?, cluster.engine(new)?);
    let mut unapplied = 0;
    let mut acked_in_window = false;
    for i in 0..150 {
        let status = engine.status();
        if status.role != Role::Leader || status.applied_term == status.term {
            break;
        }
        unapplied += 1;
        acked_in_window |= engine.quorum_ack().is_some();
        ensure!(
            lease.check().is_err(),
            "node {new} leads term {} with applied term {} and its fast path is open",
            status.term,
            status.applied_term
        );
        ensure!(
            lease.try_read_fast(|| ()).is_err(),
            "fast read before apply"
        );
        if i % 50 == 0
            && let Ok(Ok(Ok(read))) =
                tokio::time::timeout(5 * MS, lease_get(&cluster, &lease, new, 1)).await
        {
            ensure!(
                read.path == kv_lease::ReadPath::Slow,
                "a read before the new term's first entry applied was served on the fast path"
            );
        }
        tokio::time::sleep(MS).await;
    }
    println!(
        "{}: node {new} led term {term} for {unapplied} ms before applying an entry of it; fast \
         path refused throughout ({:?}; a quorum ack of the term existed: {acked_in_window})",
        B::NAME,
        lease.check()
    );
    ensure!(
        unapplied >= 100,
        "the window before the first entry applied was not observed ({unapplied} ms)"
    );
    for &peer in ids.iter().filter(|&&p| p != new) {
        cluster.net().release(new, peer);
    }
    cluster.restart(old).await?;
    let leader = cluster.wait_for_leader(wait).await?;
    let lease = leases.get(leader)?;
    match lease_get(&cluster, &lease, leader, 1).await? {
        Ok(read) => ensure!(
            read.value.map(|v| v.value) == Some(1),
            "read after the release returned {:?}",
            read.value
        ),
        Err(err) => fail!("read on the ready leader {leader} failed: {err}"),
    }
    wait_fast_read(&cluster, &lease, leader, 1).await?;
    leases.shutdown().await
}
