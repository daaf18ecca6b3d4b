//! The lease fast path against a linearizable read with a simulated 1 ms round trip.
//!
//! `cargo bench -p kv-lease --bench lease`. Targets: the fast
//! path under 1 µs, and at least 100× faster than the 1 ms-RTT linearizable read.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use kv_lease::{Lease, LeaseConfig};
use raftengine::adapter::LeadershipTracker;
use raftengine::{
    Applied, Capabilities, Clock, Engine, Error, ErrorKind, LeaderLossCallback, Membership, NodeId,
    QuorumAck, ReadIndex, Result, Role, SnapshotInfo, Status, Subscription, Timing, TokioClock,
};
use tokio::sync::watch;

/// A leader that never changes; `linearizable_read` sleeps for one simulated round trip.
struct BenchEngine {
    status: watch::Sender<Status>,
    tracker: LeadershipTracker,
    rtt: Duration,
}

impl BenchEngine {
    fn new(rtt: Duration) -> Arc<Self> {
        let status = Status {
            id: 1,
            role: Role::Leader,
            term: 1,
            leader: Some(1),
            commit_index: 1,
            applied_index: 1,
            applied_term: 1,
            last_log_index: 1,
            transferring_to: None,
            transfers_started: 0,
            transfer_term: None,
            membership: std::sync::Arc::new(Membership {
                voters: [1, 2, 3].into_iter().collect(),
                ..Membership::default()
            }),
        };
        Arc::new(Self {
            status: watch::Sender::new(status),
            tracker: LeadershipTracker::new(),
            rtt,
        })
    }
}

fn unsupported<T>() -> Result<T> {
    Err(Error::new(ErrorKind::Unsupported))
}

#[async_trait]
impl Engine for BenchEngine {
    fn id(&self) -> NodeId {
        1
    }
    fn status(&self) -> Status {
        self.status.borrow().clone()
    }
    fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(TokioClock)
    }
    async fn propose(&self, _command: Bytes) -> Result<Applied> {
        unsupported()
    }
    async fn linearizable_read(&self) -> Result<ReadIndex> {
        tokio::time::sleep(self.rtt).await;
        Ok(ReadIndex { index: 1, term: 1 })
    }
    fn on_leader_loss(&self, callback: LeaderLossCallback) -> Subscription {
        self.tracker.subscribe(callback)
    }
    fn timing(&self) -> Timing {
        Timing {
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(600),
            vote_refusal_window: Duration::from_millis(300),
            max_clock_drift: 0.01,
        }
    }
    fn quorum_ack(&self) -> Option<QuorumAck> {
        Some(QuorumAck {
            term: 1,
            sent_at: tokio::time::Instant::now(),
        })
    }
    async fn transfer_leadership(&self, _target: Option<NodeId>) -> Result<NodeId> {
        unsupported()
    }
    async fn add_learner(&self, _id: NodeId) -> Result<Membership> {
        unsupported()
    }
    async fn promote_learner(&self, _id: NodeId) -> Result<Membership> {
        unsupported()
    }
    async fn remove_node(&self, _id: NodeId) -> Result<Membership> {
        unsupported()
    }
    async fn snapshot(&self) -> Result<SnapshotInfo> {
        unsupported()
    }
    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::QUORUM_ACK
    }
}

fn lease_reads(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let engine = BenchEngine::new(Duration::from_millis(1));
    let config = LeaseConfig {
        background: false,
        ..LeaseConfig::default()
    };
    let lease = Lease::new(engine as Arc<dyn Engine>, config).expect("lease");
    let map: Arc<Mutex<BTreeMap<u64, u64>>> =
        Arc::new(Mutex::new((0..1_000).map(|i| (i, i * 2)).collect()));
    runtime.block_on(async {
        lease.read(|| ()).await.expect("warm-up read");
    });

    c.bench_function("fast_path_check", |b| b.iter(|| black_box(lease.check())));
    c.bench_function("fast_path_read_map_lookup", |b| {
        b.iter(|| {
            let key = black_box(417u64);
            black_box(lease.try_read_fast(|| map.lock().expect("map").get(&key).copied()))
        })
    });
    c.bench_function("lease_read_async_fast", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let key = black_box(417u64);
                let outcome = lease
                    .read(|| map.lock().expect("map").get(&key).copied())
                    .await
                    .expect("read");
                black_box(outcome)
            })
        })
    });
    let mut slow = c.benchmark_group("slow");
    slow.sample_size(10);
    slow.measurement_time(Duration::from_secs(2));
    slow.bench_function("linearizable_read_1ms_rtt", |b| {
        b.iter(|| runtime.block_on(async { black_box(lease.linearizable_read().await) }))
    });
    slow.finish();
}

criterion_group!(benches, lease_reads);
criterion_main!(benches);
