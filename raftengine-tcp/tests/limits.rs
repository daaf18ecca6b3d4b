//! Deadlines, back-pressure, large messages and clean shutdown of `TcpTransport` on loopback.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Pki, cluster, eventually, loopback};
use conformance_tests::transport::handlers::{Echo, Keep};
use raftengine::{Transport, TransportError};
use raftengine_tcp::{Security, TcpConfig, TcpTransport};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// A listener that accepts connections and never reads or answers: a peer stuck in a handshake
/// or not reading at all.
async fn black_hole() -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

async fn hold_connections(listener: TcpListener) {
    let mut held = Vec::new();
    while let Ok((stream, _)) = listener.accept().await {
        held.push(stream);
    }
}

#[tokio::test]
async fn call_honours_its_deadline_when_the_handshake_never_ends() {
    let pki = Pki::new(&[1, 2]);
    let (listener, addr) = black_hole().await;
    let holder = tokio::spawn(hold_connections(listener));
    let client = TcpTransport::bind(TcpConfig::new(1, loopback(), pki.security(1)).peer(2, addr))
        .await
        .unwrap();
    for timeout in [Duration::from_millis(150), Duration::from_millis(400)] {
        let start = Instant::now();
        let result = client.call(2, Bytes::from_static(b"x"), timeout).await;
        let took = start.elapsed();
        assert_eq!(result, Err(TransportError::Timeout(2)));
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(500),
            "{took:?}"
        );
    }
    client.shutdown().await;
    holder.abort();
}

#[tokio::test]
async fn a_peer_that_never_reads_cannot_make_us_buffer_without_bound() {
    let (listener, addr) = black_hole().await;
    let holder = tokio::spawn(hold_connections(listener));
    let mut config = TcpConfig::new(1, loopback(), Security::Insecure).peer(2, addr);
    config.queue_limit = 1 << 20;
    let client = TcpTransport::bind(config).await.unwrap();
    let message = Bytes::from(vec![0u8; 60 << 10]);
    // Far more than socket buffers and the queue hold together.
    for _ in 0..1000 {
        client.send(2, message.clone());
        tokio::task::yield_now().await;
    }
    assert!(
        eventually(Duration::from_secs(3), || client.stats().dropped_queue_full
            > 0)
        .await,
        "{:?}",
        client.stats()
    );
    let start = Instant::now();
    let result = client
        .call(2, message.clone(), Duration::from_secs(5))
        .await;
    assert_eq!(result, Err(TransportError::Overloaded(2)));
    assert!(start.elapsed() < Duration::from_millis(100));
    assert!(client.stats().calls_overloaded >= 1);
    // A request over the message limit is refused before queueing.
    let mut config = TcpConfig::new(3, loopback(), Security::Insecure).peer(2, addr);
    config.max_message_len = 1024;
    let small = TcpTransport::bind(config).await.unwrap();
    let result = small
        .call(2, Bytes::from(vec![0u8; 2048]), Duration::from_secs(1))
        .await;
    assert_eq!(result, Err(TransportError::Overloaded(2)));
    small.shutdown().await;
    client.shutdown().await;
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transfer_interleaves_with_small_calls() {
    let pki = Pki::new(&[1, 2]);
    let nodes = cluster(&[1, 2], Some(&pki)).await;
    let (t1, t2) = (Arc::clone(&nodes[&1]), Arc::clone(&nodes[&2]));
    let keep = Keep::new(16);
    t2.serve(Arc::clone(&keep) as _);
    t1.call(2, Bytes::from_static(b"warm"), Duration::from_secs(2))
        .await
        .unwrap();
    let len = 96 << 20;
    let big = Bytes::from(vec![0x5Au8; len]);
    let start = Instant::now();
    let large = {
        let t1 = Arc::clone(&t1);
        let big = big.clone();
        tokio::spawn(async move { t1.call(2, big, Duration::from_secs(60)).await })
    };
    let mut during = 0u32;
    let mut slowest = Duration::ZERO;
    while !large.is_finished() {
        let sent = Instant::now();
        let reply = t1
            .call(2, Bytes::from_static(b"hb"), Duration::from_secs(2))
            .await;
        assert!(reply.is_ok(), "heartbeat during transfer: {reply:?}");
        slowest = slowest.max(sent.elapsed());
        during += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let reply = large.await.unwrap().expect("large call");
    let took = start.elapsed();
    assert_eq!(&reply[..], &(len as u64).to_be_bytes());
    assert!(keep.take_call().is_some_and(|got| got == big));
    println!("{len} bytes in {took:?}; {during} small calls meanwhile, slowest {slowest:?}");
    assert!(
        during >= 3,
        "only {during} small calls completed during a {took:?} transfer"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "slowest small call {slowest:?}"
    );
    assert!(took < Duration::from_secs(30));
    t1.shutdown().await;
    t2.shutdown().await;
}

#[tokio::test]
async fn restarted_peer_is_reachable_within_one_backoff_period() {
    let mut nodes = cluster(&[1, 2], None).await;
    let t1 = Arc::clone(&nodes[&1]);
    t1.serve(Echo::new());
    let old = nodes.remove(&2).unwrap();
    let addr = old.local_addr();
    old.serve(Echo::new());
    t1.call(2, Bytes::from_static(b"a"), Duration::from_secs(2))
        .await
        .unwrap();
    old.shutdown().await;
    drop(old);
    // Down: failures are immediate, and repeated ones grow the backoff to its maximum.
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_millis(1500) {
        let start = Instant::now();
        let result = t1
            .call(2, Bytes::from_static(b"b"), Duration::from_secs(5))
            .await;
        assert!(result.is_err());
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let new =
        TcpTransport::bind(TcpConfig::new(2, addr, Security::Insecure).peer(1, t1.local_addr()))
            .await
            .unwrap();
    new.serve(Echo::new());
    let restarted = Instant::now();
    let backoff_max = TcpConfig::new(1, loopback(), Security::Insecure).backoff_max;
    loop {
        if t1
            .call(2, Bytes::from_static(b"c"), Duration::from_secs(1))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            restarted.elapsed() < backoff_max + Duration::from_millis(300),
            "not reachable {:?} after restart",
            restarted.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    new.shutdown().await;
    t1.shutdown().await;
}

#[tokio::test]
async fn shutdown_and_drop_release_everything() {
    let nodes = cluster(&[1, 2], None).await;
    let (t1, t2) = (Arc::clone(&nodes[&1]), Arc::clone(&nodes[&2]));
    drop(nodes);
    t2.serve(Echo::new());
    t1.call(2, Bytes::from_static(b"x"), Duration::from_secs(2))
        .await
        .unwrap();
    let addr2 = t2.local_addr();
    t2.shutdown().await;
    // The listener is closed: the port can be bound again, and callers see the node down.
    let again = TcpListener::bind(addr2)
        .await
        .expect("port released by shutdown");
    drop(again);
    // The caller learns of the closed connection when it reads the end of the stream.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let result = t1
        .call(2, Bytes::from_static(b"y"), Duration::from_secs(5))
        .await;
    assert_eq!(result, Err(TransportError::Unreachable(2)));
    // Calls on a shut-down transport fail at once.
    let result = t2
        .call(1, Bytes::from_static(b"z"), Duration::from_secs(5))
        .await;
    assert_eq!(result, Err(TransportError::Unreachable(1)));
    // Dropping the last handle stops the listener too.
    let addr1 = t1.local_addr();
    drop(t1);
    assert!(
        eventually(Duration::from_secs(2), || std::net::TcpListener::bind(
            addr1
        )
        .is_ok())
        .await,
        "port of a dropped transport still bound"
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_for_handlers_that_never_answer() {
    use conformance_tests::transport::handlers::Hang;
    let nodes = cluster(&[1, 2], None).await;
    let (t1, t2) = (Arc::clone(&nodes[&1]), Arc::clone(&nodes[&2]));
    t2.serve(Arc::new(Hang));
    for _ in 0..5 {
        let result = t1
            .call(2, Bytes::from_static(b"x"), Duration::from_millis(100))
            .await;
        assert_eq!(result, Err(TransportError::Timeout(2)));
    }
    let start = Instant::now();
    t2.shutdown().await;
    t1.shutdown().await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "shutdown took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn shutdown_closes_outbound_connections_while_the_value_lives() {
    use tokio::io::AsyncReadExt;
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client =
        TcpTransport::bind(TcpConfig::new(1, loopback(), Security::Insecure).peer(2, addr))
            .await
            .unwrap();
    client.send(2, Bytes::from_static(b"hello"));
    let (mut peer_side, _) = tokio::time::timeout(Duration::from_secs(2), listener.accept())
        .await
        .expect("the transport connects")
        .unwrap();
    // Read what arrived (hello and message), then expect the end of the stream after shutdown.
    let mut buf = vec![0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), peer_side.read(&mut buf)).await;
    client.shutdown().await;
    let closed = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match peer_side.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "connection still open after shutdown");
    drop(client);
}
