//! Asynchronous persistence: the node's store writes run in order on a thread of their own,
//! so the driver keeps stepping raft-rs (acknowledgements, new proposals) while a sync runs.
//!
//! raft-rs supports this with `advance_append_async` and `on_persist_ready`: a ready's entries
//! and hard state go to the writer, the messages that may only leave after they are durable
//! wait in the driver, and the writer reports each completed ready number back. raft-rs reads
//! entries it handed over from the `Storage` trait at once, so they stay readable from memory
//! (the *tail*) until the store has them. Readies queued while a sync runs are written
//! together: one sync for all of them.
//!
//! Every other store write (snapshots, purges, a hard state outside a ready) joins the same
//! queue and is waited for, so the store sees one engine's writes one at a time and in order.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use raft::eraftpb::Entry;
use raftengine::{Error, ErrorKind, LogEntry, LogStore, Result};
use tokio::sync::Notify;

/// A write the driver waits for.
pub(crate) type StoreWrite = Box<dyn FnOnce(&dyn LogStore) -> Result<()> + Send>;

enum Job {
    /// A ready's entries and, if its term or vote changed, the encoded hard state.
    Ready {
        entries: Vec<LogEntry>,
        meta: Option<Bytes>,
        number: u64,
        seq: u64,
    },
    Write {
        run: StoreWrite,
        reply: SyncSender<Result<()>>,
    },
}

/// The outcome of the readies up to `number`.
#[derive(Debug)]
pub(crate) struct Persisted {
    pub(crate) number: u64,
    pub(crate) result: Result<()>,
}

/// Entries handed to the writer and not yet durable, oldest first, each with its submission
/// number. A ready's entries replace the tail from their first index on (the conflict rule), so
/// the tail is ordered by index and by submission at once.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    entries: VecDeque<(u64, Entry)>,
    next_seq: u64,
}

impl Tail {
    /// Index of the first pending entry.
    pub(crate) fn first(&self) -> Option<u64> {
        self.entries.front().map(|(_, e)| e.index)
    }

    /// Index and term of the last pending entry.
    pub(crate) fn last(&self) -> Option<(u64, u64)> {
        self.entries.back().map(|(_, e)| (e.index, e.term))
    }

    /// The pending entry at `index`.
    pub(crate) fn get(&self, index: u64) -> Option<&Entry> {
        let first = self.first()?;
        let at = usize::try_from(index.checked_sub(first)?).ok()?;
        self.entries.get(at).map(|(_, e)| e)
    }

    fn push(&mut self, entries: &[Entry]) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(first) = entries.first() {
            let keep = self.entries.partition_point(|(_, e)| e.index < first.index);
            self.entries.truncate(keep);
            self.entries
                .extend(entries.iter().map(|e| (seq, e.clone())));
        }
        seq
    }

    fn release(&mut self, up_to_seq: u64) {
        while self.entries.front().is_some_and(|(s, _)| *s <= up_to_seq) {
            self.entries.pop_front();
        }
    }
}

pub(crate) fn lock_tail(tail: &Mutex<Tail>) -> MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(|p| p.into_inner())
}

/// The driver's end of the completions: a queue plus a wake-up.
pub(crate) struct Completions {
    pub(crate) queue: Receiver<Persisted>,
    pub(crate) wake: Arc<Notify>,
}

/// The writer of one node's store.
pub(crate) struct Persister {
    jobs: Mutex<Sender<Job>>,
    tail: Arc<Mutex<Tail>>,
}

impl std::fmt::Debug for Persister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persister").finish_non_exhaustive()
    }
}

fn stopped() -> Error {
    Error::new(ErrorKind::Storage).with_context("the store writer thread has stopped")
}

impl Persister {
    /// Starts the writer thread. It ends once the persister is dropped and the queue is done.
    pub(crate) fn start(store: Arc<dyn LogStore>) -> Result<(Self, Completions)> {
        let (jobs, queue) = mpsc::channel();
        let (done, completions) = mpsc::channel();
        let wake = Arc::new(Notify::new());
        let tail = Arc::new(Mutex::new(Tail::default()));
        {
            let (wake, tail) = (Arc::clone(&wake), Arc::clone(&tail));
            std::thread::Builder::new()
                .name("raft-log-io".into())
                .spawn(move || serve(&*store, &tail, &queue, &done, &wake))
                .map_err(|e| {
                    Error::new(ErrorKind::Storage)
                        .with_context("cannot start the store writer thread")
                        .with_source(e)
                })?;
        }
        let persister = Self {
            jobs: Mutex::new(jobs),
            tail,
        };
        let completions = Completions {
            queue: completions,
            wake,
        };
        Ok((persister, completions))
    }

    /// The pending tail, for reads.
    pub(crate) fn tail(&self) -> MutexGuard<'_, Tail> {
        lock_tail(&self.tail)
    }

    /// Queues a ready: its entries become readable from the tail at once.
    pub(crate) fn submit(
        &self,
        raw: &[Entry],
        entries: Vec<LogEntry>,
        meta: Option<Bytes>,
        number: u64,
    ) -> Result<()> {
        let seq = self.tail().push(raw);
        let job = Job::Ready {
            entries,
            meta,
            number,
            seq,
        };
        self.send(job)
    }

    /// Queues `run` behind everything submitted so far; the answer arrives on the returned
    /// receiver.
    pub(crate) fn enqueue(&self, run: StoreWrite) -> Result<Receiver<Result<()>>> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(Job::Write { run, reply })?;
        Ok(answer)
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| stopped())
    }
}

/// Runs a store call; a panic inside the store stops the node (`Fatal`) instead of the thread
/// dying with writes in flight.
fn guarded(write: impl FnOnce() -> Result<()>) -> Result<()> {
    catch_unwind(AssertUnwindSafe(write)).unwrap_or_else(|_| {
        Err(Error::new(ErrorKind::Fatal).with_context("the log store panicked in a write"))
    })
}

fn serve(
    store: &dyn LogStore,
    tail: &Mutex<Tail>,
    jobs: &Receiver<Job>,
    done: &Sender<Persisted>,
    wake: &Notify,
) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        match job {
            Job::Ready {
                mut entries,
                mut meta,
                mut number,
                mut seq,
            } => {
                // Readies queued while the previous write synced are written as one.
                while let Ok(job) = jobs.try_recv() {
                    match job {
                        Job::Ready {
                            entries: more,
                            meta: later_meta,
                            number: later,
                            seq: later_seq,
                        } => {
                            if let Some(first) = more.first() {
                                let keep = entries.partition_point(|e| e.index < first.index);
                                entries.truncate(keep);
                                entries.extend(more);
                            }
                            meta = later_meta.or(meta);
                            number = later;
                            seq = later_seq;
                        }
                        other => {
                            next = Some(other);
                            break;
                        }
                    }
                }
                let result = guarded(|| {
                    if !entries.is_empty() {
                        store.append(&entries)?;
                    }
                    match meta {
                        Some(meta) => store.save_hard_state(meta),
                        None => Ok(()),
                    }
                });
                // Durable, or failed for good (the node stops): the store is the truth now.
                lock_tail(tail).release(seq);
                if done.send(Persisted { number, result }).is_err() {
                    return;
                }
                wake.notify_one();
            }
            Job::Write { run, reply } => {
                let _ = reply.send(guarded(|| run(store)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn a_panicking_store_write_is_fatal_not_a_dead_thread() {
        let err = guarded(|| panic!("disk driver bug")).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Fatal);
        assert!(guarded(|| Ok(())).is_ok());
    }

    #[test]
    fn the_tail_applies_the_conflict_rule_and_releases_in_submission_order() {
        let mut tail = Tail::default();
        let a = tail.push(&[entry(5, 1), entry(6, 1), entry(7, 1)]);
        let b = tail.push(&[entry(6, 2)]);
        assert_eq!(tail.first(), Some(5));
        assert_eq!(tail.last(), Some((6, 2)));
        assert_eq!(tail.get(6).map(|e| e.term), Some(2));
        assert!(tail.get(7).is_none());
        assert!(tail.get(4).is_none());
        tail.release(a);
        assert_eq!(tail.first(), Some(6));
        tail.release(b);
        assert_eq!(tail.first(), None);
        // A ready with no entries takes a number but changes nothing.
        let c = tail.push(&[]);
        tail.release(c);
        assert_eq!(tail.last(), None);
    }
}
