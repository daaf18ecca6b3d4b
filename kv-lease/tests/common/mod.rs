//! A small three-node cluster of either real backend for the lease integration tests: one
//! `MemNetwork`, a `KvStateMachine`, a `Lease` and a `KvStore` per node, a `MemLogStore` per
//! node that survives restarts, and an optional `DriftClock` per node. Virtual time only.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_lease::kv::{KvStateMachine, KvStore};
use kv_lease::{Lease, LeaseConfig, MissReason};
use raftengine::{
    Clock, Config, Engine, LogStore, MemLogStore, MemNetwork, NodeId, Role, SharedStateMachine,
    Status, TokioClock, Transport,
};
use raftengine_openraft::OpenraftEngine;
use raftengine_raftrs::RaftRsEngine;
use tokio::time::Instant;

/// Which real engine a scenario runs on; chosen at one constructor call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Openraft,
    RaftRs,
}

impl Backend {
    pub async fn start(
        self,
        config: Config,
        state_machine: SharedStateMachine<KvStateMachine>,
        store: Arc<dyn LogStore>,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
    ) -> raftengine::Result<Arc<dyn Engine>> {
        Ok(match self {
            Backend::Openraft => Arc::new(
                OpenraftEngine::start_with_clock(config, state_machine, store, transport, clock)
                    .await?,
            ),
            Backend::RaftRs => Arc::new(
                RaftRsEngine::start_with_clock(config, state_machine, store, transport, clock)
                    .await?,
            ),
        })
    }
}

/// One running node.
pub struct Node {
    pub engine: Arc<dyn Engine>,
    pub lease: Lease,
    pub kv: KvStore,
}

/// Three voters (ids 1..=3) on one `MemNetwork`.
pub struct Cluster {
    pub backend: Backend,
    pub net: MemNetwork,
    pub voters: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, Node>,
    stores: BTreeMap<NodeId, MemLogStore>,
    clocks: BTreeMap<NodeId, Arc<dyn Clock>>,
    tweaks: BTreeMap<NodeId, fn(&mut Config)>,
}

/// The configuration every node gets.
pub fn config(id: NodeId, voters: &[NodeId]) -> Config {
    let mut config = Config::new(id, voters.iter().copied());
    config.request_timeout = Duration::from_secs(2);
    config.snapshot_after_entries = 0;
    config
}

impl Cluster {
    /// Starts three voters on tokio's clock.
    pub async fn start(backend: Backend, seed: u64) -> Self {
        Self::start_with_clocks(backend, seed, BTreeMap::new()).await
    }

    /// Starts three voters; a node listed in `clocks` runs on that clock (e.g. a `DriftClock`),
    /// the others on tokio's.
    pub async fn start_with_clocks(
        backend: Backend,
        seed: u64,
        clocks: BTreeMap<NodeId, Arc<dyn Clock>>,
    ) -> Self {
        let voters: Vec<NodeId> = vec![1, 2, 3];
        let mut cluster = Self {
            backend,
            net: MemNetwork::new(seed),
            voters: voters.clone(),
            nodes: BTreeMap::new(),
            stores: BTreeMap::new(),
            clocks,
            tweaks: BTreeMap::new(),
        };
        for id in voters {
            cluster.stores.insert(id, MemLogStore::new());
            cluster.boot(id).await;
        }
        cluster
    }

    /// Starts node `id` on its (kept) store with a fresh state machine and lease.
    async fn boot(&mut self, id: NodeId) {
        let store = self.stores[&id].clone();
        let clock = self
            .clocks
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Arc::new(TokioClock));
        let sm = SharedStateMachine::new(KvStateMachine::new());
        let mut config = config(id, &self.voters);
        if let Some(tweak) = self.tweaks.get(&id) {
            tweak(&mut config);
        }
        let engine = self
            .backend
            .start(
                config,
                sm.clone(),
                Arc::new(store) as Arc<dyn LogStore>,
                Arc::new(self.net.transport(id)) as Arc<dyn Transport>,
                clock,
            )
            .await
            .expect("engine starts");
        let lease = Lease::new(Arc::clone(&engine), LeaseConfig::default()).expect("lease");
        let kv = KvStore::new(lease.clone(), sm);
        self.nodes.insert(id, Node { engine, lease, kv });
    }

    /// Stops node `id` (lease layer and engine); its store is kept for [`Cluster::restart`].
    pub async fn crash(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).expect("node runs");
        node.lease.shutdown().await;
        within(
            Duration::from_secs(5),
            "engine shutdown",
            node.engine.shutdown(),
        )
        .await
        .expect("shutdown");
    }

    /// Adjusts node `id`'s configuration from its next (re)start on.
    pub fn set_tweak(&mut self, id: NodeId, tweak: fn(&mut Config)) {
        self.tweaks.insert(id, tweak);
    }

    /// Starts node `id` again on the store its previous incarnation wrote.
    pub async fn restart(&mut self, id: NodeId) {
        assert!(!self.nodes.contains_key(&id), "node {id} still runs");
        self.boot(id).await;
    }

    pub fn engine(&self, id: NodeId) -> Arc<dyn Engine> {
        Arc::clone(&self.nodes[&id].engine)
    }

    pub fn lease(&self, id: NodeId) -> Lease {
        self.nodes[&id].lease.clone()
    }

    pub fn kv(&self, id: NodeId) -> KvStore {
        self.nodes[&id].kv.clone()
    }

    pub fn status(&self, id: NodeId) -> Status {
        self.nodes[&id].engine.status()
    }

    pub fn others(&self, id: NodeId) -> Vec<NodeId> {
        self.voters.iter().copied().filter(|v| *v != id).collect()
    }

    /// Waits until exactly one running node among `among` leads in the highest term seen there
    /// (above `after_term`) and has applied an entry of that term.
    pub async fn wait_leader_among(&self, among: &[NodeId], after_term: u64) -> NodeId {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let statuses: Vec<Status> = among
                .iter()
                .filter_map(|id| self.nodes.get(id))
                .map(|n| n.engine.status())
                .collect();
            let max_term = statuses.iter().map(|s| s.term).max().unwrap_or(0);
            let leaders: Vec<&Status> = statuses
                .iter()
                .filter(|s| s.role == Role::Leader && s.term == max_term && s.term > after_term)
                .collect();
            if let [leader] = leaders.as_slice()
                && leader.applied_term == leader.term
            {
                return leader.id;
            }
            assert!(
                Instant::now() < deadline,
                "no ready leader among {among:?} within 10 s: {statuses:#?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn wait_leader(&self) -> NodeId {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        self.wait_leader_among(&ids, 0).await
    }

    /// Holds every link to and from `id`: it hears nothing and nothing it sends arrives.
    pub fn hold_all(&self, id: NodeId) {
        for peer in self.others(id) {
            self.net.hold(id, peer);
            self.net.hold(peer, id);
        }
    }

    /// Releases what [`Cluster::hold_all`] held, in order.
    pub fn release_all(&self, id: NodeId) {
        for peer in self.others(id) {
            self.net.release(id, peer);
            self.net.release(peer, id);
        }
    }

    pub async fn shutdown_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.crash(id).await;
        }
    }
}

/// Awaits `future` for at most `limit` of virtual time; panics naming `what` when it does not
/// finish.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what} did not finish within {limit:?}"),
    }
}

/// Polls `condition` every millisecond of virtual time for at most `limit`.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What a [`Sentinel`] saw when a node first became leader.
#[derive(Debug, Clone, Copy)]
pub struct Takeover {
    pub node: NodeId,
    pub term: u64,
    pub at: Instant,
    /// The watched (old) leader's fast-path check at that very instant.
    pub old_lease_check: Result<(), MissReason>,
    /// The watched lease's expiry at that instant.
    pub old_lease_expiry: Option<Instant>,
}

/// Watches nodes' status channels and records, at the exact virtual instant one of them first
/// leads in a term above `after_term`, what an old leader's lease said at that instant.
pub struct Sentinel {
    seen: Arc<Mutex<Option<Takeover>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Sentinel {
    pub fn watch(engines: Vec<Arc<dyn Engine>>, after_term: u64, old_lease: Lease) -> Self {
        let seen = Arc::new(Mutex::new(None));
        let tasks = engines
            .into_iter()
            .map(|engine| {
                let seen = Arc::clone(&seen);
                let old_lease = old_lease.clone();
                tokio::spawn(async move {
                    let mut status = engine.subscribe();
                    let Ok(leading) = status
                        .wait_for(|s| s.role == Role::Leader && s.term > after_term)
                        .await
                    else {
                        return;
                    };
                    let takeover = Takeover {
                        node: leading.id,
                        term: leading.term,
                        at: Instant::now(),
                        old_lease_check: old_lease.check(),
                        old_lease_expiry: old_lease.state().expires_at(),
                    };
                    drop(leading);
                    seen.lock().unwrap().get_or_insert(takeover);
                })
            })
            .collect();
        Self { seen, tasks }
    }

    pub fn takeover(&self) -> Option<Takeover> {
        *self.seen.lock().unwrap()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
