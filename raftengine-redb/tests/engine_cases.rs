//! The engine conformance cases about crashes and restarts, on `RedbLogStore` files instead of
//! the in-memory store: every start of a node reopens its file, so a restart reads only what the
//! crashed engine made durable.

use std::sync::Arc;
use std::time::Duration;

use conformance_tests::cases;
use conformance_tests::harness::{CaseRuntime, run_case_on};
use conformance_tests::{Backend, BoxFuture, TestSm};
use raftengine::{Capabilities, Engine, EngineParts, LogStore, StartEngine};
use raftengine_redb::RedbLogStore;

/// Which engine a [`OnRedb`] backend starts.
#[derive(Debug, Clone, Copy)]
enum Lib {
    Openraft,
    RaftRs,
}

/// A backend whose nodes keep their logs in one redb file each, in a directory of the case.
#[derive(Debug)]
struct OnRedb {
    lib: Lib,
    dir: tempfile::TempDir,
}

impl OnRedb {
    fn new(lib: Lib) -> Self {
        Self {
            lib,
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }
}

/// Opens a node's file. The engine that used it before has shut down, but its last tasks may
/// drop their handles a moment later; the file is free again once they have.
async fn open_store(path: std::path::PathBuf) -> raftengine::Result<Arc<dyn LogStore>> {
    let mut attempts = 0;
    loop {
        match RedbLogStore::open(&path) {
            Ok(file) => return Ok(Arc::new(file.group(1))),
            Err(_) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

impl Backend for OnRedb {
    const NAME: &'static str = "on-redb";

    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    fn start(
        &self,
        mut parts: EngineParts<TestSm>,
    ) -> BoxFuture<'static, raftengine::Result<Arc<dyn Engine>>> {
        // The harness derives each node's seed from its cluster's: one file per node of each
        // cluster, and a restarted node (same config) finds its own file again.
        let path = self.dir.path().join(format!(
            "node-{}-{:x}.redb",
            parts.config.node_id, parts.config.seed
        ));
        let lib = self.lib;
        Box::pin(async move {
            // The harness's in-memory store is replaced by this node's file.
            parts.store = open_store(path).await?;
            Ok(match lib {
                Lib::Openraft => Arc::new(raftengine_openraft::OpenraftEngine::start(parts).await?)
                    as Arc<dyn Engine>,
                Lib::RaftRs => Arc::new(raftengine_raftrs::RaftRsEngine::start(parts).await?)
                    as Arc<dyn Engine>,
            })
        })
    }
}

macro_rules! on_redb {
    ($($test:ident: $lib:ident => $case:ident $(, $runtime:ident)?;)*) => {
        $(
            #[test]
            fn $test() {
                run_case_on(
                    on_redb!(@runtime $($runtime)?),
                    stringify!($case),
                    Capabilities::NONE,
                    OnRedb::new(Lib::$lib),
                    |h| async move { cases::$case(&h).await },
                );
            }
        )*
    };
    (@runtime) => { CaseRuntime::Paused };
    (@runtime $runtime:ident) => { CaseRuntime::$runtime };
}

on_redb! {
    openraft_crash_restart_keeps_acked_writes: Openraft => crash_restart_keeps_acked_writes;
    raftrs_crash_restart_keeps_acked_writes: RaftRs => crash_restart_keeps_acked_writes;
    openraft_dropped_engine_stops_like_a_crash: Openraft => dropped_engine_stops_like_a_crash;
    raftrs_dropped_engine_stops_like_a_crash: RaftRs => dropped_engine_stops_like_a_crash;
    openraft_random_crashes: Openraft => random_crashes;
    raftrs_random_crashes: RaftRs => random_crashes;
}

// On worker threads and the real clock, a store that may block is written from the engines'
// own writer threads (appends readable from memory until durable), not inline.
on_redb! {
    openraft_crash_restart_keeps_acked_writes_on_worker_threads:
        Openraft => crash_restart_keeps_acked_writes, MultiThread;
    raftrs_crash_restart_keeps_acked_writes_on_worker_threads:
        RaftRs => crash_restart_keeps_acked_writes, MultiThread;
    openraft_dropped_engine_stops_like_a_crash_on_worker_threads:
        Openraft => dropped_engine_stops_like_a_crash, MultiThread;
    raftrs_dropped_engine_stops_like_a_crash_on_worker_threads:
        RaftRs => dropped_engine_stops_like_a_crash, MultiThread;
}
