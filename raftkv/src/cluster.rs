//! A 3-node in-process cluster of one backend: start, find the leader, crash, restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kv_lease::kv::{KvStateMachine, KvStore};
use kv_lease::{Lease, LeaseConfig};
use raftengine::sim::{LinkFaults, MemNetwork};
use raftengine::{
    Config, Engine, EngineParts, LogStore, MemLogStore, Result, Role, SharedStateMachine,
    StartEngine, Transport,
};
use raftengine_redb::RedbLogStore;

/// Longest a leader election, transfer, failover or convergence may take before a run fails.
pub const ELECTION_LIMIT: Duration = Duration::from_secs(10);

/// Where the nodes keep their logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// `MemLogStore`: nothing touches a disk.
    Memory,
    /// `RedbLogStore`: one file per node in this directory, every write synced.
    Redb(PathBuf),
}

impl Storage {
    /// `memory` or `redb`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redb(_) => "redb",
        }
    }

    /// A fresh store for node `id`: a run never resumes an earlier run's files.
    fn open(&self, backend: Backend, id: u64) -> Result<(Arc<dyn LogStore>, Option<RedbLogStore>)> {
        match self {
            Self::Memory => Ok((Arc::new(MemLogStore::new()), None)),
            Self::Redb(dir) => {
                let path = node_file(dir, backend, id);
                if path.exists() {
                    std::fs::remove_file(&path).map_err(|e| {
                        raftengine::Error::new(raftengine::ErrorKind::Storage)
                            .with_context(format!("cannot remove the old {}", path.display()))
                            .with_source(e)
                    })?;
                }
                let file = RedbLogStore::open(&path)?;
                Ok((Arc::new(file.group(1)), Some(file)))
            }
        }
    }
}

/// The log file of node `id` of `backend` in `dir`.
pub fn node_file(dir: &Path, backend: Backend, id: u64) -> PathBuf {
    dir.join(format!("raftkv-{}-node{id}.redb", backend.name()))
}

/// The Raft library under an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `raftengine-openraft`.
    Openraft,
    /// `raftengine-raftrs`.
    RaftRs,
}

impl Backend {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Openraft => "openraft",
            Self::RaftRs => "raftrs",
        }
    }

    /// Starts one node on this backend: the single line that picks the library.
    async fn start(
        self,
        config: Config,
        state: SharedStateMachine<KvStateMachine>,
        store: Arc<dyn LogStore>,
        transport: Arc<dyn Transport>,
    ) -> Result<Arc<dyn Engine>> {
        Ok(match self {
            Self::Openraft => Arc::new(
                raftengine_openraft::OpenraftEngine::start(EngineParts::new(
                    config, state, store, transport,
                ))
                .await?,
            ),
            Self::RaftRs => Arc::new(
                raftengine_raftrs::RaftRsEngine::start(EngineParts::new(
                    config, state, store, transport,
                ))
                .await?,
            ),
        })
    }
}

/// One running node: its engine and the KV client over it.
#[derive(Clone)]
pub struct Node {
    /// The engine.
    pub engine: Arc<dyn Engine>,
    /// Typed KV access with lease reads.
    pub kv: KvStore,
}

/// A cluster of one backend over a [`MemNetwork`].
pub struct Cluster {
    backend: Backend,
    network: MemNetwork,
    voters: Vec<u64>,
    stores: BTreeMap<u64, Arc<dyn LogStore>>,
    files: Vec<RedbLogStore>,
    nodes: BTreeMap<u64, Node>,
    lease_stats_of_stopped: kv_lease::LeaseStats,
    lease_config: LeaseConfig,
}

impl Cluster {
    /// Starts `size` voters with a simulated round trip of `rtt`, each with a lease configured
    /// by `lease_config` and its log kept as `storage` says.
    pub async fn start(
        backend: Backend,
        size: u64,
        rtt: Duration,
        seed: u64,
        lease_config: LeaseConfig,
        storage: &Storage,
    ) -> Result<Self> {
        let network = MemNetwork::new(seed);
        network.set_default_faults(LinkFaults {
            delay: rtt / 2,
            ..LinkFaults::default()
        });
        let voters: Vec<u64> = (1..=size).collect();
        let mut stores = BTreeMap::new();
        let mut files = Vec::new();
        for &id in &voters {
            let (store, file) = storage.open(backend, id)?;
            stores.insert(id, store);
            files.extend(file);
        }
        let mut cluster = Self {
            backend,
            network,
            voters: voters.clone(),
            stores,
            files,
            nodes: BTreeMap::new(),
            lease_stats_of_stopped: kv_lease::LeaseStats::default(),
            lease_config,
        };
        for id in voters {
            cluster.start_node(id).await?;
        }
        Ok(cluster)
    }

    async fn start_node(&mut self, id: u64) -> Result<()> {
        let config = Config::new(id, self.voters.iter().copied());
        // A restarted node starts from an empty state machine and rebuilds it from the store,
        // exactly as a process that lost its memory would.
        let state = SharedStateMachine::new(KvStateMachine::new());
        // A restart keeps the node's store open, as the durable files (or memory) survive.
        let store = Arc::clone(&self.stores[&id]);
        let transport: Arc<dyn Transport> = Arc::new(self.network.transport(id));
        let engine = self
            .backend
            .start(config, state.clone(), store, transport)
            .await?;
        let lease = Lease::new(Arc::clone(&engine), self.lease_config.clone())?;
        let kv = KvStore::new(lease, state);
        self.nodes.insert(id, Node { engine, kv });
        Ok(())
    }

    /// fsyncs issued on the nodes' log files so far (0 in memory).
    pub fn disk_syncs(&self) -> u64 {
        self.files.iter().map(|f| f.stats().syncs).sum()
    }

    /// Running nodes.
    pub fn nodes(&self) -> impl Iterator<Item = (u64, &Node)> {
        self.nodes.iter().map(|(id, node)| (*id, node))
    }

    /// The running node `id`.
    pub fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// The running node that believes it leads in the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        leader_among(&self.nodes)
    }

    /// Waits until some node leads and has applied an entry of its term.
    pub async fn wait_for_leader(&self, limit: Duration) -> Option<u64> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(id) = self.leader()
                && self.nodes[&id].engine.status().is_ready_leader()
            {
                return Some(id);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        None
    }

    /// Stops node `id` abruptly (its store survives, its memory does not).
    pub async fn crash(&mut self, id: u64) {
        if let Some(node) = self.nodes.remove(&id) {
            self.lease_stats_of_stopped =
                self.lease_stats_of_stopped.plus(&node.kv.lease().stats());
            node.kv.lease().shutdown().await;
            let _ = node.engine.shutdown().await;
        }
    }

    /// Starts node `id` again on its surviving store.
    pub async fn restart(&mut self, id: u64) -> Result<()> {
        self.start_node(id).await
    }

    /// Lease counters summed over every node, including stopped ones.
    pub fn lease_stats(&self) -> kv_lease::LeaseStats {
        self.nodes
            .values()
            .fold(self.lease_stats_of_stopped, |total, node| {
                total.plus(&node.kv.lease().stats())
            })
    }

    /// Waits until every running node has applied the same index, then returns whether
    /// their state machines hold the same data.
    pub async fn converged(&self, limit: Duration) -> std::result::Result<u64, String> {
        let deadline = Instant::now() + limit;
        loop {
            let applied: Vec<u64> = self
                .nodes
                .values()
                .map(|n| n.engine.status().applied_index)
                .collect();
            let same_index = applied.windows(2).all(|w| w[0] == w[1]);
            if same_index {
                let digests: Vec<u64> = self
                    .nodes
                    .values()
                    .map(|n| n.kv.state().read(digest))
                    .collect();
                if digests.windows(2).all(|w| w[0] == w[1]) {
                    return Ok(applied.first().copied().unwrap_or(0));
                }
                if Instant::now() >= deadline {
                    return Err(format!("same applied index {applied:?} but different data"));
                }
            } else if Instant::now() >= deadline {
                return Err(format!("applied indexes never met: {applied:?}"));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Shuts every node down.
    pub async fn shutdown(mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.crash(id).await;
        }
    }
}

/// The node, among `nodes`, that believes it leads in the highest term.
pub fn leader_among<'a>(nodes: impl IntoIterator<Item = (&'a u64, &'a Node)>) -> Option<u64> {
    nodes
        .into_iter()
        .map(|(id, node)| (*id, node.engine.status()))
        .filter(|(_, status)| status.role == Role::Leader)
        .max_by_key(|(_, status)| status.term)
        .map(|(id, _)| id)
}

/// An order-independent fingerprint of the KV contents (FNV-1a over sorted pairs).
pub fn digest(state: &KvStateMachine) -> u64 {
    let mut pairs: Vec<_> = state.iter().collect();
    pairs.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, value) in pairs {
        for byte in key
            .iter()
            .chain([0xff].iter())
            .chain(value.iter())
            .chain([0xfe].iter())
        {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}
