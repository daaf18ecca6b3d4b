//! End to end: three real `raftkv serve` processes on 127.0.0.1, driven by the `redis` client
//! crate from concurrent tasks, with SIGKILL, restarts and SIGSTOP/SIGCONT of the leader.
//! Histories of the hot keys are checked by the conformance suite's linearizability checker.
//!
//! The default run is short; `RAFTKV_E2E_LONG=1` runs every workload phase ten times longer.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use conformance_tests::checker::{self, CheckOptions, Input, Output, Recorder};
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Value};

const NODES: usize = 3;
/// Bound on one client request, above the servers' request deadline.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on finding a leader after a start or a failure.
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);

/// The processes of several tests would compete for two cores and time out elections: one
/// cluster at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn phase(short: Duration) -> Duration {
    if std::env::var_os("RAFTKV_E2E_LONG").is_some() {
        short * 10
    } else {
        short
    }
}

fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect()
}

/// Three `raftkv serve` children. Dropping it kills (SIGKILL works on stopped processes too)
/// and reaps every child, whatever way the test ends.
struct Procs {
    dir: tempfile::TempDir,
    children: Vec<Option<Child>>,
    args: Vec<Vec<String>>,
    redis_ports: Vec<u16>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Procs {
    fn start(backend: &str, tls: bool, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let exe = env!("CARGO_BIN_EXE_raftkv");
        let tls_dir = dir.path().join("tls");
        if tls {
            let status = Command::new(exe)
                .args(["certs", "--nodes", "1,2,3", "--out"])
                .arg(&tls_dir)
                .stdout(Stdio::null())
                .status()
                .expect("run raftkv certs");
            assert!(status.success(), "raftkv certs failed");
        }
        let ports = free_ports(2 * NODES);
        let (peer_ports, redis_ports) = ports.split_at(NODES);
        let mut args = Vec::new();
        for i in 0..NODES {
            let id = i + 1;
            let mut a: Vec<String> = vec![
                "serve".into(),
                "--id".into(),
                id.to_string(),
                "--listen".into(),
                format!("127.0.0.1:{}", peer_ports[i]),
                "--redis".into(),
                format!("127.0.0.1:{}", redis_ports[i]),
                "--data-dir".into(),
                dir.path().join(format!("node-{id}")).display().to_string(),
                "--backend".into(),
                backend.into(),
                "--request-timeout".into(),
                "3s".into(),
            ];
            for (j, port) in peer_ports.iter().enumerate() {
                if j != i {
                    a.push("--peer".into());
                    a.push(format!("{}=127.0.0.1:{port}", j + 1));
                }
            }
            if tls {
                a.push("--tls-dir".into());
                a.push(tls_dir.display().to_string());
            } else {
                a.push("--insecure".into());
            }
            a.extend(extra.iter().map(|s| s.to_string()));
            args.push(a);
        }
        let mut procs = Self {
            dir,
            children: (0..NODES).map(|_| None).collect(),
            args,
            redis_ports: redis_ports.to_vec(),
        };
        for i in 0..NODES {
            procs.spawn(i);
        }
        procs
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{}.log", i + 1))
    }

    fn spawn(&mut self, i: usize) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args(&self.args[i])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn raftkv serve");
        self.children[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, i: usize, signal: &str) {
        let pid = self.children[i].as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    fn logs(&self) -> String {
        (0..NODES)
            .map(|i| {
                let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- node {} ---\n{}",
                    i + 1,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn connect(port: u16) -> redis::RedisResult<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    match tokio::time::timeout(OP_TIMEOUT, client.get_multiplexed_async_connection()).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
    }
}

async fn timed<T>(
    future: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(OP_TIMEOUT, future).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
    }
}

async fn info(port: u16) -> redis::RedisResult<HashMap<String, String>> {
    let mut con = connect(port).await?;
    let text: String = timed(redis::cmd("INFO").query_async(&mut con)).await?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect())
}

fn number(info: &HashMap<String, String>, key: &str) -> f64 {
    info.get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO has no numeric {key}: {info:?}"))
}

/// The index of the node that leads (and answers INFO), among `candidates`.
async fn find_leader(procs: &Procs, candidates: &[usize]) -> usize {
    let deadline = Instant::now() + LEADER_TIMEOUT;
    while Instant::now() < deadline {
        let mut best: Option<(f64, usize)> = None;
        for &i in candidates {
            if let Ok(info) = info(procs.redis_ports[i]).await
                && info.get("raft_role").map(String::as_str) == Some("leader")
            {
                let term = number(&info, "raft_term");
                if best.is_none_or(|(t, _)| term > t) {
                    best = Some((term, i));
                }
            }
        }
        if let Some((_, i)) = best {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader within {LEADER_TIMEOUT:?}\n{}", procs.logs());
}

/// Values written are unique (client id in the high bits), so the checker's oracles can tell
/// every write apart.
fn unique(client: u64, seq: u64) -> u64 {
    (client << 32) | seq
}

fn key_name(key: u64) -> String {
    format!("k{key}")
}

fn parse_value(value: Option<String>) -> Option<u64> {
    value.and_then(|v| v.parse().ok())
}

/// What a workload client did with its counter.
#[derive(Debug, Default)]
struct Counters {
    acked: AtomicU64,
    unknown: AtomicU64,
}

/// Mix of operations a client runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mix {
    /// SET, GET, INCR and WATCH/GET/MULTI/SET/EXEC in turn.
    All,
    /// Mostly GETs, some SETs.
    ReadHeavy,
}

struct Client {
    id: u64,
    ports: Vec<u16>,
    port_index: usize,
    con: Option<MultiplexedConnection>,
    recorder: Recorder,
    keys: u64,
    counters: Arc<Counters>,
}

impl Client {
    async fn connection(&mut self) -> redis::RedisResult<&mut MultiplexedConnection> {
        if self.con.is_none() {
            let port = self.ports[self.port_index % self.ports.len()];
            self.con = Some(connect(port).await?);
        }
        Ok(self.con.as_mut().expect("just connected"))
    }

    /// Drops the connection (its WATCH/MULTI state goes with it) and moves to the next node.
    fn reset(&mut self) {
        self.con = None;
        self.port_index += 1;
    }

    async fn set(&mut self, key: u64, value: u64) {
        let pending = self.recorder.invoke(self.id, key, Input::Put(value));
        let result: redis::RedisResult<()> = match self.connection().await {
            Ok(con) => timed(con.set(key_name(key), value.to_string())).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => pending.ok(Output::Written, None),
            Err(_) => {
                pending.unknown();
                self.reset();
            }
        }
    }

    async fn get(&mut self, key: u64) -> Option<Option<u64>> {
        let pending = self.recorder.invoke(self.id, key, Input::Get);
        let result: redis::RedisResult<Option<String>> = match self.connection().await {
            Ok(con) => timed(con.get(key_name(key))).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(value) => {
                let value = parse_value(value);
                pending.ok(Output::Value(value), None);
                Some(value)
            }
            Err(_) => {
                pending.unknown();
                self.reset();
                None
            }
        }
    }

    async fn incr(&mut self) {
        let key = format!("ctr{}", self.id);
        let result: redis::RedisResult<i64> = match self.connection().await {
            Ok(con) => timed(con.incr(key, 1)).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => self.counters.acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => {
                self.reset();
                self.counters.unknown.fetch_add(1, Ordering::Relaxed)
            }
        };
    }

    /// WATCH k / GET k / MULTI / SET k / EXEC. Returns whether EXEC committed (`None`: error).
    async fn watch_exec(&mut self, key: u64, new: u64) -> Option<bool> {
        let name = key_name(key);
        let steps = async {
            let con = self.connection().await?;
            timed(redis::cmd("WATCH").arg(&name).query_async::<()>(con)).await?;
            let seen: Option<String> = timed(con.get(&name)).await?;
            Ok::<_, redis::RedisError>(parse_value(seen))
        };
        let seen = match steps.await {
            Ok(seen) => seen,
            Err(_) => {
                self.reset();
                return None;
            }
        };
        // The transaction is a compare-and-set of what GET saw: with unique values a watched
        // key that still holds that value cannot have changed in between.
        let pending = self.recorder.invoke(
            self.id,
            key,
            Input::Cas {
                expected: seen,
                new,
            },
        );
        let result = async {
            let con = self.connection().await?;
            timed(redis::cmd("MULTI").query_async::<()>(con)).await?;
            timed(
                redis::cmd("SET")
                    .arg(&name)
                    .arg(new.to_string())
                    .query_async::<Value>(con),
            )
            .await?;
            timed(redis::cmd("EXEC").query_async::<Value>(con)).await
        }
        .await;
        match result {
            Ok(Value::Nil) => {
                // Nothing was written; the check only needs the writes that happened.
                pending.failed();
                Some(false)
            }
            Ok(Value::Array(items)) if items.len() == 1 => {
                pending.ok(Output::Cas(true), None);
                Some(true)
            }
            Ok(other) => panic!("unexpected EXEC reply {other:?}"),
            Err(_) => {
                pending.unknown();
                self.reset();
                None
            }
        }
    }

    async fn run(mut self, mix: Mix, stop: Arc<AtomicBool>) {
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            seq += 1;
            let key = (seq * 7 + self.id) % self.keys;
            match (mix, seq % 4) {
                (Mix::All, 0) | (Mix::ReadHeavy, 0) => self.set(key, unique(self.id, seq)).await,
                (Mix::All, 1) | (Mix::ReadHeavy, _) => {
                    self.get(key).await;
                }
                (Mix::All, 2) => self.incr().await,
                (Mix::All, _) => {
                    self.watch_exec(key, unique(self.id, seq)).await;
                }
            }
        }
    }
}

/// Starts `clients` workload clients, the first on `ports[0]`, the next on `ports[1]`, ...
fn spawn_clients(
    first_id: u64,
    clients: usize,
    ports: &[u16],
    recorder: &Recorder,
    keys: u64,
    mix: Mix,
    stop: &Arc<AtomicBool>,
) -> (Vec<tokio::task::JoinHandle<()>>, Vec<Arc<Counters>>) {
    let mut handles = Vec::new();
    let mut counters = Vec::new();
    for c in 0..clients {
        let count = Arc::new(Counters::default());
        counters.push(Arc::clone(&count));
        let mut rotated = ports.to_vec();
        rotated.rotate_left(c % ports.len());
        let client = Client {
            id: first_id + c as u64,
            ports: rotated,
            port_index: 0,
            con: None,
            recorder: recorder.clone(),
            keys,
            counters: count,
        };
        handles.push(tokio::spawn(client.run(mix, Arc::clone(stop))));
    }
    (handles, counters)
}

async fn stop_clients(stop: &AtomicBool, handles: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        // A client finishes its current request (bounded by OP_TIMEOUT per step) and exits.
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("client stops")
            .expect("client task");
    }
}

fn check_history(recorder: &Recorder, procs: &Procs) {
    let history = recorder.history();
    let summary = history.summary();
    eprintln!("history: {summary:?}");
    let options = CheckOptions {
        max_time: Some(Duration::from_secs(60)),
        ..CheckOptions::default()
    };
    if let Err(problem) = checker::verify(&history, None, &options) {
        panic!("history check failed: {problem}\n{}", procs.logs());
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// SIGKILL the leader mid-workload, restart it on its data directory; then SIGKILL every node
/// and restart them all: acknowledged writes (and counters) survive, the history checks out.
fn kill_and_restart(backend: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rt = runtime();
    rt.block_on(async {
        let mut procs = Procs::start(backend, true, &[]);
        let all: Vec<usize> = (0..NODES).collect();
        let leader = find_leader(&procs, &all).await;
        let recorder = Recorder::new();
        let stop = Arc::new(AtomicBool::new(false));
        let (handles, counters) =
            spawn_clients(1, 6, &procs.redis_ports, &recorder, 4, Mix::All, &stop);
        tokio::time::sleep(phase(Duration::from_millis(1500))).await;
        procs.kill(leader);
        tokio::time::sleep(phase(Duration::from_millis(1500))).await;
        procs.spawn(leader);
        tokio::time::sleep(phase(Duration::from_millis(1500))).await;
        stop_clients(&stop, handles).await;

        // The restarted node caught up with the cluster.
        let others: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
        let current = find_leader(&procs, &others).await;
        let target = number(
            &info(procs.redis_ports[current]).await.unwrap(),
            "raft_commit_index",
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let applied = info(procs.redis_ports[leader])
                .await
                .map(|i| number(&i, "raft_applied_index"))
                .unwrap_or(0.0);
            if applied >= target {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "restarted node stuck at {applied} < {target}\n{}",
                procs.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // Every node dies at once and comes back from its own log.
        for i in 0..NODES {
            procs.kill(i);
        }
        for i in 0..NODES {
            procs.spawn(i);
        }
        let leader = find_leader(&procs, &all).await;
        let mut reader = Client {
            id: 1000,
            ports: vec![procs.redis_ports[(leader + 1) % NODES]],
            port_index: 0,
            con: None,
            recorder: recorder.clone(),
            keys: 4,
            counters: Arc::new(Counters::default()),
        };
        for key in 0..4 {
            assert!(reader.get(key).await.is_some(), "final read of k{key}");
        }
        let mut con = connect(procs.redis_ports[leader]).await.unwrap();
        for (c, count) in counters.iter().enumerate() {
            let value: Option<String> = timed(con.get(format!("ctr{}", c + 1))).await.unwrap();
            let value: u64 = value.map_or(0, |v| v.parse().unwrap());
            let acked = count.acked.load(Ordering::Relaxed);
            let unknown = count.unknown.load(Ordering::Relaxed);
            assert!(
                (acked..=acked + unknown).contains(&value),
                "counter {c}: {value} not in {acked}..={}",
                acked + unknown
            );
        }
        let summary = recorder.history().summary();
        eprintln!("{backend}: kill and restart: {summary:?}");
        check_history(&recorder, &procs);
    });
}

/// SIGSTOP the leader for longer than its lease (and an election), keep writing through the
/// other nodes, SIGCONT: nothing the paused leader answers afterwards is stale.
fn pause_leader(backend: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rt = runtime();
    rt.block_on(async {
        let procs = Procs::start(backend, false, &[]);
        let all: Vec<usize> = (0..NODES).collect();
        let leader = find_leader(&procs, &all).await;
        let before = info(procs.redis_ports[leader]).await.unwrap();
        let lease_ms = number(&before, "lease_duration_ms");
        let term_before = number(&before, "raft_term");
        let followers: Vec<u16> = all
            .iter()
            .filter(|&&i| i != leader)
            .map(|&i| procs.redis_ports[i])
            .collect();
        let recorder = Recorder::new();
        let stop = Arc::new(AtomicBool::new(false));
        // Readers stuck on the paused leader, writers and readers on the others.
        let (mut handles, _) = spawn_clients(
            1,
            3,
            &[procs.redis_ports[leader]],
            &recorder,
            2,
            Mix::ReadHeavy,
            &stop,
        );
        let (more, _) = spawn_clients(10, 4, &followers, &recorder, 2, Mix::All, &stop);
        handles.extend(more);
        tokio::time::sleep(phase(Duration::from_millis(800))).await;
        procs.signal(leader, "-STOP");
        let pause = Duration::from_millis(lease_ms as u64) * 3 + Duration::from_millis(1500);
        tokio::time::sleep(pause).await;
        let others: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
        let new_leader = find_leader(&procs, &others).await;
        // Writes acknowledged by the new leader, then reads sent to the paused node: they are
        // invoked after the writes completed, so answering them from the old state is stale.
        let mut writer = Client {
            id: 500,
            ports: followers.clone(),
            port_index: 0,
            con: None,
            recorder: recorder.clone(),
            keys: 2,
            counters: Arc::new(Counters::default()),
        };
        for key in 0..2 {
            writer.set(key, unique(500, key + 1)).await;
        }
        let probes: Vec<_> = (0..16u64)
            .map(|n| {
                let mut probe = Client {
                    id: 600 + n,
                    ports: vec![procs.redis_ports[leader]],
                    port_index: 0,
                    con: None,
                    recorder: recorder.clone(),
                    keys: 2,
                    counters: Arc::new(Counters::default()),
                };
                tokio::spawn(async move {
                    probe.get(n % 2).await;
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        procs.signal(leader, "-CONT");
        for probe in probes {
            tokio::time::timeout(Duration::from_secs(30), probe)
                .await
                .expect("probe ends")
                .expect("probe task");
        }
        tokio::time::sleep(phase(Duration::from_millis(1500))).await;
        stop_clients(&stop, handles).await;
        let after = info(procs.redis_ports[new_leader]).await.unwrap();
        assert!(
            number(&after, "raft_term") > term_before,
            "a new term began while the leader was stopped"
        );
        let summary = recorder.history().summary();
        eprintln!("{backend}: pause {pause:?} (lease {lease_ms} ms): {summary:?}");
        check_history(&recorder, &procs);
    });
}

/// The seed's workload: WATCH/GET/MULTI/SET/EXEC on two hot keys (many EXECs fail) while
/// other clients GET. Returns (lease hit rate on the leader, EXEC abort ratio, GET p50).
fn conflict_storm(backend: &str, extra: &[&str]) -> (f64, f64, Duration) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rt = runtime();
    rt.block_on(async {
        let procs = Procs::start(backend, false, extra);
        let all: Vec<usize> = (0..NODES).collect();
        let leader = find_leader(&procs, &all).await;
        let leader_port = procs.redis_ports[leader];
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        let execs = Arc::new(Counters::default());
        for c in 0..4u64 {
            let stop = Arc::clone(&stop);
            let execs = Arc::clone(&execs);
            let port = procs.redis_ports[c as usize % NODES];
            handles.push(tokio::spawn(async move {
                let mut client = Client {
                    id: c + 1,
                    ports: vec![port],
                    port_index: 0,
                    con: None,
                    recorder: Recorder::new(),
                    keys: 2,
                    counters: Arc::new(Counters::default()),
                };
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    // `acked` counts committed EXECs, `unknown` the ones answered nil.
                    match client
                        .watch_exec((seq * 7 + c) % 2, unique(c + 1, seq))
                        .await
                    {
                        Some(true) => execs.acked.fetch_add(1, Ordering::Relaxed),
                        Some(false) => execs.unknown.fetch_add(1, Ordering::Relaxed),
                        None => 0,
                    };
                }
            }));
        }
        let latencies = Arc::new(Mutex::new(Vec::new()));
        for c in 0..4usize {
            let stop = Arc::clone(&stop);
            let latencies = Arc::clone(&latencies);
            let port = procs.redis_ports[c % NODES];
            handles.push(tokio::spawn(async move {
                let Ok(mut con) = connect(port).await else {
                    return;
                };
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let started = Instant::now();
                    let got: redis::RedisResult<Option<String>> =
                        timed(con.get(key_name(seq % 2))).await;
                    if got.is_ok() {
                        latencies.lock().unwrap().push(started.elapsed());
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let before = info(leader_port).await.unwrap();
        tokio::time::sleep(phase(Duration::from_secs(2))).await;
        let after = info(leader_port).await.unwrap();
        stop_clients(&stop, handles).await;
        let delta = |key: &str| number(&after, key) - number(&before, key);
        let hits = delta("lease_hits");
        let misses = delta("lease_misses");
        let committed = execs.acked.load(Ordering::Relaxed) as f64;
        let aborted = execs.unknown.load(Ordering::Relaxed) as f64;
        let mut all_latencies = latencies.lock().unwrap().clone();
        all_latencies.sort();
        let p50 = all_latencies
            .get(all_latencies.len() / 2)
            .copied()
            .unwrap_or_default();
        let mean = all_latencies.iter().sum::<Duration>() / all_latencies.len().max(1) as u32;
        eprintln!(
            "{backend} {extra:?}: lease hits {hits} misses {misses} (hit rate {:.4}), EXEC \
             committed {committed} aborted {aborted}, GET p50 {p50:?} mean {mean:?} over {} GETs",
            hits / (hits + misses).max(1.0),
            all_latencies.len()
        );
        assert!(
            hits + misses > 100.0,
            "too few reads measured\n{}",
            procs.logs()
        );
        (
            hits / (hits + misses),
            aborted / (committed + aborted).max(1.0),
            p50,
        )
    })
}

fn storm_keeps_the_lease(backend: &str) {
    let (hit_rate, abort_ratio, _) = conflict_storm(backend, &[]);
    assert!(
        abort_ratio > 0.2,
        "the workload must conflict (aborted {abort_ratio:.2})"
    );
    assert!(hit_rate >= 0.99, "lease hit rate {hit_rate:.4} < 0.99");
    // The seed bug, switched on: the same workload loses the lease on every conflict.
    let (buggy, _, _) = conflict_storm(backend, &["--fault-invalidate-lease-on-error"]);
    assert!(
        buggy < hit_rate && buggy < 0.99,
        "the fault injection should cost lease hits ({buggy:.4} vs {hit_rate:.4})"
    );
}

/// A node process answers basic commands and bad requests the Redis way.
fn protocol_basics(backend: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rt = runtime();
    rt.block_on(async {
        let procs = Procs::start(backend, false, &["--max-request-bytes", "4096"]);
        let all: Vec<usize> = (0..NODES).collect();
        let leader = find_leader(&procs, &all).await;
        let follower = procs.redis_ports[(leader + 1) % NODES];
        let mut con = connect(follower).await.unwrap();
        let ok: String = timed(redis::cmd("SET").arg("a").arg("1").query_async(&mut con))
            .await
            .unwrap();
        assert_eq!(ok, "OK");
        let nx: Option<String> = timed(
            redis::cmd("SET")
                .arg("a")
                .arg("2")
                .arg("NX")
                .query_async(&mut con),
        )
        .await
        .unwrap();
        assert_eq!(nx, None, "NX on an existing key");
        let n: i64 = timed(con.incr("a", 41)).await.unwrap();
        assert_eq!(n, 42);
        let n: i64 = timed(con.decr("a", 2)).await.unwrap();
        assert_eq!(n, 40);
        let () = timed(con.mset(&[("b", "x"), ("c", "y")])).await.unwrap();
        let values: Vec<Option<String>> = timed(con.mget(&["a", "b", "zz", "c"])).await.unwrap();
        assert_eq!(
            values,
            vec![Some("40".into()), Some("x".into()), None, Some("y".into())]
        );
        let exists: i64 = timed(con.exists(&["a", "zz", "b"])).await.unwrap();
        assert_eq!(exists, 2);
        let deleted: i64 = timed(con.del(&["a", "b", "zz"])).await.unwrap();
        assert_eq!(deleted, 2);
        let error = timed(con.incr::<_, _, i64>("c", 1)).await.unwrap_err();
        assert!(error.to_string().contains("not an integer"), "{error}");
        let error = timed(
            redis::cmd("SET")
                .arg("k")
                .arg("v")
                .arg("EX")
                .arg(10)
                .query_async::<()>(&mut con),
        )
        .await
        .unwrap_err();
        assert!(error.to_string().contains("expiry"), "{error}");
        let error = timed(redis::cmd("FLUSHALL").query_async::<()>(&mut con))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("unknown command"), "{error}");
        let error = timed(redis::cmd("GET").query_async::<()>(&mut con))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("wrong number"), "{error}");
        // The connection is still usable after errors.
        let pong: String = timed(redis::cmd("PING").query_async(&mut con))
            .await
            .unwrap();
        assert_eq!(pong, "PONG");
        // MULTI with an INCR and a GET commits as one unit and answers every command.
        timed(redis::cmd("MULTI").query_async::<()>(&mut con))
            .await
            .unwrap();
        timed(redis::cmd("INCR").arg("m").query_async::<()>(&mut con))
            .await
            .unwrap();
        timed(redis::cmd("INCR").arg("m").query_async::<()>(&mut con))
            .await
            .unwrap();
        timed(redis::cmd("GET").arg("m").query_async::<()>(&mut con))
            .await
            .unwrap();
        let exec: Value = timed(redis::cmd("EXEC").query_async(&mut con))
            .await
            .unwrap();
        assert_eq!(
            exec,
            Value::Array(vec![
                Value::Int(1),
                Value::Int(2),
                Value::BulkString(b"2".to_vec())
            ])
        );
        // A watched key changed by another client makes EXEC answer nil.
        let mut other = connect(procs.redis_ports[leader]).await.unwrap();
        timed(redis::cmd("WATCH").arg("w").query_async::<()>(&mut con))
            .await
            .unwrap();
        let () = timed(other.set("w", "changed")).await.unwrap();
        timed(redis::cmd("MULTI").query_async::<()>(&mut con))
            .await
            .unwrap();
        timed(
            redis::cmd("SET")
                .arg("w")
                .arg("mine")
                .query_async::<()>(&mut con),
        )
        .await
        .unwrap();
        let exec: Value = timed(redis::cmd("EXEC").query_async(&mut con))
            .await
            .unwrap();
        assert_eq!(exec, Value::Nil);
        let w: String = timed(other.get("w")).await.unwrap();
        assert_eq!(w, "changed");
        // WATCH compares versions, not values: a key changed and set back, or created and
        // deleted again, was modified and EXEC answers nil; an untouched one commits.
        watch_exec_after(
            &mut con,
            &mut other,
            "aba",
            &[("SET", "A")],
            &[("SET", "B"), ("SET", "A")],
        )
        .await;
        watch_exec_after(
            &mut con,
            &mut other,
            "gone",
            &[],
            &[("SET", "x"), ("DEL", "")],
        )
        .await;
        let aba: String = timed(other.get("aba")).await.unwrap();
        assert_eq!(aba, "A", "the aborted EXEC wrote nothing");
        timed(redis::cmd("WATCH").arg("aba").query_async::<()>(&mut con))
            .await
            .unwrap();
        let exec = multi_set_exec(&mut con, "aba").await;
        assert_eq!(
            exec,
            Value::Array(vec![Value::Okay]),
            "nothing changed: it commits"
        );
        // INFO names role and lease figures.
        let leader_info = info(procs.redis_ports[leader]).await.unwrap();
        assert_eq!(leader_info["raft_role"], "leader");
        assert!(leader_info.contains_key("lease_hit_rate"));
        let follower_info = info(follower).await.unwrap();
        assert!(number(&follower_info, "reads_forwarded") > 0.0);
        assert!(number(&follower_info, "writes_forwarded") > 0.0);
        drop(con);
        // An oversized request gets an error reply before the connection closes.
        oversized_request(follower).await;
    });
}

/// Runs `before` on `key` from `other`, WATCHes `key` on `con`, runs `between` from `other`,
/// then checks that `con`'s MULTI/SET/EXEC answers nil. Each step is a command name and an
/// argument after the key (empty: none).
async fn watch_exec_after(
    con: &mut MultiplexedConnection,
    other: &mut MultiplexedConnection,
    key: &str,
    before: &[(&str, &str)],
    between: &[(&str, &str)],
) {
    let run = |name: &str, arg: &str| {
        let mut cmd = redis::cmd(name);
        cmd.arg(key);
        if !arg.is_empty() {
            cmd.arg(arg);
        }
        cmd
    };
    for (name, arg) in before {
        timed(run(name, arg).query_async::<()>(other))
            .await
            .unwrap();
    }
    timed(redis::cmd("WATCH").arg(key).query_async::<()>(con))
        .await
        .unwrap();
    for (name, arg) in between {
        timed(run(name, arg).query_async::<()>(other))
            .await
            .unwrap();
    }
    assert_eq!(
        multi_set_exec(con, key).await,
        Value::Nil,
        "{key}: {between:?}"
    );
}

/// MULTI, SET `key` mine, EXEC: the EXEC reply.
async fn multi_set_exec(con: &mut MultiplexedConnection, key: &str) -> Value {
    timed(redis::cmd("MULTI").query_async::<()>(con))
        .await
        .unwrap();
    timed(
        redis::cmd("SET")
            .arg(key)
            .arg("mine")
            .query_async::<()>(con),
    )
    .await
    .unwrap();
    timed(redis::cmd("EXEC").query_async(con)).await.unwrap()
}

async fn oversized_request(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut request = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10000\r\n".to_vec();
    request.extend(std::iter::repeat_n(b'x', 10000));
    request.extend(b"\r\n");
    // The server may close before reading everything; what matters is the reply.
    let _ = stream.write_all(&request).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(OP_TIMEOUT, stream.read_to_end(&mut reply)).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.starts_with("-ERR Protocol error: request larger"),
        "{text:?}"
    );
}

/// A password makes every command but AUTH answer NOAUTH, and a wrong one WRONGPASS.
fn authentication() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let rt = runtime();
    rt.block_on(async {
        let procs = Procs::start(
            "openraft",
            false,
            &["--requirepass", "s3cret", "--max-clients", "3"],
        );
        find_leader_with_password(&procs).await;
        let mut con = connect(procs.redis_ports[0]).await.unwrap();
        let error = timed(con.get::<_, Option<String>>("k")).await.unwrap_err();
        assert!(error.to_string().contains("NOAUTH"), "{error}");
        let error = timed(redis::cmd("AUTH").arg("wrong").query_async::<()>(&mut con))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("WRONGPASS"), "{error}");
        timed(redis::cmd("AUTH").arg("s3cret").query_async::<()>(&mut con))
            .await
            .unwrap();
        let value: Option<String> = timed(con.get("k")).await.unwrap();
        assert_eq!(value, None);
        // Connections are bounded: beyond --max-clients a client gets an error and a close.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let port = procs.redis_ports[0];
        let _second = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let _third = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut fourth = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut reply = Vec::new();
        use tokio::io::AsyncReadExt;
        let _ = tokio::time::timeout(OP_TIMEOUT, fourth.read_to_end(&mut reply)).await;
        assert_eq!(
            String::from_utf8_lossy(&reply),
            "-ERR max number of clients reached\r\n"
        );
    });
}

async fn find_leader_with_password(procs: &Procs) {
    let deadline = Instant::now() + LEADER_TIMEOUT;
    let client = redis::Client::open(format!(
        "redis://:s3cret@127.0.0.1:{}/",
        procs.redis_ports[0]
    ))
    .unwrap();
    while Instant::now() < deadline {
        if let Ok(Ok(mut con)) =
            tokio::time::timeout(OP_TIMEOUT, client.get_multiplexed_async_connection()).await
            && timed(con.set::<_, _, ()>("probe", "1")).await.is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader\n{}", procs.logs());
}

#[test]
fn openraft_kill_and_restart() {
    kill_and_restart("openraft");
}

#[test]
fn raftrs_kill_and_restart() {
    kill_and_restart("raftrs");
}

#[test]
fn openraft_pause_leader() {
    pause_leader("openraft");
}

#[test]
fn raftrs_pause_leader() {
    pause_leader("raftrs");
}

#[test]
fn openraft_storm_keeps_the_lease() {
    storm_keeps_the_lease("openraft");
}

#[test]
fn raftrs_storm_keeps_the_lease() {
    storm_keeps_the_lease("raftrs");
}

#[test]
fn openraft_protocol_basics() {
    protocol_basics("openraft");
}

#[test]
fn raftrs_protocol_basics() {
    protocol_basics("raftrs");
}

#[test]
fn requirepass_is_enforced() {
    authentication();
}

#[test]
fn refuses_open_redis_port_without_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_raftkv"))
        .args([
            "serve",
            "--id",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--redis",
            "0.0.0.0:0",
        ])
        .args(["--insecure", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without a password"), "{stderr}");
    assert!(
        !Path::new(&dir.path().join("raft.redb")).exists(),
        "nothing opened"
    );
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["demo", "bench", "serve", "certs", "cluster"] {
        let output = Command::new(env!("CARGO_BIN_EXE_raftkv"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{sub} --help");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("Usage: raftkv"), "{sub}: {text}");
    }
}
