//! One run per backend: clients against a cluster (3 nodes by default), with (in the demo) a leadership
//! transfer and a leader crash in the middle, then the correctness checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use kv_lease::{LeaseConfig, LeaseStats};

use crate::cli::Options;
use crate::cluster::{Backend, Cluster, ELECTION_LIMIT, Storage};
use crate::failover;
use crate::report::{BackendReport, Check};
use crate::workload::{self, ClientTotals, Mix, Router, serial_of};

/// Whether the run injects a transfer and a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Events {
    /// Steady state only (bench).
    None,
    /// A leadership transfer at 35% and a leader crash at 65% of the run (demo).
    TransferAndCrash,
}

/// Runs the workload on `backend` and checks the outcome.
pub async fn run(
    backend: Backend,
    options: &Options,
    events: Events,
) -> Result<BackendReport, String> {
    let (mut cluster, storage) = start_cluster(backend, options).await?;
    cluster
        .wait_for_leader(ELECTION_LIMIT)
        .await
        .ok_or_else(|| format!("{}: no leader within {ELECTION_LIMIT:?}", backend.name()))?;

    let router = Arc::new(Router::default());
    router.set_nodes(cluster.nodes().map(|(id, node)| (id, node.clone())));
    let stop = Arc::new(AtomicBool::new(false));
    let mix = Mix {
        read_ratio: options.read_ratio,
        lease_read_share: 0.8,
        cas_share: 0.5,
        conflict_rate: options.conflict_rate,
        value_size: options.value_size,
    };
    let clients = tokio::spawn(workload::run_clients(
        Arc::clone(&router),
        options.clients,
        mix,
        options.seed,
        Arc::clone(&stop),
    ));

    let syncs_before = cluster.disk_syncs();
    let started = Instant::now();
    let at = |fraction: f64| started + options.duration.mul_f64(fraction);
    let mut checks = Vec::new();
    let mut transfer_ms = None;
    let mut failover_ms = None;

    // The conflict-storm window: after warm-up, before any leadership change.
    tokio::time::sleep_until(at(0.1).into()).await;
    let storm_start = cluster.lease_stats();
    tokio::time::sleep_until(at(0.35).into()).await;
    let storm = cluster.lease_stats().since(&storm_start);
    checks.push(storm_check(&storm, options.conflict_rate));

    if events == Events::TransferAndCrash {
        transfer_ms = Some(transfer(&cluster, &router).await?);
        tokio::time::sleep_until(at(0.65).into()).await;
        failover_ms = Some(failover::crash_leader(&mut cluster, &router).await?);
    }

    tokio::time::sleep_until(at(1.0).into()).await;
    stop.store(true, Ordering::Relaxed);
    let totals = clients
        .await
        .map_err(|e| format!("client task failed: {e}"))?;
    let syncs = cluster.disk_syncs() - syncs_before;

    checks.push(durability_check(&cluster, &totals).await);
    checks.push(match cluster.converged(ELECTION_LIMIT).await {
        Ok(index) => Check {
            name: "replicas converged".into(),
            passed: true,
            detail: format!("every node applied index {index} with equal data"),
        },
        Err(problem) => Check {
            name: "replicas converged".into(),
            passed: false,
            detail: problem,
        },
    });
    let stats = cluster.lease_stats();
    cluster.shutdown().await;

    let elapsed = options.duration.as_secs_f64();
    Ok(BackendReport {
        backend: backend.name().into(),
        storage: storage.name().into(),
        fsync_floor: None,
        store_floor: None,
        fsyncs_per_write: (storage != Storage::Memory)
            .then(|| syncs as f64 / totals.writes_ok.max(1) as f64),
        write_throughput: totals.writes_ok as f64 / elapsed,
        commit_latency: totals.commit.summary(),
        lease_read_latency: totals.lease_reads.summary(),
        lease_fast_path_latency: totals.fast_reads.summary(),
        linearizable_read_latency: totals.linearizable_reads.summary(),
        lease_hit_rate: stats.hit_rate(),
        write_conflicts: totals.conflicts,
        transfer_ms,
        failover_ms,
        failover: None,
        errors: totals.errors,
        checks,
        overhead: Vec::new(),
    })
}

/// Starts the cluster `options` describe (size, round trip, seed, log store) with default
/// leases; returns it with its storage.
pub async fn start_cluster(
    backend: Backend,
    options: &Options,
) -> Result<(Cluster, Storage), String> {
    let storage = options
        .data_dir
        .clone()
        .map_or(Storage::Memory, Storage::Redb);
    let cluster = Cluster::start(
        backend,
        options.nodes,
        options.rtt,
        options.seed,
        LeaseConfig::default(),
        &storage,
    )
    .await
    .map_err(|e| format!("{}: starting the cluster: {e}", backend.name()))?;
    Ok((cluster, storage))
}

/// The seed bug's acceptance test: conflicts must not cost the lease its fast path.
fn storm_check(storm: &LeaseStats, conflict_rate: f64) -> Check {
    let reads = storm.hits + storm.misses();
    Check {
        name: "lease stays warm in the conflict storm".into(),
        passed: reads == 0 || storm.hit_rate() >= 0.99,
        detail: format!(
            "{:.2}% of {reads} lease reads on the fast path with {:.0}% of conditional writes \
             conflicting; {} reads fell back to a quorum round, {} invalidations",
            storm.hit_rate() * 100.0,
            conflict_rate * 100.0,
            storm.misses(),
            storm.invalidations()
        ),
    }
}

async fn transfer(cluster: &Cluster, router: &Router) -> Result<f64, String> {
    let leader = cluster.leader().ok_or("no leader to transfer from")?;
    let target = cluster
        .nodes()
        .map(|(id, _)| id)
        .find(|&id| id != leader)
        .ok_or("no transfer target")?;
    let node = cluster.node(leader).ok_or("leader vanished")?;
    let began = Instant::now();
    node.kv
        .lease()
        .transfer_leadership(Some(target))
        .await
        .map_err(|e| format!("transfer {leader} -> {target} failed: {e}"))?;
    router.refresh();
    Ok(began.elapsed().as_secs_f64() * 1e3)
}

/// Every acknowledged put must still be there (or a later write of the same client).
async fn durability_check(cluster: &Cluster, totals: &ClientTotals) -> Check {
    let name = "every acknowledged write is readable at the end".to_string();
    let Some(leader) = cluster.wait_for_leader(ELECTION_LIMIT).await else {
        return Check {
            name,
            passed: false,
            detail: "no leader to read from".into(),
        };
    };
    let Some(node) = cluster.node(leader) else {
        return Check {
            name,
            passed: false,
            detail: "leader vanished".into(),
        };
    };
    let mut lost = Vec::new();
    for (key, acked) in &totals.acked {
        match node.kv.get_linearizable(key).await {
            Ok(Some(value)) if serial_of(&value).is_some_and(|serial| serial >= *acked) => {}
            Ok(other) => lost.push(format!(
                "{}: acked serial {acked}, found {:?}",
                String::from_utf8_lossy(key),
                other.as_deref().and_then(serial_of)
            )),
            Err(e) => lost.push(format!(
                "{}: read failed: {e}",
                String::from_utf8_lossy(key)
            )),
        }
    }
    Check {
        passed: lost.is_empty(),
        detail: if lost.is_empty() {
            format!(
                "{} client keys checked by linearizable read",
                totals.acked.len()
            )
        } else {
            lost.join("; ")
        },
        name,
    }
}
