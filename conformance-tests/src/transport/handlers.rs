//! The [`Inbound`] handlers the transport cases install.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{BufMut, Bytes, BytesMut};
use raftengine::{Inbound, NodeId};
use tokio::sync::Notify;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers a call with the caller's id (8 bytes, big-endian) followed by the request, after a
/// delay of `request[0] % 8` times `step` (so concurrent replies come back out of order).
/// Records one-way messages.
#[derive(Debug, Default)]
pub struct Echo {
    step: Duration,
    received: Mutex<Vec<(NodeId, Bytes)>>,
    arrived: Notify,
}

impl Echo {
    /// An echo answering at once.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// An echo whose replies are delayed by the first request byte times `step`.
    pub fn delayed(step: Duration) -> Arc<Self> {
        Arc::new(Self {
            step,
            ..Self::default()
        })
    }

    /// One-way messages received so far, in arrival order.
    pub fn received(&self) -> Vec<(NodeId, Bytes)> {
        lock(&self.received).clone()
    }

    /// Waits until at least `count` one-way messages arrived, at most `limit`; returns them.
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<(NodeId, Bytes)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.received();
            }
        }
    }

    /// The reply [`Echo`] gives `from` for `request` (without the delay).
    pub fn reply(from: NodeId, request: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(8 + request.len());
        out.put_u64(from);
        out.put_slice(request);
        out.freeze()
    }
}

#[async_trait]
impl Inbound for Echo {
    async fn on_call(&self, from: NodeId, request: Bytes) -> Bytes {
        let factor = request.first().map_or(0, |b| u32::from(b % 8));
        if !self.step.is_zero() && factor > 0 {
            tokio::time::sleep(self.step * factor).await;
        }
        Self::reply(from, &request)
    }

    fn on_message(&self, from: NodeId, message: Bytes) {
        lock(&self.received).push((from, message));
        self.arrived.notify_waiters();
    }
}

/// Never answers a call (the caller's deadline decides); drops one-way messages.
#[derive(Debug, Default)]
pub struct Hang;

#[async_trait]
impl Inbound for Hang {
    async fn on_call(&self, _from: NodeId, _request: Bytes) -> Bytes {
        std::future::pending().await
    }

    fn on_message(&self, _from: NodeId, _message: Bytes) {}
}

/// Answers requests of at most `echo_limit` bytes with themselves; keeps the last larger request
/// and answers it with its length (8 bytes, big-endian).
#[derive(Debug)]
pub struct Keep {
    echo_limit: usize,
    last_call: Mutex<Option<Bytes>>,
    messages: Arc<Echo>,
}

impl Keep {
    /// A handler echoing requests up to `echo_limit` bytes.
    pub fn new(echo_limit: usize) -> Arc<Self> {
        Arc::new(Self {
            echo_limit,
            last_call: Mutex::new(None),
            messages: Echo::new(),
        })
    }

    /// Takes the last request larger than the echo limit.
    pub fn take_call(&self) -> Option<Bytes> {
        lock(&self.last_call).take()
    }

    /// The one-way messages received (recorded as [`Echo`] does).
    pub fn messages(&self) -> &Echo {
        &self.messages
    }
}

#[async_trait]
impl Inbound for Keep {
    async fn on_call(&self, _from: NodeId, request: Bytes) -> Bytes {
        if request.len() <= self.echo_limit {
            request
        } else {
            let reply = Bytes::copy_from_slice(&(request.len() as u64).to_be_bytes());
            *lock(&self.last_call) = Some(request);
            reply
        }
    }

    fn on_message(&self, from: NodeId, message: Bytes) {
        self.messages.on_message(from, message);
    }
}
