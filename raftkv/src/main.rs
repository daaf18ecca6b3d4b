//! raftkv: the reference replicated KV store on raftengine. `raftkv demo` runs both backends
//! side by side; `raftkv bench` is the configurable benchmark with the direct-library
//! baseline; `raftkv serve` runs one node of a replicated Redis-protocol store, `raftkv certs`
//! writes its TLS material and `raftkv cluster` starts a local cluster of them.

mod baseline;
mod certs;
mod cli;
mod cluster;
mod cpu;
mod demo;
mod disk;
mod failover;
mod local_cluster;
mod report;
mod serve;
mod stats;
mod sweep;
mod workload;
mod write_path;

/// The allocator is the binary's choice, never a library's: mimalloc by default (the
/// `mimalloc` feature), the system allocator with `--no-default-features`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cli::{BackendChoice, Cli, Command, Options};
use cluster::Backend;
use demo::Events;
use report::BackendReport;

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
        Command::Demo(args) if let Some(flag) = args.bench_only_flag() => {
            eprintln!("raftkv: {flag} belongs to `raftkv bench`");
            return ExitCode::from(2);
        }
        Command::Bench(args) if args.sweep => {
            return report_errors(runtime.block_on(sweep::run(&args)));
        }
        Command::Bench(args) if let Some(side) = args.write_path => {
            let options = args.options();
            return report_errors(runtime.block_on(async {
                for backend in backends(options.backend) {
                    println!("{}", write_path::one_side(backend, side, &options).await?);
                }
                Ok(())
            }));
        }
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
            "[{}] {} nodes, {} clients, {:?}{} ...",
            backend.name(),
            options.nodes,
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
        report.store_floor = match store_floor(&options) {
            Ok(floor) => floor,
            Err(problem) => {
                eprintln!("raftkv: {problem}");
                return ExitCode::FAILURE;
            }
        };
        if options.crashes > 0 {
            eprintln!(
                "[{}] timing {} leader crashes ...",
                backend.name(),
                options.crashes
            );
            match failover::measure(backend, &options).await {
                Ok(stats) => report.failover = Some(stats),
                Err(problem) => {
                    eprintln!("raftkv: failover: {problem}");
                    return ExitCode::FAILURE;
                }
            }
        }
        if options.baseline {
            match write_path::overhead(backend, &options).await {
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

/// The redb commit floor of `--data-dir`, if one was given (about one second of probing).
fn store_floor(options: &Options) -> Result<Option<disk::StoreFloor>, String> {
    let Some(dir) = &options.data_dir else {
        return Ok(None);
    };
    let nodes = usize::try_from(options.nodes).unwrap_or(usize::MAX);
    let floor = disk::store_floor(dir, nodes, Duration::from_millis(500))
        .map_err(|e| format!("measuring redb commits in {}: {e}", dir.display()))?;
    eprintln!(
        "[disk] {}: a one-entry redb commit takes {:.0} µs alone, {:.0} µs with {} stores at once",
        dir.display(),
        floor.alone_us,
        floor.shared_us,
        floor.writers
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
