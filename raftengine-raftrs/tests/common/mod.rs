//! A small in-process cluster for the integration tests (virtual time, `MemNetwork`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raftengine::sim::MemNetwork;
use raftengine::{
    Config, Engine, LogStore, MemLogStore, NodeId, Role, SharedStateMachine, StateMachine,
};
use raftengine_raftrs::RaftRsEngine;

/// Appends every command; the response is `index:digest`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TestSm {
    pub commands: Vec<Bytes>,
    pub digest: u64,
}

impl StateMachine for TestSm {
    fn apply(&mut self, index: u64, _term: u64, command: &[u8]) -> Bytes {
        assert!(
            command != b"boom",
            "the test state machine was told to crash"
        );
        self.commands.push(Bytes::copy_from_slice(command));
        for b in command {
            self.digest = self.digest.wrapping_mul(1_099_511_628_211) ^ u64::from(*b);
        }
        Bytes::from(format!("{index}:{}", self.digest))
    }

    fn snapshot(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_u64(self.digest);
        for c in &self.commands {
            buf.put_u32(c.len() as u32);
            buf.put_slice(c);
        }
        buf.freeze()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let mut buf = snapshot;
        if buf.remaining() < 8 {
            return Err("short snapshot".into());
        }
        let digest = buf.get_u64();
        let mut commands = Vec::new();
        while buf.has_remaining() {
            if buf.remaining() < 4 {
                return Err("truncated length".into());
            }
            let len = buf.get_u32() as usize;
            if buf.remaining() < len {
                return Err("truncated command".into());
            }
            commands.push(Bytes::copy_from_slice(&buf[..len]));
            buf.advance(len);
        }
        self.commands = commands;
        self.digest = digest;
        Ok(())
    }
}

/// One node of the test cluster.
pub struct Node {
    pub engine: Arc<RaftRsEngine>,
    pub sm: SharedStateMachine<TestSm>,
    pub store: MemLogStore,
}

/// A cluster on one `MemNetwork`.
pub struct Cluster {
    pub net: MemNetwork,
    pub nodes: BTreeMap<NodeId, Node>,
    pub voters: Vec<NodeId>,
    pub tweak: fn(&mut Config),
}

pub fn no_tweak(_: &mut Config) {}

impl Cluster {
    /// Starts `n` voters 1..=n.
    pub async fn start(n: u64, seed: u64, tweak: fn(&mut Config)) -> Self {
        let voters: Vec<NodeId> = (1..=n).collect();
        let mut cluster = Self {
            net: MemNetwork::new(seed),
            nodes: BTreeMap::new(),
            voters: voters.clone(),
            tweak,
        };
        for id in voters {
            cluster.start_node(id, MemLogStore::new(), true).await;
        }
        cluster
    }

    /// Starts (or restarts) node `id` on `store`; `voter` = part of the initial voters.
    pub async fn start_node(&mut self, id: NodeId, store: MemLogStore, voter: bool) {
        let initial: Vec<NodeId> = if voter {
            self.voters.clone()
        } else {
            Vec::new()
        };
        let mut config = Config::new(id, initial);
        (self.tweak)(&mut config);
        let sm = SharedStateMachine::new(TestSm::default());
        let engine = RaftRsEngine::start(
            config,
            sm.clone(),
            Arc::new(store.clone()) as Arc<dyn LogStore>,
            Arc::new(self.net.transport(id)),
        )
        .await
        .expect("engine starts");
        self.nodes.insert(
            id,
            Node {
                engine: Arc::new(engine),
                sm,
                store,
            },
        );
    }

    pub fn engine(&self, id: NodeId) -> Arc<RaftRsEngine> {
        Arc::clone(&self.nodes[&id].engine)
    }

    /// Shuts node `id` down and returns its store (for a restart).
    pub async fn crash(&mut self, id: NodeId) -> MemLogStore {
        let node = self.nodes.remove(&id).expect("node exists");
        node.engine.shutdown().await.expect("shutdown");
        node.store
    }

    /// Waits (virtual time) until exactly one live node leads in the highest term among
    /// `among`; returns it.
    pub async fn wait_leader_among(&self, among: &[NodeId]) -> NodeId {
        for _ in 0..1000 {
            let statuses: Vec<_> = among
                .iter()
                .filter_map(|id| self.nodes.get(id))
                .map(|n| n.engine.status())
                .collect();
            let max_term = statuses.iter().map(|s| s.term).max().unwrap_or(0);
            let leaders: Vec<_> = statuses
                .iter()
                .filter(|s| s.role == Role::Leader && s.term == max_term)
                .collect();
            if leaders.len() == 1 && leaders[0].applied_term == max_term {
                return leaders[0].id;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no leader elected within 20 s of virtual time");
    }

    pub async fn wait_leader(&self) -> NodeId {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        self.wait_leader_among(&ids).await
    }

    /// Waits until every listed node applied at least `index`.
    pub async fn wait_applied(&self, ids: &[NodeId], index: u64) {
        for _ in 0..1000 {
            if ids
                .iter()
                .all(|id| self.nodes[id].engine.status().applied_index >= index)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen: Vec<_> = ids
            .iter()
            .map(|id| (id, self.nodes[id].engine.status().applied_index))
            .collect();
        panic!("nodes did not apply {index} within 20 s: {seen:?}");
    }

    pub fn commands(&self, id: NodeId) -> Vec<Bytes> {
        self.nodes[&id].sm.read(|sm| sm.commands.clone())
    }

    pub async fn shutdown_all(&mut self) {
        for (_, node) in std::mem::take(&mut self.nodes) {
            node.engine.shutdown().await.expect("shutdown");
        }
    }
}

/// Polls `condition` every 10 ms of virtual time for at most `limit`.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}
