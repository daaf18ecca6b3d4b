//! [`EngineParts`] and [`StartEngine`]: the one constructor shape every backend follows, so
//! code that picks a backend (an application, the conformance suite) relies on a type rather
//! than on a method-name convention.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::clock::{Clock, TokioClock};
use crate::config::Config;
use crate::engine::Engine;
use crate::error::Result;
use crate::log_store::LogStore;
use crate::state_machine::{SharedStateMachine, StateMachine};
use crate::transport::Transport;

/// Everything one node is built from. Backends take it whole through [`StartEngine::start`].
///
/// The struct is `#[non_exhaustive]`: build it with [`EngineParts::new`] and the `with_*`
/// methods, so a part added later (with a default) breaks no caller.
#[non_exhaustive]
pub struct EngineParts<S> {
    /// The node's configuration; validated by the backend before anything starts.
    pub config: Config,
    /// The user's state machine. It must be empty: a stored snapshot is restored into it.
    pub state_machine: SharedStateMachine<S>,
    /// Where the log, hard state and snapshot persist. A restart passes the same store.
    pub store: Arc<dyn LogStore>,
    /// How this node reaches its peers; it must send as `config.node_id`.
    pub transport: Arc<dyn Transport>,
    /// The clock ticks follow and reported times ([`crate::QuorumAck::sent_at`]) are read on.
    pub clock: Arc<dyn Clock>,
}

impl<S: StateMachine> EngineParts<S> {
    /// The parts of a node on tokio's clock ([`TokioClock`]), which a paused test runtime
    /// drives. A production node serving lease reads should use
    /// [`crate::SuspendAwareClock`] instead (`with_clock`): tokio's clock stops while the
    /// machine is suspended.
    pub fn new(
        config: Config,
        state_machine: SharedStateMachine<S>,
        store: Arc<dyn LogStore>,
        transport: Arc<dyn Transport>,
    ) -> Self {
        Self {
            config,
            state_machine,
            store,
            transport,
            clock: Arc::new(TokioClock),
        }
    }

    /// The same parts on `clock` (a simulation's drifting clock, for instance).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl<S> fmt::Debug for EngineParts<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineParts")
            .field("config", &self.config)
            .field("store", &self.store)
            .field("transport", &self.transport)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// A backend's constructor: starts one node from its [`EngineParts`].
///
/// With an empty store, a node listed in `config.initial_voters` bootstraps a cluster of
/// exactly those voters and a node with empty `initial_voters` waits to be added as a learner.
/// A store that already holds state is resumed and `initial_voters` is ignored.
pub trait StartEngine: Engine + Sized {
    /// Starts the node. Fails with `Rejected(InvalidConfig)` for a configuration the backend
    /// cannot run and with `Storage` when the store cannot be read.
    fn start<S: StateMachine>(parts: EngineParts<S>) -> impl Future<Output = Result<Self>> + Send;
}
