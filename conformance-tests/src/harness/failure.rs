//! Why a case failed, and the `ensure!`/`fail!` macros cases report with.

use std::fmt;

/// Why a case failed. Its text says what was expected and what happened.
#[derive(Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
    context: Vec<String>,
}

impl Failure {
    /// A failure with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            context: Vec::new(),
        }
    }

    /// Adds a line of context (seed, phase, node statuses, ...).
    pub fn context(mut self, context: impl Into<String>) -> Self {
        self.context.push(context.into());
        self
    }

    /// The main message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        for line in &self.context {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Failure {}

/// Fails the enclosing case (returns `Err(Failure)`) unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Failure::new(format!($($fmt)+)));
        }
    };
}

/// Returns `Err(Failure)` from the enclosing case.
#[macro_export]
macro_rules! fail {
    ($($fmt:tt)+) => {
        return Err($crate::Failure::new(format!($($fmt)+)))
    };
}
