//! The client side of a run: closed-loop clients that read (by lease and linearizably), write
//! and conditionally write, routed to the current leader, with every outcome recorded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_lease::ReadPath;
use kv_lease::kv::{KvCommand, KvResponse};
use raftengine::{Engine, ErrorKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::baseline::WriteTarget;
use crate::cluster::{Node, leader_among};
use crate::stats::{ErrorCounts, Latencies, kind_name};

/// The nodes clients may talk to, refreshed by whoever crashes and restarts them.
#[derive(Default)]
pub struct Router {
    nodes: RwLock<BTreeMap<u64, Node>>,
    leader: AtomicU64,
}

impl Router {
    /// Replaces the set of running nodes.
    pub fn set_nodes(&self, nodes: impl IntoIterator<Item = (u64, Node)>) {
        *self.nodes.write().unwrap_or_else(|p| p.into_inner()) = nodes.into_iter().collect();
        self.refresh();
    }

    /// Re-reads which node leads.
    pub fn refresh(&self) {
        let nodes = self.nodes.read().unwrap_or_else(|p| p.into_inner());
        let leader = leader_among(nodes.iter()).unwrap_or(0);
        self.leader.store(leader, Ordering::Relaxed);
    }

    /// The node clients should send to now.
    pub fn leader(&self) -> Option<Node> {
        let id = self.leader.load(Ordering::Relaxed);
        self.nodes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

/// What the clients of one run should do.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Fraction of operations that are reads.
    pub read_ratio: f64,
    /// Of the reads, the fraction that go through the lease (the rest are linearizable).
    pub lease_read_share: f64,
    /// Of the writes, the fraction that are compare-and-set.
    pub cas_share: f64,
    /// Of the compare-and-sets, the fraction built to conflict.
    pub conflict_rate: f64,
    /// Bytes per value.
    pub value_size: usize,
}

/// Everything the clients observed.
#[derive(Debug, Default)]
pub struct ClientTotals {
    /// Successful writes (puts and compare-and-sets that took effect or conflicted).
    pub writes_ok: u64,
    /// Compare-and-sets that failed with a conflict (an application outcome).
    pub conflicts: u64,
    /// Latency of successful writes.
    pub commit: Latencies,
    /// Latency of lease reads, both paths.
    pub lease_reads: Latencies,
    /// Latency of lease reads served on the fast path.
    pub fast_reads: Latencies,
    /// Latency of linearizable reads.
    pub linearizable_reads: Latencies,
    /// Engine errors by kind.
    pub errors: ErrorCounts,
    /// For each client's own key, the highest serial whose put was acknowledged.
    pub acked: BTreeMap<Bytes, u64>,
}

impl ClientTotals {
    fn merge(&mut self, other: ClientTotals) {
        self.writes_ok += other.writes_ok;
        self.conflicts += other.conflicts;
        self.commit.merge(other.commit);
        self.lease_reads.merge(other.lease_reads);
        self.fast_reads.merge(other.fast_reads);
        self.linearizable_reads.merge(other.linearizable_reads);
        self.errors.merge(other.errors);
        self.acked.extend(other.acked);
    }
}

/// A value carrying its writer's serial, so durability can be checked after a crash.
pub fn value_for(client: usize, serial: u64, size: usize) -> Bytes {
    let mut value = format!("{client}:{serial}:").into_bytes();
    value.resize(size.max(value.len()), b'.');
    Bytes::from(value)
}

/// The serial a value carries.
pub fn serial_of(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    text.split(':').nth(1)?.parse().ok()
}

/// The key client `client` puts to.
pub fn put_key(client: usize) -> Bytes {
    Bytes::from(format!("client/{client}/put"))
}

fn cas_key(client: usize) -> Bytes {
    Bytes::from(format!("client/{client}/cas"))
}

/// Runs `clients` closed-loop clients until `stop` is set.
pub async fn run_clients(
    router: Arc<Router>,
    clients: usize,
    mix: Mix,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> ClientTotals {
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let router = Arc::clone(&router);
            let stop = Arc::clone(&stop);
            tokio::spawn(client_loop(router, client, clients, mix, seed, stop))
        })
        .collect();
    let mut totals = ClientTotals::default();
    for handle in handles {
        if let Ok(client) = handle.await {
            totals.merge(client);
        }
    }
    totals
}

async fn client_loop(
    router: Arc<Router>,
    client: usize,
    clients: usize,
    mix: Mix,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> ClientTotals {
    let mut totals = ClientTotals::default();
    // One seeded stream per client, so a run's operation sequence replays.
    let mut dice =
        ChaCha8Rng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut serial = 0u64;
    // What this client believes its CAS key holds; `None` after an unknown outcome.
    let mut cas_value: Option<Option<Bytes>> = Some(None);
    while !stop.load(Ordering::Relaxed) {
        let Some(node) = router.leader() else {
            router.refresh();
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        serial += 1;
        let began = Instant::now();
        let result: Result<(), raftengine::Error> = if dice.gen_bool(mix.read_ratio) {
            let key = put_key(dice.gen_range(0..clients));
            if dice.gen_bool(mix.lease_read_share) {
                node.kv.get(&key).await.map(|outcome| {
                    let elapsed = began.elapsed();
                    totals.lease_reads.record(elapsed);
                    if outcome.path == ReadPath::Fast {
                        totals.fast_reads.record(elapsed);
                    }
                })
            } else {
                node.kv
                    .get_linearizable(&key)
                    .await
                    .map(|_| totals.linearizable_reads.record(began.elapsed()))
            }
        } else if dice.gen_bool(mix.cas_share) {
            let key = cas_key(client);
            let new = value_for(client, serial, mix.value_size);
            let expected = match &cas_value {
                Some(known) => known.clone(),
                None => match node.kv.get_linearizable(&key).await {
                    Ok(current) => current,
                    Err(e) => {
                        note_error(&mut totals, &router, &e).await;
                        continue;
                    }
                },
            };
            let conflict = dice.gen_bool(mix.conflict_rate);
            let expected = if conflict {
                Some(Bytes::from_static(b"a value nobody writes"))
            } else {
                expected
            };
            match node.kv.cas(key, expected.clone(), Some(new.clone())).await {
                Ok(response) => {
                    totals.writes_ok += 1;
                    totals.commit.record(began.elapsed());
                    match response {
                        KvResponse::Conflict { actual, .. } => {
                            totals.conflicts += 1;
                            cas_value = Some(actual);
                        }
                        _ => cas_value = Some(Some(new)),
                    }
                    Ok(())
                }
                Err(e) => {
                    if !e.is_safe_to_retry() {
                        cas_value = None;
                    }
                    Err(e)
                }
            }
        } else {
            let key = put_key(client);
            let value = value_for(client, serial, mix.value_size);
            node.kv.put(key.clone(), value).await.map(|_| {
                totals.writes_ok += 1;
                totals.commit.record(began.elapsed());
                totals.acked.insert(key, serial);
            })
        };
        if let Err(e) = result {
            note_error(&mut totals, &router, &e).await;
        }
    }
    totals
}

async fn note_error(totals: &mut ClientTotals, router: &Router, error: &raftengine::Error) {
    totals.errors.add(kind_name(error.kind()));
    if !matches!(error.kind(), ErrorKind::Rejected(_)) {
        router.refresh();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Raw proposals of KV puts straight into an engine: the adapter side of the overhead ratio.
///
/// Each client overwrites its own key, as in both direct baselines (openraft-memstore keeps one
/// entry per client), so all three keep the same bounded state and snapshot it as cheaply.
pub struct EngineWriter {
    engine: Arc<dyn Engine>,
    value_size: usize,
}

impl EngineWriter {
    /// Writes `value_size`-byte values through `engine`.
    pub fn new(engine: Arc<dyn Engine>, value_size: usize) -> Self {
        Self { engine, value_size }
    }
}

impl WriteTarget for EngineWriter {
    fn write(&self, client: usize, serial: u64) -> impl Future<Output = Result<(), String>> + Send {
        let command = KvCommand::Put {
            key: put_key(client),
            value: value_for(client, serial, self.value_size),
        }
        .encode();
        let engine = Arc::clone(&self.engine);
        async move {
            engine
                .propose(command)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

/// What a write-only run measured.
#[derive(Debug, Default)]
pub struct WriteRun {
    /// Writes that succeeded.
    pub ok: u64,
    /// Writes that failed.
    pub failed: u64,
    /// Latency of successful writes.
    pub latencies: Latencies,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// CPU the whole process used during the run (cluster and clients; `None` without a
    /// process CPU clock).
    pub cpu: Option<Duration>,
}

impl WriteRun {
    /// Successful writes per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Microseconds of process CPU per successful write.
    pub fn cpu_us_per_write(&self) -> Option<f64> {
        let cpu = self.cpu?;
        (self.ok > 0).then(|| cpu.as_secs_f64() * 1e6 / self.ok as f64)
    }
}

/// Runs `clients` closed-loop writers against `target` for `duration`.
pub async fn run_writes<T: WriteTarget>(
    target: Arc<T>,
    clients: usize,
    duration: Duration,
) -> WriteRun {
    let start = Instant::now();
    let cpu_start = crate::cpu::process_time();
    let deadline = start + duration;
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let target = Arc::clone(&target);
            tokio::spawn(async move {
                let mut run = WriteRun::default();
                let mut serial = 0;
                while Instant::now() < deadline {
                    let began = Instant::now();
                    match target.write(client, serial).await {
                        Ok(()) => {
                            run.ok += 1;
                            run.latencies.record(began.elapsed());
                        }
                        Err(_) => run.failed += 1,
                    }
                    serial += 1;
                }
                run
            })
        })
        .collect();
    let mut total = WriteRun::default();
    for handle in handles {
        if let Ok(run) = handle.await {
            total.ok += run.ok;
            total.failed += run.failed;
            total.latencies.merge(run.latencies);
        }
    }
    total.elapsed = start.elapsed();
    total.cpu = crate::cpu::since(cpu_start);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_write_needs_a_clock_and_a_write() {
        let run = |ok, cpu| WriteRun {
            ok,
            cpu,
            ..WriteRun::default()
        };
        assert_eq!(
            run(4, Some(Duration::from_micros(10))).cpu_us_per_write(),
            Some(2.5)
        );
        assert_eq!(
            run(0, Some(Duration::from_micros(10))).cpu_us_per_write(),
            None
        );
        assert_eq!(run(4, None).cpu_us_per_write(), None);
    }

    #[test]
    fn values_carry_their_serial() {
        let value = value_for(3, 42, 64);
        assert_eq!(value.len(), 64);
        assert_eq!(serial_of(&value), Some(42));
        assert_eq!(serial_of(b"garbage"), None);
        assert_eq!(value_for(1, 7, 0).as_ref(), b"1:7:");
    }
}
