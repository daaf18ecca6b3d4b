//! Crash consistency under a real SIGKILL.
//!
//! The test re-executes its own binary as a child (selected by `REDB_CRASH_CHILD`) that runs
//! one writer thread per Raft group, all sharing one file (so their writes are group-committed):
//! each thread appends, overwrites suffixes, purges and saves hard state in a loop, printing
//! `B` before each write and `A` once it returned `Ok`. The parent kills the child with SIGKILL
//! at seeded random moments, reopens the file and checks that it holds exactly the
//! acknowledged writes, plus possibly the one write per group that was in flight, applied whole.
//!
//! `REDB_KILLS=<n>` sets the number of kills (default 50); `REDB_KILL_SEED=<n>` replays a run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftengine::{LogEntry, LogStore};
use raftengine_redb::RedbLogStore;

const GROUPS: u64 = 3;
const CHILD_ENV: &str = "REDB_CRASH_CHILD";
const CHILD_SEED_ENV: &str = "REDB_CRASH_CHILD_SEED";
/// An orphaned child stops on its own after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(20);

/// xorshift64*: reproducible from a seed, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn payload(group: u64, index: u64, term: u64, nonce: u64) -> Bytes {
    let head = format!("g{group} i{index} t{term} n{nonce} ");
    // Every 16th entry is large, so commits span many pages and a torn write has room to show.
    let len = if nonce.is_multiple_of(16) {
        48 * 1024
    } else {
        40
    };
    let mut bytes = head.into_bytes();
    while bytes.len() < len {
        bytes.push(b'a' + (bytes.len() as u64 % 26) as u8);
    }
    Bytes::from(bytes)
}

/// One write, as printed by the child and replayed by the parent.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Append {
        first: u64,
        count: u64,
        term: u64,
        nonce: u64,
    },
    Purge {
        index: u64,
        term: u64,
    },
    HardState {
        nonce: u64,
    },
}

impl Op {
    fn entries(&self, group: u64) -> Vec<LogEntry> {
        match *self {
            Op::Append {
                first,
                count,
                term,
                nonce,
            } => (0..count)
                .map(|k| LogEntry {
                    index: first + k,
                    term,
                    payload: payload(group, first + k, term, nonce + k),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    fn to_line(&self, group: u64) -> String {
        match self {
            Op::Append {
                first,
                count,
                term,
                nonce,
            } => format!("B {group} append {first} {count} {term} {nonce}"),
            Op::Purge { index, term } => format!("B {group} purge {index} {term}"),
            Op::HardState { nonce } => format!("B {group} hs {nonce}"),
        }
    }

    fn parse(words: &[&str]) -> Option<Op> {
        let num = |i: usize| words.get(i)?.parse::<u64>().ok();
        match *words.first()? {
            "append" => Some(Op::Append {
                first: num(1)?,
                count: num(2)?,
                term: num(3)?,
                nonce: num(4)?,
            }),
            "purge" => Some(Op::Purge {
                index: num(1)?,
                term: num(2)?,
            }),
            "hs" => Some(Op::HardState { nonce: num(1)? }),
            _ => None,
        }
    }
}

/// What one group's store must hold: the effect of its acknowledged writes.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    log: BTreeMap<u64, LogEntry>,
    purged: Option<(u64, u64)>,
    hard_state: Option<Bytes>,
}

impl Model {
    fn apply(&mut self, group: u64, op: &Op) {
        match op {
            Op::Append { first, .. } => {
                self.log.split_off(first);
                for e in op.entries(group) {
                    self.log.insert(e.index, e);
                }
            }
            Op::Purge { index, term } => {
                self.log = self.log.split_off(&(index + 1));
                if self.purged.is_none_or(|(p, _)| p < *index) {
                    self.purged = Some((*index, *term));
                }
            }
            Op::HardState { nonce } => {
                self.hard_state = Some(Bytes::from(format!("hard state {group} {nonce}")));
            }
        }
    }

    /// A short description for failure messages (payloads can be 48 KiB).
    fn summary(&self) -> String {
        let entries: Vec<String> = self
            .log
            .values()
            .map(|e| {
                let head = String::from_utf8_lossy(&e.payload[..e.payload.len().min(24)]);
                format!("{}@{} {} B {head:?}", e.index, e.term, e.payload.len())
            })
            .collect();
        format!(
            "purged {:?}, hard state {:?}, entries [{}]",
            self.purged,
            self.hard_state,
            entries.join(", ")
        )
    }

    fn read(store: &dyn LogStore) -> raftengine::Result<Model> {
        let state = store.log_state()?;
        let log = store
            .entries(state.first_index(), u64::MAX)?
            .into_iter()
            .map(|e| (e.index, e))
            .collect();
        Ok(Model {
            log,
            purged: state.purged,
            hard_state: store.hard_state()?,
        })
    }
}

/// The child: one writer thread per group until killed (or its lifetime runs out).
fn child(path: &Path, seed: u64) {
    let file = RedbLogStore::open(path).expect("child: open");
    println!("READY");
    let threads: Vec<_> = (0..GROUPS)
        .map(|group| {
            let store = file.group(group);
            std::thread::spawn(move || child_group(&store, group, seed))
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
}

fn child_group(store: &dyn LogStore, group: u64, seed: u64) {
    let mut rng = Rng::new(seed ^ (group << 40));
    let started = Instant::now();
    let state = store.log_state().expect("child: log state");
    let mut last = state.last_index();
    let first = state.first_index();
    let mut term = state.last.map_or(1, |(_, t)| t);
    let mut first_index = first;
    while started.elapsed() < CHILD_LIFETIME {
        let roll = rng.below(100);
        let op = if roll < 70 || last < first_index + 6 {
            Op::Append {
                first: last + 1,
                count: 1 + rng.below(6),
                term,
                nonce: rng.next() >> 16,
            }
        } else if roll < 82 {
            term += 1;
            let back = 1 + rng.below(4);
            Op::Append {
                first: (last + 1 - back).max(first_index),
                count: 1 + rng.below(4),
                term,
                nonce: rng.next() >> 16,
            }
        } else if roll < 92 {
            Op::HardState {
                nonce: rng.next() >> 16,
            }
        } else {
            let index = first_index + rng.below(last - first_index - 4);
            let Ok(Some(t)) = store.term(index) else {
                continue;
            };
            Op::Purge { index, term: t }
        };
        println!("{}", op.to_line(group));
        let result = match &op {
            Op::Append { .. } => store.append(&op.entries(group)),
            Op::Purge { index, term } => store.purge_to(*index, *term),
            Op::HardState { nonce } => {
                store.save_hard_state(Bytes::from(format!("hard state {group} {nonce}")))
            }
        };
        if let Err(err) = result {
            println!("E {group} {err}");
            return;
        }
        println!("A {group}");
        match op {
            Op::Append { first, count, .. } => last = first + count - 1,
            Op::Purge { index, .. } => first_index = first_index.max(index + 1),
            Op::HardState { .. } => {}
        }
    }
}

/// Kills and reaps the child however the parent's test ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "the child process of acknowledged_writes_survive_sigkill, which runs it"]
fn crash_child() {
    if let (Ok(path), Ok(seed)) = (std::env::var(CHILD_ENV), std::env::var(CHILD_SEED_ENV)) {
        child(&PathBuf::from(path), seed.parse().expect("child seed"));
    }
}

struct Run {
    acked: Vec<(u64, Op)>,
    pending: BTreeMap<u64, Op>,
    ready: bool,
}

fn run_child(path: &Path, seed: u64, kill_after: Duration) -> Run {
    let exe = std::env::current_exe().expect("current test binary");
    let child = Command::new(exe)
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, path)
        .env(CHILD_SEED_ENV, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let mut guard = ChildGuard(child);
    let stdout = guard.0.stdout.take().expect("child stdout");
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut collected = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ready = false;
    while !ready && Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                // libtest may print its own "test crash_child ... " in front of the first line.
                ready = line.ends_with("READY");
                collected.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    std::thread::sleep(kill_after);
    // Dropping the guard sends SIGKILL and reaps the child; the pipe then reaches EOF.
    drop(guard);
    let _ = reader.join();
    collected.extend(lines.try_iter());

    let mut run = Run {
        acked: Vec::new(),
        pending: BTreeMap::new(),
        ready,
    };
    for line in collected {
        let words: Vec<&str> = line.split_whitespace().collect();
        let group = words.get(1).and_then(|g| g.parse::<u64>().ok());
        match (words.first().copied(), group) {
            (Some("B"), Some(group)) => {
                let op = Op::parse(&words[2..]).unwrap_or_else(|| panic!("bad line {line}"));
                run.pending.insert(group, op);
            }
            (Some("A"), Some(group)) => {
                let op = run.pending.remove(&group).expect("an ack without a write");
                run.acked.push((group, op));
            }
            (Some("E"), _) => panic!("the child's write failed: {line}"),
            _ => {}
        }
    }
    run
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let kills: u64 = std::env::var("REDB_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("REDB_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("REDB_KILL_SEED={seed} REDB_KILLS={kills}");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.redb");
    let mut rng = Rng::new(seed);
    let mut models: Vec<Model> = vec![Model::default(); GROUPS as usize];
    let started = Instant::now();
    let (mut acked_total, mut in_flight_applied) = (0usize, 0usize);
    for kill in 0..kills {
        let kill_after = Duration::from_millis(match rng.below(10) {
            0 => 0,
            1..=3 => rng.below(5),
            _ => 5 + rng.below(60),
        });
        let run = run_child(&path, rng.next(), kill_after);
        assert!(
            run.ready,
            "kill {kill}: the child never opened the file (seed {seed})"
        );
        acked_total += run.acked.len();
        for (group, op) in &run.acked {
            models[*group as usize].apply(*group, op);
        }
        let file = RedbLogStore::open(&path)
            .unwrap_or_else(|e| panic!("kill {kill}: reopen failed: {e} (seed {seed})"));
        for group in 0..GROUPS {
            let found = Model::read(&file.group(group)).unwrap_or_else(|e| {
                panic!("kill {kill}: group {group}: read failed: {e} (seed {seed})")
            });
            let expected = &models[group as usize];
            if &found == expected {
                continue;
            }
            let Some(op) = run.pending.get(&group) else {
                panic!(
                    "kill {kill}: group {group} differs from its acknowledged writes \
                     (seed {seed}):\nexpected {}\nfound    {}",
                    expected.summary(),
                    found.summary()
                );
            };
            let mut with_pending = expected.clone();
            with_pending.apply(group, op);
            assert!(
                found == with_pending,
                "kill {kill}: group {group} holds neither the acknowledged writes nor them plus \
                 the in-flight {op:?} (seed {seed}):\nexpected {}\nfound    {}",
                expected.summary(),
                found.summary()
            );
            in_flight_applied += 1;
            models[group as usize] = with_pending;
        }
    }
    println!(
        "{kills} kills in {:?}: {acked_total} acknowledged writes checked, \
         {in_flight_applied} in-flight writes found complete",
        started.elapsed()
    );
    assert!(
        acked_total > 0,
        "no write was ever acknowledged: the test checked nothing"
    );
}
