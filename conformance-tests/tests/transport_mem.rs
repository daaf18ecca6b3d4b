//! The transport suite stamped for `MemNetwork`: failures read `mem::case_name`.

conformance_tests::transport_suite!(mem, conformance_tests::transport::mem::MemFactory);
