//! Every wait in the contract has a deadline; this is the one way adapters attach it.

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// Runs `operation`, failing with [`crate::ErrorKind::Timeout`] (outcome unknown) after `limit`.
pub async fn with_deadline<T>(
    limit: Duration,
    operation: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result,
        Err(_) => Err(Error::timeout(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, WriteOutcome};

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_becomes_a_timeout_with_unknown_outcome() {
        let err = with_deadline(
            Duration::from_millis(10),
            std::future::pending::<Result<()>>(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Timeout);
        assert_eq!(err.outcome(), WriteOutcome::Unknown);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_time_passes_through() {
        let value = with_deadline(Duration::from_millis(10), async { Ok(7) }).await;
        assert_eq!(value.unwrap(), 7);
    }
}
