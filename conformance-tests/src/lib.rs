//! One conformance suite for every raftengine backend.
#![deny(missing_docs)]
