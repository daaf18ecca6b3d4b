//! raftengine's [`raftengine::Engine`] contract on openraft `=0.10.0-alpha.37`.
//!
//! Construct an [`OpenraftEngine`] with [`raftengine::StartEngine::start`] from the node's
//! [`raftengine::EngineParts`]: the shared [`raftengine::Config`], the user's state machine, a
//! [`raftengine::LogStore`], a [`raftengine::Transport`] and a [`raftengine::Clock`]. No
//! openraft type appears in this crate's public API.
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
//! - its own election timer: openraft's followers refuse votes for a lease hard-wired to
//!   openraft's `election_timeout_max`, which made every campaign before that maximum fail.
//!   The adapter gives openraft a lease just under the engine's shortest timeout and starts
//!   pre-votes itself after the engine's `[election_timeout_min, election_timeout_max)`, on
//!   the engine clock, so a leader's crash costs about one election timeout, as on raft-rs;
//! - vote refusal for one lease after a restart: openraft restores a node with a zero lease,
//!   so without this a restarted follower could elect a new leader inside a live lease;
//! - no `quorum_ack` while a transfer runs, nor for the rest of a term in which this node
//!   started one (every voter that received `TransferLeader` keeps its vote refusal off for the
//!   term); the transfer is published in the status before it is triggered, and a caller that
//!   abandons the transfer future does not leave the node transferring;
//! - an uncommitted-size budget openraft lacks (`Busy`), held until openraft answers each entry;
//! - a membership change interrupted after its joint step is finished by the next change;
//! - `shutdown` bounded by a grace period even when the store or the state machine is stuck;
//! - a panic of the user's state machine reported as `Fatal` (openraft reports a storage error),
//!   and a failed store write turned into `Fatal` for every later call;
//! - store writes off openraft's core task: appends return once queued (readable from memory)
//!   and report durability later, as openraft's storage API intends, so a leader replicates
//!   while its own sync runs and appends queued during a sync share the next one;
//! - one store sync per commit: the committed log id is kept in memory and written with the
//!   next vote, and after a restart no read is served (no `quorum_ack`, linearizable reads
//!   wait) until the state machine applied the log this node had at start, since openraft may
//!   resume leadership in the same term with a state machine that restarted behind its log;
//! - acknowledgement times converted to the engine clock with the clock offset in force at the
//!   send, so a suspend counted by the engine clock makes no acknowledgement look recent.
//!
//! Elections replay exactly: openraft draws its election timeouts from a generator seeded by
//! `Config::seed` (openraft's `DeterministicRng` over tokio).
//!
//! # Limits
//!
//! - The state machine handed to `start` must be empty: the stored snapshot is restored into
//!   it and openraft re-applies the log after it up to the stored committed point; the rest is
//!   applied once a leader commits it.
//! - Dropping the last engine handle without [`raftengine::Engine::shutdown`] stops the node
//!   like a crash (it stops serving, leader loss fires, openraft's core shuts down in the
//!   background).
#![deny(missing_docs)]

mod ack_clock;
mod budget;
mod codec;
mod engine;
mod errors;
mod network;
mod recovery;
mod settings;
mod status;
mod storage;
#[cfg(test)]
mod transfer_order_tests;
mod types;

pub use engine::OpenraftEngine;
