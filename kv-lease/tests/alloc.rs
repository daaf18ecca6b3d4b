//! The lease fast path allocates nothing: a fast read is a clock read, a status snapshot
//! (shared, not copied), one atomic load and the caller's closure.

use std::alloc::System;
use std::collections::HashMap;
use std::sync::Arc;

use kv_lease::testing::MockEngine;
use kv_lease::{Lease, LeaseConfig, ReadPath};
use raftengine::Engine;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn a_fast_read_allocates_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let engine = MockEngine::new(1);
        engine.make_leader(1);
        let config = LeaseConfig {
            background: false,
            ..LeaseConfig::default()
        };
        let lease = Lease::new(engine.clone() as Arc<dyn Engine>, config).expect("lease");
        lease.read(|| ()).await.expect("warm-up read");
        let map: HashMap<u64, u64> = (0..1024).map(|k| (k, k * 2)).collect();
        assert_eq!(lease.read(|| ()).await.expect("read").path, ReadPath::Fast);

        // The allocator counts every thread of the test binary, and the test harness's own
        // threads allocate now and then; a fast path that allocated would do so on each of
        // the 10,000 reads of every attempt, so one clean attempt out of a few is the proof.
        let mut attempts = Vec::new();
        for _ in 0..5 {
            let region = Region::new(GLOBAL);
            let mut sum = 0u64;
            for key in 0..10_000u64 {
                let value = lease
                    .try_read_fast(|| map.get(&(key % 1024)).copied())
                    .expect("the lease is valid");
                sum += value.unwrap_or(0);
            }
            let stats = region.change();
            assert!(sum > 0);
            attempts.push((stats.allocations, stats.reallocations));
            if attempts.last() == Some(&(0, 0)) {
                return;
            }
        }
        panic!("10,000 fast reads allocated in every attempt (allocations, reallocations): {attempts:?}");
    });
}
