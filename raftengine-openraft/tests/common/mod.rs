//! A small test state machine and a cluster harness over `MemNetwork`, in virtual time.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raftengine::sim::MemNetwork;
use raftengine::{
    Config, Engine, LogStore, MemLogStore, NodeId, Role, SharedStateMachine, StateMachine, Status,
};
use raftengine_openraft::OpenraftEngine;
use tokio::time::Instant;

/// Records every applied command; the response names the index it was applied at.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recorder {
    pub applied: Vec<(u64, Vec<u8>)>,
}

impl StateMachine for Recorder {
    fn apply(&mut self, index: u64, _term: u64, command: &[u8]) -> Bytes {
        self.applied.push((index, command.to_vec()));
        Bytes::from(format!("applied@{index}"))
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::new();
        for (index, command) in &self.applied {
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&(command.len() as u32).to_le_bytes());
            out.extend_from_slice(command);
        }
        Bytes::from(out)
    }

    fn restore(&mut self, mut snapshot: &[u8]) -> Result<(), String> {
        let mut applied = Vec::new();
        while !snapshot.is_empty() {
            if snapshot.len() < 12 {
                return Err("truncated snapshot".into());
            }
            let index = u64::from_le_bytes(snapshot[..8].try_into().unwrap());
            let len = u32::from_le_bytes(snapshot[8..12].try_into().unwrap()) as usize;
            if snapshot.len() < 12 + len {
                return Err("truncated snapshot".into());
            }
            applied.push((index, snapshot[12..12 + len].to_vec()));
            snapshot = &snapshot[12 + len..];
        }
        self.applied = applied;
        Ok(())
    }
}

impl Recorder {
    pub fn commands(&self) -> Vec<Vec<u8>> {
        self.applied.iter().map(|(_, c)| c.clone()).collect()
    }
}

pub struct Node {
    pub engine: OpenraftEngine,
    pub store: MemLogStore,
    pub sm: SharedStateMachine<Recorder>,
}

pub struct Cluster {
    pub net: MemNetwork,
    pub voters: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, Node>,
    pub tweak: fn(&mut Config),
}

pub fn base_config(id: NodeId, voters: &[NodeId]) -> Config {
    let mut config = Config::new(id, voters.iter().copied());
    config.request_timeout = Duration::from_secs(2);
    config.snapshot_after_entries = 0;
    config
}

impl Cluster {
    /// Starts `n` voters (ids 1..=n) that bootstrap together.
    pub async fn start(n: u64, seed: u64) -> Self {
        Self::start_with(n, seed, |_| {}).await
    }

    pub async fn start_with(n: u64, seed: u64, tweak: fn(&mut Config)) -> Self {
        let voters: Vec<NodeId> = (1..=n).collect();
        let mut cluster = Self {
            net: MemNetwork::new(seed),
            voters: voters.clone(),
            nodes: BTreeMap::new(),
            tweak,
        };
        for id in voters {
            cluster.boot(id, MemLogStore::new(), true).await;
        }
        cluster
    }

    /// Starts node `id` on `store`; `voter` decides whether it bootstraps with the voters.
    pub async fn boot(&mut self, id: NodeId, store: MemLogStore, voter: bool) {
        let initial: Vec<NodeId> = if voter {
            self.voters.clone()
        } else {
            Vec::new()
        };
        let mut config = base_config(id, &initial);
        (self.tweak)(&mut config);
        let sm = SharedStateMachine::new(Recorder::default());
        let engine = OpenraftEngine::start(
            config,
            sm.clone(),
            Arc::new(store.clone()) as Arc<dyn LogStore>,
            Arc::new(self.net.transport(id)),
        )
        .await
        .expect("engine starts");
        self.nodes.insert(id, Node { engine, store, sm });
    }

    pub fn engine(&self, id: NodeId) -> &OpenraftEngine {
        &self.nodes[&id].engine
    }

    pub fn status(&self, id: NodeId) -> Status {
        self.nodes[&id].engine.status()
    }

    /// Waits (virtual time) until one running node leads and the others agree on it.
    pub async fn leader(&self) -> NodeId {
        self.leader_among(&self.nodes.keys().copied().collect::<Vec<_>>())
            .await
    }

    pub async fn leader_among(&self, ids: &[NodeId]) -> NodeId {
        self.leader_after(0, ids).await
    }

    /// Waits until the listed nodes agree on a leader of a term above `term`.
    pub async fn leader_after(&self, term: u64, ids: &[NodeId]) -> NodeId {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let statuses: Vec<Status> = ids.iter().map(|id| self.status(*id)).collect();
            let leaders: Vec<&Status> = statuses
                .iter()
                .filter(|s| s.role == Role::Leader && s.applied_term == s.term && s.term > term)
                .collect();
            if let [leader] = leaders.as_slice()
                && statuses
                    .iter()
                    .all(|s| s.leader == Some(leader.id) && s.term == leader.term)
            {
                return leader.id;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {ids:?}: {statuses:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until every listed node has applied at least `index`.
    pub async fn wait_applied(&self, ids: &[NodeId], index: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for id in ids {
            let mut status = self.engine(*id).subscribe();
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::timeout(left, status.wait_for(|s| s.applied_index >= index))
                .await
                .unwrap_or_else(|_| panic!("node {id} did not apply {index}"))
                .expect("status channel open");
        }
    }

    pub fn commands(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.nodes[&id].sm.read(|sm| sm.commands())
    }

    pub fn followers(&self, leader: NodeId) -> Vec<NodeId> {
        self.nodes
            .keys()
            .copied()
            .filter(|id| *id != leader)
            .collect()
    }

    pub async fn shutdown_all(&self) {
        for node in self.nodes.values() {
            node.engine.shutdown().await.expect("shutdown");
        }
    }
}

pub fn cmd(i: u64) -> Bytes {
    Bytes::from(format!("cmd-{i}"))
}
