//! The user's replicated state machine, written once and driven identically by every backend.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

/// A deterministic state machine. Every node applies the same commands in the same order and
/// must reach the same state and return the same responses.
///
/// Application-level failures (a failed condition, a missing key) belong in the returned
/// response; they are outcomes of a committed command, not engine errors, and they never touch
/// leadership or leases.
pub trait StateMachine: Send + 'static {
    /// Applies one committed command and returns the response the proposer receives.
    fn apply(&mut self, index: u64, term: u64, command: &[u8]) -> Bytes;

    /// Serializes the whole state, as of the last applied entry.
    fn snapshot(&self) -> Bytes;

    /// Replaces the whole state with a snapshot produced by [`StateMachine::snapshot`].
    /// Returns a description of the problem when the bytes do not decode; the engine then
    /// keeps the previous state and reports a storage error.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String>;
}

/// A state machine shared between the engine (which applies) and the application (which reads).
///
/// The engine locks it only for the duration of one `apply`, `snapshot` or `restore` call.
pub struct SharedStateMachine<S: ?Sized> {
    inner: Arc<Mutex<S>>,
}

impl<S> SharedStateMachine<S> {
    /// Wraps a state machine for sharing.
    pub fn new(state_machine: S) -> Self {
        Self {
            inner: Arc::new(Mutex::new(state_machine)),
        }
    }
}

impl<S: StateMachine> SharedStateMachine<S> {
    /// The same shared state machine behind a trait object, as adapters drive it.
    pub fn into_dyn(self) -> SharedStateMachine<dyn StateMachine> {
        let inner: Arc<Mutex<dyn StateMachine>> = self.inner;
        SharedStateMachine { inner }
    }
}

impl<S: ?Sized> SharedStateMachine<S> {
    /// Locks the state machine. A panic inside an earlier holder does not poison later
    /// readers: the engine treats such a panic as fatal and stops applying.
    pub fn lock(&self) -> MutexGuard<'_, S> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `read` against the current state.
    pub fn read<R>(&self, read: impl FnOnce(&S) -> R) -> R {
        read(&self.lock())
    }
}

impl<S: ?Sized> Clone for SharedStateMachine<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: ?Sized> std::fmt::Debug for SharedStateMachine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedStateMachine")
    }
}
