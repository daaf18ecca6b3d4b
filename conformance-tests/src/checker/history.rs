//! Recording what concurrent clients did: one [`Operation`] per request, with invocation and
//! completion stamps, the outcome, and for reads the path that served them.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use raftengine::NodeId;
use tokio::time::Instant;

/// A client of the workload. Each client issues one request at a time.
pub type ClientId = u64;
/// A key of the register map.
pub type Key = u64;
/// A value written to a key. Workloads write every value at most once per key.
pub type Value = u64;

/// Which read path served a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadPath {
    /// `Engine::linearizable_read` (ReadIndex) followed by a local state machine read.
    Linearizable,
    /// A local read under a leader lease (kv-lease fast path).
    Lease,
    /// The read went through the log as a command.
    Log,
    /// A local state-machine read with no leadership check at all. Not linearizable; used by
    /// the suite's negative test to prove the checker sees stale reads.
    Local,
}

impl fmt::Display for ReadPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Linearizable => "linearizable",
            Self::Lease => "lease",
            Self::Log => "log",
            Self::Local => "local (unchecked)",
        })
    }
}

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Input {
    /// Read the key.
    Get,
    /// Overwrite the key with a value.
    Put(Value),
    /// Set the key to `new` if it currently holds `expected` (`None` = absent).
    Cas {
        /// The value the key must hold.
        expected: Option<Value>,
        /// The value written when the condition holds.
        new: Value,
    },
}

impl Input {
    /// The value this input would write, if it writes.
    pub fn written_value(&self) -> Option<Value> {
        match *self {
            Self::Get => None,
            Self::Put(value) => Some(value),
            Self::Cas { new, .. } => Some(new),
        }
    }

    /// True for puts and compare-and-sets.
    pub fn is_write(&self) -> bool {
        !matches!(self, Self::Get)
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Get => write!(f, "get"),
            Self::Put(value) => write!(f, "put({value})"),
            Self::Cas { expected, new } => write!(f, "cas({}→{new})", show(*expected)),
        }
    }
}

/// What a client observed when a request succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    /// A read's result (`None` = the key is absent).
    Value(Option<Value>),
    /// A put took effect.
    Written,
    /// Whether a compare-and-set's condition held (and so whether it wrote).
    Cas(bool),
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Value(value) => write!(f, "{}", show(*value)),
            Self::Written => write!(f, "ok"),
            Self::Cas(held) => write!(f, "{held}"),
        }
    }
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It took effect and the client saw this result.
    Ok(Output),
    /// It did not take effect (an error with `WriteOutcome::NotApplied`, or a failed read).
    Failed,
    /// It may or may not have taken effect (timeout, leadership lost with unknown outcome, or
    /// the client gave up). For the checker its completion is at +∞.
    Unknown,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok(output) => write!(f, "{output}"),
            Self::Failed => write!(f, "failed"),
            Self::Unknown => write!(f, "unknown"),
        }
    }
}

/// A point in the recorded history. `seq` orders every invocation and completion the recorder
/// saw (so two events at the same virtual instant still have a real-time order); `at` is the
/// virtual time, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Position in the recorder's total order of events.
    pub seq: u64,
    /// Virtual time of the event.
    pub at: Instant,
}

/// One request of one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Position in the history (0-based).
    pub id: usize,
    /// The issuing client.
    pub client: ClientId,
    /// The key it touched.
    pub key: Key,
    /// What was asked.
    pub input: Input,
    /// How it ended.
    pub outcome: Outcome,
    /// When it was invoked.
    pub invoked: Stamp,
    /// When the client saw the answer; `None` if it never did.
    pub completed: Option<Stamp>,
    /// The node that served it, if known.
    pub node: Option<NodeId>,
    /// For reads: the path that served it.
    pub read_path: Option<ReadPath>,
    /// The version (log index of the write that produced the value) this operation wrote or
    /// read, when known. `Some(0)` for a read of an absent key.
    pub version: Option<u64>,
}

impl Operation {
    /// True when the checker must consider this operation: failed writes took no effect and
    /// reads that did not return observed nothing.
    pub fn is_relevant(&self) -> bool {
        match self.outcome {
            Outcome::Ok(_) => true,
            Outcome::Failed => false,
            Outcome::Unknown => self.input.is_write(),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} client {} key {} {} -> {} [seq {}..{}]",
            self.id,
            self.client,
            self.key,
            self.input,
            self.outcome,
            self.invoked.seq,
            self.completed
                .map_or_else(|| "∞".to_string(), |c| c.seq.to_string())
        )?;
        if let Some(node) = self.node {
            write!(f, " on node {node}")?;
        }
        if let Some(path) = self.read_path {
            write!(f, " via {path}")?;
        }
        if let Some(version) = self.version {
            write!(f, " @v{version}")?;
        }
        Ok(())
    }
}

fn show(value: Option<Value>) -> String {
    value.map_or_else(|| "absent".to_string(), |v| v.to_string())
}

/// A complete history: every operation the clients issued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Operation>,
}

impl History {
    /// A history made of `ops`; their ids are renumbered to their positions.
    pub fn from_ops(mut ops: Vec<Operation>) -> Self {
        for (id, op) in ops.iter_mut().enumerate() {
            op.id = id;
        }
        Self { ops }
    }

    /// Every operation, in invocation-recording order.
    pub fn ops(&self) -> &[Operation] {
        &self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The keys touched.
    pub fn keys(&self) -> BTreeSet<Key> {
        self.ops.iter().map(|op| op.key).collect()
    }

    /// Counts by outcome class, for reports.
    pub fn summary(&self) -> HistorySummary {
        let mut summary = HistorySummary::default();
        for op in &self.ops {
            match (op.input.is_write(), op.outcome) {
                (false, Outcome::Ok(_)) if op.read_path == Some(ReadPath::Lease) => {
                    summary.lease_reads += 1;
                }
                (false, Outcome::Ok(_)) => summary.reads += 1,
                (false, _) => summary.failed_reads += 1,
                (true, Outcome::Ok(_)) => summary.writes_ok += 1,
                (true, Outcome::Failed) => summary.writes_failed += 1,
                (true, Outcome::Unknown) => summary.writes_unknown += 1,
            }
        }
        summary
    }
}

/// Counts of a history by kind and outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistorySummary {
    /// Successful reads not served by a lease.
    pub reads: usize,
    /// Successful lease reads.
    pub lease_reads: usize,
    /// Reads that returned an error.
    pub failed_reads: usize,
    /// Writes acknowledged.
    pub writes_ok: usize,
    /// Writes that certainly did not apply.
    pub writes_failed: usize,
    /// Writes that may or may not have applied.
    pub writes_unknown: usize,
}

impl fmt::Display for HistorySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} reads ({} lease, {} failed), writes: {} ok, {} not applied, {} unknown",
            self.reads + self.lease_reads,
            self.lease_reads,
            self.failed_reads,
            self.writes_ok,
            self.writes_failed,
            self.writes_unknown
        )
    }
}

/// Records operations from any number of concurrent client tasks. Cheap to clone; clones
/// record into the same history.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<RecorderState>>,
}

#[derive(Default)]
struct RecorderState {
    next_seq: u64,
    ops: Vec<Operation>,
}

impl RecorderState {
    fn stamp(&mut self) -> Stamp {
        let seq = self.next_seq;
        self.next_seq += 1;
        Stamp {
            seq,
            at: Instant::now(),
        }
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("ops", &self.lock().ops.len())
            .finish()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, RecorderState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the invocation of a request, now. Complete the returned handle with the answer;
    /// dropping it uncompleted records the outcome as unknown.
    pub fn invoke(&self, client: ClientId, key: Key, input: Input) -> PendingOp {
        let mut state = self.lock();
        let invoked = state.stamp();
        let id = state.ops.len();
        state.ops.push(Operation {
            id,
            client,
            key,
            input,
            outcome: Outcome::Unknown,
            invoked,
            completed: None,
            node: None,
            read_path: None,
            version: None,
        });
        PendingOp {
            recorder: self.clone(),
            id,
            done: false,
        }
    }

    /// A copy of everything recorded so far (operations still pending appear as unknown).
    pub fn history(&self) -> History {
        History {
            ops: self.lock().ops.clone(),
        }
    }
}

/// An invoked request waiting for its answer.
#[derive(Debug)]
#[must_use = "complete the operation with ok/failed/unknown"]
pub struct PendingOp {
    recorder: Recorder,
    id: usize,
    done: bool,
}

impl PendingOp {
    fn update(&self, change: impl FnOnce(&mut Operation)) {
        let mut state = self.recorder.lock();
        change(&mut state.ops[self.id]);
    }

    /// Names the node serving the request.
    pub fn served_by(&self, node: NodeId) {
        self.update(|op| op.node = Some(node));
    }

    /// Names the read path (reads only).
    pub fn via(&self, path: ReadPath) {
        self.update(|op| op.read_path = Some(path));
    }

    fn finish(mut self, outcome: Outcome, version: Option<u64>) {
        self.done = true;
        let mut state = self.recorder.lock();
        let completed = state.stamp();
        let op = &mut state.ops[self.id];
        op.outcome = outcome;
        op.version = version;
        op.completed = Some(completed);
    }

    /// The request took effect with this result; `version` is the log index of the value
    /// written or read, when known.
    pub fn ok(self, output: Output, version: Option<u64>) {
        self.finish(Outcome::Ok(output), version);
    }

    /// The request certainly took no effect.
    pub fn failed(self) {
        self.finish(Outcome::Failed, None);
    }

    /// The request may or may not have taken effect.
    pub fn unknown(self) {
        self.finish(Outcome::Unknown, None);
    }
}

impl Drop for PendingOp {
    fn drop(&mut self) {
        if !self.done {
            // Abandoned (the client task was cancelled): the effect is unknown and the client
            // never saw an answer, so the completion stays open.
            self.update(|op| op.outcome = Outcome::Unknown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_orders_events_and_marks_abandoned_ops_unknown() {
        let recorder = Recorder::new();
        let a = recorder.invoke(1, 7, Input::Put(10));
        let b = recorder.invoke(2, 7, Input::Get);
        b.via(ReadPath::Linearizable);
        b.served_by(3);
        a.ok(Output::Written, Some(4));
        b.ok(Output::Value(Some(10)), Some(4));
        let c = recorder.invoke(1, 7, Input::Put(11));
        drop(c);
        let history = recorder.history();
        assert_eq!(history.len(), 3);
        let ops = history.ops();
        assert_eq!(ops[0].invoked.seq, 0);
        assert_eq!(ops[1].invoked.seq, 1);
        assert_eq!(ops[0].completed.map(|s| s.seq), Some(2));
        assert_eq!(ops[1].completed.map(|s| s.seq), Some(3));
        assert_eq!(ops[1].read_path, Some(ReadPath::Linearizable));
        assert_eq!(ops[1].node, Some(3));
        assert_eq!(ops[2].outcome, Outcome::Unknown);
        assert_eq!(ops[2].completed, None);
        let summary = history.summary();
        assert_eq!(summary.writes_ok, 1);
        assert_eq!(summary.writes_unknown, 1);
        assert_eq!(summary.reads, 1);
        assert!(
            ops[1].to_string().contains("via linearizable"),
            "{}",
            ops[1]
        );
    }
}
