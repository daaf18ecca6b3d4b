//! The conformance suite stamped for `raftengine_raftrs::RaftRsEngine`: failures read
//! `raftrs::case_name`.

conformance_tests::engine_backend!(RaftRs, "raftrs", raftengine_raftrs::RaftRsEngine);
conformance_tests::conformance_suite!(raftrs, RaftRs);
