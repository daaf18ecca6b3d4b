//! Replay: the suite promises that `SEED=<n>` replays a failing schedule. That holds only if
//! the engine's own randomness (election timeouts) comes from its `Config::seed`.

use tokio::time::Instant;

use crate::ensure;
use crate::harness::{Backend, ClusterSpec, Failure, Harness};

/// What one run of the probe schedule observed, in virtual time.
async fn probe<B: Backend>(h: &Harness<B>, seed: u64) -> Result<Vec<String>, Failure> {
    let cluster = h.cluster_with(ClusterSpec::new(3), seed).await?;
    let wait = cluster.election_wait();
    let started = Instant::now();
    let mut trace = Vec::new();
    for round in 0..3 {
        let leader = cluster.wait_for_leader(wait).await?;
        let status = cluster.engine(leader)?.status();
        trace.push(format!(
            "round {round}: node {leader} leads term {} at +{} µs",
            status.term,
            started.elapsed().as_micros()
        ));
        cluster.put(leader, round, round).await?.map_err(|err| {
            Failure::new(format!(
                "write on the leader of round {round} failed: {err}"
            ))
        })?;
        // Depose it: the others elect after their own randomized timeouts.
        cluster.isolate(leader);
        let rest: Vec<_> = cluster
            .ids()
            .into_iter()
            .filter(|&id| id != leader)
            .collect();
        cluster.wait_for_leader_among(&rest, wait).await?;
        cluster.heal();
    }
    cluster.shutdown().await?;
    Ok(trace)
}

/// The same seed, run twice in one process, elects the same leaders in the same terms at the
/// same virtual instants.
pub async fn a_seed_replays_the_same_schedule<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let first = probe(h, h.seed()).await?;
    let second = probe(h, h.seed()).await?;
    println!("{}: {}", B::NAME, first.join("; "));
    ensure!(
        first == second,
        "seed {} did not replay: first run {first:?}, second run {second:?}",
        h.seed()
    );
    Ok(())
}
