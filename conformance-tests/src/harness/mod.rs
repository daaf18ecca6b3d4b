//! The harness: a [`Backend`] factory a backend crate implements, a [`Harness`] handed to every
//! case, and the [`Cluster`] of engines a case builds through it.
//!
//! Everything runs on tokio's paused clock on a current-thread runtime ([`run_case`] builds it):
//! waiting out elections costs no wall time, and every wait in here has a deadline.
//!
//! Modules: [`Backend`] (`backend`), [`Failure`] and the `ensure!`/`fail!` macros (`failure`),
//! seeds and the [`Harness`] (`seeds`), the [`Cluster`] (`cluster`), [`run_case`]
//! (`runner`), and [`Probed`] backends that watch one kind of message (`probe`).

mod backend;
mod cluster;
mod failure;
mod probe;
mod runner;
mod seeds;

pub use backend::{Backend, BoxFuture};
pub(crate) use cluster::decode_response;
pub use cluster::{Cluster, ClusterSpec};
pub use failure::Failure;
pub use probe::{Probed, Recognise, Sighting, check_transfer_published_before};
pub use runner::{CaseRuntime, run_case, run_case_on};
pub use seeds::{DEFAULT_SEED, Harness, seeds};
