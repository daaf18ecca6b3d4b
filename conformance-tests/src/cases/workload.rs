//! Concurrent clients that put, compare-and-set and read against a cluster and record every
//! request in a [`Recorder`]. A share of the requests goes through a `kv-lease` [`Lease`] on
//! the serving node (reads on the fast path when the lease holds), so every fault schedule
//! checks lease reads too; the rest read through `linearizable_read` and write through
//! `propose`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_lease::{Lease, LeaseConfig};
use raftengine::{Applied, Engine, NodeId, SharedStateMachine, WriteOutcome};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;

use super::lease::history_path;
use crate::checker::{ClientId, Input, Key, Output, PendingOp, ReadPath, Recorder, Value};
use crate::harness::{Backend, Cluster, Failure, decode_response};
use crate::sm::{Command, Response, TestSm, Versioned};

/// Shape of a client workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Workload {
    /// Number of concurrent clients (each issues one request at a time).
    pub clients: u64,
    /// Keys are `0..keys`.
    pub keys: u64,
    /// Fraction of requests that are reads.
    pub read_ratio: f64,
    /// Fraction of requests that are compare-and-sets (the rest are puts).
    pub cas_ratio: f64,
    /// Longest pause between two requests of one client.
    pub max_think: Duration,
    /// Fraction of requests sent through the serving node's lease: reads by `Lease::read`
    /// (fast path while the lease holds), writes by `Lease::propose` (which extends it).
    pub lease_ratio: f64,
    /// Serve reads from a random node's state machine with no leadership check
    /// ([`ReadPath::Local`]). Deliberately unsafe: only for the negative test.
    pub unsafe_local_reads: bool,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            clients: 4,
            keys: 3,
            read_ratio: 0.45,
            cas_ratio: 0.2,
            max_think: Duration::from_millis(30),
            lease_ratio: 0.5,
            unsafe_local_reads: false,
        }
    }
}

/// A unique value: client in the high half, sequence number in the low half.
pub fn unique_value(client: ClientId, seq: u64) -> Value {
    ((client + 1) << 32) | (seq & 0xFFFF_FFFF)
}

/// The running clients and the leases they read through.
pub struct Clients {
    tasks: JoinSet<Result<u64, Failure>>,
    leases: LeasePool,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("running", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

/// One `kv-lease` [`Lease`] per node, shared by the clients like a node's lease layer is shared
/// by its requests. A node that restarted has a new engine and gets a new lease over it; the
/// old one is shut down.
#[derive(Clone, Default)]
struct LeasePool {
    leases: Arc<Mutex<BTreeMap<NodeId, NodeLease>>>,
}

/// A node's lease and the engine it was built over.
type NodeLease = (Arc<dyn Engine>, Lease);

impl LeasePool {
    async fn lease(&self, node: NodeId, engine: &Arc<dyn Engine>) -> Result<Lease, Failure> {
        let (fresh, retired) = {
            let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((built_on, lease)) = leases.get(&node)
                && std::ptr::addr_eq(Arc::as_ptr(built_on), Arc::as_ptr(engine))
            {
                return Ok(lease.clone());
            }
            let fresh = Lease::new(Arc::clone(engine), LeaseConfig::default()).map_err(|err| {
                Failure::new(format!(
                    "kv-lease rejected the engine timing of node {node}: {err}"
                ))
            })?;
            let retired = leases.insert(node, (Arc::clone(engine), fresh.clone()));
            (fresh, retired)
        };
        if let Some((_, old)) = retired {
            old.shutdown().await;
        }
        Ok(fresh)
    }

    async fn shutdown(&self) {
        let leases = std::mem::take(&mut *self.leases.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, lease) in leases.into_values() {
            lease.shutdown().await;
        }
    }
}

/// Spawns the clients; they run until `stop` is set. Each task returns `Err` only for a
/// contract violation the harness sees directly (a hang, an undecodable response).
pub fn spawn_clients<B: Backend>(
    cluster: &Cluster<B>,
    recorder: &Recorder,
    workload: Workload,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Clients {
    let leases = LeasePool::default();
    let mut tasks = JoinSet::new();
    for client in 0..workload.clients {
        let client_run = Client {
            cluster: cluster.clone(),
            recorder: recorder.clone(),
            leases: leases.clone(),
            workload,
            id: client,
        };
        let stop = Arc::clone(&stop);
        let rng = ChaCha8Rng::seed_from_u64(seed ^ (client + 1).wrapping_mul(0x9E37_79B9));
        tasks.spawn(async move { client_run.run(rng, stop).await });
    }
    Clients { tasks, leases }
}

/// What one client task works with.
struct Client<B: Backend> {
    cluster: Cluster<B>,
    recorder: Recorder,
    leases: LeasePool,
    workload: Workload,
    id: ClientId,
}

impl<B: Backend> Client<B> {
    /// A read of `key` on `node`: through its lease, or `linearizable_read` then the state
    /// machine. Records the path that served it.
    async fn read(
        &self,
        node: NodeId,
        engine: &Arc<dyn Engine>,
        state_machine: &SharedStateMachine<TestSm>,
        key: Key,
        via_lease: bool,
        pending: &PendingOp,
    ) -> Result<raftengine::Result<Option<Versioned>>, Failure> {
        let client = self.id;
        if via_lease {
            let lease = self.leases.lease(node, engine).await?;
            let answer = self
                .cluster
                .bounded(
                    format!("lease read on node {node} (client {client})"),
                    lease.read(|| state_machine.read(|sm| sm.get(key))),
                )
                .await?;
            return Ok(answer.map(|outcome| {
                pending.via(history_path(outcome.path));
                outcome.value
            }));
        }
        pending.via(ReadPath::Linearizable);
        let answer = self
            .cluster
            .bounded(
                format!("linearizable_read on node {node} (client {client})"),
                engine.linearizable_read(),
            )
            .await?;
        Ok(answer.map(|_| state_machine.read(|sm| sm.get(key))))
    }

    /// Proposes `command` on `node`, through its lease or straight to the engine.
    async fn write(
        &self,
        node: NodeId,
        engine: &Arc<dyn Engine>,
        command: &Command,
        via_lease: bool,
    ) -> Result<raftengine::Result<Applied>, Failure> {
        let client = self.id;
        let what = format!("propose({command:?}) on node {node} (client {client})");
        if via_lease {
            let lease = self.leases.lease(node, engine).await?;
            return self
                .cluster
                .bounded(what, lease.propose(command.encode()))
                .await;
        }
        self.cluster
            .bounded(what, engine.propose(command.encode()))
            .await
    }

    async fn run(self, mut rng: ChaCha8Rng, stop: Arc<AtomicBool>) -> Result<u64, Failure> {
        let (cluster, recorder, workload, client) =
            (&self.cluster, &self.recorder, self.workload, self.id);
        let mut target: Option<NodeId> = None;
        let mut seq = 0u64;
        let mut last_seen: HashMap<Key, Option<Value>> = HashMap::new();
        let think_ms = workload.max_think.as_millis().max(2) as u64;
        while !stop.load(Ordering::SeqCst) {
            // Always let virtual time move: a client spinning on instant errors would freeze it.
            tokio::time::sleep(Duration::from_millis(rng.gen_range(1..think_ms))).await;
            let running = cluster.running();
            if running.is_empty() {
                continue;
            }
            let key = rng.gen_range(0..workload.keys);
            seq += 1;
            let value = unique_value(client, seq);
            let roll: f64 = rng.r#gen();
            let input = if roll < workload.read_ratio {
                Input::Get
            } else if roll < workload.read_ratio + workload.cas_ratio {
                Input::Cas {
                    expected: last_seen.get(&key).copied().flatten(),
                    new: value,
                }
            } else {
                Input::Put(value)
            };
            let via_lease = rng.gen_bool(workload.lease_ratio);
            let random_node = running[rng.gen_range(0..running.len())];
            let node = match target {
                _ if workload.unsafe_local_reads && input == Input::Get => random_node,
                Some(node) if running.contains(&node) => node,
                _ => random_node,
            };
            let Some((engine, state_machine)) = cluster.node(node) else {
                target = None;
                continue;
            };
            if workload.unsafe_local_reads && input == Input::Get {
                let pending = recorder.invoke(client, key, input);
                pending.served_by(node);
                pending.via(ReadPath::Local);
                let current = state_machine.read(|sm| sm.get(key));
                // Let the read take a moment, like a real request would.
                tokio::time::sleep(Duration::from_millis(1)).await;
                pending.ok(
                    Output::Value(current.map(|v| v.value)),
                    Some(current.map_or(0, |v| v.version)),
                );
                last_seen.insert(key, current.map(|v| v.value));
                continue;
            }
            let pending = recorder.invoke(client, key, input);
            pending.served_by(node);
            match input {
                Input::Get => {
                    let answer = self
                        .read(node, &engine, &state_machine, key, via_lease, &pending)
                        .await?;
                    match answer {
                        Ok(current) => {
                            pending.ok(
                                Output::Value(current.map(|v| v.value)),
                                Some(current.map_or(0, |v| v.version)),
                            );
                            last_seen.insert(key, current.map(|v| v.value));
                            target = Some(node);
                        }
                        Err(err) => {
                            pending.failed();
                            target = err.leader_hint();
                        }
                    }
                }
                Input::Put(_) | Input::Cas { .. } => {
                    let command = match input {
                        Input::Cas { expected, new } => Command::Cas { key, expected, new },
                        _ => Command::Put { key, value },
                    };
                    match self.write(node, &engine, &command, via_lease).await? {
                        Ok(applied) => {
                            target = Some(node);
                            match decode_response(node, &command, &applied)? {
                                Response::Written { version } => {
                                    pending.ok(Output::Written, Some(version));
                                    last_seen.insert(key, Some(value));
                                }
                                Response::CasOk { version } => {
                                    pending.ok(Output::Cas(true), Some(version));
                                    last_seen.insert(key, Some(value));
                                }
                                Response::CasFailed { current } => {
                                    pending.ok(Output::Cas(false), None);
                                    last_seen.insert(key, current.map(|v| v.value));
                                }
                                other => {
                                    return Err(Failure::new(format!(
                                        "node {node} answered {command:?} with {other:?}"
                                    )));
                                }
                            }
                        }
                        Err(err) => {
                            match err.outcome() {
                                WriteOutcome::NotApplied => pending.failed(),
                                WriteOutcome::Unknown => pending.unknown(),
                            }
                            target = err.leader_hint();
                        }
                    }
                }
            }
        }
        Ok(seq)
    }
}

/// Stops the clients and waits for them (each finishes its current request, bounded by the
/// harness deadline), then shuts their leases down. Returns the number of requests issued.
pub async fn stop_clients(stop: &AtomicBool, clients: Clients) -> Result<u64, Failure> {
    let Clients { mut tasks, leases } = clients;
    stop.store(true, Ordering::SeqCst);
    let mut issued = 0;
    let mut outcome = Ok(());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(requests)) => issued += requests,
            Ok(Err(failure)) => outcome = outcome.and(Err(failure)),
            Err(err) => {
                outcome = outcome.and(Err(Failure::new(format!("a client task panicked: {err}"))))
            }
        }
    }
    leases.shutdown().await;
    outcome.map(|()| issued)
}
