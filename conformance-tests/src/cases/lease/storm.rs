//! 1. A conflict storm keeps the lease warm; the seed bug collapses it.

use super::*;

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
