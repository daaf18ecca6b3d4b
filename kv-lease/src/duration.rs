//! How long a lease may last, derived from the engine's [`Timing`], and the lease layer's
//! configuration.

use std::time::Duration;

use raftengine::{Error, RejectReason, Result, Timing};

/// Settings of a [`crate::Lease`].
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseConfig {
    /// Fixed margin subtracted from the vote-refusal window on top of the drift margin. It
    /// absorbs scheduling delay and pauses between a clock reading and its use. Must be positive.
    pub safety_margin: Duration,
    /// Run a background task that watches the engine's status (term changes, transfers,
    /// shutdown) and renews the lease from `quorum_ack()` without traffic. It ends when the
    /// lease is shut down or dropped. Needs a tokio runtime at construction.
    pub background: bool,
    /// How often the background task polls `quorum_ack()`; `None` means a quarter of the lease.
    pub renew_interval: Option<Duration>,
    /// When the lease is about to run out and no acknowledgement renews it, let the background
    /// task run one `linearizable_read()` to renew it (TiKV's "renew in advance"). Off by
    /// default: it costs a quorum round per lease period even when nobody reads.
    pub proactive_renewal: bool,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            safety_margin: Duration::from_millis(50),
            background: true,
            renew_interval: None,
            proactive_renewal: false,
        }
    }
}

impl LeaseConfig {
    /// The lease duration for an engine with `timing`; see [`lease_duration`].
    pub fn duration_for(&self, timing: &Timing) -> Result<Duration> {
        lease_duration(timing, self.safety_margin)
    }
}

fn invalid(what: String) -> Error {
    Error::rejected(RejectReason::InvalidConfig(what))
}

/// The lease duration: `w − w × max_clock_drift − safety_margin`, where `w` is the engine's
/// vote-refusal window capped at the smallest election timeout. It is therefore always strictly
/// shorter than `election_timeout_min`.
///
/// Fails with `Rejected(InvalidConfig)` naming the setting when the result would be unsafe or
/// empty: a zero window, a drift outside `[0, 0.5)`, a zero margin, or a margin that eats the
/// whole window.
pub fn lease_duration(timing: &Timing, safety_margin: Duration) -> Result<Duration> {
    let drift = timing.max_clock_drift;
    if !(drift.is_finite() && (0.0..0.5).contains(&drift)) {
        return Err(invalid(format!(
            "max_clock_drift must be in [0, 0.5), got {drift}"
        )));
    }
    if timing.vote_refusal_window.is_zero() {
        return Err(invalid(
            "vote_refusal_window must be positive for lease reads".into(),
        ));
    }
    if timing.election_timeout_min.is_zero() {
        return Err(invalid("election_timeout_min must be positive".into()));
    }
    if safety_margin.is_zero() {
        return Err(invalid(
            "lease safety_margin must be positive (it keeps the lease strictly inside the \
             election timeout)"
                .into(),
        ));
    }
    let window = timing.vote_refusal_window.min(timing.election_timeout_min);
    let after_drift = window.saturating_sub(window.mul_f64(drift));
    match after_drift.checked_sub(safety_margin) {
        Some(lease) if !lease.is_zero() => {
            if lease < timing.heartbeat_interval {
                tracing::warn!(
                    ?lease,
                    heartbeat = ?timing.heartbeat_interval,
                    "lease is shorter than one heartbeat; acknowledgements cannot keep it warm"
                );
            }
            Ok(lease)
        }
        _ => Err(invalid(format!(
            "lease safety_margin {safety_margin:?} leaves no lease: the vote-refusal window \
             {window:?} minus drift ({drift}) is only {after_drift:?}"
        ))),
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use raftengine::ErrorKind;

    fn timing(window_ms: u64, min_ms: u64, drift: f64) -> Timing {
        Timing {
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(min_ms),
            election_timeout_max: Duration::from_millis(min_ms * 2),
            vote_refusal_window: Duration::from_millis(window_ms),
            max_clock_drift: drift,
        }
    }

    fn reason(err: &Error) -> String {
        match err.kind() {
            ErrorKind::Rejected(RejectReason::InvalidConfig(what)) => what.clone(),
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn window_minus_drift_minus_margin() {
        let d = lease_duration(&timing(300, 300, 0.01), Duration::from_millis(50)).unwrap();
        assert_eq!(d, Duration::from_millis(247));
    }

    #[test]
    fn never_reaches_the_smallest_election_timeout() {
        // A backend claiming a refusal window longer than its election timeout is capped.
        let t = timing(1_000, 300, 0.0);
        let d = lease_duration(&t, Duration::from_millis(1)).unwrap();
        assert_eq!(d, Duration::from_millis(299));
        assert!(d < t.election_timeout_min);
    }

    #[test]
    fn unsafe_settings_are_rejected_with_the_setting_named() {
        let margin = Duration::from_millis(10);
        let err = lease_duration(&timing(300, 300, 0.01), Duration::from_millis(297)).unwrap_err();
        assert!(reason(&err).contains("safety_margin"), "{err}");
        let err = lease_duration(&timing(300, 300, 0.01), Duration::from_millis(400)).unwrap_err();
        assert!(reason(&err).contains("leaves no lease"), "{err}");
        let err = lease_duration(&timing(300, 300, 0.01), Duration::ZERO).unwrap_err();
        assert!(
            reason(&err).contains("safety_margin must be positive"),
            "{err}"
        );
        let err = lease_duration(&timing(0, 300, 0.01), margin).unwrap_err();
        assert!(reason(&err).contains("vote_refusal_window"), "{err}");
        for drift in [0.5, -0.1, f64::NAN, f64::INFINITY] {
            let err = lease_duration(&timing(300, 300, drift), margin).unwrap_err();
            assert!(reason(&err).contains("max_clock_drift"), "{drift}: {err}");
        }
        let err = lease_duration(&timing(300, 0, 0.0), margin).unwrap_err();
        assert!(reason(&err).contains("election_timeout_min"), "{err}");
    }

    #[test]
    fn drift_shrinks_the_lease_proportionally() {
        let margin = Duration::from_millis(10);
        let slow = lease_duration(&timing(1_000, 1_000, 0.1), margin).unwrap();
        assert_eq!(slow, Duration::from_millis(890));
    }
}
