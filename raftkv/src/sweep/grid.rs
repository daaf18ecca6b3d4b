//! The sweep's grid: its axes, read from the command line, and the order its points run in.

use serde::{Serialize, Serializer};

use crate::cli::{StorageChoice, WorkloadArgs};
use crate::cluster::Backend;

/// The axes of a sweep, sorted and without repeats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grid {
    /// Backends, in the order of `--backend`.
    #[serde(serialize_with = "backend_names")]
    pub backends: Vec<Backend>,
    /// Log stores.
    #[serde(serialize_with = "storage_names")]
    pub storages: Vec<StorageChoice>,
    /// Voters per cluster.
    pub nodes: Vec<u64>,
    /// Bytes per written value.
    pub value_sizes: Vec<usize>,
    /// Fractions of operations that are reads.
    pub read_ratios: Vec<f64>,
    /// Concurrent closed-loop clients: the x axis of every chart.
    pub clients: Vec<usize>,
    /// Whether the write path is also measured bare and with each library driven directly.
    pub baseline: bool,
}

fn backend_names<S: Serializer>(backends: &[Backend], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(backends.iter().map(|b| b.name()))
}

fn storage_names<S: Serializer>(storages: &[StorageChoice], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(storages.iter().map(|st| st.name()))
}

/// The workload of one chart: everything but the backend and the client count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    /// Where the logs live.
    pub storage: StorageChoice,
    /// Voters.
    pub nodes: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Fraction of reads.
    pub read_ratio: f64,
}

impl Scenario {
    /// `3 nodes · memory · 4 KiB values · 50% reads`.
    pub fn label(&self) -> String {
        format!(
            "{} nodes · {} · {} values · {} reads",
            self.nodes,
            self.storage.name(),
            size_label(self.value_size),
            percent_label(self.read_ratio)
        )
    }
}

/// The write-path comparison of one cluster size and value size (memory only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteGroup {
    /// Voters.
    pub nodes: u64,
    /// Bytes per value.
    pub value_size: usize,
}

impl WriteGroup {
    /// `3 nodes · 4 KiB values`.
    pub fn label(&self) -> String {
        format!(
            "{} nodes · {} values",
            self.nodes,
            size_label(self.value_size)
        )
    }
}

/// One run of the full workload on a fresh cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointSpec {
    /// The chart it belongs to.
    pub scenario: Scenario,
    /// The backend.
    pub backend: Backend,
    /// Concurrent clients.
    pub clients: usize,
}

/// One write-path comparison: the adapter's bare write path and the library driven directly,
/// structs and encoded, each on a fresh memory cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaselineSpec {
    /// The chart it belongs to.
    pub group: WriteGroup,
    /// The backend.
    pub backend: Backend,
    /// Concurrent writers.
    pub clients: usize,
}

/// One step of the sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Task {
    /// A workload point.
    Point(PointSpec),
    /// Three write-path runs.
    Baseline(BaselineSpec),
}

impl Task {
    /// What the progress bar shows while it runs.
    pub fn label(&self) -> String {
        match self {
            Self::Point(p) => format!(
                "{}, {}: {}",
                p.backend.name(),
                clients_label(p.clients),
                p.scenario.label()
            ),
            Self::Baseline(b) => format!(
                "{}, {}: write path vs direct, {}",
                b.backend.name(),
                clients_label(b.clients),
                b.group.label()
            ),
        }
    }

    /// Measured phases the task runs, each `--duration` long: the progress bar's units, so the
    /// ETA weighs a baseline task (three runs) right.
    pub fn weight(&self) -> u64 {
        match self {
            Self::Point(_) => 1,
            Self::Baseline(_) => 3,
        }
    }
}

impl Grid {
    /// The grid `args` describe. Errors name the flag to fix.
    pub fn from_args(args: &WorkloadArgs) -> Result<Self, String> {
        if args.crashes > 0 {
            return Err(
                "--crashes does not combine with --sweep (the sweep times no crashes)".into(),
            );
        }
        let mut storages = args.sweep_storage.clone();
        if storages.is_empty() {
            storages.push(StorageChoice::Memory);
            if args.data_dir.is_some() {
                storages.push(StorageChoice::Redb);
            }
        }
        storages.sort_unstable();
        storages.dedup();
        if storages.contains(&StorageChoice::Redb) && args.data_dir.is_none() {
            return Err(
                "--sweep-storage redb needs --data-dir DIR (the redb files and the fsync probe go there)"
                    .into(),
            );
        }
        let mut read_ratios = args.sweep_read_ratios.clone();
        read_ratios.sort_by(f64::total_cmp);
        read_ratios.dedup();
        let grid = Self {
            backends: crate::backends(args.backend),
            storages,
            nodes: sorted(args.sweep_nodes.clone()),
            value_sizes: sorted(args.sweep_value_sizes.clone()),
            read_ratios,
            clients: sorted(
                args.sweep_clients
                    .iter()
                    .map(|&c| usize::try_from(c).unwrap_or(usize::MAX))
                    .collect(),
            ),
            baseline: args.baseline,
        };
        // clap refuses an empty list item, but not every way of writing an empty axis.
        for (axis, empty) in [
            ("--sweep-clients", grid.clients.is_empty()),
            ("--sweep-value-sizes", grid.value_sizes.is_empty()),
            ("--sweep-read-ratios", grid.read_ratios.is_empty()),
            ("--sweep-nodes", grid.nodes.is_empty()),
        ] {
            if empty {
                return Err(format!("{axis} needs at least one value"));
            }
        }
        Ok(grid)
    }

    /// Every chart of the workload points, in report order.
    pub fn scenarios(&self) -> Vec<Scenario> {
        let mut out = Vec::new();
        for &nodes in &self.nodes {
            for &storage in &self.storages {
                for &value_size in &self.value_sizes {
                    for &read_ratio in &self.read_ratios {
                        out.push(Scenario {
                            storage,
                            nodes,
                            value_size,
                            read_ratio,
                        });
                    }
                }
            }
        }
        out
    }

    /// Every write-path chart (none without `--baseline`).
    pub fn write_groups(&self) -> Vec<WriteGroup> {
        if !self.baseline {
            return Vec::new();
        }
        let mut out = Vec::new();
        for &nodes in &self.nodes {
            for &value_size in &self.value_sizes {
                out.push(WriteGroup { nodes, value_size });
            }
        }
        out
    }

    /// The tasks in run order. A chart's points run together, and at each client count the
    /// backends run back to back, so a drift in the machine's speed during a long sweep lands
    /// on both sides of a comparison rather than between them.
    pub fn plan(&self) -> Vec<Task> {
        let mut tasks = Vec::new();
        for &nodes in &self.nodes {
            for &value_size in &self.value_sizes {
                for &storage in &self.storages {
                    for &read_ratio in &self.read_ratios {
                        let scenario = Scenario {
                            storage,
                            nodes,
                            value_size,
                            read_ratio,
                        };
                        for &clients in &self.clients {
                            for &backend in &self.backends {
                                tasks.push(Task::Point(PointSpec {
                                    scenario,
                                    backend,
                                    clients,
                                }));
                            }
                        }
                    }
                }
                if self.baseline {
                    let group = WriteGroup { nodes, value_size };
                    for &clients in &self.clients {
                        for &backend in &self.backends {
                            tasks.push(Task::Baseline(BaselineSpec {
                                group,
                                backend,
                                clients,
                            }));
                        }
                    }
                }
            }
        }
        tasks
    }
}

fn sorted<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort_unstable();
    values.dedup();
    values
}

/// `16 B`, `4 KiB`, `1.5 KiB`, `16 MiB`.
pub fn size_label(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    let scaled = |unit: usize, name: &str| {
        if bytes.is_multiple_of(unit) {
            format!("{} {name}", bytes / unit)
        } else {
            format!("{:.1} {name}", bytes as f64 / unit as f64)
        }
    };
    if bytes >= MIB {
        scaled(MIB, "MiB")
    } else if bytes >= KIB {
        scaled(KIB, "KiB")
    } else {
        format!("{bytes} B")
    }
}

/// `1 client`, `16 clients`.
pub fn clients_label(clients: usize) -> String {
    if clients == 1 {
        "1 client".into()
    } else {
        format!("{clients} clients")
    }
}

/// `0%`, `50%`, `90%`, `99.5%`.
pub fn percent_label(fraction: f64) -> String {
    let percent = fraction * 100.0;
    if (percent - percent.round()).abs() < 1e-9 {
        format!("{percent:.0}%")
    } else {
        format!("{percent:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn grid(line: &str) -> Result<Grid, String> {
        let cli = Cli::try_parse_from(std::iter::once("raftkv").chain(line.split_whitespace()))
            .expect("the line parses");
        let Command::Bench(args) = cli.command else {
            panic!("expected bench");
        };
        Grid::from_args(&args)
    }

    #[test]
    fn defaults_cover_the_whole_grid_on_memory() {
        let g = grid("bench --sweep").unwrap();
        assert_eq!(g.clients, vec![1, 4, 16, 64, 256, 1024]);
        assert_eq!(g.value_sizes, vec![16, 256, 4096, 65536]);
        assert_eq!(g.read_ratios, vec![0.0, 0.5, 0.9]);
        assert_eq!(g.nodes, vec![3, 5]);
        assert_eq!(g.storages, vec![StorageChoice::Memory]);
        assert_eq!(g.backends, vec![Backend::Openraft, Backend::RaftRs]);
        assert_eq!(g.scenarios().len(), 2 * 4 * 3);
        assert_eq!(
            g.plan().len(),
            2 * 4 * 3 * 6 * 2,
            "no baseline tasks by default"
        );
        assert!(g.write_groups().is_empty());
    }

    #[test]
    fn data_dir_adds_redb_and_redb_needs_it() {
        let g = grid("bench --sweep --data-dir /tmp/d").unwrap();
        assert_eq!(g.storages, vec![StorageChoice::Memory, StorageChoice::Redb]);
        let g = grid("bench --sweep --data-dir /tmp/d --sweep-storage redb").unwrap();
        assert_eq!(g.storages, vec![StorageChoice::Redb]);
        let error = grid("bench --sweep --sweep-storage memory,redb").unwrap_err();
        assert!(error.contains("--data-dir"), "{error}");
        assert!(
            grid("bench --sweep --crashes 3")
                .unwrap_err()
                .contains("--crashes")
        );
    }

    #[test]
    fn axes_are_sorted_and_deduplicated() {
        let g = grid(
            "bench --sweep --backend raftrs --sweep-clients 64,1,64,4 --sweep-value-sizes 4K,16 \
             --sweep-read-ratios 0.9,0,0.9 --sweep-nodes 5,3",
        )
        .unwrap();
        assert_eq!(g.clients, vec![1, 4, 64]);
        assert_eq!(g.value_sizes, vec![16, 4096]);
        assert_eq!(g.read_ratios, vec![0.0, 0.9]);
        assert_eq!(g.nodes, vec![3, 5]);
        assert_eq!(g.backends, vec![Backend::RaftRs]);
    }

    #[test]
    fn plan_interleaves_backends_and_follows_each_group_with_its_baseline() {
        let g = grid(
            "bench --sweep --baseline --sweep-clients 1,4 --sweep-value-sizes 16 \
             --sweep-read-ratios 0.5 --sweep-nodes 3",
        )
        .unwrap();
        let plan = g.plan();
        let labels: Vec<String> = plan.iter().map(Task::label).collect();
        assert_eq!(plan.len(), 4 + 4, "{labels:#?}");
        let Task::Point(first) = plan[0] else {
            panic!("points come first: {labels:#?}");
        };
        let Task::Point(second) = plan[1] else {
            panic!("{labels:#?}");
        };
        assert_eq!((first.backend, first.clients), (Backend::Openraft, 1));
        assert_eq!((second.backend, second.clients), (Backend::RaftRs, 1));
        assert!(matches!(plan[4], Task::Baseline(_)), "{labels:#?}");
        assert_eq!(plan.iter().map(Task::weight).sum::<u64>(), 4 + 4 * 3);
        assert_eq!(g.write_groups().len(), 1);
        assert_eq!(
            labels[0],
            "openraft, 1 client: 3 nodes · memory · 16 B values · 50% reads"
        );
    }

    #[test]
    fn labels_read_naturally() {
        assert_eq!(size_label(16), "16 B");
        assert_eq!(size_label(4096), "4 KiB");
        assert_eq!(size_label(65536), "64 KiB");
        assert_eq!(size_label(1536), "1.5 KiB");
        assert_eq!(size_label(16 << 20), "16 MiB");
        assert_eq!(percent_label(0.0), "0%");
        assert_eq!(percent_label(0.9), "90%");
        assert_eq!(percent_label(0.995), "99.5%");
    }
}
