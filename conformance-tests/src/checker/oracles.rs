//! Cheap checks that run before the linearizability search. Each is O(n log n) at worst, never
//! times out, and names the offending operations precisely, so most stale reads are reported
//! here in plain words.
//!
//! Version-based oracles use [`Operation::version`]: the log index of the write that produced a
//! value. A write's version is the index it was applied at; a read's version is the index of the
//! write it observed (0 for an absent key). In a correct Raft the versions of one key grow in
//! linearization order, so a read that starts after a write was acknowledged must observe that
//! write's version or a later one.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::history::{ClientId, History, Input, Key, Operation, Outcome, Output, Value};

/// A key's final value as read from a converged cluster, with its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalValue {
    /// The value held.
    pub value: Value,
    /// Log index of the write that produced it.
    pub version: u64,
}

/// What an oracle found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OracleViolation {
    /// Two writes to one key wrote the same value: the workload broke the uniqueness every
    /// other oracle relies on.
    DuplicateWrite {
        /// The second write.
        op: Box<Operation>,
    },
    /// A read returned a value no write could have produced: never written, written by a
    /// write that certainly did not apply, or written only after the read returned.
    PhantomValue {
        /// The read.
        read: Box<Operation>,
        /// Why.
        reason: String,
    },
    /// A read observed an older version than one the same client observed or wrote earlier.
    NonMonotonic {
        /// The client.
        client: ClientId,
        /// The earlier operation.
        earlier: Box<Operation>,
        /// The read that went back in time.
        read: Box<Operation>,
    },
    /// A read that started after a write was acknowledged observed an older version (a stale
    /// read). `same_client` marks a read-your-writes violation.
    StaleRead {
        /// The acknowledged write.
        write: Box<Operation>,
        /// The read.
        read: Box<Operation>,
        /// True when the reader wrote it itself.
        same_client: bool,
    },
    /// After healing, a key does not hold an acknowledged write or anything newer.
    LostWrite {
        /// The key.
        key: Key,
        /// The newest acknowledged write.
        write: Box<Operation>,
        /// What the cluster holds at the end.
        found: Option<FinalValue>,
    },
}

impl fmt::Display for OracleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateWrite { op } => {
                write!(f, "duplicate written value (workload bug): {op}")
            }
            Self::PhantomValue { read, reason } => write!(f, "phantom value: {read}: {reason}"),
            Self::NonMonotonic {
                client,
                earlier,
                read,
            } => write!(
                f,
                "non-monotonic reads by client {client}: {read} observed an older version than {earlier}"
            ),
            Self::StaleRead {
                write,
                read,
                same_client,
            } => write!(
                f,
                "{}: {read} started after {write} was acknowledged but observed an older version",
                if *same_client {
                    "read-your-writes violated"
                } else {
                    "stale read"
                }
            ),
            Self::LostWrite { key, write, found } => write!(
                f,
                "acknowledged write lost on key {key}: {write}; the healed cluster holds {}",
                found.map_or_else(
                    || "nothing".to_string(),
                    |v| format!("{} @v{}", v.value, v.version)
                )
            ),
        }
    }
}

fn completed_seq(op: &Operation) -> u64 {
    op.completed.map_or(u64::MAX, |c| c.seq)
}

fn read_value(op: &Operation) -> Option<Option<Value>> {
    match (op.input, op.outcome) {
        (Input::Get, Outcome::Ok(Output::Value(seen))) => Some(seen),
        _ => None,
    }
}

/// A write that certainly applied (acknowledged and, for CAS, the condition held).
fn acked_write(op: &Operation) -> Option<Value> {
    match (op.input, op.outcome) {
        (Input::Put(value), Outcome::Ok(_)) => Some(value),
        (Input::Cas { new, .. }, Outcome::Ok(Output::Cas(true))) => Some(new),
        _ => None,
    }
}

/// A write that may have applied.
fn possible_write(op: &Operation) -> Option<Value> {
    match (op.input, op.outcome) {
        (_, Outcome::Failed) => None,
        (Input::Cas { .. }, Outcome::Ok(Output::Cas(false))) => None,
        (input, _) => input.written_value(),
    }
}

/// Every written value of a key is unique.
pub fn unique_writes(history: &History) -> Vec<OracleViolation> {
    let mut seen: HashMap<(Key, Value), usize> = HashMap::new();
    let mut found = Vec::new();
    for op in history.ops() {
        if let Some(value) = op.input.written_value()
            && seen.insert((op.key, value), op.id).is_some()
        {
            found.push(OracleViolation::DuplicateWrite {
                op: Box::new(op.clone()),
            });
        }
    }
    found
}

/// Every value read was written by a write that may have applied and was invoked before the
/// read returned.
pub fn no_phantom_values(history: &History) -> Vec<OracleViolation> {
    let mut writers: HashMap<(Key, Value), &Operation> = HashMap::new();
    for op in history.ops() {
        if let Some(value) = op.input.written_value() {
            writers.entry((op.key, value)).or_insert(op);
        }
    }
    let mut found = Vec::new();
    for read in history.ops() {
        let Some(Some(value)) = read_value(read) else {
            continue;
        };
        let reason = match writers.get(&(read.key, value)) {
            None => Some("no operation ever wrote it".to_string()),
            Some(write) if possible_write(write).is_none() => {
                Some(format!("its only writer did not apply: {write}"))
            }
            Some(write) if write.invoked.seq > completed_seq(read) => Some(format!(
                "its writer was invoked after the read returned: {write}"
            )),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            found.push(OracleViolation::PhantomValue {
                read: Box::new(read.clone()),
                reason,
            });
        }
    }
    found
}

/// Per client and key, the versions a client observes never go back, neither behind its own
/// earlier reads nor behind its own acknowledged writes (read-your-writes).
pub fn monotonic_reads_per_client(history: &History) -> Vec<OracleViolation> {
    let mut by_client: BTreeMap<(ClientId, Key), Vec<&Operation>> = BTreeMap::new();
    for op in history.ops() {
        if op.version.is_some() && (read_value(op).is_some() || acked_write(op).is_some()) {
            by_client.entry((op.client, op.key)).or_default().push(op);
        }
    }
    let mut found = Vec::new();
    for ((client, _), mut ops) in by_client {
        ops.sort_by_key(|op| op.invoked.seq);
        let mut newest: Option<&Operation> = None;
        for op in ops {
            let version = op.version.unwrap_or(0);
            if let Some(prev) = newest {
                // Only operations that finished before this one started constrain it.
                if completed_seq(prev) < op.invoked.seq
                    && read_value(op).is_some()
                    && version < prev.version.unwrap_or(0)
                {
                    if acked_write(prev).is_some() {
                        found.push(OracleViolation::StaleRead {
                            write: Box::new(prev.clone()),
                            read: Box::new(op.clone()),
                            same_client: true,
                        });
                    } else {
                        found.push(OracleViolation::NonMonotonic {
                            client,
                            earlier: Box::new(prev.clone()),
                            read: Box::new(op.clone()),
                        });
                    }
                    continue;
                }
            }
            if newest.is_none_or(|prev| version >= prev.version.unwrap_or(0)) {
                newest = Some(op);
            }
        }
    }
    found
}

/// Across all clients: a read invoked after a write was acknowledged observes that write's
/// version or a newer one.
pub fn no_stale_reads(history: &History) -> Vec<OracleViolation> {
    let mut per_key: BTreeMap<Key, Vec<&Operation>> = BTreeMap::new();
    for op in history.ops() {
        if op.version.is_some() && (read_value(op).is_some() || acked_write(op).is_some()) {
            per_key.entry(op.key).or_default().push(op);
        }
    }
    let mut found = Vec::new();
    for (_, ops) in per_key {
        // Events: write completions and read invocations, in time order.
        let mut events: Vec<(u64, bool, &Operation)> = Vec::new();
        for op in ops {
            if acked_write(op).is_some() {
                events.push((completed_seq(op), false, op));
            } else {
                events.push((op.invoked.seq, true, op));
            }
        }
        events.sort_by_key(|&(seq, is_read, _)| (seq, is_read));
        let mut newest_acked: Option<&Operation> = None;
        for (_, is_read, op) in events {
            let version = op.version.unwrap_or(0);
            if !is_read {
                if newest_acked.is_none_or(|w| version > w.version.unwrap_or(0)) {
                    newest_acked = Some(op);
                }
                continue;
            }
            if let Some(write) = newest_acked
                && version < write.version.unwrap_or(0)
            {
                found.push(OracleViolation::StaleRead {
                    write: Box::new(write.clone()),
                    read: Box::new(op.clone()),
                    same_client: write.client == op.client,
                });
            }
        }
    }
    found
}

/// After heal and convergence, every key holds its newest acknowledged write or something newer.
pub fn durable_acked_writes(
    history: &History,
    final_state: &BTreeMap<Key, FinalValue>,
) -> Vec<OracleViolation> {
    let mut newest: BTreeMap<Key, &Operation> = BTreeMap::new();
    for op in history.ops() {
        if acked_write(op).is_some() {
            let slot = newest.entry(op.key).or_insert(op);
            if op.version.unwrap_or(0) > slot.version.unwrap_or(0) {
                *slot = op;
            }
        }
    }
    let mut found = Vec::new();
    for (key, write) in newest {
        let held = final_state.get(&key).copied();
        let lost = match (held, write.version) {
            (None, _) => true,
            (Some(held), Some(version)) => {
                held.version < version
                    || (held.version == version && Some(held.value) != acked_write(write))
            }
            (Some(_), None) => false,
        };
        if lost {
            found.push(OracleViolation::LostWrite {
                key,
                write: Box::new(write.clone()),
                found: held,
            });
        }
    }
    found
}

/// Runs every oracle; the durability oracle only when a final state is given.
pub fn run_all(
    history: &History,
    final_state: Option<&BTreeMap<Key, FinalValue>>,
) -> Vec<OracleViolation> {
    let mut found = unique_writes(history);
    found.extend(no_phantom_values(history));
    found.extend(monotonic_reads_per_client(history));
    found.extend(no_stale_reads(history));
    if let Some(final_state) = final_state {
        found.extend(durable_acked_writes(history, final_state));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::linearizability::tests::Builder;

    fn with_versions(history: History, versions: &[Option<u64>]) -> History {
        let ops = history
            .ops()
            .iter()
            .cloned()
            .zip(versions)
            .map(|(mut op, v)| {
                op.version = *v;
                op
            })
            .collect();
        History::from_ops(ops)
    }

    #[test]
    fn clean_history_passes_every_oracle() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .get(2, Some(1), (2, 3))
            .put(2, 2, (4, 5))
            .get(1, Some(2), (6, 7));
        let history = with_versions(b.build(), &[Some(3), Some(3), Some(4), Some(4)]);
        let final_state = BTreeMap::from([(
            0,
            FinalValue {
                value: 2,
                version: 4,
            },
        )]);
        assert_eq!(run_all(&history, Some(&final_state)), vec![]);
    }

    #[test]
    fn phantom_values_are_named() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .get(2, Some(9), (2, 3))
            .put_failed(1, 2, (4, 5))
            .get(2, Some(2), (6, 7))
            .get(3, Some(3), (8, 9))
            .put(1, 3, (10, 11));
        let found = no_phantom_values(&b.build());
        assert_eq!(found.len(), 3, "{found:?}");
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(
            text[0].contains("no operation ever wrote it"),
            "{}",
            text[0]
        );
        assert!(text[1].contains("did not apply"), "{}", text[1]);
        assert!(
            text[2].contains("invoked after the read returned"),
            "{}",
            text[2]
        );
    }

    #[test]
    fn stale_read_after_acknowledged_write_is_caught_by_version() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .put(1, 2, (2, 3))
            .get(2, Some(1), (4, 5))
            .get(1, Some(1), (6, 7));
        let history = with_versions(b.build(), &[Some(3), Some(4), Some(3), Some(3)]);
        let found = no_stale_reads(&history);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].to_string().starts_with("stale read"),
            "{}",
            found[0]
        );
        assert!(
            found[1].to_string().starts_with("read-your-writes"),
            "{}",
            found[1]
        );
        // The per-client oracle sees client 1's own write.
        let own = monotonic_reads_per_client(&history);
        assert_eq!(own.len(), 1, "{own:?}");
        assert!(own[0].to_string().starts_with("read-your-writes"));
    }

    #[test]
    fn concurrent_write_does_not_make_a_read_stale() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .put(1, 2, (2, 10))
            .get(2, Some(1), (3, 4));
        let history = with_versions(b.build(), &[Some(3), Some(4), Some(3)]);
        assert_eq!(no_stale_reads(&history), vec![]);
    }

    #[test]
    fn non_monotonic_reads_are_caught() {
        let mut b = Builder::default();
        b.get(1, Some(2), (0, 1)).get(1, Some(1), (2, 3));
        let history = with_versions(b.build(), &[Some(8), Some(5)]);
        let found = monotonic_reads_per_client(&history);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(matches!(
            found[0],
            OracleViolation::NonMonotonic { client: 1, .. }
        ));
    }

    #[test]
    fn lost_acked_write_is_caught_after_heal() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1)).put(1, 2, (2, 3));
        let history = with_versions(b.build(), &[Some(3), Some(4)]);
        let rolled_back = BTreeMap::from([(
            0,
            FinalValue {
                value: 1,
                version: 3,
            },
        )]);
        let found = durable_acked_writes(&history, &rolled_back);
        assert_eq!(found.len(), 1);
        assert!(found[0].to_string().contains("lost"), "{}", found[0]);
        assert_eq!(durable_acked_writes(&history, &BTreeMap::new()).len(), 1);
        let newer = BTreeMap::from([(
            0,
            FinalValue {
                value: 7,
                version: 9,
            },
        )]);
        assert_eq!(durable_acked_writes(&history, &newer), vec![]);
    }

    #[test]
    fn duplicate_written_values_are_flagged() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1)).put(2, 1, (2, 3));
        assert_eq!(unique_writes(&b.build()).len(), 1);
    }
}
