//! One conformance suite for every raftengine backend.
//!
//! A backend crate adds this crate as a dev-dependency, implements [`Backend`] (a factory that
//! starts one engine from a `Config`, a [`TestSm`], a log store, a transport and a clock) and
//! stamps the suite once:
//!
//! ```ignore
//! // tests/mybackend.rs: a backend following the family's `start_with_clock` convention
//! conformance_tests::engine_backend!(Mine, "mine", my_backend::MyEngine);
//! // (or implement `Backend` by hand for any other constructor)
//! conformance_tests::conformance_suite!(mine, Mine, ignore {
//!     snapshot_catch_up: "snapshots are not implemented yet",
//! });
//! ```
//!
//! Every case becomes its own test (`mine::transfer_to_dead_target`), runs on a current-thread
//! runtime with tokio's clock paused (elections and deadlines cost no wall time), and builds a
//! fresh cluster over `MemNetwork`. Randomized cases take `SEED=<n>` to replay one seed and
//! `CONFORMANCE_SEEDS=<n>` to run more; a failure prints its seed and fault log. Replay repeats
//! the fault schedule and the workload's choices exactly; the interleaving inside the engines
//! is only as deterministic as the backend (election jitter from an unseeded RNG differs).
//!
//! - [`checker`]: history recording, cheap oracles and a linearizability checker.
//! - [`sm`]: [`TestSm`], the key-value state machine every case replicates.
//! - [`harness`]: the [`Backend`] factory trait a backend implements, and the [`Harness`] /
//!   [`Cluster`] the cases drive.
//! - [`cases`]: the cases, plain `async fn`s generic over the backend.
//! - [`conformance_suite!`]: stamps every case as its own `#[test]`.
#![deny(missing_docs)]

pub mod cases;
pub mod checker;
pub mod harness;
mod macros;
pub mod sm;

pub use harness::{Backend, BoxFuture, Cluster, ClusterSpec, Failure, Harness};
pub use sm::TestSm;

#[doc(hidden)]
pub mod __private {
    pub use crate::harness::run_case;

    /// The needs of a stamped case (the macro only stamps cases of [`crate::cases::ALL`]).
    pub fn needs(case: &str) -> crate::harness::Needs {
        crate::cases::needs(case)
            .unwrap_or_else(|| panic!("{case} is stamped but not listed in cases::ALL"))
    }
}
