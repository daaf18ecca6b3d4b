//! [`Probed`]: a backend whose transports watch for one kind of message and record what the
//! sending engine published at the instant it left. A backend crate supplies the recogniser
//! (only it can read its wire format) and checks ordering rules the suite cannot see from
//! outside, such as "the transfer is published before the message that forces the election".

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use raftengine::{
    Capabilities, Config, Engine, EngineParts, Inbound, NodeId, Status, Transport, TransportError,
};

use super::backend::{Backend, BoxFuture};
use crate::sm::TestSm;

/// What the sender had published when a recognised message left it.
#[derive(Debug, Clone)]
pub struct Sighting {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// The sender's status at that instant.
    pub status: Status,
    /// Whether the sender's `quorum_ack()` was `None` at that instant.
    pub ack_withdrawn: bool,
}

/// Recognises the messages to watch, from their bytes on the wire.
pub type Recognise = fn(&[u8]) -> bool;

/// `B`'s engines on transports that record a [`Sighting`] for every message (one-way or
/// request) that `recognise` accepts.
pub struct Probed<B> {
    inner: B,
    recognise: Recognise,
    sightings: Arc<Mutex<Vec<Sighting>>>,
}

impl<B: Backend> Probed<B> {
    /// `inner`'s engines, watched for messages `recognise` accepts.
    pub fn new(inner: B, recognise: Recognise) -> Self {
        Self {
            inner,
            recognise,
            sightings: Arc::default(),
        }
    }

    /// A handle on the sightings, in the order the messages left; it stays valid after the
    /// backend moves into a case.
    pub fn sightings(&self) -> Arc<Mutex<Vec<Sighting>>> {
        Arc::clone(&self.sightings)
    }
}

impl<B> fmt::Debug for Probed<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probed").finish_non_exhaustive()
    }
}

impl<B: Backend> Backend for Probed<B> {
    const NAME: &'static str = B::NAME;

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn configure(&self, config: &mut Config) {
        self.inner.configure(config);
    }

    fn start(
        &self,
        mut parts: EngineParts<TestSm>,
    ) -> BoxFuture<'static, raftengine::Result<Arc<dyn Engine>>> {
        let sender: Arc<OnceLock<Weak<dyn Engine>>> = Arc::new(OnceLock::new());
        parts.transport = Arc::new(Watching {
            inner: parts.transport,
            sender: Arc::clone(&sender),
            recognise: self.recognise,
            sightings: Arc::clone(&self.sightings),
        });
        let start = self.inner.start(parts);
        Box::pin(async move {
            let engine = start.await?;
            let _ = sender.set(Arc::downgrade(&engine));
            Ok(engine)
        })
    }
}

/// A transport that records a [`Sighting`] for each recognised message before passing it on.
struct Watching {
    inner: Arc<dyn Transport>,
    sender: Arc<OnceLock<Weak<dyn Engine>>>,
    recognise: Recognise,
    sightings: Arc<Mutex<Vec<Sighting>>>,
}

impl fmt::Debug for Watching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watching")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl Watching {
    fn look(&self, to: NodeId, bytes: &[u8]) {
        if !(self.recognise)(bytes) {
            return;
        }
        let Some(engine) = self.sender.get().and_then(Weak::upgrade) else {
            return;
        };
        let sighting = Sighting {
            from: self.inner.local_id(),
            to,
            status: engine.status(),
            ack_withdrawn: engine.quorum_ack().is_none(),
        };
        self.sightings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sighting);
    }
}

#[async_trait]
impl Transport for Watching {
    fn local_id(&self) -> NodeId {
        self.inner.local_id()
    }

    async fn call(
        &self,
        to: NodeId,
        request: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        self.look(to, &request);
        self.inner.call(to, request, timeout).await
    }

    fn send(&self, to: NodeId, message: Bytes) {
        self.look(to, &message);
        self.inner.send(to, message);
    }

    fn serve(&self, inbound: Arc<dyn Inbound>) {
        self.inner.serve(inbound);
    }

    fn stop_serving(&self) {
        self.inner.stop_serving();
    }
}

/// Runs the transfer-ordering check on `backend`: in three transfers, every message
/// `forcing` accepts (the one that makes the target start its election) leaves the old leader
/// only once its published status shows the transfer to that target and it offers no quorum
/// acknowledgement. `name` is the message's name in failure reports.
///
/// A reader on another thread that passed the lease check on an older status could otherwise
/// serve a read while the target is elected. Panics (failing the test) on a violation.
pub fn check_transfer_published_before<B: Backend>(
    backend: B,
    forcing: Recognise,
    name: &'static str,
) {
    let probed = Probed::new(backend, forcing);
    let sightings = probed.sightings();
    super::run_case(
        "transfer_published_before_the_forcing_message",
        Capabilities::LEADERSHIP_TRANSFER,
        probed,
        |h| async move {
            let cluster = h.cluster(3).await?;
            for round in 0..3 {
                let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
                let target = cluster.others(leader)[round % 2];
                let before = sightings.lock().unwrap_or_else(|p| p.into_inner()).len();
                let moved = cluster.transfer(Some(target)).await?;
                crate::ensure!(
                    moved.is_ok(),
                    "round {round}: transfer {leader} -> {target} failed: {moved:?}"
                );
                let seen = sightings.lock().unwrap_or_else(|p| p.into_inner())[before..].to_vec();
                crate::ensure!(
                    !seen.is_empty(),
                    "round {round}: no {name} left node {leader}"
                );
                for s in seen {
                    crate::ensure!(
                        s.status.transferring_to == Some(target) && s.ack_withdrawn,
                        "round {round}: {name} to {} left node {} while its published status \
                         said transferring_to = {:?} and its quorum ack was {}: a reader could \
                         pass the lease check as {target} takes over",
                        s.to,
                        s.from,
                        s.status.transferring_to,
                        if s.ack_withdrawn {
                            "withdrawn"
                        } else {
                            "still offered"
                        }
                    );
                }
            }
            cluster.shutdown().await
        },
    );
}
