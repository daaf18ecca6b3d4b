//! Mutual TLS: certificates from another CA, expired certificates, and certificates naming
//! another node are refused and counted; plaintext never reaches a TLS node.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Pki, eventually, loopback};
use conformance_tests::transport::handlers::Echo;
use raftengine::{Transport, TransportError};
use raftengine_tcp::{Security, TcpConfig, TcpTransport, TlsIdentity, Validity};
use tokio::io::AsyncWriteExt;

const CALL: Duration = Duration::from_secs(2);

async fn node(id: u64, security: Security) -> TcpTransport {
    TcpTransport::bind(TcpConfig::new(id, loopback(), security))
        .await
        .expect("bind")
}

/// Node 2 serves with a good identity; node 1 dials it with `client`. Returns both.
async fn pair(pki: &Pki, client: TlsIdentity) -> (TcpTransport, TcpTransport) {
    let server = node(2, pki.security(2)).await;
    server.serve(Echo::new());
    let client = node(1, Security::Tls(client)).await;
    client.set_peer(2, server.local_addr());
    (client, server)
}

#[tokio::test]
async fn good_certificates_connect() {
    let pki = Pki::new(&[1, 2]);
    let (client, server) = pair(&pki, TlsIdentity::new(pki.ca.cert_pem(), &pki.certs[&1])).await;
    let reply = client.call(2, Bytes::from_static(b"hi"), CALL).await;
    assert_eq!(reply, Ok(Echo::reply(1, b"hi")));
    assert_eq!(server.stats().accepted, 1);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn certificate_from_another_ca_is_refused() {
    let pki = Pki::new(&[1, 2]);
    let other = Pki::new(&[1]);
    // The client trusts the right CA (so it accepts the server) but shows a foreign certificate.
    let identity = TlsIdentity::new(pki.ca.cert_pem(), &other.certs[&1]);
    let (client, server) = pair(&pki, identity).await;
    let reply = client.call(2, Bytes::from_static(b"hi"), CALL).await;
    assert!(
        reply.is_err(),
        "a foreign certificate got a reply: {reply:?}"
    );
    assert!(eventually(CALL, || server.stats().refused_tls >= 1).await);
    assert_eq!(server.stats().accepted, 0);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn expired_certificate_is_refused() {
    let pki = Pki::new(&[1, 2]);
    let expired = pki
        .ca
        .issue_with_validity(
            1,
            Validity {
                not_before: (2020, 1, 1),
                not_after: (2021, 1, 1),
            },
        )
        .expect("issue");
    let (client, server) = pair(&pki, TlsIdentity::new(pki.ca.cert_pem(), &expired)).await;
    let reply = client.call(2, Bytes::from_static(b"hi"), CALL).await;
    assert!(
        reply.is_err(),
        "an expired certificate got a reply: {reply:?}"
    );
    assert!(eventually(CALL, || server.stats().refused_tls >= 1).await);
    assert_eq!(server.stats().accepted, 0);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn certificate_naming_another_node_is_refused() {
    let pki = Pki::new(&[1, 2, 3]);
    // Node 1 presents node 3's (valid) certificate.
    let (client, server) = pair(&pki, TlsIdentity::new(pki.ca.cert_pem(), &pki.certs[&3])).await;
    let reply = client.call(2, Bytes::from_static(b"hi"), CALL).await;
    assert!(
        reply.is_err(),
        "a borrowed certificate got a reply: {reply:?}"
    );
    assert!(eventually(CALL, || server.stats().refused_identity >= 1).await);
    assert_eq!(server.stats().accepted, 0);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn server_impersonating_another_node_is_refused_by_the_client() {
    let pki = Pki::new(&[1, 2, 3]);
    // Whoever listens at node 2's address has node 3's certificate.
    let impostor = node(
        2,
        Security::Tls(TlsIdentity::new(pki.ca.cert_pem(), &pki.certs[&3])),
    )
    .await;
    impostor.serve(Echo::new());
    let client = node(1, pki.security(1)).await;
    client.set_peer(2, impostor.local_addr());
    let reply = client.call(2, Bytes::from_static(b"hi"), CALL).await;
    assert_eq!(reply, Err(TransportError::Unreachable(2)));
    assert!(client.stats().connect_failures >= 1);
    client.shutdown().await;
    impostor.shutdown().await;
}

#[tokio::test]
async fn plaintext_peer_is_refused_by_a_tls_node() {
    let pki = Pki::new(&[1, 2]);
    let server = node(2, pki.security(2)).await;
    server.serve(Echo::new());
    let client = node(1, Security::Insecure).await;
    client.set_peer(2, server.local_addr());
    let reply = client.call(2, Bytes::from_static(b"hi"), CALL).await;
    assert!(reply.is_err(), "plaintext got a reply: {reply:?}");
    assert!(eventually(CALL, || server.stats().refused_tls >= 1).await);
    // Raw garbage instead of a ClientHello is refused the same way.
    let mut raw = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(eventually(CALL, || server.stats().refused_tls >= 2).await);
    // The node keeps serving good peers.
    let cert = pki.ca.issue(3).expect("issue");
    let good = node(3, Security::Tls(TlsIdentity::new(pki.ca.cert_pem(), &cert))).await;
    good.set_peer(2, server.local_addr());
    let reply = good.call(2, Bytes::from_static(b"ok"), CALL).await;
    assert_eq!(reply, Ok(Echo::reply(3, b"ok")));
    good.shutdown().await;
    client.shutdown().await;
    server.shutdown().await;
}

#[test]
fn bad_pem_is_a_typed_error() {
    let pki = Pki::new(&[1]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut identity = TlsIdentity::new(pki.ca.cert_pem(), &pki.certs[&1]);
        identity.ca_pem = "not a certificate".into();
        let err = TcpTransport::bind(TcpConfig::new(1, loopback(), Security::Tls(identity)))
            .await
            .expect_err("no CA");
        assert!(err.to_string().contains("CA"), "{err}");
        let mut identity = TlsIdentity::new(pki.ca.cert_pem(), &pki.certs[&1]);
        identity.key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
        assert!(
            TcpTransport::bind(TcpConfig::new(1, loopback(), Security::Tls(identity)))
                .await
                .is_err()
        );
    });
    assert!(pki.ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(pki.certs[&1].key_pem.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn a_ca_restored_from_its_key_issues_certificates_peers_accept() {
    let pki = Pki::new(&[1, 2]);
    let restored =
        raftengine_tcp::ClusterCa::from_key_pem("test-cluster", &pki.ca.key_pem()).expect("load");
    let cert = restored.issue(1).expect("issue");
    // Trusting the original CA certificate.
    let (client, server) = pair(&pki, TlsIdentity::new(pki.ca.cert_pem(), &cert)).await;
    let reply = client.call(2, Bytes::from_static(b"new"), CALL).await;
    assert_eq!(reply, Ok(Echo::reply(1, b"new")));
    client.shutdown().await;
    server.shutdown().await;
}
