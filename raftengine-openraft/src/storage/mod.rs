//! openraft's storage traits over the shared [`raftengine::LogStore`] and the user's
//! [`raftengine::StateMachine`].

mod log;
mod pipeline;
mod state_machine;

pub(crate) use self::log::LogStorage;
pub(crate) use self::pipeline::LogPipeline;
pub(crate) use self::state_machine::StateMachineStore;

use std::io;

/// An engine storage error as the `io::Error` openraft's storage traits speak.
pub(crate) fn io_error(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(err.to_string())
}

#[cfg(test)]
mod suite;
