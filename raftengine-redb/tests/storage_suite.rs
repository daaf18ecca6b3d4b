//! The storage suite stamped for `RedbLogStore`: failures read `redb::case_name`.

use std::sync::Arc;

use conformance_tests::storage::StoreFactory;
use raftengine::LogStore;
use raftengine_redb::RedbLogStore;

/// Each case gets its own directory; the store is group 7 of a file there, and reopening
/// closes the file (the case hands over its last handle) and opens it again.
struct Redb(tempfile::TempDir);

impl Default for Redb {
    fn default() -> Self {
        Self(tempfile::tempdir().expect("create a temporary directory"))
    }
}

impl StoreFactory for Redb {
    fn open(&self) -> Arc<dyn LogStore> {
        let file = RedbLogStore::open(self.0.path().join("raft.redb")).expect("open the store");
        Arc::new(file.group(7))
    }

    fn reopen(&self, store: Arc<dyn LogStore>) -> Arc<dyn LogStore> {
        drop(store);
        self.open()
    }
}

conformance_tests::log_store_suite!(redb, Redb);
