//! Concurrent clients that put, compare-and-set and read (linearizable path) against a cluster
//! and record every request in a [`Recorder`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use raftengine::{NodeId, WriteOutcome};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;

use crate::checker::{ClientId, Input, Key, Output, ReadPath, Recorder, Value};
use crate::harness::{Backend, Cluster, Failure, decode_response};
use crate::sm::{Command, Response};

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
            unsafe_local_reads: false,
        }
    }
}

/// A unique value: client in the high half, sequence number in the low half.
pub fn unique_value(client: ClientId, seq: u64) -> Value {
    ((client + 1) << 32) | (seq & 0xFFFF_FFFF)
}

/// Spawns the clients; they run until `stop` is set. Each task returns `Err` only for a
/// contract violation the harness sees directly (a hang, an undecodable response).
pub fn spawn_clients<B: Backend>(
    cluster: &Cluster<B>,
    recorder: &Recorder,
    workload: Workload,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> JoinSet<Result<u64, Failure>> {
    let mut tasks = JoinSet::new();
    for client in 0..workload.clients {
        let cluster = cluster.clone();
        let recorder = recorder.clone();
        let stop = Arc::clone(&stop);
        let rng = ChaCha8Rng::seed_from_u64(seed ^ (client + 1).wrapping_mul(0x9E37_79B9));
        tasks
            .spawn(async move { run_client(cluster, recorder, workload, client, rng, stop).await });
    }
    tasks
}

async fn run_client<B: Backend>(
    cluster: Cluster<B>,
    recorder: Recorder,
    workload: Workload,
    client: ClientId,
    mut rng: ChaCha8Rng,
    stop: Arc<AtomicBool>,
) -> Result<u64, Failure> {
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
                pending.via(ReadPath::Linearizable);
                let answer = cluster
                    .bounded(
                        format!("linearizable_read on node {node} (client {client})"),
                        engine.linearizable_read(),
                    )
                    .await?;
                match answer {
                    Ok(_) => {
                        let current = state_machine.read(|sm| sm.get(key));
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
                let answer = cluster
                    .bounded(
                        format!("propose({command:?}) on node {node} (client {client})"),
                        engine.propose(command.encode()),
                    )
                    .await?;
                match answer {
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

/// Stops the clients and waits for them (each finishes its current request, bounded by the
/// harness deadline). Returns the number of requests issued.
pub async fn stop_clients(
    stop: &AtomicBool,
    mut tasks: JoinSet<Result<u64, Failure>>,
) -> Result<u64, Failure> {
    stop.store(true, Ordering::SeqCst);
    let mut issued = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => issued += result?,
            Err(err) => return Err(Failure::new(format!("a client task panicked: {err}"))),
        }
    }
    Ok(issued)
}
