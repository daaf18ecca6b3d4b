//! The vote-refusal window this backend reports is the one a follower really gives, also when
//! its driver wakes late for a tick in the very iteration that delivers the leader's message.
//!
//! Only this crate can write and read raft-rs's wire format, so the probe lives here, on the
//! suite's harness: a node the cluster does not know sends the follower a pre-vote request every
//! millisecond after the follower last heard from the leader, and the first grant ends the
//! window. Virtual time cannot make a driver late, so the follower's clock jumps forward by just
//! under a tick right before the leader's held messages reach it; across the trials that late
//! tick lands at every sub-tick phase.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use conformance_tests::harness::run_case;
use conformance_tests::{ensure, fail};
use raft::eraftpb::{Message, MessageType};
use raftengine::{Capabilities, Clock, Inbound, NodeId, Transport};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::codec::{decode_envelope, encode_envelope};
use crate::timing::Ticks;

conformance_tests::engine_backend!(RaftRs, "raftrs", crate::RaftRsEngine);

/// The probe's node id; no cluster member has it.
const PROBE: NodeId = 42;
/// Pre-vote terms start this far above the follower's term; the offset numbers the requests.
const TERM_BASE: u64 = 1_000;

/// Hands the terms of granted pre-votes to the test.
struct GrantRecorder {
    grants: mpsc::UnboundedSender<u64>,
}

#[async_trait]
impl Inbound for GrantRecorder {
    async fn on_call(&self, _from: NodeId, _request: Bytes) -> Bytes {
        Bytes::new()
    }

    fn on_message(&self, _from: NodeId, message: Bytes) {
        if let Some(envelope) = decode_envelope(&message) {
            let m = envelope.message;
            if m.get_msg_type() == MessageType::MsgRequestPreVoteResponse && !m.reject {
                let _ = self.grants.send(m.term);
            }
        }
    }
}

/// A pre-vote request from [`PROBE`] whose log looks newer than anyone's.
fn pre_vote(to: NodeId, term: u64) -> Bytes {
    let mut message = Message::default();
    message.set_msg_type(MessageType::MsgRequestPreVote);
    message.from = PROBE;
    message.to = to;
    message.term = term;
    message.log_term = u64::MAX / 2;
    message.index = u64::MAX / 2;
    encode_envelope(0, 0, &message).unwrap_or_default()
}

#[test]
fn a_late_tick_does_not_shorten_the_vote_refusal_window() {
    run_case(
        "a_late_tick_does_not_shorten_the_vote_refusal_window",
        Capabilities::NONE,
        RaftRs,
        |h| async move {
            let cluster = h.cluster(3).await?;
            let wait = cluster.election_wait();
            let leader = cluster.wait_for_leader(wait).await?;
            let follower = cluster.others(leader)[0];
            let tick = Ticks::from_config(cluster.config()).tick;
            let claimed = cluster.engine(follower)?.timing().vote_refusal_window;
            let clock = cluster.clock(follower)?;
            let net = cluster.net().clone();
            let (grants, mut granted) = mpsc::unbounded_channel();
            let probe = net.transport(PROBE);
            probe.serve(Arc::new(GrantRecorder { grants }));
            let start = Instant::now();
            let limit = cluster.config().election_timeout_max * 2;
            let mut shortest = Duration::MAX;
            for trial in 0..10u32 {
                // Each jump below shifts the follower's tick grid by a millisecond against
                // tokio's, so starting every trial on the same tokio phase moves the late tick
                // through every phase.
                let into = start.elapsed().as_nanos() % tick.as_nanos();
                let to_phase = tick - Duration::from_nanos(into as u64);
                tokio::time::sleep(to_phase + tick * 30).await;
                net.hold(leader, follower);
                tokio::time::sleep(tick * 12).await;
                clock.advance(tick - Duration::from_millis(1));
                let heard_at = clock.now();
                net.release(leader, follower);
                // A heartbeat the leader sends in this millisecond only makes the window
                // measured here longer than the true one.
                tokio::time::sleep(Duration::from_millis(1)).await;
                cluster.partition(leader, follower);
                let term = cluster.engine(follower)?.status().term + TERM_BASE;
                let mut sent_at = Vec::new();
                let first_grant = loop {
                    if let Ok(granted_term) = granted.try_recv() {
                        let Some(at) = granted_term
                            .checked_sub(term)
                            .and_then(|n| sent_at.get(n as usize))
                        else {
                            fail!("trial {trial}: a grant for an unknown term {granted_term}");
                        };
                        break *at;
                    }
                    let sent: Instant = clock.now();
                    ensure!(
                        sent.duration_since(heard_at) < limit,
                        "trial {trial}: node {follower} granted no pre-vote within {limit:?}"
                    );
                    probe.send(follower, pre_vote(follower, term + sent_at.len() as u64));
                    sent_at.push(sent);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                let window = first_grant.duration_since(heard_at);
                ensure!(
                    window >= claimed,
                    "trial {trial}: node {follower} granted a pre-vote {window:?} after it last \
                     heard from the leader, inside the {claimed:?} vote-refusal window its engine \
                     reports"
                );
                shortest = shortest.min(window);
                cluster.heal();
                while granted.try_recv().is_ok() {}
            }
            // Every trial passing proves nothing unless one of them met the late tick at its
            // worst phase, where the window is within a tick of the claim.
            ensure!(
                shortest < claimed + tick,
                "no trial came within a tick of the {claimed:?} window (shortest {shortest:?}): \
                 the late tick was never exercised"
            );
            probe.stop_serving();
            cluster.shutdown().await
        },
    );
}
