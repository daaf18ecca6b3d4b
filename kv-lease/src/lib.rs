//! Lease reads that stay warm, built only on the raftengine [`Engine`](raftengine::Engine) trait.
//!
//! A leader that holds a valid lease can serve reads from its local state machine without a
//! quorum round. This crate keeps that lease **warm** — extended by every successful write and
//! quorum read of the current term and by the engine's quorum acknowledgements — and **honest** —
//! invalidated only by what proves leadership may have moved: the leader-loss callback, errors
//! for which [`raftengine::Error::is_leadership_loss`] is true, a term change, a transfer start,
//! shutdown. A write conflict is an `Ok` response of the state machine and cannot touch it; that
//! was the production bug this crate exists to avoid.
//!
//! * [`LeaseState`]: `(term, expiry, generation)`; the fast-path check is one atomic load.
//! * [`Lease`]: the read path ([`Lease::read`], [`ReadOutcome`], [`ReadPath`]) and the dispatch
//!   wrappers ([`Lease::propose`], [`Lease::linearizable_read`], [`Lease::transfer_leadership`]).
//! * [`lease_duration`] / [`LeaseConfig`]: the duration derived from the engine's timing.
//! * [`ShardedLeases`]: one lease per Raft group; multi-group reads fence every group.
//! * [`kv`]: the reference KV state machine with conditional writes and a typed client.
//! * [`LeaseStats`] and the `metrics` facade: hits, misses by reason, invalidations by cause.
//!
//! # Testing
//!
//! * `kv_lease::testing` (feature `testing`): a scripted mock `Engine` for virtual-time tests.
//! * The race rules of [`LeaseState`] are model-checked with loom:
//!   `RUSTFLAGS="--cfg loom" cargo test -p kv-lease --release --lib loom`; an exhaustive
//!   interleaving test of the same rules runs in the ordinary `cargo test`.
//! * [`kv::conflict_storm`] is the seed bug's acceptance workload, runnable on any engine.
//! * `cargo bench -p kv-lease --bench lease` measures the fast path.
//!
//! ```no_run
//! # async fn demo(engine: std::sync::Arc<dyn raftengine::Engine>) -> raftengine::Result<()> {
//! use kv_lease::{Lease, LeaseConfig, ReadPath};
//! let lease = Lease::new(engine, LeaseConfig::default())?;
//! let outcome = lease.read(|| 42).await?;
//! if outcome.path == ReadPath::Fast { /* served locally */ }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod dispatch;
mod duration;
pub mod kv;
mod lease_state;
mod metrics;
mod reader;
mod shards;
mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(all(test, not(loom)))]
mod tests;

pub use duration::{LeaseConfig, lease_duration};
pub use lease_state::{Anchor, LeaseCheck, LeaseState, Refusal};
pub use metrics::{InvalidationCause, LeaseStats, MissReason, ReadPath};
pub use reader::{Lease, ReadOutcome};
pub use shards::{MULTI_READ_ATTEMPTS, MultiReadOutcome, ShardedLeases};
