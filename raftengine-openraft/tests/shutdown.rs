//! openraft's shutdown watchdog: shutdown returns within its grace period even when the log
//! store or the user's state machine is stuck, on the conformance suite's harness. The stalls
//! block real threads, so these run on two worker threads and the real clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use conformance_tests::harness::{CaseRuntime, run_case_on};
use conformance_tests::sm::Command;
use conformance_tests::{Backend, BoxFuture, Failure, TestSm, ensure};
use raftengine::{
    Capabilities, Engine, EngineParts, ErrorKind, LogEntry, LogState, LogStore, Role,
    SharedStateMachine, StartEngine, StateMachine, StoredSnapshot,
};
use raftengine_openraft::OpenraftEngine;
use tokio::time::Instant;

/// Makes a call block, once armed, until released (or a minute passes): a dead disk.
#[derive(Debug, Clone, Default)]
struct Stall {
    armed: Arc<AtomicBool>,
    entered: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl Stall {
    fn block(&self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        self.entered.store(true, Ordering::SeqCst);
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while !self.release.load(Ordering::SeqCst) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The harness's state machine, whose `apply` stalls when armed.
#[derive(Debug)]
struct StallingSm {
    inner: SharedStateMachine<TestSm>,
    stall: Stall,
}

impl StateMachine for StallingSm {
    fn apply(&mut self, index: u64, term: u64, command: &[u8]) -> Bytes {
        self.stall.block();
        self.inner.lock().apply(index, term, command)
    }

    fn snapshot(&self) -> Bytes {
        self.inner.lock().snapshot()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.inner.lock().restore(snapshot)
    }
}

/// The harness's log store, whose appends stall when armed.
#[derive(Debug)]
struct StallingStore {
    inner: Arc<dyn LogStore>,
    stall: Stall,
}

impl LogStore for StallingStore {
    fn append(&self, entries: &[LogEntry]) -> raftengine::Result<()> {
        self.stall.block();
        self.inner.append(entries)
    }
    fn truncate_from(&self, index: u64) -> raftengine::Result<()> {
        self.inner.truncate_from(index)
    }
    fn purge_to(&self, index: u64, term: u64) -> raftengine::Result<()> {
        self.inner.purge_to(index, term)
    }
    fn entries(&self, from: u64, to: u64) -> raftengine::Result<Vec<LogEntry>> {
        self.inner.entries(from, to)
    }
    fn term(&self, index: u64) -> raftengine::Result<Option<u64>> {
        self.inner.term(index)
    }
    fn log_state(&self) -> raftengine::Result<LogState> {
        self.inner.log_state()
    }
    fn save_hard_state(&self, state: Bytes) -> raftengine::Result<()> {
        self.inner.save_hard_state(state)
    }
    fn hard_state(&self) -> raftengine::Result<Option<Bytes>> {
        self.inner.hard_state()
    }
    fn save_snapshot(&self, snapshot: StoredSnapshot) -> raftengine::Result<()> {
        self.inner.save_snapshot(snapshot)
    }
    fn install_snapshot(&self, snapshot: StoredSnapshot) -> raftengine::Result<()> {
        self.inner.install_snapshot(snapshot)
    }
    fn snapshot(&self) -> raftengine::Result<Option<StoredSnapshot>> {
        self.inner.snapshot()
    }
}

/// Which part of a node stalls.
#[derive(Debug, Clone, Copy)]
enum Stuck {
    Store,
    Apply,
}

/// openraft engines whose store or state machine stalls on [`Stall`].
#[derive(Debug)]
struct Stalling {
    stuck: Stuck,
    stall: Stall,
}

impl Backend for Stalling {
    const NAME: &'static str = "openraft-stalling";

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn start(
        &self,
        parts: EngineParts<TestSm>,
    ) -> BoxFuture<'static, raftengine::Result<Arc<dyn Engine>>> {
        let stall = self.stall.clone();
        let stuck = self.stuck;
        Box::pin(async move {
            let mut store = parts.store;
            if let Stuck::Store = stuck {
                store = Arc::new(StallingStore {
                    inner: store,
                    stall: stall.clone(),
                });
            }
            let state_machine = SharedStateMachine::new(StallingSm {
                inner: parts.state_machine,
                stall: match stuck {
                    Stuck::Apply => stall,
                    Stuck::Store => Stall::default(),
                },
            });
            let parts = EngineParts::new(parts.config, state_machine, store, parts.transport)
                .with_clock(parts.clock);
            Ok(Arc::new(OpenraftEngine::start(parts).await?) as Arc<dyn Engine>)
        })
    }
}

/// On a single voter: arms the stall, proposes, waits until the stall is entered, and shuts the
/// engine down, then releases the stall. Shutdown must return within 8 s (its grace period
/// and some), leave the status at `Shutdown`, and answer `Timeout`, or `Ok` when `may_succeed`
/// (the stuck call was abandoned without holding shutdown up).
fn shutdown_while_stuck(case: &'static str, stuck: Stuck, may_succeed: bool) {
    let stall = Stall::default();
    let backend = Stalling {
        stuck,
        stall: stall.clone(),
    };
    run_case_on(
        CaseRuntime::MultiThread,
        case,
        Capabilities::NONE,
        backend,
        |h| async move {
            let cluster = h.cluster(1).await?;
            let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
            let engine = cluster.engine(leader)?;
            stall.armed.store(true, Ordering::SeqCst);
            let stuck_call = {
                let engine = Arc::clone(&engine);
                tokio::spawn(async move {
                    engine
                        .propose(Command::Put { key: 1, value: 1 }.encode())
                        .await
                })
            };
            cluster
                .wait_until("the stall starts", Duration::from_secs(10), |_| {
                    stall.entered.load(Ordering::SeqCst)
                })
                .await?;
            let started = Instant::now();
            let shutdown = tokio::time::timeout(Duration::from_secs(20), engine.shutdown()).await;
            let took = started.elapsed();
            let role = engine.status().role;
            stall.release.store(true, Ordering::SeqCst);
            let _ = tokio::time::timeout(Duration::from_secs(10), stuck_call).await;
            let Ok(shutdown) = shutdown else {
                return Err(Failure::new("shutdown did not return within 20 s"));
            };
            ensure!(
                took < Duration::from_secs(8),
                "shutdown took {took:?} ({shutdown:?})"
            );
            ensure!(role == Role::Shutdown, "status after shutdown: {role:?}");
            let timed_out = matches!(&shutdown, Err(err) if err.kind() == &ErrorKind::Timeout);
            ensure!(
                timed_out || (may_succeed && shutdown.is_ok()),
                "shutdown with a stuck {stuck:?} answered {shutdown:?}"
            );
            Ok(())
        },
    );
}

/// The stuck append waits on the log writer thread, not on openraft's core, so shutdown may
/// end promptly (a vote, truncation or purge queued behind it would wait for the grace period).
#[test]
fn shutdown_returns_within_its_grace_period_while_the_store_is_stuck() {
    shutdown_while_stuck(
        "shutdown_returns_within_its_grace_period_while_the_store_is_stuck",
        Stuck::Store,
        true,
    );
}

/// openraft applies on its own task, so a stuck `apply` does not hold the core: shutdown ends
/// promptly (the stuck apply is abandoned) and may say so by succeeding.
#[test]
fn shutdown_returns_while_apply_is_stuck() {
    shutdown_while_stuck("shutdown_returns_while_apply_is_stuck", Stuck::Apply, true);
}
