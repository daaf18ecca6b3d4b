//! One node's view for the Redis front end: run a read or a write here when this node leads,
//! forward it to the leader otherwise, wait out elections up to the request deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use kv_lease::kv::{KvResponse, KvStateMachine, KvStore};
use kv_lease::{InvalidationCause, ReadPath};
use raftengine::{Engine, Error, ErrorKind, NodeId, Role, TransportError, WriteOutcome};

use super::forward::{
    ErrorClass, ForwardError, ForwardServer, MuxTransport, Op, OpError, OpOutput,
};

/// How long to wait before asking again while there is no usable leader.
const RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Error kinds counted for INFO and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKindLabel {
    /// No leader answered before the deadline (`-TRYAGAIN`).
    TryAgain,
    /// A write's outcome is unknown (it may have been applied).
    Unknown,
    /// A request failed for good (too large, storage, shutdown).
    Failed,
    /// A client sent something that is not a valid command.
    Client,
    /// A client was refused for authentication.
    Auth,
    /// The peer answered with something that does not decode.
    Peer,
}

impl ErrorKindLabel {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::TryAgain,
        Self::Unknown,
        Self::Failed,
        Self::Client,
        Self::Auth,
        Self::Peer,
    ];

    /// The label used in INFO and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::TryAgain => "tryagain",
            Self::Unknown => "unknown_outcome",
            Self::Failed => "failed",
            Self::Client => "client",
            Self::Auth => "auth",
            Self::Peer => "peer",
        }
    }
}

/// Counters shown by INFO (the same events also go to the `metrics` facade).
#[derive(Debug, Default)]
pub struct NodeCounters {
    reads_fast: AtomicU64,
    reads_slow: AtomicU64,
    reads_forwarded: AtomicU64,
    writes_local: AtomicU64,
    writes_forwarded: AtomicU64,
    exec_committed: AtomicU64,
    exec_aborted: AtomicU64,
    errors: [AtomicU64; 6],
}

/// A snapshot of [`NodeCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Reads served here under the lease.
    pub reads_fast: u64,
    /// Reads served here after a quorum round.
    pub reads_slow: u64,
    /// Reads this node forwarded to the leader.
    pub reads_forwarded: u64,
    /// Writes proposed here.
    pub writes_local: u64,
    /// Writes this node forwarded to the leader.
    pub writes_forwarded: u64,
    /// EXECs that committed.
    pub exec_committed: u64,
    /// EXECs answered nil because a watched key changed.
    pub exec_aborted: u64,
    /// Errors by [`ErrorKindLabel`], in [`ErrorKindLabel::ALL`] order.
    pub errors: [u64; 6],
}

impl NodeCounters {
    /// Counts an error reply of `kind`.
    pub fn error(&self, kind: ErrorKindLabel) {
        self.errors[kind as usize].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("raftkv_errors_total", "kind" => kind.label()).increment(1);
    }

    /// Counts an EXEC's result.
    pub fn exec(&self, committed: bool) {
        let counter = if committed {
            &self.exec_committed
        } else {
            &self.exec_aborted
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("raftkv_exec_total", "result" => if committed { "committed" } else { "aborted" })
            .increment(1);
    }

    fn read(&self, label: &'static str) {
        let counter = match label {
            "fast" => &self.reads_fast,
            "slow" => &self.reads_slow,
            _ => &self.reads_forwarded,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("raftkv_reads_total", "path" => label).increment(1);
    }

    /// The counters now.
    pub fn snapshot(&self) -> CounterSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            reads_fast: load(&self.reads_fast),
            reads_slow: load(&self.reads_slow),
            reads_forwarded: load(&self.reads_forwarded),
            writes_local: load(&self.writes_local),
            writes_forwarded: load(&self.writes_forwarded),
            exec_committed: load(&self.exec_committed),
            exec_aborted: load(&self.exec_aborted),
            errors: std::array::from_fn(|i| load(&self.errors[i])),
        }
    }
}

/// Why an op failed, as the front end answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeError {
    /// No leader could be reached before the deadline; nothing was applied.
    TryAgain,
    /// A write may or may not have been applied.
    Unknown(String),
    /// The request failed and was not applied.
    Failed(String),
}

impl NodeError {
    /// The counter this error goes to.
    pub fn kind(&self) -> ErrorKindLabel {
        match self {
            Self::TryAgain => ErrorKindLabel::TryAgain,
            Self::Unknown(_) => ErrorKindLabel::Unknown,
            Self::Failed(_) => ErrorKindLabel::Failed,
        }
    }
}

/// The node: engine, KV store with its lease, forwarding transport, counters.
pub struct Node {
    id: NodeId,
    engine: Arc<dyn Engine>,
    kv: KvStore,
    transport: MuxTransport,
    counters: NodeCounters,
    request_timeout: Duration,
    /// Fault injection: invalidate the lease on every error and conflict (the seed bug).
    fault_invalidate_on_error: bool,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node over a started engine and its KV store.
    pub fn new(
        engine: Arc<dyn Engine>,
        kv: KvStore,
        transport: MuxTransport,
        request_timeout: Duration,
        fault_invalidate_on_error: bool,
    ) -> Self {
        Self {
            id: engine.id(),
            engine,
            kv,
            transport,
            counters: NodeCounters::default(),
            request_timeout,
            fault_invalidate_on_error,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// The KV store and its lease.
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// The counters.
    pub fn counters(&self) -> &NodeCounters {
        &self.counters
    }

    /// Whether the seed-bug fault injection is on.
    pub fn fault_injection(&self) -> bool {
        self.fault_invalidate_on_error
    }

    /// The deadline of a request starting now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.request_timeout
    }

    /// Runs `op` on the leader (here or by forwarding), retrying while nothing was applied and
    /// the deadline allows.
    pub async fn run(&self, op: &Op, deadline: Instant) -> Result<OpOutput, NodeError> {
        let is_write = matches!(op, Op::Write(_));
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(NodeError::TryAgain);
            }
            let remaining = deadline - now;
            let status = self.engine.status();
            let attempt = if status.role == Role::Leader {
                match tokio::time::timeout(remaining, self.run_local(op)).await {
                    Ok(result) => result,
                    Err(_) if is_write => {
                        return Err(NodeError::Unknown(
                            "the deadline passed while the write was in flight".into(),
                        ));
                    }
                    Err(_) => return Err(NodeError::TryAgain),
                }
            } else if let Some(leader) = status.leader.filter(|&leader| leader != self.id) {
                self.count_forward(op);
                match self.transport.forward(leader, op, remaining).await {
                    Ok(result) => result,
                    Err(ForwardError::Transport(TransportError::Timeout(_))) if is_write => {
                        return Err(NodeError::Unknown(format!(
                            "node {leader} did not answer before the deadline"
                        )));
                    }
                    Err(ForwardError::Wire(error)) => {
                        self.counters.error(ErrorKindLabel::Peer);
                        return Err(NodeError::Failed(format!("node {leader}: {error}")));
                    }
                    Err(ForwardError::Transport(_)) => Err(OpError {
                        class: ErrorClass::Retry,
                        hint: None,
                        message: String::new(),
                    }),
                }
            } else {
                Err(OpError {
                    class: ErrorClass::Retry,
                    hint: None,
                    message: String::new(),
                })
            };
            match attempt {
                Ok(output) => return Ok(output),
                Err(error) => match error.class {
                    ErrorClass::Retry => {
                        let pause =
                            RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now()));
                        tokio::time::sleep(pause).await;
                    }
                    ErrorClass::Unknown => return Err(NodeError::Unknown(error.message)),
                    ErrorClass::Failed => return Err(NodeError::Failed(error.message)),
                },
            }
        }
    }

    fn count_forward(&self, op: &Op) {
        match op {
            Op::Read(_) | Op::ReadVersioned(_) => self.counters.read("forwarded"),
            Op::Write(_) => {
                self.counters
                    .writes_forwarded
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Runs `op` here, without forwarding; fails with `Retry` when this node does not lead.
    async fn run_local(&self, op: &Op) -> Result<OpOutput, OpError> {
        if self.engine.status().role != Role::Leader {
            return Err(OpError {
                class: ErrorClass::Retry,
                hint: self.engine.status().leader,
                message: format!("node {} does not lead", self.id),
            });
        }
        let result = match op {
            Op::Read(keys) => self
                .read_local(|sm| keys.iter().map(|key| sm.get(key)).collect())
                .await
                .map(OpOutput::Values),
            Op::ReadVersioned(keys) => self
                .read_local(|sm| keys.iter().map(|key| sm.get_versioned(key)).collect())
                .await
                .map(OpOutput::Versioned),
            Op::Write(command) => {
                self.counters.writes_local.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("raftkv_quorum_rounds_total", "kind" => "propose").increment(1);
                match self.kv.execute(command.clone()).await {
                    Ok(response) => {
                        if self.fault_invalidate_on_error && response.is_conflict() {
                            // FAULT INJECTION: the seed bug treated a write conflict (an
                            // application outcome) as a leadership error.
                            self.kv.lease().invalidate(InvalidationCause::NotLeader);
                        }
                        Ok(OpOutput::Response(response))
                    }
                    Err(error) => Err(classify(&error, true)),
                }
            }
        };
        if self.fault_invalidate_on_error && result.is_err() {
            // FAULT INJECTION: every error invalidates the lease, as in the seed bug.
            self.kv.lease().invalidate(InvalidationCause::NotLeader);
        }
        result
    }

    /// Runs `read` on the local state under the lease (or after a quorum round), counting the
    /// path it took.
    async fn read_local<T>(&self, read: impl FnOnce(&KvStateMachine) -> T) -> Result<T, OpError> {
        let state = self.kv.state();
        match self.kv.lease().read(|| state.read(read)).await {
            Ok(outcome) => {
                if outcome.path == ReadPath::Slow {
                    metrics::counter!("raftkv_quorum_rounds_total", "kind" => "read_index")
                        .increment(1);
                }
                self.counters.read(outcome.path.label());
                Ok(outcome.value)
            }
            Err(error) => Err(classify(&error, false)),
        }
    }
}

/// Maps an engine error to what the forwarding node may do with it.
fn classify(error: &Error, is_write: bool) -> OpError {
    let retry_kind = matches!(
        error.kind(),
        ErrorKind::NotLeader { .. }
            | ErrorKind::TransferInProgress { .. }
            | ErrorKind::LeadershipLost
            | ErrorKind::Unavailable
            | ErrorKind::Busy
            | ErrorKind::Timeout
    );
    let class = if retry_kind && (!is_write || error.outcome() == WriteOutcome::NotApplied) {
        ErrorClass::Retry
    } else if is_write && error.outcome() == WriteOutcome::Unknown {
        ErrorClass::Unknown
    } else {
        ErrorClass::Failed
    };
    OpError {
        class,
        hint: error.leader_hint(),
        message: error.to_string(),
    }
}

#[async_trait]
impl ForwardServer for Node {
    async fn serve_forwarded(&self, op: Op, remaining: Duration) -> Result<OpOutput, OpError> {
        match tokio::time::timeout(remaining, self.run_local(&op)).await {
            Ok(result) => result,
            Err(_) => Err(OpError {
                class: if matches!(op, Op::Write(_)) {
                    ErrorClass::Unknown
                } else {
                    ErrorClass::Retry
                },
                hint: None,
                message: "the deadline passed on the leader".into(),
            }),
        }
    }
}

/// Reads the value and version of each of `keys` through [`Node::run`], on the same paths as
/// plain reads (the lease fast path, else a quorum round, forwarded when this node does not
/// lead).
pub async fn read_versioned(
    node: &Node,
    keys: Vec<Bytes>,
    deadline: Instant,
) -> Result<Vec<(Option<Bytes>, u64)>, NodeError> {
    let expected = keys.len();
    match node.run(&Op::ReadVersioned(keys), deadline).await? {
        OpOutput::Versioned(values) if values.len() == expected => Ok(values),
        other => Err(NodeError::Failed(format!(
            "unexpected answer to a read: {other:?}"
        ))),
    }
}

/// Replicates `command` through [`Node::run`].
pub async fn write(
    node: &Node,
    command: kv_lease::kv::KvCommand,
    deadline: Instant,
) -> Result<KvResponse, NodeError> {
    match node.run(&Op::Write(command), deadline).await? {
        OpOutput::Response(response) => Ok(response),
        other => Err(NodeError::Failed(format!(
            "unexpected answer to a write: {other:?}"
        ))),
    }
}
