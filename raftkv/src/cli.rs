//! Command-line parsing. Hand-written: two subcommands and a handful of flags do not justify a
//! parser dependency on a 2-core build.

use std::time::Duration;

/// Which backends to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// openraft only.
    Openraft,
    /// raft-rs only.
    RaftRs,
    /// Both, side by side.
    Both,
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
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// The mixed demo with a transfer and a crash.
    Demo(Options),
    /// The configurable benchmark.
    Bench(Options),
    /// Print usage.
    Help,
}

/// Usage text.
pub const USAGE: &str = "\
usage: raftkv <demo|bench> [options]

  demo    3-node cluster per backend: writes, a conflict storm, lease and linearizable reads,
          a leadership transfer and a leader crash; prints both backends side by side
  bench   the same workload with knobs; --baseline adds the direct-library comparison

options:
  --backend openraft|raftrs|both   (default both)
  --clients N                      concurrent clients (default 8)
  --duration 5s                    measured phase length (ms, s suffixes; default 5s demo / 5s bench)
  --value-size BYTES               (default 64)
  --rtt 1ms                        simulated round trip between nodes (default 0)
  --read-ratio 0.5                 fraction of reads (default 0.5)
  --conflict-rate 0.5              fraction of conditional writes that conflict (default 0.5)
  --seed N                         (default 1)
  --json                           JSON array, one object per backend
  --baseline                       bench: drive openraft and raft-rs directly too
";

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Both,
            clients: 8,
            duration: Duration::from_secs(5),
            value_size: 64,
            rtt: Duration::ZERO,
            read_ratio: 0.5,
            conflict_rate: 0.5,
            json: false,
            baseline: false,
            seed: 1,
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let Some((command, flags)) = args.split_first() else {
        return Ok(Command::Help);
    };
    let make: fn(Options) -> Command = match command.as_str() {
        "demo" => Command::Demo,
        "bench" => Command::Bench,
        "help" | "--help" | "-h" => return Ok(Command::Help),
        other => return Err(format!("unknown command `{other}`")),
    };
    let mut options = Options::default();
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        let mut value = || {
            flags
                .next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--backend" => options.backend = parse_backend(&value()?)?,
            "--clients" => options.clients = parse_number(flag, &value()?)?,
            "--duration" => options.duration = parse_duration(&value()?)?,
            "--value-size" => options.value_size = parse_number(flag, &value()?)?,
            "--rtt" => options.rtt = parse_duration(&value()?)?,
            "--read-ratio" => options.read_ratio = parse_fraction(flag, &value()?)?,
            "--conflict-rate" => options.conflict_rate = parse_fraction(flag, &value()?)?,
            "--seed" => options.seed = parse_number(flag, &value()?)?,
            "--json" => options.json = true,
            "--baseline" => options.baseline = true,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if options.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    Ok(make(options))
}

fn parse_backend(value: &str) -> Result<BackendChoice, String> {
    match value {
        "openraft" => Ok(BackendChoice::Openraft),
        "raftrs" | "raft-rs" => Ok(BackendChoice::RaftRs),
        "both" => Ok(BackendChoice::Both),
        other => Err(format!(
            "unknown backend `{other}` (openraft, raftrs or both)"
        )),
    }
}

fn parse_number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag} expects a whole number, got `{value}`"))
}

fn parse_fraction(flag: &str, value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!(
            "{flag} expects a fraction in [0, 1], got `{value}`"
        )),
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
    if !number.is_finite() || number < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(number * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn bench_flags_parse() {
        let Command::Bench(options) = parse(&args(
            "bench --backend raftrs --clients 256 --duration 2s --rtt 1ms --read-ratio 0.9 \
             --conflict-rate 0.5 --value-size 128 --json --baseline --seed 7",
        ))
        .unwrap() else {
            panic!("expected bench");
        };
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
    fn bad_input_is_explained() {
        assert!(
            parse(&args("bench --clients x"))
                .unwrap_err()
                .contains("--clients")
        );
        assert!(
            parse(&args("bench --read-ratio 2"))
                .unwrap_err()
                .contains("fraction")
        );
        assert!(
            parse(&args("bench --backend etcd"))
                .unwrap_err()
                .contains("etcd")
        );
        assert!(parse(&args("serve")).unwrap_err().contains("serve"));
        assert!(
            parse(&args("demo --duration"))
                .unwrap_err()
                .contains("needs a value")
        );
        assert_eq!(parse(&[]).unwrap(), Command::Help);
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
