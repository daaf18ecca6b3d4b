//! The conformance suite stamped for `raftengine_openraft::OpenraftEngine`: failures read
//! `openraft::case_name`.

conformance_tests::engine_backend!(Openraft, "openraft", raftengine_openraft::OpenraftEngine);
conformance_tests::conformance_suite!(openraft, Openraft);
