//! What a run measured per backend, printed as a side-by-side table or as JSON.

use serde::Serialize;

use crate::disk::{FsyncFloor, StoreFloor};
use crate::failover::FailoverStats;
use crate::stats::{ErrorCounts, LatencySummary, median, range};

/// One correctness check of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// Numbers behind the verdict.
    pub detail: String,
}

/// One round of the write-path comparison at one client count: the three runs back to back,
/// so they share the machine's state of the moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OverheadRound {
    /// Writes/s through our adapter.
    pub adapter_writes_per_sec: f64,
    /// Writes/s driving the library directly.
    pub direct_writes_per_sec: f64,
    /// Writes/s driving the library directly with messages and entries encoded.
    pub direct_encoded_writes_per_sec: f64,
    /// Process CPU per write through our adapter, in microseconds (`None` without a process
    /// CPU clock).
    pub adapter_cpu_us_per_write: Option<f64>,
    /// Process CPU per write driving the library directly.
    pub direct_cpu_us_per_write: Option<f64>,
    /// Process CPU per write driving the library directly with encoding.
    pub direct_encoded_cpu_us_per_write: Option<f64>,
}

impl OverheadRound {
    fn ratio(&self) -> f64 {
        self.direct_writes_per_sec / self.adapter_writes_per_sec.max(1e-9)
    }

    fn ratio_vs_encoded(&self) -> f64 {
        self.direct_encoded_writes_per_sec / self.adapter_writes_per_sec.max(1e-9)
    }

    /// adapter / direct-with-encoding CPU per write: 1.10 means each write through the adapter
    /// burns 10% more CPU, cluster and clients together.
    fn cpu_vs_encoded(&self) -> Option<f64> {
        Some(self.adapter_cpu_us_per_write? / self.direct_encoded_cpu_us_per_write?.max(1e-9))
    }
}

/// Adapter overhead against the direct-library baseline at one client count: medians over
/// rounds. A shared machine moves a single run by a fifth either way; each round's ratio pairs
/// runs taken moments apart, and the median of those ratios is what one slow or fast moment
/// cannot move.
#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    /// Concurrent clients.
    pub clients: usize,
    /// Writes/s through our adapter (median over rounds).
    pub adapter_writes_per_sec: f64,
    /// Writes/s driving the library directly (median over rounds).
    pub direct_writes_per_sec: f64,
    /// direct / adapter, the median of the rounds' ratios: 1.10 means the adapter costs 10%.
    pub overhead_ratio: f64,
    /// Writes/s driving the library directly with messages encoded and decoded between nodes,
    /// as any real network needs (median over rounds).
    pub direct_encoded_writes_per_sec: f64,
    /// direct-with-encoding / adapter, the median of the rounds' ratios: the overhead against
    /// a baseline that does the work a deployment must do.
    pub overhead_vs_encoded: f64,
    /// adapter / direct-with-encoding process CPU per write, the median of the rounds' ratios
    /// (`None` without a process CPU clock). At one client throughput is bound by latency;
    /// this is the work the adapter adds to each write, whatever the scheduling.
    pub cpu_vs_encoded: Option<f64>,
    /// Every round, in the order run.
    pub rounds: Vec<OverheadRound>,
}

impl Overhead {
    /// The medians of `rounds` (at least one).
    pub fn from_rounds(clients: usize, rounds: Vec<OverheadRound>) -> Self {
        let of = |pick: fn(&OverheadRound) -> f64| {
            median(rounds.iter().map(pick).collect()).unwrap_or(0.0)
        };
        Self {
            clients,
            adapter_writes_per_sec: of(|r| r.adapter_writes_per_sec),
            direct_writes_per_sec: of(|r| r.direct_writes_per_sec),
            overhead_ratio: of(OverheadRound::ratio),
            direct_encoded_writes_per_sec: of(|r| r.direct_encoded_writes_per_sec),
            overhead_vs_encoded: of(OverheadRound::ratio_vs_encoded),
            cpu_vs_encoded: median(
                rounds
                    .iter()
                    .filter_map(OverheadRound::cpu_vs_encoded)
                    .collect(),
            ),
            rounds,
        }
    }

    /// The lowest and highest round of direct / adapter.
    pub fn ratio_range(&self) -> (f64, f64) {
        range(self.rounds.iter().map(OverheadRound::ratio))
    }

    /// The lowest and highest round of direct-with-encoding / adapter.
    pub fn ratio_vs_encoded_range(&self) -> (f64, f64) {
        range(self.rounds.iter().map(OverheadRound::ratio_vs_encoded))
    }

    /// The lowest and highest round of adapter / direct-with-encoding CPU per write.
    pub fn cpu_vs_encoded_range(&self) -> (f64, f64) {
        range(self.rounds.iter().filter_map(OverheadRound::cpu_vs_encoded))
    }
}

/// `1.20x (1.05-1.41) (60000 vs 72000 direct); ...`: medians, then the rounds' range.
fn overhead_cell(o: &Overhead) -> String {
    let spread = |(lo, hi): (f64, f64)| {
        if o.rounds.len() > 1 {
            format!(" ({lo:.2}-{hi:.2})")
        } else {
            String::new()
        }
    };
    let cpu = match o.cpu_vs_encoded {
        Some(ratio) => format!(
            "; CPU per write {ratio:.2}x{} vs direct+encoding",
            spread(o.cpu_vs_encoded_range())
        ),
        None => String::new(),
    };
    format!(
        "{:.2}x{} ({:.0} vs {:.0} direct); {:.2}x{} vs {:.0} direct+encoding{cpu}; median of {} \
         rounds",
        o.overhead_ratio,
        spread(o.ratio_range()),
        o.adapter_writes_per_sec,
        o.direct_writes_per_sec,
        o.overhead_vs_encoded,
        spread(o.ratio_vs_encoded_range()),
        o.direct_encoded_writes_per_sec,
        o.rounds.len(),
    )
}

/// Everything measured for one backend.
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    /// `openraft` or `raftrs`.
    pub backend: String,
    /// Where the logs lived: `memory` or `redb`.
    pub storage: String,
    /// The disk's single-writer floor, measured right before and after this backend's run
    /// (the faster probe; redb only).
    pub fsync_floor: Option<FsyncFloor>,
    /// What one redb log commit of one small entry costs on the same disk, alone and with one
    /// store per node at once, measured right after this backend's run (redb only).
    pub store_floor: Option<StoreFloor>,
    /// fsyncs on all three nodes' files per successful write during the workload (redb only).
    pub fsyncs_per_write: Option<f64>,
    /// Successful writes (puts and conditional writes) per second.
    pub write_throughput: f64,
    /// Propose-to-applied latency of writes.
    pub commit_latency: LatencySummary,
    /// Reads served by the lease layer (both paths).
    pub lease_read_latency: LatencySummary,
    /// Reads served on the lease fast path only.
    pub lease_fast_path_latency: LatencySummary,
    /// Reads through `linearizable_read`.
    pub linearizable_read_latency: LatencySummary,
    /// Fraction of lease reads served on the fast path.
    pub lease_hit_rate: f64,
    /// Conditional writes that failed with a write conflict (an application outcome).
    pub write_conflicts: u64,
    /// Leadership transfer: request to the new leader serving, in ms.
    pub transfer_ms: Option<f64>,
    /// Leader crash to the first successful write on the new leader, in ms (demo).
    pub failover_ms: Option<f64>,
    /// Crash-to-first-write over a series of leader crashes (`bench --crashes N`).
    pub failover: Option<FailoverStats>,
    /// Engine errors by kind.
    pub errors: ErrorCounts,
    /// Correctness checks.
    pub checks: Vec<Check>,
    /// Adapter overhead, when the baseline ran.
    pub overhead: Vec<Overhead>,
}

impl BackendReport {
    /// True when every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// Sub-10 µs figures keep a decimal: the lease fast path lives there.
fn micros(us: f64) -> String {
    if us < 10.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

/// Formats reports side by side.
pub fn table(reports: &[BackendReport]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, cell: &dyn Fn(&BackendReport) -> String| {
        rows.push((name.to_string(), reports.iter().map(cell).collect()));
    };
    let latency = |l: &LatencySummary| {
        if l.count == 0 {
            "-".to_string()
        } else {
            format!("{} / {} µs", micros(l.p50_us), micros(l.p99_us))
        }
    };
    let ms = |v: Option<f64>| {
        v.map_or("-".to_string(), |v| {
            if v < 10.0 {
                format!("{v:.1} ms")
            } else {
                format!("{v:.0} ms")
            }
        })
    };
    row("storage", &|r| r.storage.clone());
    row("write throughput", &|r| {
        format!("{:.0} ops/s", r.write_throughput)
    });
    if reports.iter().any(|r| r.fsync_floor.is_some()) {
        row("disk floor (4 KiB + fsync)", &|r| {
            r.fsync_floor.map_or("-".to_string(), |f| {
                format!("{:.0} fsync/s ({:.0} µs)", f.per_sec, f.mean_us)
            })
        });
        row("redb commit alone / per node", &|r| {
            r.store_floor.map_or("-".to_string(), |f| {
                format!("{:.0} µs / {:.0} µs", f.alone_us, f.shared_us)
            })
        });
        row("commit p50 in fsync times", &|r| {
            r.fsync_floor.map_or("-".to_string(), |f| {
                format!("{:.1}", r.commit_latency.p50_us / f.mean_us.max(1e-9))
            })
        });
        row("durable writes / floor", &|r| {
            r.fsync_floor.map_or("-".to_string(), |f| {
                format!("{:.1}x", r.write_throughput / f.per_sec.max(1e-9))
            })
        });
        row("fsyncs per write (3 nodes)", &|r| {
            r.fsyncs_per_write
                .map_or("-".to_string(), |n| format!("{n:.2}"))
        });
    }
    row("commit latency p50 / p99", &|r| latency(&r.commit_latency));
    row("lease read p50 / p99", &|r| latency(&r.lease_read_latency));
    row("  fast path p50 / p99", &|r| {
        latency(&r.lease_fast_path_latency)
    });
    row("linearizable read p50 / p99", &|r| {
        latency(&r.linearizable_read_latency)
    });
    row("lease fast-path hit rate", &|r| {
        format!("{:.2}%", r.lease_hit_rate * 100.0)
    });
    row("write conflicts (app outcome)", &|r| {
        r.write_conflicts.to_string()
    });
    row("leader transfer", &|r| ms(r.transfer_ms));
    row("failover (crash to write)", &|r| ms(r.failover_ms));
    if reports.iter().any(|r| r.failover.is_some()) {
        row("failover p50 / max", &|r| {
            r.failover.as_ref().map_or("-".to_string(), |f| {
                format!(
                    "{:.0} / {:.0} ms over {} crashes (max timeout {:.0} ms)",
                    f.p50_ms, f.max_ms, f.crashes, f.election_timeout_max_ms
                )
            })
        });
    }
    row("errors by kind", &|r| {
        if r.errors.0.is_empty() {
            "none".to_string()
        } else {
            r.errors
                .0
                .iter()
                .map(|(kind, n)| format!("{kind}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    });
    for (i, overhead) in reports
        .first()
        .map_or(&[][..], |r| &r.overhead[..])
        .iter()
        .enumerate()
    {
        let name = format!("adapter overhead @{} clients", overhead.clients);
        row(&name, &|r| {
            r.overhead.get(i).map_or("-".to_string(), overhead_cell)
        });
    }
    row("checks", &|r| {
        let failed: Vec<_> = r
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        if failed.is_empty() {
            format!("all {} passed", r.checks.len())
        } else {
            format!("FAILED: {}", failed.join(", "))
        }
    });

    let header: Vec<String> = reports.iter().map(|r| r.backend.clone()).collect();
    let name_width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..reports.len())
        .map(|i| {
            rows.iter()
                .map(|(_, cells)| cells[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |name: &str, cells: &[String]| {
        out.push_str(&format!("{name:<name_width$}"));
        for (cell, width) in cells.iter().zip(&widths) {
            out.push_str(&format!(" | {cell:<width$}"));
        }
        out.push('\n');
    };
    line("", &header);
    for (name, cells) in &rows {
        line(name, cells);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, passed: bool) -> BackendReport {
        BackendReport {
            backend: name.into(),
            storage: "redb".into(),
            fsync_floor: Some(FsyncFloor {
                per_sec: 500.0,
                mean_us: 2000.0,
                samples: 100,
            }),
            store_floor: Some(StoreFloor {
                alone_us: 3000.0,
                shared_us: 5000.0,
                writers: 3,
            }),
            fsyncs_per_write: Some(0.5),
            write_throughput: 1234.4,
            commit_latency: LatencySummary {
                count: 3,
                p50_us: 100.0,
                p99_us: 900.0,
                mean_us: 200.0,
            },
            lease_read_latency: LatencySummary::default(),
            lease_fast_path_latency: LatencySummary::default(),
            linearizable_read_latency: LatencySummary::default(),
            lease_hit_rate: 0.995,
            write_conflicts: 7,
            transfer_ms: Some(12.0),
            failover_ms: None,
            failover: None,
            errors: ErrorCounts::default(),
            checks: vec![Check {
                name: "acked writes survive".into(),
                passed,
                detail: String::new(),
            }],
            overhead: vec![],
        }
    }

    #[test]
    fn table_puts_backends_side_by_side() {
        let text = table(&[report("openraft", true), report("raftrs", false)]);
        let header = text.lines().next().unwrap();
        assert!(
            header.contains("openraft") && header.contains("raftrs"),
            "{text}"
        );
        assert!(text.contains("1234 ops/s"), "{text}");
        assert!(text.contains("99.50%"), "{text}");
        assert!(text.contains("FAILED: acked writes survive"), "{text}");
        assert!(text.contains("all 1 passed"), "{text}");
        assert!(text.contains("500 fsync/s (2000 µs)"), "{text}");
        assert!(text.contains("2.5x"), "{text}");
    }

    #[test]
    fn json_has_the_fields_scripts_read() {
        let value = serde_json::to_value([report("openraft", true)]).unwrap();
        let first = &value[0];
        assert_eq!(first["backend"], "openraft");
        assert_eq!(first["lease_hit_rate"], 0.995);
        assert!(first["write_throughput"].is_number());
        assert!(first["lease_read_latency"]["p99_us"].is_number());
        assert!(first["linearizable_read_latency"]["p50_us"].is_number());
    }

    fn round(adapter: f64, direct: f64, encoded: f64) -> OverheadRound {
        OverheadRound {
            adapter_writes_per_sec: adapter,
            direct_writes_per_sec: direct,
            direct_encoded_writes_per_sec: encoded,
            adapter_cpu_us_per_write: None,
            direct_cpu_us_per_write: None,
            direct_encoded_cpu_us_per_write: None,
        }
    }

    fn with_cpu(round: OverheadRound, adapter_us: f64, encoded_us: f64) -> OverheadRound {
        OverheadRound {
            adapter_cpu_us_per_write: Some(adapter_us),
            direct_cpu_us_per_write: Some(encoded_us / 2.0),
            direct_encoded_cpu_us_per_write: Some(encoded_us),
            ..round
        }
    }

    #[test]
    fn overhead_is_the_median_of_paired_rounds_with_their_range() {
        // The second round ran on a slow moment for every side: its ratio is ordinary, its
        // rates are not. Ratios are taken within a round, then the median across rounds.
        let overhead = Overhead::from_rounds(
            1,
            vec![
                round(100.0, 120.0, 110.0),
                round(50.0, 65.0, 52.0),
                round(100.0, 110.0, 130.0),
            ],
        );
        assert_eq!(overhead.adapter_writes_per_sec, 100.0);
        assert_eq!(overhead.direct_writes_per_sec, 110.0);
        assert_eq!(overhead.direct_encoded_writes_per_sec, 110.0);
        assert!((overhead.overhead_ratio - 1.2).abs() < 1e-9);
        assert!((overhead.overhead_vs_encoded - 1.1).abs() < 1e-9);
        let (lo, hi) = overhead.ratio_range();
        assert!((lo - 1.1).abs() < 1e-9 && (hi - 1.3).abs() < 1e-9);
        let (lo, hi) = overhead.ratio_vs_encoded_range();
        assert!((lo - 1.04).abs() < 1e-9 && (hi - 1.3).abs() < 1e-9);

        let mut with = report("raftrs", true);
        with.overhead = vec![overhead];
        let text = table(std::slice::from_ref(&with));
        assert!(
            text.contains("1.20x (1.10-1.30) (100 vs 110 direct); 1.10x (1.04-1.30) vs 110"),
            "{text}"
        );
        assert!(text.contains("median of 3 rounds"), "{text}");
        let value = serde_json::to_value(&with).unwrap();
        assert_eq!(value["overhead"][0]["rounds"].as_array().unwrap().len(), 3);
        assert_eq!(value["overhead"][0]["overhead_ratio"], 1.2);
        // Without a process CPU clock the cell says nothing about CPU.
        assert_eq!(overhead_cpu(&with), None);
        assert!(!text.contains("CPU per write"), "{text}");
    }

    fn overhead_cpu(report: &BackendReport) -> Option<f64> {
        report.overhead.first()?.cpu_vs_encoded
    }

    #[test]
    fn cpu_per_write_is_the_median_of_paired_round_ratios() {
        // Rates and CPU are paired within each round, as the throughput ratios are.
        let overhead = Overhead::from_rounds(
            256,
            vec![
                with_cpu(round(100.0, 120.0, 110.0), 12.0, 10.0),
                with_cpu(round(50.0, 65.0, 52.0), 30.0, 20.0),
                with_cpu(round(100.0, 110.0, 130.0), 11.0, 10.0),
            ],
        );
        assert!((overhead.cpu_vs_encoded.unwrap() - 1.2).abs() < 1e-9);
        let (lo, hi) = overhead.cpu_vs_encoded_range();
        assert!((lo - 1.1).abs() < 1e-9 && (hi - 1.5).abs() < 1e-9);
        let mut with = report("raftrs", true);
        with.overhead = vec![overhead];
        let text = table(std::slice::from_ref(&with));
        assert!(
            text.contains("vs 110 direct+encoding; CPU per write 1.20x (1.10-1.50) vs direct+encoding; median of 3 rounds"),
            "{text}"
        );
        let value = serde_json::to_value(&with).unwrap();
        assert_eq!(value["overhead"][0]["cpu_vs_encoded"], 1.2);
        assert_eq!(
            value["overhead"][0]["rounds"][1]["adapter_cpu_us_per_write"],
            30.0
        );
    }
}
