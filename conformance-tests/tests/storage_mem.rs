//! The storage suite stamped for `raftengine::MemLogStore`: failures read `mem::case_name`.

use std::sync::Arc;

use conformance_tests::storage::StoreFactory;
use raftengine::{LogStore, MemLogStore};

/// Reopening hands out another clone of the same in-memory store, as a restarted engine that
/// the harness kept the store for would see it.
#[derive(Default)]
struct Mem(MemLogStore);

impl StoreFactory for Mem {
    fn open(&self) -> Arc<dyn LogStore> {
        Arc::new(self.0.clone())
    }

    fn reopen(&self, store: Arc<dyn LogStore>) -> Arc<dyn LogStore> {
        drop(store);
        Arc::new(self.0.clone())
    }
}

conformance_tests::log_store_suite!(mem, Mem);
