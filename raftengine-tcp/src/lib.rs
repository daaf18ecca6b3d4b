//! The `raftengine` [`Transport`](raftengine::Transport) over TCP, with mutual TLS, reconnects
//! and bounded queues.
//!
//! ```ignore
//! let (ca, certs) = raftengine_tcp::generate_cluster_certs("my-cluster", &[1, 2, 3])?;
//! let identity = TlsIdentity::new(ca.cert_pem(), &certs[0]);
//! let config = TcpConfig::new(1, "10.0.0.1:7000".parse()?, Security::Tls(identity))
//!     .peer(2, "10.0.0.2:7000".parse()?)
//!     .peer(3, "10.0.0.3:7000".parse()?);
//! let transport = Arc::new(TcpTransport::bind(config).await?);
//! // hand `transport` to an engine's `start`
//! ```
//!
//! # Wire
//!
//! Every frame is length-delimited (a 4-byte big-endian length, `tokio-util`'s codec with a
//! maximum frame length) and carries the envelope of [`frame`]: kind, flags, request id, sender,
//! receiver, message length, payload. A connection starts with a hello frame naming the dialling
//! node and the node it meant to reach. Each node dials each peer once; that connection carries
//! its calls and one-way messages and the peer's replies, which may come in any order. Messages
//! longer than [`TcpConfig::chunk_len`] are cut into chunks that yield to small messages, so a
//! snapshot transfer does not hold up heartbeats; one-way messages keep their order.
//!
//! # Security
//!
//! With [`Security::Tls`], both ends present certificates issued by the cluster's CA. A node's
//! certificate carries the DNS subject alternative name `node-<id>` ([`certs::node_name`]): the
//! dialling side requires that name for the node it dials, and the accepting side requires the
//! client certificate to name the node its hello frame claims, and the hello to be meant for this
//! node. A certificate from another CA, an expired one, or one naming another node is refused
//! before any Raft byte is decoded, and the refusal is logged (`tracing`, warn) and counted
//! ([`TcpStats`]). [`Security::Insecure`] turns all of this off, for tests and local demos.
//! [`generate_cluster_certs`] makes a CA and node certificates.
//!
//! # Failure behaviour
//!
//! - A peer that refuses connections is marked down for a backoff period (exponential with
//!   jitter, [`TcpConfig::backoff_min`] to [`TcpConfig::backoff_max`]): calls fail with
//!   `Unreachable` at once and one-way messages are dropped and counted. The next message after
//!   the period tries again, so a restarted peer is reachable within one backoff period.
//! - A call ends by its deadline whatever the connection does; a call whose connection breaks
//!   after it was written fails with `Timeout` at once (it may have been delivered).
//! - Per peer, small messages queue up to [`TcpConfig::queue_limit`] bytes and large ones up to
//!   [`TcpConfig::bulk_queue_limit`]; beyond that one-way messages are dropped (counted) and
//!   calls fail with `Overloaded`.
//! - Malformed input (an oversized length prefix, a truncated or undecodable frame, chunks that
//!   do not add up, a frame addressed to another node) closes that connection and is counted;
//!   a connection that does not finish its handshake within
//!   [`TcpConfig::handshake_timeout`] is closed too.
//! - [`Transport::stop_serving`](raftengine::Transport::stop_serving) closes the listener and
//!   every inbound connection (peers see connection refused); `serve` listens again on the same
//!   address. Dropping the transport or [`TcpTransport::shutdown`] ends every task.
#![deny(missing_docs)]

pub mod certs;
mod config;
pub mod frame;
mod outbox;
mod stats;
mod tls;
mod transport;

pub use certs::{CertError, ClusterCa, NodeCert, Validity, generate_cluster_certs};
pub use config::{Security, TcpConfig};
pub use stats::TcpStats;
pub use tls::{TlsError, TlsIdentity};
pub use transport::{StartError, TcpTransport};
