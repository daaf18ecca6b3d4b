//! raftkv: the reference replicated KV store on raftengine. `raftkv demo` runs both backends
//! side by side; `raftkv bench` is the configurable benchmark with the direct-library
//! baseline.

mod baseline;
mod cli;
mod cluster;
mod demo;
mod report;
mod stats;
mod workload;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use baseline::DirectCluster;
use cli::{BackendChoice, Command, Options, USAGE};
use cluster::{Backend, Cluster};
use demo::Events;
use report::{BackendReport, Overhead};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(problem) => {
            eprintln!("raftkv: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
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
    let (options, events) = match command {
        Command::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Command::Demo(options) => (options, Events::TransferAndCrash),
        Command::Bench(options) => (options, Events::None),
    };
    runtime.block_on(run(options, events))
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
        let mut report = match demo::run(backend, &options, events).await {
            Ok(report) => report,
            Err(problem) => {
                eprintln!("raftkv: {problem}");
                return ExitCode::FAILURE;
            }
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
            let cluster = Cluster::start(backend, 3, options.rtt, options.seed, bare)
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
        let direct = match backend {
            Backend::Openraft => {
                measure_direct::<baseline::DirectOpenraft>(delay, clients, options).await?
            }
            Backend::RaftRs => {
                measure_direct::<baseline::DirectRaftRs>(delay, clients, options).await?
            }
        };
        let adapter_rate = adapter.throughput();
        let direct_rate = direct.throughput();
        out.push(Overhead {
            clients,
            adapter_writes_per_sec: adapter_rate,
            direct_writes_per_sec: direct_rate,
            overhead_ratio: direct_rate / adapter_rate.max(1e-9),
        });
    }
    Ok(out)
}

async fn measure_direct<C: DirectCluster>(
    one_way_delay: Duration,
    clients: usize,
    options: &Options,
) -> Result<workload::WriteRun, String> {
    let direct = Arc::new(C::start(3, one_way_delay, options.value_size).await?);
    let run = workload::run_writes(Arc::clone(&direct), clients, options.duration).await;
    if let Ok(direct) = Arc::try_unwrap(direct) {
        direct.shutdown().await;
    }
    Ok(run)
}
