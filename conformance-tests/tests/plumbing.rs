//! Plumbing of the suite that needs no engine: the stamping macro from a downstream crate's
//! point of view, the ignore list, capability gaps, and how a backend that cannot start is
//! reported. The real backends are stamped in `tests/openraft.rs` and `tests/raftrs.rs`.

use std::sync::Arc;

use conformance_tests::harness::run_case;
use conformance_tests::{Backend, BoxFuture, ClusterSpec, Harness, TestSm, conformance_suite};
use raftengine::{Capabilities, Engine, EngineParts, Error, ErrorKind};

/// A backend that declares nothing and cannot start an engine.
#[derive(Debug, Default)]
struct NoEngine;

impl Backend for NoEngine {
    const NAME: &'static str = "no-engine";

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }

    fn start(
        &self,
        _parts: EngineParts<TestSm>,
    ) -> BoxFuture<'static, raftengine::Result<Arc<dyn Engine>>> {
        Box::pin(async { Err(Error::new(ErrorKind::Unsupported).with_context("no engine here")) })
    }
}

// Every case stamped, every one ignored with a reason: this shows the macro expands in a
// downstream crate and that ignored cases report as ignored.
conformance_suite!(no_engine, NoEngine, ignore_all = "plumbing test: no engine");
#[test]
fn the_macro_stamps_exactly_the_listed_cases() {
    let listed: Vec<&str> = conformance_tests::cases::ALL
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(no_engine::CASES, listed.as_slice());
    assert_eq!(
        no_engine::multi_thread::CASES,
        conformance_tests::cases::MULTI_THREAD
    );
    for name in conformance_tests::cases::MULTI_THREAD {
        assert!(
            listed.contains(name),
            "{name} is stamped multi-threaded but not listed"
        );
    }
    for name in no_engine::CASES {
        assert!(conformance_tests::cases::needs(name).is_some(), "{name}");
    }
}

#[test]
#[should_panic(expected = "no-engine failed to start node 1")]
fn a_backend_that_cannot_start_fails_the_case_with_its_error() {
    run_case(
        "start_failure",
        Capabilities::NONE,
        NoEngine,
        |h| async move {
            h.cluster(3).await?;
            Ok(())
        },
    );
}

#[test]
#[should_panic(expected = "needs [\"leadership_transfer\"]")]
fn a_capability_gap_fails_loudly_unless_listed_as_ignored() {
    run_case(
        "gap",
        Capabilities::LEADERSHIP_TRANSFER,
        NoEngine,
        |_h| async move { Ok(()) },
    );
}

#[test]
#[should_panic(expected = "replay with SEED=")]
fn a_failing_case_names_its_seed() {
    run_case("seeded", Capabilities::NONE, NoEngine, |h| async move {
        h.cluster_with(ClusterSpec::new(1), h.seed()).await?;
        Ok(())
    });
}

#[test]
fn cases_run_on_paused_virtual_time() {
    run_case(
        "virtual_time",
        Capabilities::NONE,
        NoEngine,
        |h: Harness<NoEngine>| async move {
            let wall = std::time::Instant::now();
            let start = tokio::time::Instant::now();
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            assert!(start.elapsed() >= std::time::Duration::from_secs(3600));
            assert!(wall.elapsed() < std::time::Duration::from_secs(5));
            assert_eq!(h.case(), "virtual_time");
            Ok(())
        },
    );
}
