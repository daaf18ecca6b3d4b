//! The outgoing queue of one connection (or one peer), and the loop that writes it.
//!
//! Two lanes: small messages go out whole and first; large ones are cut into chunks that are
//! written only when no small message waits, so a long transfer never holds up a heartbeat.
//! One-way messages keep their order: while a large one-way message is queued, later one-way
//! messages queue behind it in the same lane.

use std::collections::VecDeque;
use std::io;
use std::sync::{Mutex, MutexGuard};

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{FutureExt, Sink};
use tokio::io::AsyncWrite;
use tokio::sync::Notify;
use tokio_util::codec::{FramedWrite, LengthDelimitedCodec};

use crate::frame::{Envelope, Flags, HEADER_LEN, Header, Kind};

/// A message waiting to be written.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) header: Header,
    pub(crate) payload: Bytes,
}

impl Outgoing {
    pub(crate) fn new(
        kind: Kind,
        flags: Flags,
        id: u64,
        from: u64,
        to: u64,
        payload: Bytes,
    ) -> Self {
        Self {
            header: Header {
                kind,
                flags,
                id,
                from,
                to,
                total: payload.len() as u64,
            },
            payload,
        }
    }
}

/// The queue was over its byte limit; the message was not queued.
#[derive(Debug)]
pub(crate) struct Full;

#[derive(Debug, Default)]
struct Lanes {
    urgent: VecDeque<Outgoing>,
    urgent_bytes: usize,
    bulk: VecDeque<(Outgoing, usize)>,
    bulk_bytes: usize,
    bulk_one_ways: usize,
}

/// Limits of one outbox.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) chunk_len: usize,
    pub(crate) queue_limit: usize,
    pub(crate) bulk_queue_limit: usize,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    lanes: Mutex<Lanes>,
    ready: Notify,
    limits: Limits,
}

impl Outbox {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            lanes: Mutex::new(Lanes::default()),
            ready: Notify::new(),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lanes> {
        // A panic while holding this lock cannot leave the lanes half-updated in a way that
        // matters more than losing the transport, so a poisoned lock is used as is.
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `message` without waking the writer ([`submit`] does), or refuses it when its
    /// lane is over the limit. Returns whether the outbox was empty before.
    pub(crate) fn push(&self, message: Outgoing) -> Result<bool, Full> {
        let len = message.payload.len();
        let is_one_way = message.header.kind == Kind::OneWay;
        let was_empty;
        {
            let mut lanes = self.lock();
            was_empty = lanes.urgent.is_empty() && lanes.bulk.is_empty();
            let bulk = len > self.limits.chunk_len || (is_one_way && lanes.bulk_one_ways > 0);
            if bulk {
                // One large message is always taken when the lane is empty, so a message up to
                // the maximum length can travel even with a smaller bulk limit.
                if lanes.bulk_bytes > 0 && lanes.bulk_bytes + len > self.limits.bulk_queue_limit {
                    return Err(Full);
                }
                lanes.bulk_bytes += len;
                if is_one_way {
                    lanes.bulk_one_ways += 1;
                }
                lanes.bulk.push_back((message, 0));
            } else {
                let cost = len + HEADER_LEN;
                if lanes.urgent_bytes + cost > self.limits.queue_limit {
                    return Err(Full);
                }
                lanes.urgent_bytes += cost;
                lanes.urgent.push_back(message);
            }
        }
        Ok(was_empty)
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        let lanes = self.lock();
        lanes.urgent.is_empty() && lanes.bulk.is_empty()
    }

    /// Waits until something may have been queued.
    pub(crate) async fn wait(&self) {
        self.ready.notified().await;
    }

    /// Removes everything queued (the connection failed).
    pub(crate) fn drain(&self) -> Vec<Outgoing> {
        let mut lanes = self.lock();
        let mut out: Vec<Outgoing> = lanes.urgent.drain(..).collect();
        out.extend(lanes.bulk.drain(..).map(|(m, _)| m));
        *lanes = Lanes::default();
        out
    }

    /// The next frame to write: a small message, else the next chunk of the oldest large one.
    fn next(&self) -> Option<(Header, Bytes)> {
        let mut lanes = self.lock();
        if let Some(message) = lanes.urgent.pop_front() {
            lanes.urgent_bytes -= message.payload.len() + HEADER_LEN;
            return Some((message.header, message.payload));
        }
        let chunk_len = self.limits.chunk_len.max(1);
        let (message, offset) = lanes.bulk.front_mut()?;
        let start = *offset;
        let end = (start + chunk_len).min(message.payload.len());
        let chunk = message.payload.slice(start..end);
        let mut header = message.header;
        let last = end == message.payload.len();
        if !last {
            header.flags = header.flags.with(Flags::MORE);
        }
        *offset = end;
        lanes.bulk_bytes -= end - start;
        if last {
            if header.kind == Kind::OneWay {
                lanes.bulk_one_ways -= 1;
            }
            lanes.bulk.pop_front();
        }
        Some((header, chunk))
    }
}

/// The write half of one connection. Whoever holds the lock writes: the connection's task, or
/// a caller that finds the connection idle and writes its own message without a task switch.
#[derive(Debug)]
pub(crate) struct Writer<W> {
    sink: tokio::sync::Mutex<FramedWrite<W, LengthDelimitedCodec>>,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    pub(crate) fn new(sink: FramedWrite<W, LengthDelimitedCodec>) -> Self {
        Self {
            sink: tokio::sync::Mutex::new(sink),
        }
    }
}

/// Moves queued frames into `sink` and flushes. Cancel-safe: a frame leaves the outbox only once
/// the sink has room for it, and is handed over without an await in between, so dropping this
/// future loses nothing (unflushed bytes stay in the sink's buffer for the next flush).
async fn drain<W: AsyncWrite + Unpin>(
    sink: &mut FramedWrite<W, LengthDelimitedCodec>,
    outbox: &Outbox,
) -> io::Result<()> {
    loop {
        std::future::poll_fn(|cx| Sink::<Bytes>::poll_ready(Pin::new(&mut *sink), cx)).await?;
        let Some((header, payload)) = outbox.next() else {
            break;
        };
        Sink::<Bytes>::start_send(Pin::new(&mut *sink), Envelope::encode(&header, &payload))?;
    }
    std::future::poll_fn(|cx| Sink::<Bytes>::poll_flush(Pin::new(&mut *sink), cx)).await
}

/// Writes the outbox to the connection until an I/O error.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    writer: &Writer<W>,
    outbox: &Outbox,
) -> io::Result<()> {
    loop {
        {
            let mut sink = writer.sink.lock().await;
            drain(&mut sink, outbox).await?;
        }
        outbox.wait().await;
    }
}

/// Queues `message` and, for a call or reply when nothing else is queued and the connection is
/// idle, writes it right away from the caller's task (a round trip saves two task switches);
/// otherwise wakes the connection's writer, which writes bursts with one flush. One-way messages
/// always go through the writer: they come in bursts, and writing the first of a burst alone
/// halved one-way throughput in the benchmark.
pub(crate) fn submit<W: AsyncWrite + Unpin>(
    writer: Option<&Writer<W>>,
    outbox: &Outbox,
    message: Outgoing,
) -> Result<(), Full> {
    let one_way = message.header.kind == Kind::OneWay;
    let was_empty = outbox.push(message)?;
    let written = was_empty
        && !one_way
        && writer.is_some_and(|writer| match writer.sink.try_lock() {
            Ok(mut sink) => matches!(drain(&mut sink, outbox).now_or_never(), Some(Ok(()))),
            Err(_) => false,
        });
    if !written {
        // Busy, blocked on a full socket, failed, or not connected yet: the connection's task
        // (or the task that connects) takes it from here.
        outbox.ready.notify_one();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            chunk_len: 4,
            queue_limit: 2 * (HEADER_LEN + 4),
            bulk_queue_limit: 10,
        }
    }

    fn msg(kind: Kind, id: u64, payload: &'static [u8]) -> Outgoing {
        Outgoing::new(kind, Flags::empty(), id, 1, 2, Bytes::from_static(payload))
    }

    #[test]
    fn small_messages_overtake_chunks_but_one_ways_keep_order() {
        let outbox = Outbox::new(limits());
        outbox.push(msg(Kind::Call, 1, b"0123456789")).unwrap();
        outbox.push(msg(Kind::OneWay, 2, b"abcdefgh")).unwrap_err();
        outbox.push(msg(Kind::Call, 3, b"hb")).unwrap();
        let (h, p) = outbox.next().unwrap();
        assert_eq!((h.id, &p[..]), (3, &b"hb"[..]));
        let (h, p) = outbox.next().unwrap();
        assert_eq!(
            (h.id, &p[..], h.flags.contains(Flags::MORE)),
            (1, &b"0123"[..], true)
        );
        outbox.push(msg(Kind::Call, 4, b"x")).unwrap();
        assert_eq!(outbox.next().unwrap().0.id, 4);
        assert_eq!(&outbox.next().unwrap().1[..], b"4567");
        let (h, p) = outbox.next().unwrap();
        assert_eq!(
            (&p[..], h.flags.contains(Flags::MORE), h.total),
            (&b"89"[..], false, 10)
        );
        assert!(outbox.next().is_none());

        outbox.push(msg(Kind::OneWay, 5, b"0123456")).unwrap();
        outbox.push(msg(Kind::OneWay, 6, b"s")).unwrap();
        let order: Vec<u64> = std::iter::from_fn(|| outbox.next())
            .map(|(h, _)| h.id)
            .collect();
        assert_eq!(order, vec![5, 5, 6]);
    }

    #[test]
    fn small_lane_is_bounded() {
        let outbox = Outbox::new(limits());
        outbox.push(msg(Kind::OneWay, 1, b"aaaa")).unwrap();
        outbox.push(msg(Kind::OneWay, 2, b"bbbb")).unwrap();
        assert!(outbox.push(msg(Kind::OneWay, 3, b"c")).is_err());
        assert_eq!(outbox.drain().len(), 2);
        outbox.push(msg(Kind::OneWay, 3, b"c")).unwrap();
    }
}
