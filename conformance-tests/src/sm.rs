//! [`TestSm`]: the state machine the suite replicates. A map of `u64` registers with put, get
//! and compare-and-set, plus what the cases need to judge a backend: an order-sensitive digest
//! of every applied command, the version (log index) of each value, and the set of writes that
//! were ever applied (so "not applied" can be checked after the fact).
//!
//! The byte encoding is hand-written and total: any input decodes to a command or to
//! [`Response::Malformed`]; apply panics only on [`POISON`], which the suite sends on purpose.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use raftengine::StateMachine;

use crate::checker::{Key, Value};

const PUT: u8 = 1;
const CAS: u8 = 2;
const GET: u8 = 3;

const WRITTEN: u8 = 0;
const CAS_OK: u8 = 1;
const CAS_FAILED: u8 = 2;
const VALUE: u8 = 3;
const MALFORMED: u8 = 0xFF;

const SNAPSHOT_MAGIC: &[u8; 4] = b"TSM1";
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// A value with the log index of the write that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Versioned {
    /// The value.
    pub value: Value,
    /// Log index of the write.
    pub version: u64,
}

/// A command of the test state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Overwrite `key` with `value`.
    Put {
        /// The key.
        key: Key,
        /// The value.
        value: Value,
    },
    /// Set `key` to `new` if it holds `expected` (`None` = absent).
    Cas {
        /// The key.
        key: Key,
        /// The value the key must hold.
        expected: Option<Value>,
        /// The value to write.
        new: Value,
    },
    /// Read `key` through the log.
    Get {
        /// The key.
        key: Key,
    },
}

impl Command {
    /// The wire form.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(26);
        match *self {
            Self::Put { key, value } => {
                out.push(PUT);
                out.extend_from_slice(&key.to_le_bytes());
                out.extend_from_slice(&value.to_le_bytes());
            }
            Self::Cas { key, expected, new } => {
                out.push(CAS);
                out.extend_from_slice(&key.to_le_bytes());
                put_option(&mut out, expected);
                out.extend_from_slice(&new.to_le_bytes());
            }
            Self::Get { key } => {
                out.push(GET);
                out.extend_from_slice(&key.to_le_bytes());
            }
        }
        Bytes::from(out)
    }

    /// Parses the wire form; `None` for anything malformed (including trailing bytes).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader::new(bytes);
        let command = match reader.u8()? {
            PUT => Self::Put {
                key: reader.u64()?,
                value: reader.u64()?,
            },
            CAS => Self::Cas {
                key: reader.u64()?,
                expected: reader.option()?,
                new: reader.u64()?,
            },
            GET => Self::Get { key: reader.u64()? },
            _ => return None,
        };
        reader.finished().then_some(command)
    }

    /// The key the command touches.
    pub fn key(&self) -> Key {
        match *self {
            Self::Put { key, .. } | Self::Cas { key, .. } | Self::Get { key } => key,
        }
    }
}

/// What applying a command returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Response {
    /// A put was applied at `version`.
    Written {
        /// The log index of the put.
        version: u64,
    },
    /// A compare-and-set held and wrote at `version`.
    CasOk {
        /// The log index of the write.
        version: u64,
    },
    /// A compare-and-set did not hold; `current` is what the key held.
    CasFailed {
        /// The key's value at that point.
        current: Option<Versioned>,
    },
    /// A read through the log.
    Value(Option<Versioned>),
    /// The command bytes did not decode; nothing changed.
    Malformed,
}

impl Response {
    /// The wire form.
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(18);
        match *self {
            Self::Written { version } => {
                out.push(WRITTEN);
                out.extend_from_slice(&version.to_le_bytes());
            }
            Self::CasOk { version } => {
                out.push(CAS_OK);
                out.extend_from_slice(&version.to_le_bytes());
            }
            Self::CasFailed { current } => {
                out.push(CAS_FAILED);
                put_versioned(&mut out, current);
            }
            Self::Value(current) => {
                out.push(VALUE);
                put_versioned(&mut out, current);
            }
            Self::Malformed => out.push(MALFORMED),
        }
        Bytes::from(out)
    }

    /// Parses the wire form; `None` if it is not a response of this state machine.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader::new(bytes);
        let response = match reader.u8()? {
            WRITTEN => Self::Written {
                version: reader.u64()?,
            },
            CAS_OK => Self::CasOk {
                version: reader.u64()?,
            },
            CAS_FAILED => Self::CasFailed {
                current: reader.versioned()?,
            },
            VALUE => Self::Value(reader.versioned()?),
            MALFORMED => Self::Malformed,
            _ => return None,
        };
        reader.finished().then_some(response)
    }
}

fn put_option(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(value) => {
            out.push(1);
            out.extend_from_slice(&value.to_le_bytes());
        }
        None => out.push(0),
    }
}

fn put_versioned(out: &mut Vec<u8>, value: Option<Versioned>) {
    match value {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.value.to_le_bytes());
            out.extend_from_slice(&v.version.to_le_bytes());
        }
        None => out.push(0),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        let bytes: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    fn option(&mut self) -> Option<Option<u64>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.u64()?)),
            _ => None,
        }
    }

    fn versioned(&mut self) -> Option<Option<Versioned>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(Versioned {
                value: self.u64()?,
                version: self.u64()?,
            })),
            _ => None,
        }
    }

    fn finished(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A command [`TestSm`] panics on, on purpose: the suite checks that a panic in the user's
/// state machine makes the engine fail with `Fatal` instead of hanging or carrying on.
pub const POISON: &[u8] = b"conformance-tests: panic in apply, on purpose";

/// The suite's state machine. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSm {
    data: BTreeMap<Key, Versioned>,
    /// Every `(key, value)` a put or CAS carried when it was applied, whether or not a CAS held.
    applied_writes: BTreeSet<(Key, Value)>,
    last_applied: u64,
    applied_count: u64,
    digest: u64,
}

impl Default for TestSm {
    fn default() -> Self {
        Self::new()
    }
}

impl TestSm {
    /// An empty state machine.
    pub fn new() -> Self {
        Self {
            data: BTreeMap::new(),
            applied_writes: BTreeSet::new(),
            last_applied: 0,
            applied_count: 0,
            digest: FNV_OFFSET,
        }
    }

    /// The value of `key`, with its version.
    pub fn get(&self, key: Key) -> Option<Versioned> {
        self.data.get(&key).copied()
    }

    /// Every key and value.
    pub fn data(&self) -> &BTreeMap<Key, Versioned> {
        &self.data
    }

    /// True if a put or CAS carrying `value` for `key` was ever applied here.
    pub fn has_applied_write(&self, key: Key, value: Value) -> bool {
        self.applied_writes.contains(&(key, value))
    }

    /// Log index of the last applied command.
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    /// Number of commands applied (malformed ones included).
    pub fn applied_count(&self) -> u64 {
        self.applied_count
    }

    /// Order-sensitive digest of every applied `(index, command)`. Two replicas that applied
    /// the same commands at the same indexes in the same order have equal digests.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// `(last_applied, applied_count, digest)`: what replicas must agree on once converged.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            last_applied: self.last_applied,
            applied_count: self.applied_count,
            digest: self.digest,
        }
    }

    fn mix(&mut self, index: u64, command: &[u8]) {
        let mut hash = self.digest;
        for byte in index.to_le_bytes().iter().chain(command) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(FNV_PRIME);
        }
        self.digest = hash;
    }

    fn execute(&mut self, index: u64, command: Command) -> Response {
        match command {
            Command::Put { key, value } => {
                self.applied_writes.insert((key, value));
                self.data.insert(
                    key,
                    Versioned {
                        value,
                        version: index,
                    },
                );
                Response::Written { version: index }
            }
            Command::Cas { key, expected, new } => {
                self.applied_writes.insert((key, new));
                let current = self.get(key);
                if current.map(|v| v.value) == expected {
                    self.data.insert(
                        key,
                        Versioned {
                            value: new,
                            version: index,
                        },
                    );
                    Response::CasOk { version: index }
                } else {
                    Response::CasFailed { current }
                }
            }
            Command::Get { key } => Response::Value(self.get(key)),
        }
    }
}

/// What replicas must agree on once converged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// Log index of the last applied command.
    pub last_applied: u64,
    /// Number of commands applied.
    pub applied_count: u64,
    /// Order-sensitive digest.
    pub digest: u64,
}

impl StateMachine for TestSm {
    fn apply(&mut self, index: u64, _term: u64, command: &[u8]) -> Bytes {
        if command == POISON {
            panic!("TestSm was asked to panic (the POISON command)");
        }
        self.mix(index, command);
        self.applied_count += 1;
        self.last_applied = self.last_applied.max(index);
        let response = match Command::decode(command) {
            Some(command) => self.execute(index, command),
            None => Response::Malformed,
        };
        response.encode()
    }

    fn snapshot(&self) -> Bytes {
        let mut out =
            Vec::with_capacity(4 + 8 * 5 + self.data.len() * 24 + self.applied_writes.len() * 16);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        for field in [
            self.last_applied,
            self.applied_count,
            self.digest,
            self.data.len() as u64,
            self.applied_writes.len() as u64,
        ] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        for (key, v) in &self.data {
            for field in [*key, v.value, v.version] {
                out.extend_from_slice(&field.to_le_bytes());
            }
        }
        for (key, value) in &self.applied_writes {
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        Bytes::from(out)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let mut reader = Reader::new(snapshot);
        if reader.take(4) != Some(SNAPSHOT_MAGIC.as_slice()) {
            return Err("not a TestSm snapshot (bad magic)".into());
        }
        let truncated = || "TestSm snapshot is truncated".to_string();
        let last_applied = reader.u64().ok_or_else(truncated)?;
        let applied_count = reader.u64().ok_or_else(truncated)?;
        let digest = reader.u64().ok_or_else(truncated)?;
        let entries = reader.u64().ok_or_else(truncated)?;
        let writes = reader.u64().ok_or_else(truncated)?;
        let expected_len = entries
            .checked_mul(24)
            .and_then(|a| writes.checked_mul(16).and_then(|b| a.checked_add(b)));
        if expected_len != Some(reader.bytes.len() as u64) {
            return Err(format!(
                "TestSm snapshot has {} bytes of entries, expected {entries} values and {writes} writes",
                reader.bytes.len()
            ));
        }
        let mut data = BTreeMap::new();
        for _ in 0..entries {
            let key = reader.u64().ok_or_else(truncated)?;
            let value = reader.u64().ok_or_else(truncated)?;
            let version = reader.u64().ok_or_else(truncated)?;
            data.insert(key, Versioned { value, version });
        }
        let mut applied_writes = BTreeSet::new();
        for _ in 0..writes {
            let key = reader.u64().ok_or_else(truncated)?;
            let value = reader.u64().ok_or_else(truncated)?;
            applied_writes.insert((key, value));
        }
        *self = Self {
            data,
            applied_writes,
            last_applied,
            applied_count,
            digest,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(sm: &mut TestSm, index: u64, command: Command) -> Response {
        Response::decode(&sm.apply(index, 1, &command.encode())).unwrap()
    }

    #[test]
    fn put_get_cas_with_versions() {
        let mut sm = TestSm::new();
        assert_eq!(
            apply(&mut sm, 1, Command::Get { key: 1 }),
            Response::Value(None)
        );
        assert_eq!(
            apply(&mut sm, 2, Command::Put { key: 1, value: 10 }),
            Response::Written { version: 2 }
        );
        assert_eq!(
            apply(
                &mut sm,
                3,
                Command::Cas {
                    key: 1,
                    expected: Some(9),
                    new: 11
                }
            ),
            Response::CasFailed {
                current: Some(Versioned {
                    value: 10,
                    version: 2
                })
            }
        );
        assert_eq!(
            apply(
                &mut sm,
                4,
                Command::Cas {
                    key: 1,
                    expected: Some(10),
                    new: 12
                }
            ),
            Response::CasOk { version: 4 }
        );
        assert_eq!(
            apply(
                &mut sm,
                5,
                Command::Cas {
                    key: 2,
                    expected: None,
                    new: 13
                }
            ),
            Response::CasOk { version: 5 }
        );
        assert_eq!(
            sm.get(1),
            Some(Versioned {
                value: 12,
                version: 4
            })
        );
        assert!(
            sm.has_applied_write(1, 11),
            "a failed CAS was still applied"
        );
        assert!(!sm.has_applied_write(1, 99));
        assert_eq!(sm.last_applied(), 5);
        assert_eq!(sm.applied_count(), 5);
    }

    #[test]
    fn garbage_is_an_error_response_never_a_panic() {
        let mut sm = TestSm::new();
        for garbage in [
            &b""[..],
            &[PUT],
            &[PUT, 1, 2, 3],
            &[CAS, 0, 0, 0, 0, 0, 0, 0, 0, 7],
            &[GET, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[42; 17],
        ] {
            let response = sm.apply(1, 1, garbage);
            assert_eq!(Response::decode(&response), Some(Response::Malformed));
        }
        assert!(sm.data().is_empty());
        assert_eq!(sm.applied_count(), 6);
        assert_eq!(Response::decode(b"\x07"), None);
    }

    #[test]
    fn commands_and_responses_round_trip() {
        for command in [
            Command::Put { key: 3, value: 4 },
            Command::Cas {
                key: 5,
                expected: None,
                new: 6,
            },
            Command::Cas {
                key: 5,
                expected: Some(u64::MAX),
                new: 0,
            },
            Command::Get { key: 9 },
        ] {
            assert_eq!(Command::decode(&command.encode()), Some(command));
        }
        for response in [
            Response::Written { version: 1 },
            Response::CasOk { version: 2 },
            Response::CasFailed { current: None },
            Response::Value(Some(Versioned {
                value: 3,
                version: 4,
            })),
            Response::Malformed,
        ] {
            assert_eq!(Response::decode(&response.encode()), Some(response));
        }
    }

    #[test]
    fn digest_depends_on_order_and_snapshots_restore_everything() {
        let a = Command::Put { key: 1, value: 1 }.encode();
        let b = Command::Put { key: 1, value: 2 }.encode();
        let mut one = TestSm::new();
        one.apply(1, 1, &a);
        one.apply(2, 1, &b);
        let mut two = TestSm::new();
        two.apply(1, 1, &b);
        two.apply(2, 1, &a);
        assert_ne!(one.digest(), two.digest());

        let mut restored = TestSm::new();
        restored.restore(&one.snapshot()).unwrap();
        assert_eq!(restored, one);
        let c = Command::Get { key: 1 }.encode();
        assert_eq!(restored.apply(3, 2, &c), one.apply(3, 2, &c));
        assert_eq!(restored.fingerprint(), one.fingerprint());
    }

    #[test]
    fn corrupt_snapshots_are_refused_and_leave_the_state_alone() {
        let mut sm = TestSm::new();
        sm.apply(1, 1, &Command::Put { key: 1, value: 1 }.encode());
        let good = sm.snapshot();
        let before = sm.clone();
        assert!(sm.restore(b"nope").is_err());
        assert!(sm.restore(&good[..good.len() - 1]).is_err());
        let mut longer = good.to_vec();
        longer.push(0);
        assert!(sm.restore(&longer).is_err());
        assert_eq!(sm, before);
    }
}
