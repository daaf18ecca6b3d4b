//! Lease reads that stay warm, built only on the raftengine Engine trait.
#![deny(missing_docs)]
