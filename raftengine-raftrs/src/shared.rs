//! What the engine handle and the driver task share: the event type the task receives, the
//! published views (status, quorum ack) and the halt state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use raftengine::adapter::{LeadershipTracker, StatusChannel};
use raftengine::{
    Applied, Clock, Config, Error, ErrorKind, LossCause, Membership, Result, SnapshotInfo,
    Transport,
};
use tokio::sync::{oneshot, watch};

use crate::membership::Change;
use crate::quorum::QuorumTime;
use crate::reads::ReadReply;
use crate::timing::Ticks;
use crate::transfer::TransferReply;

/// Everything the driver task receives.
#[derive(Debug)]
pub(crate) enum Event {
    /// Bytes from a peer.
    Message { from: u64, bytes: Bytes },
    /// `Engine::propose`.
    Propose {
        command: Bytes,
        reply: oneshot::Sender<Result<Applied>>,
    },
    /// `Engine::linearizable_read`.
    Read { reply: ReadReply },
    /// `Engine::transfer_leadership`.
    Transfer {
        target: Option<u64>,
        reply: TransferReply,
    },
    /// A membership change.
    Membership {
        change: Change,
        reply: oneshot::Sender<Result<Membership>>,
    },
    /// `Engine::snapshot`.
    Snapshot {
        reply: oneshot::Sender<Result<SnapshotInfo>>,
    },
    /// `Engine::shutdown` (or the engine was dropped).
    Shutdown,
}

/// The quorum-ack view published for `Engine::quorum_ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PublishedAck {
    pub(crate) term: u64,
    pub(crate) time: QuorumTime,
}

/// State shared between the engine handle and the driver task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) id: u64,
    pub(crate) config: Config,
    pub(crate) ticks: Ticks,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) status: StatusChannel,
    pub(crate) tracker: LeadershipTracker,
    pub(crate) ack: Mutex<Option<PublishedAck>>,
    /// Set (before any waiter is failed) once the node stopped: `Shutdown`, `Fatal` or
    /// `Storage`.
    pub(crate) halted: Mutex<Option<ErrorKind>>,
    /// True once the driver task has finished.
    pub(crate) done: watch::Sender<bool>,
    /// True once this engine removed its handler from the transport (done at most once, so a
    /// late stop of a dropped engine cannot unregister a newer engine on the same transport).
    pub(crate) released: AtomicBool,
    /// Asks the driver to stop. Separate from the bounded event queue, so a full queue can
    /// never keep a shutdown out.
    pub(crate) stop: tokio::sync::Notify,
    /// Peer messages dropped because the driver's queue was full (raft-rs retransmits).
    pub(crate) dropped_messages: Arc<std::sync::atomic::AtomicU64>,
}

/// How many events (peer messages and requests) may wait for the driver. Past it, peer
/// messages are dropped and counted and requests fail with `Busy`, so a driver that falls
/// behind cannot make the queue, and memory, grow without bound.
pub(crate) const EVENT_QUEUE: usize = 4096;

impl Shared {
    /// The error every request made after the node stopped gets, if it did. A node stopped by
    /// a failing store answers `Fatal`: the call that met the failure got `Storage`, and no
    /// later call can be served until the node restarts on a healthy store.
    pub(crate) fn halted_error(&self) -> Option<Error> {
        let kind = self
            .halted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        Some(match kind {
            ErrorKind::Storage => Error::new(ErrorKind::Fatal).with_context(
                "the log store failed a write; the node stopped and must be restarted on a \
                 healthy store",
            ),
            other => halt_error(other),
        })
    }

    /// Records why the node stopped (the first reason wins).
    pub(crate) fn set_halted(&self, kind: ErrorKind) {
        let mut halted = self.halted.lock().unwrap_or_else(|p| p.into_inner());
        if halted.is_none() {
            *halted = Some(kind);
        }
    }

    /// Stops serving the network, once.
    pub(crate) fn release_transport(&self) {
        if !self.released.swap(true, Ordering::SeqCst) {
            self.transport.stop_serving();
        }
    }

    /// Marks the node stopped in the published status and stops serving the network.
    pub(crate) fn finish(&self, cause: LossCause) {
        self.tracker.lost(cause);
        *self.ack.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.release_transport();
        self.status.mark_shutdown();
        self.done.send_replace(true);
    }
}

/// The error the requests waiting when the node stopped for `kind` get.
pub(crate) fn halt_error(kind: ErrorKind) -> Error {
    match kind {
        ErrorKind::Shutdown => Error::shutdown(),
        ErrorKind::Storage => {
            Error::new(ErrorKind::Storage).with_context("the log store failed; the node stopped")
        }
        other => Error::new(other).with_context("the node stopped after a fatal failure"),
    }
}

/// How long `Engine::shutdown` waits for the driver task to finish before reporting `Timeout`.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
