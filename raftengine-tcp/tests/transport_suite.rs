//! The transport suite stamped for `TcpTransport` with mutual TLS on loopback: failures read
//! `tcp_tls::case_name`.

mod common;

conformance_tests::transport_suite!(tcp_tls, crate::common::TcpTls);
