//! Call round trip and one-way throughput of `TcpTransport` on loopback, with TLS on and off,
//! against a bare tokio TCP echo measured in the same run.
//!
//! `CARGO_TARGET_DIR=... cargo bench -p raftengine-tcp --bench transport`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use raftengine::{Inbound, NodeId, Transport};
use raftengine_tcp::{Security, TcpConfig, TcpTransport, TlsIdentity, generate_cluster_certs};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

const PAYLOAD: usize = 64;
const BATCH: u64 = 1000;

/// Two worker threads by default; `BENCH_RUNTIME=current` runs everything on one thread, which
/// takes cross-thread wake-ups (and the noise of other processes) out of the comparison.
fn runtime() -> Runtime {
    let mut builder = if std::env::var("BENCH_RUNTIME").is_ok_and(|v| v == "current") {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(2);
        builder
    };
    builder.enable_all().build().expect("runtime")
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Answers calls with the request; counts one-way messages and wakes the bench at `target`.
#[derive(Default)]
struct Sink {
    received: AtomicU64,
    target: AtomicU64,
    done: Notify,
}

#[async_trait]
impl Inbound for Sink {
    async fn on_call(&self, _from: NodeId, request: Bytes) -> Bytes {
        request
    }

    fn on_message(&self, _from: NodeId, _message: Bytes) {
        let n = self.received.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.target.load(Ordering::Acquire) {
            self.done.notify_one();
        }
    }
}

struct Pair {
    client: TcpTransport,
    server: TcpTransport,
    sink: Arc<Sink>,
}

async fn pair(tls: bool) -> Pair {
    let security = |id: NodeId, certs: &Option<(String, Vec<raftengine_tcp::NodeCert>)>| match certs
    {
        Some((ca, certs)) => Security::Tls(TlsIdentity::new(ca.clone(), &certs[id as usize - 1])),
        None => Security::Insecure,
    };
    let certs = tls.then(|| {
        let (ca, certs) = generate_cluster_certs("bench", &[1, 2]).expect("certs");
        (ca.cert_pem(), certs)
    });
    let server = TcpTransport::bind(TcpConfig::new(2, loopback(), security(2, &certs)))
        .await
        .expect("bind");
    let sink = Arc::new(Sink::default());
    server.serve(Arc::clone(&sink) as _);
    let client = TcpTransport::bind(
        TcpConfig::new(1, loopback(), security(1, &certs)).peer(2, server.local_addr()),
    )
    .await
    .expect("bind");
    client
        .call(2, Bytes::from_static(b"warm"), Duration::from_secs(5))
        .await
        .expect("first call");
    Pair {
        client,
        server,
        sink,
    }
}

/// A bare echo server: each connection echoes what it reads; a connection whose first byte
/// is `b'B'` instead reads a length (u64) and that many bytes, then answers one byte.
async fn bare_server() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut mode = [0u8; 1];
                if stream.read_exact(&mut mode).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; 64 << 10];
                if mode[0] == b'B' {
                    while let Ok(total) = stream.read_u64().await {
                        let mut left = total as usize;
                        while left > 0 {
                            let want = left.min(buf.len());
                            match stream.read(&mut buf[..want]).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => left -= n,
                            }
                        }
                        if stream.write_all(b"k").await.is_err() {
                            return;
                        }
                    }
                    return;
                }
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn bare_client(addr: SocketAddr, mode: u8) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream.write_all(&[mode]).await.expect("mode");
    stream
}

fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("round_trip_64B");
    group.sample_size(30);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    let addr = rt.block_on(bare_server());
    let mut stream = rt.block_on(bare_client(addr, b'E'));
    group.bench_function("bare_tokio_echo", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let request = [7u8; PAYLOAD];
                let mut reply = [0u8; PAYLOAD];
                let start = Instant::now();
                for _ in 0..iters {
                    stream.write_all(&request).await.expect("write");
                    stream.read_exact(&mut reply).await.expect("read");
                }
                start.elapsed()
            })
        })
    });

    for tls in [false, true] {
        let pair = rt.block_on(pair(tls));
        let name = if tls {
            "tcp_transport_tls"
        } else {
            "tcp_transport_plain"
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let request = Bytes::from(vec![7u8; PAYLOAD]);
                    let start = Instant::now();
                    for _ in 0..iters {
                        pair.client
                            .call(2, request.clone(), Duration::from_secs(5))
                            .await
                            .expect("call");
                    }
                    start.elapsed()
                })
            })
        });
        rt.block_on(async {
            pair.client.shutdown().await;
            pair.server.shutdown().await;
        });
    }
    group.finish();
}

fn one_way(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("one_way_64B");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(BATCH));

    let addr = rt.block_on(bare_server());
    let stream = rt.block_on(bare_client(addr, b'B'));
    let mut stream = BufWriter::new(stream);
    group.bench_function(BenchmarkId::new("bare_tokio", BATCH), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let frame = [7u8; PAYLOAD + 4];
                let start = Instant::now();
                for _ in 0..iters {
                    stream
                        .write_u64(BATCH * frame.len() as u64)
                        .await
                        .expect("write");
                    for _ in 0..BATCH {
                        stream.write_all(&frame).await.expect("write");
                    }
                    stream.flush().await.expect("flush");
                    stream.get_mut().read_u8().await.expect("ack");
                }
                start.elapsed()
            })
        })
    });

    for tls in [false, true] {
        let pair = rt.block_on(pair(tls));
        let name = if tls {
            "tcp_transport_tls"
        } else {
            "tcp_transport_plain"
        };
        group.bench_function(BenchmarkId::new(name, BATCH), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let message = Bytes::from(vec![7u8; PAYLOAD]);
                    let start = Instant::now();
                    for _ in 0..iters {
                        pair.sink.received.store(0, Ordering::Release);
                        pair.sink.target.store(BATCH, Ordering::Release);
                        for _ in 0..BATCH {
                            pair.client.send(2, message.clone());
                        }
                        tokio::time::timeout(Duration::from_secs(10), pair.sink.done.notified())
                            .await
                            .expect("batch delivered");
                    }
                    start.elapsed()
                })
            })
        });
        let stats = pair.client.stats();
        assert_eq!(stats.dropped_queue_full, 0, "{stats:?}");
        rt.block_on(async {
            pair.client.shutdown().await;
            pair.server.shutdown().await;
        });
    }
    group.finish();
}

criterion_group!(benches, round_trip, one_way);
criterion_main!(benches);
