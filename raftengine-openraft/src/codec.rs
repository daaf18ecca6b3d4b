//! Byte encodings: what the adapter writes into the shared [`raftengine::LogStore`] and what
//! it sends over the shared [`raftengine::Transport`].
//!
//! The codec is postcard (compact, positional). openraft 0.10 keeps its serialized types safe
//! for positional formats: no field is skipped when serializing, and the fields marked
//! `serde(default)` are always written, so every value round-trips (the storage suite and the
//! codec tests below check it).

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderError,
    TransferLeaderRequest, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::types::{LogId, SnapshotMeta, TypeConfig, Vote};

/// Serializes `value`.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(value)
}

/// Deserializes bytes produced by [`encode`]; malformed input is an error, never a panic.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// What the adapter keeps in the store's hard-state blob.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HardState {
    /// The last saved vote.
    pub(crate) vote: Option<Vote>,
    /// The last saved committed log id (lets a restarted node re-apply without an election).
    pub(crate) committed: Option<LogId>,
}

/// A request from one node's openraft to another's.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcRequest {
    /// Log replication and heartbeats.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// An election vote request.
    Vote(VoteRequest<TypeConfig>),
    /// A pre-vote request.
    PreVote(VoteRequest<TypeConfig>),
    /// A whole snapshot: openraft metadata plus the user's state bytes.
    Snapshot {
        /// The sending leader's vote.
        vote: Vote,
        /// Where the snapshot ends.
        meta: SnapshotMeta,
        /// The user's state machine snapshot.
        data: Vec<u8>,
    },
    /// The leader asks the target to take over.
    TransferLeader(TransferLeaderRequest<TypeConfig>),
}

/// The answer to an [`RpcRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcReply {
    /// Answer to [`RpcRequest::AppendEntries`].
    AppendEntries(AppendEntriesResponse<TypeConfig>),
    /// Answer to [`RpcRequest::Vote`] and [`RpcRequest::PreVote`].
    Vote(VoteResponse<TypeConfig>),
    /// Answer to [`RpcRequest::Snapshot`].
    Snapshot(SnapshotResponse<TypeConfig>),
    /// Answer to [`RpcRequest::TransferLeader`].
    TransferLeader(Result<(), TransferLeaderError<TypeConfig>>),
    /// The receiver could not handle the request.
    Failed(RemoteFailure),
}

/// Why a receiver could not answer a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RemoteFailure {
    /// The receiving Raft node has stopped.
    Stopped,
    /// The receiving Raft node failed fatally.
    Fatal(String),
    /// The request bytes did not decode.
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Command, Entry, log_id};
    use openraft::entry::RaftEntry;
    use openraft::{EntryPayload, Membership};
    use std::collections::BTreeSet;

    #[test]
    fn hard_state_round_trips() {
        let state = HardState {
            vote: Some(Vote::new_committed(3, 2)),
            committed: Some(log_id(3, 17)),
        };
        let back: HardState = decode(&encode(&state).unwrap()).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn entries_of_every_payload_round_trip() {
        let membership = Membership::new_with_defaults(vec![BTreeSet::from([1, 2, 3])], [4]);
        let entries = [
            Entry::new(log_id(1, 0), EntryPayload::Blank),
            Entry::new(
                log_id(1, 1),
                EntryPayload::Normal(Command(bytes::Bytes::from_static(&[1, 2, 3]))),
            ),
            Entry::new(log_id(2, 2), EntryPayload::Membership(membership)),
        ];
        for entry in entries {
            let back: Entry = decode(&encode(&entry).unwrap()).unwrap();
            assert_eq!(back, entry);
        }
    }

    #[test]
    fn requests_round_trip_including_defaulted_fields() {
        let vote = VoteRequest::<TypeConfig> {
            vote: Vote::new(4, 1),
            last_log_id: Some(log_id(3, 9)),
            leadership_transfer: true,
        };
        let bytes = encode(&RpcRequest::Vote(vote.clone())).unwrap();
        match decode::<RpcRequest>(&bytes).unwrap() {
            RpcRequest::Vote(back) => assert_eq!(back, vote),
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn malformed_bytes_are_an_error() {
        assert!(decode::<RpcRequest>(&[0xff, 0xff, 0xff]).is_err());
        assert!(decode::<RpcRequest>(&[]).is_err());
    }
}
