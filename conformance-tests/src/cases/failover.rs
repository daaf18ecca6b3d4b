//! How long a leader's crash stops writes: the time from the crash to the first write a new
//! leader acknowledges, against the engine's own election timeouts.

use std::time::Duration;

use tokio::time::Instant;

use crate::harness::{Backend, Failure, Harness};
use crate::{ensure, fail};

const KEY: u64 = 41;
const ROUNDS: u32 = 8;

/// After a leader's crash, a new leader accepts writes within the engine's timing: the median
/// over several crashes within one `election_timeout_max` (plus a heartbeat of slack), and
/// every crash within two. A follower's refusal window must therefore end before the timeouts
/// that start campaigns; a backend whose followers refuse every campaign before the longest
/// timeout needs a second campaign after most crashes and fails the median.
pub async fn failover_fits_the_election_timeout<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let mut took = Vec::new();
    let mut timing = None;
    for round in 0..ROUNDS {
        let (leader, _) = cluster
            .put_via_leader(KEY, u64::from(round), cluster.election_wait())
            .await?;
        let timing = *timing.get_or_insert(cluster.engine(leader)?.timing());
        // Let every follower hear the write's commit, then crash at a different phase of the
        // heartbeat cycle each round.
        tokio::time::sleep(timing.heartbeat_interval * 2).await;
        tokio::time::sleep(timing.heartbeat_interval * round / ROUNDS).await;
        cluster.crash(leader).await?;
        let crashed = Instant::now();
        let deadline = crashed + cluster.election_wait();
        loop {
            ensure!(
                Instant::now() < deadline,
                "round {round}: no write acknowledged within {:?} of node {leader}'s crash",
                cluster.election_wait()
            );
            if let Some(new) = cluster.leader()
                && cluster
                    .put(new, KEY, 1000 + u64::from(round))
                    .await?
                    .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let last = crashed.elapsed();
        took.push(last);
        cluster.restart(leader).await?;
        let max = timing.election_timeout_max;
        if last > max * 2 {
            fail!(
                "round {round}: the first write after node {leader}'s crash took {last:?}, more \
                 than twice election_timeout_max ({max:?}); all rounds so far: {took:?}"
            );
        }
    }
    let timing = timing.ok_or_else(|| Failure::new("no round ran"))?;
    let mut sorted = took.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let bound = timing.election_timeout_max + timing.heartbeat_interval;
    ensure!(
        median <= bound,
        "the median crash-to-write time was {median:?}, above election_timeout_max plus a \
         heartbeat ({bound:?}); rounds: {took:?}"
    );
    println!("crash to first write over {ROUNDS} crashes: median {median:?}, rounds {took:?}");
    cluster.check_election_safety()?;
    cluster.shutdown().await
}
