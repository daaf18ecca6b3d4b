//! `raftkv serve`: one node of a replicated Redis-protocol store in one process.
//!
//! * the Raft log in a redb file under the data directory, so a restarted node rejoins with it;
//! * the peer transport (`raftengine-tcp`, mutual TLS or an explicit `--insecure`), which also
//!   carries forwarded client requests from followers to the leader ([`forward`]);
//! * a RESP2 listener ([`conn`]), and optionally a Prometheus `/metrics` listener.

pub mod conn;
pub mod exec;
pub mod forward;
pub mod node;
pub mod resp;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use kv_lease::kv::{KvStateMachine, KvStore};
use kv_lease::{Lease, LeaseConfig};
use raftengine::{
    Config, Engine, EngineParts, LogStore, Role, SharedStateMachine, StartEngine,
    SuspendAwareClock, Transport,
};
use raftengine_redb::RedbLogStore;
use raftengine_tcp::{Security, TcpConfig, TcpTransport, TlsIdentity};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::cli::{ServeArgs, ServeBackend, parse_duration};
use conn::Front;
use forward::MuxTransport;
use node::Node;

/// How peers authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSecurity {
    /// Mutual TLS from the files `raftkv certs` wrote in this directory.
    Tls(PathBuf),
    /// Plaintext (explicitly requested).
    Insecure,
}

/// A node's complete settings, after merging the TOML file and the flags.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// This node.
    pub id: u64,
    /// The other voters and their peer addresses.
    pub peers: BTreeMap<u64, SocketAddr>,
    /// The peer listener.
    pub listen: SocketAddr,
    /// The Redis listener.
    pub redis: SocketAddr,
    /// The metrics listener, if any.
    pub metrics: Option<SocketAddr>,
    /// Where the log lives.
    pub data_dir: PathBuf,
    /// The Raft library.
    pub backend: ServeBackend,
    /// Peer authentication.
    pub security: PeerSecurity,
    /// `requirepass`.
    pub password: Option<String>,
    /// Raft heartbeat interval.
    pub heartbeat: Duration,
    /// Smallest election timeout.
    pub election_timeout_min: Duration,
    /// Largest election timeout.
    pub election_timeout_max: Duration,
    /// Deadline of one client request.
    pub request_timeout: Duration,
    /// Largest client request.
    pub max_request_bytes: usize,
    /// Most client connections.
    pub max_clients: usize,
    /// FAULT INJECTION: the seed bug (invalidate the lease on every error).
    pub fault_invalidate_lease_on_error: bool,
}

/// The TOML form of [`ServeArgs`].
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    id: Option<u64>,
    #[serde(default)]
    peers: BTreeMap<String, SocketAddr>,
    listen: Option<SocketAddr>,
    redis: Option<SocketAddr>,
    metrics: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    backend: Option<ServeBackend>,
    tls_dir: Option<PathBuf>,
    insecure: Option<bool>,
    requirepass: Option<String>,
    heartbeat: Option<String>,
    election_timeout_min: Option<String>,
    election_timeout_max: Option<String>,
    request_timeout: Option<String>,
    max_request_bytes: Option<usize>,
    max_clients: Option<usize>,
    fault_invalidate_lease_on_error: Option<bool>,
}

fn file_duration(name: &str, value: Option<String>) -> anyhow::Result<Option<Duration>> {
    value
        .map(|text| parse_duration(&text).map_err(anyhow::Error::msg))
        .transpose()
        .with_context(|| format!("setting `{name}`"))
}

impl ServeConfig {
    /// Merges `--config` (if given) with the flags (flags win) and checks the result.
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        let file: FileConfig = match &args.config {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
        };
        Self::merge(args, file)
    }

    fn merge(args: &ServeArgs, file: FileConfig) -> anyhow::Result<Self> {
        let id = args
            .id
            .or(file.id)
            .context("the node id is missing (--id or `id` in the config file)")?;
        if id == 0 {
            bail!("node ids start at 1");
        }
        let mut peers = BTreeMap::new();
        for (key, addr) in file.peers {
            let peer: u64 = key
                .parse()
                .with_context(|| format!("peer id `{key}` in the config file"))?;
            peers.insert(peer, addr);
        }
        for peer in &args.peers {
            peers.insert(peer.id, peer.addr);
        }
        if peers.contains_key(&id) || peers.contains_key(&0) {
            bail!("the peers must be the other nodes (ids from 1, not this node's {id})");
        }
        let listen = args
            .listen
            .or(file.listen)
            .context("the peer listen address is missing (--listen)")?;
        let redis = args
            .redis
            .or(file.redis)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 6379)));
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .context("the data directory is missing (--data-dir)")?;
        let insecure = args.insecure || file.insecure.unwrap_or(false);
        let security = match (args.tls_dir.clone().or(file.tls_dir), insecure) {
            (Some(_), true) => bail!("choose either --tls-dir or --insecure, not both"),
            (Some(dir), false) => PeerSecurity::Tls(dir),
            (None, true) => PeerSecurity::Insecure,
            (None, false) => bail!(
                "peer traffic needs --tls-dir DIR (written by `raftkv certs`) or an explicit --insecure"
            ),
        };
        let password = args.requirepass.clone().or(file.requirepass);
        if password.as_deref() == Some("") {
            bail!("an empty requirepass is not a password");
        }
        if password.is_none() && !redis.ip().is_loopback() {
            bail!(
                "refusing to serve Redis clients on {redis} without a password: set --requirepass \
                 or bind to a loopback address"
            );
        }
        let defaults = Config::new(id, [id]);
        let config = Self {
            id,
            peers,
            listen,
            redis,
            metrics: args.metrics.or(file.metrics),
            data_dir,
            backend: args
                .backend
                .or(file.backend)
                .unwrap_or(ServeBackend::Openraft),
            security,
            password,
            heartbeat: args
                .heartbeat
                .or(file_duration("heartbeat", file.heartbeat)?)
                .unwrap_or(defaults.heartbeat_interval),
            election_timeout_min: args
                .election_timeout_min
                .or(file_duration(
                    "election_timeout_min",
                    file.election_timeout_min,
                )?)
                .unwrap_or(defaults.election_timeout_min),
            election_timeout_max: args
                .election_timeout_max
                .or(file_duration(
                    "election_timeout_max",
                    file.election_timeout_max,
                )?)
                .unwrap_or(defaults.election_timeout_max),
            request_timeout: args
                .request_timeout
                .or(file_duration("request_timeout", file.request_timeout)?)
                .unwrap_or(defaults.request_timeout),
            max_request_bytes: args
                .max_request_bytes
                .or(file.max_request_bytes)
                .unwrap_or(1 << 20),
            max_clients: args.max_clients.or(file.max_clients).unwrap_or(1024),
            fault_invalidate_lease_on_error: args.fault_invalidate_lease_on_error
                || file.fault_invalidate_lease_on_error.unwrap_or(false),
        };
        if config.max_clients == 0 || config.max_request_bytes < 64 {
            bail!("--max-clients must be at least 1 and --max-request-bytes at least 64");
        }
        config
            .raft_config()
            .validate()
            .context("invalid Raft timing")?;
        Ok(config)
    }

    /// The engine configuration.
    pub fn raft_config(&self) -> Config {
        let voters = std::iter::once(self.id).chain(self.peers.keys().copied());
        let mut config = Config::new(self.id, voters);
        config.heartbeat_interval = self.heartbeat;
        config.election_timeout_min = self.election_timeout_min;
        config.election_timeout_max = self.election_timeout_max;
        config.request_timeout = self.request_timeout;
        config
    }
}

/// The TLS material of node `id` in `dir`, as `raftkv certs` wrote it.
fn load_identity(dir: &Path, id: u64) -> anyhow::Result<TlsIdentity> {
    let read = |name: String| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    Ok(TlsIdentity {
        ca_pem: read("ca.pem".into())?,
        cert_pem: read(format!("node-{id}.pem"))?,
        key_pem: read(format!("node-{id}.key"))?,
    })
}

async fn start_engine(
    backend: ServeBackend,
    config: Config,
    state: SharedStateMachine<KvStateMachine>,
    store: Arc<dyn LogStore>,
    transport: Arc<dyn Transport>,
) -> raftengine::Result<Arc<dyn Engine>> {
    // A real node may be suspended (a laptop, a live-migrated VM): its leases must count the
    // suspended time, so the engine reads a clock that does.
    let parts = EngineParts::new(config, state, store, transport)
        .with_clock(Arc::new(SuspendAwareClock::new()));
    Ok(match backend {
        ServeBackend::Openraft => {
            Arc::new(raftengine_openraft::OpenraftEngine::start(parts).await?)
        }
        ServeBackend::Raftrs => Arc::new(raftengine_raftrs::RaftRsEngine::start(parts).await?),
    })
}

/// Runs the node until SIGINT or SIGTERM, then shuts every part down.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let metrics_task = match config.metrics {
        None => None,
        Some(addr) => {
            let (recorder, exporter) = metrics_exporter_prometheus::PrometheusBuilder::new()
                .with_http_listener(addr)
                .build()
                .with_context(|| format!("starting the metrics listener on {addr}"))?;
            metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
            Some(tokio::spawn(exporter))
        }
    };
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let log_path = config.data_dir.join("raft.redb");
    let file = RedbLogStore::open(&log_path)
        .with_context(|| format!("opening the log store {}", log_path.display()))?;
    let store: Arc<dyn LogStore> = Arc::new(file.group(1));
    let security = match &config.security {
        PeerSecurity::Tls(dir) => Security::Tls(load_identity(dir, config.id)?),
        PeerSecurity::Insecure => Security::Insecure,
    };
    let mut tcp_config = TcpConfig::new(config.id, config.listen, security);
    for (&peer, &addr) in &config.peers {
        tcp_config = tcp_config.peer(peer, addr);
    }
    let tcp = Arc::new(
        TcpTransport::bind(tcp_config)
            .await
            .with_context(|| format!("starting the peer transport on {}", config.listen))?,
    );
    let transport = MuxTransport::new(Arc::clone(&tcp) as Arc<dyn Transport>);
    let redis_listener = TcpListener::bind(config.redis)
        .await
        .with_context(|| format!("binding the Redis listener on {}", config.redis))?;
    let state = SharedStateMachine::new(KvStateMachine::new());
    let engine = start_engine(
        config.backend,
        config.raft_config(),
        state.clone(),
        store,
        Arc::new(transport.clone()),
    )
    .await
    .with_context(|| format!("starting the {} engine", config.backend.name()))?;
    let lease = Lease::new(Arc::clone(&engine), LeaseConfig::default())
        .context("setting up the read lease")?;
    let kv = KvStore::new(lease.clone(), state);
    let node = Arc::new(Node::new(
        Arc::clone(&engine),
        kv,
        transport.clone(),
        config.request_timeout,
        config.fault_invalidate_lease_on_error,
    ));
    transport.set_forward_server(Arc::clone(&node) as Arc<dyn forward::ForwardServer>);
    let front = Arc::new(Front::new(
        Arc::clone(&node),
        config.password.clone().map(Bytes::from),
        config.max_request_bytes,
        config.backend.name(),
    ));
    eprintln!(
        "raftkv serve: node {} ({}) redis {} peers {} metrics {} data {}{}",
        config.id,
        config.backend.name(),
        redis_listener.local_addr().unwrap_or(config.redis),
        tcp.local_addr(),
        config
            .metrics
            .map_or_else(|| "off".to_owned(), |addr| addr.to_string()),
        config.data_dir.display(),
        if config.fault_invalidate_lease_on_error {
            " FAULT INJECTION: lease invalidated on every error"
        } else {
            ""
        }
    );
    let gauges = tokio::spawn(report_status(Arc::clone(&node)));
    accept_clients(front, redis_listener, config.max_clients).await;
    eprintln!("raftkv serve: node {} shutting down", config.id);
    gauges.abort();
    transport.clear_forward_server();
    lease.shutdown().await;
    if let Err(error) = engine.shutdown().await {
        eprintln!("raftkv serve: engine shutdown: {error}");
    }
    tcp.shutdown().await;
    if let Some(task) = metrics_task {
        task.abort();
    }
    Ok(())
}

/// Accepts clients until a stop signal, then ends every client task (at most 5 s of grace).
async fn accept_clients(front: Arc<Front>, listener: TcpListener, max_clients: usize) {
    let (stop, stopped) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(max_clients));
    let mut tasks = JoinSet::new();
    let signal = stop_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match Arc::clone(&limit).try_acquire_owned() {
                    Ok(permit) => {
                        let front = Arc::clone(&front);
                        let stopped = stopped.clone();
                        tasks.spawn(async move {
                            conn::serve_client(front, stream, stopped).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        tasks.spawn(refuse(stream));
                    }
                },
                Err(error) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting a Redis client failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let _ = stop.send(true);
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

async fn refuse(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    metrics::counter!("raftkv_errors_total", "kind" => "max_clients").increment(1);
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(b"-ERR max number of clients reached\r\n"),
    )
    .await;
}

async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// Publishes the Raft status and lease state as gauges, every 250 ms.
async fn report_status(node: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let status = node.engine().status();
        metrics::gauge!("raftkv_raft_term").set(status.term as f64);
        metrics::gauge!("raftkv_raft_commit_index").set(status.commit_index as f64);
        metrics::gauge!("raftkv_raft_applied_index").set(status.applied_index as f64);
        for (role, label) in [
            (Role::Leader, "leader"),
            (Role::Follower, "follower"),
            (Role::Candidate, "candidate"),
            (Role::Learner, "learner"),
            (Role::Shutdown, "shutdown"),
        ] {
            metrics::gauge!("raftkv_raft_role", "role" => label).set(if status.role == role {
                1.0
            } else {
                0.0
            });
        }
        let valid = node.kv().lease().check().is_ok();
        metrics::gauge!("raftkv_lease_valid").set(if valid { 1.0 } else { 0.0 });
        let stats = node.kv().lease().stats();
        metrics::gauge!("raftkv_lease_hit_rate").set(stats.hit_rate());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::PeerArg;

    fn args() -> ServeArgs {
        ServeArgs {
            id: Some(1),
            listen: Some("127.0.0.1:7001".parse().unwrap()),
            data_dir: Some("/tmp/raftkv-test".into()),
            insecure: true,
            ..ServeArgs::default()
        }
    }

    #[test]
    fn flags_override_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
            id = 9
            backend = "raftrs"
            heartbeat = "20ms"
            election_timeout_min = "150ms"
            election_timeout_max = "300ms"
            [peers]
            "2" = "127.0.0.1:7002"
            "#,
        )
        .unwrap();
        let mut flags = args();
        flags.peers.push(PeerArg {
            id: 3,
            addr: "127.0.0.1:7003".parse().unwrap(),
        });
        let config = ServeConfig::merge(&flags, file).unwrap();
        assert_eq!(config.id, 1, "the flag wins");
        assert_eq!(config.backend, ServeBackend::Raftrs, "the file fills in");
        assert_eq!(config.heartbeat, Duration::from_millis(20));
        assert_eq!(config.peers.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(config.raft_config().initial_voters.len(), 3);
        assert_eq!(config.redis, "127.0.0.1:6379".parse().unwrap());
    }

    #[test]
    fn the_example_config_is_complete_and_valid() {
        let file: FileConfig =
            toml::from_str(include_str!("../../node.example.toml")).expect("example parses");
        let config = ServeConfig::merge(&ServeArgs::default(), file).expect("example is valid");
        assert_eq!(config.id, 1);
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.security, PeerSecurity::Tls("/etc/raftkv/tls".into()));
        assert_eq!(config.metrics, Some("127.0.0.1:9101".parse().unwrap()));
    }

    #[test]
    fn unsafe_or_incomplete_settings_are_refused() {
        let refuse = |change: fn(&mut ServeArgs), needle: &str| {
            let mut flags = args();
            change(&mut flags);
            let error = format!(
                "{:#}",
                ServeConfig::merge(&flags, FileConfig::default()).unwrap_err()
            );
            assert!(
                error.contains(needle),
                "{error:?} should mention {needle:?}"
            );
        };
        refuse(
            |a| a.redis = Some("0.0.0.0:6379".parse().unwrap()),
            "without a password",
        );
        refuse(|a| a.insecure = false, "--insecure");
        refuse(|a| a.tls_dir = Some("/tmp".into()), "not both");
        refuse(|a| a.id = None, "node id");
        refuse(
            |a| {
                a.peers.push(PeerArg {
                    id: 1,
                    addr: "127.0.0.1:1".parse().unwrap(),
                })
            },
            "other nodes",
        );
        refuse(
            |a| a.election_timeout_min = Some(Duration::from_millis(1)),
            "Raft timing",
        );
        let mut open = args();
        open.redis = Some("0.0.0.0:6379".parse().unwrap());
        open.requirepass = Some("secret".into());
        assert!(ServeConfig::merge(&open, FileConfig::default()).is_ok());
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
    }
}
