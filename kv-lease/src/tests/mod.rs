//! Rule-by-rule tests of the lease layer on the scripted mock engine, in virtual time
//! (`start_paused`): no real sleeps, no real Raft.

use std::sync::Arc;
use std::time::Duration;

use raftengine::{Engine, ErrorKind};
use tokio::time::Instant;

use crate::testing::MockEngine;
use crate::{Lease, LeaseConfig, MissReason, ReadPath};

mod background;
mod dispatch;
mod kv_store;
mod metrics_facade;
mod model;
mod reads;
mod shards;
mod transfer;

const MS: Duration = Duration::from_millis(1);
/// The lease the mock's default timing yields: 300 ms − 1% − 50 ms.
const LEASE: Duration = Duration::from_millis(247);

fn quiet() -> LeaseConfig {
    LeaseConfig {
        background: false,
        ..LeaseConfig::default()
    }
}

/// A leader of term 1 (first entry applied) and a lease over it without a background task.
fn leader() -> (Arc<MockEngine>, Lease) {
    let engine = MockEngine::new(1);
    engine.make_leader(1);
    let lease = Lease::new(engine.clone() as Arc<dyn Engine>, quiet()).unwrap();
    (engine, lease)
}

/// Reads once (slow path, grants the lease) and checks the next read is fast.
async fn warm(lease: &Lease) {
    lease.read(|| ()).await.unwrap();
    assert_eq!(lease.read(|| ()).await.unwrap().path, ReadPath::Fast);
}

async fn path(lease: &Lease) -> ReadPath {
    lease.read(|| ()).await.unwrap().path
}

fn now() -> Instant {
    Instant::now()
}

fn kind_of(result: raftengine::Result<ReadPath>) -> ErrorKind {
    result.unwrap_err().kind().clone()
}

fn miss(lease: &Lease, reason: MissReason) -> u64 {
    lease.stats().misses_for(reason)
}
