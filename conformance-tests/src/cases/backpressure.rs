//! Back-pressure: a leader that cannot commit as fast as it is asked answers `Busy`, and its
//! backlog of uncommitted entries stays within `Config::max_uncommitted_bytes`, even when the
//! callers give up waiting long before their entries commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use raftengine::ErrorKind;
use raftengine::sim::LinkFaults;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::ensure;
use crate::harness::{Backend, ClusterSpec, Failure, Harness};
use crate::sm::Command;

const MS: Duration = Duration::from_millis(1);

/// Every link delays by 100 ms, so a commit takes at least 200 ms, while each proposal's
/// caller waits only 30 ms. Four proposals a millisecond for 600 ms: the uncommitted backlog
/// on the leader (last log index minus commit index) must stay within the byte budget, and the
/// excess must be refused with `Busy`.
pub async fn flooding_a_slow_leader_gets_busy<B: Backend>(h: &Harness<B>) -> Result<(), Failure> {
    const BUDGET: usize = 4 << 10;
    let spec = ClusterSpec::new(3).with_config(|config| {
        config.request_timeout = 30 * MS;
        config.max_command_bytes = 1 << 10;
        config.max_uncommitted_bytes = BUDGET;
    });
    let cluster = h.cluster_with(spec, h.seed()).await?;
    let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
    cluster
        .put_via_leader(0, 1, cluster.election_wait())
        .await?;
    cluster.net().set_default_faults(LinkFaults {
        delay: 100 * MS,
        ..LinkFaults::default()
    });
    let engine = cluster.engine(leader)?;
    let command_len = Command::Put { key: 1, value: 1 }.encode().len();
    let (busy, other_errors, ok) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut peak_backlog = 0u64;
    let mut tasks = JoinSet::new();
    let started = Instant::now();
    let mut value = 1;
    while started.elapsed() < 600 * MS {
        for _ in 0..4 {
            value += 1;
            let (engine, busy, other_errors, ok) = (
                engine.clone(),
                Arc::clone(&busy),
                Arc::clone(&other_errors),
                Arc::clone(&ok),
            );
            let command = Command::Put {
                key: value % 16,
                value,
            };
            tasks.spawn(async move {
                match engine.propose(command.encode()).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(err) if err.kind() == &ErrorKind::Busy => {
                        busy.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(_) => other_errors.fetch_add(1, Ordering::Relaxed),
                };
            });
        }
        let status = engine.status();
        peak_backlog = peak_backlog.max(status.last_log_index.saturating_sub(status.commit_index));
        tokio::time::sleep(MS).await;
    }
    cluster.net().set_default_faults(LinkFaults::default());
    while tasks.join_next().await.is_some() {}
    let (busy, other_errors, ok) = (
        busy.load(Ordering::Relaxed),
        other_errors.load(Ordering::Relaxed),
        ok.load(Ordering::Relaxed),
    );
    // Entries the budget admits, plus a few the engine adds itself (no-ops, membership).
    let bound = (BUDGET / command_len) as u64 + 8;
    println!(
        "{}: flood of {} proposals: {ok} applied in time, {busy} Busy, {other_errors} other \
         errors; peak uncommitted backlog {peak_backlog} entries (budget admits {bound})",
        B::NAME,
        value - 1
    );
    ensure!(
        peak_backlog <= bound,
        "the leader's uncommitted backlog reached {peak_backlog} entries of {command_len} bytes, \
         beyond a budget of {BUDGET} bytes"
    );
    ensure!(busy > 0, "a flood far beyond the budget got no Busy answer");
    cluster.shutdown().await
}
