//! # raftengine
//!
//! The contract between a replicated state machine and a Raft library. Write the state machine
//! once against [`StateMachine`], drive it through [`Engine`], and pick the library with one
//! constructor call: every backend implements [`StartEngine`], taking the node's
//! [`EngineParts`] (`raftengine-openraft` or `raftengine-raftrs`).
//!
//! This crate has no Raft library in its dependency tree. The root holds the contract: the
//! trait, the error model ([`Error`], [`ErrorKind`], [`WriteOutcome`]), the persistence contract
//! ([`LogStore`], with the in-memory [`MemLogStore`]), the transport contract ([`Transport`]),
//! time ([`Clock`]) and the plain types they speak in.
//!
//! - [`adapter`]: building blocks for whoever implements [`Engine`] on a Raft library.
//! - [`sim`] (default feature `sim`): in-process doubles for tests and simulations, a network
//!   with fault injection and a drifting clock.
//!
//! The error model, the lease rules and the conformance suites are described in the
//! repository's `docs/` folder.
#![deny(missing_docs)]

mod clock;
mod config;
mod deadline;
#[cfg(feature = "sim")]
mod drift_clock;
mod engine;
mod error;
mod leadership;
mod log_store;
mod log_writer;
#[cfg(feature = "sim")]
mod mem_network;
mod parts;
mod state_machine;
mod status_channel;
mod transport;
mod types;

pub use clock::{Clock, SuspendAwareClock, TokioClock};
pub use config::Config;
pub use engine::Engine;
pub use error::{Error, ErrorKind, RejectReason, Result, WriteOutcome};
pub use leadership::{LeaderLossCallback, Subscription};
pub use log_store::{LogEntry, LogState, LogStore, MemLogStore, SnapshotMeta, StoredSnapshot};
pub use parts::{EngineParts, StartEngine};
pub use state_machine::{SharedStateMachine, StateMachine};
pub use transport::{Inbound, Transport, TransportError};
pub use types::{
    Applied, Capabilities, LeaderLoss, LossCause, Membership, NodeId, QuorumAck, ReadIndex, Role,
    SnapshotInfo, Status, Timing,
};

/// Building blocks for adapter authors: leader-loss bookkeeping with the contract's edge rules,
/// the deadline wrapper every waiting call goes through, and the ordered store writer thread.
pub mod adapter {
    pub use crate::deadline::with_deadline;
    pub use crate::leadership::LeadershipTracker;
    pub use crate::log_writer::LogWriter;
    pub use crate::status_channel::StatusChannel;
}

/// In-process doubles for tests and simulations: [`sim::MemNetwork`] with per-link fault
/// injection (partitions, loss, delay, duplication, reordering, held links) and
/// [`sim::DriftClock`] with a per-node offset and rate. Behind the default feature `sim`, which
/// brings tokio's runtime.
#[cfg(feature = "sim")]
pub mod sim {
    pub use crate::drift_clock::DriftClock;
    pub use crate::mem_network::{LinkFaults, MemNetwork, MemTransport, NetStats};
}
