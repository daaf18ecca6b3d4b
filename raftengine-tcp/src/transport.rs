//! [`TcpTransport`]: the connection management around the frames.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use raftengine::{Inbound, NodeId, Transport, TransportError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::time::Instant;
use tokio_util::codec::{Encoder, FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::config::{Security, TcpConfig};
use crate::frame::{Assembler, Envelope, Flags, Header, Kind};
use crate::outbox::{Limits, Outbox, Outgoing, Writer, submit, write_loop};
use crate::stats::{Counters, TcpStats, bump};
use crate::tls::{TlsError, TlsSetup, cert_names_node, server_name};

/// Why a transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS material is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A limit is zero or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
}

/// Anything a connection can run over: a plain TCP stream or a TLS stream.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}
type BoxIo = Box<dyn Io>;
type ConnWriter = Writer<WriteHalf<BoxIo>>;

/// The `raftengine` [`Transport`] over TCP: one connection to each peer carries this node's
/// calls and one-way messages (and the peer's replies), multiplexed by request id; peers'
/// connections to this node carry theirs. Mutual TLS unless [`Security::Insecure`].
///
/// Dropping it (or [`TcpTransport::shutdown`]) ends every background task.
pub struct TcpTransport {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    config: TcpConfig,
    tls: Option<TlsSetup>,
    counters: Counters,
    local_addr: SocketAddr,
    peers: Mutex<HashMap<NodeId, Arc<Peer>>>,
    inbound: RwLock<Option<Arc<dyn Inbound>>>,
    /// Cancels the listener and inbound connections; `None` while not serving.
    serving: Mutex<Option<CancellationToken>>,
    root: CancellationToken,
    tracker: TaskTracker,
    next_call_id: AtomicU64,
    jitter: Jitter,
    runtime: tokio::runtime::Handle,
}

/// A small generator for backoff jitter (splitmix64): it only has to differ between nodes and
/// attempts, not be unpredictable.
struct Jitter(AtomicU64);

impl Jitter {
    fn new(id: NodeId) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self(AtomicU64::new(now ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }

    fn next(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

struct Peer {
    id: NodeId,
    addr: Mutex<SocketAddr>,
    outbox: Outbox,
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Bytes, TransportError>>>>,
    /// The write half of the current connection, for callers that write without a task switch.
    writer: Mutex<Option<Arc<ConnWriter>>>,
    /// While set and in the future, the peer is known down: calls fail at once.
    down_until: Mutex<Option<Instant>>,
    next_seq: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here leaves its data consistent, so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn codec(max_frame_len: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_type::<u32>()
        .max_frame_length(max_frame_len)
        .new_codec()
}

/// The queue and write half of an inbound connection, shared with its call handlers.
#[derive(Clone)]
struct Conn {
    outbox: Arc<Outbox>,
    writer: Arc<ConnWriter>,
}

impl Peer {
    fn submit(&self, message: Outgoing) -> Result<(), crate::outbox::Full> {
        let writer = lock(&self.writer).clone();
        submit(writer.as_deref(), &self.outbox, message)
    }

    fn is_down(&self) -> bool {
        lock(&self.down_until).is_some_and(|until| Instant::now() < until)
    }

    fn take_pending(&self, id: u64) -> Option<oneshot::Sender<Result<Bytes, TransportError>>> {
        lock(&self.pending).remove(&id)
    }

    /// Fails what was queued but never written: nothing was delivered, so calls are
    /// `Unreachable` and one-way messages count as dropped.
    fn fail_queued(&self, counters: &Counters) {
        for message in self.outbox.drain() {
            match message.header.kind {
                Kind::Call => {
                    if let Some(tx) = self.take_pending(message.header.id) {
                        let _ = tx.send(Err(TransportError::Unreachable(self.id)));
                    }
                }
                _ => bump(&counters.dropped_peer_down),
            }
        }
    }

    /// Fails calls already written: the request may have arrived, so they time out now rather
    /// than at their deadline.
    fn fail_in_flight(&self) {
        let pending = std::mem::take(&mut *lock(&self.pending));
        for (_, tx) in pending {
            let _ = tx.send(Err(TransportError::Timeout(self.id)));
        }
    }
}

impl TcpTransport {
    /// Binds the listener and starts the connection tasks. Inbound calls are answered as "not
    /// serving" (the caller sees `Unreachable`) until [`Transport::serve`] installs a handler.
    pub async fn bind(config: TcpConfig) -> Result<Self, StartError> {
        if config.max_frame_len <= crate::frame::HEADER_LEN
            || config.chunk_len == 0
            || config.chunk_len + crate::frame::HEADER_LEN > config.max_frame_len
        {
            return Err(StartError::Config(
                "chunk_len plus the header must fit max_frame_len",
            ));
        }
        if config.max_inflight_calls == 0 {
            return Err(StartError::Config("max_inflight_calls must be positive"));
        }
        let tls = match &config.security {
            Security::Tls(identity) => Some(TlsSetup::new(identity)?),
            Security::Insecure => None,
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let peers = config.peers.clone();
        let config_id = config.id;
        let inner = Arc::new(Inner {
            id: config.id,
            config,
            tls,
            counters: Counters::default(),
            local_addr,
            peers: Mutex::new(HashMap::new()),
            inbound: RwLock::new(None),
            serving: Mutex::new(None),
            root: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_call_id: AtomicU64::new(1),
            jitter: Jitter::new(config_id),
            runtime: tokio::runtime::Handle::current(),
        });
        inner.start_listener(listener);
        for (id, addr) in peers {
            inner.set_peer(id, addr);
        }
        Ok(Self { inner })
    }

    /// The address the listener is bound to (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Adds a peer or changes its address (used from the next connection on).
    pub fn set_peer(&self, id: NodeId, addr: SocketAddr) {
        self.inner.set_peer(id, addr);
    }

    /// The counters so far.
    pub fn stats(&self) -> TcpStats {
        self.inner.counters.snapshot()
    }

    /// Stops serving, closes every connection and waits (at most five seconds) for every
    /// background task to end. Calls still waiting fail with `Unreachable`.
    pub async fn shutdown(&self) {
        self.inner.stop_serving();
        self.inner.root.cancel();
        self.inner.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                node = self.inner.id,
                "transport tasks did not end within 5 s"
            );
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.inner.stop_serving();
        self.inner.root.cancel();
        self.inner.tracker.close();
    }
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport")
            .field("id", &self.inner.id)
            .field("local_addr", &self.inner.local_addr)
            .field("tls", &self.inner.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn limits(&self) -> Limits {
        Limits {
            chunk_len: self.config.chunk_len,
            queue_limit: self.config.queue_limit,
            bulk_queue_limit: self.config.bulk_queue_limit,
        }
    }

    fn codec(&self) -> LengthDelimitedCodec {
        codec(self.config.max_frame_len)
    }

    fn peer(&self, id: NodeId) -> Option<Arc<Peer>> {
        lock(&self.peers).get(&id).cloned()
    }

    fn set_peer(self: &Arc<Self>, id: NodeId, addr: SocketAddr) {
        let mut peers = lock(&self.peers);
        if let Some(peer) = peers.get(&id) {
            *lock(&peer.addr) = addr;
            return;
        }
        let peer = Arc::new(Peer {
            id,
            addr: Mutex::new(addr),
            outbox: Outbox::new(self.limits()),
            pending: Mutex::new(HashMap::new()),
            writer: Mutex::new(None),
            down_until: Mutex::new(None),
            next_seq: AtomicU64::new(1),
        });
        peers.insert(id, Arc::clone(&peer));
        drop(peers);
        let inner = Arc::clone(self);
        self.tracker
            .spawn_on(async move { inner.run_peer(peer).await }, &self.runtime);
    }

    fn inbound(&self) -> Option<Arc<dyn Inbound>> {
        self.inbound
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stop_serving(&self) {
        *self.inbound.write().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(token) = lock(&self.serving).take() {
            token.cancel();
        }
    }

    fn start_listener(self: &Arc<Self>, listener: TcpListener) {
        let token = self.root.child_token();
        *lock(&self.serving) = Some(token.clone());
        let inner = Arc::clone(self);
        self.tracker.spawn_on(
            async move { inner.accept_loop(listener, token).await },
            &self.runtime,
        );
    }

    /// Listens again on the same address after `stop_serving` closed the listener.
    fn restart_listener(self: &Arc<Self>) {
        if self.root.is_cancelled() || lock(&self.serving).is_some() {
            return;
        }
        let bound = std::net::TcpListener::bind(self.local_addr).and_then(|l| {
            l.set_nonblocking(true)?;
            let _entered = self.runtime.enter();
            TcpListener::from_std(l)
        });
        match bound {
            Ok(listener) => self.start_listener(listener),
            Err(e) => warn!(
                node = self.id,
                addr = %self.local_addr,
                error = %e,
                "cannot listen again after stop_serving; peers will see this node as down"
            ),
        }
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener, token: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                _ = token.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, addr)) => {
                    let inner = Arc::clone(&self);
                    let token = token.clone();
                    self.tracker.spawn(async move {
                        tokio::select! {
                            _ = token.cancelled() => {}
                            _ = inner.clone().handle_inbound(stream, addr, token.clone()) => {}
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    debug!(node = self.id, error = %e, "accept failed");
                    tokio::select! {
                        _ = token.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            }
        }
    }

    // ----- inbound side -----

    async fn handle_inbound(
        self: Arc<Self>,
        stream: TcpStream,
        addr: SocketAddr,
        token: CancellationToken,
    ) {
        let _ = stream.set_nodelay(true);
        let handshake =
            tokio::time::timeout(self.config.handshake_timeout, self.accept_handshake(stream))
                .await;
        let (reader, writer, from) = match handshake {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(refusal)) => {
                bump(refusal.counter(&self.counters));
                warn!(node = self.id, peer = %addr, reason = %refusal, "refused connection");
                return;
            }
            Err(_) => {
                bump(&self.counters.refused_timeout);
                warn!(node = self.id, peer = %addr, reason = "handshake timeout", "refused connection");
                return;
            }
        };
        bump(&self.counters.accepted);
        debug!(node = self.id, peer = from, %addr, "accepted connection");
        let outbox = Arc::new(Outbox::new(self.limits()));
        let writer = Arc::new(Writer::new(writer));
        let conn = Conn {
            outbox: Arc::clone(&outbox),
            writer: Arc::clone(&writer),
        };
        let reason = tokio::select! {
            res = write_loop(&writer, &outbox) => match res {
                Ok(()) => "writer ended".to_string(),
                Err(e) => format!("write failed: {e}"),
            },
            reason = Arc::clone(&self).serve_frames(reader, from, conn, token) => reason,
        };
        debug!(node = self.id, peer = from, %reason, "inbound connection closed");
    }

    async fn accept_handshake(
        &self,
        stream: TcpStream,
    ) -> Result<
        (
            FramedRead<ReadHalf<BoxIo>, LengthDelimitedCodec>,
            FramedWrite<WriteHalf<BoxIo>, LengthDelimitedCodec>,
            NodeId,
        ),
        Refusal,
    > {
        let (io, cert): (BoxIo, _) = match &self.tls {
            Some(tls) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.server));
                let tls_stream = acceptor
                    .accept(stream)
                    .await
                    .map_err(|e| Refusal::Tls(e.to_string()))?;
                let cert = tls_stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first().cloned());
                let Some(cert) = cert else {
                    return Err(Refusal::Tls("no client certificate".into()));
                };
                (Box::new(tls_stream), Some(cert))
            }
            None => (Box::new(stream), None),
        };
        let (read, write) = tokio::io::split(io);
        let mut reader = FramedRead::new(read, self.codec());
        let frame = match reader.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(Refusal::BadHello(e.to_string())),
            None => return Err(Refusal::BadHello("closed before hello".into())),
        };
        let hello =
            Envelope::decode(frame.freeze()).map_err(|e| Refusal::BadHello(e.to_string()))?;
        if hello.header.kind != Kind::Hello {
            return Err(Refusal::BadHello(format!(
                "expected hello, got {:?}",
                hello.header.kind
            )));
        }
        if hello.header.to != self.id {
            return Err(Refusal::WrongNode {
                wanted: hello.header.to,
            });
        }
        if let Some(cert) = cert {
            cert_names_node(&cert, hello.header.from).map_err(|reason| Refusal::Identity {
                claimed: hello.header.from,
                reason,
            })?;
        }
        let writer = FramedWrite::new(write, self.codec());
        Ok((reader, writer, hello.header.from))
    }

    /// Reads calls and one-way messages from an authenticated peer until the connection ends or
    /// sends something invalid; returns why it ended.
    async fn serve_frames(
        self: Arc<Self>,
        mut reader: FramedRead<ReadHalf<BoxIo>, LengthDelimitedCodec>,
        from: NodeId,
        conn: Conn,
        token: CancellationToken,
    ) -> String {
        let mut assembler = Assembler::new(self.config.max_message_len);
        let permits = Arc::new(Semaphore::new(self.config.max_inflight_calls));
        loop {
            let frame = match reader.next().await {
                None => return "closed by peer".into(),
                Some(Ok(frame)) => frame,
                Some(Err(e)) if is_disconnect(&e) => return format!("connection lost: {e}"),
                Some(Err(e)) => return self.reject(from, format!("unreadable frame: {e}")),
            };
            let envelope = match Envelope::decode(frame.freeze()) {
                Ok(envelope) => envelope,
                Err(e) => return self.reject(from, format!("bad frame: {e}")),
            };
            let header = envelope.header;
            if header.from != from || header.to != self.id {
                return self.reject(
                    from,
                    format!(
                        "frame from {} to {} on the connection of node {from} to node {}",
                        header.from, header.to, self.id
                    ),
                );
            }
            if !matches!(header.kind, Kind::Call | Kind::OneWay) {
                return self.reject(from, format!("unexpected {:?} frame", header.kind));
            }
            let message = match assembler.push(envelope) {
                Ok(Some((_, message))) => message,
                Ok(None) => continue,
                Err(e) => return self.reject(from, format!("bad chunk: {e}")),
            };
            match header.kind {
                Kind::OneWay => {
                    if let Some(inbound) = self.inbound() {
                        inbound.on_message(from, message);
                    }
                }
                _ => {
                    let Some(inbound) = self.inbound() else {
                        self.reply(&conn, header.id, from, Flags::NOT_SERVING, Bytes::new());
                        continue;
                    };
                    let mut handler: Pin<Box<dyn Future<Output = Bytes> + Send>> =
                        Box::pin(async move { inbound.on_call(from, message).await });
                    // Handlers that answer without waiting are answered here, which saves a task
                    // switch per call; the others get their own task so the reader moves on.
                    if let Some(reply) = (&mut handler).now_or_never() {
                        self.reply(&conn, header.id, from, Flags::empty(), reply);
                        continue;
                    }
                    let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                        return "closed".into();
                    };
                    let inner = Arc::clone(&self);
                    let conn = conn.clone();
                    let id = header.id;
                    let token = token.clone();
                    self.tracker.spawn(async move {
                        // A handler that never answers must not keep the task alive past
                        // stop_serving or shutdown.
                        let reply = tokio::select! {
                            _ = token.cancelled() => return,
                            reply = handler => reply,
                        };
                        drop(permit);
                        inner.reply(&conn, id, from, Flags::empty(), reply);
                    });
                }
            }
        }
    }

    fn reply(&self, conn: &Conn, id: u64, to: NodeId, flags: Flags, reply: Bytes) {
        let reply = Outgoing::new(Kind::Reply, flags, id, self.id, to, reply);
        if submit(Some(&*conn.writer), &conn.outbox, reply).is_err() {
            bump(&self.counters.replies_dropped);
        }
    }

    fn reject(&self, from: NodeId, reason: String) -> String {
        bump(&self.counters.frames_rejected);
        warn!(node = self.id, peer = from, %reason, "closing connection");
        reason
    }

    // ----- outbound side -----

    fn backoff(&self, failures: u32) -> Duration {
        let min = self.config.backoff_min.max(Duration::from_millis(1));
        let max = self.config.backoff_max.max(min);
        let exp = min.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let ceiling = exp.min(max);
        // Full jitter over the upper half keeps peers that failed together from retrying in
        // lockstep while never waiting longer than the ceiling.
        let low = ceiling / 2;
        let span = (ceiling - low).as_micros() as u64;
        low + Duration::from_micros(self.jitter.next() % (span + 1))
    }

    async fn run_peer(self: Arc<Self>, peer: Arc<Peer>) {
        let mut failures = 0u32;
        loop {
            while peer.outbox.is_empty() {
                tokio::select! {
                    _ = self.root.cancelled() => return self.close_peer(&peer),
                    _ = peer.outbox.wait() => {}
                }
            }
            let limit = self.config.connect_timeout + self.config.handshake_timeout;
            let connected = tokio::select! {
                _ = self.root.cancelled() => return self.close_peer(&peer),
                res = tokio::time::timeout(limit, self.connect(&peer)) => match res {
                    Ok(res) => res,
                    Err(_) => Err(format!("no connection within {limit:?}")),
                },
            };
            let healthy = match connected {
                Ok((reader, writer)) => {
                    bump(&self.counters.connects);
                    *lock(&peer.down_until) = None;
                    let (reason, replies) = tokio::select! {
                        _ = self.root.cancelled() => return self.close_peer(&peer),
                        res = self.run_outbound(&peer, reader, writer) => res,
                    };
                    debug!(node = self.id, peer = peer.id, %reason, "connection closed");
                    peer.fail_queued(&self.counters);
                    peer.fail_in_flight();
                    // A connection the peer closed before answering anything (a refused
                    // certificate, a node that is going down) counts as a failed attempt.
                    replies > 0
                }
                Err(reason) => {
                    bump(&self.counters.connect_failures);
                    debug!(node = self.id, peer = peer.id, %reason, "cannot connect");
                    peer.fail_queued(&self.counters);
                    false
                }
            };
            if healthy {
                failures = 0;
                continue;
            }
            failures = failures.saturating_add(1);
            let delay = self.backoff(failures);
            *lock(&peer.down_until) = Some(Instant::now() + delay);
            tokio::select! {
                _ = self.root.cancelled() => return self.close_peer(&peer),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn close_peer(&self, peer: &Peer) {
        // The write half would keep the socket open for as long as the transport value lives.
        *lock(&peer.writer) = None;
        peer.fail_queued(&self.counters);
        let pending = std::mem::take(&mut *lock(&peer.pending));
        for (_, tx) in pending {
            let _ = tx.send(Err(TransportError::Unreachable(peer.id)));
        }
    }

    async fn connect(
        &self,
        peer: &Peer,
    ) -> Result<
        (
            FramedRead<ReadHalf<BoxIo>, LengthDelimitedCodec>,
            FramedWrite<WriteHalf<BoxIo>, LengthDelimitedCodec>,
        ),
        String,
    > {
        let addr = *lock(&peer.addr);
        let stream = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect to {addr} timed out"))?
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut io: BoxIo = match &self.tls {
            Some(tls) => {
                let name = server_name(peer.id)
                    .ok_or_else(|| format!("node id {} is not a valid name", peer.id))?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.client));
                let stream = connector.connect(name, stream).await.map_err(|e| {
                    warn!(node = self.id, peer = peer.id, %addr, error = %e, "TLS handshake with peer failed");
                    format!("TLS handshake with {addr}: {e}")
                })?;
                Box::new(stream)
            }
            None => Box::new(stream),
        };
        let hello = Header {
            kind: Kind::Hello,
            flags: Flags::empty(),
            id: 0,
            from: self.id,
            to: peer.id,
            total: 0,
        };
        let mut buf = BytesMut::new();
        self.codec()
            .encode(Envelope::encode(&hello, &[]), &mut buf)
            .map_err(|e| format!("encode hello: {e}"))?;
        io.write_all(&buf)
            .await
            .map_err(|e| format!("send hello: {e}"))?;
        let (read, write) = tokio::io::split(io);
        Ok((
            FramedRead::new(read, self.codec()),
            FramedWrite::new(write, self.codec()),
        ))
    }

    /// Runs one outbound connection until it breaks; returns why and how many replies came.
    async fn run_outbound(
        &self,
        peer: &Peer,
        mut reader: FramedRead<ReadHalf<BoxIo>, LengthDelimitedCodec>,
        writer: FramedWrite<WriteHalf<BoxIo>, LengthDelimitedCodec>,
    ) -> (String, u64) {
        let mut replies = 0u64;
        let writer = Arc::new(Writer::new(writer));
        *lock(&peer.writer) = Some(Arc::clone(&writer));
        let reason = tokio::select! {
            res = write_loop(&writer, &peer.outbox) => match res {
                Ok(()) => "writer ended".to_string(),
                Err(e) => format!("write failed: {e}"),
            },
            reason = self.read_replies(peer, &mut reader, &mut replies) => reason,
        };
        *lock(&peer.writer) = None;
        (reason, replies)
    }

    async fn read_replies(
        &self,
        peer: &Peer,
        reader: &mut FramedRead<ReadHalf<BoxIo>, LengthDelimitedCodec>,
        replies: &mut u64,
    ) -> String {
        let mut assembler = Assembler::new(self.config.max_message_len);
        loop {
            let frame = match reader.next().await {
                None => return "closed by peer".into(),
                Some(Ok(frame)) => frame,
                Some(Err(e)) if is_disconnect(&e) => return format!("connection lost: {e}"),
                Some(Err(e)) => return self.reject(peer.id, format!("unreadable frame: {e}")),
            };
            let envelope = match Envelope::decode(frame.freeze()) {
                Ok(envelope) => envelope,
                Err(e) => return self.reject(peer.id, format!("bad frame: {e}")),
            };
            let header = envelope.header;
            if header.kind != Kind::Reply || header.from != peer.id || header.to != self.id {
                return self.reject(
                    peer.id,
                    format!(
                        "unexpected {:?} frame from {} to {} on the connection to node {}",
                        header.kind, header.from, header.to, peer.id
                    ),
                );
            }
            let reply = match assembler.push(envelope) {
                Ok(Some((_, reply))) => reply,
                Ok(None) => continue,
                Err(e) => return self.reject(peer.id, format!("bad chunk: {e}")),
            };
            *replies += 1;
            if let Some(tx) = peer.take_pending(header.id) {
                let result = if header.flags.contains(Flags::NOT_SERVING) {
                    Err(TransportError::Unreachable(peer.id))
                } else {
                    Ok(reply)
                };
                let _ = tx.send(result);
            }
        }
    }
}

/// Whether a read error means the peer went away (a killed process, a reset) rather than that
/// it sent something malformed. A TLS peer that dies without `close_notify` shows up as an
/// unexpected end of file; a plaintext stream that ends inside a frame is reported by the codec
/// as an error of another kind and counts as a truncated frame.
fn is_disconnect(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
    )
}

/// Why an inbound connection was refused during its handshake.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("certificate does not name node {claimed}: {reason}")]
    Identity { claimed: NodeId, reason: String },
    #[error("connection is for node {wanted}, not this node")]
    WrongNode { wanted: NodeId },
    #[error("bad hello: {0}")]
    BadHello(String),
}

impl Refusal {
    fn counter<'a>(&self, counters: &'a Counters) -> &'a AtomicU64 {
        match self {
            Self::Tls(_) => &counters.refused_tls,
            Self::Identity { .. } => &counters.refused_identity,
            Self::WrongNode { .. } => &counters.refused_wrong_node,
            Self::BadHello(_) => &counters.refused_bad_hello,
        }
    }
}

#[async_trait]
impl Transport for TcpTransport {
    fn local_id(&self) -> NodeId {
        self.inner.id
    }

    async fn call(
        &self,
        to: NodeId,
        request: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        let deadline = Instant::now() + timeout;
        let inner = &self.inner;
        let Some(peer) = inner.peer(to) else {
            return Err(TransportError::Unreachable(to));
        };
        if request.len() > inner.config.max_message_len {
            bump(&inner.counters.calls_overloaded);
            return Err(TransportError::Overloaded(to));
        }
        if peer.is_down() || inner.root.is_cancelled() {
            return Err(TransportError::Unreachable(to));
        }
        let id = inner.next_call_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        // Registered before queueing: the reply can arrive before `push` returns.
        lock(&peer.pending).insert(id, tx);
        let message = Outgoing::new(Kind::Call, Flags::empty(), id, inner.id, to, request);
        if peer.submit(message).is_err() {
            peer.take_pending(id);
            bump(&inner.counters.calls_overloaded);
            return Err(TransportError::Overloaded(to));
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(TransportError::Unreachable(to)),
            Err(_) => {
                peer.take_pending(id);
                Err(TransportError::Timeout(to))
            }
        }
    }

    fn send(&self, to: NodeId, message: Bytes) {
        let inner = &self.inner;
        let Some(peer) = inner.peer(to) else {
            bump(&inner.counters.dropped_peer_down);
            return;
        };
        if message.len() > inner.config.max_message_len
            || peer.is_down()
            || inner.root.is_cancelled()
        {
            bump(&inner.counters.dropped_peer_down);
            return;
        }
        let seq = peer.next_seq.fetch_add(1, Ordering::Relaxed);
        let message = Outgoing::new(Kind::OneWay, Flags::empty(), seq, inner.id, to, message);
        if peer.submit(message).is_err() {
            bump(&inner.counters.dropped_queue_full);
        }
    }

    fn serve(&self, inbound: Arc<dyn Inbound>) {
        *self
            .inner
            .inbound
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(inbound);
        self.inner.restart_listener();
    }

    fn stop_serving(&self) {
        self.inner.stop_serving();
    }
}
