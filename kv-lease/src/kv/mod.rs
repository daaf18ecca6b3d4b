//! The reference KV store: commands with conditional writes (the source of write conflicts),
//! the deterministic state machine, and a typed client over an engine and a lease.

pub mod command;
pub mod state_machine;
pub mod store;
pub mod storm;

pub use command::{
    Condition, DecodeError, FORMAT_VERSION, KvCommand, KvResponse, MAX_TXN_ITEMS, Txn, TxnOp,
    VersionCondition,
};
pub use state_machine::{KvStateMachine, MAX_TOMBSTONES};
pub use store::KvStore;
pub use storm::{StormConfig, StormReport, conflict_storm};
