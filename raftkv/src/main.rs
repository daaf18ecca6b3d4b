//! raftkv: the reference replicated KV store on raftengine. `raftkv demo` runs both backends
//! side by side; `raftkv bench` is the configurable benchmark with the direct-library
//! baseline; `raftkv serve` runs one node of a replicated Redis-protocol store, `raftkv certs`
//! writes its TLS material and `raftkv cluster` starts a local cluster of them.

mod baseline;
mod certs;
mod cli;
mod cluster;
mod demo;
mod disk;
mod local_cluster;
mod report;
mod serve;
mod stats;
mod workload;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use baseline::DirectCluster;
use clap::Parser;
use cli::{BackendChoice, Cli, Command, Options};
use cluster::{Backend, Cluster, Storage};
use demo::Events;
use report::{BackendReport, Overhead};

fn main() -> ExitCode {
    // clap prints usage and exits 2 on bad input, and prints help for `--help`.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("raftkv: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (options, events) = match cli.command {
        Command::Demo(args) => (args.options(), Events::TransferAndCrash),
        Command::Bench(args) => (args.options(), Events::None),
        Command::Serve(args) => {
            return report_errors(runtime.block_on(async {
                let config = serve::ServeConfig::resolve(&args)?;
                serve::run(config).await
            }));
        }
        Command::Certs(args) => {
            let result = certs::write_cluster_certs(&args.name, &args.nodes, &args.out);
            if result.is_ok() {
                println!(
                    "wrote ca.pem and node-<id>.pem/.key for nodes {:?} to {}",
                    args.nodes,
                    args.out.display()
                );
            }
            return report_errors(result);
        }
        Command::Cluster(args) => return report_errors(runtime.block_on(local_cluster::run(args))),
    };
    runtime.block_on(run(options, events))
}

/// Prints an error with its whole context chain.
fn report_errors(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("raftkv: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn backends(choice: BackendChoice) -> Vec<Backend> {
    match choice {
        BackendChoice::Openraft => vec![Backend::Openraft],
        BackendChoice::RaftRs => vec![Backend::RaftRs],
        BackendChoice::Both => vec![Backend::Openraft, Backend::RaftRs],
    }
}

async fn run(options: Options, events: Events) -> ExitCode {
    let mut reports = Vec::new();
    for backend in backends(options.backend) {
        eprintln!(
            "[{}] 3 nodes, {} clients, {:?}{} ...",
            backend.name(),
            options.clients,
            options.duration,
            if events == Events::TransferAndCrash {
                ", transfer at 35%, leader crash at 65%"
            } else {
                ""
            }
        );
        let floor_before = match disk_floor(&options) {
            Ok(floor) => floor,
            Err(problem) => {
                eprintln!("raftkv: {problem}");
                return ExitCode::FAILURE;
            }
        };
        let mut report = match demo::run(backend, &options, events).await {
            Ok(report) => report,
            Err(problem) => {
                eprintln!("raftkv: {problem}");
                return ExitCode::FAILURE;
            }
        };
        let floor_after = match disk_floor(&options) {
            Ok(floor) => floor,
            Err(problem) => {
                eprintln!("raftkv: {problem}");
                return ExitCode::FAILURE;
            }
        };
        // The disk's speed drifts with whatever else the machine does; the faster of the two
        // probes around the run is the floor the run is compared with (the stricter ratio).
        report.fsync_floor = match (floor_before, floor_after) {
            (Some(a), Some(b)) => Some(if a.per_sec >= b.per_sec { a } else { b }),
            (a, b) => a.or(b),
        };
        if options.baseline {
            match overhead(backend, &options).await {
                Ok(overhead) => report.overhead = overhead,
                Err(problem) => {
                    eprintln!("raftkv: baseline: {problem}");
                    return ExitCode::FAILURE;
                }
            }
        }
        eprintln!("[{}] done: {}", backend.name(), verdict(&report));
        reports.push(report);
    }
    if options.json {
        match serde_json::to_string_pretty(&reports) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("raftkv: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{}", report::table(&reports));
        for report in &reports {
            for check in &report.checks {
                let mark = if check.passed { "ok  " } else { "FAIL" };
                println!(
                    "[{mark}] {}: {}: {}",
                    report.backend, check.name, check.detail
                );
            }
        }
    }
    if reports.iter().all(BackendReport::passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The fsync floor of `--data-dir`, if one was given (about one second of probing).
fn disk_floor(options: &Options) -> Result<Option<disk::FsyncFloor>, String> {
    let Some(dir) = &options.data_dir else {
        return Ok(None);
    };
    let floor = disk::fsync_floor(dir, Duration::from_secs(1))
        .map_err(|e| format!("measuring the disk in {}: {e}", dir.display()))?;
    eprintln!(
        "[disk] {}: {:.0} synced 4 KiB writes/s ({:.0} µs each)",
        dir.display(),
        floor.per_sec,
        floor.mean_us
    );
    Ok(Some(floor))
}

fn verdict(report: &BackendReport) -> &'static str {
    if report.passed() {
        "all checks passed"
    } else {
        "CHECKS FAILED"
    }
}

/// Write throughput through the adapter against the library driven directly, at 1 and 256
/// clients, each pair measured back to back.
async fn overhead(backend: Backend, options: &Options) -> Result<Vec<Overhead>, String> {
    let mut out = Vec::new();
    let delay = options.rtt / 2;
    for clients in [1, 256] {
        let adapter = {
            // No lease background tasks: the ratio is about the adapter, and the baseline has
            // no lease layer either.
            let bare = kv_lease::LeaseConfig {
                background: false,
                ..kv_lease::LeaseConfig::default()
            };
            let cluster = Cluster::start(
                backend,
                3,
                options.rtt,
                options.seed,
                bare,
                &Storage::Memory,
            )
            .await
            .map_err(|e| e.to_string())?;
            let leader = cluster
                .wait_for_leader(Duration::from_secs(10))
                .await
                .ok_or("no leader")?;
            let engine = Arc::clone(&cluster.node(leader).ok_or("leader vanished")?.engine);
            let writer = Arc::new(workload::EngineWriter::new(engine, options.value_size));
            let run = workload::run_writes(writer, clients, options.duration).await;
            cluster.shutdown().await;
            run
        };
        let direct = |wire| async move {
            match backend {
                Backend::Openraft => {
                    measure_direct::<baseline::DirectOpenraft>(delay, clients, wire, options).await
                }
                Backend::RaftRs => {
                    measure_direct::<baseline::DirectRaftRs>(delay, clients, wire, options).await
                }
            }
        };
        let structs = direct(baseline::Wire::Structs).await?;
        let encoded = direct(baseline::Wire::Encoded).await?;
        let adapter_rate = adapter.throughput().max(1e-9);
        let direct_rate = structs.throughput();
        let encoded_rate = encoded.throughput();
        out.push(Overhead {
            clients,
            adapter_writes_per_sec: adapter_rate,
            direct_writes_per_sec: direct_rate,
            overhead_ratio: direct_rate / adapter_rate,
            direct_encoded_writes_per_sec: encoded_rate,
            overhead_vs_encoded: encoded_rate / adapter_rate,
        });
    }
    Ok(out)
}

async fn measure_direct<C: DirectCluster>(
    one_way_delay: Duration,
    clients: usize,
    wire: baseline::Wire,
    options: &Options,
) -> Result<workload::WriteRun, String> {
    let direct = Arc::new(C::start(3, one_way_delay, options.value_size, wire).await?);
    let run = workload::run_writes(Arc::clone(&direct), clients, options.duration).await;
    if let Ok(direct) = Arc::try_unwrap(direct) {
        direct.shutdown().await;
    }
    Ok(run)
}
