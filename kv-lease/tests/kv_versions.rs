//! Key versions through the typed KV client on the scripted engine: versions read under the
//! lease and after a quorum round guard a transaction against an A→B→A change.

use std::sync::Arc;

use bytes::Bytes;
use kv_lease::kv::{KvCommand, KvResponse, KvStateMachine, KvStore, Txn, TxnOp, VersionCondition};
use kv_lease::testing::MockEngine;
use kv_lease::{Lease, LeaseConfig, ReadPath};
use raftengine::{Engine, SharedStateMachine};

fn store() -> (Arc<MockEngine>, KvStore) {
    let sm = SharedStateMachine::new(KvStateMachine::new());
    let engine = MockEngine::with_state_machine(1, sm.clone().into_dyn());
    engine.make_leader(1);
    let config = LeaseConfig {
        background: false,
        ..LeaseConfig::default()
    };
    let lease = Lease::new(engine.clone() as Arc<dyn Engine>, config).expect("lease");
    (engine, KvStore::new(lease, sm))
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn guarded(key: &str, version: u64) -> KvCommand {
    KvCommand::VersionedTxn {
        versions: vec![VersionCondition {
            key: b(key),
            version,
        }],
        txn: Txn {
            conditions: vec![],
            ops: vec![TxnOp::Put {
                key: b(key),
                value: b("mine"),
            }],
        },
    }
}

#[tokio::test(start_paused = true)]
async fn a_version_read_under_the_lease_detects_a_to_b_to_a() {
    let (engine, kv) = store();
    kv.put("k", "A").await.expect("put");
    let watched = kv.get_versioned(b"k").await.expect("read");
    assert_eq!(watched.path, ReadPath::Fast);
    let (value, version) = watched.value;
    assert_eq!(value, Some(b("A")));
    assert!(version > 0);
    kv.put("k", "B").await.expect("put");
    kv.put("k", "A").await.expect("put");
    let (value, changed) = kv.get_versioned_linearizable(b"k").await.expect("read");
    assert_eq!(value, Some(b("A")), "the value is back");
    assert!(changed > version, "the version is not");
    assert_eq!(
        kv.execute(guarded("k", version)).await.expect("txn"),
        KvResponse::Conflict {
            key: b("k"),
            actual: Some(b("A"))
        }
    );
    assert_eq!(kv.get(b"k").await.expect("read").value, Some(b("A")));
    assert_eq!(
        kv.execute(guarded("k", changed)).await.expect("txn"),
        KvResponse::Committed
    );
    assert_eq!(kv.get(b"k").await.expect("read").value, Some(b("mine")));
    assert_eq!(
        kv.lease().stats().invalidations(),
        0,
        "conflicts keep the lease"
    );
    assert_eq!(
        engine.read_calls(),
        1,
        "only the explicit linearizable read"
    );
}

#[tokio::test(start_paused = true)]
async fn a_deleted_and_recreated_key_is_a_change() {
    let (_engine, kv) = store();
    kv.put("other", "x").await.expect("put");
    let (value, version) = kv.get_versioned(b"k").await.expect("read").value;
    assert_eq!(value, None);
    kv.put("k", "v").await.expect("put");
    kv.delete("k").await.expect("delete");
    let (value, now) = kv.get_versioned(b"k").await.expect("read").value;
    assert_eq!(value, None);
    assert_ne!(now, version);
    assert!(
        kv.execute(guarded("k", version))
            .await
            .expect("txn")
            .is_conflict()
    );
}
