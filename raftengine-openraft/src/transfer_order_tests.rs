//! A transfer is published before openraft sends `TransferLeader`: at the instant each
//! `TransferLeader` leaves, the sender's published status shows the transfer and it offers no
//! acknowledgement to build a lease on. Every voter that receives it stops refusing votes for
//! the rest of the term, so a reader that passed the fast path on an older status could serve
//! a read while the target is elected. (Only this crate can read its wire format, so the check
//! lives here, on the suite's harness.)

use conformance_tests::ensure;
use conformance_tests::harness::{Probed, run_case};
use raftengine::Capabilities;

use crate::codec::{RpcRequest, decode};

conformance_tests::engine_backend!(Openraft, "openraft", crate::OpenraftEngine);

fn is_transfer_leader(bytes: &[u8]) -> bool {
    matches!(
        decode::<RpcRequest>(bytes),
        Ok(RpcRequest::TransferLeader(_))
    )
}

#[test]
fn a_transfer_is_published_before_transfer_leader_leaves() {
    let backend = Probed::new(Openraft, is_transfer_leader);
    let sightings = backend.sightings();
    run_case(
        "a_transfer_is_published_before_transfer_leader_leaves",
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
                    "round {round}: no TransferLeader left node {leader}"
                );
                for s in seen {
                    ensure!(
                        s.status.transferring_to == Some(target) && s.ack_withdrawn,
                        "round {round}: TransferLeader to {} left node {} while its published \
                         status said transferring_to = {:?} and its quorum ack was {}: a \
                         reader could pass the lease check as {target} takes over",
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
