//! The command line (clap derive): `demo`, `bench`, `serve`, `certs` and `cluster`, each with
//! its own `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Which backends to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// openraft only.
    Openraft,
    /// raft-rs only.
    #[value(name = "raftrs", alias = "raft-rs")]
    RaftRs,
    /// Both, side by side.
    Both,
}

/// The Raft library one `serve` node runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServeBackend {
    /// `raftengine-openraft`.
    Openraft,
    /// `raftengine-raftrs`.
    #[value(name = "raftrs", alias = "raft-rs")]
    #[serde(alias = "raft-rs")]
    Raftrs,
}

impl ServeBackend {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Openraft => "openraft",
            Self::Raftrs => "raftrs",
        }
    }
}

/// Workload knobs shared by `demo` and `bench`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Backends to run.
    pub backend: BackendChoice,
    /// Concurrent clients.
    pub clients: usize,
    /// Length of the measured workload phase.
    pub duration: Duration,
    /// Bytes per written value.
    pub value_size: usize,
    /// Simulated one-way network delay is half of this.
    pub rtt: Duration,
    /// Fraction of operations that are reads.
    pub read_ratio: f64,
    /// Fraction of conditional writes that fail with a conflict.
    pub conflict_rate: f64,
    /// Print JSON instead of a table.
    pub json: bool,
    /// Also run the direct-library baseline (bench only).
    pub baseline: bool,
    /// Seed for the workload and the simulated network.
    pub seed: u64,
    /// Keep each node's log in a redb file in this directory instead of in memory.
    pub data_dir: Option<PathBuf>,
    /// Voters in the cluster.
    pub nodes: u64,
    /// bench: leader crashes to time after the workload (0: none).
    pub crashes: usize,
    /// bench --baseline: rounds of the write-path comparison per client count.
    pub rounds: usize,
}

/// raftkv: the reference replicated KV store on raftengine.
#[derive(Debug, Parser)]
#[command(name = "raftkv", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// A parsed command line.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// 3-node in-process cluster per backend: writes, a conflict storm, lease and linearizable
    /// reads, a leadership transfer and a leader crash; prints both backends side by side.
    Demo(WorkloadArgs),
    /// The same workload with knobs; --baseline adds the direct-library comparison.
    Bench(WorkloadArgs),
    /// Runs one node of a replicated Redis-protocol (RESP2) store in this process.
    Serve(Box<ServeArgs>),
    /// Writes a cluster CA (ca.pem) and one certificate and key per node for mutual TLS.
    Certs(CertsArgs),
    /// Starts a local cluster of `raftkv serve` child processes on free loopback ports.
    Cluster(ClusterArgs),
}

/// Flags of `demo` and `bench`.
#[derive(Debug, Clone, Args)]
pub struct WorkloadArgs {
    /// Backends to run.
    #[arg(long, value_enum, default_value = "both")]
    pub backend: BackendChoice,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients: u64,
    /// Measured phase length (e.g. 500ms, 5s, 100us; a bare number is milliseconds).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Bytes per written value.
    #[arg(long, default_value_t = 64)]
    pub value_size: usize,
    /// Simulated round trip between nodes.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    pub rtt: Duration,
    /// Fraction of reads, in [0, 1].
    #[arg(long, default_value = "0.5", value_parser = parse_fraction)]
    pub read_ratio: f64,
    /// Fraction of conditional writes that conflict, in [0, 1].
    #[arg(long, default_value = "0.5", value_parser = parse_fraction)]
    pub conflict_rate: f64,
    /// Seed for the workload and the simulated network.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print a JSON array, one object per backend.
    #[arg(long)]
    pub json: bool,
    /// bench: drive openraft and raft-rs directly too.
    #[arg(long)]
    pub baseline: bool,
    /// bench: measure only this side of the --baseline write-path comparison, at --clients
    /// for --duration, and print its throughput and latency (for profiling one side alone;
    /// pin the runtime with TOKIO_WORKER_THREADS=1 to see CPU per write without scheduling).
    #[arg(long, value_enum, value_name = "SIDE", conflicts_with_all = ["sweep", "baseline"])]
    pub write_path: Option<WritePathSide>,
    /// bench --baseline: rounds of the write-path comparison per client count. Each round
    /// runs the adapter and both direct sides back to back for --duration each; the table shows
    /// the median of the rounds' ratios and their range.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100),
          requires = "baseline", conflicts_with = "sweep")]
    pub rounds: u64,
    /// Durable logs: one redb file per node in DIR (default: memory); also measures the
    /// disk's fsync floor there.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Voters in the cluster (at least 3, so a leader can crash and the rest elect).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(3..=9))]
    pub nodes: u64,
    /// bench: after the workload, crash the leader this many times and report crash-to-first-
    /// write p50 and max (each crashed node restarts on its own log before the next crash).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub crashes: u64,
    /// bench: run a grid of workloads (the --sweep-* axes, a fresh cluster per point) instead of
    /// one, and write report.html (charts) and report.json to --sweep-out. --clients,
    /// --value-size, --read-ratio and --nodes give way to the axes; --duration is per point.
    #[arg(long)]
    pub sweep: bool,
    /// Where the sweep writes report.html and report.json (created if missing).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "sweep-report",
        requires = "sweep"
    )]
    pub sweep_out: PathBuf,
    /// Sweep axis: concurrent clients (each a closed loop), comma separated.
    #[arg(long, value_name = "N,..", value_delimiter = ',', default_value = "1,4,16,64,256,1024",
          value_parser = clap::value_parser!(u64).range(1..=16384), requires = "sweep")]
    pub sweep_clients: Vec<u64>,
    /// Sweep axis: bytes per written value (a K or KiB suffix multiplies by 1024).
    #[arg(long, value_name = "BYTES,..", value_delimiter = ',', default_value = "16,256,4096,65536",
          value_parser = parse_size, requires = "sweep")]
    pub sweep_value_sizes: Vec<usize>,
    /// Sweep axis: fractions of reads, each in [0, 1].
    #[arg(long, value_name = "F,..", value_delimiter = ',', default_value = "0,0.5,0.9",
          value_parser = parse_fraction, requires = "sweep")]
    pub sweep_read_ratios: Vec<f64>,
    /// Sweep axis: voters per cluster (3 to 9).
    #[arg(long, value_name = "N,..", value_delimiter = ',', default_value = "3,5",
          value_parser = clap::value_parser!(u64).range(3..=9), requires = "sweep")]
    pub sweep_nodes: Vec<u64>,
    /// Sweep axis: log stores [default: memory, plus redb when --data-dir is given]. redb
    /// needs --data-dir (the files and the fsync probe go there).
    #[arg(
        long,
        value_name = "STORE,..",
        value_delimiter = ',',
        value_enum,
        requires = "sweep"
    )]
    pub sweep_storage: Vec<StorageChoice>,
}

/// One side of the write-path comparison (`bench --write-path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WritePathSide {
    /// Puts through the adapter's `Engine::propose`.
    Adapter,
    /// The library driven directly, messages handed over as its structs.
    Direct,
    /// The library driven directly, messages and log entries encoded.
    DirectEncoded,
}

impl WritePathSide {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Adapter => "adapter",
            Self::Direct => "direct",
            Self::DirectEncoded => "direct-encoded",
        }
    }
}

/// A log store on the `--sweep-storage` axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum StorageChoice {
    /// The in-memory log store: the engines' and adapters' own cost.
    Memory,
    /// One redb file per node in --data-dir, every write synced.
    Redb,
}

impl StorageChoice {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redb => "redb",
        }
    }
}

impl WorkloadArgs {
    /// The first flag given that only `bench` runs (`demo` shares these flags but refuses it).
    pub fn bench_only_flag(&self) -> Option<&'static str> {
        if self.sweep {
            Some("--sweep")
        } else if self.write_path.is_some() {
            Some("--write-path")
        } else {
            None
        }
    }

    /// The workload options these flags describe.
    pub fn options(&self) -> Options {
        Options {
            backend: self.backend,
            clients: usize::try_from(self.clients).unwrap_or(usize::MAX),
            duration: self.duration,
            value_size: self.value_size,
            rtt: self.rtt,
            read_ratio: self.read_ratio,
            conflict_rate: self.conflict_rate,
            json: self.json,
            baseline: self.baseline,
            seed: self.seed,
            data_dir: self.data_dir.clone(),
            nodes: self.nodes,
            crashes: usize::try_from(self.crashes).unwrap_or(usize::MAX),
            rounds: usize::try_from(self.rounds).unwrap_or(usize::MAX),
        }
    }
}

/// A peer on the command line: `ID=HOST:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerArg {
    /// The peer's node id.
    pub id: u64,
    /// Where its peer transport listens.
    pub addr: SocketAddr,
}

impl FromStr for PeerArg {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let (id, addr) = value
            .split_once('=')
            .ok_or_else(|| format!("expected ID=HOST:PORT, got `{value}`"))?;
        let id = id
            .parse()
            .map_err(|_| format!("bad node id `{id}` in `{value}`"))?;
        let addr = addr
            .parse()
            .map_err(|_| format!("bad address `{addr}` in `{value}`"))?;
        Ok(Self { id, addr })
    }
}

/// Flags of `serve`. Every setting may also come from `--config FILE` (TOML, the same names
/// with underscores, `peers` as a table `"2" = "127.0.0.1:7002"`); a flag wins over the file.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// This node's id (1 and up).
    #[arg(long)]
    pub id: Option<u64>,
    /// Another voter: ID=HOST:PORT of its peer listener (repeat per peer).
    #[arg(long = "peer", value_name = "ID=HOST:PORT")]
    pub peers: Vec<PeerArg>,
    /// Where the peer (Raft) transport listens.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// Where the Redis (RESP2) listener binds [default: 127.0.0.1:6379].
    #[arg(long, value_name = "HOST:PORT")]
    pub redis: Option<SocketAddr>,
    /// Where the Prometheus `/metrics` listener binds (none if absent).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<SocketAddr>,
    /// Directory of this node's durable log (created if missing).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The Raft library [default: openraft].
    #[arg(long, value_enum)]
    pub backend: Option<ServeBackend>,
    /// Directory written by `raftkv certs` (ca.pem, node-ID.pem, node-ID.key): mutual TLS
    /// between peers.
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    /// Plaintext, unauthenticated peer traffic: only for local tests and demos.
    #[arg(long)]
    pub insecure: bool,
    /// Password clients must send with AUTH (Redis' requirepass). Without one, the Redis
    /// listener only binds to loopback.
    #[arg(long, value_name = "PASSWORD")]
    pub requirepass: Option<String>,
    /// Raft heartbeat interval [default: 50ms].
    #[arg(long, value_parser = parse_duration)]
    pub heartbeat: Option<Duration>,
    /// Smallest election timeout [default: 300ms].
    #[arg(long, value_parser = parse_duration)]
    pub election_timeout_min: Option<Duration>,
    /// Largest election timeout [default: 600ms].
    #[arg(long, value_parser = parse_duration)]
    pub election_timeout_max: Option<Duration>,
    /// Deadline of one client request, including waiting out an election [default: 5s].
    #[arg(long, value_parser = parse_duration)]
    pub request_timeout: Option<Duration>,
    /// Largest request (one RESP command, in bytes) a client may send [default: 1048576].
    #[arg(long, value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Most client connections at once [default: 1024].
    #[arg(long, value_name = "N")]
    pub max_clients: Option<usize>,
    /// FAULT INJECTION, reproduces a known production bug: invalidate the read lease on every
    /// error, including write conflicts (EXEC answering nil). Only for benchmarks.
    #[arg(long)]
    pub fault_invalidate_lease_on_error: bool,
}

/// Flags of `certs`.
#[derive(Debug, Clone, Args)]
pub struct CertsArgs {
    /// Node ids, comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub nodes: Vec<u64>,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Name of the cluster CA.
    #[arg(long, default_value = "raftkv")]
    pub name: String,
}

/// Flags of `cluster`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,
    /// The Raft library.
    #[arg(long, value_enum, default_value = "openraft")]
    pub backend: ServeBackend,
    /// Where the nodes keep their data (default: a new directory under the system temp dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Plaintext peer traffic instead of generated mutual-TLS certificates.
    #[arg(long)]
    pub insecure: bool,
    /// FAULT INJECTION: pass --fault-invalidate-lease-on-error to every node.
    #[arg(long)]
    pub fault_invalidate_lease_on_error: bool,
}

fn parse_fraction(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("expected a fraction in [0, 1], got `{value}`")),
    }
}

/// Parses a byte count: `4096`, `4K` or `4KiB` (both 1024-based), at least 1 and at most 16 MiB.
fn parse_size(value: &str) -> Result<usize, String> {
    let bad =
        || format!("expected a size from 1 to 16MiB such as 256, 4096 or 64KiB, got `{value}`");
    let trimmed = value.trim();
    let (number, scale) = match trimmed
        .strip_suffix("KiB")
        .or_else(|| trimmed.strip_suffix('K'))
        .or_else(|| trimmed.strip_suffix('k'))
    {
        Some(n) => (n, 1024),
        None => (trimmed, 1),
    };
    let bytes = number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)?;
    if (1..=16 << 20).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(bad())
    }
}

/// Parses `250ms`, `5s`, `1.5s`, `100us` or a bare number of milliseconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration `{value}` (use e.g. 500ms, 5s, 100us)");
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = value.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else {
        (value, 1e-3)
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    if !number.is_finite() || !(0.0..=1e9).contains(&number) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(number * scale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(line: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("raftkv").chain(line.split_whitespace()))
            .map(|cli| cli.command)
    }

    /// The flags of a `bench` line that must parse.
    fn bench(line: &str) -> WorkloadArgs {
        match parse(line) {
            Ok(Command::Bench(args)) => args,
            other => panic!("expected bench from `{line}`, got {other:?}"),
        }
    }

    /// What clap says when it refuses `line`.
    fn refusal(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_flags_parse() {
        let args = bench(
            "bench --backend raftrs --clients 256 --duration 2s --rtt 1ms --read-ratio 0.9 \
             --conflict-rate 0.5 --value-size 128 --json --baseline --seed 7",
        );
        let options = args.options();
        assert_eq!(options.backend, BackendChoice::RaftRs);
        assert_eq!(options.clients, 256);
        assert_eq!(options.duration, Duration::from_secs(2));
        assert_eq!(options.rtt, Duration::from_millis(1));
        assert_eq!(options.read_ratio, 0.9);
        assert_eq!(options.value_size, 128);
        assert!(options.json && options.baseline);
        assert_eq!(options.seed, 7);
    }

    #[test]
    fn data_dir_selects_durable_storage() {
        let args = bench("bench --data-dir /tmp/x --clients 64");
        assert_eq!(args.options().data_dir, Some(PathBuf::from("/tmp/x")));
        let Command::Demo(args) = parse("demo").unwrap() else {
            panic!("expected demo");
        };
        let options = args.options();
        assert_eq!(options.data_dir, None, "memory stays the default");
        assert_eq!(options.backend, BackendChoice::Both);
        assert_eq!(options.clients, 8);
        assert!(parse("demo --data-dir").is_err());
    }

    #[test]
    fn bad_input_is_explained() {
        assert!(refusal("bench --clients x").contains("--clients"));
        assert!(refusal("bench --clients 0").contains("--clients"));
        assert!(refusal("bench --read-ratio 2").contains("fraction"));
        assert!(refusal("bench --backend etcd").contains("etcd"));
        assert!(refusal("frobnicate").contains("frobnicate"));
        assert!(parse("").is_err(), "a subcommand is required");
    }

    #[test]
    fn sweep_flags_parse() {
        let args = bench(
            "bench --sweep --sweep-out /tmp/r --sweep-clients 1,4 --sweep-value-sizes 16,64KiB,2k \
             --sweep-read-ratios 0.5,0.9 --sweep-nodes 3 --sweep-storage memory,redb \
             --data-dir /tmp/d --duration 200ms --baseline",
        );
        assert!(args.sweep && args.baseline);
        assert_eq!(args.sweep_out, PathBuf::from("/tmp/r"));
        assert_eq!(args.sweep_clients, vec![1, 4]);
        assert_eq!(args.sweep_value_sizes, vec![16, 65536, 2048]);
        assert_eq!(args.sweep_read_ratios, vec![0.5, 0.9]);
        assert_eq!(args.sweep_nodes, vec![3]);
        assert_eq!(
            args.sweep_storage,
            vec![StorageChoice::Memory, StorageChoice::Redb]
        );
        assert_eq!(args.options().duration, Duration::from_millis(200));
    }

    #[test]
    fn write_path_picks_one_side_and_excludes_the_whole_comparison() {
        let args = bench("bench --backend raftrs --write-path direct-encoded --clients 1");
        assert_eq!(args.write_path, Some(WritePathSide::DirectEncoded));
        assert_eq!(args.options().clients, 1);
        let args = bench("bench");
        assert_eq!(args.write_path, None);
        assert!(refusal("bench --write-path adapter --baseline").contains("--baseline"));
        assert!(refusal("bench --write-path adapter --sweep").contains("--sweep"));
        assert!(refusal("bench --write-path nothing").contains("nothing"));
    }

    #[test]
    fn demo_refuses_the_flags_only_bench_runs() {
        let Command::Demo(args) = parse("demo --sweep").unwrap() else {
            panic!("expected demo");
        };
        assert_eq!(args.bench_only_flag(), Some("--sweep"));
        let Command::Demo(args) = parse("demo --write-path adapter").unwrap() else {
            panic!("expected demo");
        };
        assert_eq!(args.bench_only_flag(), Some("--write-path"));
        assert_eq!(bench("bench --baseline").bench_only_flag(), None);
    }

    #[test]
    fn rounds_belong_to_the_baseline_comparison() {
        let args = bench("bench --baseline");
        assert_eq!(args.options().rounds, 5);
        let args = bench("bench --baseline --rounds 1");
        assert_eq!(args.options().rounds, 1);
        assert!(refusal("bench --rounds 3").contains("--baseline"));
        assert!(refusal("bench --baseline --rounds 0").contains("0"));
        assert!(refusal("bench --sweep --baseline --rounds 3").contains("--sweep"));
    }

    #[test]
    fn sweep_defaults_cover_the_grid() {
        let args = bench("bench --sweep");
        assert_eq!(args.sweep_out, PathBuf::from("sweep-report"));
        assert_eq!(args.sweep_clients, vec![1, 4, 16, 64, 256, 1024]);
        assert_eq!(args.sweep_value_sizes, vec![16, 256, 4096, 65536]);
        assert_eq!(args.sweep_read_ratios, vec![0.0, 0.5, 0.9]);
        assert_eq!(args.sweep_nodes, vec![3, 5]);
        assert!(
            args.sweep_storage.is_empty(),
            "memory, plus redb with --data-dir"
        );
        let args = bench("bench");
        assert!(!args.sweep, "a single run stays the default");
    }

    #[test]
    fn bad_sweep_values_are_explained() {
        assert!(refusal("bench --sweep --sweep-clients 0").contains("--sweep-clients"));
        assert!(refusal("bench --sweep --sweep-clients 1,x").contains("--sweep-clients"));
        assert!(refusal("bench --sweep --sweep-value-sizes 0").contains("size from 1"));
        assert!(refusal("bench --sweep --sweep-value-sizes 32768K").contains("16MiB"));
        assert!(refusal("bench --sweep --sweep-value-sizes 4MB").contains("4MB"));
        assert!(refusal("bench --sweep --sweep-read-ratios 0.5,1.5").contains("fraction"));
        assert!(refusal("bench --sweep --sweep-nodes 2").contains("--sweep-nodes"));
        assert!(refusal("bench --sweep --sweep-storage disk").contains("disk"));
        // An axis without --sweep would silently do nothing.
        assert!(refusal("bench --sweep-clients 4").contains("--sweep"));
        assert!(refusal("bench --sweep-out /tmp/r").contains("--sweep"));
    }

    #[test]
    fn serve_flags_parse() {
        let Command::Serve(args) = parse(
            "serve --id 1 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 --listen 127.0.0.1:7001 \
             --redis 127.0.0.1:6380 --data-dir /tmp/n1 --backend raftrs --insecure \
             --election-timeout-min 150ms --fault-invalidate-lease-on-error",
        )
        .unwrap() else {
            panic!("expected serve");
        };
        assert_eq!(args.id, Some(1));
        assert_eq!(
            args.peers,
            vec![
                PeerArg {
                    id: 2,
                    addr: "127.0.0.1:7002".parse().unwrap()
                },
                PeerArg {
                    id: 3,
                    addr: "127.0.0.1:7003".parse().unwrap()
                }
            ]
        );
        assert_eq!(args.backend, Some(ServeBackend::Raftrs));
        assert_eq!(args.election_timeout_min, Some(Duration::from_millis(150)));
        assert!(args.insecure && args.fault_invalidate_lease_on_error);
        assert!(
            parse("serve --peer 2:127.0.0.1:7002")
                .unwrap_err()
                .to_string()
                .contains("ID=HOST:PORT")
        );
    }

    #[test]
    fn certs_and_cluster_parse() {
        let Command::Certs(args) = parse("certs --nodes 1,2,3 --out /tmp/c").unwrap() else {
            panic!("expected certs");
        };
        assert_eq!(args.nodes, vec![1, 2, 3]);
        let Command::Cluster(args) = parse("cluster --nodes 3 --backend raftrs").unwrap() else {
            panic!("expected cluster");
        };
        assert_eq!((args.nodes, args.backend), (3, ServeBackend::Raftrs));
        assert!(parse("cluster --nodes 0").is_err());
    }

    #[test]
    fn durations_accept_common_suffixes() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("100us").unwrap(), Duration::from_micros(100));
        assert_eq!(parse_duration("20").unwrap(), Duration::from_millis(20));
        assert!(parse_duration("-1s").is_err());
    }
}
