//! Shared test setup: a TLS cluster of `TcpTransport`s on loopback.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use conformance_tests::transport::{TestNetwork, TransportFactory};
use conformance_tests::{BoxFuture, Failure};
use raftengine::{NodeId, Transport};
use raftengine_tcp::{ClusterCa, NodeCert, Security, TcpConfig, TcpTransport, TlsIdentity};

/// Loopback with a port the OS picks.
pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A cluster CA and one certificate per node.
pub struct Pki {
    pub ca: ClusterCa,
    pub certs: HashMap<NodeId, NodeCert>,
}

impl Pki {
    pub fn new(ids: &[NodeId]) -> Self {
        let (ca, certs) = raftengine_tcp::generate_cluster_certs("test-cluster", ids)
            .expect("certificate generation");
        Self {
            ca,
            certs: certs.into_iter().map(|c| (c.id, c)).collect(),
        }
    }

    pub fn security(&self, id: NodeId) -> Security {
        Security::Tls(TlsIdentity::new(self.ca.cert_pem(), &self.certs[&id]))
    }
}

/// Binds one transport per id (TLS when `pki` is given) and tells each the others' addresses.
pub async fn cluster(ids: &[NodeId], pki: Option<&Pki>) -> HashMap<NodeId, Arc<TcpTransport>> {
    let mut transports = HashMap::new();
    for &id in ids {
        let security = pki.map_or(Security::Insecure, |p| p.security(id));
        let transport = TcpTransport::bind(TcpConfig::new(id, loopback(), security))
            .await
            .expect("bind");
        transports.insert(id, Arc::new(transport));
    }
    connect_all(&transports);
    transports
}

pub fn connect_all(transports: &HashMap<NodeId, Arc<TcpTransport>>) {
    for (&id, transport) in transports {
        for (&peer, other) in transports {
            if peer != id {
                transport.set_peer(peer, other.local_addr());
            }
        }
    }
}

/// The transport suite's factory: `TcpTransport` with mutual TLS on 127.0.0.1.
#[derive(Debug, Default)]
pub struct TcpTls;

impl TransportFactory for TcpTls {
    const NAME: &'static str = "tcp-tls";
    const PAUSED_CLOCK: bool = false;

    fn start(&self, ids: Vec<NodeId>) -> BoxFuture<'static, Result<Box<dyn TestNetwork>, Failure>> {
        Box::pin(async move {
            let pki = Pki::new(&ids);
            let transports = cluster(&ids, Some(&pki)).await;
            Ok(Box::new(TcpNet {
                pki,
                transports: Mutex::new(transports),
            }) as Box<dyn TestNetwork>)
        })
    }
}

struct TcpNet {
    pki: Pki,
    transports: Mutex<HashMap<NodeId, Arc<TcpTransport>>>,
}

impl TcpNet {
    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Arc<TcpTransport>>> {
        self.transports.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TestNetwork for TcpNet {
    fn transport(&self, id: NodeId) -> Arc<dyn Transport> {
        let transports = self.lock();
        Arc::clone(&transports[&id]) as Arc<dyn Transport>
    }

    fn restart(&self, id: NodeId) -> BoxFuture<'_, Result<Arc<dyn Transport>, Failure>> {
        Box::pin(async move {
            let old = self
                .lock()
                .remove(&id)
                .ok_or_else(|| Failure::new(format!("no node {id}")))?;
            let addr = old.local_addr();
            old.shutdown().await;
            let mut config = TcpConfig::new(id, addr, self.pki.security(id));
            for (&peer, other) in self.lock().iter() {
                config = config.peer(peer, other.local_addr());
            }
            let new = TcpTransport::bind(config).await.map_err(|e| {
                Failure::new(format!("restarted node {id} cannot bind {addr}: {e}"))
            })?;
            let new = Arc::new(new);
            self.lock().insert(id, Arc::clone(&new));
            Ok(new as Arc<dyn Transport>)
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let transports: Vec<_> = self.lock().values().cloned().collect();
            for transport in transports {
                transport.shutdown().await;
            }
        })
    }
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: std::time::Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
