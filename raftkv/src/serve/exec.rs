//! The key-value commands of the Redis front end and their effect, computed over a snapshot of
//! the keys they read. A command (or a whole MULTI block) is turned into one atomic write: the
//! versions of the keys it read, and of the keys the client watched, become conditions of a
//! single transaction, so the write commits only if nothing it depended on was modified in
//! between, even if a key was changed and then set back to the value read.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use kv_lease::kv::{KvCommand, MAX_TXN_ITEMS, Txn, TxnOp, VersionCondition};

/// What `SET` requires of the key's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetCondition {
    /// Unconditional.
    Always,
    /// `NX`: only if the key is absent.
    IfAbsent,
    /// `XX`: only if the key exists.
    IfPresent,
}

/// A command that touches data (or answers without any: PING, ECHO); these may be queued in a
/// MULTI block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataCommand {
    /// `PING [message]`.
    Ping(Option<Bytes>),
    /// `ECHO message`.
    Echo(Bytes),
    /// `GET key`.
    Get(Bytes),
    /// `MGET key...`.
    MGet(Vec<Bytes>),
    /// `EXISTS key...`.
    Exists(Vec<Bytes>),
    /// `SET key value [NX|XX]`.
    Set {
        /// The key.
        key: Bytes,
        /// The new value.
        value: Bytes,
        /// NX / XX.
        condition: SetCondition,
    },
    /// `MSET key value...`.
    MSet(Vec<(Bytes, Bytes)>),
    /// `DEL key...`.
    Del(Vec<Bytes>),
    /// `INCR`, `DECR`, `INCRBY key delta`.
    IncrBy {
        /// The key.
        key: Bytes,
        /// Added to the current integer value.
        delta: i64,
    },
}

/// A reply in RESP2 terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// `+<text>`.
    Status(&'static str),
    /// A bulk string, or the nil bulk string.
    Bulk(Option<Bytes>),
    /// `:<n>`.
    Integer(i64),
    /// An array.
    Array(Vec<Reply>),
    /// The nil array (`*-1`, EXEC aborted by WATCH).
    NilArray,
    /// `-<text>`; the text starts with the error code (`ERR`, `NOAUTH`, ...).
    Error(String),
}

impl Reply {
    /// `-ERR <message>`.
    pub fn err(message: impl std::fmt::Display) -> Self {
        Self::Error(format!("ERR {message}"))
    }
}

impl DataCommand {
    /// Keys whose current value the reply or the effect depends on.
    pub fn read_keys(&self, into: &mut BTreeSet<Bytes>) {
        match self {
            Self::Ping(_) | Self::Echo(_) | Self::MSet(_) => {}
            Self::Set { key, condition, .. } => {
                if *condition != SetCondition::Always {
                    into.insert(key.clone());
                }
            }
            Self::Get(key) | Self::IncrBy { key, .. } => {
                into.insert(key.clone());
            }
            Self::MGet(keys) | Self::Exists(keys) | Self::Del(keys) => {
                into.extend(keys.iter().cloned());
            }
        }
    }

    /// The metric label of the command.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ping(_) => "ping",
            Self::Echo(_) => "echo",
            Self::Get(_) => "get",
            Self::MGet(_) => "mget",
            Self::Exists(_) => "exists",
            Self::Set { .. } => "set",
            Self::MSet(_) => "mset",
            Self::Del(_) => "del",
            Self::IncrBy { .. } => "incrby",
        }
    }
}

/// The outcome of running commands over a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effect {
    /// One reply per command.
    pub replies: Vec<Reply>,
    /// The final value of every key the commands changed (`None`: deleted), in key order.
    pub writes: BTreeMap<Bytes, Option<Bytes>>,
}

/// Runs `commands` in order over `snapshot`, which holds the current value of every key in
/// their [`DataCommand::read_keys`] (a missing entry reads as absent). Later commands see the
/// writes of earlier ones, as in a MULTI block.
pub fn simulate(commands: &[DataCommand], snapshot: &HashMap<Bytes, Option<Bytes>>) -> Effect {
    let mut effect = Effect::default();
    let current = |writes: &BTreeMap<Bytes, Option<Bytes>>, key: &Bytes| -> Option<Bytes> {
        match writes.get(key) {
            Some(value) => value.clone(),
            None => snapshot.get(key).cloned().flatten(),
        }
    };
    for command in commands {
        let reply = match command {
            Self_::Ping(None) => Reply::Status("PONG"),
            Self_::Ping(Some(message)) | Self_::Echo(message) => Reply::Bulk(Some(message.clone())),
            Self_::Get(key) => Reply::Bulk(current(&effect.writes, key)),
            Self_::MGet(keys) => Reply::Array(
                keys.iter()
                    .map(|key| Reply::Bulk(current(&effect.writes, key)))
                    .collect(),
            ),
            Self_::Exists(keys) => Reply::Integer(
                keys.iter()
                    .filter(|key| current(&effect.writes, key).is_some())
                    .count() as i64,
            ),
            Self_::Set {
                key,
                value,
                condition,
            } => {
                let exists = current(&effect.writes, key).is_some();
                let allowed = match condition {
                    SetCondition::Always => true,
                    SetCondition::IfAbsent => !exists,
                    SetCondition::IfPresent => exists,
                };
                if allowed {
                    effect.writes.insert(key.clone(), Some(value.clone()));
                    Reply::Ok
                } else {
                    Reply::Bulk(None)
                }
            }
            Self_::MSet(pairs) => {
                for (key, value) in pairs {
                    effect.writes.insert(key.clone(), Some(value.clone()));
                }
                Reply::Ok
            }
            Self_::Del(keys) => {
                let unique: BTreeSet<&Bytes> = keys.iter().collect();
                let mut removed = 0;
                for key in unique {
                    if current(&effect.writes, key).is_some() {
                        removed += 1;
                        effect.writes.insert(key.clone(), None);
                    }
                }
                Reply::Integer(removed)
            }
            Self_::IncrBy { key, delta } => match current(&effect.writes, key) {
                None => {
                    effect
                        .writes
                        .insert(key.clone(), Some(Bytes::from(delta.to_string())));
                    Reply::Integer(*delta)
                }
                Some(value) => match parse_integer(&value) {
                    None => Reply::err("value is not an integer or out of range"),
                    Some(old) => match old.checked_add(*delta) {
                        None => Reply::err("increment or decrement would overflow"),
                        Some(new) => {
                            effect
                                .writes
                                .insert(key.clone(), Some(Bytes::from(new.to_string())));
                            Reply::Integer(new)
                        }
                    },
                },
            },
        };
        effect.replies.push(reply);
    }
    effect
}

use DataCommand as Self_;

/// What one attempt at running commands over a versioned read decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// A watched key was modified since WATCH: EXEC answers nil and nothing is written.
    Aborted,
    /// Nothing to write: the read itself is the linearization point of these replies.
    Read(Vec<Reply>),
    /// Replicate `command`; if it commits, these are the replies.
    Write {
        /// One entry: the writes, conditioned on the versions read.
        command: KvCommand,
        /// One reply per command.
        replies: Vec<Reply>,
    },
}

/// Plans `commands` given `read`, the value and version of every key in their
/// [`DataCommand::read_keys`] and in `watched`, read together, and `watched`, the version each
/// watched key had at WATCH.
///
/// Every key read becomes a version condition (for a watched key, its version at WATCH, which
/// equals the one read or the plan is [`Plan::Aborted`]). An error names a transaction larger
/// than [`MAX_TXN_ITEMS`] keys read or written.
pub fn plan(
    commands: &[DataCommand],
    watched: &BTreeMap<Bytes, u64>,
    read: &BTreeMap<Bytes, (Option<Bytes>, u64)>,
) -> Result<Plan, String> {
    let modified = watched
        .iter()
        .any(|(key, version)| read.get(key).map(|(_, now)| now) != Some(version));
    if modified {
        return Ok(Plan::Aborted);
    }
    let snapshot: HashMap<Bytes, Option<Bytes>> = read
        .iter()
        .map(|(key, (value, _))| (key.clone(), value.clone()))
        .collect();
    let effect = simulate(commands, &snapshot);
    if effect.writes.is_empty() {
        return Ok(Plan::Read(effect.replies));
    }
    if read.len() > MAX_TXN_ITEMS || effect.writes.len() > MAX_TXN_ITEMS {
        return Err(format!(
            "a command or transaction may read or write at most {MAX_TXN_ITEMS} keys"
        ));
    }
    let versions: Vec<VersionCondition> = read
        .iter()
        .map(|(key, (_, version))| VersionCondition {
            key: key.clone(),
            version: *version,
        })
        .collect();
    let mut ops: Vec<TxnOp> = effect
        .writes
        .into_iter()
        .map(|(key, value)| match value {
            Some(value) => TxnOp::Put { key, value },
            None => TxnOp::Delete { key },
        })
        .collect();
    let command = if versions.is_empty() && ops.len() == 1 {
        match ops.remove(0) {
            TxnOp::Put { key, value } => KvCommand::Put { key, value },
            TxnOp::Delete { key } => KvCommand::Delete { key },
        }
    } else {
        KvCommand::VersionedTxn {
            versions,
            txn: Txn {
                conditions: Vec::new(),
                ops,
            },
        }
    };
    Ok(Plan::Write {
        command,
        replies: effect.replies,
    })
}

/// Parses a stored value as Redis does for INCR: optional `-`, decimal digits, no spaces, no
/// `+`, no leading zeros, fits in an `i64`.
pub fn parse_integer(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    if !canonical {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn snapshot(pairs: &[(&str, Option<&str>)]) -> HashMap<Bytes, Option<Bytes>> {
        pairs.iter().map(|(k, v)| (b(k), v.map(b))).collect()
    }

    #[test]
    fn multi_block_sees_its_own_writes() {
        let commands = vec![
            DataCommand::Get(b("k")),
            DataCommand::Set {
                key: b("k"),
                value: b("5"),
                condition: SetCondition::Always,
            },
            DataCommand::IncrBy {
                key: b("k"),
                delta: 2,
            },
            DataCommand::Get(b("k")),
            DataCommand::Del(vec![b("k"), b("k"), b("other")]),
            DataCommand::Exists(vec![b("k"), b("other"), b("other")]),
        ];
        let effect = simulate(
            &commands,
            &snapshot(&[("k", Some("1")), ("other", Some("x"))]),
        );
        assert_eq!(
            effect.replies,
            vec![
                Reply::Bulk(Some(b("1"))),
                Reply::Ok,
                Reply::Integer(7),
                Reply::Bulk(Some(b("7"))),
                Reply::Integer(2),
                Reply::Integer(0),
            ]
        );
        assert_eq!(
            effect.writes.into_iter().collect::<Vec<_>>(),
            vec![(b("k"), None), (b("other"), None)]
        );
    }

    #[test]
    fn set_conditions_and_integer_errors() {
        let commands = vec![
            DataCommand::Set {
                key: b("a"),
                value: b("x"),
                condition: SetCondition::IfAbsent,
            },
            DataCommand::Set {
                key: b("n"),
                value: b("y"),
                condition: SetCondition::IfPresent,
            },
            DataCommand::IncrBy {
                key: b("a"),
                delta: 1,
            },
            DataCommand::IncrBy {
                key: b("big"),
                delta: 1,
            },
            DataCommand::IncrBy {
                key: b("fresh"),
                delta: -3,
            },
        ];
        let effect = simulate(
            &commands,
            &snapshot(&[("a", Some("taken")), ("big", Some(&i64::MAX.to_string()))]),
        );
        assert_eq!(effect.replies[0], Reply::Bulk(None));
        assert_eq!(effect.replies[1], Reply::Bulk(None));
        assert!(matches!(&effect.replies[2], Reply::Error(e) if e.contains("not an integer")));
        assert!(matches!(&effect.replies[3], Reply::Error(e) if e.contains("overflow")));
        assert_eq!(effect.replies[4], Reply::Integer(-3));
        assert_eq!(effect.writes.len(), 1, "only the fresh counter changed");
    }

    #[test]
    fn integers_parse_like_redis() {
        assert_eq!(parse_integer(b"42"), Some(42));
        assert_eq!(parse_integer(b"-7"), Some(-7));
        assert_eq!(parse_integer(b"0"), Some(0));
        for bad in [
            &b""[..],
            b"+1",
            b" 1",
            b"01",
            b"-0",
            b"1.0",
            b"99999999999999999999",
            b"\xff",
        ] {
            assert_eq!(parse_integer(bad), None, "{bad:?}");
        }
    }

    fn versioned(pairs: &[(&str, Option<&str>, u64)]) -> BTreeMap<Bytes, (Option<Bytes>, u64)> {
        pairs
            .iter()
            .map(|(k, v, version)| (b(k), (v.map(b), *version)))
            .collect()
    }

    fn set(key: &str, value: &str) -> DataCommand {
        DataCommand::Set {
            key: b(key),
            value: b(value),
            condition: SetCondition::Always,
        }
    }

    #[test]
    fn a_watched_key_set_back_to_its_value_aborts() {
        // WATCH saw k = A at version 3; since then k went to B (4) and back to A (5).
        let watched: BTreeMap<Bytes, u64> = [(b("k"), 3)].into_iter().collect();
        let read = versioned(&[("k", Some("A"), 5)]);
        assert_eq!(
            plan(&[set("k", "mine")], &watched, &read),
            Ok(Plan::Aborted)
        );
        assert_eq!(
            plan(&[DataCommand::Get(b("k"))], &watched, &read),
            Ok(Plan::Aborted),
            "a read-only block aborts too"
        );
        // An absent key deleted and absent again has a new version as well.
        let watched: BTreeMap<Bytes, u64> = [(b("gone"), 0)].into_iter().collect();
        let read = versioned(&[("gone", None, 9)]);
        assert_eq!(plan(&[], &watched, &read), Ok(Plan::Aborted));
    }

    #[test]
    fn writes_are_conditioned_on_the_versions_read_and_watched() {
        let watched: BTreeMap<Bytes, u64> = [(b("w"), 3)].into_iter().collect();
        let read = versioned(&[("w", Some("A"), 3), ("n", Some("1"), 7)]);
        let commands = [
            DataCommand::IncrBy {
                key: b("n"),
                delta: 1,
            },
            set("w", "B"),
        ];
        let Ok(Plan::Write { command, replies }) = plan(&commands, &watched, &read) else {
            panic!("expected a write");
        };
        assert_eq!(replies, vec![Reply::Integer(2), Reply::Ok]);
        assert_eq!(
            command,
            KvCommand::VersionedTxn {
                versions: vec![
                    VersionCondition {
                        key: b("n"),
                        version: 7
                    },
                    VersionCondition {
                        key: b("w"),
                        version: 3
                    },
                ],
                txn: Txn {
                    conditions: vec![],
                    ops: vec![
                        TxnOp::Put {
                            key: b("n"),
                            value: b("2")
                        },
                        TxnOp::Put {
                            key: b("w"),
                            value: b("B")
                        },
                    ],
                },
            }
        );
    }

    #[test]
    fn reads_and_blind_writes_need_no_transaction() {
        let none = BTreeMap::new();
        let read = versioned(&[("k", Some("v"), 2)]);
        assert_eq!(
            plan(&[DataCommand::Get(b("k"))], &none, &read),
            Ok(Plan::Read(vec![Reply::Bulk(Some(b("v")))]))
        );
        assert_eq!(
            plan(&[set("k", "x")], &none, &BTreeMap::new()),
            Ok(Plan::Write {
                command: KvCommand::Put {
                    key: b("k"),
                    value: b("x")
                },
                replies: vec![Reply::Ok],
            })
        );
        let many: Vec<(String, Option<&str>, u64)> = (0..=MAX_TXN_ITEMS)
            .map(|i| (format!("k{i}"), Some("v"), 1))
            .collect();
        let many: Vec<(&str, Option<&str>, u64)> =
            many.iter().map(|(k, v, n)| (k.as_str(), *v, *n)).collect();
        let keys = many.iter().map(|(k, ..)| b(k)).collect();
        assert!(plan(&[DataCommand::Del(keys)], &none, &versioned(&many)).is_err());
    }

    #[test]
    fn read_keys_cover_what_replies_depend_on() {
        let mut keys = BTreeSet::new();
        DataCommand::Set {
            key: b("blind"),
            value: b("v"),
            condition: SetCondition::Always,
        }
        .read_keys(&mut keys);
        DataCommand::MSet(vec![(b("m"), b("v"))]).read_keys(&mut keys);
        assert!(keys.is_empty(), "blind writes read nothing");
        DataCommand::Del(vec![b("d")]).read_keys(&mut keys);
        DataCommand::IncrBy {
            key: b("i"),
            delta: 1,
        }
        .read_keys(&mut keys);
        assert_eq!(keys.into_iter().collect::<Vec<_>>(), vec![b("d"), b("i")]);
    }
}
