//! Lease cases: `kv-lease`'s [`Lease`] driven over the backend's engines, so every backend
//! stamped with the suite is checked with the lease layer on top (`docs/leases.md`).
//!
//! A lease read is `lease.read(|| state_machine.read(|sm| sm.get(key)))` on the node's own
//! [`crate::TestSm`]; writes go through `lease.propose(command)` so successful writes keep the
//! lease warm. Histories record which path served each read ([`ReadPath::Lease`] for the fast
//! path, [`ReadPath::Linearizable`] for the slow one).
//!
//! These are also `kv-lease`'s acceptance tests on real backends: expressed through
//! the [`Harness`], every stamped backend, in-tree or third-party, runs them.

mod aborted_transfer;
mod drift;
mod full_restart;
mod minority;
mod new_term;
mod pause;
mod restart;
mod storm;
mod transfer;

pub use aborted_transfer::no_lease_for_rest_of_term_after_aborted_transfer;
pub use drift::checker_catches_lease_with_excess_drift;
pub use full_restart::no_lease_read_behind_a_full_restart;
pub use minority::lease_stops_on_minority_leader_before_new_leader;
pub use new_term::no_lease_read_before_new_term_applied;
pub use pause::lease_read_after_pause_is_not_stale;
pub use restart::restarted_node_cannot_elect_inside_live_lease;
pub use storm::lease_conflict_storm_stays_warm;
pub use transfer::no_lease_read_during_transfer;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_lease::{InvalidationCause, Lease, LeaseConfig, MissReason, ReadOutcome};
use raftengine::sim::LinkFaults;
use raftengine::{Clock, Engine, NodeId, Role, Status};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::workload::unique_value;
use crate::checker::oracles::{self, OracleViolation};
use crate::checker::{
    self, CheckOptions, ClientId, History, Input, Key, Output, ReadPath, Recorder,
};
use crate::harness::{Backend, Cluster, ClusterSpec, Failure, Harness, decode_response, seeds};
use crate::sm::{Command, Response, Versioned};
use crate::{ensure, fail};

pub(super) const MS: Duration = Duration::from_millis(1);

pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The history's name for the path a lease read took.
pub(super) fn history_path(path: kv_lease::ReadPath) -> ReadPath {
    match path {
        kv_lease::ReadPath::Fast => ReadPath::Lease,
        kv_lease::ReadPath::Slow => ReadPath::Linearizable,
    }
}

/// One lease per running node, built over the node's engine with the default settings.
pub(super) struct Leases<B: Backend> {
    cluster: Cluster<B>,
    leases: BTreeMap<NodeId, Lease>,
}

impl<B: Backend> Leases<B> {
    pub(super) fn new(cluster: &Cluster<B>) -> Self {
        Self {
            cluster: cluster.clone(),
            leases: BTreeMap::new(),
        }
    }

    /// Leases on every running node.
    pub(super) fn on_all(cluster: &Cluster<B>) -> Result<Self, Failure> {
        let mut leases = Self::new(cluster);
        for id in cluster.running() {
            leases.get(id)?;
        }
        Ok(leases)
    }

    /// The lease of node `id`, built on first use.
    pub(super) fn get(&mut self, id: NodeId) -> Result<Lease, Failure> {
        if let Some(lease) = self.leases.get(&id) {
            return Ok(lease.clone());
        }
        let engine = self.cluster.engine(id)?;
        let lease = Lease::new(engine, LeaseConfig::default()).map_err(|err| {
            Failure::new(format!(
                "{}: kv-lease rejected the engine timing of node {id}: {err}",
                B::NAME
            ))
        })?;
        self.leases.insert(id, lease.clone());
        Ok(lease)
    }

    /// Shuts every lease and then the cluster down.
    pub(super) async fn shutdown(self) -> Result<(), Failure> {
        for lease in self.leases.values() {
            lease.shutdown().await;
        }
        self.cluster.shutdown().await
    }
}

pub(super) fn status<B: Backend>(cluster: &Cluster<B>, id: NodeId) -> Result<Status, Failure> {
    Ok(cluster.engine(id)?.status())
}

/// A lease read of `key` on node `id` (bounded by the harness deadline).
pub(super) async fn lease_get<B: Backend>(
    cluster: &Cluster<B>,
    lease: &Lease,
    id: NodeId,
    key: Key,
) -> Result<raftengine::Result<ReadOutcome<Option<Versioned>>>, Failure> {
    let sm = cluster.state_machine(id)?;
    cluster
        .bounded(
            format!("lease read of key {key} on node {id}"),
            lease.read(|| sm.read(|sm| sm.get(key))),
        )
        .await
}

/// Proposes `command` through node `id`'s lease and decodes the state machine's answer.
pub(super) async fn lease_propose<B: Backend>(
    cluster: &Cluster<B>,
    lease: &Lease,
    id: NodeId,
    command: Command,
) -> Result<raftengine::Result<Response>, Failure> {
    let answer = cluster
        .bounded(
            format!("propose({command:?}) through the lease on node {id}"),
            lease.propose(command.encode()),
        )
        .await?;
    match answer {
        Ok(applied) => Ok(Ok(decode_response(id, &command, &applied)?)),
        Err(err) => Ok(Err(err)),
    }
}

/// Puts through node `id`'s lease; any error fails the case.
pub(super) async fn lease_put<B: Backend>(
    cluster: &Cluster<B>,
    lease: &Lease,
    id: NodeId,
    key: Key,
    value: u64,
) -> Result<u64, Failure> {
    match lease_propose(cluster, lease, id, Command::Put { key, value }).await? {
        Ok(Response::Written { version }) => Ok(version),
        Ok(other) => Err(Failure::new(format!(
            "node {id} answered put({key}, {value}) with {other:?}"
        ))),
        Err(err) => Err(Failure::new(format!(
            "put({key}, {value}) through the lease on node {id} failed: {err}"
        ))
        .context(cluster.describe())),
    }
}

/// Waits until node `id`'s lease serves a read of `key` on the fast path (a read that misses
/// renews it).
pub(super) async fn wait_fast_read<B: Backend>(
    cluster: &Cluster<B>,
    lease: &Lease,
    id: NodeId,
    key: Key,
) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let read = lease_get(cluster, lease, id, key).await?;
        if matches!(read, Ok(ref r) if r.path == kv_lease::ReadPath::Fast) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(format!(
                "node {id}: no fast lease read within 5 s (last: {read:?})"
            ))
            .context(cluster.describe()));
        }
        tokio::time::sleep(10 * MS).await;
    }
}

/// The starting point of most lease cases: waits for a leader, builds its lease, writes key 1 =
/// 1 through it and waits until the lease serves key 1 on the fast path. Returns the leader,
/// the leases (to build more of them) and the leader's lease.
pub(super) async fn warm_leader<B: Backend>(
    cluster: &Cluster<B>,
) -> Result<(NodeId, Leases<B>, Lease), Failure> {
    let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
    let mut leases = Leases::new(cluster);
    let lease = leases.get(leader)?;
    lease_put(cluster, &lease, leader, 1, 1).await?;
    wait_fast_read(cluster, &lease, leader, 1).await?;
    Ok((leader, leases, lease))
}

/// Polls `condition` every virtual millisecond for at most `limit`.
pub(super) async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(MS).await;
    }
}

/// What a [`Sentinel`] saw when a node first led in a newer term.
#[derive(Debug, Clone, Copy)]
struct Takeover {
    node: NodeId,
    term: u64,
    /// On the old leader's clock.
    at: Instant,
    /// The old leader's fast-path check at that very instant.
    old_lease_check: Result<(), MissReason>,
}

/// Watches nodes' status channels and records, at the virtual instant one of them first leads
/// in a term above `after_term`, what the old leader's lease said at that instant.
struct Sentinel {
    seen: Arc<Mutex<Option<Takeover>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Sentinel {
    fn watch(
        engines: Vec<Arc<dyn Engine>>,
        after_term: u64,
        old_lease: &Lease,
        old_clock: Arc<dyn Clock>,
    ) -> Self {
        let seen = Arc::new(Mutex::new(None));
        let tasks = engines
            .into_iter()
            .map(|engine| {
                let seen = Arc::clone(&seen);
                let old_lease = old_lease.clone();
                let old_clock = Arc::clone(&old_clock);
                tokio::spawn(async move {
                    let mut status = engine.watch_status();
                    let Ok(leading) = status
                        .wait_for(|s| s.role == Role::Leader && s.term > after_term)
                        .await
                    else {
                        return;
                    };
                    let takeover = Takeover {
                        node: leading.id,
                        term: leading.term,
                        at: old_clock.now(),
                        old_lease_check: old_lease.check(),
                    };
                    drop(leading);
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(takeover);
                })
            })
            .collect();
        Self { seen, tasks }
    }

    fn takeover(&self) -> Option<Takeover> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Holds every link to and from `id`: it hears nothing and nothing it sends arrives.
fn hold_all<B: Backend>(cluster: &Cluster<B>, id: NodeId) {
    for peer in cluster.others(id) {
        cluster.net().hold(id, peer);
        cluster.net().hold(peer, id);
    }
}

/// Releases what [`hold_all`] held, in order.
fn release_all<B: Backend>(cluster: &Cluster<B>, id: NodeId) {
    for peer in cluster.others(id) {
        cluster.net().release(id, peer);
        cluster.net().release(peer, id);
    }
}

async fn join_all<T: 'static>(tasks: &mut JoinSet<Result<T, Failure>>) -> Result<Vec<T>, Failure> {
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => out.push(result?),
            Err(err) => return Err(Failure::new(format!("a client task panicked: {err}"))),
        }
    }
    Ok(out)
}
