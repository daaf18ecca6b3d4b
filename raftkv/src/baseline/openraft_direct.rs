//! openraft driven directly: upstream's own in-memory store (`openraft-memstore`) and a
//! function-call network, no raftengine code in the path. This is the yardstick the openraft
//! adapter's overhead is measured against.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{Config, Raft, ServerState};
use openraft_memstore::{ClientRequest, MemStateMachine, TypeConfig};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DirectCluster, WRITE_DEADLINE, Wire, WriteTarget};

type MemRaft = Raft<TypeConfig, Arc<MemStateMachine>>;
type Router = Arc<Mutex<BTreeMap<u64, MemRaft>>>;

/// A 3-node openraft cluster with nothing of ours between the client and the library.
pub struct DirectOpenraft {
    router: Router,
    leader: MemRaft,
    value: String,
}

impl DirectCluster for DirectOpenraft {
    /// Starts `nodes` nodes, elects node 1, and waits until it leads.
    async fn start(
        nodes: u64,
        one_way_delay: Duration,
        value_size: usize,
        wire: Wire,
    ) -> Result<Self, String> {
        let config = Config {
            heartbeat_interval: 50,
            election_timeout_min: 300,
            election_timeout_max: 600,
            ..Default::default()
        };
        let config = Arc::new(config.validate().map_err(|e| e.to_string())?);
        let router: Router = Arc::default();
        for id in 1..=nodes {
            let (log, sm) = openraft_memstore::new_mem_store();
            let network = DirectNetworkFactory {
                router: Arc::clone(&router),
                delay: one_way_delay,
                wire,
            };
            let raft = MemRaft::new(id, Arc::clone(&config), network, log, sm)
                .await
                .map_err(|e| e.to_string())?;
            router
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, raft);
        }
        let leader = raft_of(&router, 1)?;
        leader
            .initialize((1..=nodes).collect::<std::collections::BTreeSet<u64>>())
            .await
            .map_err(|e| e.to_string())?;
        leader
            .wait(Some(Duration::from_secs(10)))
            .state(ServerState::Leader, "baseline leader")
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            router,
            leader,
            value: "v".repeat(value_size),
        })
    }

    /// Shuts every node down.
    async fn shutdown(self) {
        let rafts: Vec<MemRaft> = self
            .router
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for raft in rafts {
            let _ = raft.shutdown().await;
        }
    }
}

impl WriteTarget for DirectOpenraft {
    fn write(&self, client: usize, serial: u64) -> impl Future<Output = Result<(), String>> + Send {
        let leader = self.leader.clone();
        let request = ClientRequest {
            client: client.to_string(),
            serial,
            status: self.value.clone(),
        };
        async move {
            tokio::time::timeout(WRITE_DEADLINE, leader.client_write(request))
                .await
                .map_err(|_| format!("no answer within {WRITE_DEADLINE:?}"))?
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

fn raft_of(router: &Router, id: u64) -> Result<MemRaft, String> {
    router
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&id)
        .cloned()
        .ok_or_else(|| format!("node {id} is not running"))
}

struct DirectNetworkFactory {
    router: Router,
    delay: Duration,
    wire: Wire,
}

impl RaftNetworkFactory<TypeConfig> for DirectNetworkFactory {
    type Network = DirectNetwork;

    async fn new_client(&mut self, target: u64, _node: &()) -> DirectNetwork {
        DirectNetwork {
            target,
            router: Arc::clone(&self.router),
            delay: self.delay,
            wire: self.wire,
        }
    }
}

struct DirectNetwork {
    target: u64,
    router: Router,
    delay: Duration,
    wire: Wire,
}

impl DirectNetwork {
    async fn peer(&self) -> Result<MemRaft, Unreachable<TypeConfig>> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        raft_of(&self.router, self.target).map_err(|e| Unreachable::new(&std::io::Error::other(e)))
    }

    /// What the other side receives: the value itself, or its encoding decoded again.
    fn carry<T: Serialize + DeserializeOwned>(
        &self,
        value: T,
    ) -> Result<T, Unreachable<TypeConfig>> {
        match self.wire {
            Wire::Structs => Ok(value),
            Wire::Encoded => postcard::to_allocvec(&value)
                .and_then(|bytes| postcard::from_bytes(&bytes))
                .map_err(unreachable),
        }
    }

    async fn reply_delay(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }
}

fn unreachable(error: impl std::error::Error + 'static) -> Unreachable<TypeConfig> {
    Unreachable::new(&error)
}

impl RaftNetworkV2<TypeConfig> for DirectNetwork {
    type SnapshotData = std::io::Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let peer = self.peer().await?;
        let rpc = self.carry(rpc)?;
        let reply = peer.append_entries(rpc).await.map_err(unreachable)?;
        self.reply_delay().await;
        Ok(self.carry(reply)?)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let peer = self.peer().await?;
        let rpc = self.carry(rpc)?;
        let reply = peer.vote(rpc).await.map_err(unreachable)?;
        self.reply_delay().await;
        Ok(self.carry(reply)?)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Self::SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let peer = self.peer().await?;
        let reply = peer
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(unreachable)?;
        self.reply_delay().await;
        Ok(reply)
    }
}
