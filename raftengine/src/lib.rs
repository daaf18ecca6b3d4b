//! # raftengine
//!
//! The contract between a replicated state machine and a Raft library. Write the state machine
//! once against [`StateMachine`], drive it through [`Engine`], and pick the library with one
//! constructor call (`raftengine-openraft` or `raftengine-raftrs`).
//!
//! This crate has no Raft library in its dependency tree. It holds the trait, the error model
//! ([`Error`], [`ErrorKind`], [`WriteOutcome`]), the persistence contract ([`LogStore`],
//! [`MemLogStore`]), the transport contract ([`Transport`], [`MemNetwork`] with fault
//! injection), time ([`Clock`]) and shared building blocks adapters use
//! ([`LeadershipTracker`], [`with_deadline`]).
#![deny(missing_docs)]

mod clock;
mod config;
mod deadline;
mod engine;
mod error;
mod leadership;
mod log_store;
mod mem_network;
mod state_machine;
mod transport;
mod types;

pub use clock::{Clock, DriftClock, TokioClock};
pub use config::Config;
pub use deadline::with_deadline;
pub use engine::Engine;
pub use error::{Error, ErrorKind, RejectReason, Result, WriteOutcome};
pub use leadership::{LeaderLossCallback, LeadershipTracker, Subscription};
pub use log_store::{LogEntry, LogState, LogStore, MemLogStore, SnapshotMeta, StoredSnapshot};
pub use mem_network::{LinkFaults, MemNetwork, MemTransport, NetStats};
pub use state_machine::{SharedStateMachine, StateMachine};
pub use transport::{Inbound, Transport, TransportError};
pub use types::{
    Applied, Capabilities, LeaderLoss, LossCause, Membership, NodeId, QuorumAck, ReadIndex, Role,
    SnapshotInfo, Status, Timing,
};
