//! The two status channels an engine publishes: every change, and only changes of leadership.

use tokio::sync::watch;

use crate::types::{Role, Status};

/// An engine's published [`Status`], on two channels: [`StatusChannel::subscribe`] sees every
/// change (for [`crate::Engine::watch_status`]), [`StatusChannel::subscribe_leadership`] only
/// changes of role, term, leader, transfer fields or membership (for
/// [`crate::Engine::watch_leadership`]), so a lease layer's watcher is not woken by every
/// applied entry.
#[derive(Debug)]
pub struct StatusChannel {
    all: watch::Sender<Status>,
    leadership: watch::Sender<Status>,
}

impl StatusChannel {
    /// Both channels start at `initial`.
    pub fn new(initial: Status) -> Self {
        Self {
            leadership: watch::Sender::new(initial.clone()),
            all: watch::Sender::new(initial),
        }
    }

    /// The current status. The guard holds the channel's read lock: publishing while it is
    /// alive deadlocks, as with a `watch::Sender`.
    pub fn borrow(&self) -> watch::Ref<'_, Status> {
        self.all.borrow()
    }

    /// A receiver of every change.
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.all.subscribe()
    }

    /// A receiver of leadership changes only; see [`crate::Engine::watch_leadership`].
    pub fn subscribe_leadership(&self) -> watch::Receiver<Status> {
        self.leadership.subscribe()
    }

    /// Lets `modify` edit the status; it returns whether it changed anything. A change that
    /// touches leadership also reaches the leadership channel. Returns whether anything
    /// changed.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut Status) -> bool) -> bool {
        let mut changed = false;
        self.all.send_if_modified(|status| {
            changed = modify(status);
            if changed {
                // Inside the main channel's lock, so two publishers cannot hand the leadership
                // channel their statuses in the opposite order from the main one.
                self.leadership.send_if_modified(|seen| {
                    if same_leadership(seen, status) {
                        false
                    } else {
                        *seen = status.clone();
                        true
                    }
                });
            }
            // With nobody subscribed the new value is stored but nobody is woken: waking costs
            // a lock per waiter list on every publish, and engines publish on every applied
            // entry. A receiver that subscribes later reads the stored value; one subscribing
            // while this closure runs reads it once the channel's lock is released, and its
            // first `changed()` waits for the next notified change, as if it subscribed after.
            changed && self.all.receiver_count() > 0
        });
        changed
    }

    /// Publishes that the node stopped: role `Shutdown`, no leader, no transfer.
    pub fn mark_shutdown(&self) {
        self.send_if_modified(|status| {
            status.role = Role::Shutdown;
            status.leader = None;
            status.transferring_to = None;
            true
        });
    }

    /// Replaces the status with `status` if it differs. Returns whether it did.
    pub fn publish(&self, status: Status) -> bool {
        self.send_if_modified(|current| {
            if *current == status {
                false
            } else {
                *current = status;
                true
            }
        })
    }
}

/// Whether `a` and `b` agree on everything but progress through the log.
fn same_leadership(a: &Status, b: &Status) -> bool {
    a.id == b.id
        && a.role == b.role
        && a.term == b.term
        && a.leader == b.leader
        && a.transferring_to == b.transferring_to
        && a.transfers_started == b.transfers_started
        && a.transfer_term == b.transfer_term
        && a.membership == b.membership
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        Status {
            id: 1,
            role: Role::Follower,
            term: 1,
            leader: Some(2),
            ..Status::default()
        }
    }

    #[test]
    fn progress_wakes_only_the_full_channel() {
        let channel = StatusChannel::new(status());
        let mut all = channel.subscribe();
        let leadership = channel.subscribe_leadership();
        for index in 1..=100 {
            let mut next = channel.borrow().clone();
            next.commit_index = index;
            next.applied_index = index;
            next.applied_term = 1;
            next.last_log_index = index;
            assert!(channel.publish(next));
        }
        assert!(all.has_changed().unwrap());
        assert!(!leadership.has_changed().unwrap());
        assert_eq!(all.borrow_and_update().applied_index, 100);
        let unchanged = channel.borrow().clone();
        assert!(!channel.publish(unchanged), "no change, no publication");
        assert!(!all.has_changed().unwrap());
    }

    #[test]
    fn a_change_nobody_watches_is_stored_and_later_ones_wake_new_watchers() {
        let channel = StatusChannel::new(status());
        let mut next = status();
        next.applied_index = 5;
        assert!(channel.publish(next.clone()), "a change is reported as one");
        assert_eq!(channel.borrow().applied_index, 5);
        let mut all = channel.subscribe();
        assert_eq!(all.borrow_and_update().applied_index, 5);
        assert!(!all.has_changed().unwrap());
        next.applied_index = 6;
        assert!(channel.publish(next));
        assert!(all.has_changed().unwrap());
        assert_eq!(all.borrow_and_update().applied_index, 6);
    }

    #[test]
    fn every_leadership_field_reaches_the_leadership_channel() {
        type Edit = (&'static str, fn(&mut Status));
        let edits: [Edit; 7] = [
            ("role", |s| s.role = Role::Candidate),
            ("term", |s| s.term += 1),
            ("leader", |s| s.leader = None),
            ("transferring_to", |s| s.transferring_to = Some(3)),
            ("transfers_started", |s| s.transfers_started += 1),
            ("transfer_term", |s| s.transfer_term = Some(1)),
            ("membership", |s| {
                s.membership = std::sync::Arc::new(crate::types::Membership {
                    voters: [1, 2, 3].into(),
                    ..Default::default()
                })
            }),
        ];
        for (field, edit) in edits {
            let channel = StatusChannel::new(status());
            let mut leadership = channel.subscribe_leadership();
            let mut next = channel.borrow().clone();
            next.applied_index = 7;
            edit(&mut next);
            channel.publish(next.clone());
            assert!(leadership.has_changed().unwrap(), "{field}");
            assert_eq!(*leadership.borrow_and_update(), next, "{field}");
        }
    }
}
