//! Leader-loss callbacks: registration with drop-to-deregister, and edge detection that fires
//! exactly once per leader→non-leader transition. Adapters share this so every backend has the
//! same delivery guarantees.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::types::{LeaderLoss, LossCause};

/// A leader-loss callback. It runs on the engine's task: it must not block.
pub type LeaderLossCallback = Box<dyn Fn(LeaderLoss) + Send + Sync + 'static>;

/// Keeps a leader-loss callback registered; dropping it deregisters the callback.
#[must_use = "dropping the subscription deregisters the callback"]
pub struct Subscription {
    registry: Weak<Mutex<Registry>>,
    key: u64,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("key", &self.key)
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            lock(&registry).callbacks.remove(&self.key);
        }
    }
}

#[derive(Default)]
struct Registry {
    next_key: u64,
    callbacks: BTreeMap<u64, Arc<LeaderLossCallback>>,
    /// The term this node currently leads in, if it leads.
    leading: Option<u64>,
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    registry.lock().unwrap_or_else(|p| p.into_inner())
}

/// Tracks whether this node leads and notifies subscribers on every loss edge.
#[derive(Clone, Default)]
pub struct LeadershipTracker {
    registry: Arc<Mutex<Registry>>,
}

impl fmt::Debug for LeadershipTracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = lock(&self.registry);
        f.debug_struct("LeadershipTracker")
            .field("leading", &registry.leading)
            .field("callbacks", &registry.callbacks.len())
            .finish()
    }
}

impl LeadershipTracker {
    /// A tracker for a node that does not lead.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `callback` until the returned subscription is dropped.
    pub fn subscribe(&self, callback: LeaderLossCallback) -> Subscription {
        let mut registry = lock(&self.registry);
        let key = registry.next_key;
        registry.next_key += 1;
        registry.callbacks.insert(key, Arc::new(callback));
        Subscription {
            registry: Arc::downgrade(&self.registry),
            key,
        }
    }

    /// Records that this node leads in `term`. Leading in a newer term without an observed
    /// loss in between counts as a loss of the older term first.
    pub fn became_leader(&self, term: u64) {
        let previous = lock(&self.registry).leading;
        match previous {
            Some(current) if current >= term => {}
            Some(_) => {
                self.lost(LossCause::SteppedDown);
                lock(&self.registry).leading = Some(term);
            }
            None => lock(&self.registry).leading = Some(term),
        }
    }

    /// Records a loss edge. Fires every callback once if this node was leading; a no-op
    /// otherwise. A panicking callback is contained and does not stop the others.
    pub fn lost(&self, cause: LossCause) -> bool {
        let (term, callbacks) = {
            let mut registry = lock(&self.registry);
            let Some(term) = registry.leading.take() else {
                return false;
            };
            let callbacks: Vec<_> = registry.callbacks.values().cloned().collect();
            (term, callbacks)
        };
        let loss = LeaderLoss { term, cause };
        for callback in callbacks {
            if catch_unwind(AssertUnwindSafe(|| callback(loss))).is_err() {
                tracing::error!(term, ?cause, "a leader-loss callback panicked");
            }
        }
        true
    }

    /// The term this node leads in, if any.
    pub fn leading_term(&self) -> Option<u64> {
        lock(&self.registry).leading
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counter(tracker: &LeadershipTracker) -> (Arc<AtomicUsize>, Subscription) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let sub = tracker.subscribe(Box::new(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        (count, sub)
    }

    #[test]
    fn fires_once_per_edge() {
        let tracker = LeadershipTracker::new();
        let (count, _sub) = counter(&tracker);
        assert!(
            !tracker.lost(LossCause::SteppedDown),
            "not leading: no edge"
        );
        tracker.became_leader(3);
        tracker.became_leader(3);
        assert!(tracker.lost(LossCause::QuorumLost));
        assert!(!tracker.lost(LossCause::SteppedDown));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn leading_a_newer_term_reports_the_older_loss() {
        let tracker = LeadershipTracker::new();
        let terms = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&terms);
        let _sub = tracker.subscribe(Box::new(move |loss| seen.lock().unwrap().push(loss.term)));
        tracker.became_leader(2);
        tracker.became_leader(5);
        tracker.lost(LossCause::Shutdown);
        assert_eq!(*terms.lock().unwrap(), vec![2, 5]);
    }

    #[test]
    fn dropping_the_subscription_deregisters() {
        let tracker = LeadershipTracker::new();
        let (count, sub) = counter(&tracker);
        drop(sub);
        tracker.became_leader(1);
        tracker.lost(LossCause::SteppedDown);
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_others() {
        let tracker = LeadershipTracker::new();
        let _bad = tracker.subscribe(Box::new(|_| panic!("callback bug")));
        let (count, _sub) = counter(&tracker);
        tracker.became_leader(1);
        tracker.lost(LossCause::Fatal);
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
