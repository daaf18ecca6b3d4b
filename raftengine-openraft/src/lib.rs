//! raftengine's [`raftengine::Engine`] contract on openraft `=0.10.0-alpha.37`.
//!
//! Construct an [`OpenraftEngine`] with [`OpenraftEngine::start`] (or
//! [`OpenraftEngine::start_with_clock`]) from the shared [`raftengine::Config`], the user's
//! state machine, a [`raftengine::LogStore`] and a [`raftengine::Transport`]. No openraft type
//! appears in this crate's public API.
//!
//! # Decisions
//!
//! - **Indexes** are openraft's plus one (openraft's log starts at 0, the shared store at 1),
//!   everywhere: status, `Applied`, `ReadIndex`, snapshots and the state machine's `apply`.
//! - **Terms** are classic: one leader per term (openraft's `leader_id_std`).
//! - **Bootstrap**: on an empty store, every node listed in `initial_voters` initializes with
//!   the same voters; "already initialized" is ignored. Unlisted nodes wait to be added.
//! - **Errors** are classified in one module (see the table in `errors.rs`). A lease-expired
//!   leader's refusal (`ForwardReason::LeaseExpired`) is `NotLeader { hint: None }`: it has lost
//!   quorum contact, so lease holders must invalidate.
//! - **Deadlines**: proposals, reads, membership changes and snapshots run under
//!   `Config::request_timeout`, and fail with `Shutdown` as soon as shutdown starts; every RPC
//!   runs under `Config::rpc_timeout`.
//! - **Busy**: openraft has no uncommitted-size limit; this node's unanswered proposal bytes
//!   are bounded by `Config::max_uncommitted_bytes`.
//!
//! # What the adapter adds to openraft
//!
//! - a prompt `QuorumLost` leader-loss edge once no quorum acknowledged this leader for one
//!   leader lease (openraft keeps an isolated leader in the Leader role);
//! - a transfer watchdog: openraft has no transfer timeout or abort, so the call fails with
//!   `Timeout` after one `election_timeout_max`; the old leader then refuses writes with
//!   `TransferInProgress` until the cluster elects a leader on its own (about one election
//!   timeout later);
//! - vote refusal for one lease after a restart: openraft restores a node with a zero lease,
//!   so without this a restarted follower could elect a new leader inside a live lease;
//! - no `quorum_ack` while a transfer runs, nor from before a transfer in the same term (the
//!   transfer disabled the followers' vote refusal).
//!
//! # Limits
//!
//! - `Config::seed` is not used: openraft draws election timeouts from its own RNG, so
//!   elections are not replayable bit for bit (message faults of `MemNetwork` still are).
//! - The state machine handed to `start` must be empty: the stored snapshot is restored into
//!   it and openraft re-applies the committed log after it.
//! - Dropping an engine without [`raftengine::Engine::shutdown`] leaves openraft's core
//!   running while the transport serves it.
#![deny(missing_docs)]

mod budget;
mod codec;
mod engine;
mod errors;
mod network;
mod settings;
mod status;
mod storage;
mod types;

pub use engine::OpenraftEngine;
