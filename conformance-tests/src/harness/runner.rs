//! Running one case on a fresh runtime.

use std::future::Future;

use raftengine::Capabilities;
use tokio::time::Instant;

use super::*;

/// The runtime a stamped case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseRuntime {
    /// One thread, tokio's clock paused: deterministic, and waits cost no wall time.
    Paused,
    /// Two worker threads on the real clock: engines, lease readers and background tasks run
    /// in parallel, so a status published a moment too late is visible to a reader.
    MultiThread,
}

/// Runs one case for a backend on a fresh current-thread runtime with tokio's clock paused, and
/// panics with a full report if it fails. This is what [`crate::conformance_suite!`] calls.
///
/// # Panics
/// When the case fails, or when the backend lacks a capability the case needs (stamp such a
/// case as ignored instead; a gap must never pass silently).
pub fn run_case<B, F, Fut>(case: &'static str, needs: Capabilities, backend: B, body: F)
where
    B: Backend,
    F: FnOnce(Harness<B>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    run_case_on(CaseRuntime::Paused, case, needs, backend, body);
}

/// [`run_case`] on the runtime `on`.
///
/// # Panics
/// As [`run_case`].
pub fn run_case_on<B, F, Fut>(
    on: CaseRuntime,
    case: &'static str,
    needs: Capabilities,
    backend: B,
    body: F,
) where
    B: Backend,
    F: FnOnce(Harness<B>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let missing = needs.missing_from(&backend.capabilities());
    if !missing.is_empty() {
        panic!(
            "{}::{case} needs {missing:?}, which backend {} does not declare. A capability gap \
             must be reported, not passed: stamp the suite with \
             `conformance_suite!(module, Backend, ignore {{ {case}: \"reason\" }})`.",
            B::NAME,
            B::NAME
        );
    }
    let runtime = match on {
        CaseRuntime::Paused => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("build a current-thread runtime"),
        CaseRuntime::MultiThread => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build a multi-thread runtime"),
    };
    let harness = Harness::new(backend, case);
    let seed = harness.seed();
    let started = std::time::Instant::now();
    let result = runtime.block_on(async move {
        let virtual_start = Instant::now();
        let result = body(harness).await;
        (result, virtual_start.elapsed())
    });
    // Tasks a case left behind must not hold the test: the engines were shut down already.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let case = match on {
        CaseRuntime::Paused => case.to_owned(),
        CaseRuntime::MultiThread => format!("multi_thread::{case}"),
    };
    match result {
        (Ok(()), virtual_elapsed) => {
            println!(
                "{}::{case} passed ({virtual_elapsed:?} virtual, {:?} wall)",
                B::NAME,
                started.elapsed()
            );
        }
        (Err(failure), virtual_elapsed) => panic!(
            "{}::{case} FAILED after {virtual_elapsed:?} of virtual time (seed {seed}; replay \
             with SEED={seed}):\n{failure}",
            B::NAME
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::decode_response;
    use crate::sm::{Command, Response};
    use raftengine::Applied;

    #[test]
    fn needs_name_what_is_missing() {
        let caps = Capabilities::MEMBERSHIP_CHANGE.and(Capabilities::QUORUM_ACK);
        assert_eq!(Capabilities::NONE.missing_from(&caps), Vec::<&str>::new());
        assert_eq!(
            Capabilities::LEADERSHIP_TRANSFER
                .and(Capabilities::SNAPSHOTS)
                .missing_from(&caps),
            vec!["leadership_transfer", "snapshots"]
        );
        assert_eq!(
            Capabilities::MEMBERSHIP_CHANGE.missing_from(&caps),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn failure_text_carries_context() {
        let failure = Failure::new("boom")
            .context("seed 7")
            .context("node 1 down");
        assert_eq!(failure.to_string(), "boom\n  seed 7\n  node 1 down");
        assert_eq!(failure.message(), "boom");
    }

    #[test]
    fn response_decoding_checks_the_index() {
        let command = Command::Put { key: 1, value: 2 };
        let good = Applied {
            index: 5,
            term: 1,
            response: Response::Written { version: 5 }.encode(),
        };
        assert_eq!(
            decode_response(1, &command, &good).unwrap(),
            Response::Written { version: 5 }
        );
        let wrong_index = Applied {
            index: 6,
            ..good.clone()
        };
        assert!(decode_response(1, &command, &wrong_index).is_err());
        let garbage = Applied {
            response: bytes::Bytes::from_static(b"\x09"),
            ..good
        };
        assert!(decode_response(1, &command, &garbage).is_err());
    }
}
