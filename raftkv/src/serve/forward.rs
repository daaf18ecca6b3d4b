//! Forwarding between nodes over the peer transport.
//!
//! [`MuxTransport`] wraps the engine's transport and prefixes every message with one byte, so
//! the same authenticated connections carry both Raft traffic (for the engine) and this small
//! request/response protocol (for [`ForwardServer`]): a follower sends a client's read or write
//! to the leader with [`Transport::call`], the leader runs it locally and answers.
//!
//! Wire (after the tag byte), all integers little-endian:
//! * request: kind `u8` (1 read, 2 write, 3 versioned read), the caller's remaining deadline
//!   in ms `u32`, then for a read of either kind a `u16` key count and each key as `u32` length
//!   + bytes, for a write the encoded `KvCommand`.
//! * reply: status `u8` (1 values, 2 KV response, 3 error, 4 versioned values), then for values
//!   a `u16` count and each as presence `u8` + (`u32` length + bytes), for versioned values the
//!   same with a `u64` version after each value, for a response the encoded `KvResponse`, for
//!   an error a class `u8` ([`ErrorClass`]), a leader hint `u64` (0: none) and a UTF-8 message.
//!
//! Versioned reads have their own kind and status so plain reads keep their layout.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kv_lease::kv::{KvCommand, KvResponse};
use raftengine::{Inbound, NodeId, Transport, TransportError};

const TAG_RAFT: u8 = 0;
const TAG_FORWARD: u8 = 1;

/// Most keys one forwarded read may name (a client's MGET is bounded by its request size too).
pub const MAX_READ_KEYS: usize = u16::MAX as usize;

/// What a node runs for a client: a read of some keys or one replicated command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Reads these keys under the leader's lease (or after a quorum round).
    Read(Vec<Bytes>),
    /// Reads these keys' values and versions, on the same paths as [`Op::Read`].
    ReadVersioned(Vec<Bytes>),
    /// Replicates one command through the log.
    Write(KvCommand),
}

/// What an [`Op`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutput {
    /// One value per key read.
    Values(Vec<Option<Bytes>>),
    /// One value and version per key read.
    Versioned(Vec<(Option<Bytes>, u64)>),
    /// The state machine's answer to a write.
    Response(KvResponse),
}

/// How a failed op may be handled by the node that forwarded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Nothing was applied and another attempt may succeed (no leader, leader moved, busy).
    Retry = 1,
    /// A write may or may not have been applied.
    Unknown = 2,
    /// The request cannot succeed (too large, shutting down, storage failure).
    Failed = 3,
}

/// A failed op, as carried on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// What the caller may do.
    pub class: ErrorClass,
    /// The leader the failing node knows of.
    pub hint: Option<NodeId>,
    /// Human-readable cause.
    pub message: String,
}

/// A malformed forwarding message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed forwarding message: {0}")]
pub struct WireError(&'static str);

/// Encodes a forwarded request (with its tag byte).
pub fn encode_request(op: &Op, remaining: Duration) -> Result<Bytes, WireError> {
    let mut buf = BytesMut::new();
    buf.put_u8(TAG_FORWARD);
    let millis = u32::try_from(remaining.as_millis()).unwrap_or(u32::MAX);
    match op {
        Op::Read(keys) | Op::ReadVersioned(keys) => {
            buf.put_u8(if matches!(op, Op::Read(_)) { 1 } else { 3 });
            buf.put_u32_le(millis);
            let count = u16::try_from(keys.len()).map_err(|_| WireError("too many keys"))?;
            buf.put_u16_le(count);
            for key in keys {
                put_bytes(&mut buf, key)?;
            }
        }
        Op::Write(command) => {
            buf.put_u8(2);
            buf.put_u32_le(millis);
            buf.put_slice(&command.encode());
        }
    }
    Ok(buf.freeze())
}

fn put_bytes(buf: &mut BytesMut, value: &[u8]) -> Result<(), WireError> {
    let len = u32::try_from(value.len()).map_err(|_| WireError("value too long"))?;
    buf.put_u32_le(len);
    buf.put_slice(value);
    Ok(())
}

fn take_bytes(buf: &mut Bytes) -> Result<Bytes, WireError> {
    if buf.remaining() < 4 {
        return Err(WireError("truncated length"));
    }
    let len = buf.get_u32_le() as usize;
    if buf.remaining() < len {
        return Err(WireError("truncated bytes"));
    }
    Ok(buf.split_to(len))
}

/// Decodes a forwarded request (without its tag byte).
pub fn decode_request(mut buf: Bytes) -> Result<(Op, Duration), WireError> {
    if buf.remaining() < 5 {
        return Err(WireError("truncated header"));
    }
    let kind = buf.get_u8();
    let remaining = Duration::from_millis(u64::from(buf.get_u32_le()));
    let op = match kind {
        1 => Op::Read(decode_keys(buf)?),
        2 => Op::Write(KvCommand::decode(&buf).map_err(|_| WireError("bad KV command"))?),
        3 => Op::ReadVersioned(decode_keys(buf)?),
        _ => return Err(WireError("unknown request kind")),
    };
    Ok((op, remaining))
}

fn decode_keys(mut buf: Bytes) -> Result<Vec<Bytes>, WireError> {
    if buf.remaining() < 2 {
        return Err(WireError("truncated count"));
    }
    let count = buf.get_u16_le() as usize;
    // Every key costs at least its 4-byte length: no allocation beyond what arrived.
    if count > buf.remaining() / 4 {
        return Err(WireError("count larger than the message"));
    }
    let mut keys = Vec::with_capacity(count);
    for _ in 0..count {
        keys.push(take_bytes(&mut buf)?);
    }
    if buf.has_remaining() {
        return Err(WireError("trailing bytes"));
    }
    Ok(keys)
}

fn put_value(buf: &mut BytesMut, value: Option<&Bytes>) -> Result<(), WireError> {
    match value {
        None => buf.put_u8(0),
        Some(value) => {
            buf.put_u8(1);
            put_bytes(buf, value)?;
        }
    }
    Ok(())
}

fn take_value(buf: &mut Bytes) -> Result<Option<Bytes>, WireError> {
    if !buf.has_remaining() {
        return Err(WireError("truncated value"));
    }
    match buf.get_u8() {
        0 => Ok(None),
        1 => Ok(Some(take_bytes(buf)?)),
        _ => Err(WireError("bad presence byte")),
    }
}

fn too_long() -> Bytes {
    encode_reply(&Err(OpError {
        class: ErrorClass::Failed,
        hint: None,
        message: "value too long to forward".into(),
    }))
}

/// Encodes a reply.
pub fn encode_reply(reply: &Result<OpOutput, OpError>) -> Bytes {
    let mut buf = BytesMut::new();
    match reply {
        Ok(OpOutput::Values(values)) => {
            buf.put_u8(1);
            // Reads are limited to MAX_READ_KEYS keys on both ends.
            buf.put_u16_le(values.len().min(MAX_READ_KEYS) as u16);
            for value in values.iter().take(MAX_READ_KEYS) {
                if put_value(&mut buf, value.as_ref()).is_err() {
                    return too_long();
                }
            }
        }
        Ok(OpOutput::Versioned(values)) => {
            buf.put_u8(4);
            buf.put_u16_le(values.len().min(MAX_READ_KEYS) as u16);
            for (value, version) in values.iter().take(MAX_READ_KEYS) {
                if put_value(&mut buf, value.as_ref()).is_err() {
                    return too_long();
                }
                buf.put_u64_le(*version);
            }
        }
        Ok(OpOutput::Response(response)) => {
            buf.put_u8(2);
            buf.put_slice(&response.encode());
        }
        Err(error) => {
            buf.put_u8(3);
            buf.put_u8(error.class as u8);
            buf.put_u64_le(error.hint.unwrap_or(0));
            buf.put_slice(error.message.as_bytes());
        }
    }
    buf.freeze()
}

/// Decodes a reply.
pub fn decode_reply(mut buf: Bytes) -> Result<Result<OpOutput, OpError>, WireError> {
    if !buf.has_remaining() {
        // The peer answered but forwarding is not set up there yet.
        return Ok(Err(OpError {
            class: ErrorClass::Retry,
            hint: None,
            message: "the leader is not ready to take forwarded requests".into(),
        }));
    }
    match buf.get_u8() {
        1 => {
            if buf.remaining() < 2 {
                return Err(WireError("truncated count"));
            }
            let count = buf.get_u16_le() as usize;
            if count > buf.remaining() {
                return Err(WireError("count larger than the message"));
            }
            let mut values = Vec::with_capacity(count);
            for _ in 0..count {
                values.push(take_value(&mut buf)?);
            }
            if buf.has_remaining() {
                return Err(WireError("trailing bytes"));
            }
            Ok(Ok(OpOutput::Values(values)))
        }
        4 => Ok(Ok(OpOutput::Versioned(decode_versioned(buf)?))),
        2 => Ok(Ok(OpOutput::Response(
            KvResponse::decode(&buf).map_err(|_| WireError("bad KV response"))?,
        ))),
        3 => {
            if buf.remaining() < 9 {
                return Err(WireError("truncated error"));
            }
            let class = match buf.get_u8() {
                1 => ErrorClass::Retry,
                2 => ErrorClass::Unknown,
                3 => ErrorClass::Failed,
                _ => return Err(WireError("bad error class")),
            };
            let hint = Some(buf.get_u64_le()).filter(|&id| id != 0);
            let message = String::from_utf8_lossy(&buf).into_owned();
            Ok(Err(OpError {
                class,
                hint,
                message,
            }))
        }
        _ => Err(WireError("unknown reply status")),
    }
}

fn decode_versioned(mut buf: Bytes) -> Result<Vec<(Option<Bytes>, u64)>, WireError> {
    if buf.remaining() < 2 {
        return Err(WireError("truncated count"));
    }
    let count = buf.get_u16_le() as usize;
    // Every entry costs at least a presence byte and an 8-byte version.
    if count > buf.remaining() / 9 {
        return Err(WireError("count larger than the message"));
    }
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        let value = take_value(&mut buf)?;
        if buf.remaining() < 8 {
            return Err(WireError("truncated version"));
        }
        values.push((value, buf.get_u64_le()));
    }
    if buf.has_remaining() {
        return Err(WireError("trailing bytes"));
    }
    Ok(values)
}

/// Runs forwarded ops on the node that receives them.
#[async_trait]
pub trait ForwardServer: Send + Sync + 'static {
    /// Runs `op` locally within `remaining`, never forwarding it again.
    async fn serve_forwarded(&self, op: Op, remaining: Duration) -> Result<OpOutput, OpError>;
}

type ServerSlot = Arc<RwLock<Option<Arc<dyn ForwardServer>>>>;

/// The engine's transport with forwarding multiplexed onto it (see the module docs).
#[derive(Clone)]
pub struct MuxTransport {
    inner: Arc<dyn Transport>,
    server: ServerSlot,
}

impl std::fmt::Debug for MuxTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MuxTransport")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl MuxTransport {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Self {
            inner,
            server: Arc::new(RwLock::new(None)),
        }
    }

    /// Installs the handler of forwarded ops.
    pub fn set_forward_server(&self, server: Arc<dyn ForwardServer>) {
        if let Ok(mut slot) = self.server.write() {
            *slot = Some(server);
        }
    }

    /// Removes the handler (forwarded ops are answered "retry" from now on).
    pub fn clear_forward_server(&self) {
        if let Ok(mut slot) = self.server.write() {
            slot.take();
        }
    }

    /// Sends `op` to `to` and waits for its reply, at most `timeout`.
    pub async fn forward(
        &self,
        to: NodeId,
        op: &Op,
        timeout: Duration,
    ) -> Result<Result<OpOutput, OpError>, ForwardError> {
        let request = encode_request(op, timeout).map_err(ForwardError::Wire)?;
        let reply = self
            .inner
            .call(to, request, timeout)
            .await
            .map_err(ForwardError::Transport)?;
        decode_reply(reply).map_err(ForwardError::Wire)
    }
}

/// Why a forwarded op got no decodable reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// The transport failed (unreachable, timeout, overloaded).
    #[error(transparent)]
    Transport(TransportError),
    /// The request or reply did not encode or decode.
    #[error(transparent)]
    Wire(WireError),
}

fn tagged(tag: u8, payload: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(payload.len() + 1);
    buf.put_u8(tag);
    buf.put_slice(payload);
    buf.freeze()
}

#[async_trait]
impl Transport for MuxTransport {
    fn local_id(&self) -> NodeId {
        self.inner.local_id()
    }

    async fn call(
        &self,
        to: NodeId,
        request: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        self.inner
            .call(to, tagged(TAG_RAFT, &request), timeout)
            .await
    }

    fn send(&self, to: NodeId, message: Bytes) {
        self.inner.send(to, tagged(TAG_RAFT, &message));
    }

    fn serve(&self, inbound: Arc<dyn Inbound>) {
        self.inner.serve(Arc::new(MuxInbound {
            engine: inbound,
            server: Arc::clone(&self.server),
        }));
    }

    fn stop_serving(&self) {
        self.inner.stop_serving();
    }
}

struct MuxInbound {
    engine: Arc<dyn Inbound>,
    server: ServerSlot,
}

#[async_trait]
impl Inbound for MuxInbound {
    async fn on_call(&self, from: NodeId, mut request: Bytes) -> Bytes {
        if !request.has_remaining() {
            return Bytes::new();
        }
        match request.get_u8() {
            TAG_RAFT => self.engine.on_call(from, request).await,
            TAG_FORWARD => {
                let server = self.server.read().ok().and_then(|slot| slot.clone());
                let Some(server) = server else {
                    return Bytes::new();
                };
                let reply = match decode_request(request) {
                    Ok((op, remaining)) => server.serve_forwarded(op, remaining).await,
                    Err(error) => Err(OpError {
                        class: ErrorClass::Failed,
                        hint: None,
                        message: error.to_string(),
                    }),
                };
                encode_reply(&reply)
            }
            // Unknown tags come only from a peer of another version: nothing to answer.
            _ => Bytes::new(),
        }
    }

    fn on_message(&self, from: NodeId, mut message: Bytes) {
        if message.has_remaining() && message.get_u8() == TAG_RAFT {
            self.engine.on_message(from, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        let ops = [
            Op::Read(vec![Bytes::from_static(b"a"), Bytes::new()]),
            Op::ReadVersioned(vec![Bytes::from_static(b"a"), Bytes::new()]),
            Op::ReadVersioned(vec![]),
            Op::Write(KvCommand::VersionedTxn {
                versions: vec![kv_lease::kv::VersionCondition {
                    key: Bytes::from_static(b"w"),
                    version: 42,
                }],
                txn: kv_lease::kv::Txn::default(),
            }),
            Op::Write(KvCommand::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
            }),
        ];
        for op in ops {
            let mut wire = encode_request(&op, Duration::from_millis(1500)).unwrap();
            assert_eq!(wire.get_u8(), TAG_FORWARD);
            assert_eq!(
                decode_request(wire).unwrap(),
                (op, Duration::from_millis(1500))
            );
        }
        let replies = [
            Ok(OpOutput::Values(vec![None, Some(Bytes::from_static(b"x"))])),
            Ok(OpOutput::Versioned(vec![
                (None, 7),
                (Some(Bytes::from_static(b"x")), u64::MAX),
            ])),
            Ok(OpOutput::Versioned(vec![])),
            Ok(OpOutput::Response(KvResponse::Committed)),
            Err(OpError {
                class: ErrorClass::Retry,
                hint: Some(3),
                message: "not leader".into(),
            }),
        ];
        for reply in replies {
            assert_eq!(decode_reply(encode_reply(&reply)).unwrap(), reply);
        }
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"\x01\x00\x00",
            b"\x01\x00\x00\x00\x00\xff\xff",
            b"\x01\x00\x00\x00\x00\x01\x00\x09\x00\x00\x00a",
            b"\x09\x00\x00\x00\x00",
            b"\x03\x00\x00\x00\x00\x01\x00",
            b"\x03\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00ab",
            b"\x02\x00\x00\x00\x00\xff",
        ] {
            assert!(
                decode_request(Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
        for bad in [
            &b"\x01\xff\xff"[..],
            b"\x03\x09",
            b"\x07",
            b"\x01\x01\x00\x05",
            b"\x01\x01\x00\x00\x00",
            // A versioned value whose version is cut short, or missing altogether.
            b"\x04\x01\x00\x01\x01\x00\x00\x00a\x01\x02\x03",
            b"\x04\x01\x00\x00\x01\x02\x03\x04\x05\x06\x07",
            b"\x04\x02\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00",
            b"\x04\x01\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00",
            b"\x04\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            b"\x04\xff",
        ] {
            assert!(
                decode_reply(Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}
