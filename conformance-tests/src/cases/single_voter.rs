//! A single-voter group proves its own leadership: its lease renews from `quorum_ack()` like
//! any other, without quorum rounds.

use kv_lease::ReadPath;

use super::lease::{lease_get, warm_leader};
use crate::ensure;
use crate::harness::{Backend, Failure, Harness};

/// One voter, no traffic after a first write: the background task keeps the lease alive from
/// the engine's acknowledgement alone, on the paused clock and on a real one (where the
/// acknowledgement must not postdate the clock sample the lease layer compares it with).
pub async fn single_voter_lease_renews_from_acks<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(1).await?;
    let (leader, leases, lease) = warm_leader(&cluster).await?;
    let before = lease.stats();
    // Three lease lengths with no traffic of ours: only acknowledgements can keep it.
    tokio::time::sleep(3 * lease.duration()).await;
    let after = lease.stats();
    let read = lease_get(&cluster, &lease, leader, 1)
        .await?
        .map_err(|err| Failure::new(format!("a read on the single voter failed: {err}")))?;
    println!(
        "{}: a single voter renewed its lease {} times from acknowledgements in {:?}; the next \
         read took the {:?} path",
        B::NAME,
        after.ack_renewals - before.ack_renewals,
        3 * lease.duration(),
        read.path
    );
    ensure!(
        after.ack_renewals > before.ack_renewals,
        "a single voter never renewed its lease from quorum_ack()"
    );
    ensure!(
        read.path == ReadPath::Fast,
        "a single voter's lease lapsed without traffic"
    );
    leases.shutdown().await
}
