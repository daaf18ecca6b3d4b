//! The envelope every length-delimited frame carries, and its decoder.
//!
//! Layout (big-endian), after the codec's 4-byte length prefix:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version ([`VERSION`]) |
//! | 1 | kind: hello, call, reply, one-way |
//! | 1 | flags: [`Flags::MORE`] (more chunks of this message follow), [`Flags::NOT_SERVING`] |
//! | 8 | request id (calls and replies), sequence number (one-way), 0 (hello) |
//! | 8 | sender node id |
//! | 8 | receiver node id |
//! | 8 | total length of the message this frame's payload belongs to |
//! | rest | payload (the whole message, or one chunk of it) |
//!
//! A message larger than one chunk travels as several frames with the same kind and id, all but
//! the last flagged [`Flags::MORE`]; small messages of other ids may be interleaved between them.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raftengine::NodeId;

/// The wire version this crate speaks.
pub const VERSION: u8 = 1;

/// Bytes of the envelope header in front of the payload.
pub const HEADER_LEN: usize = 35;

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// First frame of a connection: who dials whom.
    Hello,
    /// A request waiting for a reply with the same id.
    Call,
    /// The answer to the call with the same id.
    Reply,
    /// A message nobody answers.
    OneWay,
}

impl Kind {
    fn to_byte(self) -> u8 {
        match self {
            Self::Hello => 0,
            Self::Call => 1,
            Self::Reply => 2,
            Self::OneWay => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Hello,
            1 => Self::Call,
            2 => Self::Reply,
            3 => Self::OneWay,
            _ => return None,
        })
    }
}

/// Frame flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u8);

impl Flags {
    /// More chunks of the same message follow.
    pub const MORE: Self = Self(0b01);
    /// A reply saying the receiver has no handler installed: it looks down.
    pub const NOT_SERVING: Self = Self(0b10);
    const KNOWN: u8 = 0b11;

    /// No flag.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets.
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// The fixed part of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the frame is.
    pub kind: Kind,
    /// Its flags.
    pub flags: Flags,
    /// Request id or sequence number.
    pub id: u64,
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Length of the whole message (all chunks).
    pub total: u64,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The fixed part.
    pub header: Header,
    /// The message, or one chunk of it.
    pub payload: Bytes,
}

/// Why a frame was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than the header.
    #[error("frame of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    Short(usize),
    /// A version this crate does not speak.
    #[error("unsupported wire version {0}")]
    Version(u8),
    /// An unknown kind byte.
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// Flags with unknown bits, or a flag the kind cannot carry.
    #[error("flags {flags:#04x} are invalid on a {kind:?} frame")]
    Flags {
        /// The frame's kind.
        kind: Kind,
        /// The raw flags byte.
        flags: u8,
    },
    /// The payload does not fit the declared message length.
    #[error("payload of {payload} bytes does not fit a message of {total} bytes")]
    Length {
        /// Bytes in this frame.
        payload: usize,
        /// Declared message length.
        total: u64,
    },
    /// A hello frame with a payload or an id.
    #[error("malformed hello frame")]
    Hello,
}

impl Envelope {
    /// Decodes one frame (without its length prefix). Never panics; every malformed input is a
    /// [`FrameError`].
    pub fn decode(mut frame: Bytes) -> Result<Self, FrameError> {
        if frame.len() < HEADER_LEN {
            return Err(FrameError::Short(frame.len()));
        }
        let version = frame.get_u8();
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind_byte = frame.get_u8();
        let kind = Kind::from_byte(kind_byte).ok_or(FrameError::Kind(kind_byte))?;
        let flags_byte = frame.get_u8();
        let flags = Flags(flags_byte);
        let flags_ok = flags_byte & !Flags::KNOWN == 0
            && match kind {
                Kind::Hello => flags_byte == 0,
                Kind::Reply => true,
                Kind::Call | Kind::OneWay => !flags.contains(Flags::NOT_SERVING),
            };
        if !flags_ok {
            return Err(FrameError::Flags {
                kind,
                flags: flags_byte,
            });
        }
        let id = frame.get_u64();
        let from = frame.get_u64();
        let to = frame.get_u64();
        let total = frame.get_u64();
        let payload = frame;
        let fits = if flags.contains(Flags::MORE) {
            // A chunk that is not the last must carry bytes, or a peer could stall us forever
            // with empty chunks.
            !payload.is_empty() && (payload.len() as u64) < total
        } else {
            (payload.len() as u64) <= total
        };
        if !fits {
            return Err(FrameError::Length {
                payload: payload.len(),
                total,
            });
        }
        if kind == Kind::Hello && (id != 0 || total != 0) {
            return Err(FrameError::Hello);
        }
        Ok(Self {
            header: Header {
                kind,
                flags,
                id,
                from,
                to,
                total,
            },
            payload,
        })
    }

    /// Encodes a frame with `header` and `payload` (the frame body, without length prefix).
    pub fn encode(header: &Header, payload: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER_LEN + payload.len());
        out.put_u8(VERSION);
        out.put_u8(header.kind.to_byte());
        out.put_u8(header.flags.0);
        out.put_u64(header.id);
        out.put_u64(header.from);
        out.put_u64(header.to);
        out.put_u64(header.total);
        out.put_slice(payload);
        out.freeze()
    }
}

/// Why a sequence of frames does not form messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssemblyError {
    /// A message longer than the configured maximum.
    #[error("message of {total} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Declared length.
        total: u64,
        /// The limit.
        limit: usize,
    },
    /// A chunk of a second large message while another is still incomplete.
    #[error("interleaved chunked messages")]
    Interleaved,
    /// Chunks whose declared lengths or sizes disagree.
    #[error("chunks disagree with the declared message length")]
    Inconsistent,
}

/// Capacity a chunked message starts with; it grows by doubling up to its declared length.
const INITIAL_RESERVE: usize = 1 << 20;

/// Makes room for `more` bytes in `buf`, doubling (at most to `total`) so a large message costs
/// a few reallocations, and a peer that declares a huge length but sends little gets little.
fn grow(buf: &mut BytesMut, more: usize, total: u64) {
    if buf.capacity() - buf.len() >= more {
        return;
    }
    let target = (buf.len().saturating_mul(2))
        .max(buf.len() + more)
        .min(total as usize);
    buf.reserve(target.saturating_sub(buf.len()).max(more));
}

/// Reassembles chunked messages. A sender writes one chunked message at a time (small ones may
/// be interleaved), so at most one partial message is held: memory stays within one message of
/// at most `max_message_len` bytes, and within about twice what a peer actually sent.
#[derive(Debug)]
pub struct Assembler {
    max_message_len: usize,
    partial: Option<Partial>,
}

#[derive(Debug)]
struct Partial {
    kind: Kind,
    id: u64,
    total: u64,
    buf: BytesMut,
}

impl Assembler {
    /// An assembler accepting messages up to `max_message_len` bytes.
    pub fn new(max_message_len: usize) -> Self {
        Self {
            max_message_len,
            partial: None,
        }
    }

    /// Takes one frame; returns the header and the whole message once it is complete.
    pub fn push(&mut self, envelope: Envelope) -> Result<Option<(Header, Bytes)>, AssemblyError> {
        let Envelope { header, payload } = envelope;
        if header.total > self.max_message_len as u64 {
            return Err(AssemblyError::TooLarge {
                total: header.total,
                limit: self.max_message_len,
            });
        }
        let continues = self
            .partial
            .as_ref()
            .is_some_and(|p| p.kind == header.kind && p.id == header.id);
        if continues {
            let Some(partial) = self.partial.as_mut() else {
                return Err(AssemblyError::Inconsistent);
            };
            let len = partial.buf.len() as u64 + payload.len() as u64;
            if partial.total != header.total || len > partial.total {
                return Err(AssemblyError::Inconsistent);
            }
            grow(&mut partial.buf, payload.len(), partial.total);
            partial.buf.extend_from_slice(&payload);
            if header.flags.contains(Flags::MORE) {
                return Ok(None);
            }
            if len != partial.total {
                return Err(AssemblyError::Inconsistent);
            }
            let Some(done) = self.partial.take() else {
                return Err(AssemblyError::Inconsistent);
            };
            return Ok(Some((header, done.buf.freeze())));
        }
        if header.flags.contains(Flags::MORE) {
            if self.partial.is_some() {
                return Err(AssemblyError::Interleaved);
            }
            // Memory follows the bytes that actually arrived, not the length a peer claims.
            let mut buf = BytesMut::with_capacity((header.total as usize).min(INITIAL_RESERVE));
            buf.extend_from_slice(&payload);
            self.partial = Some(Partial {
                kind: header.kind,
                id: header.id,
                total: header.total,
                buf,
            });
            return Ok(None);
        }
        if payload.len() as u64 != header.total {
            return Err(AssemblyError::Inconsistent);
        }
        Ok(Some((header, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: Kind, flags: Flags, total: u64) -> Header {
        Header {
            kind,
            flags,
            id: 7,
            from: 1,
            to: 2,
            total,
        }
    }

    #[test]
    fn round_trip() {
        let h = header(Kind::Call, Flags::empty(), 3);
        let frame = Envelope::encode(&h, b"abc");
        let env = Envelope::decode(frame).expect("valid frame");
        assert_eq!(env.header, h);
        assert_eq!(&env.payload[..], b"abc");
    }

    #[test]
    fn rejects_bad_fields() {
        let ok = Envelope::encode(&header(Kind::Call, Flags::empty(), 1), b"x");
        let mut bad = BytesMut::from(&ok[..]);
        bad[0] = 9;
        assert_eq!(
            Envelope::decode(bad.clone().freeze()),
            Err(FrameError::Version(9))
        );
        bad[0] = VERSION;
        bad[1] = 200;
        assert_eq!(Envelope::decode(bad.freeze()), Err(FrameError::Kind(200)));
        let flagged = Envelope::encode(&header(Kind::Call, Flags::NOT_SERVING, 1), b"x");
        assert!(matches!(
            Envelope::decode(flagged),
            Err(FrameError::Flags { .. })
        ));
        let long = Envelope::encode(&header(Kind::Call, Flags::empty(), 1), b"xy");
        assert!(matches!(
            Envelope::decode(long),
            Err(FrameError::Length { .. })
        ));
        assert_eq!(
            Envelope::decode(Bytes::from_static(b"short")),
            Err(FrameError::Short(5))
        );
    }

    #[test]
    fn reassembles_chunks_with_small_messages_between() {
        let mut asm = Assembler::new(100);
        let first = Envelope::encode(&header(Kind::Call, Flags::MORE, 6), b"abc");
        assert_eq!(asm.push(Envelope::decode(first).unwrap()), Ok(None));
        let mut small = header(Kind::OneWay, Flags::empty(), 1);
        small.id = 1;
        let got = asm
            .push(Envelope::decode(Envelope::encode(&small, b"z")).unwrap())
            .unwrap();
        assert_eq!(got.map(|(_, b)| b), Some(Bytes::from_static(b"z")));
        let last = Envelope::encode(&header(Kind::Call, Flags::empty(), 6), b"def");
        let (h, msg) = asm.push(Envelope::decode(last).unwrap()).unwrap().unwrap();
        assert_eq!(h.kind, Kind::Call);
        assert_eq!(&msg[..], b"abcdef");
    }

    #[test]
    fn memory_follows_received_bytes_not_declared_length() {
        let mut asm = Assembler::new(1 << 30);
        let first = Envelope::encode(&header(Kind::Call, Flags::MORE, 1 << 29), b"x");
        assert_eq!(asm.push(Envelope::decode(first).unwrap()), Ok(None));
        let capacity = asm.partial.as_ref().map_or(0, |p| p.buf.capacity());
        assert!(
            capacity <= INITIAL_RESERVE,
            "{capacity} bytes reserved for 1 byte"
        );
        // A real large message still arrives whole.
        let mut asm = Assembler::new(1 << 30);
        let total = 5 * INITIAL_RESERVE as u64 + 3;
        let chunk = vec![7u8; INITIAL_RESERVE];
        for _ in 0..5 {
            let frame = Envelope::encode(&header(Kind::Call, Flags::MORE, total), &chunk);
            assert_eq!(asm.push(Envelope::decode(frame).unwrap()), Ok(None));
        }
        let last = Envelope::encode(&header(Kind::Call, Flags::empty(), total), b"end");
        let (_, message) = asm.push(Envelope::decode(last).unwrap()).unwrap().unwrap();
        assert_eq!(message.len() as u64, total);
        assert_eq!(&message[message.len() - 3..], b"end");
    }

    #[test]
    fn refuses_oversized_and_interleaved_chunks() {
        let mut asm = Assembler::new(4);
        let big = Envelope::encode(&header(Kind::Call, Flags::MORE, 10), b"ab");
        assert!(matches!(
            asm.push(Envelope::decode(big).unwrap()),
            Err(AssemblyError::TooLarge { .. })
        ));
        let mut asm = Assembler::new(100);
        let a = Envelope::encode(&header(Kind::Call, Flags::MORE, 10), b"ab");
        asm.push(Envelope::decode(a).unwrap()).unwrap();
        let mut other = header(Kind::Call, Flags::MORE, 10);
        other.id = 8;
        let b = Envelope::encode(&other, b"ab");
        assert_eq!(
            asm.push(Envelope::decode(b).unwrap()),
            Err(AssemblyError::Interleaved)
        );
    }
}
