//! Bad input from a connected peer never panics and never grows memory: the connection is
//! closed, a counter goes up, and the node keeps serving everyone else.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{eventually, loopback};
use conformance_tests::transport::handlers::Echo;
use raftengine::Transport;
use raftengine_tcp::frame::{Envelope, Flags, Header, Kind};
use raftengine_tcp::{Security, TcpConfig, TcpStats, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: Duration = Duration::from_secs(3);

/// A plaintext node 2 (so raw bytes reach the frame decoder) with a short handshake timeout.
async fn server() -> TcpTransport {
    let mut config = TcpConfig::new(2, loopback(), Security::Insecure);
    config.handshake_timeout = Duration::from_millis(300);
    let server = TcpTransport::bind(config).await.expect("bind");
    server.serve(Echo::new());
    server
}

fn frame(header: Header, payload: &[u8]) -> Vec<u8> {
    let body = Envelope::encode(&header, payload);
    let mut out = Vec::with_capacity(4 + body.len());
    out.put_u32(body.len() as u32);
    out.extend_from_slice(&body);
    out
}

fn header(kind: Kind, from: u64, to: u64, total: u64) -> Header {
    Header {
        kind,
        flags: Flags::empty(),
        id: if kind == Kind::Hello { 0 } else { 1 },
        from,
        to,
        total,
    }
}

fn hello(from: u64, to: u64) -> Vec<u8> {
    frame(header(Kind::Hello, from, to, 0), &[])
}

/// Sends `bytes` on a fresh connection and waits for the server to close it.
async fn send_and_expect_close(server: &TcpTransport, bytes: &[u8]) {
    let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
    raw.write_all(bytes).await.unwrap();
    expect_closed(&mut raw).await;
}

async fn expect_closed(raw: &mut TcpStream) {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(LIMIT, raw.read(&mut buf)).await;
    match read {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("server sent {n} bytes instead of closing"),
        Err(_) => panic!("server did not close the connection within {LIMIT:?}"),
    }
}

/// A good client still gets answers.
async fn still_serves(server: &TcpTransport) {
    let client = TcpTransport::bind(
        TcpConfig::new(1, loopback(), Security::Insecure).peer(2, server.local_addr()),
    )
    .await
    .unwrap();
    let reply = client.call(2, Bytes::from_static(b"ok?"), LIMIT).await;
    assert_eq!(reply, Ok(Echo::reply(1, b"ok?")));
    client.shutdown().await;
}

async fn check(name: &str, bytes: Vec<u8>, counter: impl Fn(&TcpStats) -> u64) {
    let server = server().await;
    send_and_expect_close(&server, &bytes).await;
    assert!(
        eventually(LIMIT, || counter(&server.stats()) == 1).await,
        "{name}: counter not bumped: {:?}",
        server.stats()
    );
    still_serves(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_length_prefix_closes_the_connection() {
    let mut bytes = hello(1, 2);
    // Claims a 4 GiB frame: refused from the prefix alone, nothing is allocated for it.
    bytes.put_u32(u32::MAX);
    bytes.extend_from_slice(&[0u8; 16]);
    check("oversized", bytes, |s| s.frames_rejected).await;
}

#[tokio::test]
async fn truncated_frame_closes_the_connection() {
    let server = server().await;
    let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut bytes = hello(1, 2);
    let call = frame(header(Kind::Call, 1, 2, 100), &[7u8; 100]);
    bytes.extend_from_slice(&call[..call.len() - 40]);
    raw.write_all(&bytes).await.unwrap();
    // Half-close: the server sees the stream end inside a frame.
    raw.shutdown().await.unwrap();
    expect_closed(&mut raw).await;
    assert!(eventually(LIMIT, || server.stats().frames_rejected == 1).await);
    still_serves(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn random_bytes_are_refused() {
    // Deterministic noise (no RNG needed): instead of a hello, and after a good hello.
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut small = Vec::new();
    small.put_u32(noise.len() as u32);
    small.extend_from_slice(&noise);
    check("noise as hello", small.clone(), |s| s.refused_bad_hello).await;
    let mut after_hello = hello(1, 2);
    after_hello.extend_from_slice(&small);
    check("noise after hello", after_hello, |s| s.frames_rejected).await;
}

#[tokio::test]
async fn silent_connection_times_out() {
    let server = server().await;
    let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
    expect_closed(&mut raw).await;
    assert!(eventually(LIMIT, || server.stats().refused_timeout == 1).await);
    still_serves(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn frames_for_another_node_are_refused() {
    // A hello meant for node 7.
    check("hello to 7", hello(1, 7), |s| s.refused_wrong_node).await;
    // A good hello, then a call addressed to node 7.
    let mut bytes = hello(1, 2);
    bytes.extend(frame(header(Kind::Call, 1, 7, 2), b"hi"));
    check("call to 7", bytes, |s| s.frames_rejected).await;
    // A good hello, then a call claiming to come from node 3.
    let mut bytes = hello(1, 2);
    bytes.extend(frame(header(Kind::Call, 3, 2, 2), b"hi"));
    check("spoofed sender", bytes, |s| s.frames_rejected).await;
}

#[tokio::test]
async fn inconsistent_chunks_are_refused() {
    // A chunk declaring a message beyond the limit.
    let mut bytes = hello(1, 2);
    let mut h = header(Kind::Call, 1, 2, u64::MAX);
    h.flags = Flags::MORE;
    bytes.extend(frame(h, b"x"));
    check("huge total", bytes, |s| s.frames_rejected).await;
    // A last chunk that does not complete the declared length.
    let mut bytes = hello(1, 2);
    let mut first = header(Kind::Call, 1, 2, 10);
    first.flags = Flags::MORE;
    bytes.extend(frame(first, b"abc"));
    bytes.extend(frame(header(Kind::Call, 1, 2, 10), b"de"));
    check("short message", bytes, |s| s.frames_rejected).await;
    // A reply where only calls and one-way messages may come.
    let mut bytes = hello(1, 2);
    bytes.extend(frame(header(Kind::Reply, 1, 2, 1), b"r"));
    check("reply inbound", bytes, |s| s.frames_rejected).await;
}

#[tokio::test]
async fn valid_raw_call_gets_a_reply() {
    // The raw framing above is the real protocol: the same bytes with correct fields work.
    let server = server().await;
    let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut bytes = hello(1, 2);
    bytes.extend(frame(header(Kind::Call, 1, 2, 2), b"hi"));
    raw.write_all(&bytes).await.unwrap();
    let len = tokio::time::timeout(LIMIT, raw.read_u32())
        .await
        .unwrap()
        .unwrap();
    let mut body = BytesMut::zeroed(len as usize);
    raw.read_exact(&mut body).await.unwrap();
    let reply = Envelope::decode(body.freeze()).unwrap();
    assert_eq!(reply.header.kind, Kind::Reply);
    assert_eq!(reply.header.id, 1);
    assert_eq!(reply.payload, Echo::reply(1, b"hi"));
    assert_eq!(server.stats().frames_rejected, 0);
    server.shutdown().await;
}
