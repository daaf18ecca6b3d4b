//! 8. Negative test: drift far beyond the bound must show up as a stale lease read.

use super::*;

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
    let majority = cluster.others(old);
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
/// Every engine's own timing is seeded too (openraft draws election timeouts from a seeded
/// runtime generator), so a seed replays one schedule exactly, and each seed must catch it.
pub async fn checker_catches_lease_with_excess_drift<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    for seed in seeds(2) {
        let bad = drift_run(h, seed, EXCESS_DRIFT)
            .await
            .map_err(|f| f.context(format!("seed {seed}: replay with SEED={seed}")))?;
        let problem = match &bad.verdict {
            Err(problem) => problem.to_string(),
            Ok(()) => {
                return Err(Failure::new(format!(
                    "the checker found nothing wrong with lease reads on the old leader {} \
                     under {EXCESS_DRIFT:?} while partitioned ({}): the suite cannot see lease \
                     bugs",
                    bad.old,
                    bad.history.summary()
                ))
                .context(format!("seed {seed}: replay with SEED={seed}")));
            }
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
        // `max_clock_drift` bounds the rate difference between any two nodes, so each side
        // takes half of it.
        let within = Drift {
            old_leader: 1.0 - bound / 2.0,
            restarted: 1.0 + bound / 2.0,
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
