//! raftengine's Engine contract on openraft 0.10.
#![deny(missing_docs)]
