//! Engines on durable stores: a 3-node cluster per backend on RedbLogStore files restarts every
//! node in turn (and then all at once) without losing an acknowledged write; and a disk that
//! stalls every write of one node does not starve another cluster sharing the runtime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use conformance_tests::TestSm;
use conformance_tests::sm::Command;
use raftengine::sim::MemNetwork;
use raftengine::{
    Config, Engine, EngineParts, ErrorKind, LogEntry, LogState, LogStore, MemLogStore, Result,
    Role, SharedStateMachine, StartEngine, StoredSnapshot, Transport,
};
use raftengine_redb::RedbLogStore;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Openraft,
    RaftRs,
}

impl Backend {
    async fn start(
        self,
        config: Config,
        sm: SharedStateMachine<TestSm>,
        store: Arc<dyn LogStore>,
        transport: Arc<dyn Transport>,
    ) -> Result<Arc<dyn Engine>> {
        Ok(match self {
            Self::Openraft => Arc::new(
                raftengine_openraft::OpenraftEngine::start(EngineParts::new(
                    config, sm, store, transport,
                ))
                .await?,
            ),
            Self::RaftRs => Arc::new(
                raftengine_raftrs::RaftRsEngine::start(EngineParts::new(
                    config, sm, store, transport,
                ))
                .await?,
            ),
        })
    }
}

struct Node {
    engine: Arc<dyn Engine>,
    sm: SharedStateMachine<TestSm>,
}

struct Cluster {
    backend: Backend,
    net: MemNetwork,
    voters: Vec<u64>,
    stores: BTreeMap<u64, Arc<dyn LogStore>>,
    nodes: BTreeMap<u64, Node>,
}

impl Cluster {
    async fn start(backend: Backend, stores: BTreeMap<u64, Arc<dyn LogStore>>) -> Self {
        let mut cluster = Self {
            backend,
            net: MemNetwork::new(7),
            voters: stores.keys().copied().collect(),
            stores,
            nodes: BTreeMap::new(),
        };
        for id in cluster.voters.clone() {
            cluster.boot(id).await;
        }
        cluster
    }

    async fn boot(&mut self, id: u64) {
        let sm = SharedStateMachine::new(TestSm::new());
        let transport: Arc<dyn Transport> = Arc::new(self.net.transport(id));
        let engine = self
            .backend
            .start(
                Config::new(id, self.voters.iter().copied()),
                sm.clone(),
                Arc::clone(&self.stores[&id]),
                transport,
            )
            .await
            .unwrap_or_else(|e| panic!("{:?}: node {id} failed to start: {e}", self.backend));
        self.nodes.insert(id, Node { engine, sm });
    }

    /// Shuts node `id` down and drops every handle on its engine, so its store is closed by
    /// the caller dropping the store handle too.
    async fn stop(&mut self, id: u64) {
        if let Some(node) = self.nodes.remove(&id) {
            let _ = node.engine.shutdown().await;
        }
        self.net.transport(id).stop_serving();
    }

    fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.engine.status().is_ready_leader())
            .max_by_key(|(_, n)| n.engine.status().term)
            .map(|(id, _)| *id)
    }

    async fn wait_for_leader(&self, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(id) = self.leader() {
                return id;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: no leader within {limit:?}",
                self.backend
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Writes `key = value` through whichever node leads, retrying until acknowledged.
    async fn put(&self, key: u64, value: u64) {
        let command = Command::Put { key, value }.encode();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(id) = self.leader()
                && self.nodes[&id]
                    .engine
                    .propose(command.clone())
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: put {key} was never acknowledged",
                self.backend
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every running node's state machine holds every acknowledged write.
    async fn wait_for_all(&self, acked: &BTreeMap<u64, u64>, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let missing: Vec<(u64, usize)> = self
                .nodes
                .iter()
                .map(|(id, node)| {
                    let missing = node.sm.read(|sm| {
                        acked
                            .iter()
                            .filter(|(k, v)| sm.get(**k).map(|x| x.value) != Some(**v))
                            .count()
                    });
                    (*id, missing)
                })
                .filter(|(_, missing)| *missing > 0)
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: acknowledged writes missing (node, count): {missing:?}",
                self.backend
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Opens the file, retrying while the engine's last tasks still hold the old handle.
async fn reopen(path: &Path) -> RedbLogStore {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match RedbLogStore::open(path) {
            Ok(store) => return store,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("reopening {} failed: {err}", path.display()),
        }
    }
}

async fn restarts_keep_acknowledged_writes(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let paths: BTreeMap<u64, PathBuf> = (1..=3)
        .map(|id| (id, dir.path().join(format!("node-{id}.redb"))))
        .collect();
    let mut stores = BTreeMap::new();
    for (id, path) in &paths {
        let store: Arc<dyn LogStore> = Arc::new(reopen(path).await.group(1));
        stores.insert(*id, store);
    }
    let mut cluster = Cluster::start(backend, stores).await;
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    let mut acked = BTreeMap::new();
    let mut key = 0;
    let mut write = async |cluster: &Cluster, acked: &mut BTreeMap<u64, u64>, n: u64| {
        for _ in 0..n {
            key += 1;
            cluster.put(key, key * 10).await;
            acked.insert(key, key * 10);
        }
    };
    write(&cluster, &mut acked, 20).await;
    for id in 1..=3 {
        cluster.stop(id).await;
        cluster.stores.remove(&id);
        write(&cluster, &mut acked, 10).await;
        let store: Arc<dyn LogStore> = Arc::new(reopen(&paths[&id]).await.group(1));
        cluster.stores.insert(id, store);
        cluster.boot(id).await;
        write(&cluster, &mut acked, 10).await;
        cluster.wait_for_all(&acked, Duration::from_secs(20)).await;
    }
    // A whole-cluster power cut: every node comes back from its file alone.
    for id in 1..=3 {
        cluster.stop(id).await;
        cluster.stores.remove(&id);
    }
    for id in 1..=3 {
        let store: Arc<dyn LogStore> = Arc::new(reopen(&paths[&id]).await.group(1));
        cluster.stores.insert(id, store);
    }
    for id in 1..=3 {
        cluster.boot(id).await;
    }
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    cluster.wait_for_all(&acked, Duration::from_secs(20)).await;
    write(&cluster, &mut acked, 5).await;
    cluster.wait_for_all(&acked, Duration::from_secs(20)).await;
    for id in 1..=3 {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_restarts_from_redb_keep_acknowledged_writes() {
    restarts_keep_acknowledged_writes(Backend::Openraft).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raftrs_restarts_from_redb_keep_acknowledged_writes() {
    restarts_keep_acknowledged_writes(Backend::RaftRs).await;
}

/// A store whose every write stalls, as a disk with multi-hundred-millisecond fsyncs would.
#[derive(Debug)]
struct SlowDisk {
    inner: MemLogStore,
    stall: Duration,
}

impl SlowDisk {
    fn write<T>(&self, f: impl FnOnce(&MemLogStore) -> T) -> T {
        std::thread::sleep(self.stall);
        f(&self.inner)
    }
}

impl LogStore for SlowDisk {
    fn append(&self, entries: &[LogEntry]) -> Result<()> {
        self.write(|s| s.append(entries))
    }
    fn truncate_from(&self, index: u64) -> Result<()> {
        self.write(|s| s.truncate_from(index))
    }
    fn purge_to(&self, index: u64, term: u64) -> Result<()> {
        self.write(|s| s.purge_to(index, term))
    }
    fn entries(&self, from: u64, to: u64) -> Result<Vec<LogEntry>> {
        self.inner.entries(from, to)
    }
    fn term(&self, index: u64) -> Result<Option<u64>> {
        self.inner.term(index)
    }
    fn log_state(&self) -> Result<LogState> {
        self.inner.log_state()
    }
    fn save_hard_state(&self, state: Bytes) -> Result<()> {
        self.write(|s| s.save_hard_state(state))
    }
    fn hard_state(&self) -> Result<Option<Bytes>> {
        self.inner.hard_state()
    }
    fn save_snapshot(&self, snapshot: StoredSnapshot) -> Result<()> {
        self.write(|s| s.save_snapshot(snapshot))
    }
    fn install_snapshot(&self, snapshot: StoredSnapshot) -> Result<()> {
        self.write(|s| s.install_snapshot(snapshot))
    }
    fn snapshot(&self) -> Result<Option<StoredSnapshot>> {
        self.inner.snapshot()
    }
}

fn mem_stores(ids: std::ops::RangeInclusive<u64>) -> BTreeMap<u64, Arc<dyn LogStore>> {
    ids.map(|id| (id, Arc::new(MemLogStore::new()) as Arc<dyn LogStore>))
        .collect()
}

/// Cluster `slow` has one node whose every write stalls 200 ms and is kept busy with writes;
/// cluster `healthy` shares the runtime (one worker thread, so any blocked worker would stall
/// it completely). The healthy leader must keep its term and leadership throughout, and its
/// writes must stay fast.
async fn a_slow_disk_does_not_starve_another_cluster(slow_backend: Backend, healthy: Backend) {
    let mut slow_stores = mem_stores(1..=3);
    slow_stores.insert(
        1,
        Arc::new(SlowDisk {
            inner: MemLogStore::new(),
            stall: Duration::from_millis(200),
        }),
    );
    let slow = Arc::new(Cluster::start(slow_backend, slow_stores).await);
    let healthy = Cluster::start(healthy, mem_stores(1..=3)).await;
    let leader = healthy.wait_for_leader(Duration::from_secs(20)).await;
    let term = healthy.nodes[&leader].engine.status().term;
    slow.wait_for_leader(Duration::from_secs(20)).await;

    let load = {
        let slow = Arc::clone(&slow);
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(3);
            let mut key = 0;
            while Instant::now() < deadline {
                key += 1;
                if let Some(id) = slow.leader() {
                    let command = Command::Put { key, value: key }.encode();
                    let _ = slow.nodes[&id].engine.propose(command).await;
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
    };
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut key = 0;
    while started.elapsed() < Duration::from_secs(3) {
        key += 1;
        let t0 = Instant::now();
        healthy.nodes[&leader]
            .engine
            .propose(Command::Put { key, value: key }.encode())
            .await
            .unwrap_or_else(|e| panic!("the healthy leader failed a write: {e}"));
        worst = worst.max(t0.elapsed());
        for (id, node) in &healthy.nodes {
            let status = node.engine.status();
            assert_eq!(
                status.term, term,
                "node {id} of the healthy cluster changed term"
            );
            assert_eq!(
                status.leader,
                Some(leader),
                "node {id} lost the healthy leader"
            );
            assert!(
                status.role == Role::Leader || *id != leader,
                "the healthy leader stepped down"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    load.await.expect("load task");
    println!("{key} healthy writes, the slowest took {worst:?}");
    assert!(
        worst < Duration::from_millis(190),
        "a healthy write took {worst:?} while another node's disk stalled"
    );
    let slowest_store_writes = slow.nodes[&1].engine.status().last_log_index;
    assert!(slowest_store_writes > 0, "the slow cluster never wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_slow_raftrs_disk_does_not_starve_an_openraft_cluster() {
    a_slow_disk_does_not_starve_another_cluster(Backend::RaftRs, Backend::Openraft).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_slow_openraft_disk_does_not_starve_a_raftrs_cluster() {
    a_slow_disk_does_not_starve_another_cluster(Backend::Openraft, Backend::RaftRs).await;
}

/// The leader's disk starts failing every write: the write in flight fails, the node accepts no
/// more writes, and after a restart on healthy disks every write acknowledged before is there.
async fn a_failing_disk_loses_nothing_acknowledged(backend: Backend) {
    let dir = tempfile::tempdir().expect("temp dir");
    let paths: BTreeMap<u64, PathBuf> = (1..=3)
        .map(|id| (id, dir.path().join(format!("node-{id}.redb"))))
        .collect();
    let mut files = BTreeMap::new();
    let mut stores = BTreeMap::new();
    for (id, path) in &paths {
        let file = reopen(path).await;
        stores.insert(*id, Arc::new(file.group(1)) as Arc<dyn LogStore>);
        files.insert(*id, file);
    }
    let mut cluster = Cluster::start(backend, stores).await;
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let mut acked = BTreeMap::new();
    for key in 1..=20 {
        cluster.put(key, key).await;
        acked.insert(key, key);
    }
    files[&leader].set_fail_writes(true);
    let engine = Arc::clone(&cluster.nodes[&leader].engine);
    let propose = |key: u64| {
        let engine = Arc::clone(&engine);
        async move {
            let command = Command::Put { key, value: key }.encode();
            tokio::time::timeout(Duration::from_secs(15), engine.propose(command)).await
        }
    };
    let first = propose(1000).await;
    let later = propose(1001).await;
    println!(
        "{backend:?}: with a failing disk the leader answered {:?}, then {:?}; status {:?}",
        first
            .as_ref()
            .map(|r| r.as_ref().map_err(|e| e.kind().clone())),
        later
            .as_ref()
            .map(|r| r.as_ref().map_err(|e| e.kind().clone())),
        engine.status().role
    );
    match &first {
        Ok(Err(err)) => assert!(
            matches!(err.kind(), ErrorKind::Storage | ErrorKind::Fatal),
            "{backend:?}: a write on a failing disk failed as {err}, not as a storage failure"
        ),
        Ok(Ok(_)) => panic!("{backend:?}: a write on a failing disk was acknowledged"),
        Err(_) => panic!("{backend:?}: a write on a failing disk hung"),
    }
    match &later {
        Ok(Err(err)) => assert_eq!(
            err.kind(),
            &ErrorKind::Fatal,
            "{backend:?}: after its store failed, the node answered {err}, not Fatal"
        ),
        Ok(Ok(_)) => panic!("{backend:?}: the node kept acknowledging writes on a failing disk"),
        Err(_) => panic!("{backend:?}: a write to a node stopped by its store hung"),
    }
    // The status is published by the adapter's own task, a moment after the failure.
    let stopped_by = Instant::now() + Duration::from_secs(5);
    while engine.status().role != Role::Shutdown {
        assert!(
            Instant::now() < stopped_by,
            "{backend:?}: the node stopped by its store still reports {:?}",
            engine.status().role
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(engine);

    for id in 1..=3 {
        cluster.stop(id).await;
        cluster.stores.remove(&id);
    }
    drop(files);
    for (id, path) in &paths {
        let store: Arc<dyn LogStore> = Arc::new(reopen(path).await.group(1));
        cluster.stores.insert(*id, store);
    }
    for id in 1..=3 {
        cluster.boot(id).await;
    }
    cluster.wait_for_leader(Duration::from_secs(10)).await;
    cluster.wait_for_all(&acked, Duration::from_secs(20)).await;
    for id in 1..=3 {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_on_a_failing_disk_loses_nothing_acknowledged() {
    a_failing_disk_loses_nothing_acknowledged(Backend::Openraft).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raftrs_on_a_failing_disk_loses_nothing_acknowledged() {
    a_failing_disk_loses_nothing_acknowledged(Backend::RaftRs).await;
}
