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
//! The queue and its thread are `raftengine::adapter::LogWriter`. Every other store write
//! (snapshots, purges, a hard state outside a ready) joins the same queue and is waited for, so the store sees one engine's writes one at a time and in order.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use raft::eraftpb::Entry;
use raftengine::adapter::LogWriter;
use raftengine::{LogEntry, LogStore, Result};
use tokio::sync::Notify;

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
    /// Each append carries its ready's `(number, tail submission)`.
    writer: LogWriter<(u64, u64)>,
    tail: Arc<Mutex<Tail>>,
}

impl std::fmt::Debug for Persister {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persister").finish_non_exhaustive()
    }
}

impl Persister {
    /// Starts the writer thread. It ends once the persister is dropped and the queue is done.
    pub(crate) fn start(store: Arc<dyn LogStore>) -> Result<(Self, Completions)> {
        let (done, completions): (Sender<Persisted>, _) = mpsc::channel();
        let wake = Arc::new(Notify::new());
        let tail = Arc::new(Mutex::new(Tail::default()));
        let on_durable = {
            let (wake, tail) = (Arc::clone(&wake), Arc::clone(&tail));
            move |readies: Vec<(u64, u64)>, result| {
                let Some(&(number, seq)) = readies.last() else {
                    return;
                };
                // Durable, or failed for good (the node stops): the store is the truth now.
                lock_tail(&tail).release(seq);
                if done.send(Persisted { number, result }).is_ok() {
                    wake.notify_one();
                }
            }
        };
        let writer = LogWriter::start("raft-log-io", store, on_durable)?;
        let completions = Completions {
            queue: completions,
            wake,
        };
        Ok((Self { writer, tail }, completions))
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
        self.writer.append(entries, meta, (number, seq))
    }

    /// Queues `run` behind everything submitted so far; the answer arrives on the returned
    /// receiver.
    pub(crate) fn enqueue(
        &self,
        run: impl FnOnce(&dyn LogStore) -> Result<()> + Send + 'static,
    ) -> Result<Receiver<Result<()>>> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.writer.write(run, move |result| {
            let _ = reply.send(result);
        })?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_entries::entry;

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
