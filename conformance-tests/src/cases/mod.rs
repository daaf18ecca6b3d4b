//! The cases. Each is a plain `pub async fn case<B: Backend>(h: &Harness<B>) -> Result<(),
//! Failure>` that builds its own cluster through the harness, so a backend author can also call
//! one directly. All of them are listed once, in `__suite_cases!` (in `macros.rs`), which
//! generates the re-exports here, [`ALL`] (every case with the capabilities it needs),
//! [`MULTI_THREAD`], and the tests [`crate::conformance_suite!`] stamps.
//!
//! The cases live in private modules by topic: the `Engine` contract one behaviour at a time
//! (`contract`), write outcomes under leader changes (`outcomes`), back-pressure
//! (`backpressure`), randomized fault schedules checked for linearizability (`faults`),
//! `kv-lease` over the backend (`lease`, `transfer_safety`, `single_voter`, `lease_bound`).
//! [`workload`] holds the recording clients the randomized cases run.

// Private: every case reaches the public API only through the one case list below, so a case
// function left out of the list is dead code and fails the build.
mod backpressure;
mod contract;
mod contract_rules;
mod failover;
mod faults;
mod lease;
mod lease_bound;
mod outcomes;
mod replay;
mod single_voter;
mod transfer_safety;
pub mod workload;

crate::__suite_cases!(__case_index {});

use raftengine::Capabilities;

/// The capabilities case `name` needs, if it is a case of the suite.
pub fn needs(name: &str) -> Option<Capabilities> {
    ALL.iter()
        .find(|(case, _)| *case == name)
        .map(|(_, needs)| *needs)
}
