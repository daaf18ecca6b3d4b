//! Quorum-acknowledgement tracking for `Engine::quorum_ack` and prompt leader-loss detection.
//!
//! raft-rs does not say which heartbeat or append a response answers, so the adapter adds two
//! numbers to every message on the wire ([`crate::codec::Envelope`]): a `token` on each
//! heartbeat, append and snapshot this node sends as leader (recorded with its **send** time),
//! and an `echo` on every message: the highest token the sender has received from the recipient.
//! A response in the leader's current term from voter `v` echoing token `t` proves `v` received
//! the message sent at `sent_at(t)`, and receiving it reset `v`'s election timer, so with
//! check-quorum `v` refuses votes for an election timeout after `sent_at(t)`.
//!
//! Tokens embed this start's incarnation so an echo from before a restart never matches.

use std::collections::{BTreeMap, VecDeque};

use raft::eraftpb::ConfState;
use tokio::time::Instant;

/// How many sent tokens are remembered; older ones can no longer be matched (conservative).
const MAX_SENT: usize = 8192;

/// Tracks tokens sent and acknowledged.
#[derive(Debug)]
pub(crate) struct AckTracker {
    base: u64,
    counter: u64,
    /// The leader term being tracked, if leading.
    term: Option<u64>,
    sent: VecDeque<(u64, Instant)>,
    acked: BTreeMap<u64, Instant>,
    received: BTreeMap<u64, u64>,
}

/// What the tracker concludes for the current configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QuorumTime {
    /// This node is the only voter: every instant is acknowledged.
    SelfOnly,
    /// The newest send time acknowledged by a quorum.
    At(Instant),
    /// No quorum has acknowledged anything in this term yet.
    None,
}

impl AckTracker {
    /// A tracker whose tokens are unique to `incarnation`.
    pub(crate) fn new(incarnation: u64) -> Self {
        Self {
            base: (incarnation & 0xff_ffff) << 40,
            counter: 0,
            term: None,
            sent: VecDeque::new(),
            acked: BTreeMap::new(),
            received: BTreeMap::new(),
        }
    }

    /// Starts tracking leadership in `term` (or stops with `None`); forgets older acks.
    pub(crate) fn set_leader_term(&mut self, term: Option<u64>) {
        if self.term != term {
            self.term = term;
            self.sent.clear();
            self.acked.clear();
        }
    }

    /// Forgets every send and acknowledgement so far (keeps tracking the same term).
    pub(crate) fn forget(&mut self) {
        self.sent.clear();
        self.acked.clear();
    }

    /// A token for a leader message sent now in the tracked term.
    pub(crate) fn token_for_send(&mut self, now: Instant) -> u64 {
        if self.term.is_none() {
            return 0;
        }
        self.counter += 1;
        let token = self.base | (self.counter & 0xff_ffff_ffff);
        if self.sent.len() >= MAX_SENT {
            self.sent.pop_front();
        }
        self.sent.push_back((token, now));
        token
    }

    /// Records a token received from `from` (to echo it back).
    pub(crate) fn on_received(&mut self, from: u64, token: u64) {
        if token != 0 {
            let seen = self.received.entry(from).or_insert(0);
            *seen = (*seen).max(token);
        }
    }

    /// The echo to put on a message for `to`.
    pub(crate) fn echo_for(&self, to: u64) -> u64 {
        self.received.get(&to).copied().unwrap_or(0)
    }

    /// A response from `from` in `msg_term` echoing `echo`.
    pub(crate) fn on_ack(&mut self, from: u64, msg_term: u64, echo: u64) {
        if self.term != Some(msg_term) || echo == 0 {
            return;
        }
        // Tokens are consecutive in `sent` (one counter, oldest popped first), so an echo's
        // place is its distance from the oldest.
        let Some(&(oldest, _)) = self.sent.front() else {
            return;
        };
        let Some(&(token, sent_at)) = echo
            .checked_sub(oldest)
            .and_then(|at| usize::try_from(at).ok())
            .and_then(|at| self.sent.get(at))
        else {
            return;
        };
        if token != echo {
            return;
        }
        let best = self.acked.entry(from).or_insert(sent_at);
        if *best < sent_at {
            *best = sent_at;
        }
    }

    /// The newest send time acknowledged by a quorum of `conf`'s voters (self included).
    pub(crate) fn quorum_time(&self, conf: &ConfState, self_id: u64) -> QuorumTime {
        if self.term.is_none() {
            return QuorumTime::None;
        }
        let incoming = majority_time(conf.get_voters(), self_id, &self.acked);
        let outgoing = majority_time(conf.get_voters_outgoing(), self_id, &self.acked);
        match (incoming, outgoing) {
            (Some(a), Some(b)) => a.min(b).into(),
            _ => QuorumTime::None,
        }
    }
}

/// An acknowledgement time for one majority group; `Infinite` for the node itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum AckAt {
    At(Instant),
    Infinite,
}

impl From<AckAt> for QuorumTime {
    fn from(value: AckAt) -> Self {
        match value {
            AckAt::At(t) => QuorumTime::At(t),
            AckAt::Infinite => QuorumTime::SelfOnly,
        }
    }
}

/// The `majority`-th newest acknowledgement of a group; an empty group places no constraint.
fn majority_time(voters: &[u64], self_id: u64, acked: &BTreeMap<u64, Instant>) -> Option<AckAt> {
    if voters.is_empty() {
        return Some(AckAt::Infinite);
    }
    let mut times: Vec<Option<AckAt>> = voters
        .iter()
        .map(|v| {
            if *v == self_id {
                Some(AckAt::Infinite)
            } else {
                acked.get(v).copied().map(AckAt::At)
            }
        })
        .collect();
    times.sort_unstable_by(|a, b| b.cmp(a));
    let majority = voters.len() / 2 + 1;
    times[majority - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn conf(voters: &[u64]) -> ConfState {
        ConfState::from((voters.iter().copied(), Vec::<u64>::new()))
    }

    #[tokio::test(start_paused = true)]
    async fn quorum_time_is_the_newest_send_a_majority_echoed() {
        let mut t = AckTracker::new(1);
        t.set_leader_term(Some(3));
        let t0 = Instant::now();
        let a = t.token_for_send(t0);
        let b = t.token_for_send(t0 + Duration::from_millis(10));
        assert_eq!(t.quorum_time(&conf(&[1, 2, 3]), 1), QuorumTime::None);
        t.on_ack(2, 3, a);
        assert_eq!(t.quorum_time(&conf(&[1, 2, 3]), 1), QuorumTime::At(t0));
        t.on_ack(3, 3, b);
        assert_eq!(
            t.quorum_time(&conf(&[1, 2, 3]), 1),
            QuorumTime::At(t0 + Duration::from_millis(10))
        );
        // Five voters need two peers: the older of the two newest.
        assert_eq!(
            t.quorum_time(&conf(&[1, 2, 3, 4, 5]), 1),
            QuorumTime::At(t0)
        );
        assert_eq!(t.quorum_time(&conf(&[1]), 1), QuorumTime::SelfOnly);
        t.forget();
        t.on_ack(2, 3, b);
        assert_eq!(t.quorum_time(&conf(&[1, 2, 3]), 1), QuorumTime::None);
    }

    #[tokio::test(start_paused = true)]
    async fn acks_from_other_terms_or_unknown_tokens_do_not_count() {
        let mut t = AckTracker::new(1);
        t.set_leader_term(Some(3));
        let a = t.token_for_send(Instant::now());
        t.on_ack(2, 4, a);
        t.on_ack(2, 3, a + 1000);
        assert_eq!(t.quorum_time(&conf(&[1, 2, 3]), 1), QuorumTime::None);
        t.set_leader_term(Some(5));
        t.on_ack(2, 5, a);
        assert_eq!(t.quorum_time(&conf(&[1, 2, 3]), 1), QuorumTime::None);
        // Tokens of another incarnation never collide.
        let mut later = AckTracker::new(2);
        later.set_leader_term(Some(5));
        assert_ne!(later.token_for_send(Instant::now()), a);
    }

    #[tokio::test(start_paused = true)]
    async fn joint_configs_need_both_majorities() {
        let mut t = AckTracker::new(1);
        t.set_leader_term(Some(1));
        let now = Instant::now();
        let a = t.token_for_send(now);
        t.on_ack(2, 1, a);
        let mut joint = conf(&[1, 2, 3]);
        joint.set_voters_outgoing(vec![4, 5, 6]);
        assert_eq!(t.quorum_time(&joint, 1), QuorumTime::None);
        t.on_ack(4, 1, a);
        t.on_ack(5, 1, a);
        assert_eq!(t.quorum_time(&joint, 1), QuorumTime::At(now));
    }

    #[tokio::test(start_paused = true)]
    async fn only_remembered_tokens_count_across_eviction_and_forgetting() {
        let mut t = AckTracker::new(1);
        t.set_leader_term(Some(2));
        let start = Instant::now();
        let evicted = t.token_for_send(start);
        for _ in 1..MAX_SENT {
            t.token_for_send(start);
        }
        tokio::time::advance(std::time::Duration::from_millis(5)).await;
        let newest_at = Instant::now();
        let newest = t.token_for_send(newest_at);
        t.on_ack(2, 2, evicted);
        assert_eq!(t.quorum_time(&conf(&[1, 2, 3]), 1), QuorumTime::None);
        t.on_ack(2, 2, newest + 1);
        assert_eq!(t.quorum_time(&conf(&[1, 2, 3]), 1), QuorumTime::None);
        t.on_ack(2, 2, evicted + 1);
        assert_eq!(t.quorum_time(&conf(&[1, 2, 3]), 1), QuorumTime::At(start));
        t.on_ack(3, 2, newest);
        t.on_ack(2, 2, newest);
        assert_eq!(
            t.quorum_time(&conf(&[1, 2, 3]), 1),
            QuorumTime::At(newest_at)
        );
        // After forgetting, a token sent before does not count; one sent after does.
        t.forget();
        t.on_ack(2, 2, newest);
        assert_eq!(t.quorum_time(&conf(&[1, 2, 3]), 1), QuorumTime::None);
        let after = t.token_for_send(newest_at);
        t.on_ack(2, 2, after);
        assert_eq!(
            t.quorum_time(&conf(&[1, 2, 3]), 1),
            QuorumTime::At(newest_at)
        );
    }

    #[test]
    fn echo_is_the_highest_token_received() {
        let mut t = AckTracker::new(1);
        t.on_received(2, 7);
        t.on_received(2, 5);
        t.on_received(2, 0);
        assert_eq!(t.echo_for(2), 7);
        assert_eq!(t.echo_for(3), 0);
    }
}
