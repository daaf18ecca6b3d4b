//! Deterministic contract cases: each builds a fresh cluster, provokes one behaviour of the
//! `Engine` contract, and checks the answer, the error kind and outcome, and the final state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use raftengine::{
    Engine, ErrorKind, LeaderLoss, LossCause, NodeId, RejectReason, Role, WriteOutcome,
};
use tokio::time::Instant;

use crate::harness::{Backend, Cluster, ClusterSpec, Failure, Harness};
use crate::sm::{Command, Response};
use crate::{ensure, fail};

const KEY: u64 = 1;

/// `(key, value, Ok or the error's outcome)` of one write.
type WriteResult = (u64, u64, Result<(), WriteOutcome>);

fn others(cluster_ids: &[NodeId], not: NodeId) -> Vec<NodeId> {
    cluster_ids
        .iter()
        .copied()
        .filter(|&id| id != not)
        .collect()
}

/// Records every leader-loss event of one engine.
struct LossLog {
    events: Arc<Mutex<Vec<(LeaderLoss, Instant)>>>,
    _subscription: raftengine::Subscription,
}

impl LossLog {
    fn attach(engine: &Arc<dyn Engine>) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let subscription = engine.on_leader_loss(Box::new(move |loss| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((loss, Instant::now()));
        }));
        Self {
            events,
            _subscription: subscription,
        }
    }

    fn events(&self) -> Vec<(LeaderLoss, Instant)> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn wait_first(
        &self,
        what: &str,
        timeout: Duration,
    ) -> Result<(LeaderLoss, Instant), Failure> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(first) = self.events().first().copied() {
                return Ok(first);
            }
            if Instant::now() >= deadline {
                fail!("leader-loss callback did not fire {what} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn leader_and_warm_up<B: Backend>(cluster: &Cluster<B>) -> Result<NodeId, Failure> {
    cluster.wait_for_leader(cluster.election_wait()).await?;
    let (leader, _) = cluster
        .put_via_leader(0, 1, cluster.election_wait())
        .await?;
    // Every follower learns who leads (needed for hints).
    let ids = cluster.ids();
    cluster
        .wait_until("followers learn the leader", cluster.election_wait(), |c| {
            let statuses = c.statuses();
            others(&ids, leader)
                .iter()
                .all(|id| statuses.get(id).is_some_and(|s| s.leader == Some(leader)))
        })
        .await?;
    Ok(leader)
}

/// At most one leader per term, across repeated elections forced by isolation and crashes.
pub async fn single_leader_per_term<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(5).await?;
    let wait = cluster.election_wait();
    let ids = cluster.ids();
    for round in 0..4 {
        let leader = cluster.wait_for_leader(wait).await?;
        let rest = others(&ids, leader);
        if round % 2 == 0 {
            cluster.isolate(leader);
        } else {
            cluster.crash(leader).await?;
        }
        let next = cluster.wait_for_leader_among(&rest, wait).await?;
        ensure!(next != leader, "round {round}: leadership did not move");
        cluster.put(next, KEY, round + 1).await?.map_err(|err| {
            Failure::new(format!(
                "round {round}: write on new leader {next} failed: {err}"
            ))
        })?;
        cluster.heal();
        if round % 2 == 1 {
            cluster.restart(leader).await?;
        }
    }
    cluster.wait_for_leader(wait).await?;
    cluster.check_election_safety()?;
    let terms = cluster.leaders_by_term();
    ensure!(
        terms.len() >= 5,
        "expected at least 5 terms with a leader, saw {terms:?}"
    );
    cluster.shutdown().await
}

/// Every node applies the same commands in the same order: equal state-machine digests, and
/// every acknowledged response matches a sequential replay.
pub async fn replicates_in_same_order<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    // Sequential writes and CAS on a few keys.
    for i in 0..30u64 {
        let key = i % 4;
        let command = if i % 3 == 2 {
            Command::Cas {
                key,
                expected: Some(1000 + i - 3),
                new: 1000 + i,
            }
        } else {
            Command::Put {
                key,
                value: 1000 + i,
            }
        };
        cluster.propose(leader, command).await?.map_err(|err| {
            Failure::new(format!(
                "sequential write {i} on leader {leader} failed: {err}"
            ))
        })?;
    }
    // Concurrent writes.
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..8u64 {
        let cluster = cluster.clone();
        tasks.spawn(async move {
            for i in 0..10u64 {
                let value = 10_000 + client * 100 + i;
                match cluster.put(leader, 10 + client % 3, value).await? {
                    Ok(_) => {}
                    Err(err) => fail!("concurrent put {value} failed on a stable leader: {err}"),
                }
            }
            Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|err| Failure::new(format!("writer panicked: {err}")))??;
    }
    let print = cluster.wait_converged(Duration::from_secs(10)).await?;
    ensure!(
        print.applied_count >= 110,
        "converged with only {} applied commands, expected at least 110",
        print.applied_count
    );
    // Same data everywhere.
    let mut data = BTreeMap::new();
    for id in cluster.running() {
        data.insert(id, cluster.state_machine(id)?.read(|sm| sm.data().clone()));
    }
    let first = data.values().next().cloned().unwrap_or_default();
    ensure!(
        data.values().all(|d| *d == first),
        "replicas hold different data: {data:?}"
    );
    cluster.check_election_safety()?;
    cluster.shutdown().await
}

/// A proposal on a follower fails with `NotLeader` naming the leader, appends nothing, and is
/// classified as leadership loss; reads and admin calls on a follower fail the same way.
pub async fn propose_on_follower_is_not_leader<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    for follower in cluster.others(leader) {
        let value = 500 + follower;
        match cluster.put(follower, KEY, value).await? {
            Ok(version) => fail!(
                "propose on follower {follower} succeeded (index {version}); followers must \
                 answer NotLeader and never forward"
            ),
            Err(err) => {
                ensure!(
                    *err.kind() == ErrorKind::NotLeader { hint: Some(leader) },
                    "propose on follower {follower}: expected NotLeader {{ hint: Some({leader}) }}, \
                     got {:?}: {err}",
                    err.kind()
                );
                ensure!(
                    err.outcome() == WriteOutcome::NotApplied && err.is_leadership_loss(),
                    "NotLeader must be NotApplied and a leadership loss: {err:?}"
                );
            }
        }
        let engine = cluster.engine(follower)?;
        let read = cluster
            .bounded(
                "linearizable_read on a follower",
                engine.linearizable_read(),
            )
            .await?;
        match read {
            Ok(index) => fail!(
                "linearizable_read on follower {follower} succeeded ({index:?}); it must answer \
                 NotLeader"
            ),
            Err(err) => ensure!(
                matches!(err.kind(), ErrorKind::NotLeader { .. }),
                "linearizable_read on follower {follower}: expected NotLeader, got {err:?}"
            ),
        }
    }
    cluster.wait_converged(Duration::from_secs(5)).await?;
    for follower in cluster.others(leader) {
        cluster.assert_never_applied(KEY, 500 + follower, "the proposal was refused")?;
    }
    cluster.shutdown().await
}

/// While a transfer runs, a proposal on the old leader fails with `TransferInProgress` naming
/// the target, and leaves no entry.
pub async fn propose_during_transfer_is_transfer_in_progress<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let target = cluster.others(leader)[0];
    // Hold the leader's traffic to the target so the handover cannot finish yet.
    cluster.net().hold(leader, target);
    let engine = cluster.engine(leader)?;
    let transfer = {
        let cluster = cluster.clone();
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            cluster
                .bounded(
                    "transfer_leadership",
                    engine.transfer_leadership(Some(target)),
                )
                .await
        })
    };
    cluster
        .wait_until(
            "status().transferring_to is set on the old leader",
            Duration::from_millis(200),
            |_| engine.status().transferring_to == Some(target),
        )
        .await?;
    let value = 777;
    match cluster.put(leader, KEY, value).await? {
        Ok(version) => fail!("propose during a transfer succeeded at index {version}"),
        Err(err) => {
            ensure!(
                *err.kind()
                    == ErrorKind::TransferInProgress {
                        target: Some(target)
                    },
                "propose during transfer: expected TransferInProgress {{ target: Some({target}) }}, \
                 got {:?}: {err}",
                err.kind()
            );
            ensure!(
                err.outcome() == WriteOutcome::NotApplied && err.is_leadership_loss(),
                "TransferInProgress must be NotApplied and a leadership loss: {err:?}"
            );
        }
    }
    cluster.net().release(leader, target);
    let outcome = transfer
        .await
        .map_err(|err| Failure::new(format!("transfer task panicked: {err}")))??;
    if let Err(err) = &outcome {
        // The handover may time out while held; the cluster must still recover.
        println!("transfer after release ended with: {err}");
    }
    cluster.wait_for_leader(cluster.election_wait()).await?;
    cluster.wait_converged(Duration::from_secs(10)).await?;
    cluster.assert_never_applied(KEY, value, "it failed with TransferInProgress")?;
    cluster.shutdown().await
}

/// A leader cut off with a proposal in flight loses leadership; the proposal fails with
/// `LeadershipLost`, and when the error says "not applied" the write is really absent.
pub async fn leadership_lost_mid_proposal<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let rest = cluster.others(leader);
    cluster.isolate(leader);
    let value = 4242;
    let in_flight = {
        let cluster = cluster.clone();
        tokio::spawn(async move { cluster.put(leader, KEY, value).await })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let new_leader = cluster
        .wait_for_leader_among(&rest, cluster.election_wait())
        .await?;
    cluster.put(new_leader, KEY, 4343).await?.map_err(|err| {
        Failure::new(format!(
            "write on the new leader {new_leader} failed: {err}"
        ))
    })?;
    cluster.heal();
    let answer = in_flight
        .await
        .map_err(|err| Failure::new(format!("proposal task panicked: {err}")))??;
    let outcome = match answer {
        Ok(version) => fail!(
            "a proposal on a leader cut off from its quorum succeeded at index {version}, although \
             a new leader overwrote that index"
        ),
        Err(err) => {
            ensure!(
                *err.kind() == ErrorKind::LeadershipLost,
                "proposal in flight when leadership ended: expected LeadershipLost, got {:?}: {err}",
                err.kind()
            );
            ensure!(
                err.is_leadership_loss(),
                "LeadershipLost must be a leadership loss"
            );
            err.outcome()
        }
    };
    cluster.wait_converged(Duration::from_secs(10)).await?;
    if outcome == WriteOutcome::NotApplied {
        cluster.assert_never_applied(KEY, value, "LeadershipLost said NotApplied")?;
    }
    cluster.check_election_safety()?;
    cluster.shutdown().await
}

/// A storm of proposals to every node while leadership moves: every write answered with a
/// "not applied" error is absent from every replica at the end, and every acknowledged write
/// is present.
pub async fn not_applied_writes_leave_no_trace<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let results: Arc<Mutex<Vec<WriteResult>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..6u64 {
        let cluster = cluster.clone();
        let results = Arc::clone(&results);
        tasks.spawn(async move {
            for i in 0..25u64 {
                let node = 1 + (client + i) % 3;
                let key = client % 3;
                let value = 100_000 + client * 1000 + i;
                if cluster.try_engine(node).is_none() {
                    continue;
                }
                let answer = cluster.put(node, key, value).await?;
                let outcome = answer.map(|_| ()).map_err(|err| err.outcome());
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((key, value, outcome));
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            Ok::<(), Failure>(())
        });
    }
    // Move leadership while the storm runs.
    tokio::time::sleep(Duration::from_millis(100)).await;
    if h.backend().capabilities().leadership_transfer {
        let _ = cluster.transfer(None).await?;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let current = cluster.leader().unwrap_or(leader);
    cluster.isolate(current);
    tokio::time::sleep(cluster.config().election_timeout_max * 2).await;
    cluster.heal();
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|err| Failure::new(format!("writer panicked: {err}")))??;
    }
    cluster.wait_for_leader(cluster.election_wait()).await?;
    cluster.wait_converged(Duration::from_secs(10)).await?;
    let results = results.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut refused = 0;
    for (key, value, outcome) in &results {
        match outcome {
            Err(WriteOutcome::NotApplied) => {
                refused += 1;
                cluster.assert_never_applied(*key, *value, "its error said NotApplied")?;
            }
            Ok(()) => {
                for id in cluster.running() {
                    let present = cluster
                        .state_machine(id)?
                        .read(|sm| sm.has_applied_write(*key, *value));
                    ensure!(
                        present,
                        "acknowledged write {value} (key {key}) missing on node {id}"
                    );
                }
            }
            Err(WriteOutcome::Unknown) => {}
        }
    }
    ensure!(
        refused > 0,
        "no write was refused with NotApplied; the case did not exercise anything"
    );
    cluster.shutdown().await
}

/// A deposed leader (cut off while a new leader commits a newer value) never serves the old
/// value through `linearizable_read`, neither while cut off nor as the partition heals.
pub async fn deposed_leader_never_serves_stale_reads<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let old = leader_and_warm_up(&cluster).await?;
    let v1 = cluster
        .put(old, KEY, 1)
        .await?
        .map_err(|err| Failure::new(format!("first write failed: {err}")))?;
    cluster.isolate(old);
    let rest = cluster.others(old);
    let new = cluster
        .wait_for_leader_among(&rest, cluster.election_wait())
        .await?;
    let v2 = cluster
        .put(new, KEY, 2)
        .await?
        .map_err(|err| Failure::new(format!("write on new leader {new} failed: {err}")))?;
    ensure!(v2 > v1, "versions must grow: {v1} then {v2}");
    // A read on the deposed leader while cut off, and one that spans the heal.
    let during = cluster.linearizable_get(old, KEY).await?;
    if let Ok(value) = during {
        fail!("deposed, isolated leader {old} served a linearizable read: {value:?}");
    }
    let spanning = {
        let cluster = cluster.clone();
        tokio::spawn(async move { cluster.linearizable_get(old, KEY).await })
    };
    tokio::time::sleep(cluster.config().election_timeout_min).await;
    cluster.heal();
    let answer = spanning
        .await
        .map_err(|err| Failure::new(format!("read task panicked: {err}")))??;
    if let Ok(value) = answer {
        let version = value.map_or(0, |v| v.version);
        ensure!(
            version >= v2,
            "stale linearizable read on the deposed leader {old}: saw {value:?}, but version {v2} \
             was acknowledged before the read started"
        );
    }
    cluster.shutdown().await
}

/// The leader-loss callback fires when a leader steps down on seeing a higher term.
pub async fn leader_loss_fires_on_step_down<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let engine = cluster.engine(leader)?;
    let term = engine.status().term;
    let log = LossLog::attach(&engine);
    // Followers stop hearing the leader, elect another; the new leader's traffic reaches the
    // old one, which must step down.
    for peer in cluster.others(leader) {
        cluster.partition_one_way(leader, peer);
    }
    cluster
        .wait_until("the old leader steps down", cluster.election_wait(), |_| {
            engine.status().role != Role::Leader
        })
        .await?;
    let (loss, _) = log
        .wait_first("after the step-down", Duration::from_millis(50))
        .await?;
    ensure!(
        loss.term == term,
        "leader-loss event names term {}, the node led in {term}",
        loss.term
    );
    ensure!(
        matches!(loss.cause, LossCause::SteppedDown | LossCause::QuorumLost),
        "cause of a step-down should be SteppedDown (or QuorumLost), got {:?}",
        loss.cause
    );
    ensure!(
        log.events().len() == 1,
        "one edge, one event: {:?}",
        log.events()
    );
    cluster.heal();
    cluster.shutdown().await
}

/// An isolated leader reports the loss within a bounded time, even if the library would keep
/// its role until it hears a higher term.
pub async fn leader_loss_fires_when_isolated<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let engine = cluster.engine(leader)?;
    let log = LossLog::attach(&engine);
    let config = cluster.config().clone();
    let bound = config.election_timeout_max * 2 + config.heartbeat_interval * 2;
    let cut = Instant::now();
    cluster.isolate(leader);
    let (loss, at) = log.wait_first("for an isolated leader", bound).await?;
    ensure!(
        matches!(loss.cause, LossCause::QuorumLost | LossCause::SteppedDown),
        "cause for an isolated leader should be QuorumLost (or SteppedDown), got {:?}",
        loss.cause
    );
    println!("isolated leader reported loss after {:?}", at - cut);
    cluster.heal();
    cluster.shutdown().await
}

/// The leader-loss callback fires with `Transferred` when leadership is handed over.
pub async fn leader_loss_fires_on_transfer<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let target = cluster.others(leader)[0];
    let engine = cluster.engine(leader)?;
    let log = LossLog::attach(&engine);
    let result = cluster.transfer(Some(target)).await?;
    ensure!(
        result.as_ref().ok() == Some(&target),
        "transfer to live target {target} should return Ok({target}), got {result:?}"
    );
    let (loss, _) = log
        .wait_first("after the transfer completed", Duration::from_millis(50))
        .await?;
    ensure!(
        loss.cause == LossCause::Transferred,
        "cause after a completed transfer should be Transferred, got {:?}",
        loss.cause
    );
    cluster.shutdown().await
}

/// Shutting a leader down fires the callback with `Shutdown` before `shutdown` returns.
pub async fn leader_loss_fires_on_shutdown<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let engine = cluster.engine(leader)?;
    let log = LossLog::attach(&engine);
    cluster.crash(leader).await?;
    let events = log.events();
    ensure!(
        events.len() == 1,
        "expected exactly one leader-loss event by the time shutdown returned, got {events:?}"
    );
    ensure!(
        events[0].0.cause == LossCause::Shutdown,
        "cause on shutdown should be Shutdown, got {:?}",
        events[0].0.cause
    );
    ensure!(
        engine.status().role == Role::Shutdown,
        "status after shutdown should be Role::Shutdown, got {:?}",
        engine.status().role
    );
    cluster.shutdown().await
}

/// Transfer to a live follower returns once it leads; the old leader no longer leads and no
/// longer reports a transfer; writes go on through the new leader.
pub async fn transfer_to_live_target<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let target = cluster.others(leader)[1];
    let result = cluster.transfer(Some(target)).await?;
    ensure!(
        result.as_ref().ok() == Some(&target),
        "transfer to {target}: expected Ok({target}), got {result:?}"
    );
    // The target leads once it has its votes; its own status is its view of that, published
    // as its library reports it, and may trail by a scheduling step the moment a peer first
    // hears from it as leader. It must show leadership within a heartbeat.
    let engine = cluster.engine(target)?;
    let within = cluster.config().heartbeat_interval;
    if let Err(late) = cluster
        .wait_until("target status shows leadership", within, |_| {
            engine.status().role == Role::Leader
        })
        .await
    {
        return Err(late.context(format!(
            "transfer returned but target {target} is {:?}",
            engine.status().role
        )));
    }
    let old = cluster.engine(leader)?.status();
    ensure!(
        old.role != Role::Leader && old.transferring_to.is_none(),
        "old leader after transfer: role {:?}, transferring_to {:?}",
        old.role,
        old.transferring_to
    );
    cluster
        .put(target, KEY, 9)
        .await?
        .map_err(|err| Failure::new(format!("write on the new leader {target} failed: {err}")))?;
    cluster.check_election_safety()?;
    cluster.shutdown().await
}

async fn transfer_fails_and_cluster_recovers<B: Backend>(
    cluster: &Cluster<B>,
    leader: NodeId,
    target: NodeId,
    what: &str,
) -> Result<(), Failure> {
    let started = Instant::now();
    let result = cluster.transfer(Some(target)).await?;
    let took = started.elapsed();
    if let Ok(new) = result {
        fail!("transfer to {what} target {target} returned Ok({new})");
    }
    println!("transfer to {what} target failed after {took:?}: {result:?}");
    // The cluster has a leader again (the old one, or a new election) and takes writes.
    cluster
        .wait_until(
            "no node reports a transfer any more",
            cluster.election_wait(),
            |c| c.statuses().values().all(|s| s.transferring_to.is_none()),
        )
        .await?;
    let rest = cluster.others(target);
    let now_leading = cluster
        .wait_for_leader_among(&rest, cluster.election_wait())
        .await?;
    cluster
        .put_via_leader(KEY, 31, cluster.election_wait())
        .await?;
    let _ = (leader, now_leading);
    cluster.check_election_safety()
}

/// Transfer to a crashed follower fails within its deadline and leaves a working cluster.
pub async fn transfer_to_dead_target<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let target = cluster.others(leader)[0];
    cluster.crash(target).await?;
    transfer_fails_and_cluster_recovers(&cluster, leader, target, "dead").await?;
    cluster.shutdown().await
}

/// Transfer to an isolated follower fails within its deadline and leaves a working cluster.
pub async fn transfer_to_isolated_target<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let target = cluster.others(leader)[0];
    cluster.isolate(target);
    transfer_fails_and_cluster_recovers(&cluster, leader, target, "isolated").await?;
    cluster.heal();
    cluster.shutdown().await
}

/// Transfer to an unknown node or to the leader itself is rejected at once with the typed
/// reason; on a follower it is `NotLeader`.
pub async fn transfer_to_unknown_target_is_rejected<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let quick = cluster.config().election_timeout_min;
    let engine = cluster.engine(leader)?;
    for (target, expected) in [
        (99, RejectReason::UnknownNode(99)),
        (leader, RejectReason::TargetIsSelf(leader)),
    ] {
        let started = Instant::now();
        let result = cluster
            .bounded(
                "transfer_leadership",
                engine.transfer_leadership(Some(target)),
            )
            .await?;
        match result {
            Ok(new) => fail!("transfer to {target} returned Ok({new}); expected {expected:?}"),
            Err(err) => ensure!(
                *err.kind() == ErrorKind::Rejected(expected.clone()),
                "transfer to {target}: expected Rejected({expected:?}), got {:?}: {err}",
                err.kind()
            ),
        }
        ensure!(
            started.elapsed() < quick,
            "rejecting a transfer to {target} took {:?}; a bad request should fail at once",
            started.elapsed()
        );
        ensure!(
            engine.status().role == Role::Leader,
            "a rejected transfer must not cost the leadership"
        );
    }
    let follower = cluster.others(leader)[0];
    let result = cluster
        .bounded(
            "transfer_leadership on a follower",
            cluster.engine(follower)?.transfer_leadership(Some(leader)),
        )
        .await?;
    match result {
        Ok(new) if new == leader => {}
        Ok(new) => fail!("transfer on a follower returned Ok({new})"),
        Err(err) => ensure!(
            matches!(err.kind(), ErrorKind::NotLeader { .. }),
            "transfer on follower {follower}: expected NotLeader, got {err:?}"
        ),
    }
    cluster.shutdown().await
}

/// Transfer to a learner is rejected with `NotAVoter`.
pub async fn transfer_to_learner_is_rejected<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    cluster.add_node(4).await?;
    let engine = cluster.engine(leader)?;
    cluster
        .bounded("add_learner(4)", engine.add_learner(4))
        .await?
        .map_err(|err| Failure::new(format!("add_learner(4) failed: {err}")))?;
    let result = cluster
        .bounded(
            "transfer_leadership(4)",
            engine.transfer_leadership(Some(4)),
        )
        .await?;
    match result {
        Ok(new) => fail!("transfer to learner 4 returned Ok({new})"),
        Err(err) => ensure!(
            *err.kind() == ErrorKind::Rejected(RejectReason::NotAVoter(4)),
            "transfer to a learner: expected Rejected(NotAVoter(4)), got {:?}: {err}",
            err.kind()
        ),
    }
    cluster.shutdown().await
}

/// Membership: add a learner (it catches up), promote it, remove a follower; the cluster keeps
/// committing and every replica converges.
pub async fn membership_add_promote_remove<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    for i in 0..10 {
        cluster
            .put(leader, i, 100 + i)
            .await?
            .map_err(|err| Failure::new(format!("write before membership change failed: {err}")))?;
    }
    cluster.add_node(4).await?;
    let engine = cluster.engine(leader)?;
    let membership = cluster
        .bounded("add_learner(4)", engine.add_learner(4))
        .await?
        .map_err(|err| Failure::new(format!("add_learner(4) failed: {err}")))?;
    ensure!(
        membership.learners.contains(&4) && !membership.voters.contains(&4),
        "after add_learner(4): {membership:?}"
    );
    cluster.wait_converged(Duration::from_secs(10)).await?;
    let membership = cluster
        .bounded("promote_learner(4)", engine.promote_learner(4))
        .await?
        .map_err(|err| Failure::new(format!("promote_learner(4) failed: {err}")))?;
    ensure!(
        membership.voters.contains(&4) && !membership.learners.contains(&4),
        "after promote_learner(4): {membership:?}"
    );
    let removed = others(&[1, 2, 3], leader)[0];
    let membership = cluster
        .bounded(
            format!("remove_node({removed})"),
            engine.remove_node(removed),
        )
        .await?
        .map_err(|err| Failure::new(format!("remove_node({removed}) failed: {err}")))?;
    ensure!(
        !membership.contains(removed),
        "after remove_node({removed}): {membership:?}"
    );
    cluster.crash(removed).await?;
    // The remaining three voters (one of them the promoted learner) still commit.
    let survivors = others(&[1, 2, 3, 4], removed);
    let survivor_without_leader: Vec<NodeId> = others(&survivors, leader);
    cluster.isolate(survivor_without_leader[0]);
    cluster.put(leader, KEY, 5150).await?.map_err(|err| {
        Failure::new(format!(
            "write with voters {survivors:?} and node {} cut off failed: {err}",
            survivor_without_leader[0]
        ))
    })?;
    cluster.heal();
    cluster.wait_converged(Duration::from_secs(10)).await?;
    for id in cluster.running() {
        let status = cluster.engine(id)?.status();
        ensure!(
            !status.membership.contains(removed) && status.membership.voters.contains(&4),
            "node {id} has membership {:?}",
            status.membership
        );
    }
    cluster.shutdown().await
}

fn expect_rejected(
    what: &str,
    result: raftengine::Result<raftengine::Membership>,
    accept: &[RejectReason],
) -> Result<(), Failure> {
    match result {
        Ok(membership) => fail!("{what} succeeded ({membership:?}); expected Rejected({accept:?})"),
        Err(err) => match err.kind() {
            ErrorKind::Rejected(reason) if accept.contains(reason) => Ok(()),
            other => fail!("{what}: expected Rejected({accept:?}), got {other:?}: {err}"),
        },
    }
}

/// Bad membership requests get a typed `Rejected`: unknown nodes, wrong roles, the last voter,
/// a change while another is pending; on a follower they get `NotLeader`.
pub async fn membership_bad_requests<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let engine = cluster.engine(leader)?;
    let follower = cluster.others(leader)[0];
    expect_rejected(
        "add_learner(existing voter)",
        cluster
            .bounded("add_learner", engine.add_learner(follower))
            .await?,
        &[RejectReason::AlreadyMember(follower)],
    )?;
    expect_rejected(
        "promote_learner(unknown node 99)",
        cluster
            .bounded("promote_learner", engine.promote_learner(99))
            .await?,
        &[RejectReason::UnknownNode(99)],
    )?;
    expect_rejected(
        "promote_learner(existing voter)",
        cluster
            .bounded("promote_learner", engine.promote_learner(follower))
            .await?,
        &[
            RejectReason::NotALearner(follower),
            RejectReason::AlreadyMember(follower),
        ],
    )?;
    expect_rejected(
        "remove_node(unknown node 99)",
        cluster
            .bounded("remove_node", engine.remove_node(99))
            .await?,
        &[RejectReason::UnknownNode(99)],
    )?;
    let on_follower = cluster
        .bounded(
            "add_learner on a follower",
            cluster.engine(follower)?.add_learner(9),
        )
        .await?;
    match on_follower {
        Ok(m) => fail!("add_learner on follower {follower} succeeded: {m:?}"),
        Err(err) => ensure!(
            matches!(err.kind(), ErrorKind::NotLeader { .. }),
            "add_learner on a follower: expected NotLeader, got {err:?}"
        ),
    }
    // A change that cannot commit (followers unreachable) is pending; a second one is refused.
    for peer in cluster.others(leader) {
        cluster.partition(leader, peer);
    }
    let pending = {
        let cluster = cluster.clone();
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            cluster
                .bounded("add_learner(7)", engine.add_learner(7))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    expect_rejected(
        "a second membership change while one is pending",
        cluster
            .bounded("add_learner(8)", engine.add_learner(8))
            .await?,
        &[RejectReason::MembershipChangePending],
    )?;
    cluster.heal();
    let _ = pending
        .await
        .map_err(|err| Failure::new(format!("pending change task panicked: {err}")))??;
    cluster.shutdown().await?;

    // The last voter cannot be removed.
    let single = h.cluster(1).await?;
    let only = single.wait_for_leader(single.election_wait()).await?;
    let engine = single.engine(only)?;
    expect_rejected(
        "remove_node(last voter)",
        single
            .bounded("remove_node", engine.remove_node(only))
            .await?,
        &[RejectReason::LastVoter(only)],
    )?;
    single.shutdown().await
}

/// A follower cut off while the leader snapshots and compacts catches up through snapshot
/// install and converges.
pub async fn snapshot_catch_up<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let spec = ClusterSpec::new(3).with_config(|config| config.snapshot_after_entries = 0);
    let cluster = h.cluster_with(spec, h.seed()).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let lagging = cluster.others(leader)[0];
    cluster.wait_converged(Duration::from_secs(5)).await?;
    let lagging_last = cluster.engine(lagging)?.status().last_log_index;
    cluster.isolate(lagging);
    let mut last_version = 0;
    for i in 0..60u64 {
        last_version = cluster
            .put(leader, i % 7, 2000 + i)
            .await?
            .map_err(|err| Failure::new(format!("write {i} with one follower cut off: {err}")))?;
    }
    let engine = cluster.engine(leader)?;
    let info = cluster
        .bounded("snapshot on the leader", engine.snapshot())
        .await?
        .map_err(|err| Failure::new(format!("snapshot() failed: {err}")))?;
    ensure!(
        info.last_index >= last_version,
        "snapshot covers index {} but the last write was at {last_version}",
        info.last_index
    );
    // Compaction may trail the snapshot a little; give it a few election timeouts.
    let store = cluster.store(leader)?;
    let compacted = cluster
        .wait_until(
            "the leader compacts its log behind the snapshot",
            cluster.election_wait(),
            |_| {
                raftengine::LogStore::log_state(&store)
                    .is_ok_and(|state| state.first_index() > lagging_last + 1)
            },
        )
        .await;
    if let Err(failure) = compacted {
        let log_state = raftengine::LogStore::log_state(&store);
        return Err(failure.context(format!(
            "snapshot() did not compact the leader's log past the lagging follower's last entry \
             ({lagging_last}); log state {log_state:?}. The contract says snapshot() compacts \
             the log behind it; without that, catch-up never exercises snapshot install."
        )));
    }
    cluster.heal();
    cluster.wait_converged(Duration::from_secs(15)).await?;
    let installed = raftengine::LogStore::snapshot(&cluster.store(lagging)?)
        .map_err(|err| Failure::new(format!("follower store: {err}")))?;
    ensure!(
        installed.is_some(),
        "follower {lagging} converged but holds no snapshot: it did not catch up by install"
    );
    let leader_data = cluster.state_machine(leader)?.read(|sm| sm.data().clone());
    let lagging_data = cluster.state_machine(lagging)?.read(|sm| sm.data().clone());
    ensure!(
        leader_data == lagging_data,
        "after snapshot install the follower's data differs"
    );
    cluster.shutdown().await
}

/// Crashes and restarts (leader, follower, then the whole cluster) keep every acknowledged
/// write, and restarted nodes rebuild their state machines from snapshot and log.
pub async fn crash_restart_keeps_acked_writes<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let leader = leader_and_warm_up(&cluster).await?;
    let mut acked: Vec<(u64, u64)> = Vec::new();
    for key in 100..110u64 {
        cluster
            .put(leader, key, key * 10)
            .await?
            .map_err(|err| Failure::new(format!("write before crashes failed: {err}")))?;
        acked.push((key, key * 10));
    }
    cluster.crash(leader).await?;
    let rest = cluster.others(leader);
    cluster.wait_for_leader_among(&rest, wait).await?;
    for key in 110..120u64 {
        cluster.put_via_leader(key, key * 10, wait).await?;
        acked.push((key, key * 10));
    }
    cluster.restart(leader).await?;
    let follower = cluster.others(cluster.leader().unwrap_or(leader))[0];
    cluster.crash(follower).await?;
    cluster.restart(follower).await?;
    for key in 120..125u64 {
        cluster.put_via_leader(key, key * 10, wait).await?;
        acked.push((key, key * 10));
    }
    // Whole-cluster restart.
    cluster.restart_all().await?;
    let leader = cluster.wait_for_leader(wait).await?;
    cluster.put_via_leader(KEY, 1, wait).await?;
    cluster.wait_converged(Duration::from_secs(10)).await?;
    for id in cluster.running() {
        let sm = cluster.state_machine(id)?;
        for &(key, value) in &acked {
            let held = sm.read(|sm| sm.get(key));
            ensure!(
                held.map(|v| v.value) == Some(value),
                "node {id} lost acknowledged write {value} to key {key} (holds {held:?})"
            );
        }
    }
    let read = cluster.linearizable_get(leader, 124).await?;
    ensure!(
        matches!(read, Ok(Some(v)) if v.value == 1240),
        "linearizable read after full restart: {read:?}"
    );
    cluster.shutdown().await
}

/// With every link cut, every call on every node returns (with some error) by its deadline; and
/// calls on a shut-down engine fail with `Shutdown` promptly.
pub async fn no_call_hangs_past_deadline<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let spec = ClusterSpec::new(3).with_config(|config| {
        config.request_timeout = Duration::from_secs(2);
    });
    let cluster = h.cluster_with(spec, h.seed()).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let capabilities = h.backend().capabilities();
    cluster.partition_groups(&[&[1], &[2], &[3]]);
    let mut tasks = tokio::task::JoinSet::new();
    for id in cluster.ids() {
        let engine = cluster.engine(id)?;
        let other = if id == leader {
            cluster.others(id)[0]
        } else {
            leader
        };
        let c = cluster.clone();
        let e = Arc::clone(&engine);
        tasks.spawn(async move {
            let _ = c
                .bounded(
                    format!("propose on node {id}"),
                    e.propose(Command::Put { key: KEY, value: 1 }.encode()),
                )
                .await?;
            Ok::<(), Failure>(())
        });
        let c = cluster.clone();
        let e = Arc::clone(&engine);
        tasks.spawn(async move {
            let _ = c
                .bounded(
                    format!("linearizable_read on node {id}"),
                    e.linearizable_read(),
                )
                .await?;
            Ok(())
        });
        if capabilities.leadership_transfer {
            let c = cluster.clone();
            let e = Arc::clone(&engine);
            tasks.spawn(async move {
                let _ = c
                    .bounded(
                        format!("transfer_leadership on node {id}"),
                        e.transfer_leadership(Some(other)),
                    )
                    .await?;
                Ok(())
            });
        }
        if capabilities.membership_change {
            let c = cluster.clone();
            let e = Arc::clone(&engine);
            tasks.spawn(async move {
                let _ = c
                    .bounded(format!("add_learner on node {id}"), e.add_learner(9))
                    .await?;
                Ok(())
            });
        }
        if capabilities.snapshots {
            let c = cluster.clone();
            let e = Arc::clone(&engine);
            tasks.spawn(async move {
                let _ = c
                    .bounded(format!("snapshot on node {id}"), e.snapshot())
                    .await?;
                Ok(())
            });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|err| Failure::new(format!("call task panicked: {err}")))??;
    }
    cluster.heal();
    // After shutdown, calls fail with Shutdown at once.
    let engine = cluster.engine(leader)?;
    cluster.crash(leader).await?;
    let started = Instant::now();
    let answer = cluster
        .bounded(
            "propose after shutdown",
            engine.propose(Command::Get { key: KEY }.encode()),
        )
        .await?;
    match answer {
        Ok(applied) => fail!("propose on a shut-down engine succeeded: {applied:?}"),
        Err(err) => ensure!(
            *err.kind() == ErrorKind::Shutdown,
            "propose after shutdown: expected Shutdown, got {err:?}"
        ),
    }
    let read = cluster
        .bounded(
            "linearizable_read after shutdown",
            engine.linearizable_read(),
        )
        .await?;
    ensure!(
        matches!(&read, Err(err) if *err.kind() == ErrorKind::Shutdown),
        "linearizable_read after shutdown: expected Shutdown, got {read:?}"
    );
    ensure!(
        started.elapsed() < cluster.config().heartbeat_interval,
        "calls on a shut-down engine took {:?}",
        started.elapsed()
    );
    cluster.shutdown().await
}

/// A write acknowledged by the leader is seen by a later linearizable read and by a read
/// through the log, and both paths agree on the version.
pub async fn reads_see_acknowledged_writes<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    for i in 0..10u64 {
        let version = cluster
            .put(leader, KEY, 60 + i)
            .await?
            .map_err(|err| Failure::new(format!("write {i} failed: {err}")))?;
        let read = cluster.linearizable_get(leader, KEY).await?;
        ensure!(
            matches!(read, Ok(Some(v)) if v.value == 60 + i && v.version == version),
            "linearizable read after acknowledged write {} @{version}: {read:?}",
            60 + i
        );
        let through_log = cluster.propose(leader, Command::Get { key: KEY }).await?;
        match through_log {
            Ok((_, Response::Value(Some(v)))) if v.value == 60 + i && v.version == version => {}
            other => fail!("read through the log after write {}: {other:?}", 60 + i),
        }
    }
    cluster.shutdown().await
}

/// A linearizable read on a leader elected a moment ago (before it may have committed an entry
/// of its term) never misses a write acknowledged by the previous leader.
pub async fn read_right_after_election_is_not_stale<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    for round in 0..3u64 {
        let leader = leader_and_warm_up(&cluster).await?;
        let value = 900 + round;
        let version = cluster.put(leader, KEY, value).await?.map_err(|err| {
            Failure::new(format!(
                "round {round}: write on leader {leader} failed: {err}"
            ))
        })?;
        cluster.crash(leader).await?;
        // Catch the new leader at the first instant it reports the role.
        let deadline = Instant::now() + wait;
        let new = loop {
            if let Some(id) = cluster.leader() {
                break id;
            }
            ensure!(
                Instant::now() < deadline,
                "round {round}: no new leader within {wait:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        match cluster.linearizable_get(new, KEY).await? {
            Ok(held) => {
                let seen = held.map_or(0, |v| v.version);
                ensure!(
                    seen >= version,
                    "round {round}: new leader {new} served a stale read right after its \
                     election: {held:?}, but {value} was acknowledged at index {version}"
                );
            }
            Err(err) => println!("round {round}: early read on new leader failed: {err}"),
        }
        cluster.restart(leader).await?;
    }
    cluster.check_election_safety()?;
    cluster.shutdown().await
}

/// After every node crashed at once and restarted from its store, the first linearizable read
/// any new leader answers sees every write acknowledged before the crash. A backend may keep
/// its commit index in memory only (it is volatile in Raft), and a node whose state machine
/// lives in memory then restarts with less applied than it had; a read it answers before it
/// has applied an entry of its own term would travel back in time.
pub async fn read_right_after_full_restart_is_not_stale<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    // Snapshots on the way, so a restart restores from one and replays the log after it.
    let spec = ClusterSpec::new(3).with_config(|config| config.snapshot_after_entries = 8);
    let cluster = h.cluster_with(spec, h.seed()).await?;
    let wait = cluster.election_wait();
    for round in 0..3u64 {
        let leader = leader_and_warm_up(&cluster).await?;
        let mut last = 0;
        for step in 0..20u64 {
            let value = round * 100 + step;
            last = cluster.put(leader, KEY, value).await?.map_err(|err| {
                Failure::new(format!("round {round}: write {value} failed: {err}"))
            })?;
        }
        cluster.restart_all().await?;
        // Read on whichever node leads, from the first instant one reports the role, until a
        // read is answered.
        let deadline = Instant::now() + wait * 2;
        loop {
            ensure!(
                Instant::now() < deadline,
                "round {round}: no read answered within {:?} of a full restart",
                wait * 2
            );
            let answer = match cluster.leader() {
                Some(id) => Some((id, cluster.linearizable_get(id, KEY).await?)),
                None => None,
            };
            if let Some((id, Ok(held))) = answer {
                let seen = held.map_or(0, |v| v.version);
                ensure!(
                    seen >= last,
                    "round {round}: leader {id} answered a linearizable read right after a \
                     full restart with {held:?}, but a write at index {last} was acknowledged \
                     before the crash"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    cluster.check_election_safety()?;
    cluster.shutdown().await
}

/// `quorum_ack()` on the leader is anchored at the **send** time of the acknowledged message:
/// with a one-way delay `d` on every link, no acknowledgement can be younger than the round
/// trip `2d`; it stays fresh while the quorum answers; followers report none; and once the
/// leader is cut off it stops advancing.
pub async fn quorum_ack_is_anchored_at_send_time<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let delay = Duration::from_millis(20);
    cluster
        .net()
        .set_default_faults(raftengine::sim::LinkFaults {
            delay,
            ..raftengine::sim::LinkFaults::default()
        });
    let leader = leader_and_warm_up(&cluster).await?;
    let engine = cluster.engine(leader)?;
    let clock = engine.clock();
    let round_trip = delay * 2;
    let config = cluster.config().clone();
    let freshness = round_trip + config.heartbeat_interval * 3 + config.rpc_timeout;
    let mut samples = 0;
    let sampling_end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < sampling_end {
        let status = engine.status();
        let ack = engine.quorum_ack();
        let now = clock.now();
        if status.role == Role::Leader {
            let Some(ack) = ack else {
                fail!("leader {leader} reports no quorum_ack while its quorum answers");
            };
            ensure!(
                ack.term == status.term,
                "quorum_ack term {} differs from the leader's term {}",
                ack.term,
                status.term
            );
            let age = now.saturating_duration_since(ack.sent_at);
            ensure!(
                age >= round_trip,
                "quorum_ack is {age:?} old but a round trip takes {round_trip:?}: it is anchored \
                 at the receive time, not the send time"
            );
            ensure!(
                age <= freshness,
                "quorum_ack is {age:?} old on a healthy leader (expected at most {freshness:?})"
            );
            samples += 1;
        }
        for follower in cluster.others(leader) {
            let ack = cluster.engine(follower)?.quorum_ack();
            ensure!(
                ack.is_none(),
                "follower {follower} reports quorum_ack {ack:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    ensure!(samples > 100, "only {samples} samples while leading");
    cluster.isolate(leader);
    tokio::time::sleep(round_trip).await;
    let frozen = engine.quorum_ack().map(|ack| ack.sent_at);
    tokio::time::sleep(config.election_timeout_max).await;
    let later = engine.quorum_ack().map(|ack| ack.sent_at);
    ensure!(
        later.is_none() || later == frozen,
        "quorum_ack kept advancing on an isolated leader: {frozen:?} then {later:?}"
    );
    cluster.heal_all();
    cluster.shutdown().await
}

/// Transfer without a target hands leadership to the most up-to-date voter and returns it once
/// it leads: with one follower cut off and behind, the other one must be chosen, and the
/// cluster then takes writes through it.
pub async fn transfer_without_target_picks_an_up_to_date_voter<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let followers = cluster.others(leader);
    let (lagging, current) = (followers[0], followers[1]);
    cluster.isolate(lagging);
    for i in 0..5u64 {
        cluster
            .put(leader, KEY, 40 + i)
            .await?
            .map_err(|err| Failure::new(format!("write {i} with {lagging} cut off: {err}")))?;
    }
    let engine = cluster.engine(leader)?;
    let result = cluster
        .bounded(
            format!("transfer_leadership(None) on node {leader}"),
            engine.transfer_leadership(None),
        )
        .await?;
    match result {
        Ok(new) => ensure!(
            new == current,
            "transfer_leadership(None) returned {new}; the only up-to-date voter is {current} \
             ({lagging} is cut off and behind)"
        ),
        Err(err) => fail!("transfer_leadership(None) from {leader} failed: {err}"),
    }
    let status = cluster.engine(current)?.status();
    ensure!(
        status.role == Role::Leader,
        "transfer returned {current} but it is {:?}",
        status.role
    );
    cluster
        .put(current, KEY, 49)
        .await?
        .map_err(|err| Failure::new(format!("write on the new leader {current} failed: {err}")))?;
    cluster.heal();
    cluster.check_election_safety()?;
    cluster.shutdown().await
}

/// With `Config::snapshot_after_entries` set, every node builds a snapshot by itself once it
/// has applied that many entries and compacts its log behind it; a whole-cluster restart then
/// rebuilds every state machine from snapshot and log.
pub async fn snapshot_policy_builds_snapshots<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let every = 5;
    let spec = ClusterSpec::new(3).with_config(|config| config.snapshot_after_entries = every);
    let cluster = h.cluster_with(spec, h.seed()).await?;
    let wait = cluster.election_wait();
    let leader = leader_and_warm_up(&cluster).await?;
    for key in 10..22u64 {
        cluster
            .put(leader, key, key * 10)
            .await?
            .map_err(|err| Failure::new(format!("write to key {key} failed: {err}")))?;
    }
    let built = cluster
        .wait_until(
            "every node builds a snapshot and compacts its log by policy",
            wait,
            |c| {
                c.ids().iter().all(|&id| {
                    let Ok(store) = c.store(id) else {
                        return false;
                    };
                    let snapshot = raftengine::LogStore::snapshot(&store).ok().flatten();
                    let first = raftengine::LogStore::log_state(&store)
                        .map(|state| state.first_index())
                        .unwrap_or(0);
                    snapshot.is_some_and(|s| s.meta.last_index >= every && first > 1)
                })
            },
        )
        .await;
    if let Err(failure) = built {
        let mut stores = String::new();
        for id in cluster.ids() {
            let store = cluster.store(id)?;
            stores.push_str(&format!(
                "node {id}: snapshot {:?}, log {:?}; ",
                raftengine::LogStore::snapshot(&store).map(|s| s.map(|s| s.meta)),
                raftengine::LogStore::log_state(&store)
            ));
        }
        return Err(failure.context(stores));
    }
    cluster.restart_all().await?;
    cluster.wait_for_leader(wait).await?;
    cluster.put_via_leader(KEY, 7, wait).await?;
    cluster.wait_converged(Duration::from_secs(10)).await?;
    for id in cluster.ids() {
        let sm = cluster.state_machine(id)?;
        for key in 10..22u64 {
            let held = sm.read(|sm| sm.get(key)).map(|v| v.value);
            ensure!(
                held == Some(key * 10),
                "after restarting from its snapshot, node {id} holds {held:?} for key {key}, \
                 not {}",
                key * 10
            );
        }
    }
    cluster.shutdown().await
}

/// A jump of the engine clock (what a suspend looks like to a clock that counts it, such as
/// `CLOCK_BOOTTIME`) does not make an old acknowledgement look recent: `quorum_ack().sent_at` is
/// a reading taken when the message was sent, not "now minus an age" measured on another
/// clock. The leader is cut off first, so no acknowledgement after the jump can be genuine.
pub async fn quorum_ack_is_not_refreshed_by_a_clock_jump<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let engine = cluster.engine(leader)?;
    let clock = cluster.clock(leader)?;
    if engine.quorum_ack().is_none() {
        fail!("leader {leader} reports no quorum_ack while its quorum answers");
    }
    cluster.isolate(leader);
    // Anything still in flight lands within a round trip; then the leader hears nothing.
    let settle = cluster.config().rpc_timeout;
    tokio::time::sleep(settle).await;
    let before_jump = raftengine::Clock::now(clock.as_ref());
    let jump = Duration::from_secs(60);
    clock.advance(jump);
    for probe in 0..20u32 {
        let now = raftengine::Clock::now(clock.as_ref());
        if let Some(ack) = engine.quorum_ack() {
            ensure!(
                ack.sent_at <= before_jump,
                "probe {probe}: after node {leader}'s clock jumped {jump:?} with no contact to \
                 its peers, quorum_ack reports a message sent {:?} ago (sent after the jump \
                 began): an old acknowledgement looks recent",
                now.saturating_duration_since(ack.sent_at)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.heal();
    cluster.shutdown().await
}

/// `quorum_ack().sent_at` is read on the engine's own clock (the one it was started with, which
/// `Engine::clock` returns): with every node's clock hundreds of seconds apart and drifting, a
/// leader's acknowledgement is recent on its own clock, and would be far off on any other.
pub async fn quorum_ack_is_on_the_engine_clock<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let mut spec = ClusterSpec::new(3);
    for (id, rate) in [(1, 1.01), (2, 0.99), (3, 1.0)] {
        spec.clocks
            .insert(id, (Duration::from_secs(id * 100), rate));
    }
    let cluster = h.cluster_with(spec, h.seed()).await?;
    let leader = leader_and_warm_up(&cluster).await?;
    let engine = cluster.engine(leader)?;
    let started_with = cluster.clock(leader)?;
    let reported = engine.clock().now();
    let own = raftengine::Clock::now(started_with.as_ref());
    let apart = if reported > own {
        reported - own
    } else {
        own - reported
    };
    ensure!(
        apart < Duration::from_millis(1),
        "Engine::clock reads {apart:?} away from the clock node {leader} was started with"
    );
    let config = cluster.config().clone();
    let freshness = config.heartbeat_interval * 3 + config.rpc_timeout;
    let mut samples = 0;
    let sampling_end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < sampling_end {
        let status = engine.status();
        let ack = engine.quorum_ack();
        let now = raftengine::Clock::now(started_with.as_ref());
        if status.role == Role::Leader {
            let Some(ack) = ack else {
                fail!("leader {leader} reports no quorum_ack while its quorum answers");
            };
            ensure!(
                ack.sent_at <= now,
                "quorum_ack was sent {:?} in the future of node {leader}'s clock: it is not read \
                 on that clock",
                ack.sent_at - now
            );
            let age = now - ack.sent_at;
            ensure!(
                age <= freshness,
                "quorum_ack is {age:?} old on node {leader}'s clock (expected at most \
                 {freshness:?}): it is not read on that clock"
            );
            samples += 1;
        }
        tokio::time::sleep(Duration::from_millis(7)).await;
    }
    ensure!(samples > 50, "only {samples} samples while leading");
    cluster.shutdown().await
}
