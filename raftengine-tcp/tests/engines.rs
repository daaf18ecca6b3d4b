//! Both engines run a real-time 3-node cluster over `TcpTransport` with mutual TLS on loopback:
//! election, writes, a leadership transfer, a follower restart and a leader kill.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{Pki, loopback};
use conformance_tests::TestSm;
use conformance_tests::sm::{Command, Response};
use raftengine::{
    Config, Engine, EngineParts, LogStore, MemLogStore, NodeId, SharedStateMachine, StartEngine,
    Transport,
};
use raftengine_tcp::{TcpConfig, TcpTransport};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
enum Backend {
    Openraft,
    RaftRs,
}

struct Node {
    engine: Arc<dyn Engine>,
    sm: SharedStateMachine<TestSm>,
    transport: Arc<TcpTransport>,
}

struct TcpCluster {
    backend: Backend,
    pki: Pki,
    ids: Vec<NodeId>,
    addrs: BTreeMap<NodeId, SocketAddr>,
    stores: BTreeMap<NodeId, MemLogStore>,
    nodes: BTreeMap<NodeId, Node>,
}

const LIMIT: Duration = Duration::from_secs(10);

impl TcpCluster {
    async fn start(backend: Backend) -> Self {
        let ids = vec![1, 2, 3];
        let pki = Pki::new(&ids);
        let mut transports = BTreeMap::new();
        for &id in &ids {
            let transport = TcpTransport::bind(TcpConfig::new(id, loopback(), pki.security(id)))
                .await
                .expect("bind");
            transports.insert(id, Arc::new(transport));
        }
        let addrs: BTreeMap<_, _> = transports
            .iter()
            .map(|(&id, t)| (id, t.local_addr()))
            .collect();
        for (&id, transport) in &transports {
            for (&peer, &addr) in &addrs {
                if peer != id {
                    transport.set_peer(peer, addr);
                }
            }
        }
        let mut cluster = Self {
            backend,
            pki,
            ids: ids.clone(),
            addrs,
            stores: ids.iter().map(|&id| (id, MemLogStore::new())).collect(),
            nodes: BTreeMap::new(),
        };
        for (id, transport) in transports {
            cluster.start_engine(id, transport).await;
        }
        cluster
    }

    async fn start_engine(&mut self, id: NodeId, transport: Arc<TcpTransport>) {
        let config = Config::new(id, self.ids.iter().copied());
        let sm = SharedStateMachine::new(TestSm::new());
        let store: Arc<dyn LogStore> = Arc::new(self.stores[&id].clone());
        let dyn_transport: Arc<dyn Transport> = Arc::clone(&transport) as _;
        let engine: Arc<dyn Engine> = match self.backend {
            Backend::Openraft => Arc::new(
                raftengine_openraft::OpenraftEngine::start(EngineParts::new(
                    config,
                    sm.clone(),
                    store,
                    dyn_transport,
                ))
                .await
                .expect("start openraft"),
            ),
            Backend::RaftRs => Arc::new(
                raftengine_raftrs::RaftRsEngine::start(EngineParts::new(
                    config,
                    sm.clone(),
                    store,
                    dyn_transport,
                ))
                .await
                .expect("start raft-rs"),
            ),
        };
        self.nodes.insert(
            id,
            Node {
                engine,
                sm,
                transport,
            },
        );
    }

    /// Kills node `id`: engine and transport stop; its log store survives for a restart.
    async fn kill(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).expect("running node");
        let _ = node.engine.shutdown().await;
        node.transport.shutdown().await;
    }

    /// Restarts node `id` on the same address with its old log store and an empty state machine.
    async fn restart(&mut self, id: NodeId) {
        let mut config = TcpConfig::new(id, self.addrs[&id], self.pki.security(id));
        for (&peer, &addr) in &self.addrs {
            if peer != id {
                config = config.peer(peer, addr);
            }
        }
        let transport = TcpTransport::bind(config).await.expect("rebind");
        self.start_engine(id, Arc::new(transport)).await;
    }

    async fn wait_for_leader(&self, among: &[NodeId]) -> NodeId {
        let start = Instant::now();
        loop {
            let ready = among.iter().find(|id| {
                self.nodes
                    .get(id)
                    .is_some_and(|n| n.engine.status().is_ready_leader())
            });
            if let Some(&id) = ready {
                return id;
            }
            assert!(
                start.elapsed() < LIMIT,
                "{:?}: no leader among {among:?} within {LIMIT:?}: {}",
                self.backend,
                self.describe()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn describe(&self) -> String {
        self.nodes
            .iter()
            .map(|(id, n)| {
                let s = n.engine.status();
                format!("{id}: {:?} term {} leader {:?}", s.role, s.term, s.leader)
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn put(&self, leader: NodeId, key: u64, value: u64) {
        let command = Command::Put { key, value }.encode();
        let applied = self.nodes[&leader]
            .engine
            .propose(command)
            .await
            .unwrap_or_else(|e| panic!("{:?}: put {key}={value} on {leader}: {e}", self.backend));
        assert!(
            matches!(
                Response::decode(&applied.response),
                Some(Response::Written { .. })
            ),
            "put answered {:?}",
            Response::decode(&applied.response)
        );
    }

    /// Waits until every running node applied the write `key = value`.
    async fn wait_applied(&self, key: u64, value: u64) {
        let start = Instant::now();
        while !self
            .nodes
            .values()
            .all(|n| n.sm.read(|sm| sm.has_applied_write(key, value)))
        {
            assert!(
                start.elapsed() < LIMIT,
                "{:?}: {key}={value} not applied everywhere within {LIMIT:?}: {}",
                self.backend,
                self.describe()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn shutdown(mut self) {
        let ids: Vec<_> = self.nodes.keys().copied().collect();
        for id in ids {
            self.kill(id).await;
        }
    }
}

async fn scenario(backend: Backend) {
    let mut cluster = TcpCluster::start(backend).await;
    let leader = cluster.wait_for_leader(&[1, 2, 3]).await;
    for i in 0..20 {
        cluster.put(leader, i % 5, 100 + i).await;
    }
    cluster.wait_applied(4, 119).await;

    // Transfer to a follower.
    let target = *[1, 2, 3].iter().find(|&&id| id != leader).unwrap();
    let got = cluster.nodes[&leader]
        .engine
        .transfer_leadership(Some(target))
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: transfer to {target}: {e}"));
    assert_eq!(got, target);
    let leader = cluster.wait_for_leader(&[target]).await;
    cluster.put(leader, 10, 1).await;

    // A follower goes down, writes continue, it comes back and catches up.
    let follower = *[1, 2, 3].iter().find(|&&id| id != leader).unwrap();
    cluster.kill(follower).await;
    for i in 0..10 {
        cluster.put(leader, 20, i).await;
    }
    cluster.restart(follower).await;
    cluster.wait_applied(20, 9).await;

    // The leader dies; the others elect a new one and keep accepting writes.
    cluster.kill(leader).await;
    let rest: Vec<NodeId> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();
    let new_leader = cluster.wait_for_leader(&rest).await;
    assert_ne!(new_leader, leader);
    cluster.put(new_leader, 30, 1).await;
    cluster.wait_applied(30, 1).await;

    // The old leader returns as a follower and catches up.
    cluster.restart(leader).await;
    cluster.put(new_leader, 31, 1).await;
    cluster.wait_applied(31, 1).await;
    let stats: Vec<_> = cluster
        .nodes
        .values()
        .map(|n| n.transport.stats())
        .collect();
    for s in &stats {
        assert_eq!(
            s.frames_rejected + s.refused_tls + s.refused_identity,
            0,
            "{s:?}"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft_over_tls_tcp() {
    tokio::time::timeout(Duration::from_secs(60), scenario(Backend::Openraft))
        .await
        .expect("scenario within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raftrs_over_tls_tcp() {
    tokio::time::timeout(Duration::from_secs(60), scenario(Backend::RaftRs))
        .await
        .expect("scenario within 60 s");
}
