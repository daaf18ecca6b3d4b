//! [`KvStore`]: a typed client of the reference KV state machine on one node, writing through
//! [`Lease::propose`] and reading through the lease or a linearizable read.

use bytes::Bytes;
use raftengine::{Error, RejectReason, Result, SharedStateMachine};

use super::command::{KvCommand, KvResponse, Txn};
use super::state_machine::KvStateMachine;
use crate::reader::{Lease, ReadOutcome};

/// Typed KV operations on one node: writes go through the log (keeping the lease warm), reads
/// go through the lease (fast path) or a quorum round.
///
/// Conditional writes that fail come back as `Ok(KvResponse::Conflict { .. })`: an application
/// outcome that never touches the lease.
#[derive(Debug, Clone)]
pub struct KvStore {
    lease: Lease,
    state: SharedStateMachine<KvStateMachine>,
}

fn malformed(err: impl std::fmt::Display) -> Error {
    Error::rejected(RejectReason::MalformedMessage).with_context(err.to_string())
}

impl KvStore {
    /// A client over `lease` (and its engine) reading the local `state` — the same state
    /// machine the engine applies to.
    pub fn new(lease: Lease, state: SharedStateMachine<KvStateMachine>) -> Self {
        Self { lease, state }
    }

    /// The lease this store reads under.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The local state machine.
    pub fn state(&self) -> &SharedStateMachine<KvStateMachine> {
        &self.state
    }

    /// Replicates `command` and decodes the state machine's response.
    pub async fn execute(&self, command: KvCommand) -> Result<KvResponse> {
        command.validate().map_err(malformed)?;
        let applied = self.lease.propose(command.encode()).await?;
        KvResponse::decode(&applied.response).map_err(malformed)
    }

    /// Sets `key` to `value`.
    pub async fn put(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<KvResponse> {
        self.execute(KvCommand::Put {
            key: key.into(),
            value: value.into(),
        })
        .await
    }

    /// Removes `key`.
    pub async fn delete(&self, key: impl Into<Bytes>) -> Result<KvResponse> {
        self.execute(KvCommand::Delete { key: key.into() }).await
    }

    /// Compare-and-set; a mismatch is `Ok(KvResponse::Conflict { .. })`.
    pub async fn cas(
        &self,
        key: impl Into<Bytes>,
        expected: Option<Bytes>,
        new: Option<Bytes>,
    ) -> Result<KvResponse> {
        self.execute(KvCommand::Cas {
            key: key.into(),
            expected,
            new,
        })
        .await
    }

    /// A multi-key conditional transaction.
    pub async fn txn(&self, txn: Txn) -> Result<KvResponse> {
        self.execute(KvCommand::Txn(txn)).await
    }

    /// Reads `key` under the lease: locally when the lease is valid, else after a quorum round.
    pub async fn get(&self, key: &[u8]) -> Result<ReadOutcome<Option<Bytes>>> {
        let state = &self.state;
        self.lease.read(|| state.read(|sm| sm.get(key))).await
    }

    /// Reads `key` after a `linearizable_read()` quorum round, never on the fast path.
    pub async fn get_linearizable(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.lease.linearizable_read().await?;
        Ok(self.state.read(|sm| sm.get(key)))
    }

    /// Reads `key`'s value and version (see [`KvStateMachine::version`]) under the lease, on
    /// the same path as [`KvStore::get`].
    pub async fn get_versioned(&self, key: &[u8]) -> Result<ReadOutcome<(Option<Bytes>, u64)>> {
        let state = &self.state;
        self.lease
            .read(|| state.read(|sm| sm.get_versioned(key)))
            .await
    }

    /// Reads `key`'s value and version after a `linearizable_read()` quorum round.
    pub async fn get_versioned_linearizable(&self, key: &[u8]) -> Result<(Option<Bytes>, u64)> {
        self.lease.linearizable_read().await?;
        Ok(self.state.read(|sm| sm.get_versioned(key)))
    }

    /// Reads `key` through the log (a replicated `Get` command).
    pub async fn get_replicated(&self, key: impl Into<Bytes>) -> Result<Option<Bytes>> {
        match self.execute(KvCommand::Get { key: key.into() }).await? {
            KvResponse::Value(value) => Ok(value),
            other => Err(malformed(format!("unexpected response to Get: {other:?}"))),
        }
    }
}
