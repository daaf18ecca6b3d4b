//! [`Recovery`]: no read is served after a restart until the state machine holds everything
//! committed before it.
//!
//! The committed log id is kept in memory (see `storage::log`), so a restarted node re-applies
//! only up to an older committed point. openraft may also resume leadership in the term it had
//! before the restart, so neither a new term nor openraft's read index proves that the state
//! machine caught up. Every entry committed before the restart is in the log this node had at
//! start (a leader holds every committed entry), so the node has recovered once it applied up
//! to that log's last index, or applied any entry of a later term (committing it committed
//! everything before it).

use std::sync::atomic::{AtomicBool, Ordering};

use raftengine::Status;

/// The read gate of one engine start.
#[derive(Debug)]
pub(crate) struct Recovery {
    /// Index and term of the last entry in the log at start; `None` for an empty log.
    target: Option<(u64, u64)>,
    /// Latched once the gate opened: applied state never goes back within one start.
    done: AtomicBool,
}

impl Recovery {
    /// The gate for a start whose log ended at `last` (engine index and term).
    pub(crate) fn new(last: Option<(u64, u64)>) -> Self {
        Self {
            target: last,
            done: AtomicBool::new(last.is_none()),
        }
    }

    /// Whether reads may be served, judged on `status` (latched once true).
    pub(crate) fn is_done(&self, status: &Status) -> bool {
        if self.done.load(Ordering::Acquire) {
            return true;
        }
        let Some((index, term)) = self.target else {
            return true;
        };
        let caught_up = status.applied_index >= index || status.applied_term > term;
        if caught_up {
            self.done.store(true, Ordering::Release);
        }
        caught_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(applied_index: u64, applied_term: u64) -> Status {
        Status {
            applied_index,
            applied_term,
            ..Status::default()
        }
    }

    #[test]
    fn an_empty_log_needs_no_recovery() {
        assert!(Recovery::new(None).is_done(&status(0, 0)));
    }

    #[test]
    fn the_gate_opens_at_the_last_index_or_a_later_term_and_stays_open() {
        let gate = Recovery::new(Some((40, 3)));
        assert!(!gate.is_done(&status(12, 3)));
        assert!(!gate.is_done(&status(39, 3)));
        assert!(gate.is_done(&status(40, 3)));
        assert!(gate.is_done(&status(0, 0)), "latched");
        let later_term = Recovery::new(Some((40, 3)));
        assert!(later_term.is_done(&status(35, 4)));
    }
}
