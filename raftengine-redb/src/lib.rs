//! A durable [`raftengine::LogStore`] on [redb](https://docs.rs/redb): pure Rust, ACID,
//! checksummed, no C toolchain.
//!
//! One database file holds the logs of many Raft groups, and they share one stream of fsyncs:
//!
//! ```no_run
//! use std::sync::Arc;
//! use raftengine::LogStore;
//! use raftengine_redb::RedbLogStore;
//!
//! let file = RedbLogStore::open("/var/lib/mydb/raft.redb")?;
//! let shard_a: Arc<dyn LogStore> = Arc::new(file.group(1));
//! let shard_b: Arc<dyn LogStore> = Arc::new(file.group(2));
//! # Ok::<(), raftengine::Error>(())
//! ```
//!
//! - **Durable when `Ok` returns**: each write is committed with redb's immediate durability
//!   (fsync) before the call returns.
//! - **Group commit**: one writer thread takes every write queued while the previous commit was
//!   syncing and commits them together, so concurrent appends from many groups and threads cost
//!   one fsync per batch, never one per entry. Callers block until their batch is durable (with
//!   a deadline, [`StoreOptions::write_timeout`]); see the `LogStore` docs for how the engines
//!   keep their async runtime live while they wait.
//! - **Damage is an error, never data**: every value carries a CRC32 over its key and bytes, and
//!   the file's page checksums are verified on open. Every failure is an
//!   [`raftengine::ErrorKind::Storage`] error whose context names the file.
#![deny(missing_docs)]

mod backend;
mod codec;
mod error;
mod positions;
mod store;

pub use store::{RedbGroup, RedbLogStore, StoreOptions, StoreStats};
