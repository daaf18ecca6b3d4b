//! Direct-library baselines: the same write workload on openraft and raft-rs without our
//! adapters, so the adapters' overhead can be reported as a ratio.

mod openraft_direct;
mod raftrs_direct;

use std::future::Future;

pub use openraft_direct::DirectOpenraft;
pub use raftrs_direct::DirectRaftRs;

/// A cluster driven without our adapters.
pub trait DirectCluster: WriteTarget + Sized {
    /// Starts `nodes` voters with `one_way_delay` per message and waits for a leader.
    fn start(
        nodes: u64,
        one_way_delay: std::time::Duration,
        value_size: usize,
    ) -> impl Future<Output = Result<Self, String>> + Send;

    /// Stops every node.
    fn shutdown(self) -> impl Future<Output = ()> + Send;
}

/// Something the write workload can drive.
pub trait WriteTarget: Send + Sync + 'static {
    /// Writes one value for `client` and resolves once it is committed and applied on the
    /// leader.
    fn write(&self, client: usize, serial: u64) -> impl Future<Output = Result<(), String>> + Send;
}
