//! The engine's error model: one [`Error`] classified by [`ErrorKind`], with an explicit
//! [`WriteOutcome`] so a caller knows whether a failed write may still take effect.
//!
//! Classification is by type only. The lease layer asks [`Error::is_leadership_loss`] and nothing
//! else; application-level failures (a failed compare-and-set, say) live inside a successful
//! response of the state machine and are never an `Error` of the engine.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::NodeId;

/// Result alias used across the engine contract.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What is known about a write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteOutcome {
    /// The command was never appended to any log, or was appended and then provably removed
    /// before it could commit. Retrying it elsewhere cannot apply it twice.
    NotApplied,
    /// The command may or may not commit. A retry must be idempotent or deduplicated.
    Unknown,
}

/// Why a request was refused as invalid. Typed so callers can branch without parsing text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The node id is not part of the cluster's membership.
    UnknownNode(NodeId),
    /// The node is already a member in the requested role.
    AlreadyMember(NodeId),
    /// The node is a learner where a voter is required (e.g. a transfer target).
    NotAVoter(NodeId),
    /// The node is a voter where a learner is required (e.g. promotion).
    NotALearner(NodeId),
    /// The request targets the node that received it, where that makes no sense.
    TargetIsSelf(NodeId),
    /// The change would leave the cluster without a voter.
    LastVoter(NodeId),
    /// Another membership change has not finished yet.
    MembershipChangePending,
    /// The command exceeds the configured maximum size.
    TooLarge {
        /// Size of the rejected command in bytes.
        size: usize,
        /// Configured limit in bytes.
        limit: usize,
    },
    /// The configuration is inconsistent; the text says which setting.
    InvalidConfig(String),
    /// A peer sent bytes that do not decode; nothing was applied.
    MalformedMessage,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownNode(id) => write!(f, "node {id} is not a member of the cluster"),
            Self::AlreadyMember(id) => write!(f, "node {id} is already a member in that role"),
            Self::NotAVoter(id) => write!(f, "node {id} is a learner, not a voter"),
            Self::NotALearner(id) => write!(f, "node {id} is not a learner"),
            Self::TargetIsSelf(id) => write!(f, "node {id} cannot target itself"),
            Self::LastVoter(id) => {
                write!(
                    f,
                    "removing node {id} would leave the cluster without a voter"
                )
            }
            Self::MembershipChangePending => {
                write!(
                    f,
                    "a membership change is still in progress; retry after it commits"
                )
            }
            Self::TooLarge { size, limit } => {
                write!(
                    f,
                    "command of {size} bytes exceeds the limit of {limit} bytes"
                )
            }
            Self::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Self::MalformedMessage => write!(f, "malformed message"),
        }
    }
}

/// The classification of an [`Error`]. Match on this, never on display text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// This node does not lead. Nothing was appended. `hint` is the leader this node believes
    /// in, if any.
    NotLeader {
        /// The current leader as known to this node.
        hint: Option<NodeId>,
    },
    /// The leader is handing leadership over. Nothing was appended.
    TransferInProgress {
        /// The node leadership is being transferred to, if known.
        target: Option<NodeId>,
    },
    /// Leadership ended while the request was in flight. See [`Error::outcome`].
    LeadershipLost,
    /// A deadline passed before an answer arrived.
    Timeout,
    /// No quorum could be reached.
    Unavailable,
    /// Back-pressure: too much uncommitted work. Nothing was appended.
    Busy,
    /// The request is invalid.
    Rejected(RejectReason),
    /// The engine is shutting down or has shut down.
    Shutdown,
    /// The log store failed.
    Storage,
    /// The engine hit an unrecoverable fault (a panic inside the Raft library, a broken
    /// invariant). The node must be restarted.
    Fatal,
    /// The backend cannot do this at all.
    Unsupported,
}

impl ErrorKind {
    /// The write outcome implied by the kind when nothing more precise is known.
    pub fn default_outcome(&self) -> WriteOutcome {
        match self {
            Self::NotLeader { .. }
            | Self::TransferInProgress { .. }
            | Self::Unavailable
            | Self::Busy
            | Self::Rejected(_)
            | Self::Unsupported => WriteOutcome::NotApplied,
            Self::LeadershipLost | Self::Timeout | Self::Shutdown | Self::Storage | Self::Fatal => {
                WriteOutcome::Unknown
            }
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLeader { hint: Some(id) } => write!(f, "not leader; retry on node {id}"),
            Self::NotLeader { hint: None } => {
                write!(
                    f,
                    "not leader and no leader is known; retry after an election"
                )
            }
            Self::TransferInProgress { target: Some(id) } => write!(
                f,
                "leadership is being transferred to node {id}; retry there once it leads"
            ),
            Self::TransferInProgress { target: None } => {
                write!(
                    f,
                    "leadership transfer in progress; retry after it completes"
                )
            }
            Self::LeadershipLost => {
                write!(f, "leadership was lost while the request was in flight")
            }
            Self::Timeout => write!(f, "deadline exceeded"),
            Self::Unavailable => write!(f, "no quorum reachable"),
            Self::Busy => write!(f, "too much uncommitted work; back off and retry"),
            Self::Rejected(reason) => write!(f, "rejected: {reason}"),
            Self::Shutdown => write!(f, "engine is shut down"),
            Self::Storage => write!(f, "log store failure"),
            Self::Fatal => write!(f, "fatal engine failure; restart the node"),
            Self::Unsupported => write!(f, "not supported by this backend"),
        }
    }
}

type Source = Box<dyn StdError + Send + Sync + 'static>;

/// An engine error: a kind, a write outcome, optional context and an optional source.
pub struct Error {
    kind: ErrorKind,
    outcome: WriteOutcome,
    context: Option<String>,
    source: Option<Source>,
}

impl Error {
    /// An error of `kind` with the kind's default write outcome.
    pub fn new(kind: ErrorKind) -> Self {
        let outcome = kind.default_outcome();
        Self {
            kind,
            outcome,
            context: None,
            source: None,
        }
    }

    /// This node does not lead; nothing was appended.
    pub fn not_leader(hint: Option<NodeId>) -> Self {
        Self::new(ErrorKind::NotLeader { hint })
    }

    /// A transfer is running; nothing was appended.
    pub fn transfer_in_progress(target: Option<NodeId>) -> Self {
        Self::new(ErrorKind::TransferInProgress { target })
    }

    /// Leadership ended in flight; the caller states what is known about the write.
    pub fn leadership_lost(outcome: WriteOutcome) -> Self {
        Self::new(ErrorKind::LeadershipLost).with_outcome(outcome)
    }

    /// A deadline of `after` passed.
    pub fn timeout(after: Duration) -> Self {
        Self::new(ErrorKind::Timeout).with_context(format!("no answer within {after:?}"))
    }

    /// The request was invalid.
    pub fn rejected(reason: RejectReason) -> Self {
        Self::new(ErrorKind::Rejected(reason))
    }

    /// The engine is shut down.
    pub fn shutdown() -> Self {
        Self::new(ErrorKind::Shutdown)
    }

    /// Replaces the write outcome.
    pub fn with_outcome(mut self, outcome: WriteOutcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Adds human-readable context (shown after the kind's text).
    pub fn with_context(mut self, context: impl Into<String>) -> Self {
        self.context = Some(context.into());
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The classification.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// What is known about the write this error answers.
    pub fn outcome(&self) -> WriteOutcome {
        self.outcome
    }

    /// The context text, if any.
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// The leader a client should retry on, if the error names one.
    pub fn leader_hint(&self) -> Option<NodeId> {
        match self.kind {
            ErrorKind::NotLeader { hint } => hint,
            ErrorKind::TransferInProgress { target } => target,
            _ => None,
        }
    }

    /// True exactly for [`ErrorKind::NotLeader`], [`ErrorKind::TransferInProgress`] and
    /// [`ErrorKind::LeadershipLost`]: the errors that prove this node may no longer lead, and so
    /// the only ones that may invalidate a read lease.
    pub fn is_leadership_loss(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::NotLeader { .. }
                | ErrorKind::TransferInProgress { .. }
                | ErrorKind::LeadershipLost
        )
    }

    /// True when retrying the same write elsewhere cannot apply it twice.
    pub fn is_safe_to_retry(&self) -> bool {
        self.outcome == WriteOutcome::NotApplied
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(context) = &self.context {
            write!(f, " ({context})")?;
        }
        if self.kind == ErrorKind::LeadershipLost {
            match self.outcome {
                WriteOutcome::Unknown => write!(
                    f,
                    "; the write may still commit, deduplicate before retrying"
                )?,
                WriteOutcome::NotApplied => write!(f, "; the write was not applied")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("outcome", &self.outcome);
        if let Some(context) = &self.context {
            d.field("context", context);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<ErrorKind> {
        vec![
            ErrorKind::NotLeader { hint: Some(2) },
            ErrorKind::NotLeader { hint: None },
            ErrorKind::TransferInProgress { target: Some(3) },
            ErrorKind::TransferInProgress { target: None },
            ErrorKind::LeadershipLost,
            ErrorKind::Timeout,
            ErrorKind::Unavailable,
            ErrorKind::Busy,
            ErrorKind::Rejected(RejectReason::UnknownNode(9)),
            ErrorKind::Shutdown,
            ErrorKind::Storage,
            ErrorKind::Fatal,
            ErrorKind::Unsupported,
        ]
    }

    #[test]
    fn leadership_loss_is_exactly_the_first_three_kinds() {
        for kind in every_kind() {
            let expected = matches!(
                kind,
                ErrorKind::NotLeader { .. }
                    | ErrorKind::TransferInProgress { .. }
                    | ErrorKind::LeadershipLost
            );
            assert_eq!(
                Error::new(kind.clone()).is_leadership_loss(),
                expected,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn default_outcomes_follow_the_table() {
        use WriteOutcome::*;
        let expected = [
            NotApplied, NotApplied, NotApplied, NotApplied, Unknown, Unknown, NotApplied,
            NotApplied, NotApplied, Unknown, Unknown, Unknown, NotApplied,
        ];
        for (kind, outcome) in every_kind().into_iter().zip(expected) {
            assert_eq!(Error::new(kind.clone()).outcome(), outcome, "{kind:?}");
        }
    }

    #[test]
    fn leadership_lost_states_its_outcome() {
        let unknown = Error::leadership_lost(WriteOutcome::Unknown);
        assert_eq!(unknown.outcome(), WriteOutcome::Unknown);
        assert!(!unknown.is_safe_to_retry());
        let not_applied = Error::leadership_lost(WriteOutcome::NotApplied);
        assert!(not_applied.is_safe_to_retry());
        assert_eq!(
            unknown.to_string(),
            "leadership was lost while the request was in flight; the write may still commit, \
             deduplicate before retrying"
        );
        assert_eq!(
            not_applied.to_string(),
            "leadership was lost while the request was in flight; the write was not applied"
        );
    }

    #[test]
    fn display_text_tells_what_to_do() {
        assert_eq!(
            Error::not_leader(Some(2)).to_string(),
            "not leader; retry on node 2"
        );
        assert_eq!(
            Error::not_leader(None).to_string(),
            "not leader and no leader is known; retry after an election"
        );
        assert_eq!(
            Error::transfer_in_progress(Some(3)).to_string(),
            "leadership is being transferred to node 3; retry there once it leads"
        );
        assert_eq!(
            Error::timeout(Duration::from_millis(250)).to_string(),
            "deadline exceeded (no answer within 250ms)"
        );
        assert_eq!(
            Error::rejected(RejectReason::TooLarge { size: 10, limit: 4 }).to_string(),
            "rejected: command of 10 bytes exceeds the limit of 4 bytes"
        );
        assert_eq!(
            Error::rejected(RejectReason::LastVoter(1)).to_string(),
            "rejected: removing node 1 would leave the cluster without a voter"
        );
        assert_eq!(
            Error::new(ErrorKind::Busy).to_string(),
            "too much uncommitted work; back off and retry"
        );
    }

    #[test]
    fn leader_hint_comes_from_routing_kinds_only() {
        assert_eq!(Error::not_leader(Some(4)).leader_hint(), Some(4));
        assert_eq!(Error::transfer_in_progress(Some(5)).leader_hint(), Some(5));
        assert_eq!(
            Error::leadership_lost(WriteOutcome::Unknown).leader_hint(),
            None
        );
    }

    #[test]
    fn source_is_preserved() {
        let io = std::io::Error::other("disk on fire");
        let err = Error::new(ErrorKind::Storage).with_source(io);
        let source = StdError::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk on fire"));
    }
}
