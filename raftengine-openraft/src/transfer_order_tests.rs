//! A transfer is published before openraft sends `TransferLeader`, which every voter that
//! receives it takes as leave to stop refusing votes (the suite's
//! `check_transfer_published_before`; only this crate can read its wire format).

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
    conformance_tests::harness::check_transfer_published_before(
        Openraft,
        is_transfer_leader,
        "TransferLeader",
    );
}
