//! [`KvStateMachine`]: the reference replicated KV state machine. Deterministic: the same
//! commands in the same order give the same state, responses and snapshot bytes on every node.

use std::collections::BTreeMap;

use bytes::Bytes;
use raftengine::StateMachine;

use super::command::{DecodeError, KvCommand, KvResponse, Reader, Txn, TxnOp, Writer};

const SNAPSHOT_MAGIC: &[u8; 4] = b"KVS1";

/// An ordered in-memory map driven by [`KvCommand`]s.
///
/// A failed condition (compare-and-set or transaction) is a [`KvResponse::Conflict`] with no
/// state change. Undecodable commands get [`KvResponse::Invalid`], also with no state change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvStateMachine {
    data: BTreeMap<Bytes, Bytes>,
    applied_index: u64,
    applied_term: u64,
}

impl KvStateMachine {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.data.get(key).cloned()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no key is stored.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Every `(key, value)` in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.data.iter()
    }

    /// Index and term of the last applied entry.
    pub fn applied(&self) -> (u64, u64) {
        (self.applied_index, self.applied_term)
    }

    /// Executes one decoded command against the state.
    pub fn execute(&mut self, command: KvCommand) -> KvResponse {
        match command {
            KvCommand::Get { key } => KvResponse::Value(self.get(&key)),
            KvCommand::Put { key, value } => KvResponse::Done {
                previous: self.data.insert(key, value),
            },
            KvCommand::Delete { key } => KvResponse::Done {
                previous: self.data.remove(&key),
            },
            KvCommand::Cas { key, expected, new } => {
                let actual = self.get(&key);
                if actual != expected {
                    return KvResponse::Conflict { key, actual };
                }
                let previous = match new {
                    Some(value) => self.data.insert(key, value),
                    None => self.data.remove(&key),
                };
                KvResponse::Done { previous }
            }
            KvCommand::Txn(txn) => self.transact(txn),
        }
    }

    fn transact(&mut self, txn: Txn) -> KvResponse {
        for condition in &txn.conditions {
            let actual = self.get(&condition.key);
            if actual != condition.expected {
                return KvResponse::Conflict {
                    key: condition.key.clone(),
                    actual,
                };
            }
        }
        for op in txn.ops {
            match op {
                TxnOp::Put { key, value } => {
                    self.data.insert(key, value);
                }
                TxnOp::Delete { key } => {
                    self.data.remove(&key);
                }
            }
        }
        KvResponse::Committed
    }

    fn decode_snapshot(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        for &expected in SNAPSHOT_MAGIC {
            if r.u8("snapshot magic")? != expected {
                return Err(DecodeError::new("not a KV snapshot (bad magic)"));
            }
        }
        let applied_index = r.u64("applied index")?;
        let applied_term = r.u64("applied term")?;
        let count = r.u64("entry count")?;
        // Every entry takes at least 8 bytes: a bound before trusting the count.
        if count > (r.remaining() / 8) as u64 {
            return Err(DecodeError::new(format!(
                "snapshot claims {count} entries in {} bytes",
                r.remaining()
            )));
        }
        let mut data = BTreeMap::new();
        let mut last: Option<Bytes> = None;
        for _ in 0..count {
            let key = r.bytes("snapshot key")?;
            let value = r.bytes("snapshot value")?;
            if last.as_ref().is_some_and(|prev| prev >= &key) {
                return Err(DecodeError::new("snapshot keys are not strictly ordered"));
            }
            last = Some(key.clone());
            data.insert(key, value);
        }
        r.finish()?;
        Ok(Self {
            data,
            applied_index,
            applied_term,
        })
    }
}

impl StateMachine for KvStateMachine {
    fn apply(&mut self, index: u64, term: u64, command: &[u8]) -> Bytes {
        self.applied_index = index;
        self.applied_term = term;
        let response = match KvCommand::decode(command) {
            Ok(command) => self.execute(command),
            Err(err) => KvResponse::Invalid(err.to_string()),
        };
        response.encode()
    }

    fn snapshot(&self) -> Bytes {
        let mut w = Writer::new();
        for &b in SNAPSHOT_MAGIC {
            w.u8(b);
        }
        w.u64(self.applied_index);
        w.u64(self.applied_term);
        w.u64(self.data.len() as u64);
        for (key, value) in &self.data {
            w.bytes(key);
            w.bytes(value);
        }
        w.finish()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        *self = Self::decode_snapshot(snapshot).map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::kv::command::Condition;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn apply(sm: &mut KvStateMachine, index: u64, command: KvCommand) -> KvResponse {
        KvResponse::decode(&sm.apply(index, 1, &command.encode())).unwrap()
    }

    #[test]
    fn put_get_delete() {
        let mut sm = KvStateMachine::new();
        assert_eq!(
            apply(
                &mut sm,
                1,
                KvCommand::Put {
                    key: b("a"),
                    value: b("1")
                }
            ),
            KvResponse::Done { previous: None }
        );
        assert_eq!(
            apply(&mut sm, 2, KvCommand::Get { key: b("a") }),
            KvResponse::Value(Some(b("1")))
        );
        assert_eq!(
            apply(&mut sm, 3, KvCommand::Delete { key: b("a") }),
            KvResponse::Done {
                previous: Some(b("1"))
            }
        );
        assert_eq!(sm.get(b"a"), None);
        assert_eq!(sm.applied(), (3, 1));
    }

    #[test]
    fn failed_cas_is_a_conflict_with_no_change() {
        let mut sm = KvStateMachine::new();
        apply(
            &mut sm,
            1,
            KvCommand::Put {
                key: b("k"),
                value: b("v1"),
            },
        );
        let before = sm.data.clone();
        let response = apply(
            &mut sm,
            2,
            KvCommand::Cas {
                key: b("k"),
                expected: Some(b("v0")),
                new: Some(b("v2")),
            },
        );
        assert_eq!(
            response,
            KvResponse::Conflict {
                key: b("k"),
                actual: Some(b("v1"))
            }
        );
        assert_eq!(sm.data, before);
        let absent = apply(
            &mut sm,
            3,
            KvCommand::Cas {
                key: b("k"),
                expected: None,
                new: Some(b("x")),
            },
        );
        assert!(absent.is_conflict());
        assert_eq!(sm.data, before);
        let ok = apply(
            &mut sm,
            4,
            KvCommand::Cas {
                key: b("k"),
                expected: Some(b("v1")),
                new: None,
            },
        );
        assert_eq!(
            ok,
            KvResponse::Done {
                previous: Some(b("v1"))
            }
        );
        assert!(sm.is_empty());
        let create = apply(
            &mut sm,
            5,
            KvCommand::Cas {
                key: b("n"),
                expected: None,
                new: Some(b("1")),
            },
        );
        assert_eq!(create, KvResponse::Done { previous: None });
    }

    #[test]
    fn transactions_are_all_or_nothing() {
        let mut sm = KvStateMachine::new();
        apply(
            &mut sm,
            1,
            KvCommand::Put {
                key: b("a"),
                value: b("1"),
            },
        );
        let txn = |expected_a: &str| {
            KvCommand::Txn(Txn {
                conditions: vec![
                    Condition {
                        key: b("a"),
                        expected: Some(b(expected_a)),
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
            })
        };
        let before = sm.data.clone();
        assert_eq!(
            apply(&mut sm, 2, txn("9")),
            KvResponse::Conflict {
                key: b("a"),
                actual: Some(b("1"))
            }
        );
        assert_eq!(sm.data, before);
        assert_eq!(apply(&mut sm, 3, txn("1")), KvResponse::Committed);
        assert_eq!(sm.get(b"a"), None);
        assert_eq!(sm.get(b"b"), Some(b("2")));
        // The second condition now fails (b exists): nothing changes.
        apply(
            &mut sm,
            4,
            KvCommand::Put {
                key: b("a"),
                value: b("1"),
            },
        );
        let before = sm.data.clone();
        assert_eq!(
            apply(&mut sm, 5, txn("1")),
            KvResponse::Conflict {
                key: b("b"),
                actual: Some(b("2"))
            }
        );
        assert_eq!(sm.data, before);
    }

    #[test]
    fn garbage_commands_get_an_invalid_response_and_change_nothing() {
        let mut sm = KvStateMachine::new();
        apply(
            &mut sm,
            1,
            KvCommand::Put {
                key: b("a"),
                value: b("1"),
            },
        );
        let before = sm.data.clone();
        for garbage in [
            &b""[..],
            b"\x01",
            b"\x01\x02\xff\xff\xff\xff",
            b"hello world",
        ] {
            let response = KvResponse::decode(&sm.apply(2, 1, garbage)).unwrap();
            assert!(matches!(response, KvResponse::Invalid(_)), "{response:?}");
        }
        assert_eq!(sm.data, before);
    }

    #[test]
    fn snapshot_restore_is_deterministic_and_checked() {
        let mut sm = KvStateMachine::new();
        for (i, k) in ["c", "a", "b"].into_iter().enumerate() {
            apply(
                &mut sm,
                i as u64 + 1,
                KvCommand::Put {
                    key: b(k),
                    value: b(k),
                },
            );
        }
        let snap = sm.snapshot();
        let mut other = KvStateMachine::new();
        apply(
            &mut other,
            1,
            KvCommand::Put {
                key: b("zzz"),
                value: b("gone"),
            },
        );
        other.restore(&snap).unwrap();
        assert_eq!(other, sm);
        assert_eq!(other.snapshot(), snap, "same state, same bytes");
        // Corrupt snapshots are refused and leave the state alone.
        for cut in 0..snap.len() {
            let mut target = sm.clone();
            assert!(target.restore(&snap[..cut]).is_err(), "cut {cut}");
            assert_eq!(target, sm);
        }
        let mut bad = snap.to_vec();
        bad[0] = b'X';
        assert!(other.restore(&bad).unwrap_err().contains("magic"));
        let mut huge_count = snap.to_vec();
        huge_count[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(other.restore(&huge_count).is_err());
    }
}
