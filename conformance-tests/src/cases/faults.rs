//! Randomized fault schedules: concurrent clients run against the cluster while a seeded
//! injector applies faults from the fault table (`docs/conformance.md`), then everything
//! heals; the history must be linearizable and the cluster must converge and stay live.
//!
//! Seeds: [`crate::harness::seeds`] (`SEED=<n>` replays one, `CONFORMANCE_SEEDS=<n>` runs more).
//! A failure report names the seed, the fault log and the history summary.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use raftengine::NodeId;
use raftengine::sim::LinkFaults;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::workload::{Workload, spawn_clients, stop_clients};
use crate::checker::{self, CheckOptions, Recorder};
use crate::harness::{Backend, Cluster, ClusterSpec, Failure, Harness, seeds};

/// One kind of fault the injector can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// F1: the leader and one follower on one side, the rest on the other (5 nodes) or the
    /// leader alone (3 nodes): the old leader is in the minority.
    LeaderInMinority,
    /// F2: one follower cut off; the leader keeps its majority.
    IsolateFollower,
    /// F3: the leader's outgoing traffic is lost, its incoming traffic flows.
    OneWayFromLeader,
    /// F3: traffic to the leader is lost, its own messages flow.
    OneWayToLeader,
    /// F4: a share of all messages is lost.
    MessageLoss,
    /// F5: every link gets delay and jitter.
    DelayJitter,
    /// F6: duplication and reordering on every link.
    DuplicateReorder,
    /// F6: traffic from the leader to one follower is held, released at the next heal.
    HoldLink,
    /// F8 (approximation): all traffic to and from the leader is held, as if its process
    /// paused, and delivered late at the next heal. Its timers keep running, unlike a real
    /// pause.
    FreezeLeader,
    /// F7: the leader crashes (restarted later on its store).
    CrashLeader,
    /// F7: a follower crashes (restarted later on its store).
    CrashFollower,
    /// F9: the leader hands over to a random voter.
    Transfer,
    /// F16: the leader builds a snapshot and compacts its log.
    Snapshot,
    /// F13: a node's clock rate moves within the configured drift bound.
    ClockDrift,
    /// F15: a fresh node joins (learner, then voter) and a follower voter is removed and
    /// retired, under load.
    MembershipChange,
}

impl Fault {
    /// Network faults, no capability needed.
    pub const NETWORK: &'static [Fault] = &[
        Fault::LeaderInMinority,
        Fault::IsolateFollower,
        Fault::OneWayFromLeader,
        Fault::OneWayToLeader,
        Fault::FreezeLeader,
    ];
    /// Message-level faults.
    pub const MESSAGES: &'static [Fault] = &[
        Fault::MessageLoss,
        Fault::DelayJitter,
        Fault::DuplicateReorder,
        Fault::HoldLink,
    ];
    /// Crashes and restarts.
    pub const CRASHES: &'static [Fault] = &[Fault::CrashLeader, Fault::CrashFollower];
}

/// A randomized scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name used in reports.
    pub name: &'static str,
    /// Voters in the cluster.
    pub voters: u64,
    /// Faults to draw from.
    pub faults: Vec<Fault>,
    /// Virtual time the faults run for.
    pub duration: Duration,
    /// Clients and keys.
    pub workload: Workload,
    /// Give each node a random clock offset (F12).
    pub clock_offsets: bool,
    /// Build snapshots automatically after this many entries (0 = only on demand).
    pub snapshot_after_entries: u64,
    /// How many seeds run by default.
    pub default_seeds: u64,
    /// The workload is deliberately unsafe: the case passes only if the checker reports a
    /// violation (the suite's sensitivity test).
    pub expect_violation: bool,
}

impl Scenario {
    /// A 3-node scenario with the default workload drawing from `faults`.
    pub fn new(name: &'static str, faults: &[Fault]) -> Self {
        Self {
            name,
            voters: 3,
            faults: faults.to_vec(),
            duration: Duration::from_secs(8),
            workload: Workload::default(),
            clock_offsets: false,
            snapshot_after_entries: 0,
            default_seeds: 2,
            expect_violation: false,
        }
    }
}

struct Injector<B: Backend> {
    cluster: Cluster<B>,
    rng: ChaCha8Rng,
    down: Option<NodeId>,
    retired: Vec<NodeId>,
    background: JoinSet<Result<(), Failure>>,
    log: Vec<String>,
    started: Instant,
}

impl<B: Backend> Injector<B> {
    fn note(&mut self, text: String) {
        let at = self.started.elapsed();
        self.log.push(format!("{:>8.3}s {text}", at.as_secs_f64()));
    }

    fn pick_other(&mut self, not: NodeId) -> Option<NodeId> {
        let others: Vec<NodeId> = self
            .cluster
            .running()
            .into_iter()
            .filter(|&id| id != not)
            .collect();
        others.choose(&mut self.rng).copied()
    }

    async fn apply(&mut self, fault: Fault) -> Result<(), Failure> {
        let Some(leader) = self.cluster.leader() else {
            self.note(format!("{fault:?} skipped: no leader"));
            return Ok(());
        };
        let ids = self.cluster.ids();
        match fault {
            Fault::LeaderInMinority => {
                let mut others: Vec<NodeId> =
                    ids.iter().copied().filter(|&i| i != leader).collect();
                others.shuffle(&mut self.rng);
                let minority_size = (ids.len() - 1) / 2;
                let mut minority = vec![leader];
                minority.extend(others.drain(..minority_size.saturating_sub(1)));
                self.cluster.partition_groups(&[&minority, &others]);
                self.note(format!(
                    "partition: leader side {minority:?} | majority {others:?}"
                ));
            }
            Fault::IsolateFollower => {
                if let Some(follower) = self.pick_other(leader) {
                    self.cluster.isolate(follower);
                    self.note(format!("isolate follower {follower}"));
                }
            }
            Fault::OneWayFromLeader => {
                for &peer in ids.iter().filter(|&&i| i != leader) {
                    self.cluster.partition_one_way(leader, peer);
                }
                self.note(format!("one-way: traffic from leader {leader} lost"));
            }
            Fault::OneWayToLeader => {
                for &peer in ids.iter().filter(|&&i| i != leader) {
                    self.cluster.partition_one_way(peer, leader);
                }
                self.note(format!("one-way: traffic to leader {leader} lost"));
            }
            Fault::MessageLoss => {
                let drop_rate = self.rng.gen_range(0.05..0.4);
                self.cluster.net().set_default_faults(LinkFaults {
                    drop_rate,
                    ..LinkFaults::default()
                });
                self.note(format!("message loss {drop_rate:.2} on every link"));
            }
            Fault::DelayJitter => {
                let delay = Duration::from_millis(self.rng.gen_range(1..40));
                let jitter = Duration::from_millis(self.rng.gen_range(0..40));
                self.cluster.net().set_default_faults(LinkFaults {
                    delay,
                    jitter,
                    ..LinkFaults::default()
                });
                self.note(format!("delay {delay:?} jitter {jitter:?} on every link"));
            }
            Fault::DuplicateReorder => {
                self.cluster.net().set_default_faults(LinkFaults {
                    duplicate_rate: self.rng.gen_range(0.05..0.3),
                    reorder_rate: self.rng.gen_range(0.1..0.5),
                    jitter: Duration::from_millis(self.rng.gen_range(1..20)),
                    ..LinkFaults::default()
                });
                self.note("duplication and reordering on every link".into());
            }
            Fault::HoldLink => {
                if let Some(follower) = self.pick_other(leader) {
                    self.cluster.net().hold(leader, follower);
                    self.note(format!("hold {leader} → {follower}"));
                }
            }
            Fault::FreezeLeader => {
                for &peer in ids.iter().filter(|&&i| i != leader) {
                    self.cluster.net().hold(leader, peer);
                    self.cluster.net().hold(peer, leader);
                }
                self.note(format!("freeze all traffic of leader {leader}"));
            }
            Fault::CrashLeader | Fault::CrashFollower => {
                if self.down.is_some() {
                    return Ok(());
                }
                let victim = if fault == Fault::CrashLeader {
                    Some(leader)
                } else {
                    self.pick_other(leader)
                };
                if let Some(victim) = victim {
                    self.cluster.crash(victim).await?;
                    self.down = Some(victim);
                    self.note(format!("crash node {victim}"));
                }
            }
            Fault::Transfer => {
                let target = self.pick_other(leader);
                let cluster = self.cluster.clone();
                self.note(format!("transfer {leader} → {target:?}"));
                self.background.spawn(async move {
                    let engine = cluster.engine(leader)?;
                    // Any answer is acceptable here; only a hang fails.
                    let _ = cluster
                        .bounded(
                            format!("transfer_leadership({target:?}) on node {leader}"),
                            engine.transfer_leadership(target),
                        )
                        .await?;
                    Ok(())
                });
            }
            Fault::Snapshot => {
                let cluster = self.cluster.clone();
                self.note(format!("snapshot on leader {leader}"));
                self.background.spawn(async move {
                    let engine = cluster.engine(leader)?;
                    let _ = cluster
                        .bounded(format!("snapshot on node {leader}"), engine.snapshot())
                        .await?;
                    Ok(())
                });
            }
            Fault::MembershipChange => self.change_membership(leader).await?,
            Fault::ClockDrift => {
                let node = *ids.choose(&mut self.rng).expect("a node");
                // The bound is on the rate difference between any two nodes: each node stays
                // within half of it around the true rate.
                let half = self.cluster.config().max_clock_drift / 2.0;
                let rate = 1.0 + self.rng.gen_range(-half..=half);
                self.cluster.clock(node)?.set_rate(rate);
                self.note(format!("clock of node {node} runs at {rate:.4}"));
            }
        }
        Ok(())
    }

    /// Adds a fresh node as learner, promotes it, then removes and retires a follower voter.
    /// Refusals (a change already pending, leadership moved) are noted, not failures; only a
    /// hang fails.
    async fn change_membership(&mut self, leader: NodeId) -> Result<(), Failure> {
        let engine = self.cluster.engine(leader)?;
        let new = self.cluster.ids().into_iter().max().unwrap_or(0) + 1;
        self.cluster.add_node(new).await?;
        let added = self
            .cluster
            .bounded(format!("add_learner({new})"), engine.add_learner(new))
            .await?;
        if let Err(err) = added {
            // Not a member: it would never converge, so it leaves again.
            self.cluster.crash(new).await?;
            self.retired.push(new);
            self.note(format!("add_learner({new}) on {leader} refused: {err}"));
            return Ok(());
        }
        tokio::time::sleep(self.cluster.config().heartbeat_interval * 4).await;
        let promoted = self
            .cluster
            .bounded(
                format!("promote_learner({new})"),
                engine.promote_learner(new),
            )
            .await?;
        if let Err(err) = promoted {
            self.note(format!("added learner {new}; promote refused: {err}"));
            return Ok(());
        }
        let voters = engine.status().membership.voters.clone();
        let running = self.cluster.running();
        let candidates: Vec<NodeId> = voters
            .into_iter()
            .filter(|&id| id != leader && id != new && running.contains(&id))
            .collect();
        let Some(&victim) = candidates.choose(&mut self.rng) else {
            self.note(format!("added voter {new}; no follower to remove"));
            return Ok(());
        };
        let removed = self
            .cluster
            .bounded(format!("remove_node({victim})"), engine.remove_node(victim))
            .await?;
        match removed {
            Ok(_) => {
                self.cluster.crash(victim).await?;
                self.retired.push(victim);
                self.note(format!("added voter {new}, removed and retired {victim}"));
            }
            Err(err) => self.note(format!(
                "added voter {new}; remove_node({victim}) refused: {err}"
            )),
        }
        Ok(())
    }

    async fn heal(&mut self) -> Result<(), Failure> {
        self.cluster.heal_all();
        self.note("heal network".into());
        Ok(())
    }

    async fn restart_down(&mut self) -> Result<(), Failure> {
        if let Some(node) = self.down.take() {
            self.cluster.restart(node).await?;
            self.note(format!("restart node {node}"));
        }
        Ok(())
    }

    async fn finish_background(&mut self) -> Result<(), Failure> {
        while let Some(joined) = self.background.join_next().await {
            match joined {
                Ok(result) => result?,
                Err(err) => return Err(Failure::new(format!("a fault task panicked: {err}"))),
            }
        }
        Ok(())
    }
}

/// What one seed of a scenario showed.
enum SeedVerdict {
    /// Checked and linearizable, as expected.
    Clean,
    /// A scenario that expects a violation: the checker caught it.
    Caught,
    /// A scenario that expects a violation: this schedule produced none the checker could see.
    Missed(String),
}

/// Runs `scenario` once per seed; the first failing seed fails the case.
///
/// A scenario that expects a violation fails when more than half of its seeds show none: one
/// schedule of many may happen to produce no stale read, but a checker blind to most of them
/// is blind. With a single seed (the default), that seed must show one.
pub async fn run_scenario<B: Backend>(h: &Harness<B>, scenario: Scenario) -> Result<(), Failure> {
    let seeds = seeds(scenario.default_seeds);
    let mut missed = Vec::new();
    for &seed in &seeds {
        let verdict = run_seed(h, &scenario, seed).await.map_err(|failure| {
            failure.context(format!(
                "scenario {} on {} with seed {seed}: replay with SEED={seed}",
                scenario.name,
                B::NAME
            ))
        })?;
        if let SeedVerdict::Missed(problem) = verdict {
            println!("{} seed {seed}: {problem}", scenario.name);
            missed.push((seed, problem));
        }
    }
    if missed.len() * 2 > seeds.len() {
        let (seed, problem) = &missed[0];
        return Err(Failure::new(format!(
            "{} of {} seeds showed no violation; the first, seed {seed} (replay with \
             SEED={seed}): {problem}",
            missed.len(),
            seeds.len()
        ))
        .context(format!("scenario {} on {}", scenario.name, B::NAME)));
    }
    Ok(())
}

async fn run_seed<B: Backend>(
    h: &Harness<B>,
    scenario: &Scenario,
    seed: u64,
) -> Result<SeedVerdict, Failure> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut spec = ClusterSpec::new(scenario.voters).with_config(|config| {
        config.snapshot_after_entries = scenario.snapshot_after_entries;
        config.request_timeout = Duration::from_secs(3);
    });
    if scenario.clock_offsets || scenario.faults.contains(&Fault::ClockDrift) {
        for id in 1..=scenario.voters {
            let offset = Duration::from_millis(rng.gen_range(0..10_000));
            spec.clocks.insert(id, (offset, 1.0));
        }
    }
    let cluster = h.cluster_with(spec, seed).await?;
    let wait = cluster.election_wait();
    cluster.wait_for_leader(wait).await?;

    let recorder = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let clients = spawn_clients(
        &cluster,
        &recorder,
        scenario.workload,
        seed,
        Arc::clone(&stop),
    );
    let mut injector = Injector {
        cluster: cluster.clone(),
        rng: ChaCha8Rng::seed_from_u64(seed.rotate_left(17) ^ 0xFA17),
        down: None,
        retired: Vec::new(),
        background: JoinSet::new(),
        log: Vec::new(),
        started: Instant::now(),
    };
    let result = drive(&mut injector, scenario).await;
    let log = injector.log.clone();
    let with_log = |failure: Failure| {
        let tail: Vec<String> = log.iter().rev().take(40).rev().cloned().collect();
        failure.context(format!(
            "fault log (last {}):\n    {}",
            tail.len(),
            tail.join("\n    ")
        ))
    };
    result.map_err(with_log)?;

    // Heal phase: no faults, every node up, clients still running so reads cross the heal.
    tokio::time::sleep(cluster.config().election_timeout_max * 2).await;
    let issued = stop_clients(&stop, clients).await.map_err(with_log)?;
    let history = recorder.history();
    let summary = history.summary();

    let leader = cluster.wait_for_leader(wait * 2).await.map_err(with_log)?;
    // Liveness: the healed cluster accepts a write.
    cluster
        .put_via_leader(u64::MAX, u64::MAX, wait * 2)
        .await
        .map_err(with_log)?;
    cluster
        .wait_converged(Duration::from_secs(30))
        .await
        .map_err(with_log)?;
    cluster.check_election_safety().map_err(with_log)?;
    let mut final_state = cluster.final_state(leader)?;
    final_state.remove(&u64::MAX);
    let verdict = checker::verify(&history, Some(&final_state), &CheckOptions::default());
    if scenario.expect_violation {
        return match verdict {
            Ok(()) => {
                cluster.shutdown().await?;
                Ok(SeedVerdict::Missed(format!(
                    "the checker found nothing wrong in a history with unchecked local reads \
                     ({summary}): the suite could not see a stale read, so it cannot see lease \
                     bugs"
                )))
            }
            Err(problem) => {
                // The search alone (without the oracles) must see it too.
                let search = checker::check(&history, &CheckOptions::default());
                if search.is_linearizable() {
                    return Err(with_log(Failure::new(format!(
                        "the oracles caught the unchecked local reads but the linearizability \
                 search accepted the history ({summary}): {problem}"
                    ))));
                }
                let first = problem.lines().take(3).collect::<Vec<_>>().join(" / ");
                println!(
                    "{} seed {seed}: unsafe reads caught as expected ({summary}): {first}",
                    scenario.name
                );
                cluster.shutdown().await?;
                Ok(SeedVerdict::Caught)
            }
        };
    }
    if let Err(problem) = verdict {
        return Err(with_log(
            Failure::new(format!(
                "history of {} operations: {problem}",
                history.len()
            ))
            .context(format!("history: {summary}")),
        ));
    }
    if summary.writes_ok == 0 {
        return Err(with_log(Failure::new(format!(
            "no write succeeded in {issued} requests: the scenario proved nothing ({summary})"
        ))));
    }
    let retired = log.iter().filter(|line| line.contains("retired")).count();
    println!(
        "{} seed {seed}: {} operations linearizable ({summary}); {} fault events, {retired} \
         membership changes",
        scenario.name,
        history.len(),
        log.len()
    );
    cluster.shutdown().await?;
    Ok(SeedVerdict::Clean)
}

async fn drive<B: Backend>(injector: &mut Injector<B>, scenario: &Scenario) -> Result<(), Failure> {
    let end = Instant::now() + scenario.duration;
    while Instant::now() < end {
        let pause = Duration::from_millis(injector.rng.gen_range(200..900));
        tokio::time::sleep(pause).await;
        if injector.down.is_some() && injector.rng.gen_bool(0.5) {
            injector.restart_down().await?;
            continue;
        }
        if injector.rng.gen_bool(0.35) {
            injector.heal().await?;
            continue;
        }
        let fault = *scenario.faults.choose(&mut injector.rng).expect("a fault");
        injector.apply(fault).await?;
    }
    injector.heal().await?;
    injector.restart_down().await?;
    injector.finish_background().await?;
    Ok(())
}

/// F1–F3: partitions with the old leader in the minority, isolated followers, one-way links.
pub async fn random_partitions<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let mut scenario = Scenario::new("random_partitions", Fault::NETWORK);
    scenario.voters = 5;
    run_scenario(h, scenario).await
}

/// F4–F6: loss, delay and jitter, duplication and reordering, held links.
pub async fn random_message_faults<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    run_scenario(h, Scenario::new("random_message_faults", Fault::MESSAGES)).await
}

/// F7: leader and follower crashes with restarts on the kept store.
pub async fn random_crashes<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let mut faults = Fault::CRASHES.to_vec();
    faults.push(Fault::IsolateFollower);
    run_scenario(h, Scenario::new("random_crashes", &faults)).await
}

/// F9: leadership transfers under load, mixed with partitions.
pub async fn random_transfers<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let faults = [
        Fault::Transfer,
        Fault::Transfer,
        Fault::IsolateFollower,
        Fault::HoldLink,
    ];
    run_scenario(h, Scenario::new("random_transfers", &faults)).await
}

/// F12/F13: clock offsets and rate drift within the bound, with partitions.
pub async fn random_clock_drift<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let faults = [
        Fault::ClockDrift,
        Fault::ClockDrift,
        Fault::LeaderInMinority,
        Fault::IsolateFollower,
    ];
    let mut scenario = Scenario::new("random_clock_drift", &faults);
    scenario.clock_offsets = true;
    run_scenario(h, scenario).await
}

/// F16: snapshots and log compaction while followers are cut off and crash.
pub async fn random_snapshots<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let faults = [
        Fault::Snapshot,
        Fault::IsolateFollower,
        Fault::CrashFollower,
    ];
    let mut scenario = Scenario::new("random_snapshots", &faults);
    scenario.snapshot_after_entries = 40;
    run_scenario(h, scenario).await
}

/// F15: membership changes (a fresh node joins, a follower is removed and retired) under load,
/// mixed with partitions and follower crashes.
pub async fn random_membership_changes<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let faults = [
        Fault::MembershipChange,
        Fault::MembershipChange,
        Fault::IsolateFollower,
        Fault::CrashFollower,
    ];
    run_scenario(h, Scenario::new("random_membership_changes", &faults)).await
}

/// Everything the backend supports, together, on 5 nodes.
pub async fn random_mixed<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let capabilities = h.backend().capabilities();
    let mut faults: Vec<Fault> = Fault::NETWORK.to_vec();
    faults.extend_from_slice(Fault::MESSAGES);
    faults.extend_from_slice(Fault::CRASHES);
    faults.push(Fault::ClockDrift);
    if capabilities.leadership_transfer {
        faults.push(Fault::Transfer);
    }
    if capabilities.snapshots {
        faults.push(Fault::Snapshot);
    }
    if capabilities.membership_change {
        faults.push(Fault::MembershipChange);
    }
    let mut scenario = Scenario::new("random_mixed", &faults);
    scenario.voters = 5;
    scenario.duration = Duration::from_secs(12);
    scenario.workload.clients = 5;
    scenario.clock_offsets = true;
    scenario.snapshot_after_entries = if capabilities.snapshots { 60 } else { 0 };
    run_scenario(h, scenario).await
}

/// Sensitivity (negative) test: clients read a random node's state machine with no
/// leadership check while followers and the old leader are cut off. Such reads are stale, and
/// the checker must say so; if it finds nothing, the suite is blind and this case fails.
pub async fn checker_catches_unsafe_local_reads<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let faults = [Fault::IsolateFollower, Fault::LeaderInMinority];
    let mut scenario = Scenario::new("checker_catches_unsafe_local_reads", &faults);
    scenario.workload.unsafe_local_reads = true;
    scenario.workload.read_ratio = 0.6;
    scenario.duration = Duration::from_secs(6);
    scenario.default_seeds = 1;
    scenario.expect_violation = true;
    run_scenario(h, scenario).await
}
