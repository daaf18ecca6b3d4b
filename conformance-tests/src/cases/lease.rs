//! Lease cases: `kv-lease`'s [`Lease`] driven over the backend's engines, so every backend
//! stamped with the suite is checked with the lease layer on top (DESIGN "Lease reads", issue 6).
//!
//! A lease read is `lease.read(|| state_machine.read(|sm| sm.get(key)))` on the node's own
//! [`crate::TestSm`]; writes go through `lease.propose(command)` so successful writes keep the
//! lease warm. Histories record which path served each read ([`ReadPath::Lease`] for the fast
//! path, [`ReadPath::Linearizable`] for the slow one).
//!
//! These are also `kv-lease`'s acceptance tests on real backends (issue 5): expressed through
//! the [`Harness`], every stamped backend, in-tree or third-party, runs them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_lease::{InvalidationCause, Lease, LeaseConfig, MissReason, ReadOutcome};
use raftengine::{Clock, Engine, LinkFaults, NodeId, Role, Status};
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

const MS: Duration = Duration::from_millis(1);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The history's name for the path a lease read took.
fn history_path(path: kv_lease::ReadPath) -> ReadPath {
    match path {
        kv_lease::ReadPath::Fast => ReadPath::Lease,
        kv_lease::ReadPath::Slow => ReadPath::Linearizable,
    }
}

/// One lease per running node, built over the node's engine with the default settings.
struct Leases<B: Backend> {
    cluster: Cluster<B>,
    leases: BTreeMap<NodeId, Lease>,
}

impl<B: Backend> Leases<B> {
    fn new(cluster: &Cluster<B>) -> Self {
        Self {
            cluster: cluster.clone(),
            leases: BTreeMap::new(),
        }
    }

    /// Leases on every running node.
    fn on_all(cluster: &Cluster<B>) -> Result<Self, Failure> {
        let mut leases = Self::new(cluster);
        for id in cluster.running() {
            leases.get(id)?;
        }
        Ok(leases)
    }

    /// The lease of node `id`, built on first use.
    fn get(&mut self, id: NodeId) -> Result<Lease, Failure> {
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
    async fn shutdown(self) -> Result<(), Failure> {
        for lease in self.leases.values() {
            lease.shutdown().await;
        }
        self.cluster.shutdown().await
    }
}

fn status<B: Backend>(cluster: &Cluster<B>, id: NodeId) -> Result<Status, Failure> {
    Ok(cluster.engine(id)?.status())
}

fn others<B: Backend>(cluster: &Cluster<B>, id: NodeId) -> Vec<NodeId> {
    cluster.ids().into_iter().filter(|&i| i != id).collect()
}

/// A lease read of `key` on node `id` (bounded by the harness deadline).
async fn lease_get<B: Backend>(
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
async fn lease_propose<B: Backend>(
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
async fn lease_put<B: Backend>(
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
async fn wait_fast_read<B: Backend>(
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

/// Polls `condition` every virtual millisecond for at most `limit`.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
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
    for peer in others(cluster, id) {
        cluster.net().hold(id, peer);
        cluster.net().hold(peer, id);
    }
}

/// Releases what [`hold_all`] held, in order.
fn release_all<B: Backend>(cluster: &Cluster<B>, id: NodeId) {
    for peer in others(cluster, id) {
        cluster.net().release(id, peer);
        cluster.net().release(peer, id);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. A conflict storm keeps the lease warm; the seed bug collapses it.
// ---------------------------------------------------------------------------------------------

/// Pause of each storm reader between reads. With writes taking a 2 ms round trip plus a 1 ms
/// pause, a conflict comes about every other read, so with the seed bug most reads find the
/// lease freshly invalidated, as in the production incident.
const READ_PAUSE: Duration = Duration::from_millis(4);

/// What one phase of the storm measured.
#[derive(Debug, Clone, Copy, Default)]
struct StormPhase {
    reads: u64,
    fast_reads: u64,
    stale_reads: u64,
    writes: u64,
    conflicts: u64,
    slow_rounds: u64,
}

impl StormPhase {
    fn hit_rate(&self) -> f64 {
        self.fast_reads as f64 / self.reads.max(1) as f64
    }

    fn conflict_rate(&self) -> f64 {
        self.conflicts as f64 / self.writes.max(1) as f64
    }
}

struct Storm<B: Backend> {
    cluster: Cluster<B>,
    lease: Lease,
    leader: NodeId,
    recorder: Recorder,
    /// Numbers the conflicting attempts, so their (never applied) values are unique.
    attempts: Arc<AtomicU64>,
}

impl<B: Backend> Storm<B> {
    /// Two writers, each owning one key, issue compare-and-sets of which every other one names
    /// a value the key never held (a write conflict), pausing 1 ms after each; two readers
    /// issue `reads_per_reader` lease reads each on the leader, pausing [`READ_PAUSE`]. Every
    /// read must see at least the newest value acknowledged before it started. With
    /// `invalidate_on_conflict` the writers emulate the seed bug: every conflict invalidates
    /// the lease, as a layer treating every failed write as leadership loss would.
    async fn phase(
        &self,
        keys: [Key; 2],
        acked: &Arc<[AtomicU64; 2]>,
        reads_per_reader: u64,
        invalidate_on_conflict: bool,
    ) -> Result<StormPhase, Failure> {
        let before = self.lease.stats();
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = JoinSet::new();
        for (slot, key) in keys.into_iter().enumerate() {
            let (cluster, lease, leader, recorder) = (
                self.cluster.clone(),
                self.lease.clone(),
                self.leader,
                self.recorder.clone(),
            );
            let (acked, stop) = (Arc::clone(acked), Arc::clone(&stop));
            let attempts = Arc::clone(&self.attempts);
            writers.spawn(async move {
                let sm = cluster.state_machine(leader)?;
                let mut phase = StormPhase::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Acquire) {
                    i += 1;
                    let current = sm.read(|sm| sm.get(key)).map_or(0, |v| v.value);
                    // Every other attempt names a value the key never held and conflicts.
                    // Its `new` is unique too (the checker needs every written value unique
                    // per key, attempted or not); it is never applied.
                    let (expected, new) = if i.is_multiple_of(2) {
                        (current, current + 1)
                    } else {
                        (
                            current + 1_000_000,
                            (1 << 40) + attempts.fetch_add(1, Ordering::Relaxed),
                        )
                    };
                    let input = Input::Cas {
                        expected: Some(expected),
                        new,
                    };
                    let pending = recorder.invoke(slot as ClientId, key, input);
                    pending.served_by(leader);
                    let command = Command::Cas {
                        key,
                        expected: Some(expected),
                        new,
                    };
                    let response = lease_propose(&cluster, &lease, leader, command).await?;
                    phase.writes += 1;
                    match response {
                        Ok(Response::CasOk { version }) => {
                            pending.ok(Output::Cas(true), Some(version));
                            acked[slot].fetch_max(new, Ordering::AcqRel);
                        }
                        Ok(Response::CasFailed { .. }) => {
                            pending.ok(Output::Cas(false), None);
                            phase.conflicts += 1;
                            if invalidate_on_conflict {
                                lease.invalidate(InvalidationCause::LeadershipLost);
                            }
                        }
                        Ok(other) => {
                            return Err(Failure::new(format!(
                                "node {leader} answered {command:?} with {other:?}"
                            )));
                        }
                        Err(err) => {
                            pending.unknown();
                            return Err(Failure::new(format!(
                                "{command:?} on the leader failed without any fault: {err}"
                            )));
                        }
                    }
                    tokio::time::sleep(MS).await;
                }
                Ok(phase)
            });
        }
        let mut readers = JoinSet::new();
        for reader in 0..2u64 {
            let (cluster, lease, leader, recorder) = (
                self.cluster.clone(),
                self.lease.clone(),
                self.leader,
                self.recorder.clone(),
            );
            let acked = Arc::clone(acked);
            readers.spawn(async move {
                let mut phase = StormPhase::default();
                for i in 0..reads_per_reader {
                    let slot = ((i + reader) % 2) as usize;
                    let key = keys[slot];
                    let floor = acked[slot].load(Ordering::Acquire);
                    let pending = recorder.invoke(10 + reader, key, Input::Get);
                    pending.served_by(leader);
                    let read = match lease_get(&cluster, &lease, leader, key).await? {
                        Ok(read) => read,
                        Err(err) => {
                            pending.failed();
                            return Err(Failure::new(format!(
                                "lease read on the leader failed without any fault: {err}"
                            )));
                        }
                    };
                    pending.via(history_path(read.path));
                    let value = read.value.map_or(0, |v| v.value);
                    pending.ok(
                        Output::Value(read.value.map(|v| v.value)),
                        Some(read.value.map_or(0, |v| v.version)),
                    );
                    phase.reads += 1;
                    if read.path == kv_lease::ReadPath::Fast {
                        phase.fast_reads += 1;
                    }
                    if value < floor {
                        phase.stale_reads += 1;
                    }
                    tokio::time::sleep(READ_PAUSE).await;
                }
                Ok(phase)
            });
        }
        let mut total = StormPhase::default();
        let joined = self
            .cluster
            .bounded("storm readers", join_all(&mut readers))
            .await;
        stop.store(true, Ordering::Release);
        for p in joined?? {
            total.reads += p.reads;
            total.fast_reads += p.fast_reads;
            total.stale_reads += p.stale_reads;
        }
        for p in self
            .cluster
            .bounded("storm writers", join_all(&mut writers))
            .await??
        {
            total.writes += p.writes;
            total.conflicts += p.conflicts;
        }
        total.slow_rounds = self.lease.stats().since(&before).slow_rounds;
        Ok(total)
    }

    /// Initial puts, a warm-up (not measured), then a phase of `n` reads and one of `4n`.
    async fn run(&self, keys: [Key; 2], invalidate: bool) -> Result<[StormPhase; 2], Failure> {
        for key in keys {
            let pending = self.recorder.invoke(20, key, Input::Put(0));
            pending.served_by(self.leader);
            let version = lease_put(&self.cluster, &self.lease, self.leader, key, 0).await?;
            pending.ok(Output::Written, Some(version));
        }
        let acked = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        self.phase(keys, &acked, 10, invalidate).await?;
        let n = 50;
        let small = self.phase(keys, &acked, n, invalidate).await?;
        let large = self.phase(keys, &acked, 4 * n, invalidate).await?;
        Ok([small, large])
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

/// The seed bug's acceptance scenario: under a storm where half of all compare-and-sets
/// conflict, lease reads stay on the fast path (≥ 99% after warm-up) and quorum read rounds do
/// not grow with the number of reads (N vs 4N reads). The same storm with a lease layer that
/// invalidates on every conflict collapses below 60%: the case can see the seed bug. Every
/// read and write is recorded and the history must be linearizable.
pub async fn lease_conflict_storm_stays_warm<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    // A round trip of 2 ms: writes and quorum rounds take time, as on a real network.
    cluster.net().set_default_faults(LinkFaults {
        delay: MS,
        ..LinkFaults::default()
    });
    let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
    let mut leases = Leases::new(&cluster);
    let storm = Storm {
        cluster: cluster.clone(),
        lease: leases.get(leader)?,
        leader,
        recorder: Recorder::new(),
        attempts: Arc::new(AtomicU64::new(0)),
    };
    let fixed = storm.run([1, 2], false).await?;
    let buggy = storm.run([3, 4], true).await?;
    for (name, phases) in [("lease layer", &fixed), ("seed-bug layer", &buggy)] {
        for (label, p) in ["N", "4N"].iter().zip(phases.iter()) {
            println!(
                "{} {name:>14} {label:>2}: {:4} reads, hit rate {:6.2}%, {:3} quorum read \
                 rounds, {} writes ({:.0}% conflicts), {} stale",
                B::NAME,
                p.reads,
                p.hit_rate() * 100.0,
                p.slow_rounds,
                p.writes,
                p.conflict_rate() * 100.0,
                p.stale_reads
            );
        }
    }
    for p in fixed.iter().chain(buggy.iter()) {
        ensure!(
            p.stale_reads == 0,
            "a lease read missed an acknowledged write: {p:?}"
        );
        ensure!(
            (0.4..=0.6).contains(&p.conflict_rate()),
            "about half of the compare-and-sets must conflict: {p:?}"
        );
    }
    let [small, large] = fixed;
    ensure!(large.reads == 4 * small.reads, "{small:?} {large:?}");
    for p in &fixed {
        if p.hit_rate() < 0.99 {
            fail!(
                "hit rate {:.2}% under a conflict storm (must be ≥ 99%): {p:?}",
                p.hit_rate() * 100.0
            );
        }
    }
    ensure!(
        small.slow_rounds <= 2 && large.slow_rounds <= 2,
        "quorum read rounds grow with reads: N → {}, 4N → {}",
        small.slow_rounds,
        large.slow_rounds
    );
    for p in &buggy {
        if p.hit_rate() >= 0.6 {
            fail!(
                "the seed-bug layer (invalidate on every conflict) kept a {:.2}% hit rate: the \
                 case cannot see the bug: {p:?}",
                p.hit_rate() * 100.0
            );
        }
    }
    ensure!(
        buggy[1].slow_rounds > 2 * buggy[0].slow_rounds,
        "with the seed bug, quorum rounds must grow with reads: {buggy:?}"
    );
    let history = storm.recorder.history();
    let final_state = cluster.final_state(leader)?;
    checker::verify(&history, Some(&final_state), &CheckOptions::default()).map_err(|problem| {
        Failure::new(format!("storm history not linearizable: {problem}"))
            .context(format!("history: {}", history.summary()))
    })?;
    println!(
        "{}: storm history linearizable ({})",
        B::NAME,
        history.summary()
    );
    leases.shutdown().await
}

// ---------------------------------------------------------------------------------------------
// 2. Old leader partitioned into the minority.
// ---------------------------------------------------------------------------------------------

/// The old leader is partitioned into the minority: its fast path stops no later than its lease
/// expiry (nothing sent after the partition can renew it), never resumes, and stops before any
/// other node leads; after the majority commits a write, the old node never serves the old
/// value.
pub async fn lease_stops_on_minority_leader_before_new_leader<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    let old_term = status(&cluster, old)?.term;
    let mut leases = Leases::new(&cluster);
    let old_lease = leases.get(old)?;
    lease_put(&cluster, &old_lease, old, 1, 1).await?;
    wait_fast_read(&cluster, &old_lease, old, 1).await?;
    let majority = others(&cluster, old);
    let clock: Arc<dyn Clock> = cluster.clock(old)?;
    let engines = majority
        .iter()
        .map(|&id| cluster.engine(id))
        .collect::<Result<Vec<_>, _>>()?;
    let sentinel = Sentinel::watch(engines, old_term, &old_lease, Arc::clone(&clock));

    let parted = clock.now();
    cluster.partition_groups(&[&[old], &majority]);
    let duration = old_lease.duration();
    let mut max_expiry = old_lease.state().expires_at();
    let mut stopped_at = None;
    loop {
        let now = clock.now();
        max_expiry = max_expiry.max(old_lease.state().expires_at());
        match (old_lease.check(), stopped_at) {
            (Err(_), None) => stopped_at = Some(now),
            (Ok(()), Some(at)) => fail!(
                "the old leader's fast path resumed at +{:.0} ms after stopping at +{:.0} ms \
                 in the minority",
                ms(now - parted),
                ms(at - parted)
            ),
            _ => {}
        }
        if sentinel.takeover().is_some() {
            break;
        }
        ensure!(
            now - parted < Duration::from_secs(10),
            "no new leader in the majority within 10 s: {}",
            cluster.describe()
        );
        tokio::time::sleep(MS).await;
    }
    let takeover = sentinel.takeover().expect("seen");
    let Some(stopped_at) = stopped_at else {
        fail!(
            "node {} leads term {} while the old leader's fast path is still open",
            takeover.node,
            takeover.term
        );
    };
    let Some(expiry) = max_expiry else {
        fail!("the old leader held no lease");
    };
    println!(
        "{}: partitioned at 0; lease expiry +{:.0} ms, fast path stopped +{:.0} ms, node {} \
         leads term {} at +{:.0} ms",
        B::NAME,
        ms(expiry - parted),
        ms(stopped_at - parted),
        takeover.node,
        takeover.term,
        ms(takeover.at - parted)
    );
    ensure!(
        expiry <= parted + duration + MS,
        "the lease reaches past the partition: +{:.0} ms > {duration:?}",
        ms(expiry - parted)
    );
    ensure!(
        stopped_at <= expiry + MS,
        "the fast path outlived the lease expiry"
    );
    ensure!(
        takeover.old_lease_check.is_err(),
        "node {} led term {} while the old leader's lease was still valid",
        takeover.node,
        takeover.term
    );
    ensure!(
        takeover.at >= expiry,
        "new leader at +{:.0} ms, before the old lease expired at +{:.0} ms",
        ms(takeover.at - parted),
        ms(expiry - parted)
    );

    // A write acknowledged by the new leader; the old leader must never serve the old value.
    let new = cluster.wait_for_leader_among(&majority, wait).await?;
    let new_lease = leases.get(new)?;
    lease_put(&cluster, &new_lease, new, 1, 2).await?;
    ensure!(
        old_lease.try_read_fast(|| ()).is_err(),
        "the deposed leader's fast path is open after the new leader's write"
    );
    match lease_get(&cluster, &old_lease, old, 1).await? {
        Ok(read) => ensure!(
            read.value.map(|v| v.value) == Some(2),
            "stale read on the deposed leader via {:?}: {:?}",
            read.path,
            read.value
        ),
        Err(err) => println!(
            "{}: read on the deposed leader failed as it should: {err}",
            B::NAME
        ),
    }
    drop(sentinel);
    cluster.heal();
    leases.shutdown().await
}

// ---------------------------------------------------------------------------------------------
// 3. No lease read during a transfer.
// ---------------------------------------------------------------------------------------------

/// While a leadership transfer runs (started on the engine directly, so the lease layer learns
/// of it only from the status), the fast path refuses every read; full reads are served on the
/// slow path or not at all.
pub async fn no_lease_read_during_transfer<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
    let mut leases = Leases::on_all(&cluster)?;
    let lease = leases.get(leader)?;
    let engine = cluster.engine(leader)?;
    lease_put(&cluster, &lease, leader, 1, 1).await?;
    wait_fast_read(&cluster, &lease, leader, 1).await?;
    let target = others(&cluster, leader)[0];
    // Hold the leader's messages to the target: the transfer stays in progress.
    cluster.net().hold(leader, target);
    let transfer = {
        let cluster = cluster.clone();
        tokio::spawn(async move { cluster.transfer(Some(target)).await })
    };
    ensure!(
        eventually(Duration::from_secs(1), || engine.status().transferring_to
            == Some(target))
        .await,
        "the transfer to {target} never showed in the status: {}",
        cluster.describe()
    );
    let (mut observed, mut reads) = (0, 0);
    for _ in 0..100 {
        if engine.status().transferring_to.is_none() {
            break;
        }
        observed += 1;
        ensure!(
            lease.check() == Err(MissReason::Transferring),
            "the fast path accepted a read during a transfer: {:?}",
            lease.check()
        );
        ensure!(lease.try_read_fast(|| ()).is_err(), "fast read in transfer");
        if observed % 20 == 1 {
            // A full read: never on the fast path (it may be slow, fail, or time out here).
            if let Ok(Ok(Ok(read))) =
                tokio::time::timeout(5 * MS, lease_get(&cluster, &lease, leader, 1)).await
            {
                ensure!(
                    read.path == kv_lease::ReadPath::Slow,
                    "a lease read during a transfer was served on the fast path"
                );
                reads += 1;
            }
        }
        tokio::time::sleep(MS).await;
    }
    println!(
        "{}: transfer to {target} observed running for {observed} ms; fast path refused \
         throughout ({reads} slow reads served)",
        B::NAME
    );
    ensure!(
        observed >= 20,
        "the transfer ended too early ({observed} ms)"
    );
    cluster.net().release(leader, target);
    let outcome = cluster
        .bounded("transfer task", transfer)
        .await?
        .map_err(|err| Failure::new(format!("transfer task panicked: {err}")))??;
    println!("{}: transfer outcome after release: {outcome:?}", B::NAME);
    if outcome.is_ok() {
        ensure!(
            lease.check().is_err(),
            "the old leader still serves fast reads after handing over"
        );
        let new = cluster
            .wait_for_leader_among(&[target], cluster.election_wait())
            .await?;
        let new_lease = leases.get(new)?;
        wait_fast_read(&cluster, &new_lease, new, 1).await?;
    }
    leases.shutdown().await
}

// ---------------------------------------------------------------------------------------------
// 4. No lease read on a new leader before its term's first entry is applied.
// ---------------------------------------------------------------------------------------------

/// A new leader whose term's first entry cannot commit (everything it sends is held from the
/// instant it leads) must refuse the fast path throughout, even if a quorum acknowledged it.
pub async fn no_lease_read_before_new_term_applied<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    // Delay on every link so the new leader's first entry is in flight for a while.
    cluster.net().set_default_faults(LinkFaults {
        delay: 2 * MS,
        ..LinkFaults::default()
    });
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    let old_term = status(&cluster, old)?.term;
    cluster.put(old, 1, 1).await?.map_err(|err| {
        Failure::new(format!("put on the leader failed without any fault: {err}"))
    })?;
    let rest = others(&cluster, old);
    let mut leases = Leases::new(&cluster);
    for &id in &rest {
        leases.get(id)?;
    }
    cluster.crash(old).await?;

    // The instant a node leads, hold everything it sends: its term's first entry cannot commit.
    let ids = cluster.ids();
    let mut watchers = Vec::new();
    for &id in &rest {
        let engine = cluster.engine(id)?;
        let (cluster, ids) = (cluster.clone(), ids.clone());
        watchers.push(tokio::spawn(async move {
            let mut status = engine.subscribe();
            let leading = status
                .wait_for(|s| s.role == Role::Leader && s.term > old_term)
                .await
                .map(|s| (s.id, s.term, s.applied_term))
                .ok();
            if let Some((id, _, _)) = leading {
                for &peer in ids.iter().filter(|&&p| p != id) {
                    cluster.net().hold(id, peer);
                }
            }
            leading
        }));
    }
    let deadline = Instant::now() + wait;
    let found = loop {
        if let Some(found) = watchers.iter().position(|w| w.is_finished()) {
            break watchers.remove(found).await;
        }
        ensure!(
            Instant::now() < deadline,
            "no new leader within {wait:?}: {}",
            cluster.describe()
        );
        tokio::time::sleep(MS).await;
    };
    for watcher in watchers {
        watcher.abort();
    }
    let Ok(Some((new, term, applied_term))) = found else {
        fail!("the status watcher ended without a leader: {found:?}");
    };
    ensure!(
        applied_term < term,
        "node {new} applied its term's entry before anyone saw it lead"
    );
    let (lease, engine) = (leases.get(new)?, cluster.engine(new)?);
    let mut unapplied = 0;
    let mut acked_in_window = false;
    for i in 0..150 {
        let status = engine.status();
        if status.role != Role::Leader || status.applied_term == status.term {
            break;
        }
        unapplied += 1;
        acked_in_window |= engine.quorum_ack().is_some();
        ensure!(
            lease.check().is_err(),
            "node {new} leads term {} with applied term {} and its fast path is open",
            status.term,
            status.applied_term
        );
        ensure!(
            lease.try_read_fast(|| ()).is_err(),
            "fast read before apply"
        );
        if i % 50 == 0
            && let Ok(Ok(Ok(read))) =
                tokio::time::timeout(5 * MS, lease_get(&cluster, &lease, new, 1)).await
        {
            ensure!(
                read.path == kv_lease::ReadPath::Slow,
                "a read before the new term's first entry applied was served on the fast path"
            );
        }
        tokio::time::sleep(MS).await;
    }
    println!(
        "{}: node {new} led term {term} for {unapplied} ms before applying an entry of it; fast \
         path refused throughout ({:?}; a quorum ack of the term existed: {acked_in_window})",
        B::NAME,
        lease.check()
    );
    ensure!(
        unapplied >= 100,
        "the window before the first entry applied was not observed ({unapplied} ms)"
    );
    for &peer in ids.iter().filter(|&&p| p != new) {
        cluster.net().release(new, peer);
    }
    cluster.restart(old).await?;
    let leader = cluster.wait_for_leader(wait).await?;
    let lease = leases.get(leader)?;
    match lease_get(&cluster, &lease, leader, 1).await? {
        Ok(read) => ensure!(
            read.value.map(|v| v.value) == Some(1),
            "read after the release returned {:?}",
            read.value
        ),
        Err(err) => fail!("read on the ready leader {leader} failed: {err}"),
    }
    wait_fast_read(&cluster, &lease, leader, 1).await?;
    leases.shutdown().await
}

// ---------------------------------------------------------------------------------------------
// 5. After an aborted transfer, only a fresh acknowledgement grants the lease.
// ---------------------------------------------------------------------------------------------

/// A transfer to an isolated node aborts. At the abort the lease is invalid, an
/// acknowledgement sent before the abort does not renew it, the first read after it is slow,
/// and any lease held afterwards is anchored after the abort.
pub async fn lease_resumes_after_aborted_transfer_only_on_fresh_ack<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let leader = cluster.wait_for_leader(wait).await?;
    let mut leases = Leases::new(&cluster);
    let lease = leases.get(leader)?;
    let engine = cluster.engine(leader)?;
    let clock = engine.clock();
    lease_put(&cluster, &lease, leader, 1, 1).await?;
    wait_fast_read(&cluster, &lease, leader, 1).await?;
    let target = others(&cluster, leader)[0];
    cluster.isolate(target);
    let started = clock.now();
    let outcome = cluster
        .bounded(
            format!("transfer_leadership({target}) through the lease"),
            lease.transfer_leadership(Some(target)),
        )
        .await?;
    let aborted = clock.now();
    println!(
        "{}: transfer to isolated node {target} ended after {:.0} ms: {outcome:?}",
        B::NAME,
        ms(aborted - started)
    );
    ensure!(
        outcome.is_err(),
        "a transfer to an isolated node succeeded: {outcome:?}"
    );
    // The instant the transfer ends, nothing acknowledged after it exists yet: an
    // acknowledgement the engine still reports from before the abort must not grant a lease.
    let ack = engine.quorum_ack();
    let renewed = lease.renew_from_ack();
    println!(
        "{}: at the abort the engine reports {ack:?} (sent {} the abort); renewed from it: \
         {renewed}",
        B::NAME,
        match ack {
            Some(ack) if ack.sent_at <= aborted => "before",
            Some(_) => "after",
            None => "-",
        }
    );
    ensure!(!renewed, "a pre-abort acknowledgement renewed the lease");
    ensure!(lease.check().is_err(), "the lease is valid at the abort");
    let duration = lease.duration();
    let first = lease_get(&cluster, &lease, leader, 1).await?;
    println!("{}: first read after the abort: {first:?}", B::NAME);
    if let Ok(read) = &first {
        ensure!(
            read.path == kv_lease::ReadPath::Slow,
            "the first read after an aborted transfer was served on the fast path"
        );
    }
    // From now on, any lease this node holds must be anchored after the abort.
    let mut fast = 0;
    for _ in 0..1000 {
        if lease.check().is_ok() {
            fast += 1;
            let Some(expiry) = lease.state().expires_at() else {
                fail!("a valid lease without an expiry");
            };
            ensure!(
                expiry + MS >= aborted + duration,
                "a lease anchored before the abort: it expires +{:.0} ms after it",
                ms(expiry.saturating_duration_since(aborted))
            );
        }
        tokio::time::sleep(MS).await;
    }
    let after = engine.status();
    println!(
        "{}: lease valid for {fast} of the 1000 ms after the abort; node {leader} is now {:?} \
         in term {}",
        B::NAME,
        after.role,
        after.term
    );
    cluster.heal();
    let leader = cluster.wait_for_leader(wait).await?;
    let lease = leases.get(leader)?;
    wait_fast_read(&cluster, &lease, leader, 1).await?;
    leases.shutdown().await
}

// ---------------------------------------------------------------------------------------------
// 6. A process pause longer than the lease does not yield a stale read.
// ---------------------------------------------------------------------------------------------

/// The leader "pauses" (every link to and from it is held), the others elect a leader and
/// commit a write; when the pause ends, a read on the old node issued before any buffered
/// message arrives must not return the old value. Run twice: with the node's clock running
/// through the pause, and with it standing still (then jumping by the pause, as a monotonic
/// clock does after a stopped process resumes).
pub async fn lease_read_after_pause_is_not_stale<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    for stop_clock in [false, true] {
        pause_phase(h, stop_clock)
            .await
            .map_err(|f| f.context(format!("clock stopped during the pause: {stop_clock}")))?;
    }
    Ok(())
}

async fn pause_phase<B: Backend>(h: &Harness<B>, stop_clock: bool) -> Result<(), Failure> {
    let cluster = h
        .cluster_with(ClusterSpec::new(3), h.seed() + u64::from(stop_clock))
        .await?;
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    let old_term = status(&cluster, old)?.term;
    let mut leases = Leases::new(&cluster);
    let old_lease = leases.get(old)?;
    lease_put(&cluster, &old_lease, old, 1, 1).await?;
    wait_fast_read(&cluster, &old_lease, old, 1).await?;
    let rest = others(&cluster, old);
    let old_clock = cluster.clock(old)?;
    let engines = rest
        .iter()
        .map(|&id| cluster.engine(id))
        .collect::<Result<Vec<_>, _>>()?;
    let sentinel = Sentinel::watch(
        engines,
        old_term,
        &old_lease,
        Arc::clone(&old_clock) as Arc<dyn Clock>,
    );

    let paused = Instant::now();
    if stop_clock {
        old_clock.set_rate(1e-9);
    }
    hold_all(&cluster, old);
    let new = cluster.wait_for_leader_among(&rest, wait).await?;
    let new_lease = leases.get(new)?;
    lease_put(&cluster, &new_lease, new, 1, 2).await?;
    let acked = paused.elapsed();
    let Some(takeover) = sentinel.takeover() else {
        fail!("node {new} leads but the sentinel saw no takeover");
    };
    if !stop_clock {
        ensure!(
            takeover.old_lease_check.is_err(),
            "node {} was elected while the paused leader's lease was valid",
            takeover.node
        );
        ensure!(
            old_lease.try_read_fast(|| ()).is_err(),
            "the paused leader would serve a fast read after the new leader's write"
        );
    } else {
        tokio::time::sleep_until(paused + Duration::from_secs(2)).await;
        old_clock.set_rate(1.0);
        old_clock.advance(paused.elapsed());
    }
    let at_resume = old_lease.check();
    // The pause ends: a read on the old node right away, before anything buffered arrives;
    // then the buffered traffic flows.
    let read = {
        let (cluster, old_lease) = (cluster.clone(), old_lease.clone());
        tokio::spawn(async move { lease_get(&cluster, &old_lease, old, 1).await })
    };
    tokio::time::sleep(MS).await;
    release_all(&cluster, old);
    let read = cluster
        .bounded("read after the pause", read)
        .await?
        .map_err(|err| Failure::new(format!("read task panicked: {err}")))??;
    println!(
        "{}: paused at 0 (clock stopped: {stop_clock}); node {} led term {}, its write acked \
         at +{:.0} ms; fast path at resumption: {at_resume:?}; read on the resumed node: \
         {read:?}",
        B::NAME,
        takeover.node,
        takeover.term,
        ms(acked)
    );
    if let Ok(read) = read {
        ensure!(
            read.value.map(|v| v.value) == Some(2),
            "stale read after a pause ({:?} path): {:?}",
            read.path,
            read.value
        );
    }
    drop(sentinel);
    leases.shutdown().await
}

// ---------------------------------------------------------------------------------------------
// 7. A restarted node cannot help elect a leader inside a live lease.
// ---------------------------------------------------------------------------------------------

/// The eager candidate campaigns every 150–200 ms, so it asks for votes inside any window of a
/// lease's length.
fn eager_candidate(config: &mut raftengine::Config) {
    config.election_timeout_min = Duration::from_millis(150);
    config.election_timeout_max = Duration::from_millis(200);
}

/// Follower f2 (restarted as an eager candidate with a full log) is cut off from the leader;
/// f1 still hears the leader, so the leader holds a lease from f1's acknowledgements. Then the
/// leader is cut off and f1 crashes and restarts at once, forgetting it just heard the leader.
/// No node may lead before the old lease expires: the restarted f1 must not vote inside it.
pub async fn restarted_node_cannot_elect_inside_live_lease<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    let mut leases = Leases::new(&cluster);
    let lease = leases.get(old)?;
    lease_put(&cluster, &lease, old, 1, 1).await?;
    let rest = others(&cluster, old);
    let (f1, f2) = (rest[0], rest[1]);
    cluster.reconfigure(f2, eager_candidate)?;
    cluster.crash(f2).await?;
    cluster.restart(f2).await?;
    let last = status(&cluster, old)?.last_log_index;
    ensure!(
        eventually(Duration::from_secs(5), || {
            [f1, f2].iter().all(|&id| {
                cluster
                    .try_engine(id)
                    .is_some_and(|e| e.status().applied_index >= last)
            })
        })
        .await,
        "followers did not catch up: {}",
        cluster.describe()
    );
    let old_term = status(&cluster, old)?.term;
    // f2 stops hearing the leader and keeps campaigning with a log as long as anyone's; f1
    // still hears the leader and refuses. Nothing is written from now on, so f2 stays
    // electable: only vote refusal stands between it and leadership.
    cluster.partition(old, f2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = status(&cluster, old)?;
    ensure!(
        now.role == Role::Leader && now.term == old_term,
        "the leader lost with a live quorum: {}",
        cluster.describe()
    );
    ensure!(
        status(&cluster, f2)?.last_log_index == now.last_log_index,
        "the candidate's log fell behind: {}",
        cluster.describe()
    );
    ensure!(
        eventually(Duration::from_secs(1), || lease.check().is_ok()).await,
        "no lease from f1's acknowledgements: {:?}",
        lease.check()
    );
    let clock: Arc<dyn Clock> = cluster.clock(old)?;
    cluster.isolate(old);
    let cut = clock.now();
    let mut max_expiry = lease.state().expires_at();
    cluster.crash(f1).await?;
    cluster.restart(f1).await?;
    let restarted = clock.now();
    let sentinel = Sentinel::watch(
        vec![cluster.engine(f1)?, cluster.engine(f2)?],
        old_term,
        &lease,
        Arc::clone(&clock),
    );
    loop {
        max_expiry = max_expiry.max(lease.state().expires_at());
        if sentinel.takeover().is_some() {
            break;
        }
        ensure!(
            clock.now() - cut < Duration::from_secs(10),
            "no new leader within 10 s: {}",
            cluster.describe()
        );
        tokio::time::sleep(MS).await;
    }
    let takeover = sentinel.takeover().expect("seen");
    let Some(expiry) = max_expiry else {
        fail!("the old leader held no lease");
    };
    println!(
        "{}: old leader cut off and node {f1} restarted at 0 (+{:.0} ms); old lease expires \
         +{:.0} ms; node {} leads term {} at +{:.0} ms (vote-refusal window {:?})",
        B::NAME,
        ms(restarted - cut),
        ms(expiry.saturating_duration_since(cut)),
        takeover.node,
        takeover.term,
        ms(takeover.at - cut),
        cluster.engine(f1)?.timing().vote_refusal_window,
    );
    ensure!(
        takeover.old_lease_check.is_err(),
        "node {} was elected while the old leader's lease was valid",
        takeover.node
    );
    ensure!(
        takeover.at >= expiry,
        "node {} leads at +{:.0} ms, inside the old lease (expires +{:.0} ms)",
        takeover.node,
        ms(takeover.at - cut),
        ms(expiry.saturating_duration_since(cut))
    );
    drop(sentinel);
    cluster.heal();
    let leader = cluster.wait_for_leader(wait).await?;
    let lease = leases.get(leader)?;
    match lease_get(&cluster, &lease, leader, 1).await? {
        Ok(read) => ensure!(
            read.value.map(|v| v.value) == Some(1),
            "read after the heal returned {:?}",
            read.value
        ),
        Err(err) => fail!("read on the ready leader {leader} failed: {err}"),
    }
    leases.shutdown().await
}

// ---------------------------------------------------------------------------------------------
// 8. Negative test: drift far beyond the bound must show up as a stale lease read.
// ---------------------------------------------------------------------------------------------

/// Clock rates of one run of the drift schedule.
#[derive(Debug, Clone, Copy)]
struct Drift {
    /// The old leader's clock rate from the fault on.
    old_leader: f64,
    /// The rate of the majority's clocks when they restart.
    restarted: f64,
}

/// Far beyond the bound: the old leader's lease lasts about 5× longer in real time than the
/// lease layer assumes, and the restarted majority's vote-refusal windows end 5× sooner.
const EXCESS_DRIFT: Drift = Drift {
    old_leader: 0.2,
    restarted: 5.0,
};

/// How long a writer of the drift schedule waits for a write before giving up on it.
const WRITE_PATIENCE: Duration = Duration::from_millis(100);

/// What one run of the drift schedule produced.
struct DriftRun {
    history: History,
    verdict: Result<(), String>,
    /// Oracle findings: stale reads served by the lease fast path.
    stale_lease_reads: Vec<String>,
    old: NodeId,
}

/// Clients against a 3-node cluster: two readers pinned to the first leader doing lease reads,
/// two writers following the leader (puts and lease reads through it). At the fault the old
/// leader's clock goes to `drift.old_leader` and it is partitioned into the minority, and both
/// majority nodes crash and restart at once with their clocks at `drift.restarted`: the old
/// lease is then guarded only by time (the restarted nodes' vote refusal, the old leader's
/// expiry), on every backend, including one whose own timers ignore the injected clock. The
/// majority elects a leader and keeps committing writes; later everything heals. The history
/// (with the path of every read) is checked.
async fn drift_run<B: Backend>(
    h: &Harness<B>,
    seed: u64,
    drift: Drift,
) -> Result<DriftRun, Failure> {
    let spec = ClusterSpec::new(3).with_config(|config| {
        config.request_timeout = Duration::from_secs(2);
    });
    let cluster = h.cluster_with(spec, seed).await?;
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    let leases = Arc::new(Mutex::new(Leases::on_all(&cluster)?));
    let lease_of = {
        let leases = Arc::clone(&leases);
        move |id: NodeId| {
            leases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(id)
                .ok()
        }
    };
    let recorder = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let keys = 2u64;
    let mut clients = JoinSet::new();
    for client in 0..4u64 {
        let (cluster, recorder, stop) = (cluster.clone(), recorder.clone(), Arc::clone(&stop));
        let lease_of = lease_of.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (client + 1).wrapping_mul(0x9E37_79B9));
        let pinned = client < 2;
        clients.spawn(async move {
            let mut seq = 0u64;
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(1..8))).await;
                let node = if pinned {
                    old
                } else {
                    match cluster.leader() {
                        Some(node) => node,
                        None => continue,
                    }
                };
                // A node between crash and restart has no lease: try again later.
                let Some(lease) = lease_of(node) else {
                    continue;
                };
                let key = rng.gen_range(0..keys);
                let read = pinned || rng.gen_bool(0.3);
                if read {
                    let pending = recorder.invoke(client, key, Input::Get);
                    pending.served_by(node);
                    match lease_get(&cluster, &lease, node, key).await? {
                        Ok(read) => {
                            pending.via(history_path(read.path));
                            pending.ok(
                                Output::Value(read.value.map(|v| v.value)),
                                Some(read.value.map_or(0, |v| v.version)),
                            );
                        }
                        Err(_) => pending.failed(),
                    }
                } else {
                    seq += 1;
                    let value = unique_value(client, seq);
                    let pending = recorder.invoke(client, key, Input::Put(value));
                    pending.served_by(node);
                    let command = Command::Put { key, value };
                    // A client gives up after a while (outcome unknown) and follows the leader
                    // again, so writers do not sit on the cut-off old leader until its request
                    // deadline while the majority could commit their writes.
                    let Ok(answer) = tokio::time::timeout(
                        WRITE_PATIENCE,
                        lease_propose(&cluster, &lease, node, command),
                    )
                    .await
                    else {
                        pending.unknown();
                        continue;
                    };
                    match answer? {
                        Ok(Response::Written { version }) => {
                            pending.ok(Output::Written, Some(version));
                        }
                        Ok(other) => {
                            return Err(Failure::new(format!(
                                "node {node} answered {command:?} with {other:?}"
                            )));
                        }
                        Err(err) => match err.outcome() {
                            raftengine::WriteOutcome::NotApplied => pending.failed(),
                            raftengine::WriteOutcome::Unknown => pending.unknown(),
                        },
                    }
                }
            }
            Ok(seq)
        });
    }
    // Warm-up: the old leader's lease is warm and serving fast reads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The fault: the old leader's clock runs at `drift.old_leader` from now on and it is cut
    // off into the minority at the same instant; the majority restarts at once, with clocks at
    // `drift.restarted`.
    cluster.clock(old)?.set_rate(drift.old_leader);
    let majority = others(&cluster, old);
    cluster.partition_groups(&[&[old], &majority]);
    for &id in &majority {
        let stale = leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .leases
            .remove(&id);
        if let Some(lease) = stale {
            lease.shutdown().await;
        }
        cluster.crash(id).await?;
        cluster.clock(id)?.set_rate(drift.restarted);
    }
    for &id in &majority {
        cluster.restart(id).await?;
    }
    let new = cluster.wait_for_leader_among(&majority, wait).await?;
    // The majority keeps committing writes while the old node keeps reading.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for id in cluster.ids() {
        cluster.clock(id)?.set_rate(1.0);
    }
    cluster.heal();
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.store(true, Ordering::SeqCst);
    let joined = cluster
        .bounded("drift clients", join_all(&mut clients))
        .await;
    joined??;
    let leader = cluster.wait_for_leader(wait).await?;
    cluster.wait_converged(Duration::from_secs(10)).await?;
    let history = recorder.history();
    let final_state = cluster.final_state(leader)?;
    let verdict = checker::verify(&history, Some(&final_state), &CheckOptions::default());
    let stale_lease_reads = oracles::run_all(&history, Some(&final_state))
        .into_iter()
        .filter_map(|violation| match violation {
            OracleViolation::StaleRead { ref read, .. }
                if read.read_path == Some(ReadPath::Lease) =>
            {
                Some(violation.to_string())
            }
            _ => None,
        })
        .collect();
    println!(
        "{} seed {seed}, {drift:?} (old leader {old}): new leader {new}; {} operations ({})",
        B::NAME,
        history.len(),
        history.summary()
    );
    drop(lease_of);
    let leases = Arc::try_unwrap(leases)
        .map_err(|_| Failure::new("a client still holds the leases"))?
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    leases.shutdown().await?;
    Ok(DriftRun {
        history,
        verdict,
        stale_lease_reads,
        old,
    })
}

/// Schedules [`checker_catches_lease_with_excess_drift`] tries per seed before it concludes the
/// suite is blind to a broken lease.
const EXCESS_DRIFT_ATTEMPTS: u64 = 4;
/// Distance between the derived schedules of one seed (keeps them apart from other seeds).
const EXCESS_DRIFT_SEED_STRIDE: u64 = 1_000;

/// Sensitivity (negative) test for lease reads (fault F14): clock drift far beyond the
/// configured bound. The old leader's clock runs at 0.2 of real time, so its lease lasts ~5×
/// longer than the lease layer assumes, and it is partitioned into the minority while clients
/// keep reading through it and writing through the new leader. To make sure a new leader
/// commits while the old one still believes its lease, the majority restarts at the same
/// instant with clocks at 5× (their restart vote refusal, measured on their clocks, ends early;
/// without this an engine whose own timers ignore the injected clock, such as openraft, notices
/// the lost quorum in real time and ends the lease itself). The checker must report a stale
/// lease read (the stale-read oracle naming a lease read, and the linearizability search). The
/// same schedule with drift within the bound must be linearizable. Seeded (`SEED`,
/// `CONFORMANCE_SEEDS`); a failure names its seed.
///
/// Whether one schedule opens the stale window also depends on the engine's own election
/// timing, which a backend may draw from an unseeded generator (openraft does). So each seed
/// tries up to four derived schedules and the case fails only if none of
/// them yields a caught stale read: the claim under test is that the suite *can* see a broken
/// lease, and a backend whose timing never opens the window still fails it.
pub async fn checker_catches_lease_with_excess_drift<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    for base_seed in seeds(2) {
        let mut missed = Vec::new();
        let mut caught = None;
        for attempt in 0..EXCESS_DRIFT_ATTEMPTS {
            let seed = base_seed + attempt * EXCESS_DRIFT_SEED_STRIDE;
            let run = drift_run(h, seed, EXCESS_DRIFT)
                .await
                .map_err(|f| f.context(format!("seed {seed}: replay with SEED={seed}")))?;
            if let Err(problem) = &run.verdict {
                let problem = problem.to_string();
                caught = Some((seed, run, problem));
                break;
            }
            missed.push(format!(
                "seed {seed}, old leader {}: {}",
                run.old,
                run.history.summary()
            ));
        }
        let Some((seed, bad, problem)) = caught else {
            return Err(Failure::new(format!(
                "the checker found nothing wrong with lease reads on the old leader under \
                 {EXCESS_DRIFT:?} while partitioned, in {EXCESS_DRIFT_ATTEMPTS} schedules \
                 derived from seed {base_seed} ({}): the suite cannot see lease bugs",
                missed.join("; ")
            ))
            .context(format!("seed {base_seed}: replay with SEED={base_seed}")));
        };
        let with_seed = |f: Failure| f.context(format!("seed {seed}: replay with SEED={seed}"));
        if bad.stale_lease_reads.is_empty() {
            return Err(with_seed(Failure::new(format!(
                "the checker failed the excess-drift history but no oracle named a stale lease \
                 read: {problem}"
            ))));
        }
        let search = checker::check(&bad.history, &CheckOptions::default());
        if search.is_linearizable() {
            return Err(with_seed(Failure::new(format!(
                "the oracles caught {} stale lease read(s) but the linearizability search \
                 accepted the history: {}",
                bad.stale_lease_reads.len(),
                bad.stale_lease_reads[0]
            ))));
        }
        println!(
            "{} seed {seed}: excess drift caught as expected: {} stale lease read(s), first: {}",
            B::NAME,
            bad.stale_lease_reads.len(),
            bad.stale_lease_reads[0]
        );
        let bound = ClusterSpec::new(3).config.max_clock_drift;
        let within = Drift {
            old_leader: 1.0 - bound,
            restarted: 1.0 + bound,
        };
        let good = drift_run(h, seed, within).await.map_err(with_seed)?;
        if let Err(problem) = good.verdict {
            return Err(with_seed(
                Failure::new(format!(
                    "the same schedule with drift within the bound ({bound}) is not linearizable: \
                 {problem}"
                ))
                .context(format!("history: {}", good.history.summary())),
            ));
        }
        let lease_reads = good.history.summary().lease_reads;
        println!(
            "{} seed {seed}: drift within the bound: linearizable ({lease_reads} lease reads)",
            B::NAME
        );
    }
    Ok(())
}
