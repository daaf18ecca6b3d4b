//! [`LogWriter`]: one engine's store writes, in order, on a thread of their own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::{Error, ErrorKind, Result};
use crate::log_store::{LogEntry, LogStore};

/// A store write the caller waits for, and where its answer goes.
type Write = Box<dyn FnOnce(&dyn LogStore) -> Result<()> + Send>;
type Reply = Box<dyn FnOnce(Result<()>) + Send>;

enum Job<D> {
    Append {
        entries: Vec<LogEntry>,
        hard_state: Option<Bytes>,
        done: D,
    },
    Write {
        run: Write,
        reply: Reply,
    },
}

/// Runs one engine's store writes in submission order on a dedicated thread, so the engine's
/// consensus task never blocks on a sync.
///
/// Appends do not wait: appends queued while the previous write synced go to the store as one
/// [`LogStore::append`] (Raft's conflict rule applied among them), followed by the newest hard
/// state queued with them, and `on_durable` then runs once with the `done` token of each, oldest
/// first. Any other write ([`LogWriter::write`]) runs after everything queued before it. A panic
/// inside the store becomes a [`ErrorKind::Fatal`] result instead of a dead thread.
///
/// The thread ends once the writer is dropped and its queue is done.
pub struct LogWriter<D> {
    jobs: Mutex<Sender<Job<D>>>,
}

impl<D> std::fmt::Debug for LogWriter<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter").finish_non_exhaustive()
    }
}

fn stopped() -> Error {
    Error::new(ErrorKind::Storage).with_context("the store writer thread has stopped")
}

impl<D: Send + 'static> LogWriter<D> {
    /// Starts the thread, named `name`, writing to `store`.
    pub fn start(
        name: &str,
        store: Arc<dyn LogStore>,
        on_durable: impl FnMut(Vec<D>, Result<()>) + Send + 'static,
    ) -> Result<Self> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || serve(&*store, &queue, on_durable))
            .map_err(|e| {
                Error::new(ErrorKind::Storage)
                    .with_context("cannot start the store writer thread")
                    .with_source(e)
            })?;
        Ok(Self {
            jobs: Mutex::new(jobs),
        })
    }

    /// Queues contiguous `entries` (possibly none) and, if given, a new hard state to write
    /// after them; `done` comes back through `on_durable`.
    pub fn append(&self, entries: Vec<LogEntry>, hard_state: Option<Bytes>, done: D) -> Result<()> {
        self.send(Job::Append {
            entries,
            hard_state,
            done,
        })
    }

    /// Queues `run` behind everything submitted so far; `reply` receives its result on the
    /// writer thread.
    pub fn write(
        &self,
        run: impl FnOnce(&dyn LogStore) -> Result<()> + Send + 'static,
        reply: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<()> {
        self.send(Job::Write {
            run: Box::new(run),
            reply: Box::new(reply),
        })
    }

    fn send(&self, job: Job<D>) -> Result<()> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| stopped())
    }
}

/// Runs a store call; a panic inside the store is a `Fatal` result.
fn guarded(write: impl FnOnce() -> Result<()>) -> Result<()> {
    catch_unwind(AssertUnwindSafe(write)).unwrap_or_else(|_| {
        Err(Error::new(ErrorKind::Fatal).with_context("the log store panicked in a write"))
    })
}

fn serve<D>(
    store: &dyn LogStore,
    jobs: &Receiver<Job<D>>,
    mut on_durable: impl FnMut(Vec<D>, Result<()>),
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
            Job::Append {
                mut entries,
                mut hard_state,
                done,
            } => {
                let mut dones = vec![done];
                while let Ok(job) = jobs.try_recv() {
                    match job {
                        Job::Append {
                            entries: more,
                            hard_state: later,
                            done,
                        } => {
                            if let Some(first) = more.first() {
                                let keep = entries.partition_point(|e| e.index < first.index);
                                entries.truncate(keep);
                                entries.extend(more);
                            }
                            hard_state = later.or(hard_state);
                            dones.push(done);
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
                    match hard_state {
                        Some(state) => store.save_hard_state(state),
                        None => Ok(()),
                    }
                });
                on_durable(dones, result);
            }
            Job::Write { run, reply } => reply(guarded(|| run(store))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;
    use crate::log_store::MemLogStore;

    fn entry(index: u64, term: u64) -> LogEntry {
        LogEntry {
            index,
            term,
            payload: Bytes::new(),
        }
    }

    #[test]
    fn writes_land_in_order_and_a_panicking_store_is_fatal() {
        let mem = MemLogStore::new();
        let (durable, reports) = sync_channel(16);
        let writer = LogWriter::start("test-log-io", Arc::new(mem.clone()), move |done, result| {
            let _ = durable.send((done, result));
        })
        .unwrap();
        writer
            .append(vec![entry(1, 1), entry(2, 1), entry(3, 1)], None, 'a')
            .unwrap();
        // The conflict rule applies to appends merged into one write as to the store's.
        writer
            .append(vec![entry(2, 2)], Some(Bytes::from_static(b"hs")), 'b')
            .unwrap();
        let (answer, answered) = sync_channel(1);
        writer
            .write(
                |store| store.purge_to(1, 1),
                move |result| {
                    let _ = answer.send(result);
                },
            )
            .unwrap();
        let mut done = Vec::new();
        while done.len() < 2 {
            let (tokens, result) = reports.recv().unwrap();
            result.unwrap();
            done.extend(tokens);
        }
        assert_eq!(done, ['a', 'b']);
        answered.recv().unwrap().unwrap();
        let stored: Vec<_> = mem
            .entries(2, 3)
            .unwrap()
            .iter()
            .map(|e| (e.index, e.term))
            .collect();
        assert_eq!(stored, [(2, 2)]);
        assert_eq!(mem.len(), 1);
        assert_eq!(mem.hard_state().unwrap(), Some(Bytes::from_static(b"hs")));

        let (answer, answered) = sync_channel(1);
        writer
            .write(
                |_| panic!("disk driver bug"),
                move |result| {
                    let _ = answer.send(result);
                },
            )
            .unwrap();
        let err = answered.recv().unwrap().unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Fatal);
    }
}
