//! raft-rs logs through `slog`; this drain forwards its records to `tracing` (target
//! `raft_rs`). Levels map one to one (critical → error). Record key-values are appended to the
//! message text.

use std::fmt::{self, Write as _};

use slog::{Drain, KV, Level, OwnedKVList, Record, Serializer};

/// An `slog` drain that emits `tracing` events.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TracingDrain;

struct Collect(String);

impl Serializer for Collect {
    fn emit_arguments(&mut self, key: slog::Key, val: &fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, _values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut text = Collect(String::new());
        let _ = record.kv().serialize(record, &mut text);
        let message = record.msg();
        match record.level() {
            Level::Critical | Level::Error => {
                tracing::error!(target: "raft_rs", "{message}{}", text.0)
            }
            Level::Warning => tracing::warn!(target: "raft_rs", "{message}{}", text.0),
            Level::Info => tracing::info!(target: "raft_rs", "{message}{}", text.0),
            Level::Debug => tracing::debug!(target: "raft_rs", "{message}{}", text.0),
            Level::Trace => tracing::trace!(target: "raft_rs", "{message}{}", text.0),
        }
        Ok(())
    }
}

/// The logger handed to raft-rs.
pub(crate) fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}
