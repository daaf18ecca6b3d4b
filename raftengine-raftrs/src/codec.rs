//! Byte formats this adapter owns: the wire envelope around raft messages, log entry payloads,
//! the hard-state blob, membership blobs and request identities.
//!
//! Every decoder returns `None` (or an error) on malformed input and never panics: bytes from a
//! peer or from disk are untrusted.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Message};

/// Version tag of the wire envelope.
const WIRE_VERSION: u8 = 1;
/// Version tag of the hard-state blob.
const META_VERSION: u8 = 1;

/// One raft message on the wire plus the adapter's acknowledgement tokens.
///
/// `token` identifies this message for quorum-ack tracking (0 = not tracked); `echo` is the
/// highest token the sender has received from the recipient so far.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Envelope {
    pub(crate) token: u64,
    pub(crate) echo: u64,
    pub(crate) message: Message,
}

/// Bytes before the protobuf message: version, token, echo.
const ENVELOPE_HEADER: usize = 17;

/// Encodes an envelope (see [`Envelope`]) from its parts: version, token, echo, then the
/// protobuf message.
pub(crate) fn encode_envelope(token: u64, echo: u64, message: &Message) -> Option<Bytes> {
    // One buffer of the exact size, the message written into its tail as protobuf's own
    // `write_to_bytes` does (a fixed slice: no growth checks, no reallocation, no copy of the
    // body, which for an append carries the entries).
    let size = usize::try_from(message.compute_size()).ok()?;
    let mut buf = vec![0u8; ENVELOPE_HEADER + size];
    let (header, body) = buf.split_at_mut(ENVELOPE_HEADER);
    header[0] = WIRE_VERSION;
    header[1..9].copy_from_slice(&token.to_be_bytes());
    header[9..17].copy_from_slice(&echo.to_be_bytes());
    let mut out = protobuf::CodedOutputStream::bytes(body);
    // The sizes `compute_size` cached are the ones this write uses, so the body fills the
    // slice exactly; a slice too small is an error here, not a panic.
    message.write_to_with_cached_sizes(&mut out).ok()?;
    Some(Bytes::from(buf))
}

/// Decodes an envelope; `None` for anything malformed.
pub(crate) fn decode_envelope(bytes: &[u8]) -> Option<Envelope> {
    let mut buf = bytes;
    if buf.remaining() < ENVELOPE_HEADER || buf.get_u8() != WIRE_VERSION {
        return None;
    }
    let mut envelope = Envelope {
        token: buf.get_u64(),
        echo: buf.get_u64(),
        message: Message::default(),
    };
    // Parsed in place: a raft message is a few hundred bytes, and each move through a
    // `Result` and an `Option` copied it.
    envelope.message.merge_from_bytes(buf).ok()?;
    Some(envelope)
}

/// Encodes a raft entry as a log-store payload.
pub(crate) fn encode_entry(entry: &Entry) -> Option<Bytes> {
    entry.write_to_bytes().ok().map(Bytes::from)
}

/// Decodes a log-store payload back into a raft entry.
pub(crate) fn decode_entry(bytes: &[u8]) -> Option<Entry> {
    Entry::parse_from_bytes(bytes).ok()
}

/// Encodes a conf state (snapshot membership).
pub(crate) fn encode_conf_state(conf_state: &ConfState) -> Bytes {
    conf_state
        .write_to_bytes()
        .map(Bytes::from)
        .unwrap_or_default()
}

/// Decodes a conf state.
pub(crate) fn decode_conf_state(bytes: &[u8]) -> Option<ConfState> {
    ConfState::parse_from_bytes(bytes).ok()
}

/// What this adapter keeps in the log store's hard-state slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Meta {
    /// Raft's term, vote and commit.
    pub(crate) hard_state: HardState,
    /// Counts engine starts on this store; makes request ids and ack tokens unique across
    /// restarts.
    pub(crate) incarnation: u64,
}

/// Encodes the hard-state blob.
pub(crate) fn encode_meta(meta: &Meta) -> Bytes {
    let hs = meta.hard_state.write_to_bytes().unwrap_or_default();
    let mut buf = BytesMut::with_capacity(13 + hs.len());
    buf.put_u8(META_VERSION);
    buf.put_u64(meta.incarnation);
    buf.put_u32(hs.len() as u32);
    buf.put_slice(&hs);
    buf.freeze()
}

/// Decodes the hard-state blob.
pub(crate) fn decode_meta(bytes: &[u8]) -> Option<Meta> {
    let mut buf = bytes;
    if buf.remaining() < 13 || buf.get_u8() != META_VERSION {
        return None;
    }
    let incarnation = buf.get_u64();
    let len = buf.get_u32() as usize;
    if buf.remaining() != len {
        return None;
    }
    let hard_state = HardState::parse_from_bytes(buf).ok()?;
    Some(Meta {
        hard_state,
        incarnation,
    })
}

/// Kinds of request identities (the first byte of an entry or read context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A user command.
    Command = 1,
    /// A membership change.
    Membership = 2,
    /// A ReadIndex round.
    Read = 3,
}

/// A request identity unique across nodes and restarts: node, incarnation, sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RequestId {
    pub(crate) node: u64,
    pub(crate) incarnation: u64,
    pub(crate) seq: u64,
}

/// Encodes a request identity as an entry or read context.
pub(crate) fn encode_request_id(kind: RequestKind, id: RequestId) -> Vec<u8> {
    let mut buf = Vec::with_capacity(25);
    buf.put_u8(kind as u8);
    buf.put_u64(id.node);
    buf.put_u64(id.incarnation);
    buf.put_u64(id.seq);
    buf
}

/// Decodes a context written by [`encode_request_id`].
pub(crate) fn decode_request_id(bytes: &[u8]) -> Option<(RequestKind, RequestId)> {
    let mut buf = bytes;
    if buf.remaining() != 25 {
        return None;
    }
    let kind = match buf.get_u8() {
        1 => RequestKind::Command,
        2 => RequestKind::Membership,
        3 => RequestKind::Read,
        _ => return None,
    };
    let id = RequestId {
        node: buf.get_u64(),
        incarnation: buf.get_u64(),
        seq: buf.get_u64(),
    };
    Some((kind, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::eraftpb::MessageType;

    #[test]
    fn envelope_round_trips_and_garbage_is_refused() {
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgHeartbeat);
        message.from = 1;
        message.to = 2;
        message.term = 7;
        let bytes = encode_envelope(42, 9, &message).unwrap();
        assert_eq!(
            decode_envelope(&bytes),
            Some(Envelope {
                token: 42,
                echo: 9,
                message,
            })
        );
        let mut append = Message::default();
        append.set_msg_type(MessageType::MsgAppend);
        append.to = 3;
        append.set_entries(
            (1..=3)
                .map(|index| Entry {
                    index,
                    term: 2,
                    data: vec![index as u8; 100].into(),
                    ..Default::default()
                })
                .collect::<Vec<_>>()
                .into(),
        );
        let decoded = decode_envelope(&encode_envelope(0, u64::MAX, &append).unwrap()).unwrap();
        assert_eq!((decoded.token, decoded.echo), (0, u64::MAX));
        assert_eq!(decoded.message, append);
        assert_eq!(decode_envelope(b""), None);
        assert_eq!(decode_envelope(&[9; 40]), None);
        let mut corrupt = bytes.to_vec();
        corrupt.truncate(20);
        corrupt.extend_from_slice(&[0xff, 0xff, 0xff]);
        assert_eq!(decode_envelope(&corrupt), None);
    }

    #[test]
    fn meta_round_trips() {
        let mut meta = Meta::default();
        meta.hard_state.term = 3;
        meta.hard_state.vote = 2;
        meta.hard_state.commit = 10;
        meta.incarnation = 5;
        assert_eq!(decode_meta(&encode_meta(&meta)), Some(meta));
        assert_eq!(decode_meta(b"xx"), None);
    }

    #[test]
    fn request_ids_round_trip() {
        let id = RequestId {
            node: 3,
            incarnation: 2,
            seq: 99,
        };
        let ctx = encode_request_id(RequestKind::Read, id);
        assert_eq!(decode_request_id(&ctx), Some((RequestKind::Read, id)));
        assert_eq!(decode_request_id(&ctx[1..]), None);
    }
}
