//! The [`Cluster`] of engines a case builds, and its controls.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use raftengine::sim::{DriftClock, MemNetwork};
use raftengine::{
    Applied, Clock, Config, Engine, EngineParts, MemLogStore, NodeId, Role, SharedStateMachine,
    Status, Transport,
};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::checker::{FinalValue, Key, Value};
use crate::sm::{Command, Fingerprint, Response, TestSm, Versioned};

use super::*;

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Number of initial voters (ids 1..=voters).
    pub voters: u64,
    /// Settings every node starts with; `node_id`, `initial_voters` and `seed` are set per
    /// node.
    pub config: Config,
    /// Per-node clock offset and rate, by node id (default: no offset, rate 1.0).
    pub clocks: BTreeMap<NodeId, (Duration, f64)>,
}

impl ClusterSpec {
    /// `voters` nodes with [`Config::new`] defaults (50 ms heartbeats, 300–600 ms elections,
    /// 5 s request deadline).
    pub fn new(voters: u64) -> Self {
        Self {
            voters,
            config: Config::new(1, []),
            clocks: BTreeMap::new(),
        }
    }

    /// Changes the shared settings.
    pub fn with_config(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }
}

struct NodeSlot {
    config: Config,
    store: MemLogStore,
    clock: Arc<DriftClock>,
    state_machine: SharedStateMachine<TestSm>,
    engine: Option<Arc<dyn Engine>>,
    watcher: Option<JoinHandle<()>>,
}

/// Leaders seen per term, from every engine's status stream.
#[derive(Debug, Default)]
struct ElectionLog {
    leaders: BTreeMap<u64, BTreeSet<NodeId>>,
}

struct Inner<B: Backend> {
    backend: Arc<B>,
    net: MemNetwork,
    spec: ClusterSpec,
    seed: u64,
    nodes: Mutex<BTreeMap<NodeId, NodeSlot>>,
    elections: Arc<Mutex<ElectionLog>>,
}

/// A running cluster of one backend over a [`MemNetwork`]. Cheap to clone: clones drive the
/// same cluster (client tasks hold clones).
pub struct Cluster<B: Backend> {
    inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for Cluster<B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B: Backend> fmt::Debug for Cluster<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("backend", &B::NAME)
            .field("nodes", &self.ids())
            .field("running", &self.running())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// How often waits poll, in virtual time.
const POLL: Duration = Duration::from_millis(5);

impl<B: Backend> Cluster<B> {
    /// Starts `spec.voters` nodes and returns once every engine's `start` returned.
    pub async fn start(backend: Arc<B>, spec: ClusterSpec, seed: u64) -> Result<Self, Failure> {
        let cluster = Self {
            inner: Arc::new(Inner {
                backend,
                net: MemNetwork::new(seed),
                spec,
                seed,
                nodes: Mutex::new(BTreeMap::new()),
                elections: Arc::new(Mutex::new(ElectionLog::default())),
            }),
        };
        let voters: Vec<NodeId> = (1..=cluster.inner.spec.voters).collect();
        for &id in &voters {
            cluster.create_slot(id, voters.iter().copied().collect());
        }
        for &id in &voters {
            cluster.boot(id).await?;
        }
        Ok(cluster)
    }

    fn create_slot(&self, id: NodeId, initial_voters: BTreeSet<NodeId>) {
        let mut config = self.inner.spec.config.clone();
        config.node_id = id;
        config.initial_voters = initial_voters;
        config.seed = self.inner.seed.wrapping_mul(31).wrapping_add(id);
        self.inner.backend.configure(&mut config);
        let (offset, rate) = self
            .inner
            .spec
            .clocks
            .get(&id)
            .copied()
            .unwrap_or((Duration::ZERO, 1.0));
        let slot = NodeSlot {
            config,
            store: MemLogStore::new(),
            clock: Arc::new(DriftClock::new(offset, rate)),
            state_machine: SharedStateMachine::new(TestSm::new()),
            engine: None,
            watcher: None,
        };
        lock(&self.inner.nodes).insert(id, slot);
    }

    async fn boot(&self, id: NodeId) -> Result<(), Failure> {
        let (config, store, clock, state_machine) = {
            let nodes = lock(&self.inner.nodes);
            let slot = nodes
                .get(&id)
                .ok_or_else(|| Failure::new(format!("node {id} does not exist")))?;
            if slot.engine.is_some() {
                return Err(Failure::new(format!("node {id} is already running")));
            }
            (
                slot.config.clone(),
                slot.store.clone(),
                Arc::clone(&slot.clock),
                slot.state_machine.clone(),
            )
        };
        let transport: Arc<dyn Transport> = Arc::new(self.inner.net.transport(id));
        let clock: Arc<dyn Clock> = clock;
        let parts = EngineParts::new(config.clone(), state_machine, Arc::new(store), transport)
            .with_clock(clock);
        let start = self.inner.backend.start(parts);
        let limit = self.call_limit();
        let engine = match tokio::time::timeout(limit, start).await {
            Ok(Ok(engine)) => engine,
            Ok(Err(err)) => {
                return Err(Failure::new(format!(
                    "{} failed to start node {id}: {err}",
                    B::NAME
                )));
            }
            Err(_) => {
                return Err(Failure::new(format!(
                    "{} start of node {id} hung for {limit:?}",
                    B::NAME
                )));
            }
        };
        let (declared, reported) = (self.inner.backend.capabilities(), engine.capabilities());
        if declared != reported {
            let _ = tokio::time::timeout(limit, engine.shutdown()).await;
            return Err(Failure::new(format!(
                "{} declares capabilities {:?} but its engine reports {:?}: the suite would \
                 skip or run the wrong cases",
                B::NAME,
                declared.names(),
                reported.names()
            )));
        }
        if engine.id() != id {
            return Err(Failure::new(format!(
                "engine started for node {id} reports id {}",
                engine.id()
            )));
        }
        let watcher = self.watch_elections(id, &engine);
        let mut nodes = lock(&self.inner.nodes);
        let slot = nodes.get_mut(&id).expect("slot exists");
        slot.engine = Some(engine);
        slot.watcher = Some(watcher);
        Ok(())
    }

    fn watch_elections(&self, id: NodeId, engine: &Arc<dyn Engine>) -> JoinHandle<()> {
        let mut statuses = engine.watch_status();
        let log = Arc::clone(&self.inner.elections);
        tokio::spawn(async move {
            loop {
                let status = statuses.borrow_and_update().clone();
                if status.role == Role::Leader {
                    lock(&log)
                        .leaders
                        .entry(status.term)
                        .or_default()
                        .insert(id);
                }
                if statuses.changed().await.is_err() {
                    return;
                }
            }
        })
    }

    /// The longest any single engine call may take before the harness calls it a hang: the
    /// request deadline plus two election timeouts of slack.
    pub fn call_limit(&self) -> Duration {
        let config = &self.inner.spec.config;
        config.request_timeout + config.election_timeout_max * 2
    }

    /// The settings nodes were started with (before [`Backend::configure`]).
    pub fn config(&self) -> &Config {
        &self.inner.spec.config
    }

    /// The seed this cluster was built with.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// The network, for fine-grained faults.
    pub fn net(&self) -> &MemNetwork {
        &self.inner.net
    }

    /// Every node ever started, running or crashed.
    pub fn ids(&self) -> Vec<NodeId> {
        lock(&self.inner.nodes).keys().copied().collect()
    }

    /// Every node ever started except `id`.
    pub fn others(&self, id: NodeId) -> Vec<NodeId> {
        self.ids()
            .into_iter()
            .filter(|&other| other != id)
            .collect()
    }

    /// Nodes whose engine is running.
    pub fn running(&self) -> Vec<NodeId> {
        lock(&self.inner.nodes)
            .iter()
            .filter(|(_, slot)| slot.engine.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// The engine of a running node.
    pub fn engine(&self, id: NodeId) -> Result<Arc<dyn Engine>, Failure> {
        self.try_engine(id)
            .ok_or_else(|| Failure::new(format!("node {id} is not running")))
    }

    /// The engine and the current state machine of `id`, taken together, if it runs.
    pub fn node(&self, id: NodeId) -> Option<(Arc<dyn Engine>, SharedStateMachine<TestSm>)> {
        lock(&self.inner.nodes)
            .get(&id)
            .and_then(|slot| Some((slot.engine.clone()?, slot.state_machine.clone())))
    }

    /// The engine of `id`, if it runs.
    pub fn try_engine(&self, id: NodeId) -> Option<Arc<dyn Engine>> {
        lock(&self.inner.nodes)
            .get(&id)
            .and_then(|slot| slot.engine.clone())
    }

    /// The state machine node `id` applies to (the current one: a restart replaces it).
    pub fn state_machine(&self, id: NodeId) -> Result<SharedStateMachine<TestSm>, Failure> {
        lock(&self.inner.nodes)
            .get(&id)
            .map(|slot| slot.state_machine.clone())
            .ok_or_else(|| Failure::new(format!("node {id} does not exist")))
    }

    /// The log store of node `id` (kept across restarts).
    pub fn store(&self, id: NodeId) -> Result<MemLogStore, Failure> {
        lock(&self.inner.nodes)
            .get(&id)
            .map(|slot| slot.store.clone())
            .ok_or_else(|| Failure::new(format!("node {id} does not exist")))
    }

    /// The clock of node `id` (kept across restarts).
    pub fn clock(&self, id: NodeId) -> Result<Arc<DriftClock>, Failure> {
        lock(&self.inner.nodes)
            .get(&id)
            .map(|slot| Arc::clone(&slot.clock))
            .ok_or_else(|| Failure::new(format!("node {id} does not exist")))
    }

    /// Runs an engine call with the harness deadline ([`Cluster::call_limit`]); a call that
    /// outlives it is a contract violation ("no call hangs") and fails the case.
    pub async fn bounded<T>(
        &self,
        what: impl fmt::Display + Send,
        call: impl Future<Output = T>,
    ) -> Result<T, Failure> {
        let limit = self.call_limit();
        let started = Instant::now();
        tokio::time::timeout(limit, call).await.map_err(|_| {
            Failure::new(format!(
                "{what} did not return within {limit:?} (started at {started:?}): every call \
                 must end by its deadline"
            ))
        })
    }

    /// Stops node `id` (its engine shuts down; store and clock are kept).
    pub async fn crash(&self, id: NodeId) -> Result<(), Failure> {
        let (engine, watcher) = {
            let mut nodes = lock(&self.inner.nodes);
            let slot = nodes
                .get_mut(&id)
                .ok_or_else(|| Failure::new(format!("node {id} does not exist")))?;
            (slot.engine.take(), slot.watcher.take())
        };
        let Some(engine) = engine else {
            return Err(Failure::new(format!("node {id} is not running")));
        };
        let result = self
            .bounded(format!("shutdown of node {id}"), engine.shutdown())
            .await;
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        // Whatever the engine did, the node is gone from the network.
        self.inner.net.transport(id).stop_serving();
        match result? {
            Ok(()) => Ok(()),
            Err(err) => Err(Failure::new(format!("shutdown of node {id} failed: {err}"))),
        }
    }

    /// Drops node `id`'s engine handle without calling `shutdown` (store and clock are kept),
    /// as a process that forgets to shut down would. The case must hold no other handle of
    /// that engine. Restart it with [`Cluster::restart`].
    pub fn abandon(&self, id: NodeId) -> Result<(), Failure> {
        let (engine, watcher) = {
            let mut nodes = lock(&self.inner.nodes);
            let slot = nodes
                .get_mut(&id)
                .ok_or_else(|| Failure::new(format!("node {id} does not exist")))?;
            (slot.engine.take(), slot.watcher.take())
        };
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        match engine {
            Some(engine) => {
                drop(engine);
                Ok(())
            }
            None => Err(Failure::new(format!("node {id} is not running"))),
        }
    }

    /// Starts node `id` again on its old store and clock, with a fresh state machine (the
    /// engine must rebuild the state from snapshot and log).
    pub async fn restart(&self, id: NodeId) -> Result<(), Failure> {
        {
            let mut nodes = lock(&self.inner.nodes);
            let slot = nodes
                .get_mut(&id)
                .ok_or_else(|| Failure::new(format!("node {id} does not exist")))?;
            if slot.engine.is_some() {
                return Err(Failure::new(format!(
                    "node {id} is running; crash it first"
                )));
            }
            slot.state_machine = SharedStateMachine::new(TestSm::new());
        }
        self.boot(id).await
    }

    /// Crashes every node, then restarts each on its store: a whole-cluster power cut.
    pub async fn restart_all(&self) -> Result<(), Failure> {
        for id in self.ids() {
            self.crash(id).await?;
        }
        for id in self.ids() {
            self.restart(id).await?;
        }
        Ok(())
    }

    /// Changes node `id`'s settings from its next [`Cluster::restart`] on (the running engine
    /// keeps the settings it started with). For cases that need one node to differ, e.g. an
    /// eager candidate with short election timeouts.
    pub fn reconfigure(&self, id: NodeId, change: impl FnOnce(&mut Config)) -> Result<(), Failure> {
        let mut nodes = lock(&self.inner.nodes);
        let slot = nodes
            .get_mut(&id)
            .ok_or_else(|| Failure::new(format!("node {id} does not exist")))?;
        change(&mut slot.config);
        Ok(())
    }

    /// Starts a new node `id` with no initial voters (to be added with `add_learner`).
    pub async fn add_node(&self, id: NodeId) -> Result<(), Failure> {
        if lock(&self.inner.nodes).contains_key(&id) {
            return Err(Failure::new(format!("node {id} already exists")));
        }
        self.create_slot(id, BTreeSet::new());
        self.boot(id).await
    }

    /// Shuts every running node down.
    pub async fn shutdown(&self) -> Result<(), Failure> {
        for id in self.running() {
            self.crash(id).await?;
        }
        Ok(())
    }

    /// Cuts `a` and `b` apart, both ways.
    pub fn partition(&self, a: NodeId, b: NodeId) {
        self.inner.net.partition(a, b);
    }

    /// Loses traffic `from → to` only.
    pub fn partition_one_way(&self, from: NodeId, to: NodeId) {
        self.inner.net.partition_one_way(from, to);
    }

    /// Splits the cluster into groups that cannot talk to each other.
    pub fn partition_groups(&self, groups: &[&[NodeId]]) {
        self.inner.net.partition_groups(groups);
    }

    /// Cuts `id` off from every other node (crashed ones included), both ways.
    pub fn isolate(&self, id: NodeId) {
        for peer in self.ids() {
            if peer != id {
                self.inner.net.partition(id, peer);
            }
        }
    }

    /// Removes every network fault.
    pub fn heal(&self) {
        self.inner.net.heal();
    }

    /// Removes every network fault, including network-wide defaults (loss, delay, ...).
    pub fn heal_all(&self) {
        self.inner.net.heal();
        self.inner
            .net
            .set_default_faults(raftengine::sim::LinkFaults::default());
    }

    /// Status of every running node.
    pub fn statuses(&self) -> BTreeMap<NodeId, Status> {
        let engines: Vec<(NodeId, Arc<dyn Engine>)> = lock(&self.inner.nodes)
            .iter()
            .filter_map(|(id, slot)| slot.engine.clone().map(|e| (*id, e)))
            .collect();
        engines
            .into_iter()
            .map(|(id, e)| (id, e.status()))
            .collect()
    }

    /// One line per node, for failure reports.
    pub fn describe(&self) -> String {
        let statuses = self.statuses();
        let mut text = String::new();
        for id in self.ids() {
            match statuses.get(&id) {
                Some(s) => text.push_str(&format!(
                    "node {id}: {:?} term {} leader {:?} commit {} applied {} (term {}) last {} \
                     transferring {:?} voters {:?} learners {:?}; ",
                    s.role,
                    s.term,
                    s.leader,
                    s.commit_index,
                    s.applied_index,
                    s.applied_term,
                    s.last_log_index,
                    s.transferring_to,
                    s.membership.voters,
                    s.membership.learners
                )),
                None => text.push_str(&format!("node {id}: down; ")),
            }
        }
        text
    }

    /// The running node that reports itself leader in the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.statuses()
            .into_iter()
            .filter(|(_, s)| s.role == Role::Leader)
            .max_by_key(|(_, s)| s.term)
            .map(|(id, _)| id)
    }

    /// Waits until one of `among` (all running nodes when empty) leads, has applied an entry
    /// of its term, and no node of `among` knows a higher term. Pass the majority side during
    /// a partition (an isolated node may keep raising its term). Fails after `timeout`.
    pub async fn wait_for_leader_among(
        &self,
        among: &[NodeId],
        timeout: Duration,
    ) -> Result<NodeId, Failure> {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses = self.statuses();
            let top_term = statuses
                .iter()
                .filter(|(id, _)| among.is_empty() || among.contains(id))
                .map(|(_, s)| s.term)
                .max()
                .unwrap_or(0);
            let ready = statuses.iter().find(|(id, s)| {
                (among.is_empty() || among.contains(id))
                    && s.is_ready_leader()
                    && s.term == top_term
            });
            if let Some((id, _)) = ready {
                return Ok(*id);
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "no ready leader{} within {timeout:?}",
                    if among.is_empty() {
                        String::new()
                    } else {
                        format!(" among {among:?}")
                    }
                ))
                .context(self.describe()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for a ready leader among all running nodes.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, Failure> {
        self.wait_for_leader_among(&[], timeout).await
    }

    /// Waits until `condition` holds, polling every few virtual milliseconds.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> Result<(), Failure> {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(self) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!("{what}: not within {timeout:?}"))
                    .context(self.describe()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A safe default for "wait for an election": several maximum election timeouts.
    pub fn election_wait(&self) -> Duration {
        self.inner.spec.config.election_timeout_max * 10
    }

    /// Hands leadership from the current leader to `target` (bounded).
    pub async fn transfer(
        &self,
        target: Option<NodeId>,
    ) -> Result<raftengine::Result<NodeId>, Failure> {
        let leader = self
            .leader()
            .ok_or_else(|| Failure::new("no leader to transfer from").context(self.describe()))?;
        let engine = self.engine(leader)?;
        self.bounded(
            format!("transfer_leadership({target:?}) on node {leader}"),
            engine.transfer_leadership(target),
        )
        .await
    }

    /// Every term in which more than one node reported itself leader (must be empty).
    pub fn election_safety_violations(&self) -> BTreeMap<u64, BTreeSet<NodeId>> {
        lock(&self.inner.elections)
            .leaders
            .iter()
            .filter(|(_, leaders)| leaders.len() > 1)
            .map(|(term, leaders)| (*term, leaders.clone()))
            .collect()
    }

    /// Leaders observed per term so far.
    pub fn leaders_by_term(&self) -> BTreeMap<u64, BTreeSet<NodeId>> {
        lock(&self.inner.elections).leaders.clone()
    }

    /// Fails if any term had two leaders.
    pub fn check_election_safety(&self) -> Result<(), Failure> {
        let violations = self.election_safety_violations();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Failure::new(format!(
                "more than one leader in a term (term → leaders): {violations:?}"
            )))
        }
    }

    /// State-machine fingerprints of every running node.
    pub fn fingerprints(&self) -> BTreeMap<NodeId, Fingerprint> {
        let slots: Vec<(NodeId, SharedStateMachine<TestSm>)> = lock(&self.inner.nodes)
            .iter()
            .filter(|(_, slot)| slot.engine.is_some())
            .map(|(id, slot)| (*id, slot.state_machine.clone()))
            .collect();
        slots
            .into_iter()
            .map(|(id, sm)| (id, sm.read(TestSm::fingerprint)))
            .collect()
    }

    /// Waits until every running node has applied the same commands in the same order (equal
    /// fingerprints, stable for a few heartbeats) and returns that fingerprint.
    pub async fn wait_converged(&self, timeout: Duration) -> Result<Fingerprint, Failure> {
        let deadline = Instant::now() + timeout;
        let settle = self.inner.spec.config.heartbeat_interval * 4;
        let mut stable_since: Option<(Fingerprint, Instant)> = None;
        loop {
            let prints = self.fingerprints();
            let distinct: BTreeSet<_> = prints
                .values()
                .map(|f| (f.last_applied, f.applied_count, f.digest))
                .collect();
            let now = Instant::now();
            if distinct.len() == 1 {
                let print = *prints.values().next().expect("one fingerprint");
                match stable_since {
                    Some((seen, since)) if seen == print => {
                        if now - since >= settle {
                            return Ok(print);
                        }
                    }
                    _ => stable_since = Some((print, now)),
                }
            } else {
                stable_since = None;
            }
            if now >= deadline {
                return Err(Failure::new(format!(
                    "replicas did not converge within {timeout:?}: fingerprints {prints:?}"
                ))
                .context(self.describe()));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Fails if any node (running or not) ever applied a write of `value` to `key`.
    pub fn assert_never_applied(&self, key: Key, value: Value, why: &str) -> Result<(), Failure> {
        let slots: Vec<(NodeId, SharedStateMachine<TestSm>)> = lock(&self.inner.nodes)
            .iter()
            .map(|(id, slot)| (*id, slot.state_machine.clone()))
            .collect();
        for (id, sm) in slots {
            if sm.read(|sm| sm.has_applied_write(key, value)) {
                return Err(Failure::new(format!(
                    "node {id} applied write {value} to key {key}, but {why} (outcome NotApplied)"
                )));
            }
        }
        Ok(())
    }

    /// Final values of every key on node `id`, for the durability oracle.
    pub fn final_state(&self, id: NodeId) -> Result<BTreeMap<Key, FinalValue>, Failure> {
        let sm = self.state_machine(id)?;
        Ok(sm.read(|sm| {
            sm.data()
                .iter()
                .map(|(key, v)| {
                    (
                        *key,
                        FinalValue {
                            value: v.value,
                            version: v.version,
                        },
                    )
                })
                .collect()
        }))
    }

    /// Proposes `command` on node `id` and decodes the state machine's response. The outer
    /// `Result` is the harness verdict (hang, undecodable response, index mismatch); the inner
    /// one is the engine's answer.
    pub async fn propose(
        &self,
        id: NodeId,
        command: Command,
    ) -> Result<raftengine::Result<(Applied, Response)>, Failure> {
        let engine = self.engine(id)?;
        let answer = self
            .bounded(
                format!("propose({command:?}) on node {id}"),
                engine.propose(command.encode()),
            )
            .await?;
        match answer {
            Ok(applied) => {
                let response = decode_response(id, &command, &applied)?;
                Ok(Ok((applied, response)))
            }
            Err(err) => Ok(Err(err)),
        }
    }

    /// Puts `value` under `key` through node `id`; on success, the version (log index).
    pub async fn put(
        &self,
        id: NodeId,
        key: Key,
        value: Value,
    ) -> Result<raftengine::Result<u64>, Failure> {
        Ok(self
            .propose(id, Command::Put { key, value })
            .await?
            .map(|(applied, _)| applied.index))
    }

    /// Puts through whichever node leads, retrying on any error until `timeout`; returns the
    /// leader that acknowledged it and the version.
    pub async fn put_via_leader(
        &self,
        key: Key,
        value: Value,
        timeout: Duration,
    ) -> Result<(NodeId, u64), Failure> {
        let deadline = Instant::now() + timeout;
        let mut last_error = String::from("no leader");
        loop {
            if let Some(leader) = self.leader() {
                match self.put(leader, key, value).await? {
                    Ok(version) => return Ok((leader, version)),
                    // Retrying the same put is harmless even if an earlier attempt applied:
                    // the value ends up the same, and the version returned is the one acked.
                    Err(err) => last_error = err.to_string(),
                }
            }
            if Instant::now() >= deadline {
                return Err(Failure::new(format!(
                    "put({key}, {value}) found no leader to accept it within {timeout:?}: {last_error}"
                ))
                .context(self.describe()));
            }
            tokio::time::sleep(self.inner.spec.config.heartbeat_interval).await;
        }
    }

    /// A linearizable read of `key` on node `id`: `linearizable_read` and then a local read.
    pub async fn linearizable_get(
        &self,
        id: NodeId,
        key: Key,
    ) -> Result<raftengine::Result<Option<Versioned>>, Failure> {
        let engine = self.engine(id)?;
        let sm = self.state_machine(id)?;
        let answer = self
            .bounded(
                format!("linearizable_read on node {id}"),
                engine.linearizable_read(),
            )
            .await?;
        Ok(answer.map(|_| sm.read(|sm| sm.get(key))))
    }
}

/// Decodes the state machine's response and checks the engine reported the right index.
pub(crate) fn decode_response(
    id: NodeId,
    command: &Command,
    applied: &Applied,
) -> Result<Response, Failure> {
    let Some(response) = Response::decode(&applied.response) else {
        return Err(Failure::new(format!(
            "node {id} returned a response the state machine never produced for {command:?}: \
             {:?}",
            applied.response
        )));
    };
    let version = match response {
        Response::Written { version } | Response::CasOk { version } => Some(version),
        _ => None,
    };
    if let Some(version) = version
        && version != applied.index
    {
        return Err(Failure::new(format!(
            "node {id}: Applied.index is {} but the state machine applied {command:?} at index \
             {version}",
            applied.index
        )));
    }
    Ok(response)
}
