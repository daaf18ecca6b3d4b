//! Per-shard leases: one [`Lease`] per Raft group. A loss in one group touches only that
//! group's lease; a read that spans groups fences every group it touches.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use raftengine::{Applied, Engine, Error, ErrorKind, RejectReason, Result};

use crate::duration::LeaseConfig;
use crate::metrics::ReadPath;
use crate::reader::{Lease, ReadOutcome};

/// How many fence-and-recheck passes a multi-group read makes before it gives up.
pub const MULTI_READ_ATTEMPTS: usize = 3;

/// A read that spanned several groups: the value and the path each group was fenced by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiReadOutcome<T, G> {
    /// What the read closure returned.
    pub value: T,
    /// Every group touched, in order, with the path that fenced it.
    pub paths: Vec<(G, ReadPath)>,
}

impl<T, G> MultiReadOutcome<T, G> {
    /// True when every group was served on the fast path.
    pub fn all_fast(&self) -> bool {
        self.paths.iter().all(|(_, path)| *path == ReadPath::Fast)
    }
}

/// One lease per group, keyed by group id `G`.
pub struct ShardedLeases<G = u64> {
    groups: BTreeMap<G, Lease>,
}

impl<G: fmt::Debug> fmt::Debug for ShardedLeases<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.groups.iter()).finish()
    }
}

impl<G> Default for ShardedLeases<G> {
    fn default() -> Self {
        Self {
            groups: BTreeMap::new(),
        }
    }
}

impl<G: Ord + Clone + fmt::Debug> ShardedLeases<G> {
    /// No groups yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One lease per `(group, engine)`, each with `config`.
    pub fn from_engines(
        engines: impl IntoIterator<Item = (G, Arc<dyn Engine>)>,
        config: &LeaseConfig,
    ) -> Result<Self> {
        let mut leases = Self::new();
        for (group, engine) in engines {
            leases.insert(group, Lease::new(engine, config.clone())?);
        }
        Ok(leases)
    }

    /// Adds (or replaces) the lease of `group`.
    pub fn insert(&mut self, group: G, lease: Lease) -> Option<Lease> {
        self.groups.insert(group, lease)
    }

    /// Removes the lease of `group`.
    pub fn remove(&mut self, group: &G) -> Option<Lease> {
        self.groups.remove(group)
    }

    /// The lease of `group`.
    pub fn lease(&self, group: &G) -> Option<&Lease> {
        self.groups.get(group)
    }

    /// Every group id, in order.
    pub fn groups(&self) -> impl Iterator<Item = &G> {
        self.groups.keys()
    }

    fn get(&self, group: &G) -> Result<&Lease> {
        self.groups.get(group).ok_or_else(|| {
            Error::rejected(RejectReason::InvalidConfig(format!(
                "no lease for shard group {group:?}"
            )))
        })
    }

    /// A read within one group.
    pub async fn read<R>(&self, group: &G, read: impl FnOnce() -> R) -> Result<ReadOutcome<R>> {
        self.get(group)?.read(read).await
    }

    /// A proposal to one group, with that group's lease bookkeeping.
    pub async fn propose(&self, group: &G, command: Bytes) -> Result<Applied> {
        self.get(group)?.propose(command).await
    }

    /// A read spanning `groups` (duplicates are ignored): every group is fenced — on its fast
    /// path if its lease is valid, else by its own `linearizable_read()`; stale groups run
    /// their rounds concurrently — and only then does `read` run. Fails closed: if any group
    /// fails, the read does not run and the first failing group's error (in group order) is
    /// returned.
    ///
    /// A group fenced on its fast path early may see its lease run out while a slower group
    /// finishes its round, and then another leader could commit in it before the read. So right
    /// before `read` runs, every fast-fenced group is checked again (all in one synchronous
    /// pass, with no await between the checks and the read); a group whose lease no longer
    /// holds is fenced again, by a round if need be. After [`MULTI_READ_ATTEMPTS`] passes
    /// without every fast group still valid, the read fails with `Timeout` and does not run.
    pub async fn read_groups<R>(
        &self,
        groups: &[G],
        read: impl FnOnce() -> R,
    ) -> Result<MultiReadOutcome<R, G>> {
        let touched: BTreeSet<&G> = groups.iter().collect();
        let mut leases = Vec::with_capacity(touched.len());
        for group in touched {
            leases.push((group.clone(), self.get(group)?.clone()));
        }
        let mut paths: Vec<Option<ReadPath>> = vec![None; leases.len()];
        for _ in 0..MULTI_READ_ATTEMPTS {
            let fences: Vec<Pin<Box<dyn Future<Output = Result<ReadPath>> + Send>>> = leases
                .iter()
                .zip(&paths)
                .filter(|(_, path)| path.is_none())
                .map(|((_, lease), _)| {
                    let lease = lease.clone();
                    Box::pin(async move { lease.fence().await }) as Pin<Box<_>>
                })
                .collect();
            let mut results = join_all(fences).await.into_iter();
            for path in paths.iter_mut().filter(|path| path.is_none()) {
                *path = Some(results.next().expect("one result per fence")?);
            }
            // The re-check: synchronous from here to `read`.
            let mut all_valid = true;
            for ((_, lease), path) in leases.iter().zip(paths.iter_mut()) {
                if *path == Some(ReadPath::Fast) && lease.check().is_err() {
                    *path = None;
                    all_valid = false;
                }
            }
            if all_valid {
                let paths = leases
                    .into_iter()
                    .zip(paths)
                    .map(|((group, _), path)| (group, path.expect("every group fenced")))
                    .collect();
                return Ok(MultiReadOutcome {
                    value: read(),
                    paths,
                });
            }
        }
        Err(Error::new(ErrorKind::Timeout).with_context(format!(
            "a multi-group read could not find every group's lease valid at once in \
             {MULTI_READ_ATTEMPTS} attempts"
        )))
    }

    /// A read spanning every group.
    pub async fn read_all<R>(&self, read: impl FnOnce() -> R) -> Result<MultiReadOutcome<R, G>> {
        let all: Vec<G> = self.groups.keys().cloned().collect();
        self.read_groups(&all, read).await
    }

    /// Shuts every group's lease down.
    pub async fn shutdown(&self) {
        for lease in self.groups.values() {
            lease.shutdown().await;
        }
    }
}

/// Polls every future to completion concurrently; results in input order.
async fn join_all<T>(futures: Vec<Pin<Box<dyn Future<Output = T> + Send>>>) -> Vec<T> {
    let mut pending: Vec<Option<Pin<Box<dyn Future<Output = T> + Send>>>> =
        futures.into_iter().map(Some).collect();
    let mut done: Vec<Option<T>> = pending.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut all_done = true;
        for (slot, out) in pending.iter_mut().zip(done.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => {
                        *out = Some(value);
                        *slot = None;
                    }
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
