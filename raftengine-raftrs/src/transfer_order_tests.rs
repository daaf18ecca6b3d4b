//! A transfer is published before raft-rs sends `MsgTimeoutNow` (the suite's
//! `check_transfer_published_before`; only this crate can read its wire format).

use raft::eraftpb::MessageType;

use crate::codec::decode_envelope;

conformance_tests::engine_backend!(RaftRs, "raftrs", crate::RaftRsEngine);

fn is_timeout_now(bytes: &[u8]) -> bool {
    decode_envelope(bytes).is_some_and(|e| e.message.get_msg_type() == MessageType::MsgTimeoutNow)
}

#[test]
fn a_transfer_is_published_before_timeout_now_leaves() {
    conformance_tests::harness::check_transfer_published_before(
        RaftRs,
        is_timeout_now,
        "MsgTimeoutNow",
    );
}
