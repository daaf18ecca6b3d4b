//! raftengine's Engine contract on tikv raft-rs 0.7.
#![deny(missing_docs)]
