//! The key-value commands of the Redis front end and their effect, computed over a snapshot of
//! the keys they read. A command (or a whole MULTI block) is turned into one atomic write: the
//! values it read become conditions of a single transaction, so the write commits only if
//! nothing it depended on changed in between.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

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
