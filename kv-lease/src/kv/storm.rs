//! The seed bug's acceptance workload, reusable on any engine: conditional writes of which
//! about half conflict, interleaved with lease reads, reporting the hit rate and the quorum
//! rounds the reads cost.

use std::time::Duration;

use bytes::Bytes;
use raftengine::{Error, RejectReason, Result};

use super::command::KvResponse;
use super::store::KvStore;
use crate::metrics::{InvalidationCause, ReadPath};

/// Shape of a conflict storm.
#[derive(Debug, Clone, PartialEq)]
pub struct StormConfig {
    /// Conditional writes to issue; every other one names a stale expected value.
    pub writes: u64,
    /// Lease reads after each write.
    pub reads_per_write: u32,
    /// Pause after each write and its reads (virtual time in paused tests).
    pub pause: Duration,
    /// Emulate the seed bug: invalidate the lease on every conflict, as a layer that treats
    /// every failed write as leadership loss would. Only for showing the test can see the bug.
    pub invalidate_on_conflict: bool,
}

impl Default for StormConfig {
    fn default() -> Self {
        Self {
            writes: 1_000,
            reads_per_write: 4,
            pause: Duration::from_millis(5),
            invalidate_on_conflict: false,
        }
    }
}

/// What a storm measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StormReport {
    /// Conditional writes issued.
    pub writes: u64,
    /// Of those, the ones answered with a conflict.
    pub conflicts: u64,
    /// Lease reads issued.
    pub reads: u64,
    /// Reads served on the fast path.
    pub fast_reads: u64,
    /// `linearizable_read()` rounds the lease ran during the storm.
    pub quorum_rounds: u64,
    /// Reads whose value was not the last value written (must be 0 on a single client).
    pub stale_reads: u64,
}

impl StormReport {
    /// Fast reads over all reads.
    pub fn hit_rate(&self) -> f64 {
        if self.reads == 0 {
            1.0
        } else {
            self.fast_reads as f64 / self.reads as f64
        }
    }
}

/// Runs a conflict storm on `key` through `kv` (which must be on the leader). The key is first
/// set to `"0"`; a successful CAS increments it. Reads check they see the latest value.
pub async fn conflict_storm(kv: &KvStore, key: &[u8], config: &StormConfig) -> Result<StormReport> {
    let key = Bytes::copy_from_slice(key);
    kv.put(key.clone(), "0").await?;
    let before = kv.lease().stats();
    let mut report = StormReport::default();
    let mut current = 0u64;
    for i in 0..config.writes {
        let expected = if i % 2 == 0 {
            current
        } else {
            current + 1_000_000
        };
        let response = kv
            .cas(
                key.clone(),
                Some(Bytes::from(expected.to_string())),
                Some(Bytes::from((current + 1).to_string())),
            )
            .await?;
        report.writes += 1;
        match response {
            KvResponse::Done { .. } => current += 1,
            KvResponse::Conflict { .. } => {
                report.conflicts += 1;
                if config.invalidate_on_conflict {
                    kv.lease().invalidate(InvalidationCause::LeadershipLost);
                }
            }
            other => {
                return Err(Error::rejected(RejectReason::MalformedMessage)
                    .with_context(format!("unexpected CAS response {other:?}")));
            }
        }
        let want = Some(Bytes::from(current.to_string()));
        for _ in 0..config.reads_per_write {
            let read = kv.get(&key).await?;
            report.reads += 1;
            if read.path == ReadPath::Fast {
                report.fast_reads += 1;
            }
            if read.value != want {
                report.stale_reads += 1;
            }
        }
        if !config.pause.is_zero() {
            tokio::time::sleep(config.pause).await;
        }
    }
    report.quorum_rounds = kv.lease().stats().since(&before).slow_rounds;
    Ok(report)
}
