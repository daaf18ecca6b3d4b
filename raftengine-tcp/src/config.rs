//! Configuration of a [`crate::TcpTransport`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use raftengine::NodeId;

use crate::tls::TlsIdentity;

/// How peers authenticate each other.
#[derive(Debug, Clone)]
pub enum Security {
    /// Mutual TLS: every connection is authenticated by the cluster CA, both ways.
    Tls(TlsIdentity),
    /// Plaintext, unauthenticated: any process that can reach the port can speak for any node.
    /// Only for tests and local demos.
    Insecure,
}

/// Settings of one node's transport. [`TcpConfig::new`] fills in defaults suited to a LAN.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// This node's id.
    pub id: NodeId,
    /// Where to listen (port 0 picks a free port; [`crate::TcpTransport::local_addr`] says which).
    pub listen: SocketAddr,
    /// Where each peer listens.
    pub peers: HashMap<NodeId, SocketAddr>,
    /// TLS or, explicitly, plaintext.
    pub security: Security,
    /// Largest frame (header and payload) accepted from the wire; a longer length prefix closes
    /// the connection.
    pub max_frame_len: usize,
    /// Messages longer than this travel as chunks of this many bytes, interleaved with small
    /// messages so a large transfer does not hold up heartbeats.
    pub chunk_len: usize,
    /// Largest message (call, reply or one-way) sent or accepted.
    pub max_message_len: usize,
    /// Bytes of small messages queued per peer before one-way messages are dropped and calls
    /// fail with `Overloaded`.
    pub queue_limit: usize,
    /// Bytes of large (chunked) messages queued per peer; one large message is always accepted
    /// when none is queued.
    pub bulk_queue_limit: usize,
    /// Bound on establishing a TCP connection.
    pub connect_timeout: Duration,
    /// Bound on the TLS handshake and hello frame of a new connection, both sides.
    pub handshake_timeout: Duration,
    /// First reconnect delay after a failed connection attempt.
    pub backoff_min: Duration,
    /// Largest reconnect delay; a restarted peer is reachable again within this.
    pub backoff_max: Duration,
    /// Calls from one connection handled at once; further calls wait (back-pressure).
    pub max_inflight_calls: usize,
}

impl TcpConfig {
    /// Defaults: 1 MiB frames in 256 KiB chunks, 256 MiB messages, 8 MiB small-message queues,
    /// 1 s connect and 2 s handshake timeouts, backoff from 20 ms to 1 s.
    pub fn new(id: NodeId, listen: SocketAddr, security: Security) -> Self {
        Self {
            id,
            listen,
            peers: HashMap::new(),
            security,
            max_frame_len: 1 << 20,
            chunk_len: 256 << 10,
            max_message_len: 256 << 20,
            queue_limit: 8 << 20,
            bulk_queue_limit: 256 << 20,
            connect_timeout: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_secs(1),
            max_inflight_calls: 1024,
        }
    }

    /// Adds a peer.
    pub fn peer(mut self, id: NodeId, addr: SocketAddr) -> Self {
        self.peers.insert(id, addr);
        self
    }
}
