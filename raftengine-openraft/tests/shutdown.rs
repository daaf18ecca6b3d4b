//! Shutdown is bounded even when the log store or the user's state machine is stuck.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftengine::sim::MemNetwork;
use raftengine::{
    Config, Engine, ErrorKind, LogEntry, LogState, LogStore, MemLogStore, Role, SharedStateMachine,
    StateMachine, StoredSnapshot,
};
use raftengine_openraft::OpenraftEngine;

/// Blocks inside `apply` of a command `b"stall"` until released, like a state machine waiting
/// on a dead disk.
#[derive(Debug, Clone, Default)]
struct Stalling {
    entered: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl StateMachine for Stalling {
    fn apply(&mut self, _index: u64, _term: u64, command: &[u8]) -> Bytes {
        if command == b"stall" {
            self.entered.store(true, Ordering::SeqCst);
            let until = Instant::now() + Duration::from_secs(60);
            while !self.release.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Bytes::new()
    }

    fn snapshot(&self) -> Bytes {
        Bytes::new()
    }

    fn restore(&mut self, _snapshot: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// A log store whose appends block, once armed, until released: a dead disk.
#[derive(Debug, Clone, Default)]
struct StallingStore {
    inner: MemLogStore,
    armed: Arc<AtomicBool>,
    entered: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl StallingStore {
    fn stall(&self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        self.entered.store(true, Ordering::SeqCst);
        let until = Instant::now() + Duration::from_secs(60);
        while !self.release.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl LogStore for StallingStore {
    fn append(&self, entries: &[LogEntry]) -> raftengine::Result<()> {
        self.stall();
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

/// What a shutdown during a stuck write did.
struct Stuck {
    shutdown: raftengine::Result<()>,
    took: Duration,
    role: Role,
}

/// Starts a single-voter engine on `store` and `sm`, arms the stall, proposes `command`, waits
/// until the stall is entered, and shuts the engine down (bounded by 20 s), then releases it.
fn shutdown_while_stuck(
    store: Arc<dyn LogStore>,
    sm: Stalling,
    arm: Arc<AtomicBool>,
    entered: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
    command: &'static [u8],
) -> Stuck {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(async move {
        let network = MemNetwork::new(7);
        let engine = OpenraftEngine::start(
            Config::new(1, [1]),
            SharedStateMachine::new(sm),
            store,
            Arc::new(network.transport(1)),
        )
        .await
        .expect("start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while engine.status().role != Role::Leader {
            assert!(
                Instant::now() < deadline,
                "no leader: {:?}",
                engine.status()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        arm.store(true, Ordering::SeqCst);
        let stuck = {
            let engine = engine.clone();
            tokio::spawn(async move { engine.propose(Bytes::from_static(command)).await })
        };
        while !entered.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the stall never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        let shutdown = tokio::time::timeout(Duration::from_secs(20), engine.shutdown()).await;
        let took = started.elapsed();
        let role = engine.status().role;
        release.store(true, Ordering::SeqCst);
        let _ = tokio::time::timeout(Duration::from_secs(10), stuck).await;
        (shutdown, took, role)
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    let (shutdown, took, role) = outcome;
    Stuck {
        shutdown: shutdown.unwrap_or_else(|_| panic!("shutdown did not return within 20 s")),
        took,
        role,
    }
}

#[test]
fn shutdown_returns_within_its_grace_period_while_the_store_is_stuck() {
    let store = StallingStore::default();
    let (armed, entered, release) = (
        Arc::clone(&store.armed),
        Arc::clone(&store.entered),
        Arc::clone(&store.release),
    );
    let stuck = shutdown_while_stuck(
        Arc::new(store),
        Stalling::default(),
        armed,
        entered,
        release,
        b"x",
    );
    assert!(
        stuck.took < Duration::from_secs(8),
        "shutdown took {:?}",
        stuck.took
    );
    assert_eq!(stuck.shutdown.unwrap_err().kind(), &ErrorKind::Timeout);
    assert_eq!(stuck.role, Role::Shutdown);
}

/// openraft applies on its own task, so a stuck `apply` does not hold the core: shutdown ends
/// promptly (the stuck apply is abandoned) and says so by succeeding.
#[test]
fn shutdown_returns_while_apply_is_stuck() {
    let sm = Stalling::default();
    let (entered, release) = (Arc::clone(&sm.entered), Arc::clone(&sm.release));
    let stuck = shutdown_while_stuck(
        Arc::new(MemLogStore::new()),
        sm,
        Arc::new(AtomicBool::new(true)),
        entered,
        release,
        b"stall",
    );
    assert!(
        stuck.took < Duration::from_secs(8),
        "shutdown took {:?}",
        stuck.took
    );
    assert!(
        stuck.shutdown.is_ok()
            || stuck.shutdown.as_ref().unwrap_err().kind() == &ErrorKind::Timeout,
        "{:?}",
        stuck.shutdown
    );
    assert_eq!(stuck.role, Role::Shutdown);
}
