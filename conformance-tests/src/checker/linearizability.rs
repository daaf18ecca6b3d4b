//! A Porcupine-style linearizability checker for a map of registers with get, put and
//! compare-and-set.
//!
//! The algorithm is Wing & Gong's search as refined by Lowe and by Porcupine: events are kept in
//! a doubly linked list ordered by time; the search repeatedly tries to linearize a pending call
//! ("lift" it and its return out of the list), memoizes every reached (set of linearized
//! operations, register state) pair so no configuration is explored twice, and backtracks when
//! it meets a return whose call could not be placed. The map is checked one key at a time
//! (linearizability is compositional, Herlihy & Wing), which keeps searches small.
//!
//! Outcomes: a write with an unknown outcome may take effect at any point after its invocation
//! or never (its return is at +∞, and being linearized last is the same as never happening); a
//! write that failed with "not applied" is left out; reads that failed are left out. A search
//! that runs out of budget answers [`CheckResult::Unknown`], which callers treat as a failure.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use super::history::{History, Input, Key, Operation, Outcome, Output, Value};

/// Limits of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// Search steps over all keys before giving up with [`CheckResult::Unknown`].
    pub max_steps: u64,
    /// Wall-clock budget (real time, not the test's virtual time), if any.
    pub max_time: Option<Duration>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            max_steps: 20_000_000,
            max_time: Some(Duration::from_secs(60)),
        }
    }
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// Some order of the operations explains every observed result.
    Linearizable,
    /// No order does; the violation names the key and how far the search got.
    NotLinearizable(Box<Violation>),
    /// The budget ran out (or the history is malformed) before a verdict. Treat as failure.
    Unknown(String),
}

impl CheckResult {
    /// True only for [`CheckResult::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Self::Linearizable)
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Linearizable => write!(f, "linearizable"),
            Self::NotLinearizable(violation) => write!(f, "NOT linearizable: {violation}"),
            Self::Unknown(reason) => write!(f, "unknown (counts as failure): {reason}"),
        }
    }
}

/// Why a key's history is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The key whose history cannot be linearized.
    pub key: Key,
    /// The longest sequence of operations the search could linearize, in order.
    pub longest_prefix: Vec<Operation>,
    /// Operations that had been invoked but could not be placed after that prefix (the
    /// culprit is usually among them).
    pub stuck: Vec<Operation>,
    /// Every relevant operation on the key, by invocation.
    pub ops: Vec<Operation>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "key {} ({} operations). Longest linearizable prefix:",
            self.key,
            self.ops.len()
        )?;
        const SHOWN: usize = 20;
        let skip = self.longest_prefix.len().saturating_sub(SHOWN);
        if skip > 0 {
            writeln!(f, "  ... {skip} earlier operations")?;
        }
        for op in &self.longest_prefix[skip..] {
            writeln!(f, "  {op}")?;
        }
        writeln!(f, "none of these fits next:")?;
        for op in self.stuck.iter().take(SHOWN) {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

/// Checks the whole history, one key at a time, starting every key absent.
pub fn check(history: &History, options: &CheckOptions) -> CheckResult {
    check_with_initial(history, &BTreeMap::new(), options)
}

/// Like [`check`], with initial values for some keys (others start absent).
pub fn check_with_initial(
    history: &History,
    initial: &BTreeMap<Key, Value>,
    options: &CheckOptions,
) -> CheckResult {
    let mut per_key: BTreeMap<Key, Vec<&Operation>> = BTreeMap::new();
    for op in history.ops() {
        if let Err(problem) = validate(op) {
            return CheckResult::Unknown(format!("malformed history: {problem}: {op}"));
        }
        if op.is_relevant() {
            per_key.entry(op.key).or_default().push(op);
        }
    }
    let mut budget = Budget::new(options);
    let mut unknown = Vec::new();
    for (key, ops) in per_key {
        match check_key(key, &ops, initial.get(&key).copied(), &mut budget) {
            CheckResult::Linearizable => {}
            violation @ CheckResult::NotLinearizable(_) => return violation,
            CheckResult::Unknown(reason) => unknown.push(format!("key {key}: {reason}")),
        }
    }
    if unknown.is_empty() {
        CheckResult::Linearizable
    } else {
        CheckResult::Unknown(unknown.join("; "))
    }
}

fn validate(op: &Operation) -> Result<(), &'static str> {
    match (op.input, op.outcome) {
        (Input::Get, Outcome::Ok(Output::Value(_)))
        | (Input::Put(_), Outcome::Ok(Output::Written))
        | (Input::Cas { .. }, Outcome::Ok(Output::Cas(_))) => {}
        (_, Outcome::Ok(_)) => return Err("result does not match the request"),
        _ => {}
    }
    if let (Outcome::Ok(_), None) = (op.outcome, op.completed) {
        return Err("a successful operation must have a completion");
    }
    if let Some(completed) = op.completed
        && completed.seq <= op.invoked.seq
    {
        return Err("completion is not after invocation");
    }
    Ok(())
}

struct Budget {
    steps_left: u64,
    deadline: Option<std::time::Instant>,
    exhausted: Option<String>,
}

impl Budget {
    fn new(options: &CheckOptions) -> Self {
        Self {
            steps_left: options.max_steps,
            deadline: options
                .max_time
                .map(|limit| std::time::Instant::now() + limit),
            exhausted: None,
        }
    }

    /// Spends one step; false once the budget is gone.
    fn step(&mut self) -> bool {
        if self.exhausted.is_some() {
            return false;
        }
        if self.steps_left == 0 {
            self.exhausted = Some("step budget exhausted".into());
            return false;
        }
        self.steps_left -= 1;
        if self.steps_left.is_multiple_of(4096)
            && let Some(deadline) = self.deadline
            && std::time::Instant::now() >= deadline
        {
            self.exhausted = Some("time budget exhausted".into());
            return false;
        }
        true
    }
}

/// The register model: `None` = absent. Returns the next state if `op` may take effect now.
fn step(state: Option<Value>, op: &Operation) -> Option<Option<Value>> {
    match (op.input, op.outcome) {
        (Input::Get, Outcome::Ok(Output::Value(seen))) => (seen == state).then_some(state),
        (Input::Put(value), _) => Some(Some(value)),
        (Input::Cas { expected, new }, Outcome::Ok(Output::Cas(true))) => {
            (state == expected).then_some(Some(new))
        }
        (Input::Cas { expected, .. }, Outcome::Ok(Output::Cas(false))) => {
            (state != expected).then_some(state)
        }
        // Unknown outcome: if it takes effect here, the condition decides what it does.
        (Input::Cas { expected, new }, _) => {
            Some(if state == expected { Some(new) } else { state })
        }
        _ => None,
    }
}

const NIL: usize = usize::MAX;

#[derive(Clone, Copy)]
struct Entry {
    /// Index into the key's operation list.
    op: usize,
    /// Call entries point at their return entry.
    ret: Option<usize>,
    prev: usize,
    next: usize,
}

/// The event list with dancing-links removal, plus a sentinel head at index `len`.
struct Events {
    entries: Vec<Entry>,
    head: usize,
}

impl Events {
    fn new(ops: &[&Operation]) -> Self {
        // (time, is_return, op): calls before returns at equal times (only +∞ can tie).
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoked.seq, false, i));
            let returned = match op.outcome {
                Outcome::Ok(_) => op.completed.map_or(u64::MAX, |c| c.seq),
                _ => u64::MAX,
            };
            events.push((returned, true, i));
        }
        events.sort_unstable();
        let len = events.len();
        let mut entries: Vec<Entry> = events
            .iter()
            .enumerate()
            .map(|(i, &(_, _, op))| Entry {
                op,
                ret: None,
                prev: if i == 0 { len } else { i - 1 },
                next: if i + 1 == len { NIL } else { i + 1 },
            })
            .collect();
        let mut return_of = vec![NIL; ops.len()];
        for (i, &(_, is_return, op)) in events.iter().enumerate() {
            if is_return {
                return_of[op] = i;
            }
        }
        for (i, &(_, is_return, op)) in events.iter().enumerate() {
            if !is_return {
                entries[i].ret = Some(return_of[op]);
            }
        }
        entries.push(Entry {
            op: NIL,
            ret: None,
            prev: NIL,
            next: if len == 0 { NIL } else { 0 },
        });
        Self { entries, head: len }
    }

    fn first(&self) -> usize {
        self.entries[self.head].next
    }

    fn unlink(&mut self, i: usize) {
        let Entry { prev, next, .. } = self.entries[i];
        self.entries[prev].next = next;
        if next != NIL {
            self.entries[next].prev = prev;
        }
    }

    fn relink(&mut self, i: usize) {
        let Entry { prev, next, .. } = self.entries[i];
        self.entries[prev].next = i;
        if next != NIL {
            self.entries[next].prev = i;
        }
    }

    /// Removes a call and its return.
    fn lift(&mut self, call: usize, ret: usize) {
        self.unlink(call);
        self.unlink(ret);
    }

    /// Undoes [`Events::lift`] (in reverse order, so the links are restored exactly).
    fn unlift(&mut self, call: usize, ret: usize) {
        self.relink(ret);
        self.relink(call);
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

fn check_key(
    key: Key,
    ops: &[&Operation],
    initial: Option<Value>,
    budget: &mut Budget,
) -> CheckResult {
    let mut events = Events::new(ops);
    let mut state = initial;
    let mut linearized = Bits::new(ops.len());
    let mut seen: HashSet<(Bits, Option<Value>)> = HashSet::new();
    // (call entry, return entry, state before)
    let mut stack: Vec<(usize, usize, Option<Value>)> = Vec::new();
    let mut longest: Vec<usize> = Vec::new();
    let mut cursor = events.first();

    while events.first() != NIL {
        if !budget.step() {
            let reason = budget.exhausted.clone().unwrap_or_default();
            return CheckResult::Unknown(format!(
                "{reason} after linearizing {} of {} operations",
                longest.len(),
                ops.len()
            ));
        }
        let entry = events.entries[cursor];
        if let Some(ret) = entry.ret {
            if let Some(next_state) = step(state, ops[entry.op]) {
                linearized.set(entry.op);
                if seen.insert((linearized.clone(), next_state)) {
                    stack.push((cursor, ret, state));
                    state = next_state;
                    events.lift(cursor, ret);
                    if stack.len() > longest.len() {
                        longest = stack
                            .iter()
                            .map(|&(call, _, _)| events.entries[call].op)
                            .collect();
                    }
                    cursor = events.first();
                    continue;
                }
                linearized.clear(entry.op);
            }
            cursor = entry.next;
        } else {
            // A return whose call is still pending: something earlier must be undone.
            let Some((call, ret, before)) = stack.pop() else {
                return CheckResult::NotLinearizable(Box::new(violation(key, ops, &longest)));
            };
            linearized.clear(events.entries[call].op);
            state = before;
            events.unlift(call, ret);
            cursor = events.entries[call].next;
        }
    }
    CheckResult::Linearizable
}

fn violation(key: Key, ops: &[&Operation], longest: &[usize]) -> Violation {
    let placed: HashSet<usize> = longest.iter().copied().collect();
    let longest_prefix: Vec<Operation> = longest.iter().map(|&i| ops[i].clone()).collect();
    // The operations that were pending right after the prefix: invoked before the earliest
    // return among the unplaced ones.
    let earliest_return = ops
        .iter()
        .enumerate()
        .filter(|(i, op)| !placed.contains(i) && matches!(op.outcome, Outcome::Ok(_)))
        .filter_map(|(_, op)| op.completed.map(|c| c.seq))
        .min()
        .unwrap_or(u64::MAX);
    let stuck = ops
        .iter()
        .enumerate()
        .filter(|(i, op)| !placed.contains(i) && op.invoked.seq < earliest_return)
        .map(|(_, op)| (*op).clone())
        .collect();
    let mut all: Vec<Operation> = ops.iter().map(|op| (*op).clone()).collect();
    all.sort_by_key(|op| op.invoked.seq);
    Violation {
        key,
        longest_prefix,
        stuck,
        ops: all,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checker::history::{ReadPath, Stamp};
    use tokio::time::Instant;

    /// Builds histories by hand: times are explicit sequence numbers.
    #[derive(Default)]
    pub(crate) struct Builder {
        ops: Vec<Operation>,
    }

    impl Builder {
        pub(crate) fn op(
            &mut self,
            client: u64,
            key: Key,
            input: Input,
            outcome: Outcome,
            invoked: u64,
            completed: Option<u64>,
        ) -> &mut Self {
            let now = Instant::now();
            let version = None;
            self.ops.push(Operation {
                id: 0,
                client,
                key,
                input,
                outcome,
                invoked: Stamp {
                    seq: invoked,
                    at: now,
                },
                completed: completed.map(|seq| Stamp { seq, at: now }),
                node: None,
                read_path: (!input.is_write()).then_some(ReadPath::Linearizable),
                version,
            });
            self
        }

        pub(crate) fn put(&mut self, client: u64, value: Value, span: (u64, u64)) -> &mut Self {
            self.op(
                client,
                0,
                Input::Put(value),
                Outcome::Ok(Output::Written),
                span.0,
                Some(span.1),
            )
        }

        pub(crate) fn put_unknown(&mut self, client: u64, value: Value, invoked: u64) -> &mut Self {
            self.op(
                client,
                0,
                Input::Put(value),
                Outcome::Unknown,
                invoked,
                None,
            )
        }

        pub(crate) fn put_failed(
            &mut self,
            client: u64,
            value: Value,
            span: (u64, u64),
        ) -> &mut Self {
            self.op(
                client,
                0,
                Input::Put(value),
                Outcome::Failed,
                span.0,
                Some(span.1),
            )
        }

        pub(crate) fn get(
            &mut self,
            client: u64,
            seen: Option<Value>,
            span: (u64, u64),
        ) -> &mut Self {
            self.op(
                client,
                0,
                Input::Get,
                Outcome::Ok(Output::Value(seen)),
                span.0,
                Some(span.1),
            )
        }

        pub(crate) fn cas(
            &mut self,
            client: u64,
            expected: Option<Value>,
            new: Value,
            held: bool,
            span: (u64, u64),
        ) -> &mut Self {
            self.op(
                client,
                0,
                Input::Cas { expected, new },
                Outcome::Ok(Output::Cas(held)),
                span.0,
                Some(span.1),
            )
        }

        pub(crate) fn build(&self) -> History {
            History::from_ops(self.ops.clone())
        }
    }

    fn verdict(builder: &Builder) -> CheckResult {
        check(&builder.build(), &CheckOptions::default())
    }

    #[test]
    fn empty_and_sequential_histories_are_linearizable() {
        assert!(verdict(&Builder::default()).is_linearizable());
        let mut b = Builder::default();
        b.get(1, None, (0, 1))
            .put(1, 5, (2, 3))
            .get(1, Some(5), (4, 5))
            .cas(1, Some(5), 6, true, (6, 7))
            .cas(1, Some(5), 7, false, (8, 9))
            .get(1, Some(6), (10, 11));
        assert!(verdict(&b).is_linearizable());
    }

    #[test]
    fn a_read_of_a_value_never_there_is_caught() {
        let mut b = Builder::default();
        b.put(1, 5, (0, 1)).get(2, Some(6), (2, 3));
        assert!(matches!(verdict(&b), CheckResult::NotLinearizable(_)));
    }

    #[test]
    fn a_stale_read_after_a_newer_completed_write_is_caught() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .put(1, 2, (2, 3))
            .get(2, Some(1), (4, 5));
        match verdict(&b) {
            CheckResult::NotLinearizable(v) => {
                assert_eq!(v.key, 0);
                assert!(v.to_string().contains("get"), "{v}");
            }
            other => panic!("expected a violation, got {other}"),
        }
    }

    #[test]
    fn concurrent_overlapping_operations_may_take_either_order() {
        // put(1) and put(2) overlap; a read overlapping both may see either; a read after
        // both must see the one linearized last, and two later reads must agree.
        let mut b = Builder::default();
        b.put(1, 1, (0, 5))
            .put(2, 2, (1, 6))
            .get(3, Some(1), (2, 7))
            .get(3, Some(2), (8, 9))
            .get(4, Some(2), (10, 11));
        assert!(verdict(&b).is_linearizable());

        let mut flip_flop = Builder::default();
        flip_flop
            .put(1, 1, (0, 5))
            .put(2, 2, (1, 6))
            .get(3, Some(2), (7, 8))
            .get(4, Some(1), (9, 10));
        assert!(matches!(
            verdict(&flip_flop),
            CheckResult::NotLinearizable(_)
        ));
    }

    #[test]
    fn reads_overlapping_a_write_may_see_old_then_new_but_not_new_then_old() {
        let mut ok = Builder::default();
        ok.put(1, 1, (0, 1))
            .put(1, 2, (2, 10))
            .get(2, Some(1), (3, 4))
            .get(2, Some(2), (5, 6));
        assert!(verdict(&ok).is_linearizable());

        let mut bad = Builder::default();
        bad.put(1, 1, (0, 1))
            .put(1, 2, (2, 10))
            .get(2, Some(2), (3, 4))
            .get(2, Some(1), (5, 6));
        assert!(matches!(verdict(&bad), CheckResult::NotLinearizable(_)));
    }

    #[test]
    fn an_unknown_write_may_take_effect() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .put_unknown(2, 2, 2)
            .get(3, Some(2), (5, 6))
            .get(3, Some(2), (7, 8));
        assert!(verdict(&b).is_linearizable());
    }

    #[test]
    fn an_unknown_write_may_never_take_effect() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .put_unknown(2, 2, 2)
            .get(3, Some(1), (5, 6))
            .get(3, Some(1), (20, 21));
        assert!(verdict(&b).is_linearizable());
    }

    #[test]
    fn an_unknown_write_takes_effect_at_most_once_and_not_before_its_invocation() {
        // Seen, then unseen: it would have to take effect and then be undone.
        let mut undone = Builder::default();
        undone
            .put(1, 1, (0, 1))
            .put_unknown(2, 2, 2)
            .get(3, Some(2), (5, 6))
            .get(3, Some(1), (7, 8));
        assert!(matches!(verdict(&undone), CheckResult::NotLinearizable(_)));

        // Read before the write was even invoked.
        let mut early = Builder::default();
        early.get(3, Some(2), (0, 1)).put_unknown(2, 2, 2);
        assert!(matches!(verdict(&early), CheckResult::NotLinearizable(_)));
    }

    #[test]
    fn an_unknown_write_must_take_effect_when_a_later_cas_depends_on_it() {
        let mut b = Builder::default();
        b.put_unknown(1, 5, 0)
            .cas(2, Some(5), 6, true, (3, 4))
            .get(2, Some(6), (5, 6));
        assert!(verdict(&b).is_linearizable());

        // The CAS says 5 was not there after the read saw it, with no other writer.
        let mut b = Builder::default();
        b.put_unknown(1, 5, 0)
            .get(2, Some(5), (1, 2))
            .cas(2, Some(5), 6, false, (3, 4));
        assert!(matches!(verdict(&b), CheckResult::NotLinearizable(_)));
    }

    #[test]
    fn failed_writes_are_excluded_so_reading_their_value_is_a_violation() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .put_failed(2, 2, (2, 3))
            .get(3, Some(1), (4, 5));
        assert!(verdict(&b).is_linearizable());

        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .put_failed(2, 2, (2, 3))
            .get(3, Some(2), (4, 5));
        assert!(matches!(verdict(&b), CheckResult::NotLinearizable(_)));
    }

    #[test]
    fn cas_semantics() {
        // CAS from absent.
        let mut b = Builder::default();
        b.cas(1, None, 1, true, (0, 1))
            .cas(2, None, 2, false, (2, 3))
            .get(1, Some(1), (4, 5));
        assert!(verdict(&b).is_linearizable());

        // Two CAS from the same expected value cannot both succeed.
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .cas(2, Some(1), 2, true, (2, 5))
            .cas(3, Some(1), 3, true, (3, 6));
        assert!(matches!(verdict(&b), CheckResult::NotLinearizable(_)));

        // A failed CAS while the expected value was certainly present is a violation.
        let mut b = Builder::default();
        b.put(1, 1, (0, 1)).cas(2, Some(1), 2, false, (2, 3));
        assert!(matches!(verdict(&b), CheckResult::NotLinearizable(_)));

        // An unknown CAS whose condition did not hold changes nothing.
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .op(
                2,
                0,
                Input::Cas {
                    expected: Some(9),
                    new: 2,
                },
                Outcome::Unknown,
                2,
                None,
            )
            .get(3, Some(2), (4, 5));
        assert!(matches!(verdict(&b), CheckResult::NotLinearizable(_)));
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut b = Builder::default();
        b.op(
            1,
            1,
            Input::Put(1),
            Outcome::Ok(Output::Written),
            0,
            Some(1),
        )
        .op(
            1,
            2,
            Input::Put(2),
            Outcome::Ok(Output::Written),
            2,
            Some(3),
        )
        .op(
            2,
            1,
            Input::Get,
            Outcome::Ok(Output::Value(Some(1))),
            4,
            Some(5),
        )
        .op(
            2,
            2,
            Input::Get,
            Outcome::Ok(Output::Value(Some(2))),
            6,
            Some(7),
        );
        assert!(verdict(&b).is_linearizable());
        b.op(
            3,
            2,
            Input::Get,
            Outcome::Ok(Output::Value(Some(1))),
            8,
            Some(9),
        );
        match verdict(&b) {
            CheckResult::NotLinearizable(v) => assert_eq!(v.key, 2),
            other => panic!("expected a violation on key 2, got {other}"),
        }
    }

    #[test]
    fn failed_reads_are_ignored() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1))
            .op(2, 0, Input::Get, Outcome::Failed, 2, Some(3))
            .op(2, 0, Input::Get, Outcome::Unknown, 4, None);
        assert!(verdict(&b).is_linearizable());
    }

    #[test]
    fn malformed_histories_are_unknown() {
        let mut b = Builder::default();
        b.op(
            1,
            0,
            Input::Put(1),
            Outcome::Ok(Output::Cas(true)),
            0,
            Some(1),
        );
        assert!(matches!(verdict(&b), CheckResult::Unknown(_)));
    }

    /// Many concurrent unknown writes and a final read of a never-written value: refuting it
    /// needs every subset of unknown writes, so a small budget runs out.
    fn hard_history(writers: u64) -> History {
        let mut b = Builder::default();
        for client in 0..writers {
            b.put_unknown(client, client + 1, client);
        }
        for client in 0..writers {
            b.get(
                100 + client,
                Some(client + 1),
                (writers + 2 * client, writers + 2 * client + 1),
            );
        }
        b.get(999, Some(10_000), (10 * writers, 10 * writers + 1));
        b.build()
    }

    #[test]
    fn budget_exhaustion_is_unknown_not_a_pass() {
        let options = CheckOptions {
            max_steps: 50,
            max_time: None,
        };
        let result = check(&hard_history(12), &options);
        assert!(matches!(result, CheckResult::Unknown(_)), "{result}");
        assert!(!result.is_linearizable());
        assert!(result.to_string().contains("budget"), "{result}");
    }

    /// A legal history of `n` operations by 8 clients on one key: each operation takes effect
    /// at a distinct instant inside its span, and spans overlap at random.
    fn generated_history(seed: u64, n: usize) -> History {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut b = Builder::default();
        let mut state = None;
        let mut next_value = 1;
        for i in 0..n as u64 {
            // Linearization point at t; invocations at 2 mod 4 before it, completions at 0 mod 4 after.
            let t = 4 * (3 * i) + 3;
            let start = (t - 1).saturating_sub(4 * rng.gen_range(0..3u64));
            let end = t + 1 + 4 * rng.gen_range(0..6u64);
            let client = rng.gen_range(0..8u64);
            match rng.gen_range(0..3) {
                0 => {
                    b.get(client, state, (start, end));
                }
                1 => {
                    b.put(client, next_value, (start, end));
                    state = Some(next_value);
                    next_value += 1;
                }
                _ => {
                    let expected = if rng.gen_bool(0.5) { state } else { Some(0) };
                    let held = expected == state;
                    b.cas(client, expected, next_value, held, (start, end));
                    if held {
                        state = Some(next_value);
                    }
                    next_value += 1;
                }
            }
        }
        b.build()
    }

    #[test]
    fn memoization_keeps_large_linearizable_histories_cheap() {
        let options = CheckOptions {
            max_steps: 2_000_000,
            max_time: None,
        };
        for seed in 0..3 {
            let history = generated_history(seed, 2000);
            assert_eq!(
                check(&history, &options),
                CheckResult::Linearizable,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn a_single_stale_read_in_a_large_history_is_refuted_within_budget() {
        let options = CheckOptions {
            max_steps: 2_000_000,
            max_time: None,
        };
        let history = generated_history(11, 2000);
        let mut ops = history.ops().to_vec();
        let last_read = ops
            .iter()
            .rposition(|op| op.input == Input::Get)
            .expect("a read");
        // The first value ever written was overwritten long before the last read began.
        ops[last_read].outcome = Outcome::Ok(Output::Value(Some(1)));
        match check(&History::from_ops(ops), &options) {
            CheckResult::NotLinearizable(violation) => assert_eq!(violation.key, 0),
            other => panic!("expected a violation, got {other}"),
        }
    }
}
