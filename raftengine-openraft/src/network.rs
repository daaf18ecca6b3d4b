//! openraft's network traits over the shared [`Transport`], and the receiving side that hands
//! inbound requests to the local Raft node.
//!
//! Every RPC runs under a deadline: `Config::rpc_timeout` (snapshots: at least openraft's
//! snapshot TTL). Transport timeouts become openraft `Timeout`s, unreachable peers become
//! `Unreachable` (so openraft backs off), and an undecodable reply is a network error.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::{
    NetworkError, RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{OptionalSend, RaftNetworkFactory, RaftNetworkV2};
use raftengine::{Clock, Inbound, NodeId, Transport, TransportError};
use tokio::time::Instant;

use crate::codec::{RemoteFailure, RpcReply, RpcRequest, decode, encode};
use crate::engine::LeaderContact;
use crate::types::{Raft, Snapshot, TypeConfig, Vote};

/// Creates one [`PeerClient`] per replication target.
pub(crate) struct NetworkFactory {
    transport: Arc<dyn Transport>,
    rpc_timeout: Duration,
}

impl NetworkFactory {
    /// A factory sending over `transport` with `rpc_timeout` per call.
    pub(crate) fn new(transport: Arc<dyn Transport>, rpc_timeout: Duration) -> Self {
        Self {
            transport,
            rpc_timeout,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, _node: &openraft::EmptyNode) -> PeerClient {
        PeerClient {
            transport: Arc::clone(&self.transport),
            target,
            rpc_timeout: self.rpc_timeout,
        }
    }
}

/// The connection to one peer.
pub(crate) struct PeerClient {
    transport: Arc<dyn Transport>,
    target: NodeId,
    rpc_timeout: Duration,
}

/// Why a call got no usable reply.
#[derive(Debug)]
enum CallError {
    Timeout(Duration),
    Unreachable(String),
    Network(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(after) => write!(f, "no reply within {after:?}"),
            Self::Unreachable(why) | Self::Network(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CallError {}

impl PeerClient {
    /// The deadline of one RPC: `Config::rpc_timeout`, the configured bound on a network round
    /// trip. openraft's own TTL for AppendEntries and heartbeats is one heartbeat interval;
    /// honouring it would make every round trip slower than a heartbeat fail (and the leader
    /// lose its lease), so the configured round-trip bound wins.
    fn timeout(&self, _option: &RPCOption) -> Duration {
        self.rpc_timeout
    }

    async fn call(&self, request: &RpcRequest, timeout: Duration) -> Result<RpcReply, CallError> {
        let bytes = encode(request).map_err(|e| CallError::Network(e.to_string()))?;
        let reply = self
            .transport
            .call(self.target, Bytes::from(bytes), timeout)
            .await
            .map_err(|e| match e {
                TransportError::Timeout(_) => CallError::Timeout(timeout),
                TransportError::Unreachable(_) => CallError::Unreachable(e.to_string()),
                // Overloaded and any later reason: nothing usable came back; openraft retries.
                _ => CallError::Network(e.to_string()),
            })?;
        match decode::<RpcReply>(&reply) {
            Ok(RpcReply::Failed(RemoteFailure::Stopped)) => Err(CallError::Unreachable(format!(
                "node {} has stopped",
                self.target
            ))),
            Ok(RpcReply::Failed(failure)) => Err(CallError::Network(format!(
                "node {} could not handle the request: {failure:?}",
                self.target
            ))),
            Ok(reply) => Ok(reply),
            Err(e) => Err(CallError::Network(format!(
                "undecodable reply from node {}: {e}",
                self.target
            ))),
        }
    }

    fn rpc_error(&self, action: RPCTypes, error: CallError) -> RPCError<TypeConfig> {
        match error {
            CallError::Timeout(timeout) => RPCError::Timeout(Timeout {
                action,
                id: self.transport.local_id(),
                target: self.target,
                timeout,
            }),
            CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&error)),
            CallError::Network(_) => RPCError::Network(NetworkError::new(&error)),
        }
    }

    fn unexpected(&self, reply: &RpcReply) -> CallError {
        CallError::Network(format!(
            "node {} answered with the wrong message: {reply:?}",
            self.target
        ))
    }

    async fn vote_call(
        &self,
        request: RpcRequest,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(&request, self.timeout(&option)).await {
            Ok(RpcReply::Vote(response)) => Ok(response),
            Ok(other) => Err(self.rpc_error(RPCTypes::Vote, self.unexpected(&other))),
            Err(e) => Err(self.rpc_error(RPCTypes::Vote, e)),
        }
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Bytes;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let request = RpcRequest::AppendEntries(rpc);
        match self.call(&request, self.timeout(&option)).await {
            Ok(RpcReply::AppendEntries(response)) => Ok(response),
            Ok(other) => Err(self.rpc_error(RPCTypes::AppendEntries, self.unexpected(&other))),
            Err(e) => Err(self.rpc_error(RPCTypes::AppendEntries, e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.vote_call(RpcRequest::Vote(rpc), option).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.vote_call(RpcRequest::PreVote(rpc), option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let request = RpcRequest::Snapshot {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot.to_vec(),
        };
        // A snapshot may be large: allow it the full TTL openraft grants, at least rpc_timeout.
        let timeout = self.rpc_timeout.max(option.hard_ttl());
        let outcome = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            outcome = self.call(&request, timeout) => outcome,
        };
        match outcome {
            Ok(RpcReply::Snapshot(response)) => Ok(response),
            Ok(other) => Err(StreamingError::Network(NetworkError::new(
                &self.unexpected(&other),
            ))),
            Err(e @ CallError::Timeout(_)) => Err(StreamingError::Timeout(Timeout {
                action: RPCTypes::InstallSnapshot,
                id: self.transport.local_id(),
                target: self.target,
                timeout: match e {
                    CallError::Timeout(t) => t,
                    _ => timeout,
                },
            })),
            Err(e @ CallError::Unreachable(_)) => {
                Err(StreamingError::Unreachable(Unreachable::new(&e)))
            }
            Err(e @ CallError::Network(_)) => Err(StreamingError::Network(NetworkError::new(&e))),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        let request = RpcRequest::TransferLeader(req);
        match self.call(&request, self.timeout(&option)).await {
            Ok(RpcReply::TransferLeader(response)) => Ok(response),
            Ok(other) => Err(self.rpc_error(RPCTypes::TransferLeader, self.unexpected(&other))),
            Err(e) => Err(self.rpc_error(RPCTypes::TransferLeader, e)),
        }
    }
}

/// Hands requests from peers to the local Raft node.
///
/// It also enforces the vote-refusal window after a restart. openraft's followers refuse votes
/// for one leader lease (the vote-refusal window) after the last message from the leader, but a
/// restarted process starts with a zero lease (openraft rebuilds the vote's timestamp at start),
/// so a follower that crashes and restarts could vote a new leader in while the old leader's
/// lease is still live. This handler therefore refuses non-transfer votes (and pre-votes) for
/// one vote-refusal window after the engine starts on a store that already held a vote. A
/// pristine node never acknowledged a leader and so has no promise to keep.
pub(crate) struct InboundHandler {
    raft: Raft,
    clock: Arc<dyn Clock>,
    refuse_votes_until: Option<Instant>,
    contact: Arc<LeaderContact>,
}

impl InboundHandler {
    /// A handler for `raft`; votes are refused until `refuse_votes_until` on `clock`, and
    /// each accepted leader message or granted vote restarts the election timeout (`contact`).
    pub(crate) fn new(
        raft: Raft,
        clock: Arc<dyn Clock>,
        refuse_votes_until: Option<Instant>,
        contact: Arc<LeaderContact>,
    ) -> Self {
        Self {
            raft,
            clock,
            refuse_votes_until,
            contact,
        }
    }

    fn refuses(&self, request: &VoteRequest<TypeConfig>) -> bool {
        !request.leadership_transfer
            && self
                .refuse_votes_until
                .is_some_and(|until| self.clock.now() < until)
    }

    fn refusal(&self) -> RpcReply {
        let vote = self.raft.metrics().borrow_watched().vote;
        RpcReply::Vote(VoteResponse::new(vote, None, false))
    }

    async fn dispatch(&self, request: RpcRequest) -> RpcReply {
        let failed = |fatal: openraft::errors::Fatal<TypeConfig>| {
            RpcReply::Failed(match fatal {
                openraft::errors::Fatal::Stopped => RemoteFailure::Stopped,
                other => RemoteFailure::Fatal(other.to_string()),
            })
        };
        let raft_failed = |error: openraft::errors::RaftError<TypeConfig>| match error {
            openraft::errors::RaftError::APIError(never) => match never {},
            openraft::errors::RaftError::Fatal(fatal) => failed(fatal),
        };
        match request {
            RpcRequest::AppendEntries(rpc) => match self.raft.append_entries(rpc).await {
                Ok(response) => {
                    if !matches!(response, AppendEntriesResponse::HigherVote(_)) {
                        self.contact.touch();
                    }
                    RpcReply::AppendEntries(response)
                }
                Err(e) => raft_failed(e),
            },
            RpcRequest::Vote(rpc) if self.refuses(&rpc) => self.refusal(),
            RpcRequest::PreVote(rpc) if self.refuses(&rpc) => self.refusal(),
            RpcRequest::Vote(rpc) => match self.raft.vote(rpc).await {
                Ok(response) => {
                    if response.vote_granted {
                        self.contact.touch();
                    }
                    RpcReply::Vote(response)
                }
                Err(e) => raft_failed(e),
            },
            RpcRequest::PreVote(rpc) => match self.raft.pre_vote(rpc).await {
                Ok(response) => RpcReply::Vote(response),
                Err(e) => raft_failed(e),
            },
            RpcRequest::Snapshot { vote, meta, data } => {
                let snapshot = Snapshot {
                    meta,
                    snapshot: Bytes::from(data),
                };
                match self.raft.install_full_snapshot(vote, snapshot).await {
                    Ok(response) => {
                        if response.vote == vote {
                            self.contact.touch();
                        }
                        RpcReply::Snapshot(response)
                    }
                    Err(e) => failed(e),
                }
            }
            RpcRequest::TransferLeader(rpc) => match self.raft.handle_transfer_leader(rpc).await {
                Ok(response) => RpcReply::TransferLeader(response),
                Err(e) => failed(e),
            },
        }
    }
}

#[async_trait]
impl Inbound for InboundHandler {
    async fn on_call(&self, from: NodeId, request: Bytes) -> Bytes {
        let reply = match decode::<RpcRequest>(&request) {
            Ok(request) => self.dispatch(request).await,
            Err(e) => {
                tracing::warn!(from, error = %e, "malformed request from a peer");
                RpcReply::Failed(RemoteFailure::Malformed(e.to_string()))
            }
        };
        // Encoding our own reply cannot fail for these types; an empty reply would surface at
        // the caller as an undecodable (network) error rather than a panic here.
        Bytes::from(encode(&reply).unwrap_or_default())
    }

    fn on_message(&self, from: NodeId, message: Bytes) {
        tracing::warn!(
            from,
            len = message.len(),
            "openraft uses request/response only; ignoring a one-way message"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use raftengine::sim::MemNetwork;
    use raftengine::{
        Config, Engine, LogStore, MemLogStore, Role, SharedStateMachine, StateMachine,
    };

    use super::*;
    use crate::OpenraftEngine;
    use crate::types::log_id;
    use raftengine::{EngineParts, StartEngine};

    #[derive(Default)]
    struct Nothing;

    impl StateMachine for Nothing {
        fn apply(&mut self, _index: u64, _term: u64, _command: &[u8]) -> Bytes {
            Bytes::new()
        }
        fn snapshot(&self) -> Bytes {
            Bytes::new()
        }
        fn restore(&mut self, _snapshot: &[u8]) -> Result<(), String> {
            Ok(())
        }
    }

    async fn start(net: &MemNetwork, id: NodeId, store: &MemLogStore) -> OpenraftEngine {
        OpenraftEngine::start(EngineParts::new(
            Config::new(id, [1, 2, 3]),
            SharedStateMachine::new(Nothing),
            Arc::new(store.clone()) as Arc<dyn LogStore>,
            Arc::new(net.transport(id)),
        ))
        .await
        .unwrap()
    }

    async fn vote_from_9(net: &MemNetwork, to: NodeId, request: VoteRequest<TypeConfig>) -> bool {
        let bytes = encode(&RpcRequest::Vote(request)).unwrap();
        let reply = net
            .transport(9)
            .call(to, Bytes::from(bytes), Duration::from_secs(1))
            .await
            .expect("reply");
        match decode::<RpcReply>(&reply).unwrap() {
            RpcReply::Vote(response) => response.vote_granted,
            other => panic!("unexpected reply {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_node_refuses_ordinary_votes_for_one_lease() {
        let net = MemNetwork::new(21);
        let stores: Vec<MemLogStore> = (0..3).map(|_| MemLogStore::new()).collect();
        let mut engines = Vec::new();
        for id in 1..=3 {
            engines.push(start(&net, id, &stores[id as usize - 1]).await);
        }
        let leader = loop {
            if let Some(e) = engines.iter().find(|e| e.status().role == Role::Leader) {
                break e.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        leader.propose(Bytes::from_static(b"x")).await.unwrap();
        let follower = engines
            .iter()
            .find(|e| e.id() != leader.id())
            .unwrap()
            .clone();
        let id = follower.id();
        tokio::time::sleep(Duration::from_millis(100)).await;

        // Crash the follower and restart it cut off from the leader, so openraft's own lease
        // (which starts at zero after a restart) is never refreshed.
        follower.shutdown().await.unwrap();
        net.isolate(id);
        let restarted = start(&net, id, &stores[id as usize - 1]).await;
        // openraft's restored lease is zero: it expires as soon as any time passes.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let window = restarted.timing().vote_refusal_window;
        let (last_index, last_term) = stores[id as usize - 1].log_state().unwrap().last.unwrap();
        let term = restarted.status().term;
        let request = |term: u64, transfer: bool| VoteRequest::<TypeConfig> {
            vote: Vote::new(term, 9),
            last_log_id: Some(log_id(last_term, last_index - 1)),
            leadership_transfer: transfer,
        };

        assert!(
            !vote_from_9(&net, id, request(term + 10, false)).await,
            "an ordinary vote inside the window is refused"
        );
        assert!(
            vote_from_9(&net, id, request(term + 11, true)).await,
            "a transfer vote is not refused"
        );
        tokio::time::sleep(window + Duration::from_millis(100)).await;
        assert!(
            vote_from_9(&net, id, request(term + 20, false)).await,
            "after the window openraft decides (and, with no leader contact, grants)"
        );

        // Malformed bytes get an error reply, not a panic, and the node keeps serving.
        let reply = net
            .transport(9)
            .call(
                id,
                Bytes::from_static(&[0xff, 0x00, 0x13]),
                Duration::from_secs(1),
            )
            .await
            .expect("reply");
        assert!(matches!(
            decode::<RpcReply>(&reply).unwrap(),
            RpcReply::Failed(RemoteFailure::Malformed(_))
        ));
        assert!(vote_from_9(&net, id, request(term + 30, false)).await);

        restarted.shutdown().await.unwrap();
        for engine in engines {
            engine.shutdown().await.unwrap();
        }
    }
}
