//! The conformance suites of the raftengine family: one per contract (engine, log store,
//! transport), each stamped per implementation by one macro. Add this crate as a
//! dev-dependency of your engine, store or transport crate and stamp the suite in a test file;
//! every case becomes its own `#[test]`, and cases your implementation cannot run are listed
//! as ignored with a reason, never passed silently.
//!
//! ```no_run
//! // tests/conformance.rs of an engine that implements `raftengine::StartEngine`:
//! conformance_tests::engine_backend!(RaftRs, "raftrs", raftengine_raftrs::RaftRsEngine);
//! conformance_tests::conformance_suite!(raftrs, RaftRs);
//! ```
//!
//! A backend that lacks a capability declares it (`engine_backend!(.., capabilities = ..)`) and
//! lists the cases it cannot run: `conformance_suite!(mine, Mine, ignore { case: "reason" })`.
//! The harness checks that the engine reports the capabilities the backend declared. A log
//! store is stamped with [`log_store_suite!`] and a transport with [`transport_suite!`] (see
//! [`storage`] and [`transport`]).
//!
//! Every engine case runs on a current-thread runtime with tokio's clock paused (elections and
//! deadlines cost no wall time) and builds a fresh cluster over `MemNetwork`; transfer and
//! lease cases run a second time on two threads and the real clock. Randomized cases take
//! `SEED=<n>` to replay one seed and `CONFORMANCE_SEEDS=<n>` to run more; a failure prints its
//! seed and fault log. Replay repeats the fault schedule and the workload's choices exactly,
//! and the engines' own randomness too when the backend draws it from `Config::seed` (both
//! in-tree backends do; the case `a_seed_replays_the_same_schedule` checks it).
//!
//! - [`checker`]: history recording, cheap oracles and a linearizability checker.
//! - [`sm`]: [`TestSm`], the key-value state machine every case replicates.
//! - [`harness`]: the [`Backend`] factory trait a backend implements, and the [`Harness`] /
//!   [`Cluster`] the cases drive.
//! - [`cases`]: the engine cases, plain `async fn`s generic over the backend.
//! - [`conformance_suite!`]: stamps every engine case as its own `#[test]`.
//!
//! The design behind the cases (error model, lease rules, fault table) is in the repository's
//! `docs/` folder.
#![deny(missing_docs)]

pub mod cases;
pub mod checker;
pub mod harness;
mod macros;
pub mod sm;
pub mod storage;
pub mod transport;

pub use harness::{Backend, BoxFuture, Cluster, ClusterSpec, Failure, Harness};
pub use sm::TestSm;

#[doc(hidden)]
pub mod __private {
    pub use crate::harness::{CaseRuntime, run_case, run_case_on};
    pub use raftengine::Capabilities;

    /// The needs of a stamped case (the macro only stamps cases of [`crate::cases::ALL`]).
    pub fn needs(case: &str) -> Capabilities {
        crate::cases::needs(case)
            .unwrap_or_else(|| panic!("{case} is stamped but not listed in cases::ALL"))
    }
}

// The repository README's Rust examples compile as doctests of this crate, the one whose
// dev-dependencies cover every crate they use.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
