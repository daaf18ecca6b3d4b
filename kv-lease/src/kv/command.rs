//! Commands and responses of the reference KV store, and their binary encoding.
//!
//! A small hand-written codec (no serde): every message is a format version byte, a tag byte and
//! fields; byte strings are a little-endian `u32` length and the bytes; optional byte strings
//! are a presence byte (0 or 1) and, if present, a byte string; counts are `u16`. Decoding
//! checks every length against what is left before allocating, rejects trailing bytes and
//! unknown tags, and never panics.
//!
//! Version-guarded transactions have their own command tag rather than a new format version:
//! entries already in a log (written with format version 1) keep decoding unchanged.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

/// The format version written first in every command and response.
pub const FORMAT_VERSION: u8 = 1;
/// Most conditions or operations one transaction may carry.
pub const MAX_TXN_ITEMS: usize = 64;

/// A condition of a transaction: `key` must currently hold `expected` (`None`: be absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The key to check.
    pub key: Bytes,
    /// The value it must hold, or `None` if it must be absent.
    pub expected: Option<Bytes>,
}

/// A condition on a key's version: the log index of the entry that last modified the key (see
/// [`KvStateMachine::version`](super::KvStateMachine::version)). Unlike a value condition it
/// also fails when the key was changed and then set back to the value it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCondition {
    /// The key to check.
    pub key: Bytes,
    /// The version it must still have.
    pub version: u64,
}

/// A write inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: Bytes,
    },
}

/// A small multi-key conditional transaction: if every condition holds, every operation is
/// applied in order; otherwise nothing changes and the response is a conflict.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Txn {
    /// Checked first, all against the state before any operation.
    pub conditions: Vec<Condition>,
    /// Applied in order when all conditions hold.
    pub ops: Vec<TxnOp>,
}

/// A command of the reference KV state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvCommand {
    /// Reads `key` through the log (a replicated read).
    Get {
        /// The key.
        key: Bytes,
    },
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: Bytes,
    },
    /// Compare-and-set: if `key` holds `expected` (`None`: is absent), set it to `new`
    /// (`None`: remove it); otherwise a conflict.
    Cas {
        /// The key.
        key: Bytes,
        /// The value it must hold, or `None` if it must be absent.
        expected: Option<Bytes>,
        /// The value to store, or `None` to remove the key.
        new: Option<Bytes>,
    },
    /// A multi-key conditional transaction.
    Txn(Txn),
    /// A transaction that also requires every key in `versions` to still have that version;
    /// the version conditions are checked first, then `txn` runs as [`KvCommand::Txn`] would.
    VersionedTxn {
        /// Version conditions, checked against the state before any operation.
        versions: Vec<VersionCondition>,
        /// Value conditions and operations.
        txn: Txn,
    },
}

/// What the state machine answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvResponse {
    /// The value of a `Get` (`None`: absent).
    Value(Option<Bytes>),
    /// A `Put`, `Delete` or `Cas` took effect; `previous` is what the key held before.
    Done {
        /// The previous value.
        previous: Option<Bytes>,
    },
    /// A condition failed: nothing changed. `key` is the first failing key (version conditions
    /// are checked before value conditions), `actual` what it holds, which after a failed
    /// version condition may be the very value it held before. This is an application outcome,
    /// not an engine error: it never touches the lease.
    Conflict {
        /// The key whose condition failed.
        key: Bytes,
        /// Its current value.
        actual: Option<Bytes>,
    },
    /// A transaction's conditions held and its operations were applied.
    Committed,
    /// The command bytes did not decode; nothing changed.
    Invalid(String),
}

impl KvResponse {
    /// True for [`KvResponse::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

/// Bytes that are not a valid command, response or snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    what: String,
}

impl DecodeError {
    pub(crate) fn new(what: impl Into<String>) -> Self {
        Self { what: what.into() }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed KV message: {}", self.what)
    }
}

impl std::error::Error for DecodeError {}

mod tag {
    pub const GET: u8 = 1;
    pub const PUT: u8 = 2;
    pub const DELETE: u8 = 3;
    pub const CAS: u8 = 4;
    pub const TXN: u8 = 5;
    pub const VERSIONED_TXN: u8 = 6;

    pub const VALUE: u8 = 1;
    pub const DONE: u8 = 2;
    pub const CONFLICT: u8 = 3;
    pub const COMMITTED: u8 = 4;
    pub const INVALID: u8 = 5;

    pub const OP_PUT: u8 = 1;
    pub const OP_DELETE: u8 = 2;
}

/// Appends primitives in the codec's layout.
pub(crate) struct Writer {
    buf: BytesMut,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            buf: BytesMut::with_capacity(32),
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.put_u16_le(v);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.put_u64_le(v);
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).expect("a KV key or value longer than 4 GiB");
        self.buf.put_u32_le(len);
        self.buf.put_slice(v);
    }

    pub(crate) fn opt(&mut self, v: Option<&Bytes>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.bytes(v);
            }
        }
    }

    fn count(&mut self, n: usize) {
        self.u16(u16::try_from(n).expect("counts are checked against MAX_TXN_ITEMS"));
    }

    pub(crate) fn finish(self) -> Bytes {
        self.buf.freeze()
    }
}

/// Reads primitives in the codec's layout, checking every length.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::new(format!(
                "truncated {what}: need {n} bytes, {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn bytes(&mut self, what: &str) -> Result<Bytes, DecodeError> {
        let b = self.take(4, what)?;
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        Ok(Bytes::copy_from_slice(self.take(len, what)?))
    }

    pub(crate) fn opt(&mut self, what: &str) -> Result<Option<Bytes>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => Ok(Some(self.bytes(what)?)),
            other => Err(DecodeError::new(format!(
                "{what}: presence byte {other} is neither 0 nor 1"
            ))),
        }
    }

    fn count(&mut self, what: &str) -> Result<usize, DecodeError> {
        let n = usize::from(self.u16(what)?);
        if n > MAX_TXN_ITEMS {
            return Err(DecodeError::new(format!(
                "{what}: {n} items exceed the limit of {MAX_TXN_ITEMS}"
            )));
        }
        Ok(n)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::new(format!(
                "{} trailing bytes",
                self.rest.len()
            )))
        }
    }

    fn version(&mut self) -> Result<(), DecodeError> {
        match self.u8("format version")? {
            FORMAT_VERSION => Ok(()),
            other => Err(DecodeError::new(format!(
                "unknown format version {other} (expected {FORMAT_VERSION})"
            ))),
        }
    }
}

impl KvCommand {
    /// Encodes the command.
    ///
    /// # Panics
    /// If a transaction has more than [`MAX_TXN_ITEMS`] conditions or operations, or a key or
    /// value exceeds 4 GiB; [`KvCommand::validate`] checks the first beforehand.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.u8(FORMAT_VERSION);
        match self {
            Self::Get { key } => {
                w.u8(tag::GET);
                w.bytes(key);
            }
            Self::Put { key, value } => {
                w.u8(tag::PUT);
                w.bytes(key);
                w.bytes(value);
            }
            Self::Delete { key } => {
                w.u8(tag::DELETE);
                w.bytes(key);
            }
            Self::Cas { key, expected, new } => {
                w.u8(tag::CAS);
                w.bytes(key);
                w.opt(expected.as_ref());
                w.opt(new.as_ref());
            }
            Self::Txn(txn) => {
                w.u8(tag::TXN);
                encode_txn(&mut w, txn);
            }
            Self::VersionedTxn { versions, txn } => {
                w.u8(tag::VERSIONED_TXN);
                w.count(versions.len());
                for v in versions {
                    w.bytes(&v.key);
                    w.u64(v.version);
                }
                encode_txn(&mut w, txn);
            }
        }
        w.finish()
    }

    /// Checks the command can be encoded (transaction size limits).
    pub fn validate(&self) -> Result<(), DecodeError> {
        let (versions, txn) = match self {
            Self::Txn(txn) => (0, txn),
            Self::VersionedTxn { versions, txn } => (versions.len(), txn),
            _ => return Ok(()),
        };
        if versions > MAX_TXN_ITEMS
            || txn.conditions.len() > MAX_TXN_ITEMS
            || txn.ops.len() > MAX_TXN_ITEMS
        {
            return Err(DecodeError::new(format!(
                "a transaction carries at most {MAX_TXN_ITEMS} version conditions, \
                 {MAX_TXN_ITEMS} value conditions and {MAX_TXN_ITEMS} operations"
            )));
        }
        Ok(())
    }

    /// Decodes a command; any malformed input is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let command = match r.u8("command tag")? {
            tag::GET => Self::Get {
                key: r.bytes("key")?,
            },
            tag::PUT => Self::Put {
                key: r.bytes("key")?,
                value: r.bytes("value")?,
            },
            tag::DELETE => Self::Delete {
                key: r.bytes("key")?,
            },
            tag::CAS => Self::Cas {
                key: r.bytes("key")?,
                expected: r.opt("expected value")?,
                new: r.opt("new value")?,
            },
            tag::TXN => Self::Txn(decode_txn(&mut r)?),
            tag::VERSIONED_TXN => {
                let n = r.count("version condition count")?;
                let mut versions = Vec::with_capacity(n);
                for _ in 0..n {
                    versions.push(VersionCondition {
                        key: r.bytes("version condition key")?,
                        version: r.u64("version condition version")?,
                    });
                }
                Self::VersionedTxn {
                    versions,
                    txn: decode_txn(&mut r)?,
                }
            }
            other => return Err(DecodeError::new(format!("unknown command tag {other}"))),
        };
        r.finish()?;
        Ok(command)
    }
}

fn encode_txn(w: &mut Writer, txn: &Txn) {
    w.count(txn.conditions.len());
    for c in &txn.conditions {
        w.bytes(&c.key);
        w.opt(c.expected.as_ref());
    }
    w.count(txn.ops.len());
    for op in &txn.ops {
        match op {
            TxnOp::Put { key, value } => {
                w.u8(tag::OP_PUT);
                w.bytes(key);
                w.bytes(value);
            }
            TxnOp::Delete { key } => {
                w.u8(tag::OP_DELETE);
                w.bytes(key);
            }
        }
    }
}

fn decode_txn(r: &mut Reader<'_>) -> Result<Txn, DecodeError> {
    let n = r.count("condition count")?;
    let mut conditions = Vec::with_capacity(n);
    for _ in 0..n {
        conditions.push(Condition {
            key: r.bytes("condition key")?,
            expected: r.opt("condition value")?,
        });
    }
    let n = r.count("operation count")?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        ops.push(match r.u8("operation tag")? {
            tag::OP_PUT => TxnOp::Put {
                key: r.bytes("operation key")?,
                value: r.bytes("operation value")?,
            },
            tag::OP_DELETE => TxnOp::Delete {
                key: r.bytes("operation key")?,
            },
            other => {
                return Err(DecodeError::new(format!(
                    "unknown transaction operation tag {other}"
                )));
            }
        });
    }
    Ok(Txn { conditions, ops })
}

impl KvResponse {
    /// Encodes the response.
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.u8(FORMAT_VERSION);
        match self {
            Self::Value(v) => {
                w.u8(tag::VALUE);
                w.opt(v.as_ref());
            }
            Self::Done { previous } => {
                w.u8(tag::DONE);
                w.opt(previous.as_ref());
            }
            Self::Conflict { key, actual } => {
                w.u8(tag::CONFLICT);
                w.bytes(key);
                w.opt(actual.as_ref());
            }
            Self::Committed => w.u8(tag::COMMITTED),
            Self::Invalid(why) => {
                w.u8(tag::INVALID);
                w.bytes(why.as_bytes());
            }
        }
        w.finish()
    }

    /// Decodes a response; any malformed input is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        r.version()?;
        let response = match r.u8("response tag")? {
            tag::VALUE => Self::Value(r.opt("value")?),
            tag::DONE => Self::Done {
                previous: r.opt("previous value")?,
            },
            tag::CONFLICT => Self::Conflict {
                key: r.bytes("conflict key")?,
                actual: r.opt("conflict value")?,
            },
            tag::COMMITTED => Self::Committed,
            tag::INVALID => {
                let why = r.bytes("reason")?;
                Self::Invalid(String::from_utf8_lossy(&why).into_owned())
            }
            other => return Err(DecodeError::new(format!("unknown response tag {other}"))),
        };
        r.finish()?;
        Ok(response)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn commands() -> Vec<KvCommand> {
        vec![
            KvCommand::Get { key: b("k") },
            KvCommand::Put {
                key: b("k"),
                value: b(""),
            },
            KvCommand::Delete { key: b("") },
            KvCommand::Cas {
                key: b("k"),
                expected: None,
                new: Some(b("v")),
            },
            KvCommand::Cas {
                key: b("k"),
                expected: Some(b("v")),
                new: None,
            },
            KvCommand::Txn(Txn {
                conditions: vec![
                    Condition {
                        key: b("a"),
                        expected: Some(b("1")),
                    },
                    Condition {
                        key: b("b"),
                        expected: None,
                    },
                ],
                ops: vec![
                    TxnOp::Put {
                        key: b("b"),
                        value: b("2"),
                    },
                    TxnOp::Delete { key: b("a") },
                ],
            }),
            KvCommand::Txn(Txn::default()),
            KvCommand::VersionedTxn {
                versions: vec![
                    VersionCondition {
                        key: b("w"),
                        version: 7,
                    },
                    VersionCondition {
                        key: b(""),
                        version: u64::MAX,
                    },
                ],
                txn: Txn {
                    conditions: vec![Condition {
                        key: b("a"),
                        expected: None,
                    }],
                    ops: vec![TxnOp::Put {
                        key: b("w"),
                        value: b("x"),
                    }],
                },
            },
            KvCommand::VersionedTxn {
                versions: vec![],
                txn: Txn::default(),
            },
        ]
    }

    fn responses() -> Vec<KvResponse> {
        vec![
            KvResponse::Value(None),
            KvResponse::Value(Some(b("v"))),
            KvResponse::Done { previous: None },
            KvResponse::Done {
                previous: Some(b("old")),
            },
            KvResponse::Conflict {
                key: b("k"),
                actual: Some(b("x")),
            },
            KvResponse::Committed,
            KvResponse::Invalid("bad".into()),
        ]
    }

    #[test]
    fn commands_round_trip() {
        for command in commands() {
            let bytes = command.encode();
            assert_eq!(KvCommand::decode(&bytes).unwrap(), command);
        }
    }

    #[test]
    fn responses_round_trip() {
        for response in responses() {
            let bytes = response.encode();
            assert_eq!(KvResponse::decode(&bytes).unwrap(), response);
        }
    }

    #[test]
    fn the_layout_is_stable() {
        let bytes = KvCommand::Put {
            key: b("k"),
            value: b("vv"),
        }
        .encode();
        assert_eq!(
            &bytes[..],
            &[1, 2, 1, 0, 0, 0, b'k', 2, 0, 0, 0, b'v', b'v']
        );
    }

    #[test]
    fn every_truncation_and_extension_is_an_error_not_a_panic() {
        for command in commands() {
            let bytes = command.encode();
            for cut in 0..bytes.len() {
                assert!(
                    KvCommand::decode(&bytes[..cut]).is_err(),
                    "{command:?} cut {cut}"
                );
            }
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert!(KvCommand::decode(&longer).is_err());
        }
        for response in responses() {
            let bytes = response.encode();
            for cut in 0..bytes.len() {
                assert!(KvResponse::decode(&bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic xorshift stream of garbage, plus hostile lengths.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for len in 0..2_000usize {
            let mut buf = Vec::with_capacity(len % 64);
            for _ in 0..len % 64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            if len % 3 == 0 && buf.len() > 2 {
                buf[0] = FORMAT_VERSION;
                buf[1] = (len % 6) as u8;
            }
            let _ = KvCommand::decode(&buf);
            let _ = KvResponse::decode(&buf);
        }
        let huge = [FORMAT_VERSION, tag::PUT, 0xff, 0xff, 0xff, 0xff, 1, 2];
        assert!(
            KvCommand::decode(&huge)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        let many = [FORMAT_VERSION, tag::TXN, 0xff, 0xff];
        assert!(
            KvCommand::decode(&many)
                .unwrap_err()
                .to_string()
                .contains("limit")
        );
        assert!(
            KvCommand::decode(&[9, 1])
                .unwrap_err()
                .to_string()
                .contains("version")
        );
        assert!(
            KvCommand::decode(&[1, 99])
                .unwrap_err()
                .to_string()
                .contains("tag")
        );
        let presence = [FORMAT_VERSION, tag::CAS, 0, 0, 0, 0, 7];
        assert!(KvCommand::decode(&presence).is_err());
    }

    #[test]
    fn the_versioned_layout_is_stable() {
        let bytes = KvCommand::VersionedTxn {
            versions: vec![VersionCondition {
                key: b("k"),
                version: 0x0102,
            }],
            txn: Txn {
                conditions: vec![],
                ops: vec![TxnOp::Delete { key: b("k") }],
            },
        }
        .encode();
        assert_eq!(
            &bytes[..],
            &[
                // Format, tag, one version condition: key "k", version 0x0102.
                1, 6, 1, 0, 1, 0, 0, 0, b'k', 2, 1, 0, 0, 0, 0, 0, 0,
                // No value conditions, one operation: delete "k".
                0, 0, 1, 0, 2, 1, 0, 0, 0, b'k'
            ]
        );
    }

    #[test]
    fn malformed_version_conditions_are_rejected() {
        let too_many = [FORMAT_VERSION, tag::VERSIONED_TXN, 65, 0];
        assert!(
            KvCommand::decode(&too_many)
                .unwrap_err()
                .to_string()
                .contains("version condition count")
        );
        // A key whose version is cut short.
        let short_version = [FORMAT_VERSION, tag::VERSIONED_TXN, 1, 0, 0, 0, 0, 0, 9, 9];
        assert!(
            KvCommand::decode(&short_version)
                .unwrap_err()
                .to_string()
                .contains("truncated version condition version")
        );
        // Well-formed version conditions followed by no transaction body at all.
        let no_body = [
            FORMAT_VERSION,
            tag::VERSIONED_TXN,
            1,
            0,
            0,
            0,
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        assert!(
            KvCommand::decode(&no_body)
                .unwrap_err()
                .to_string()
                .contains("condition count")
        );
        let huge_key = [
            FORMAT_VERSION,
            tag::VERSIONED_TXN,
            1,
            0,
            0xff,
            0xff,
            0xff,
            0xff,
        ];
        assert!(KvCommand::decode(&huge_key).is_err());
        let bad_op = KvCommand::VersionedTxn {
            versions: vec![],
            txn: Txn {
                conditions: vec![],
                ops: vec![TxnOp::Delete { key: b("k") }],
            },
        }
        .encode();
        let mut bad_op = bad_op.to_vec();
        // Version, tag, three counts (versions, conditions, operations), then the operation tag.
        bad_op[8] = 9;
        assert!(
            KvCommand::decode(&bad_op)
                .unwrap_err()
                .to_string()
                .contains("operation tag")
        );
    }

    #[test]
    fn oversized_transactions_fail_validation() {
        let big = KvCommand::Txn(Txn {
            conditions: vec![],
            ops: vec![TxnOp::Delete { key: b("k") }; MAX_TXN_ITEMS + 1],
        });
        assert!(big.validate().is_err());
        let many_versions = KvCommand::VersionedTxn {
            versions: vec![
                VersionCondition {
                    key: b("k"),
                    version: 1,
                };
                MAX_TXN_ITEMS + 1
            ],
            txn: Txn::default(),
        };
        assert!(many_versions.validate().is_err());
        let big_inner = KvCommand::VersionedTxn {
            versions: vec![],
            txn: Txn {
                conditions: vec![
                    Condition {
                        key: b("k"),
                        expected: None,
                    };
                    MAX_TXN_ITEMS + 1
                ],
                ops: vec![],
            },
        };
        assert!(big_inner.validate().is_err());
        assert!(commands().iter().all(|c| c.validate().is_ok()));
    }
}
