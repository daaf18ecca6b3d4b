//! History recording and checking: a [`Recorder`] shared by concurrent client tasks, cheap
//! [`oracles`] that run first, and a Porcupine-style [`linearizability`] checker.
//!
//! [`verify`] runs both and turns any finding, including an inconclusive search, into an error
//! text a case can fail with.

pub mod history;
pub mod linearizability;
pub mod oracles;

use std::collections::BTreeMap;

pub use history::{
    ClientId, History, HistorySummary, Input, Key, Operation, Outcome, Output, PendingOp, ReadPath,
    Recorder, Stamp, Value,
};
pub use linearizability::{CheckOptions, CheckResult, Violation, check, check_with_initial};
pub use oracles::{FinalValue, OracleViolation};

/// Runs the oracles and then the linearizability search. `Ok` only when every oracle passes
/// and the search proves the history linearizable; an exhausted budget is an error.
pub fn verify(
    history: &History,
    final_state: Option<&BTreeMap<Key, FinalValue>>,
    options: &CheckOptions,
) -> Result<(), String> {
    let found = oracles::run_all(history, final_state);
    if !found.is_empty() {
        let mut text = format!("{} oracle violation(s):\n", found.len());
        for violation in found.iter().take(10) {
            text.push_str(&format!("  {violation}\n"));
        }
        return Err(text);
    }
    match check(history, options) {
        CheckResult::Linearizable => Ok(()),
        other => Err(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::linearizability::tests::Builder;

    #[test]
    fn verify_reports_oracles_before_searching() {
        let mut b = Builder::default();
        b.put(1, 1, (0, 1)).get(2, Some(5), (2, 3));
        let err = verify(&b.build(), None, &CheckOptions::default()).unwrap_err();
        assert!(err.contains("phantom"), "{err}");
    }

    #[test]
    fn verify_fails_on_an_inconclusive_search() {
        let mut b = Builder::default();
        for client in 0..10 {
            b.put_unknown(client, client + 1, client);
        }
        b.get(99, Some(3), (20, 21))
            .get(99, Some(4), (22, 23))
            .get(99, Some(3), (24, 25));
        let options = CheckOptions {
            max_steps: 5,
            max_time: None,
        };
        let err = verify(&b.build(), None, &options).unwrap_err();
        assert!(err.contains("unknown"), "{err}");
    }
}
