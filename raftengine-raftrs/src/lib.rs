//! raftengine's Engine contract on tikv raft-rs 0.7.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use raftengine::{Config, Engine, EngineParts, MemLogStore, SharedStateMachine};
//! # use raftengine::{StartEngine, StateMachine};
//! # use raftengine::sim::MemNetwork;
//! # async fn demo<S: StateMachine>(state_machine: S) -> raftengine::Result<()> {
//! let net = MemNetwork::new(7);
//! let engine = raftengine_raftrs::RaftRsEngine::start(EngineParts::new(
//!     Config::new(1, [1, 2, 3]),
//!     SharedStateMachine::new(state_machine),
//!     Arc::new(MemLogStore::new()),
//!     Arc::new(net.transport(1)),
//! ))
//! .await?;
//! let applied = engine.propose(bytes::Bytes::from_static(b"set x 1")).await?;
//! let read_point = engine.linearizable_read().await?;
//! assert!(read_point.index >= applied.index);
//! engine.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! What this backend guarantees beyond the trait docs:
//! - **Timing.** One raft tick is `heartbeat_interval / 5` (≥ 1 ms); the election timeout
//!   range is rounded down to whole ticks and randomized from a seeded generator. Ticks follow
//!   the engine's [`raftengine::Clock`]. `timing().vote_refusal_window` is
//!   `(election_tick - 1)` ticks: raft-rs with check-quorum refuses (pre-)votes while
//!   `election_elapsed < election_tick` after hearing from the leader.
//! - **Restart.** A node whose store already held state drops vote requests for one election
//!   timeout after start, so it cannot disrupt a leader it has not heard from yet. The state
//!   machine is restored from the newest stored snapshot and the log after it is replayed up
//!   to the stored commit index; the rest is applied once a leader confirms it.
//! - **Syncs.** A commit costs one store write per node: the entries. The commit index is
//!   volatile (a restart learns it again), so it is written only with a term or vote change.
//!   On a multi-thread runtime with a store that may block, writes run on a thread of the
//!   node's own (raft-rs's asynchronous ready): the driver keeps handling acknowledgements and
//!   proposals during a sync, and readies queued meanwhile share the next one.
//! - **Wire format.** Each raft message travels as a small envelope (version, ack token, echo)
//!   around the protobuf message; bytes that do not decode are dropped and logged. The tokens
//!   make [`raftengine::Engine::quorum_ack`] exact: it reports the send time of the newest
//!   heartbeat/append a quorum of current voters provably received in the current term.
//!
//! [`RaftRsEngine`] drives a raft-rs `RawNode` from one tokio task over the shared
//! [`raftengine::LogStore`] and [`raftengine::Transport`]. Modules, one responsibility each:
//! - `engine`: the public handle and the `Engine` impl;
//! - `driver`: the task owning the `RawNode` and its ready loop;
//! - `shared`: what the handle and the task share (events, published views, halt state);
//! - `storage`: raft-rs `Storage` over the log store, bootstrap and restart;
//! - `codec`: byte formats (wire envelope, entries, hard state, request ids);
//! - `errors`: the one native-error mapping (`map_error`);
//! - `proposals`, `reads`, `transfer`, `membership`: the waiters of each request kind;
//! - `quorum`: quorum-acknowledgement tracking for `quorum_ack` and quorum-loss detection;
//! - `timing`: config durations to raft ticks and the honest `Timing`;
//! - `logger`: raft-rs's slog output routed to `tracing`.
//!
//! Build note: raft-proto 0.7 generates its protobuf code at build time with a bundled protoc
//! 3.9 (Linux, Windows, macOS x86_64). On macOS arm64 put a protoc 3.x on `PATH`; a `PROTOC`
//! variable pointing at a modern protoc (≥ 4 / "libprotoc 2x") makes that build panic.
#![deny(missing_docs)]

mod codec;
mod driver;
mod engine;
mod errors;
mod logger;
mod membership;
mod persist;
mod proposals;
mod quorum;
mod reads;
mod recent;
#[cfg(test)]
mod refusal_window_tests;
mod shared;
mod storage;
#[cfg(test)]
mod test_entries;
mod timing;
mod transfer;
#[cfg(test)]
mod transfer_order_tests;

pub use engine::RaftRsEngine;
