//! Lease scenarios on both real backends (openraft and raft-rs), three nodes over `MemNetwork`
//! on tokio's paused clock. Each scenario is one async fn taking the [`Backend`]; the macro at
//! the bottom stamps it once per backend, so a failure reads `raftrs::restarted_node_...`.
//!
//! Scenarios (DESIGN "Lease reads", issue 5's acceptance scenario, issue 6's lease cases):
//! 1. a conflict storm keeps the lease warm (≥ 99% fast reads, quorum rounds not growing with
//!    reads), and the same storm with the seed bug (invalidate on every conflict) collapses;
//! 2. an old leader partitioned into the minority stops serving fast reads by its lease expiry,
//!    before any new leader exists, and never serves the old value afterwards;
//! 3. no fast read while a transfer runs;
//! 4. no fast read on a new leader before it applied an entry of its term;
//! 5. after an aborted transfer only an acknowledgement after the abort grants a lease;
//! 6. a restarted follower cannot help elect a leader inside a live lease;
//! 7. a process pause longer than the lease (links held; optionally the clock stopped too)
//!    does not yield a stale read.
//!
//! Run with `--nocapture` to see the measured hit rates and timings.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Backend, Cluster, Sentinel, eventually, within};
use kv_lease::kv::{KvResponse, KvStore};
use kv_lease::{InvalidationCause, MissReason, ReadPath};
use raftengine::{Clock, DriftClock, LinkFaults, NodeId, Role};
use tokio::time::Instant;

const MS: Duration = Duration::from_millis(1);
/// Pause of each storm reader between reads. With writes taking a 2 ms round trip plus a 1 ms
/// pause, the two writers issue roughly 0.5–0.7 writes (half of them conflicts) per ms and the
/// two readers about 0.5 reads per ms: a conflict comes about every other read, so with the
/// seed bug most reads find the lease freshly invalidated, as in the production incident.
const READ_PAUSE: Duration = Duration::from_millis(4);

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn value_of(bytes: &Option<Bytes>) -> u64 {
    let bytes = bytes.as_ref().expect("key is set");
    std::str::from_utf8(bytes)
        .expect("utf-8")
        .parse()
        .expect("a number")
}

/// Waits until `kv`'s lease serves a read on the fast path (a read that misses renews it).
async fn wait_fast_read(kv: &KvStore, key: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let read = within(Duration::from_secs(5), "lease read", kv.get(key)).await;
        if matches!(read, Ok(ref r) if r.path == ReadPath::Fast) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no fast read within 5 s: {read:?}"
        );
        tokio::time::sleep(10 * MS).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The acceptance scenario: a conflict storm keeps the lease warm; the seed bug collapses it.
// ---------------------------------------------------------------------------------------------

/// What one phase of the storm measured.
#[derive(Debug, Clone, Copy, Default)]
struct Phase {
    reads: u64,
    fast_reads: u64,
    stale_reads: u64,
    writes: u64,
    conflicts: u64,
    slow_rounds: u64,
}

impl Phase {
    fn hit_rate(&self) -> f64 {
        self.fast_reads as f64 / self.reads.max(1) as f64
    }

    fn conflict_rate(&self) -> f64 {
        self.conflicts as f64 / self.writes.max(1) as f64
    }
}

/// Two writers, each owning one key, issue compare-and-sets of which every other one names a
/// stale expected value (a write conflict), pausing 1 ms after each; two readers issue
/// `reads_per_reader` lease reads each of both keys on the leader, pausing [`READ_PAUSE`]. Every read
/// must see at least the newest value acknowledged before it started. With
/// `invalidate_on_conflict` the writers emulate the seed bug: every conflict invalidates the
/// lease, as a layer that treated every failed write as leadership loss would.
async fn storm_phase(
    kv: &KvStore,
    keys: &[Bytes; 2],
    acked: &Arc<[AtomicU64; 2]>,
    reads_per_reader: u64,
    invalidate_on_conflict: bool,
) -> Phase {
    let before = kv.lease().stats();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for (slot, key) in keys.iter().enumerate() {
        let (kv, key, acked, stop) = (kv.clone(), key.clone(), Arc::clone(acked), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) {
                i += 1;
                let current = value_of(&kv.state().read(|sm| sm.get(&key)));
                let expected = if i.is_multiple_of(2) {
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
                    .await
                    .expect("conditional write");
                phase.writes += 1;
                match response {
                    KvResponse::Done { .. } => {
                        acked[slot].fetch_max(current + 1, Ordering::AcqRel);
                    }
                    KvResponse::Conflict { .. } => {
                        phase.conflicts += 1;
                        if invalidate_on_conflict {
                            kv.lease().invalidate(InvalidationCause::LeadershipLost);
                        }
                    }
                    other => panic!("unexpected CAS response {other:?}"),
                }
                tokio::time::sleep(MS).await;
            }
            phase
        }));
    }
    let mut readers = Vec::new();
    for reader in 0..2u64 {
        let (kv, keys, acked) = (kv.clone(), keys.clone(), Arc::clone(acked));
        readers.push(tokio::spawn(async move {
            let mut phase = Phase::default();
            for i in 0..reads_per_reader {
                let slot = ((i + reader) % 2) as usize;
                let floor = acked[slot].load(Ordering::Acquire);
                let read = kv.get(&keys[slot]).await.expect("lease read");
                phase.reads += 1;
                if read.path == ReadPath::Fast {
                    phase.fast_reads += 1;
                }
                if value_of(&read.value) < floor {
                    phase.stale_reads += 1;
                }
                tokio::time::sleep(READ_PAUSE).await;
            }
            phase
        }));
    }
    let mut total = Phase::default();
    for reader in readers {
        let p = within(Duration::from_secs(60), "reader", reader)
            .await
            .expect("reader task");
        total.reads += p.reads;
        total.fast_reads += p.fast_reads;
        total.stale_reads += p.stale_reads;
    }
    stop.store(true, Ordering::Release);
    for writer in writers {
        let p = within(Duration::from_secs(10), "writer", writer)
            .await
            .expect("writer task");
        total.writes += p.writes;
        total.conflicts += p.conflicts;
    }
    total.slow_rounds = kv.lease().stats().since(&before).slow_rounds;
    total
}

/// Warm-up, then a phase of `n` reads and one of `4n` reads.
async fn storm(kv: &KvStore, prefix: &str, invalidate_on_conflict: bool) -> [Phase; 2] {
    let keys = [
        Bytes::from(format!("{prefix}-a")),
        Bytes::from(format!("{prefix}-b")),
    ];
    for key in &keys {
        kv.put(key.clone(), "0").await.expect("initial put");
    }
    let acked = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    // Warm-up: not measured.
    storm_phase(kv, &keys, &acked, 10, invalidate_on_conflict).await;
    let n = 50;
    let small = storm_phase(kv, &keys, &acked, n, invalidate_on_conflict).await;
    let large = storm_phase(kv, &keys, &acked, 4 * n, invalidate_on_conflict).await;
    [small, large]
}

async fn conflict_storm_keeps_lease_warm(backend: Backend) {
    let mut c = Cluster::start(backend, 101).await;
    // A round trip of 2 ms: writes and quorum rounds take time, as on a real network.
    c.net.set_default_faults(LinkFaults {
        delay: MS,
        ..LinkFaults::default()
    });
    let leader = c.wait_leader().await;
    let kv = c.kv(leader);
    let started = Instant::now();

    let fixed = storm(&kv, "fixed", false).await;
    let buggy = storm(&kv, "seed-bug", true).await;

    for (name, phases) in [("lease layer", &fixed), ("seed-bug config", &buggy)] {
        for (label, p) in ["N", "4N"].iter().zip(phases.iter()) {
            println!(
                "{backend:?} {name:>15} {label:>2}: {reads:4} reads, hit rate {hit:6.2}%, \
                 {rounds:3} quorum read rounds, {writes} writes ({conf:.0}% conflicts), \
                 {stale} stale",
                reads = p.reads,
                hit = p.hit_rate() * 100.0,
                rounds = p.slow_rounds,
                writes = p.writes,
                conf = p.conflict_rate() * 100.0,
                stale = p.stale_reads,
            );
        }
    }
    println!(
        "{backend:?} storm took {:.0} ms of virtual time",
        ms(started.elapsed())
    );

    for p in fixed.iter().chain(buggy.iter()) {
        assert_eq!(
            p.stale_reads, 0,
            "a lease read missed an acknowledged write"
        );
        assert!(
            (0.4..=0.6).contains(&p.conflict_rate()),
            "about half of the writes must conflict: {p:?}"
        );
    }
    let [small, large] = fixed;
    assert!(large.reads == 4 * small.reads, "{small:?} {large:?}");
    for p in &fixed {
        assert!(
            p.hit_rate() >= 0.99,
            "{backend:?}: hit rate {:.2}% under a conflict storm: {p:?}",
            p.hit_rate() * 100.0
        );
    }
    // Quorum read rounds do not grow with the number of reads: a small constant for both N
    // and 4N reads.
    assert!(
        small.slow_rounds <= 2 && large.slow_rounds <= 2,
        "{backend:?}: quorum rounds grow with reads: N → {}, 4N → {}",
        small.slow_rounds,
        large.slow_rounds
    );
    // The same workload with the seed bug: the test sees the collapse.
    for p in &buggy {
        assert!(
            p.hit_rate() < 0.6,
            "{backend:?}: the seed-bug configuration kept a {:.2}% hit rate; the scenario \
             cannot see the bug: {p:?}",
            p.hit_rate() * 100.0
        );
    }
    assert!(
        buggy[1].slow_rounds > 2 * buggy[0].slow_rounds,
        "{backend:?}: with the seed bug quorum rounds grow with reads: {buggy:?}"
    );
    c.shutdown_all().await;
}

// ---------------------------------------------------------------------------------------------
// 2. Old leader partitioned into the minority.
// ---------------------------------------------------------------------------------------------

async fn minority_leader_stops_fast_reads_before_a_new_leader(backend: Backend) {
    let mut c = Cluster::start(backend, 202).await;
    let old = c.wait_leader().await;
    let old_term = c.status(old).term;
    let (old_kv, old_lease) = (c.kv(old), c.lease(old));
    old_kv.put("k", "before").await.expect("put");
    wait_fast_read(&old_kv, b"k").await;
    let majority = c.others(old);
    let sentinel = Sentinel::watch(
        majority.iter().map(|id| c.engine(*id)).collect(),
        old_term,
        old_lease.clone(),
    );

    let parted = Instant::now();
    c.net.partition_groups(&[&[old], &majority]);
    let duration = old_lease.duration();
    let mut max_expiry = old_lease.state().expires_at();
    let mut stopped_at = None;
    loop {
        let now = Instant::now();
        max_expiry = max_expiry.max(old_lease.state().expires_at());
        match (old_lease.check(), stopped_at) {
            (Err(_), None) => stopped_at = Some(now),
            (Ok(()), Some(at)) => panic!(
                "{backend:?}: the old leader's fast path resumed at +{:.0} ms after stopping \
                 at +{:.0} ms",
                ms(now - parted),
                ms(at - parted)
            ),
            _ => {}
        }
        if sentinel.takeover().is_some() {
            break;
        }
        assert!(
            now - parted < Duration::from_secs(10),
            "no new leader in the majority"
        );
        tokio::time::sleep(MS).await;
    }
    let takeover = sentinel.takeover().unwrap();
    let stopped_at = stopped_at.expect("the fast path stopped before the takeover");
    let expiry = max_expiry.expect("the old leader held a lease");
    println!(
        "{backend:?}: partitioned at 0; lease expiry +{:.0} ms, fast path stopped +{:.0} ms, \
         node {} leads term {} at +{:.0} ms",
        ms(expiry - parted),
        ms(stopped_at - parted),
        takeover.node,
        takeover.term,
        ms(takeover.at - parted)
    );
    // Nothing sent after the partition can renew it: the lease ends within one duration.
    assert!(
        expiry <= parted + duration + MS,
        "{backend:?}: lease reaches past the partition: +{:.0} ms > {duration:?}",
        ms(expiry - parted)
    );
    assert!(
        stopped_at <= expiry + MS,
        "{backend:?}: fast path outlived the lease expiry"
    );
    assert!(
        takeover.old_lease_check.is_err(),
        "{backend:?}: node {} led term {} while the old leader's lease was still valid",
        takeover.node,
        takeover.term
    );
    assert!(
        takeover.at >= expiry,
        "{backend:?}: new leader at +{:.0} ms before the old lease expired at +{:.0} ms",
        ms(takeover.at - parted),
        ms(expiry - parted)
    );

    // A write acknowledged by the new leader; the old leader must never serve the old value.
    let new = c.wait_leader_among(&majority, old_term).await;
    c.kv(new)
        .put("k", "after")
        .await
        .expect("write on the new leader");
    assert!(old_lease.try_read_fast(|| ()).is_err());
    match within(Duration::from_secs(5), "old leader read", old_kv.get(b"k")).await {
        Ok(read) => assert_eq!(
            read.value.as_deref(),
            Some(&b"after"[..]),
            "{backend:?}: stale read on the deposed leader via {:?}",
            read.path
        ),
        Err(err) => println!("{backend:?}: read on the deposed leader failed as it should: {err}"),
    }
    c.net.heal();
    drop(sentinel);
    c.shutdown_all().await;
}

// ---------------------------------------------------------------------------------------------
// 3. No lease read during a transfer.
// ---------------------------------------------------------------------------------------------

async fn no_fast_read_during_a_transfer(backend: Backend) {
    let mut c = Cluster::start(backend, 303).await;
    let leader = c.wait_leader().await;
    let (kv, lease, engine) = (c.kv(leader), c.lease(leader), c.engine(leader));
    kv.put("k", "v").await.expect("put");
    wait_fast_read(&kv, b"k").await;
    let target = c.others(leader)[0];
    // Hold the leader's messages to the target: the transfer stays in progress.
    c.net.hold(leader, target);
    let transfer = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move { engine.transfer_leadership(Some(target)).await })
    };
    assert!(
        eventually(Duration::from_secs(1), || engine.status().transferring_to
            == Some(target))
        .await,
        "{backend:?}: the transfer never showed in the status"
    );
    let mut observed = 0;
    let mut reads = 0;
    for _ in 0..100 {
        let status = engine.status();
        if status.transferring_to.is_none() {
            break;
        }
        observed += 1;
        assert_eq!(
            lease.check(),
            Err(MissReason::Transferring),
            "{backend:?}: the fast path accepted a read during a transfer"
        );
        assert!(lease.try_read_fast(|| ()).is_err());
        if observed % 20 == 1 {
            // A full read: never on the fast path (it may be slow, fail, or time out here).
            if let Ok(Ok(read)) = tokio::time::timeout(5 * MS, kv.get(b"k")).await {
                assert_eq!(
                    read.path,
                    ReadPath::Slow,
                    "{backend:?}: fast read in transfer"
                );
                reads += 1;
            }
        }
        tokio::time::sleep(MS).await;
    }
    println!(
        "{backend:?}: transfer to {target} observed running for {observed} ms; fast path \
         refused throughout ({reads} slow reads served)"
    );
    assert!(observed >= 20, "{backend:?}: the transfer ended too early");
    c.net.release(leader, target);
    let outcome = within(Duration::from_secs(5), "transfer", transfer)
        .await
        .expect("transfer task");
    println!("{backend:?}: transfer outcome after release: {outcome:?}");
    if outcome.is_ok() {
        assert!(
            lease.check().is_err(),
            "old leader still serves after handing over"
        );
        let new = c.wait_leader_among(&[target], 0).await;
        wait_fast_read(&c.kv(new), b"k").await;
    }
    c.shutdown_all().await;
}

// ---------------------------------------------------------------------------------------------
// 4. No lease read on a new leader before its term's first entry is applied.
// ---------------------------------------------------------------------------------------------

async fn no_fast_read_before_the_new_term_is_applied(backend: Backend) {
    let mut c = Cluster::start(backend, 404).await;
    // One-way delay so the new leader's first entry is in flight for a while.
    c.net.set_default_faults(LinkFaults {
        delay: 2 * MS,
        ..LinkFaults::default()
    });
    let old = c.wait_leader().await;
    let old_term = c.status(old).term;
    c.kv(old).put("k", "v").await.expect("put");
    let rest = c.others(old);
    c.crash(old).await;

    // The instant a node leads, hold everything it sends: its term's first entry cannot commit.
    let net = c.net.clone();
    let peers = c.voters.clone();
    let mut watchers = Vec::new();
    for id in &rest {
        let engine = c.engine(*id);
        let (net, peers) = (net.clone(), peers.clone());
        watchers.push(tokio::spawn(async move {
            let mut status = engine.subscribe();
            let leading = status
                .wait_for(|s| s.role == Role::Leader && s.term > old_term)
                .await
                .map(|s| (s.id, s.term, s.applied_term))
                .ok();
            if let Some((id, _, _)) = leading {
                for peer in peers.iter().filter(|p| **p != id) {
                    net.hold(id, *peer);
                }
            }
            leading
        }));
    }
    let (new, term, applied_term) = loop {
        if let Some(found) = watchers.iter().position(|w| w.is_finished()) {
            let watcher = watchers.remove(found);
            break watcher.await.expect("watcher").expect("status channel");
        }
        tokio::time::sleep(MS).await;
    };
    for watcher in watchers {
        watcher.abort();
    }
    assert!(
        applied_term < term,
        "{backend:?}: node {new} applied its term's entry before anyone saw it lead"
    );
    let (kv, lease, engine) = (c.kv(new), c.lease(new), c.engine(new));
    let mut unapplied = 0;
    let mut acked_in_window = false;
    for i in 0..150 {
        let status = engine.status();
        if status.role != Role::Leader || status.applied_term == status.term {
            break;
        }
        unapplied += 1;
        acked_in_window |= engine.quorum_ack().is_some();
        let check = lease.check();
        assert!(
            check.is_err(),
            "{backend:?}: node {new} leads term {} with applied term {} and its fast path is open",
            status.term,
            status.applied_term
        );
        assert!(lease.try_read_fast(|| ()).is_err());
        if i % 50 == 0
            && let Ok(Ok(read)) = tokio::time::timeout(5 * MS, kv.get(b"k")).await
        {
            assert_eq!(read.path, ReadPath::Slow);
        }
        tokio::time::sleep(MS).await;
    }
    println!(
        "{backend:?}: node {new} led term {term} for {unapplied} ms before applying an entry of \
         it; fast path refused throughout ({:?}; a quorum ack of the term existed: \
         {acked_in_window})",
        lease.check()
    );
    assert!(
        unapplied >= 100,
        "{backend:?}: the window before the first entry applied was not observed"
    );
    for peer in c.others(new) {
        c.net.release(new, peer);
    }
    c.restart(old).await;
    let leader = c.wait_leader().await;
    let read = within(Duration::from_secs(5), "read", c.kv(leader).get(b"k"))
        .await
        .expect("read after release");
    assert_eq!(read.value.as_deref(), Some(&b"v"[..]));
    wait_fast_read(&c.kv(leader), b"k").await;
    c.shutdown_all().await;
}

// ---------------------------------------------------------------------------------------------
// 5. After an aborted transfer, only a fresh acknowledgement grants the lease.
// ---------------------------------------------------------------------------------------------

async fn lease_resumes_after_an_aborted_transfer_only_on_a_fresh_ack(backend: Backend) {
    let mut c = Cluster::start(backend, 505).await;
    let leader = c.wait_leader().await;
    let (kv, lease) = (c.kv(leader), c.lease(leader));
    kv.put("k", "v").await.expect("put");
    wait_fast_read(&kv, b"k").await;
    let target = c.others(leader)[0];
    c.net.isolate(target);
    let started = Instant::now();
    let outcome = within(
        Duration::from_secs(10),
        "transfer to an isolated target",
        lease.transfer_leadership(Some(target)),
    )
    .await;
    let aborted = Instant::now();
    println!(
        "{backend:?}: transfer to isolated node {target} ended after {:.0} ms: {outcome:?}",
        ms(aborted - started)
    );
    assert!(
        outcome.is_err(),
        "{backend:?}: transfer to an isolated node succeeded"
    );
    // The instant the transfer ends, nothing acknowledged after it exists yet: an
    // acknowledgement the engine still reports from before the abort must not grant a lease.
    let ack = c.engine(leader).quorum_ack();
    let renewed = lease.renew_from_ack();
    println!(
        "{backend:?}: at the abort the engine reports {ack:?} (sent {} the abort); renewed from \
         it: {renewed}",
        match ack {
            Some(ack) if ack.sent_at <= aborted => "before",
            Some(_) => "after",
            None => "-",
        }
    );
    assert!(
        !renewed,
        "{backend:?}: a pre-abort acknowledgement renewed the lease"
    );
    assert!(
        lease.check().is_err(),
        "{backend:?}: lease valid at the abort"
    );
    let duration = lease.duration();
    let first = within(
        Duration::from_secs(5),
        "first read after abort",
        kv.get(b"k"),
    )
    .await;
    println!("{backend:?}: first read after the abort: {first:?}");
    if let Ok(read) = &first {
        assert_eq!(
            read.path,
            ReadPath::Slow,
            "{backend:?}: the first read after an aborted transfer was served fast"
        );
    }
    // From now on, any lease this node holds must be anchored after the abort.
    let mut fast = 0;
    for _ in 0..1000 {
        if lease.check().is_ok() {
            fast += 1;
            let expiry = lease
                .state()
                .expires_at()
                .expect("a valid lease has an expiry");
            assert!(
                expiry + MS >= aborted + duration,
                "{backend:?}: a lease anchored before the abort: expires +{:.0} ms after it",
                ms(expiry - aborted)
            );
        }
        tokio::time::sleep(MS).await;
    }
    let status = c.status(leader);
    println!(
        "{backend:?}: lease valid for {fast} of the 1000 ms after the abort; node {leader} is \
         now {:?} in term {}",
        status.role, status.term
    );
    c.net.heal();
    let leader = c.wait_leader().await;
    wait_fast_read(&c.kv(leader), b"k").await;
    c.shutdown_all().await;
}

// ---------------------------------------------------------------------------------------------
// 6. A restarted node cannot help elect a leader inside a live lease.
// ---------------------------------------------------------------------------------------------

/// The candidate of scenario 6 campaigns every 150–200 ms, so it asks for votes inside any
/// window of a lease's length. Only the candidate gets this: it has not acknowledged the old
/// leader since long before the window under test, so its own (shorter) vote refusal plays no
/// part in the old leader's lease.
fn eager_candidate(config: &mut raftengine::Config) {
    config.election_timeout_min = Duration::from_millis(150);
    config.election_timeout_max = Duration::from_millis(200);
}

async fn restarted_node_cannot_elect_a_leader_inside_a_live_lease(backend: Backend) {
    let mut c = Cluster::start(backend, 606).await;
    let old = c.wait_leader().await;
    let (kv, lease) = (c.kv(old), c.lease(old));
    kv.put("k", "v").await.expect("put");
    let others = c.others(old);
    let (f1, f2) = (others[0], others[1]);
    // f2 becomes an eager candidate (restarted with short election timeouts) with the full log.
    c.set_tweak(f2, eager_candidate);
    c.crash(f2).await;
    c.restart(f2).await;
    let last = c.status(old).last_log_index;
    assert!(
        eventually(Duration::from_secs(5), || c.status(f2).applied_index
            >= last
            && c.status(f1).applied_index >= last)
        .await,
        "{backend:?}: followers did not catch up"
    );
    let old_term = c.status(old).term;
    assert_eq!(c.status(old).role, Role::Leader);
    // f2 stops hearing the leader and keeps campaigning with a log as long as anyone's; f1
    // still hears the leader and refuses. Nothing is written from now on, so f2 stays
    // electable: only vote refusal stands between it and leadership.
    c.net.partition(old, f2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = c.status(old);
    assert!(
        status.role == Role::Leader && status.term == old_term,
        "{backend:?}: the leader lost with a live quorum: {status:?}"
    );
    assert_eq!(c.status(f2).last_log_index, status.last_log_index);
    // A live lease on the old leader, renewed from f1's acknowledgements.
    assert!(
        eventually(Duration::from_secs(1), || lease.check().is_ok()).await,
        "{backend:?}: no lease from f1's acknowledgements"
    );
    // Now the old leader is cut off, and f1 crashes and restarts at once: it forgets that it
    // heard the leader a moment ago. Without the restart vote-drop it would vote f2 in at f2's
    // next campaign, at most 200 ms away, inside the old lease.
    c.net.isolate(old);
    let cut = Instant::now();
    let mut max_expiry = lease.state().expires_at();
    c.crash(f1).await;
    c.restart(f1).await;
    let restarted = Instant::now();
    let sentinel = Sentinel::watch(vec![c.engine(f1), c.engine(f2)], old_term, lease.clone());
    loop {
        max_expiry = max_expiry.max(lease.state().expires_at());
        if sentinel.takeover().is_some() {
            break;
        }
        assert!(cut.elapsed() < Duration::from_secs(10), "no new leader");
        tokio::time::sleep(MS).await;
    }
    let takeover = sentinel.takeover().unwrap();
    let expiry = max_expiry.expect("the old leader held a lease");
    println!(
        "{backend:?}: old leader cut off and node {f1} restarted at 0 (+{:.0} ms); old lease \
         expires +{:.0} ms; node {} leads term {} at +{:.0} ms (vote-refusal window {:?})",
        ms(restarted - cut),
        ms(expiry - cut),
        takeover.node,
        takeover.term,
        ms(takeover.at - cut),
        c.engine(f1).timing().vote_refusal_window,
    );
    assert!(
        takeover.old_lease_check.is_err(),
        "{backend:?}: node {} was elected while the old leader's lease was valid",
        takeover.node
    );
    assert!(
        takeover.at >= expiry,
        "{backend:?}: node {} leads at +{:.0} ms, inside the old lease (expires +{:.0} ms)",
        takeover.node,
        ms(takeover.at - cut),
        ms(expiry - cut)
    );
    c.net.heal();
    drop(sentinel);
    let leader = c.wait_leader().await;
    let read = within(Duration::from_secs(5), "read", c.kv(leader).get(b"k"))
        .await
        .expect("read");
    assert_eq!(read.value.as_deref(), Some(&b"v"[..]));
    c.shutdown_all().await;
}

// ---------------------------------------------------------------------------------------------
// 7. A process pause longer than the lease does not yield a stale read.
// ---------------------------------------------------------------------------------------------

async fn pause_longer_than_the_lease_yields_no_stale_read(backend: Backend) {
    let mut c = Cluster::start(backend, 707).await;
    let old = c.wait_leader().await;
    let old_term = c.status(old).term;
    let (old_kv, old_lease) = (c.kv(old), c.lease(old));
    old_kv.put("k", "old").await.expect("put");
    wait_fast_read(&old_kv, b"k").await;
    let rest = c.others(old);
    let sentinel = Sentinel::watch(
        rest.iter().map(|id| c.engine(*id)).collect(),
        old_term,
        old_lease.clone(),
    );
    // The "pause": the old leader hears nothing and nothing it sends arrives (buffered).
    let paused = Instant::now();
    c.hold_all(old);
    let new = c.wait_leader_among(&rest, old_term).await;
    c.kv(new)
        .put("k", "new")
        .await
        .expect("write on the new leader");
    let acked = Instant::now();
    let takeover = sentinel.takeover().expect("the sentinel saw the takeover");
    assert!(
        takeover.old_lease_check.is_err(),
        "{backend:?}: new leader elected while the paused leader's lease was valid"
    );
    assert!(
        old_lease.try_read_fast(|| ()).is_err(),
        "{backend:?}: the paused leader would serve a fast read after the new write"
    );
    // The pause ends: a read on the old node right away, before anything buffered has
    // arrived; then the buffered traffic flows.
    let read = {
        let old_kv = old_kv.clone();
        tokio::spawn(async move { old_kv.get(b"k").await })
    };
    tokio::time::sleep(MS).await;
    c.release_all(old);
    let read = within(Duration::from_secs(5), "read after the pause", read)
        .await
        .expect("read task");
    println!(
        "{backend:?}: paused at 0, new leader {new} at +{:.0} ms, write acked +{:.0} ms; read \
         on the resumed node: {read:?}",
        ms(takeover.at - paused),
        ms(acked - paused)
    );
    if let Ok(read) = read {
        assert_eq!(
            read.value.as_deref(),
            Some(&b"new"[..]),
            "{backend:?}: stale read after a pause ({:?} path)",
            read.path
        );
    }
    drop(sentinel);
    c.shutdown_all().await;
}

/// The same pause, closer to a stopped process: the old leader's clock also stands still
/// during the pause (so its engine does not tick and its lease layer sees no time pass), then
/// jumps by the length of the pause when the process resumes, as a monotonic clock does. The
/// read is issued at the instant of resumption, before any buffered message arrives.
async fn pause_with_a_stopped_clock_yields_no_stale_read(backend: Backend) {
    let clocks: BTreeMap<NodeId, Arc<DriftClock>> = [1, 2, 3]
        .into_iter()
        .map(|id| (id, Arc::new(DriftClock::new(Duration::ZERO, 1.0))))
        .collect();
    let dyn_clocks = clocks
        .iter()
        .map(|(id, clock)| (*id, Arc::clone(clock) as Arc<dyn Clock>))
        .collect();
    let mut c = Cluster::start_with_clocks(backend, 708, dyn_clocks).await;
    let old = c.wait_leader().await;
    let old_term = c.status(old).term;
    let old_kv = c.kv(old);
    old_kv.put("k", "old").await.expect("put");
    wait_fast_read(&old_kv, b"k").await;
    let rest = c.others(old);

    let paused = Instant::now();
    clocks[&old].set_rate(1e-9);
    c.hold_all(old);
    let new = c.wait_leader_among(&rest, old_term).await;
    c.kv(new)
        .put("k", "new")
        .await
        .expect("write on the new leader");
    let acked = Instant::now();
    tokio::time::sleep_until(paused + Duration::from_secs(2)).await;

    let pause = paused.elapsed();
    clocks[&old].set_rate(1.0);
    clocks[&old].advance(pause);
    let at_resume = c.lease(old).check();
    let read = {
        let old_kv = old_kv.clone();
        tokio::spawn(async move { old_kv.get(b"k").await })
    };
    tokio::time::sleep(MS).await;
    c.release_all(old);
    let read = within(Duration::from_secs(5), "read after the pause", read)
        .await
        .expect("read task");
    println!(
        "{backend:?}: clock stopped for {:.0} ms; new leader {new} acked a write at +{:.0} ms; \
         fast path at resumption: {at_resume:?}; read on the resumed node: {read:?}",
        ms(pause),
        ms(acked - paused)
    );
    if let Ok(read) = read {
        assert_eq!(
            read.value.as_deref(),
            Some(&b"new"[..]),
            "{backend:?}: stale read after a pause ({:?} path)",
            read.path
        );
    }
    c.shutdown_all().await;
}

// ---------------------------------------------------------------------------------------------
// Stamping: every scenario once per backend.
// ---------------------------------------------------------------------------------------------

macro_rules! stamp {
    ($( $scenario:ident { openraft: [$(#[$om:meta])*], raftrs: [$(#[$rm:meta])*] } ),* $(,)?) => {
        mod openraft {
            $(
                #[tokio::test(start_paused = true)]
                $(#[$om])*
                async fn $scenario() {
                    super::$scenario(super::Backend::Openraft).await;
                }
            )*
        }
        mod raftrs {
            $(
                #[tokio::test(start_paused = true)]
                $(#[$rm])*
                async fn $scenario() {
                    super::$scenario(super::Backend::RaftRs).await;
                }
            )*
        }
    };
}

stamp! {
    conflict_storm_keeps_lease_warm { openraft: [], raftrs: [] },
    minority_leader_stops_fast_reads_before_a_new_leader { openraft: [], raftrs: [] },
    no_fast_read_during_a_transfer { openraft: [], raftrs: [] },
    no_fast_read_before_the_new_term_is_applied { openraft: [], raftrs: [] },
    lease_resumes_after_an_aborted_transfer_only_on_a_fresh_ack { openraft: [], raftrs: [] },
    restarted_node_cannot_elect_a_leader_inside_a_live_lease { openraft: [], raftrs: [] },
    pause_longer_than_the_lease_yields_no_stale_read { openraft: [], raftrs: [] },
    pause_with_a_stopped_clock_yields_no_stale_read { openraft: [], raftrs: [] },
}
