//! The lease is not even a little too long: with the smallest safety margin the lease layer
//! accepts, a leader cut off right after a quorum acknowledgement stops serving local reads
//! before the others can elect a leader and commit, even when they do so at the earliest
//! instant the engine permits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kv_lease::{Lease, LeaseConfig};
use raftengine::sim::LinkFaults;
use tokio::time::Instant;

use super::lease::{MS, lease_put, ms, wait_fast_read};
use crate::harness::{Backend, ClusterSpec, Failure, Harness};
use crate::{ensure, fail};

/// Delay of acknowledgements (follower to leader). Everything else travels in 1 ms, so the
/// followers can elect and commit quickly, while a lease anchored when an acknowledgement or a
/// round *arrives* instead of when it was sent is this much too long, and shows.
const ACK_DELAY: Duration = Duration::from_millis(20);

/// Fine-grained timing (10 ms heartbeats, 60–70 ms elections) keeps the engine's own rounding
/// small next to the 20 ms acknowledgement delay. The leader writes through its lease continuously (so rounds as
/// well as acknowledgements extend it); its messages to the followers are cut; the acknowledgements in flight still arrive and renew the lease;
/// the followers campaign about as soon as the engine lets them; a writer
/// commits on the new leader at once; the old leader is read on its fast path every virtual
/// millisecond. No fast read may return the old value after the new one is acknowledged.
/// Prints how close the last fast read came to the new leader's first commit.
pub async fn lease_ends_before_the_earliest_new_leader_commits<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let spec = ClusterSpec::new(3).with_config(|config| {
        config.heartbeat_interval = 10 * MS;
        config.election_timeout_min = 60 * MS;
        config.election_timeout_max = 70 * MS;
    });
    let cluster = h.cluster_with(spec, h.seed()).await?;
    cluster.net().set_default_faults(LinkFaults {
        delay: MS,
        ..LinkFaults::default()
    });
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    for follower in cluster.others(old) {
        cluster.net().set_link(
            follower,
            old,
            LinkFaults {
                delay: ACK_DELAY,
                ..LinkFaults::default()
            },
        );
    }
    let engine = cluster.engine(old)?;
    let smallest = LeaseConfig {
        safety_margin: Duration::from_nanos(1),
        ..LeaseConfig::default()
    };
    let lease = Lease::new(Arc::clone(&engine), smallest)
        .map_err(|err| Failure::new(format!("the smallest safety margin was refused: {err}")))?;
    lease_put(&cluster, &lease, old, 1, 1).await?;
    wait_fast_read(&cluster, &lease, old, 1).await?;

    // Writes through the lease keep extending it from rounds, until the cut.
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let proposing = Arc::new(tokio::sync::Notify::new());
    let old_writer = {
        let (lease, writing, proposing) =
            (lease.clone(), Arc::clone(&writing), Arc::clone(&proposing));
        tokio::spawn(async move {
            let mut value = 100;
            while writing.load(Ordering::Acquire) {
                value += 1;
                let command = crate::sm::Command::Put { key: 2, value };
                proposing.notify_one();
                let _ = lease.propose(command.encode()).await;
            }
        })
    };
    // The followers stop hearing the leader now, but the acknowledgements already on their
    // way still arrive and renew the lease (anchored at their send times, all before the cut);
    // only then is the leader deaf too, before anyone can campaign.
    let majority = cluster.others(old);
    tokio::time::sleep(cluster.config().heartbeat_interval * 3).await;
    // Right after a proposal's entry has reached the followers: the round it belongs to ends
    // (and extends the lease) a full acknowledgement delay after the followers last heard.
    proposing.notified().await;
    tokio::time::sleep(2 * MS).await;
    for &follower in &majority {
        cluster.partition_one_way(old, follower);
    }
    let parted = Instant::now();
    writing.store(false, Ordering::Release);
    tokio::time::sleep(ACK_DELAY + 2 * MS).await;
    for &follower in &majority {
        cluster.partition_one_way(follower, old);
    }

    let acked_at = Arc::new(AtomicU64::new(u64::MAX));
    let writer = {
        let (cluster, acked_at, majority) = (cluster.clone(), Arc::clone(&acked_at), majority);
        tokio::spawn(async move {
            let give_up = Instant::now() + 10 * cluster.config().election_timeout_max;
            while Instant::now() < give_up {
                let leader = cluster
                    .statuses()
                    .into_iter()
                    .find(|(id, s)| majority.contains(id) && s.role == raftengine::Role::Leader)
                    .map(|(id, _)| id);
                if let Some(leader) = leader
                    && let Ok(Ok(_)) = cluster.put(leader, 1, 2).await
                {
                    let at = Instant::now().saturating_duration_since(parted);
                    acked_at.store(at.as_micros() as u64, Ordering::Release);
                    return;
                }
                tokio::time::sleep(MS).await;
            }
        })
    };

    let sm = cluster.state_machine(old)?;
    let horizon = lease.duration() + 4 * cluster.config().election_timeout_max;
    let (mut last_fast, mut stale) = (None, 0u32);
    while Instant::now() < parted + horizon {
        let acked = acked_at.load(Ordering::Acquire);
        let before = Instant::now().saturating_duration_since(parted);
        if let Ok(value) = lease.try_read_fast(|| sm.read(|sm| sm.get(1))) {
            last_fast = Some(before);
            if acked != u64::MAX
                && before.as_micros() as u64 >= acked
                && value.is_some_and(|v| v.value == 1)
            {
                stale += 1;
            }
        }
        tokio::time::sleep(MS).await;
    }
    cluster
        .bounded("the old leader's writer", old_writer)
        .await?
        .map_err(|err| Failure::new(format!("writer task panicked: {err}")))?;
    cluster
        .bounded("the new leader's writer", writer)
        .await?
        .map_err(|err| Failure::new(format!("writer task panicked: {err}")))?;
    let acked = acked_at.load(Ordering::Acquire);
    let acked = (acked != u64::MAX).then(|| Duration::from_micros(acked));
    println!(
        "{}: lease {:.1} ms (margin 1 ns, window {:?}); cut off at 0; last fast read +{}; new \
         leader's write acked +{}",
        B::NAME,
        ms(lease.duration()),
        engine.timing().vote_refusal_window,
        last_fast.map_or("-".into(), |d| format!("{:.0} ms", ms(d))),
        acked.map_or("never".into(), |d| format!("{:.0} ms", ms(d))),
    );
    if stale > 0 {
        fail!(
            "{stale} fast reads on the cut-off leader returned the old value after the new \
             leader acknowledged the new one"
        );
    }
    ensure!(
        acked.is_some(),
        "the majority never committed: the schedule proves nothing"
    );
    lease.shutdown().await;
    cluster.shutdown().await
}
