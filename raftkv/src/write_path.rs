//! The bare write path, measured three ways on memory: through the adapter (no lease layer),
//! and through each library driven directly with messages passed as structs or encoded.
//! `bench --baseline` turns these into overhead ratios; `bench --sweep --baseline` charts them
//! against the client count.

use std::sync::Arc;

use anyhow::Context as _;

use crate::baseline::{self, DirectCluster, Wire};
use crate::cli::{Options, WritePathSide};
use crate::cluster::{Backend, Cluster, ELECTION_LIMIT, Storage};
use crate::report::{Overhead, OverheadRound};
use crate::workload::{self, WriteRun};

/// Client counts of the `bench --baseline` overhead table: no batching, and heavy batching.
pub const OVERHEAD_CLIENTS: [usize; 2] = [1, 256];

/// Puts through the adapter's `Engine::propose` on a fresh memory cluster of
/// `options.nodes`, with `clients` closed-loop writers for `options.duration`.
pub async fn adapter_writes(
    backend: Backend,
    options: &Options,
    clients: usize,
) -> Result<WriteRun, String> {
    // No lease background tasks: the comparison is about the adapter, and the direct
    // baselines have no lease layer either.
    let bare = kv_lease::LeaseConfig {
        background: false,
        ..kv_lease::LeaseConfig::default()
    };
    let cluster = Cluster::start(
        backend,
        options.nodes,
        options.rtt,
        options.seed,
        bare,
        &Storage::Memory,
    )
    .await
    .map_err(|e| e.to_string())?;
    let Some(leader) = cluster.wait_for_leader(ELECTION_LIMIT).await else {
        cluster.shutdown().await;
        return Err(format!("no leader within {ELECTION_LIMIT:?}"));
    };
    let Some(node) = cluster.node(leader) else {
        cluster.shutdown().await;
        return Err("leader vanished".into());
    };
    let writer = Arc::new(workload::EngineWriter::new(
        Arc::clone(&node.engine),
        options.value_size,
    ));
    let run = workload::run_writes(writer, clients, options.duration).await;
    cluster.shutdown().await;
    Ok(run)
}

/// The same puts with the library driven directly (no adapter), on `options.nodes` voters.
pub async fn direct_writes(
    backend: Backend,
    options: &Options,
    clients: usize,
    wire: Wire,
) -> Result<WriteRun, String> {
    match backend {
        Backend::Openraft => {
            measure_direct::<baseline::DirectOpenraft>(options, clients, wire).await
        }
        Backend::RaftRs => measure_direct::<baseline::DirectRaftRs>(options, clients, wire).await,
    }
}

async fn measure_direct<C: DirectCluster>(
    options: &Options,
    clients: usize,
    wire: Wire,
) -> Result<WriteRun, String> {
    let direct =
        Arc::new(C::start(options.nodes, options.rtt / 2, options.value_size, wire).await?);
    let run = workload::run_writes(Arc::clone(&direct), clients, options.duration).await;
    if let Ok(direct) = Arc::try_unwrap(direct) {
        direct.shutdown().await;
    }
    Ok(run)
}

/// Puts through one side of the comparison, at `clients` for `options.duration`.
pub async fn side_writes(
    backend: Backend,
    side: WritePathSide,
    options: &Options,
    clients: usize,
) -> Result<WriteRun, String> {
    match side {
        WritePathSide::Adapter => adapter_writes(backend, options, clients).await,
        WritePathSide::Direct => direct_writes(backend, options, clients, Wire::Structs).await,
        WritePathSide::DirectEncoded => {
            direct_writes(backend, options, clients, Wire::Encoded).await
        }
    }
}

/// One side of the comparison alone, at `options.clients` for `options.duration`, as a line
/// of text: what `bench --write-path` prints.
pub async fn one_side(
    backend: Backend,
    side: WritePathSide,
    options: &Options,
) -> anyhow::Result<String> {
    let clients = options.clients;
    let run = side_writes(backend, side, options, clients)
        .await
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{} {} write path", backend.name(), side.name()))?;
    let latency = run.latencies.summary();
    let cpu = run
        .cpu_us_per_write()
        .map(|us| format!(", CPU {us:.1} us per write"))
        .unwrap_or_default();
    Ok(format!(
        "{} {}: {clients} clients, {:.0} writes/s ({} ok, {} failed in {:?}), latency p50 {:.0} us, p99 {:.0} us{cpu}",
        backend.name(),
        side.name(),
        run.throughput(),
        run.ok,
        run.failed,
        run.elapsed,
        latency.p50_us,
        latency.p99_us,
    ))
}

/// Write throughput through the adapter against the library driven directly, at each of
/// [`OVERHEAD_CLIENTS`], in `options.rounds` rounds. A round runs the three sides back to back
/// so they share the machine's state of the moment; each round starts from the next side, so
/// no side always runs first.
pub async fn overhead(backend: Backend, options: &Options) -> Result<Vec<Overhead>, String> {
    let mut out = Vec::new();
    for clients in OVERHEAD_CLIENTS {
        let mut rounds = Vec::with_capacity(options.rounds);
        for round in 0..options.rounds {
            let mut rates = [0.0; 3];
            let mut cpu = [None; 3];
            for step in 0..SIDES.len() {
                let at = (round + step) % SIDES.len();
                let run = side_writes(backend, SIDES[at], options, clients).await?;
                rates[at] = run.throughput();
                cpu[at] = run.cpu_us_per_write();
            }
            // A slow comparison shows it is moving, and what each round saw.
            eprintln!(
                "[{}] write path @{clients} clients, round {}/{}: adapter {:.0}, direct {:.0}, \
                 direct+encoding {:.0} writes/s",
                backend.name(),
                round + 1,
                options.rounds,
                rates[0],
                rates[1],
                rates[2],
            );
            rounds.push(OverheadRound {
                adapter_writes_per_sec: rates[0],
                direct_writes_per_sec: rates[1],
                direct_encoded_writes_per_sec: rates[2],
                adapter_cpu_us_per_write: cpu[0],
                direct_cpu_us_per_write: cpu[1],
                direct_encoded_cpu_us_per_write: cpu[2],
            });
        }
        out.push(Overhead::from_rounds(clients, rounds));
    }
    Ok(out)
}

/// The sides of a round, in the order of [`OverheadRound`]'s fields.
const SIDES: [WritePathSide; 3] = [
    WritePathSide::Adapter,
    WritePathSide::Direct,
    WritePathSide::DirectEncoded,
];
