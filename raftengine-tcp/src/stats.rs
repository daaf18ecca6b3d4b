//! Counters of what the transport refused, rejected and dropped.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a transport's counters ([`crate::TcpTransport::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TcpStats {
    /// Inbound connections that completed the handshake.
    pub accepted: u64,
    /// Inbound connections refused because the TLS handshake failed (unknown CA, expired or
    /// malformed certificate, not TLS at all).
    pub refused_tls: u64,
    /// Inbound connections refused because the certificate does not name the node the hello
    /// frame claims.
    pub refused_identity: u64,
    /// Inbound connections refused because they were meant for another node id.
    pub refused_wrong_node: u64,
    /// Inbound connections refused because the handshake did not finish in time.
    pub refused_timeout: u64,
    /// Inbound connections refused because the hello frame was malformed.
    pub refused_bad_hello: u64,
    /// Frames rejected after the handshake (oversized, truncated, undecodable, misaddressed);
    /// each closes its connection.
    pub frames_rejected: u64,
    /// One-way messages dropped because the peer's queue was full.
    pub dropped_queue_full: u64,
    /// One-way messages dropped because the peer was down or unknown.
    pub dropped_peer_down: u64,
    /// Calls failed because the peer's queue was full or the request too large.
    pub calls_overloaded: u64,
    /// Replies dropped because the connection's queue was full.
    pub replies_dropped: u64,
    /// Outbound connection attempts that failed (refused, timed out, handshake failed).
    pub connect_failures: u64,
    /// Outbound connections established.
    pub connects: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) refused_tls: AtomicU64,
    pub(crate) refused_identity: AtomicU64,
    pub(crate) refused_wrong_node: AtomicU64,
    pub(crate) refused_timeout: AtomicU64,
    pub(crate) refused_bad_hello: AtomicU64,
    pub(crate) frames_rejected: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_peer_down: AtomicU64,
    pub(crate) calls_overloaded: AtomicU64,
    pub(crate) replies_dropped: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) connects: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> TcpStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TcpStats {
            accepted: get(&self.accepted),
            refused_tls: get(&self.refused_tls),
            refused_identity: get(&self.refused_identity),
            refused_wrong_node: get(&self.refused_wrong_node),
            refused_timeout: get(&self.refused_timeout),
            refused_bad_hello: get(&self.refused_bad_hello),
            frames_rejected: get(&self.frames_rejected),
            dropped_queue_full: get(&self.dropped_queue_full),
            dropped_peer_down: get(&self.dropped_peer_down),
            calls_overloaded: get(&self.calls_overloaded),
            replies_dropped: get(&self.replies_dropped),
            connect_failures: get(&self.connect_failures),
            connects: get(&self.connects),
        }
    }
}
