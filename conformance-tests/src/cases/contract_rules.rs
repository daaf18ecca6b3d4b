//! Rules of the `Engine` contract about bad input and abnormal ends: an oversized command, a
//! panicking state machine, a failing log store, an engine dropped without `shutdown` (and
//! restarted at once),
//! shutdown with calls waiting. (Too much uncommitted data is `backpressure`.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use raftengine::{Engine, ErrorKind, LossCause, NodeId, RejectReason, Role, Subscription};

use crate::harness::{Backend, Cluster, ClusterSpec, Failure, Harness};
use crate::sm::{Command, POISON};
use crate::{ensure, fail};

/// A command larger than `Config::max_command_bytes` is `Rejected(TooLarge)` with the size and
/// the limit, and nothing is appended.
pub async fn oversized_command_is_rejected_too_large<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    const LIMIT: usize = 1 << 10;
    let spec = ClusterSpec::new(3).with_config(|config| config.max_command_bytes = LIMIT);
    let cluster = h.cluster_with(spec, h.seed()).await?;
    let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
    cluster
        .put(leader, 1, 1)
        .await?
        .map_err(|err| Failure::new(format!("a normal write failed: {err}")))?;
    let engine = cluster.engine(leader)?;
    let before = engine.status().last_log_index;
    let answer = cluster
        .bounded(
            "propose of an oversized command",
            engine.propose(Bytes::from(vec![7u8; LIMIT + 1])),
        )
        .await?;
    let Err(err) = answer else {
        fail!(
            "a command of {} bytes over a {LIMIT}-byte limit was accepted",
            LIMIT + 1
        );
    };
    ensure!(
        err.kind()
            == &ErrorKind::Rejected(RejectReason::TooLarge {
                size: LIMIT + 1,
                limit: LIMIT
            }),
        "an oversized command answered {err:?}, not Rejected(TooLarge {{ size: {}, limit: {LIMIT} }})",
        LIMIT + 1
    );
    ensure!(
        err.outcome() == raftengine::WriteOutcome::NotApplied,
        "a rejected command must be not applied: {err:?}"
    );
    ensure!(
        engine.status().last_log_index == before,
        "the rejected command was appended"
    );
    // A command exactly at the limit is fine.
    let at_limit = cluster
        .bounded(
            "propose of a command at the limit",
            engine.propose(Bytes::from(vec![7u8; LIMIT])),
        )
        .await?;
    ensure!(
        at_limit.is_ok(),
        "a command of exactly {LIMIT} bytes failed: {at_limit:?}"
    );
    cluster.shutdown().await
}

/// A state machine that panics in `apply` stops the engine with `Fatal`: the waiting proposal
/// fails with `Fatal` within its deadline (never hangs), leader loss fires with cause `Fatal`,
/// the status turns to `Shutdown`, and later calls fail at once with `Fatal`.
pub async fn state_machine_panic_is_fatal<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
    cluster
        .put(leader, 1, 1)
        .await?
        .map_err(|err| Failure::new(format!("a normal write failed: {err}")))?;
    let engine = cluster.engine(leader)?;
    let (fatal, _subscription) = watch_fatal_loss(&engine);
    let answer = cluster
        .bounded(
            "propose of a command the state machine panics on",
            engine.propose(Bytes::from_static(POISON)),
        )
        .await?;
    println!("{}: a panicking apply answered {answer:?}", B::NAME);
    match &answer {
        Err(err) if err.kind() == &ErrorKind::Fatal => {}
        other => fail!("a panic in apply answered {other:?}, not Fatal"),
    }
    stopped_for_good(&cluster, &engine, &fatal).await?;
    // Every replica applies the same entry, so each one stops the same way; shutdown of a
    // stopped engine still returns.
    for id in cluster.running() {
        let _ = cluster
            .bounded(
                format!("shutdown of node {id}"),
                cluster.engine(id)?.shutdown(),
            )
            .await?;
    }
    Ok(())
}

/// A log store whose writes start failing stops the node: the proposal that met the failure
/// fails with `Storage` (never hangs, is never acknowledged), later calls fail with `Fatal`,
/// leader loss fires with cause `Fatal`, the status turns to `Shutdown`, and the other nodes
/// elect a new leader and keep every write acknowledged before.
pub async fn a_failing_store_stops_the_node<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let leader = cluster.wait_for_leader(wait).await?;
    cluster
        .put(leader, 1, 1)
        .await?
        .map_err(|err| Failure::new(format!("a normal write failed: {err}")))?;
    let engine = cluster.engine(leader)?;
    let term = engine.status().term;
    let (fatal, _subscription) = watch_fatal_loss(&engine);
    cluster.store(leader)?.set_fail_writes(true);
    let answer = cluster
        .bounded(
            "propose on a failing store",
            engine.propose(Command::Put { key: 2, value: 2 }.encode()),
        )
        .await?;
    println!(
        "{}: a write on a failing store answered {answer:?}",
        B::NAME
    );
    match &answer {
        Err(err) if err.kind() == &ErrorKind::Storage => {}
        other => fail!("a proposal whose log write failed answered {other:?}, not Storage"),
    }
    stopped_for_good(&cluster, &engine, &fatal).await?;
    cluster.isolate(leader);
    let new = cluster
        .wait_for_leader_among(&cluster.others(leader), wait)
        .await?;
    ensure!(
        cluster.engine(new)?.status().term > term,
        "node {new} leads but not in a newer term than {term}"
    );
    cluster
        .put(new, 4, 4)
        .await?
        .map_err(|err| Failure::new(format!("the survivors could not write: {err}")))?;
    let read = cluster
        .linearizable_get(new, 1)
        .await?
        .map_err(|err| Failure::new(format!("a read on the new leader failed: {err}")))?;
    ensure!(
        read.as_ref().map(|v| v.value) == Some(1),
        "the write acknowledged before the failure reads as {read:?} on the new leader"
    );
    let _ = cluster
        .bounded("shutdown of the stopped leader", engine.shutdown())
        .await?;
    let _ = cluster.crash(leader).await;
    cluster.heal();
    cluster.shutdown().await
}

/// Dropping the last handle of a leading engine without `shutdown` stops it like a crash:
/// leader loss fires, it stops serving its peers (so they elect another leader), and it
/// restarts from its store.
pub async fn dropped_engine_stops_like_a_crash<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let old = cluster.wait_for_leader(wait).await?;
    cluster
        .put(old, 1, 1)
        .await?
        .map_err(|err| Failure::new(format!("a normal write failed: {err}")))?;
    let lost = Arc::new(AtomicBool::new(false));
    let subscription = {
        let engine = cluster.engine(old)?;
        let seen = Arc::clone(&lost);
        engine.on_leader_loss(Box::new(move |_| seen.store(true, Ordering::SeqCst)))
    };
    cluster.abandon(old)?;
    ensure!(
        cluster
            .wait_until("leader loss after the drop", cluster.call_limit(), |_| lost
                .load(Ordering::SeqCst))
            .await
            .is_ok(),
        "dropping the engine did not fire leader loss"
    );
    drop(subscription);
    let survivors: Vec<_> = cluster.ids().into_iter().filter(|&id| id != old).collect();
    let new = cluster.wait_for_leader_among(&survivors, wait).await?;
    cluster
        .put(new, 1, 2)
        .await?
        .map_err(|err| Failure::new(format!("the survivors could not write: {err}")))?;
    cluster.restart(old).await?;
    cluster.wait_converged(wait).await?;
    let value = cluster
        .state_machine(old)?
        .read(|sm| sm.get(1).map(|v| v.value));
    ensure!(
        value == Some(2),
        "the restarted node reads {value:?} for key 1, not 2"
    );
    cluster.shutdown().await
}

/// Every operation a backend does not declare fails with `Unsupported` (at once, never a hang
/// or a silent success), and `quorum_ack` without that capability always answers `None`. A
/// backend that supports everything has nothing to show here.
pub async fn unsupported_operations_are_unsupported<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
    let engine = cluster.engine(leader)?;
    let absent = raftengine::Capabilities::ALL.without(engine.capabilities());
    let mut checked = Vec::new();
    let expect = |what: &str, answer: raftengine::Result<()>| -> Result<(), Failure> {
        match answer {
            Err(err) if err.kind() == &ErrorKind::Unsupported => Ok(()),
            other => Err(Failure::new(format!(
                "{what} is not a declared capability, yet it answered {other:?}, not Unsupported"
            ))),
        }
    };
    if absent.leadership_transfer {
        let answer = cluster
            .bounded("transfer_leadership", engine.transfer_leadership(None))
            .await?;
        expect("transfer_leadership", answer.map(|_| ()))?;
        checked.push("leadership_transfer");
    }
    if absent.membership_change {
        let answer = cluster
            .bounded("add_learner", engine.add_learner(99))
            .await?;
        expect("add_learner", answer.map(|_| ()))?;
        let answer = cluster
            .bounded("promote_learner", engine.promote_learner(99))
            .await?;
        expect("promote_learner", answer.map(|_| ()))?;
        let answer = cluster
            .bounded("remove_node", engine.remove_node(99))
            .await?;
        expect("remove_node", answer.map(|_| ()))?;
        checked.push("membership_change");
    }
    if absent.snapshots {
        let answer = cluster.bounded("snapshot", engine.snapshot()).await?;
        expect("snapshot", answer.map(|_| ()))?;
        checked.push("snapshots");
    }
    if absent.quorum_ack {
        cluster
            .put(leader, 1, 1)
            .await?
            .map_err(|err| Failure::new(format!("a normal write failed: {err}")))?;
        ensure!(
            engine.quorum_ack().is_none(),
            "quorum_ack is not a declared capability, yet it reported an acknowledgement"
        );
        checked.push("quorum_ack");
    }
    println!(
        "{}: unsupported operations checked: {checked:?} (declared: {:?})",
        B::NAME,
        engine.capabilities().names()
    );
    cluster.shutdown().await
}

/// `shutdown` fails every waiting call with `Shutdown` (here a proposal that cannot commit,
/// the leader being cut off), fires leader loss once with cause `Shutdown`, and is idempotent:
/// a second call returns `Ok` and fires nothing more.
pub async fn shutdown_fails_waiters_and_is_idempotent<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let leader = leader_after_a_write(&cluster).await?;
    let engine = cluster.engine(leader)?;
    let causes = Arc::new(Mutex::new(Vec::new()));
    let _subscription = {
        let causes = Arc::clone(&causes);
        engine.on_leader_loss(Box::new(move |loss| {
            causes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(loss.cause);
        }))
    };
    cluster.isolate(leader);
    let before = engine.status().last_log_index;
    let pending = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            engine
                .propose(Command::Put { key: 2, value: 2 }.encode())
                .await
        })
    };
    // Shut down only once the proposal waits inside the engine, not still on its way in.
    cluster
        .wait_until(
            "the cut-off leader appends the proposal",
            cluster.election_wait(),
            |_| engine.status().last_log_index > before,
        )
        .await?;
    let first = cluster
        .bounded(format!("shutdown of node {leader}"), engine.shutdown())
        .await?;
    ensure!(first.is_ok(), "shutdown answered {first:?}");
    let second = cluster
        .bounded(
            format!("second shutdown of node {leader}"),
            engine.shutdown(),
        )
        .await?;
    ensure!(second.is_ok(), "a second shutdown answered {second:?}");
    let answer = cluster
        .bounded("the proposal waiting at shutdown", pending)
        .await?
        .map_err(|err| Failure::new(format!("the proposal task panicked: {err}")))?;
    match &answer {
        Err(err) if *err.kind() == ErrorKind::Shutdown => {}
        other => fail!("a proposal waiting when shutdown started answered {other:?}, not Shutdown"),
    }
    ensure!(
        engine.status().role == Role::Shutdown,
        "status after shutdown: {:?}",
        engine.status().role
    );
    let causes = causes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    ensure!(
        causes == [LossCause::Shutdown],
        "leader loss should fire once, with Shutdown; it fired {causes:?}"
    );
    cluster.heal();
    cluster.shutdown().await
}

/// A follower whose engine is dropped without `shutdown` and started again at once, on the
/// same store and network address, rejoins: the new engine receives its peers' messages (what
/// is left of the dropped one must not keep serving the address) and catches up.
pub async fn restart_right_after_drop_rejoins<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let wait = cluster.election_wait();
    let leader = leader_after_a_write(&cluster).await?;
    let follower = cluster.others(leader)[0];
    cluster.abandon(follower)?;
    cluster.restart(follower).await?;
    let version = cluster
        .put(leader, 1, 2)
        .await?
        .map_err(|err| Failure::new(format!("a write after the restart failed: {err}")))?;
    let sm = cluster.state_machine(follower)?;
    cluster
        .wait_until("the restarted follower applies the new write", wait, |_| {
            sm.read(|sm| sm.get(1))
                .is_some_and(|v| v.version >= version)
        })
        .await?;
    cluster.wait_converged(wait).await?;
    cluster.shutdown().await
}

/// Waits for a leader and writes key 1 through it: the cluster works before the case begins.
async fn leader_after_a_write<B: Backend>(cluster: &Cluster<B>) -> Result<NodeId, Failure> {
    let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
    cluster
        .put(leader, 1, 1)
        .await?
        .map_err(|err| Failure::new(format!("a normal write failed: {err}")))?;
    Ok(leader)
}

/// Records whether leader loss fires with cause `Fatal` on `engine`.
fn watch_fatal_loss(engine: &Arc<dyn Engine>) -> (Arc<AtomicBool>, Subscription) {
    let fatal = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&fatal);
    let subscription = engine.on_leader_loss(Box::new(move |loss| {
        if loss.cause == LossCause::Fatal {
            seen.store(true, Ordering::SeqCst);
        }
    }));
    (fatal, subscription)
}

/// After a fatal failure: the status turns to `Shutdown`, leader loss fired with `Fatal`, and a
/// later call fails at once with `Fatal`.
async fn stopped_for_good<B: Backend>(
    cluster: &Cluster<B>,
    engine: &Arc<dyn Engine>,
    fatal: &AtomicBool,
) -> Result<(), Failure> {
    cluster
        .wait_until(
            "the status shows the engine stopped",
            cluster.call_limit(),
            |_| engine.status().role == Role::Shutdown,
        )
        .await?;
    ensure!(
        fatal.load(Ordering::SeqCst),
        "leader loss did not fire with cause Fatal"
    );
    let later = cluster
        .bounded(
            "propose after the fatal failure",
            engine.propose(Command::Put { key: 99, value: 99 }.encode()),
        )
        .await?;
    ensure!(
        matches!(&later, Err(err) if err.kind() == &ErrorKind::Fatal),
        "a call after the fatal failure answered {later:?}, not Fatal"
    );
    Ok(())
}

/// `watch_leadership` is quiet while only the log moves, and sees a change of leader: a lease
/// layer watches it, so writes must not wake the watcher, and a new term must.
pub async fn leadership_watch_ignores_log_progress<B: Backend>(
    h: &Harness<B>,
) -> Result<(), Failure> {
    let cluster = h.cluster(3).await?;
    let (leader, _) = cluster
        .put_via_leader(1, 1, cluster.election_wait())
        .await?;
    // Let the first write's commit reach every follower before watching.
    tokio::time::sleep(cluster.config().heartbeat_interval * 3).await;
    let mut watches = Vec::new();
    for id in cluster.ids() {
        let engine = cluster.engine(id)?;
        let mut leadership = engine.watch_leadership();
        leadership.borrow_and_update();
        let mut all = engine.watch_status();
        all.borrow_and_update();
        watches.push((id, leadership, all));
    }
    for value in 0..20 {
        cluster
            .put(leader, 1, 100 + value)
            .await?
            .map_err(|err| Failure::new(format!("write {value} on leader {leader}: {err}")))?;
    }
    tokio::time::sleep(cluster.config().heartbeat_interval * 3).await;
    for (id, leadership, all) in &watches {
        ensure!(
            all.has_changed().unwrap_or(false),
            "node {id}: watch_status saw none of 20 writes"
        );
        ensure!(
            !leadership.has_changed().unwrap_or(true),
            "node {id}: watch_leadership changed while only the log moved: {:?}",
            *leadership.borrow()
        );
    }
    let term = cluster.engine(leader)?.status().term;
    cluster.crash(leader).await?;
    let new = cluster.wait_for_leader(cluster.election_wait()).await?;
    let engine = cluster.engine(new)?;
    let (_, leadership, _) = watches
        .iter_mut()
        .find(|(id, _, _)| *id == new)
        .ok_or_else(|| Failure::new(format!("no watch for node {new}")))?;
    let seen = leadership.borrow_and_update().clone();
    let now = engine.status();
    ensure!(
        seen.term > term && seen.term == now.term && seen.role == Role::Leader,
        "node {new} leads term {} (after term {term}), but its watch_leadership shows {seen:?}",
        now.term
    );
    cluster.shutdown().await
}
