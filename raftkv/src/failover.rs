//! Leader failover, timed: crash the leader, measure until a new leader acknowledges a write,
//! restart the crashed node on its own log, repeat.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::cli::Options;
use crate::cluster::{Backend, Cluster, ELECTION_LIMIT};
use crate::workload::Router;

/// Crash-to-first-write times over a series of leader crashes.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverStats {
    /// Leader crashes timed.
    pub crashes: usize,
    /// Median crash-to-first-acknowledged-write, in ms.
    pub p50_ms: f64,
    /// Slowest crash-to-first-acknowledged-write, in ms.
    pub max_ms: f64,
    /// Every sample, in crash order, in ms.
    pub samples_ms: Vec<f64>,
    /// The engines' largest randomized election timeout, in ms: the yardstick for the figures.
    pub election_timeout_max_ms: f64,
}

impl FailoverStats {
    fn from_samples(samples_ms: Vec<f64>, election_timeout_max: Duration) -> Self {
        let mut sorted = samples_ms.clone();
        sorted.sort_by(f64::total_cmp);
        let p50_ms = sorted.get(sorted.len().saturating_sub(1) / 2).copied();
        Self {
            crashes: samples_ms.len(),
            p50_ms: p50_ms.unwrap_or(0.0),
            max_ms: sorted.last().copied().unwrap_or(0.0),
            samples_ms,
            election_timeout_max_ms: election_timeout_max.as_secs_f64() * 1e3,
        }
    }
}

/// Crashes the leader `options.crashes` times on a fresh cluster of `backend`, with no other
/// load. Each crash comes at a seeded random moment within a heartbeat interval of the last
/// write, so the samples cover every phase of the heartbeat cycle.
pub async fn measure(backend: Backend, options: &Options) -> Result<FailoverStats, String> {
    let (mut cluster, _) = crate::demo::start_cluster(backend, options).await?;
    let router = Router::default();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut samples = Vec::with_capacity(options.crashes);
    let mut timing = None;
    let outcome = async {
        for crash in 0..options.crashes {
            let leader = cluster
                .wait_for_leader(ELECTION_LIMIT)
                .await
                .ok_or_else(|| format!("crash {crash}: no leader within {ELECTION_LIMIT:?}"))?;
            let node = cluster.node(leader).ok_or("leader vanished")?;
            let heartbeat = node.engine.timing().heartbeat_interval;
            timing.get_or_insert(node.engine.timing());
            // Every node must hold the whole log before the next crash, or the next election
            // waits on a lagging node and measures the previous restart instead.
            cluster.converged(ELECTION_LIMIT).await?;
            router.set_nodes(cluster.nodes().map(|(id, node)| (id, node.clone())));
            let jitter = rng.gen_range(Duration::ZERO..heartbeat.max(Duration::from_millis(1)));
            tokio::time::sleep(jitter).await;
            samples.push(crash_leader(&mut cluster, &router).await?);
        }
        Ok::<_, String>(())
    }
    .await;
    cluster.shutdown().await;
    outcome?;
    let timing = timing.ok_or("no crash was timed")?;
    Ok(FailoverStats::from_samples(
        samples,
        timing.election_timeout_max,
    ))
}

/// Crashes the leader, measures the time to the first write a new leader accepts, then
/// restarts the crashed node on its surviving store. Returns the time in ms.
pub async fn crash_leader(cluster: &mut Cluster, router: &Router) -> Result<f64, String> {
    let leader = cluster.leader().ok_or("no leader to crash")?;
    let began = Instant::now();
    cluster.crash(leader).await;
    router.set_nodes(cluster.nodes().map(|(id, node)| (id, node.clone())));
    let deadline = began + ELECTION_LIMIT;
    let failover = loop {
        if Instant::now() > deadline {
            return Err(format!(
                "no write succeeded within {ELECTION_LIMIT:?} of the crash"
            ));
        }
        router.refresh();
        if let Some(node) = router.leader()
            && node
                .kv
                .put(
                    Bytes::from_static(b"failover-probe"),
                    Bytes::from_static(b"1"),
                )
                .await
                .is_ok()
        {
            break began.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    cluster
        .restart(leader)
        .await
        .map_err(|e| format!("restarting node {leader} failed: {e}"))?;
    router.set_nodes(cluster.nodes().map(|(id, node)| (id, node.clone())));
    Ok(failover.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_max_come_from_the_samples() {
        let stats = FailoverStats::from_samples(
            vec![900.0, 300.0, 600.0, 1200.0],
            Duration::from_millis(600),
        );
        assert_eq!(stats.crashes, 4);
        assert_eq!(stats.p50_ms, 600.0);
        assert_eq!(stats.max_ms, 1200.0);
        assert_eq!(stats.samples_ms, vec![900.0, 300.0, 600.0, 1200.0]);
        assert_eq!(stats.election_timeout_max_ms, 600.0);
    }
}
