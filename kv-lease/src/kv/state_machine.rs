//! [`KvStateMachine`]: the reference replicated KV state machine. Deterministic: the same
//! commands in the same order give the same state, responses and snapshot bytes on every node.
//!
//! # Versions
//!
//! Every key has a version: the log index of the entry that last modified it (a put, a delete
//! of a present key, a successful compare-and-set or a committed transaction operation; a put
//! of the value already stored still counts). Log indexes are the same on every node, so
//! versions are too, and a [`KvCommand::VersionedTxn`] detects a key changed and set back.
//!
//! A deleted key keeps its version in a tombstone, so "absent, set, deleted, absent again" is
//! seen as a change. At most [`MAX_TOMBSTONES`] tombstones are kept; pruning drops the oldest
//! and raises the tombstone floor to the largest version dropped. An absent key without a
//! tombstone has the floor as its version. That is conservative: a key changed after a version
//! was read always ends with a larger version, so no change is missed, but an untouched absent
//! key's version may rise with the floor and fail a condition spuriously.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use raftengine::StateMachine;

use super::command::{
    DecodeError, KvCommand, KvResponse, Reader, Txn, TxnOp, VersionCondition, Writer,
};

/// Snapshot format with versions, tombstones and the tombstone floor. Snapshots without them
/// (`KVS1`) are refused: versions cannot be rebuilt from them identically on every node.
const SNAPSHOT_MAGIC: &[u8; 4] = b"KVS2";

/// Most tombstones kept; beyond it the oldest are pruned into the tombstone floor.
pub const MAX_TOMBSTONES: usize = 4096;

/// A present key's value and version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    value: Bytes,
    version: u64,
}

/// An ordered in-memory map driven by [`KvCommand`]s.
///
/// A failed condition (compare-and-set or transaction) is a [`KvResponse::Conflict`] with no
/// state change. Undecodable commands get [`KvResponse::Invalid`], also with no state change.
/// See the module docs for key versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvStateMachine {
    data: BTreeMap<Bytes, Entry>,
    /// Version of each deleted key still remembered.
    tombstones: BTreeMap<Bytes, u64>,
    /// The same tombstones ordered oldest first (by version, then key), for pruning.
    tombstone_order: BTreeSet<(u64, Bytes)>,
    /// The version of an absent key without a tombstone.
    tombstone_floor: u64,
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
        self.data.get(key).map(|entry| entry.value.clone())
    }

    /// The version of `key`: the log index of the entry that last modified it, or for an absent
    /// key its tombstone's version or else the tombstone floor (see the module docs).
    pub fn version(&self, key: &[u8]) -> u64 {
        match self.data.get(key) {
            Some(entry) => entry.version,
            None => self
                .tombstones
                .get(key)
                .copied()
                .unwrap_or(self.tombstone_floor),
        }
    }

    /// The value and version of `key`, read together.
    pub fn get_versioned(&self, key: &[u8]) -> (Option<Bytes>, u64) {
        (self.get(key), self.version(key))
    }

    /// The version an absent key without a tombstone has.
    pub fn tombstone_floor(&self) -> u64 {
        self.tombstone_floor
    }

    /// Number of tombstones kept (at most [`MAX_TOMBSTONES`]).
    pub fn tombstones(&self) -> usize {
        self.tombstones.len()
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
        self.data.iter().map(|(key, entry)| (key, &entry.value))
    }

    /// Index and term of the last applied entry.
    pub fn applied(&self) -> (u64, u64) {
        (self.applied_index, self.applied_term)
    }

    /// Executes one decoded command against the state. Writes take the last applied index as
    /// their version: [`StateMachine::apply`] sets it before executing.
    pub fn execute(&mut self, command: KvCommand) -> KvResponse {
        match command {
            KvCommand::Get { key } => KvResponse::Value(self.get(&key)),
            KvCommand::Put { key, value } => KvResponse::Done {
                previous: self.put(key, value),
            },
            KvCommand::Delete { key } => KvResponse::Done {
                previous: self.remove(key),
            },
            KvCommand::Cas { key, expected, new } => {
                let actual = self.get(&key);
                if actual != expected {
                    return KvResponse::Conflict { key, actual };
                }
                let previous = match new {
                    Some(value) => self.put(key, value),
                    None => self.remove(key),
                };
                KvResponse::Done { previous }
            }
            KvCommand::Txn(txn) => self.transact(&[], txn),
            KvCommand::VersionedTxn { versions, txn } => self.transact(&versions, txn),
        }
    }

    /// Stores `value` under `key` at the current version; returns the previous value.
    fn put(&mut self, key: Bytes, value: Bytes) -> Option<Bytes> {
        if let Some(version) = self.tombstones.remove(&key) {
            self.tombstone_order.remove(&(version, key.clone()));
        }
        let entry = Entry {
            value,
            version: self.applied_index,
        };
        self.data.insert(key, entry).map(|old| old.value)
    }

    /// Removes `key`, leaving a tombstone at the current version; returns the previous value.
    /// Removing an absent key changes nothing, its version included.
    fn remove(&mut self, key: Bytes) -> Option<Bytes> {
        let previous = self.data.remove(&key)?;
        let version = self.applied_index;
        self.tombstones.insert(key.clone(), version);
        self.tombstone_order.insert((version, key));
        self.prune_tombstones();
        Some(previous.value)
    }

    fn prune_tombstones(&mut self) {
        while self.tombstones.len() > MAX_TOMBSTONES {
            let Some((version, key)) = self.tombstone_order.pop_first() else {
                break;
            };
            self.tombstones.remove(&key);
            self.tombstone_floor = self.tombstone_floor.max(version);
        }
    }

    /// The first failing condition, as a conflict response.
    fn check(&self, versions: &[VersionCondition], txn: &Txn) -> Option<KvResponse> {
        let version_failure = versions
            .iter()
            .find(|condition| self.version(&condition.key) != condition.version)
            .map(|condition| &condition.key);
        let failing = version_failure.or_else(|| {
            txn.conditions
                .iter()
                .find(|condition| self.get(&condition.key) != condition.expected)
                .map(|condition| &condition.key)
        })?;
        Some(KvResponse::Conflict {
            key: failing.clone(),
            actual: self.get(failing),
        })
    }

    fn transact(&mut self, versions: &[VersionCondition], txn: Txn) -> KvResponse {
        if let Some(conflict) = self.check(versions, &txn) {
            return conflict;
        }
        for op in txn.ops {
            match op {
                TxnOp::Put { key, value } => {
                    self.put(key, value);
                }
                TxnOp::Delete { key } => {
                    self.remove(key);
                }
            }
        }
        KvResponse::Committed
    }

    fn encode_snapshot(&self) -> Bytes {
        let mut w = Writer::new();
        for &b in SNAPSHOT_MAGIC {
            w.u8(b);
        }
        w.u64(self.applied_index);
        w.u64(self.applied_term);
        w.u64(self.tombstone_floor);
        w.u64(self.data.len() as u64);
        for (key, entry) in &self.data {
            w.bytes(key);
            w.bytes(&entry.value);
            w.u64(entry.version);
        }
        w.u64(self.tombstones.len() as u64);
        for (key, version) in &self.tombstones {
            w.bytes(key);
            w.u64(*version);
        }
        w.finish()
    }

    fn decode_snapshot(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        for &expected in SNAPSHOT_MAGIC {
            if r.u8("snapshot magic")? != expected {
                return Err(DecodeError::new("not a versioned KV snapshot (bad magic)"));
            }
        }
        let mut sm = Self {
            applied_index: r.u64("applied index")?,
            applied_term: r.u64("applied term")?,
            tombstone_floor: r.u64("tombstone floor")?,
            ..Self::default()
        };
        if sm.tombstone_floor > sm.applied_index {
            return Err(DecodeError::new("tombstone floor beyond the applied index"));
        }
        sm.decode_entries(&mut r)?;
        sm.decode_tombstones(&mut r)?;
        r.finish()?;
        Ok(sm)
    }

    fn decode_entries(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        // Every entry takes at least 16 bytes: a bound before trusting the count.
        let count = bounded_count(r, "entry count", 16)?;
        let mut last: Option<Bytes> = None;
        for _ in 0..count {
            let key = r.bytes("snapshot key")?;
            let value = r.bytes("snapshot value")?;
            let version = self.checked_version(r.u64("snapshot version")?)?;
            check_order(&mut last, &key)?;
            self.data.insert(key, Entry { value, version });
        }
        Ok(())
    }

    fn decode_tombstones(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        // Every tombstone takes at least 12 bytes.
        let count = bounded_count(r, "tombstone count", 12)?;
        if count > MAX_TOMBSTONES as u64 {
            return Err(DecodeError::new(format!(
                "snapshot holds {count} tombstones, more than {MAX_TOMBSTONES}"
            )));
        }
        let mut last: Option<Bytes> = None;
        for _ in 0..count {
            let key = r.bytes("tombstone key")?;
            let version = self.checked_version(r.u64("tombstone version")?)?;
            check_order(&mut last, &key)?;
            if version < self.tombstone_floor || self.data.contains_key(&key) {
                return Err(DecodeError::new(
                    "a tombstone is below the floor or names a present key",
                ));
            }
            self.tombstone_order.insert((version, key.clone()));
            self.tombstones.insert(key, version);
        }
        Ok(())
    }

    fn checked_version(&self, version: u64) -> Result<u64, DecodeError> {
        if version > self.applied_index {
            return Err(DecodeError::new("a version is beyond the applied index"));
        }
        Ok(version)
    }
}

/// Reads a `u64` count and checks that `count` items of at least `min_size` bytes fit in
/// what is left.
fn bounded_count(r: &mut Reader<'_>, what: &str, min_size: usize) -> Result<u64, DecodeError> {
    let count = r.u64(what)?;
    if count > (r.remaining() / min_size) as u64 {
        return Err(DecodeError::new(format!(
            "snapshot claims {count} items ({what}) in {} bytes",
            r.remaining()
        )));
    }
    Ok(count)
}

fn check_order(last: &mut Option<Bytes>, key: &Bytes) -> Result<(), DecodeError> {
    if last.as_ref().is_some_and(|prev| prev >= key) {
        return Err(DecodeError::new("snapshot keys are not strictly ordered"));
    }
    *last = Some(key.clone());
    Ok(())
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
        self.encode_snapshot()
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
        huge_count[28..36].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(
            other
                .restore(&huge_count)
                .unwrap_err()
                .contains("entry count")
        );
        let mut old_format = snap.to_vec();
        old_format[3] = b'1';
        assert!(other.restore(&old_format).unwrap_err().contains("magic"));
    }

    fn put(sm: &mut KvStateMachine, index: u64, key: &str, value: &str) -> KvResponse {
        apply(
            sm,
            index,
            KvCommand::Put {
                key: b(key),
                value: b(value),
            },
        )
    }

    fn delete(sm: &mut KvStateMachine, index: u64, key: &str) -> KvResponse {
        apply(sm, index, KvCommand::Delete { key: b(key) })
    }

    /// A versioned transaction writing `w` if `key` still has `version`.
    fn guarded(key: &str, version: u64) -> KvCommand {
        KvCommand::VersionedTxn {
            versions: vec![VersionCondition {
                key: b(key),
                version,
            }],
            txn: Txn {
                conditions: vec![],
                ops: vec![TxnOp::Put {
                    key: b("w"),
                    value: b("written"),
                }],
            },
        }
    }

    #[test]
    fn every_write_kind_bumps_the_version() {
        let mut sm = KvStateMachine::new();
        assert_eq!(sm.version(b"k"), 0);
        put(&mut sm, 3, "k", "v");
        assert_eq!(sm.get_versioned(b"k"), (Some(b("v")), 3));
        put(&mut sm, 4, "k", "v");
        assert_eq!(
            sm.version(b"k"),
            4,
            "the same value still bumps the version"
        );
        apply(
            &mut sm,
            5,
            KvCommand::Cas {
                key: b("k"),
                expected: Some(b("v")),
                new: Some(b("v")),
            },
        );
        assert_eq!(sm.version(b"k"), 5);
        apply(
            &mut sm,
            6,
            KvCommand::Txn(Txn {
                conditions: vec![],
                ops: vec![TxnOp::Put {
                    key: b("k"),
                    value: b("v"),
                }],
            }),
        );
        assert_eq!(sm.version(b"k"), 6);
        apply(&mut sm, 7, guarded("k", 6));
        assert_eq!(sm.version(b"w"), 7);
        delete(&mut sm, 8, "k");
        assert_eq!(sm.get_versioned(b"k"), (None, 8));
        apply(
            &mut sm,
            9,
            KvCommand::Txn(Txn {
                conditions: vec![],
                ops: vec![TxnOp::Delete { key: b("w") }],
            }),
        );
        assert_eq!(sm.version(b"w"), 9);
        // Reads, failed conditions, garbage and deleting an absent key change no version.
        apply(&mut sm, 10, KvCommand::Get { key: b("k") });
        apply(
            &mut sm,
            11,
            KvCommand::Cas {
                key: b("k"),
                expected: Some(b("nope")),
                new: Some(b("x")),
            },
        );
        sm.apply(12, 1, b"garbage");
        delete(&mut sm, 13, "k");
        delete(&mut sm, 14, "never");
        assert_eq!((sm.version(b"k"), sm.version(b"never")), (8, 0));
        assert_eq!(sm.tombstones(), 2);
    }

    #[test]
    fn a_to_b_to_a_fails_a_version_condition_but_not_a_value_condition() {
        let mut sm = KvStateMachine::new();
        put(&mut sm, 1, "k", "A");
        let watched = sm.version(b"k");
        put(&mut sm, 2, "k", "B");
        put(&mut sm, 3, "k", "A");
        let value_guarded = KvCommand::Txn(Txn {
            conditions: vec![Condition {
                key: b("k"),
                expected: Some(b("A")),
            }],
            ops: vec![],
        });
        assert_eq!(apply(&mut sm, 4, value_guarded), KvResponse::Committed);
        assert_eq!(
            apply(&mut sm, 5, guarded("k", watched)),
            KvResponse::Conflict {
                key: b("k"),
                actual: Some(b("A"))
            }
        );
        assert_eq!(sm.get(b"w"), None, "nothing was written");
        let current = sm.version(b"k");
        assert_eq!(
            apply(&mut sm, 6, guarded("k", current)),
            KvResponse::Committed
        );
        assert_eq!(sm.get(b"w"), Some(b("written")));
    }

    #[test]
    fn absent_set_deleted_absent_fails_a_version_condition() {
        let mut sm = KvStateMachine::new();
        put(&mut sm, 1, "other", "x");
        let watched = sm.version(b"k");
        put(&mut sm, 2, "k", "v");
        delete(&mut sm, 3, "k");
        assert_eq!(sm.get(b"k"), None);
        assert!(apply(&mut sm, 4, guarded("k", watched)).is_conflict());
        // Both value and version conditions must hold.
        let both = KvCommand::VersionedTxn {
            versions: vec![VersionCondition {
                key: b("k"),
                version: 3,
            }],
            txn: Txn {
                conditions: vec![Condition {
                    key: b("other"),
                    expected: Some(b("y")),
                }],
                ops: vec![TxnOp::Delete { key: b("other") }],
            },
        };
        assert_eq!(
            apply(&mut sm, 5, both),
            KvResponse::Conflict {
                key: b("other"),
                actual: Some(b("x"))
            }
        );
        assert_eq!(apply(&mut sm, 6, guarded("k", 3)), KvResponse::Committed);
    }

    #[test]
    fn pruning_tombstones_raises_the_floor_and_stays_conservative() {
        let mut sm = KvStateMachine::new();
        let mut index = 0;
        let mut next = || {
            index += 1;
            index
        };
        let untouched_before = sm.version(b"untouched");
        put(&mut sm, next(), "victim", "v");
        let victim_live = sm.version(b"victim");
        delete(&mut sm, next(), "victim");
        let victim_deleted = sm.version(b"victim");
        for i in 0..MAX_TOMBSTONES {
            let key = format!("t{i:05}");
            put(&mut sm, next(), &key, "v");
            delete(&mut sm, next(), &key);
        }
        assert_eq!(sm.tombstones(), MAX_TOMBSTONES, "bounded");
        // The oldest tombstone (the victim's) was pruned into the floor.
        assert_eq!(sm.tombstone_floor(), victim_deleted);
        assert_eq!(sm.version(b"victim"), victim_deleted);
        assert_ne!(
            sm.version(b"victim"),
            victim_live,
            "the change is not missed"
        );
        // An untouched absent key now reads the floor: a spurious, never a missed, conflict.
        assert_ne!(sm.version(b"untouched"), untouched_before);
        let i = next();
        assert!(apply(&mut sm, i, guarded("untouched", untouched_before)).is_conflict());
        let i = next();
        assert!(apply(&mut sm, i, guarded("victim", victim_live)).is_conflict());
        // One more deletion prunes the next oldest and raises the floor again.
        let first = sm.version(b"t00000");
        let i = next();
        put(&mut sm, i, "extra", "v");
        let i = next();
        delete(&mut sm, i, "extra");
        assert_eq!(sm.tombstone_floor(), first);
        assert_eq!(sm.tombstones(), MAX_TOMBSTONES);
        // A pruned key set again leaves the floor behind with its new version.
        let i = next();
        put(&mut sm, i, "victim", "back");
        assert_eq!(sm.version(b"victim"), i);
    }

    #[test]
    fn snapshots_preserve_versions_tombstones_and_the_floor() {
        let mut sm = KvStateMachine::new();
        let mut index = 0;
        for i in 0..MAX_TOMBSTONES + 3 {
            let key = format!("d{i:05}");
            index += 1;
            put(&mut sm, index, &key, "v");
            index += 1;
            delete(&mut sm, index, &key);
        }
        put(&mut sm, index + 1, "live", "1");
        put(&mut sm, index + 2, "live", "1");
        put(&mut sm, index + 3, "other", "2");
        assert!(sm.tombstone_floor() > 0);
        let snap = sm.snapshot();
        let mut restored = KvStateMachine::new();
        restored.restore(&snap).unwrap();
        assert_eq!(restored, sm);
        assert_eq!(restored.snapshot(), snap, "same state, same bytes");
        for key in ["live", "other", "d00000", "d00005", "d04098", "never"] {
            assert_eq!(
                restored.get_versioned(key.as_bytes()),
                sm.get_versioned(key.as_bytes()),
                "{key}"
            );
        }
        // Both go on identically: the same command gets the same answer and state.
        let command = guarded("d00000", sm.version(b"d00000"));
        let left = apply(&mut sm, index + 4, command.clone());
        let right = apply(&mut restored, index + 4, command);
        assert_eq!(left, KvResponse::Committed);
        assert_eq!((left, &sm), (right, &restored));
    }

    #[test]
    fn inconsistent_versioned_snapshots_are_refused() {
        let mut sm = KvStateMachine::new();
        put(&mut sm, 1, "a", "1");
        put(&mut sm, 2, "b", "2");
        delete(&mut sm, 3, "b");
        let good = sm.snapshot();
        let mut target = KvStateMachine::new();
        // Floor beyond the applied index.
        let mut bad = good.to_vec();
        bad[20..28].copy_from_slice(&9u64.to_le_bytes());
        assert!(target.restore(&bad).unwrap_err().contains("floor"));
        // A live version beyond the applied index: magic 4, three u64, count 8, key 5, value 5.
        let mut bad = good.to_vec();
        bad[46..54].copy_from_slice(&9u64.to_le_bytes());
        assert!(target.restore(&bad).unwrap_err().contains("beyond"));
        // A tombstone naming a live key.
        let mut bad = good.to_vec();
        let at = bad.len() - 9;
        assert_eq!(bad[at], b'b');
        bad[at] = b'a';
        assert!(target.restore(&bad).unwrap_err().contains("present key"));
        // More tombstones than ever kept.
        let mut bad = good.to_vec();
        let at = bad.len() - 8 - 5 - 8;
        bad[at..at + 8].copy_from_slice(&(MAX_TOMBSTONES as u64 + 1).to_le_bytes());
        bad.extend(std::iter::repeat_n(0, 13 * (MAX_TOMBSTONES + 1)));
        assert!(target.restore(&bad).unwrap_err().contains("tombstones"));
        assert_eq!(
            target,
            KvStateMachine::new(),
            "refusals leave the state alone"
        );
    }
}
