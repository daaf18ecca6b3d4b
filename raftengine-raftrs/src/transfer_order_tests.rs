//! A transfer is published before raft-rs can send `MsgTimeoutNow`: at the instant each
//! `MsgTimeoutNow` leaves, the sender's published status shows the transfer and it offers no
//! acknowledgement to build a lease on. A reader on another thread that passed the fast path
//! on an older status could otherwise serve a read while the target is elected. (Only this
//! crate can read its wire format, so the check lives here, on the suite's harness.)

use conformance_tests::ensure;
use conformance_tests::harness::{Probed, run_case};
use raft::eraftpb::MessageType;
use raftengine::Capabilities;

use crate::codec::decode_envelope;

conformance_tests::engine_backend!(RaftRs, "raftrs", crate::RaftRsEngine);

fn is_timeout_now(bytes: &[u8]) -> bool {
    decode_envelope(bytes).is_some_and(|e| e.message.get_msg_type() == MessageType::MsgTimeoutNow)
}

#[test]
fn a_transfer_is_published_before_timeout_now_leaves() {
    let backend = Probed::new(RaftRs, is_timeout_now);
    let sightings = backend.sightings();
    run_case(
        "a_transfer_is_published_before_timeout_now_leaves",
        Capabilities::LEADERSHIP_TRANSFER,
        backend,
        |h| async move {
            let cluster = h.cluster(3).await?;
            for round in 0..3 {
                let leader = cluster.wait_for_leader(cluster.election_wait()).await?;
                let target = cluster.others(leader)[round % 2];
                let before = sightings.lock().unwrap().len();
                let moved = cluster.transfer(Some(target)).await?;
                ensure!(
                    moved.is_ok(),
                    "round {round}: transfer {leader} -> {target} failed: {moved:?}"
                );
                let seen = sightings.lock().unwrap()[before..].to_vec();
                ensure!(
                    !seen.is_empty(),
                    "round {round}: no MsgTimeoutNow left node {leader}"
                );
                for s in seen {
                    ensure!(
                        s.status.transferring_to == Some(s.to) && s.ack_withdrawn,
                        "round {round}: MsgTimeoutNow to {} left node {} while its published \
                         status said transferring_to = {:?} and its quorum ack was {}: a \
                         reader could pass the lease check as the target takes over",
                        s.to,
                        s.from,
                        s.status.transferring_to,
                        if s.ack_withdrawn {
                            "withdrawn"
                        } else {
                            "still offered"
                        }
                    );
                }
            }
            cluster.shutdown().await
        },
    );
}
