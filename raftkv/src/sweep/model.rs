//! The sweep's JSON document: one self-describing object with the machine, the settings, the
//! grid and every measured point. The HTML report is rendered from the same structure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::grid::{BaselineSpec, Grid, PointSpec, Scenario, WriteGroup};
use crate::cli::WritePathSide;
use crate::cluster::Backend;
use crate::disk::FsyncFloor;
use crate::report::{BackendReport, Check};
use crate::stats::LatencySummary;
use crate::workload::WriteRun;

/// Names the layout, so a script can refuse a document it does not know.
pub const FORMAT: &str = "raftkv-sweep/1";

/// The whole sweep.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// Always [`FORMAT`].
    pub format: &'static str,
    /// False while the sweep runs (the files are rewritten after every point) or if it was
    /// interrupted.
    pub complete: bool,
    /// The command line that produced the report.
    pub command: String,
    /// When the sweep started, in seconds since the Unix epoch.
    pub started_unix_s: u64,
    /// Wall time so far, in seconds.
    pub wall_time_s: f64,
    /// What it ran on.
    pub machine: Machine,
    /// Settings shared by every point.
    pub settings: Settings,
    /// What the numbers mean.
    pub units: Units,
    /// The axes.
    pub grid: Grid,
    /// One entry per workload point, in run order.
    pub points: Vec<Point>,
    /// One entry per write path per baseline task (empty without `--baseline`).
    pub baseline: Vec<BaselinePoint>,
}

/// The machine the sweep ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `std::thread::available_parallelism`.
    pub cores: usize,
    /// `linux`, `macos`, ...
    pub os: &'static str,
    /// `x86_64`, `aarch64`, ...
    pub arch: &'static str,
    /// The `--data-dir` disk's single-writer fsync floor (the faster of a probe before and
    /// one after the sweep; absent without redb points).
    pub fsync_floor: Option<FsyncFloor>,
}

/// Settings shared by every point.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Measured phase of each run, in seconds.
    pub duration_s: f64,
    /// Simulated round trip between nodes, in ms.
    pub rtt_ms: f64,
    /// Fraction of conditional writes built to conflict.
    pub conflict_rate: f64,
    /// Workload and network seed.
    pub seed: u64,
}

/// The units of the point fields, spelled out for readers of the JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Units {
    /// Of `write_throughput`.
    pub write_throughput: &'static str,
    /// Of every `*_us` field.
    pub latency: &'static str,
    /// Of `fsyncs_per_write`.
    pub fsyncs_per_write: &'static str,
}

impl Default for Units {
    fn default() -> Self {
        Self {
            write_throughput: "successful writes (puts and conditional writes) per second of the measured phase",
            latency: "microseconds from request to response, nearest-rank percentile; null when the point had no such operation",
            fsyncs_per_write: "fsyncs on all nodes' log files per successful write (redb only)",
        }
    }
}

/// One run of the full workload (writes, conditional writes, lease and linearizable reads).
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// `openraft` or `raftrs`.
    pub backend: String,
    /// `memory` or `redb`.
    pub storage: String,
    /// Voters.
    pub nodes: u64,
    /// Bytes per written value.
    pub value_size: usize,
    /// Fraction of operations that were reads.
    pub read_ratio: f64,
    /// Concurrent closed-loop clients.
    pub clients: usize,
    /// Successful writes per second (null if the run failed).
    pub write_throughput: Option<f64>,
    /// Write commit latency, median.
    pub commit_p50_us: Option<f64>,
    /// Write commit latency, 99th percentile.
    pub commit_p99_us: Option<f64>,
    /// Lease read latency (both paths), median.
    pub lease_read_p50_us: Option<f64>,
    /// Lease read latency (both paths), 99th percentile.
    pub lease_read_p99_us: Option<f64>,
    /// Linearizable read latency, 99th percentile.
    pub linearizable_read_p99_us: Option<f64>,
    /// Fraction of lease reads served on the fast path.
    pub lease_hit_rate: Option<f64>,
    /// fsyncs per successful write (redb only).
    pub fsyncs_per_write: Option<f64>,
    /// Engine errors the clients saw, by kind (retried; not failures by themselves).
    pub engine_errors: BTreeMap<String, u64>,
    /// Whether every correctness check of the run held.
    pub checks_passed: bool,
    /// The checks, with the numbers behind each verdict.
    pub checks: Vec<Check>,
    /// Why the point failed: the run's error or the failed checks.
    pub error: Option<String>,
    /// Wall time of the point, cluster start and shutdown included.
    pub wall_time_s: f64,
}

impl Point {
    fn empty(spec: &PointSpec) -> Self {
        Self {
            backend: spec.backend.name().into(),
            storage: spec.scenario.storage.name().into(),
            nodes: spec.scenario.nodes,
            value_size: spec.scenario.value_size,
            read_ratio: spec.scenario.read_ratio,
            clients: spec.clients,
            write_throughput: None,
            commit_p50_us: None,
            commit_p99_us: None,
            lease_read_p50_us: None,
            lease_read_p99_us: None,
            linearizable_read_p99_us: None,
            lease_hit_rate: None,
            fsyncs_per_write: None,
            engine_errors: BTreeMap::new(),
            checks_passed: false,
            checks: Vec::new(),
            error: None,
            wall_time_s: 0.0,
        }
    }

    /// A run that finished; failed checks make it a failed point.
    pub fn measured(spec: &PointSpec, report: &BackendReport) -> Self {
        let failed: Vec<String> = report
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("check failed: {}: {}", c.name, c.detail))
            .collect();
        Self {
            write_throughput: Some(report.write_throughput),
            commit_p50_us: p50(&report.commit_latency),
            commit_p99_us: p99(&report.commit_latency),
            lease_read_p50_us: p50(&report.lease_read_latency),
            lease_read_p99_us: p99(&report.lease_read_latency),
            linearizable_read_p99_us: p99(&report.linearizable_read_latency),
            lease_hit_rate: (report.lease_read_latency.count > 0).then_some(report.lease_hit_rate),
            fsyncs_per_write: report.fsyncs_per_write,
            engine_errors: report.errors.0.clone(),
            checks_passed: failed.is_empty(),
            checks: report.checks.clone(),
            error: (!failed.is_empty()).then(|| failed.join("; ")),
            ..Self::empty(spec)
        }
    }

    /// A run that did not finish.
    pub fn failed(spec: &PointSpec, error: String) -> Self {
        Self {
            error: Some(error),
            ..Self::empty(spec)
        }
    }

    /// True when the run finished and every check held.
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.checks_passed
    }

    /// Whether this point belongs to `scenario` on `backend`.
    pub fn is(&self, backend: Backend, scenario: &Scenario) -> bool {
        self.backend == backend.name()
            && self.storage == scenario.storage.name()
            && self.nodes == scenario.nodes
            && self.value_size == scenario.value_size
            && self.read_ratio == scenario.read_ratio
    }
}

fn p50(summary: &LatencySummary) -> Option<f64> {
    (summary.count > 0).then_some(summary.p50_us)
}

fn p99(summary: &LatencySummary) -> Option<f64> {
    (summary.count > 0).then_some(summary.p99_us)
}

/// Which write path a baseline entry measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WritePath {
    /// `Engine::propose` through the adapter, no lease layer.
    Adapter,
    /// The library driven directly, messages handed over as its structs.
    DirectStructs,
    /// The library driven directly, every message encoded and decoded, the log kept as bytes
    /// (and, on raft-rs, the adapter's key-value application).
    DirectEncoded,
}

impl WritePath {
    /// All three, in chart order.
    pub const ALL: [WritePath; 3] = [Self::Adapter, Self::DirectStructs, Self::DirectEncoded];

    /// The same side as `bench --write-path` names it.
    pub fn side(self) -> WritePathSide {
        match self {
            Self::Adapter => WritePathSide::Adapter,
            Self::DirectStructs => WritePathSide::Direct,
            Self::DirectEncoded => WritePathSide::DirectEncoded,
        }
    }

    /// How the chart legend names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Adapter => "adapter",
            Self::DirectStructs => "direct, structs",
            Self::DirectEncoded => "direct, encoded",
        }
    }
}

/// One write-only run of a baseline task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselinePoint {
    /// `openraft` or `raftrs`.
    pub backend: String,
    /// Voters (always on memory).
    pub nodes: u64,
    /// Bytes per written value.
    pub value_size: usize,
    /// Concurrent closed-loop writers.
    pub clients: usize,
    /// What was driven.
    pub path: WritePath,
    /// Successful writes per second (null if the run failed).
    pub write_throughput: Option<f64>,
    /// Commit latency, median.
    pub commit_p50_us: Option<f64>,
    /// Commit latency, 99th percentile.
    pub commit_p99_us: Option<f64>,
    /// Writes that failed or timed out (a bare library drops proposals on a leader change).
    pub failed_writes: u64,
    /// Process CPU per successful write in microseconds, cluster and clients together (null
    /// without a process CPU clock or a successful write).
    pub cpu_us_per_write: Option<f64>,
    /// Why the run failed.
    pub error: Option<String>,
    /// Wall time of the run, cluster start and shutdown included.
    pub wall_time_s: f64,
}

impl BaselinePoint {
    /// The outcome of one write-path run; a run without a single successful write failed.
    pub fn new(spec: &BaselineSpec, path: WritePath, run: Result<WriteRun, String>) -> Self {
        let mut point = Self {
            backend: spec.backend.name().into(),
            nodes: spec.group.nodes,
            value_size: spec.group.value_size,
            clients: spec.clients,
            path,
            write_throughput: None,
            commit_p50_us: None,
            commit_p99_us: None,
            failed_writes: 0,
            cpu_us_per_write: None,
            error: None,
            wall_time_s: 0.0,
        };
        match run {
            Ok(run) if run.ok > 0 => {
                let latency = run.latencies.summary();
                point.write_throughput = Some(run.throughput());
                point.cpu_us_per_write = run.cpu_us_per_write();
                point.commit_p50_us = p50(&latency);
                point.commit_p99_us = p99(&latency);
                point.failed_writes = run.failed;
            }
            Ok(run) => {
                point.failed_writes = run.failed;
                point.error = Some(format!("no write succeeded ({} failed)", run.failed));
            }
            Err(error) => point.error = Some(error),
        }
        point
    }

    /// True when the run finished with successful writes.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// Whether this entry belongs to `group` on `backend` along `path`.
    pub fn is(&self, backend: Backend, group: &WriteGroup, path: WritePath) -> bool {
        self.backend == backend.name()
            && self.nodes == group.nodes
            && self.value_size == group.value_size
            && self.path == path
    }
}

impl SweepReport {
    /// Points (workload and baseline) that failed.
    pub fn failures(&self) -> usize {
        self.points.iter().filter(|p| !p.ok()).count()
            + self.baseline.iter().filter(|b| !b.ok()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::StorageChoice;
    use crate::stats::ErrorCounts;
    use crate::sweep::grid::{PointSpec, Scenario};

    fn spec() -> PointSpec {
        PointSpec {
            scenario: Scenario {
                storage: StorageChoice::Memory,
                nodes: 3,
                value_size: 16,
                read_ratio: 0.0,
            },
            backend: Backend::RaftRs,
            clients: 4,
        }
    }

    fn report(check_passed: bool) -> BackendReport {
        BackendReport {
            backend: "raftrs".into(),
            storage: "memory".into(),
            fsync_floor: None,
            store_floor: None,
            fsyncs_per_write: None,
            write_throughput: 1_000.0,
            commit_latency: LatencySummary {
                count: 10,
                p50_us: 50.0,
                p99_us: 90.0,
                mean_us: 55.0,
            },
            lease_read_latency: LatencySummary::default(),
            lease_fast_path_latency: LatencySummary::default(),
            linearizable_read_latency: LatencySummary::default(),
            lease_hit_rate: 0.0,
            write_conflicts: 0,
            transfer_ms: None,
            failover_ms: None,
            failover: None,
            errors: ErrorCounts::default(),
            checks: vec![Check {
                name: "replicas converged".into(),
                passed: check_passed,
                detail: "node 2 behind".into(),
            }],
            overhead: Vec::new(),
        }
    }

    #[test]
    fn a_measured_point_keeps_its_numbers_and_absent_operations_are_null() {
        let point = Point::measured(&spec(), &report(true));
        assert!(point.ok());
        assert_eq!(point.write_throughput, Some(1_000.0));
        assert_eq!(point.commit_p99_us, Some(90.0));
        assert_eq!(
            point.lease_read_p99_us, None,
            "no reads at a read ratio of 0"
        );
        let json = serde_json::to_value(&point).unwrap();
        assert_eq!(json["backend"], "raftrs");
        assert_eq!(json["clients"], 4);
        assert!(json["lease_read_p99_us"].is_null());
        assert!(json["error"].is_null());
    }

    #[test]
    fn failed_checks_and_errors_make_failed_points() {
        let point = Point::measured(&spec(), &report(false));
        assert!(!point.ok() && !point.checks_passed);
        let error = point.error.unwrap();
        assert!(error.contains("replicas converged") && error.contains("node 2 behind"));
        let point = Point::failed(&spec(), "no leader".into());
        assert!(!point.ok());
        assert_eq!(point.write_throughput, None);
    }

    #[test]
    fn a_write_path_run_records_its_cpu_per_write() {
        let spec = BaselineSpec {
            group: WriteGroup {
                nodes: 3,
                value_size: 16,
            },
            backend: Backend::RaftRs,
            clients: 8,
        };
        let run = WriteRun {
            ok: 200,
            elapsed: std::time::Duration::from_secs(1),
            cpu: Some(std::time::Duration::from_millis(3)),
            ..WriteRun::default()
        };
        let entry = BaselinePoint::new(&spec, WritePath::Adapter, Ok(run));
        assert_eq!(entry.cpu_us_per_write, Some(15.0));
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["cpu_us_per_write"], 15.0);
    }

    #[test]
    fn a_write_path_run_without_a_success_failed() {
        let spec = BaselineSpec {
            group: WriteGroup {
                nodes: 3,
                value_size: 16,
            },
            backend: Backend::Openraft,
            clients: 1,
        };
        let none = WriteRun {
            failed: 3,
            ..WriteRun::default()
        };
        let entry = BaselinePoint::new(&spec, WritePath::DirectEncoded, Ok(none));
        assert!(!entry.ok());
        assert_eq!(entry.failed_writes, 3);
        assert_eq!(entry.cpu_us_per_write, None);
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json["path"], "direct_encoded");
        let entry = BaselinePoint::new(&spec, WritePath::Adapter, Err("no leader".into()));
        assert_eq!(entry.error.as_deref(), Some("no leader"));
    }
}
