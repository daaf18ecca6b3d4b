//! Direct-library baselines: the same write workload on openraft and raft-rs without our
//! adapters, so the adapters' overhead can be reported as a ratio.

mod openraft_direct;
mod raftrs_direct;

use std::future::Future;

pub use openraft_direct::DirectOpenraft;
pub use raftrs_direct::DirectRaftRs;

/// How a direct cluster moves messages between its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// As the library's own structs: no encoding, the cheapest possible network.
    Structs,
    /// Encoded to bytes and decoded on the other side, as any real network requires (raft-rs:
    /// protobuf, as the library defines its messages; openraft: postcard, as our adapter
    /// encodes its RPCs), with everything else a deployment does that the adapter's side of
    /// the bench does too (raft-rs: an encoded log and the same key-value application).
    Encoded,
}

/// A cluster driven without our adapters.
pub trait DirectCluster: WriteTarget + Sized {
    /// Starts `nodes` voters with `one_way_delay` per message and waits for a leader.
    fn start(
        nodes: u64,
        one_way_delay: std::time::Duration,
        value_size: usize,
        wire: Wire,
    ) -> impl Future<Output = Result<Self, String>> + Send;

    /// Stops every node.
    fn shutdown(self) -> impl Future<Output = ()> + Send;
}

/// How long one direct write may take before it counts as failed: a proposal lost to a
/// leadership change is never answered by the bare libraries, and a run must still end.
pub const WRITE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Something the write workload can drive.
pub trait WriteTarget: Send + Sync + 'static {
    /// Writes one value for `client` and resolves once it is committed and applied on the
    /// leader.
    fn write(&self, client: usize, serial: u64) -> impl Future<Output = Result<(), String>> + Send;
}
