//! Opaque bytes between node ids, in both styles Raft libraries use: request/response
//! ([`Transport::call`], openraft's RPCs) and one-way ([`Transport::send`], raft-rs messages).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::NodeId;

/// Why a call got no answer. New reasons may be added: match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// No answer arrived before the deadline (the request or the reply may have been lost).
    #[error("no answer from node {0} before the deadline")]
    Timeout(NodeId),
    /// The peer is known to be down or unknown (connection refused); nothing was delivered.
    #[error("node {0} is unreachable")]
    Unreachable(NodeId),
    /// The request was not sent: the outbound queue to the node is over its byte limit, or the
    /// request is larger than the transport carries. Back off and retry.
    #[error("the queue to node {0} is full or the request too large; nothing was sent")]
    Overloaded(NodeId),
}

/// The receiving side of a node: what the transport hands inbound traffic to.
#[async_trait]
pub trait Inbound: Send + Sync + 'static {
    /// Answers a request. Errors of the protocol are encoded in the reply by the adapter.
    async fn on_call(&self, from: NodeId, request: Bytes) -> Bytes;

    /// Receives a one-way message. Must not block.
    fn on_message(&self, from: NodeId, message: Bytes);
}

/// A node's connection to its peers.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// The id traffic from this transport is sent as.
    fn local_id(&self) -> NodeId;

    /// Sends a request and waits for the reply, at most `timeout`.
    async fn call(
        &self,
        to: NodeId,
        request: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError>;

    /// Sends a message without waiting; delivery is best effort and per-link ordered unless the
    /// network reorders.
    fn send(&self, to: NodeId, message: Bytes);

    /// Installs the handler for traffic addressed to this node, replacing any previous one.
    fn serve(&self, inbound: Arc<dyn Inbound>);

    /// Removes the handler: this node looks down to its peers from now on.
    fn stop_serving(&self);
}
