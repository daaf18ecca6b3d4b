//! The openraft type configuration of this adapter and the index mapping to the engine.
//!
//! openraft numbers its log from 0 (the bootstrap membership entry sits at index 0), while the
//! shared [`raftengine::LogStore`] and the engine contract number from 1. Every index that
//! crosses the adapter boundary is shifted by one: engine index = openraft index + 1, and an
//! absent openraft log id is engine index 0.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A command as openraft carries it: the user's opaque bytes, shared (cloning it, as openraft
/// does when it builds entries, copies nothing). Serialized as a byte string, as a `Vec<u8>`
/// would be.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Command(pub(crate) bytes::Bytes);

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({} bytes)", self.0.len())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The state machine's response to one command, handed back to the caller without a copy.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Response(pub(crate) bytes::Bytes);

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Response({} bytes)", self.0.len())
    }
}

/// The adapter's openraft type configuration: classic one-leader-per-term leader ids (so a
/// term names one leader, as the lease layer assumes), node ids as in the engine, and no
/// per-node address (the transport routes by id). A proposal's answer carries its share of the
/// in-flight budget (`budget::Answer`), so no task per proposal has to hold it. Written out
/// rather than through `declare_raft_types!`, which cannot take a generic responder.
#[derive(Debug, Clone, Copy, Default, Eq, PartialEq, Ord, PartialOrd)]
pub(crate) struct TypeConfig {}

impl openraft::RaftTypeConfig for TypeConfig {
    type D = Command;
    type R = Response;
    type NodeId = u64;
    type Node = openraft::EmptyNode;
    type Term = u64;
    type LeaderId = openraft::impls::leader_id_std::LeaderId<u64, u64>;
    type Vote = openraft::impls::Vote<Self::LeaderId>;
    type Payload = openraft::EntryPayload<Self::D, Self::NodeId, Self::Node>;
    type Entry =
        openraft::Entry<<Self::LeaderId as openraft::vote::RaftLeaderId>::Committed, Self::Payload>;
    type Responder<T>
        = crate::budget::Answer<T>
    where
        T: openraft::OptionalSend + 'static;
    type Batch<T>
        = openraft::impls::InlineBatch<T>
    where
        T: openraft::OptionalSend + 'static;
    type AsyncRuntime = SeededRuntime;
    type ErrorSource = openraft::impls::BoxedErrorSource;
}

/// tokio, with openraft's random draws (election timeouts, first tick waits) taken from a
/// generator seeded by `Config::seed`: a node's schedule replays exactly for the same seed,
/// and nodes with different seeds still draw different timeouts. Seeds pass from task to
/// spawned task, so every task openraft starts inside [`seeded`] draws deterministically.
pub(crate) type SeededRuntime =
    openraft_rt::deterministic_rng::DeterministicRng<openraft_rt_tokio::TokioRuntime>;

/// Runs `future` (which starts openraft's tasks) with `seed` as the root of their generators.
pub(crate) fn seeded<F: std::future::Future>(
    seed: u64,
    future: F,
) -> impl std::future::Future<Output = F::Output> {
    SeededRuntime::scope(seed, future)
}

/// The Raft handle type this adapter runs.
pub(crate) type Raft = openraft::Raft<TypeConfig, crate::storage::StateMachineStore>;
/// A log id.
pub(crate) type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
/// A vote.
pub(crate) type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
/// A log entry.
pub(crate) type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
/// A membership config as stored with its log id.
pub(crate) type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
/// Snapshot metadata.
pub(crate) type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot carrying the user's state as bytes.
pub(crate) type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, bytes::Bytes>;
/// Metrics.
pub(crate) type Metrics = openraft::RaftMetrics<TypeConfig>;

/// Engine index of an openraft index.
pub(crate) fn engine_index(openraft_index: u64) -> u64 {
    openraft_index + 1
}

/// Engine index of an optional openraft log id (0 when absent).
pub(crate) fn engine_index_of(log_id: Option<&LogId>) -> u64 {
    log_id.map_or(0, |id| engine_index(id.index()))
}

/// Term of a log id.
pub(crate) fn term_of(log_id: &LogId) -> u64 {
    log_id.committed_leader_id().term
}

/// A log id from a term and an openraft index.
pub(crate) fn log_id(term: u64, openraft_index: u64) -> LogId {
    LogId::new_term_index(term, openraft_index)
}
