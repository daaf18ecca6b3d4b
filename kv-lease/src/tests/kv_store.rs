//! The typed KV client end to end on the mock engine.

use std::sync::Arc;

use bytes::Bytes;
use raftengine::{Engine, SharedStateMachine};

use super::*;
use crate::kv::{Condition, KvResponse, KvStateMachine, KvStore, Txn, TxnOp};

fn store() -> (Arc<MockEngine>, KvStore) {
    let sm = SharedStateMachine::new(KvStateMachine::new());
    let engine = MockEngine::with_state_machine(1, sm.clone().into_dyn());
    engine.make_leader(1);
    let lease = Lease::new(engine.clone() as Arc<dyn Engine>, quiet()).unwrap();
    (engine, KvStore::new(lease, sm))
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test(start_paused = true)]
async fn writes_reads_and_conflicts() {
    let (engine, kv) = store();
    assert_eq!(
        kv.put("a", "1").await.unwrap(),
        KvResponse::Done { previous: None }
    );
    let read = kv.get(b"a").await.unwrap();
    assert_eq!((read.value, read.path), (Some(b("1")), ReadPath::Fast));
    assert_eq!(
        kv.cas("a", Some(b("0")), Some(b("2"))).await.unwrap(),
        KvResponse::Conflict {
            key: b("a"),
            actual: Some(b("1"))
        }
    );
    assert_eq!(kv.lease().check(), Ok(()), "a conflict keeps the lease");
    assert_eq!(
        kv.cas("a", Some(b("1")), Some(b("2"))).await.unwrap(),
        KvResponse::Done {
            previous: Some(b("1"))
        }
    );
    let txn = Txn {
        conditions: vec![Condition {
            key: b("a"),
            expected: Some(b("2")),
        }],
        ops: vec![
            TxnOp::Put {
                key: b("b"),
                value: b("x"),
            },
            TxnOp::Delete { key: b("a") },
        ],
    };
    assert_eq!(kv.txn(txn.clone()).await.unwrap(), KvResponse::Committed);
    assert!(kv.txn(txn).await.unwrap().is_conflict());
    assert_eq!(kv.get_linearizable(b"b").await.unwrap(), Some(b("x")));
    assert_eq!(kv.get_replicated("a").await.unwrap(), None);
    assert_eq!(
        kv.delete("b").await.unwrap(),
        KvResponse::Done {
            previous: Some(b("x"))
        }
    );
    assert_eq!(kv.get(b"b").await.unwrap().value, None);
    assert_eq!(engine.read_calls(), 1, "only the explicit linearizable get");
    assert_eq!(kv.lease().stats().invalidations(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_oversized_transaction_is_rejected_before_proposing() {
    let (engine, kv) = store();
    let txn = Txn {
        conditions: vec![],
        ops: vec![TxnOp::Delete { key: b("k") }; crate::kv::MAX_TXN_ITEMS + 1],
    };
    let err = kv.txn(txn).await.unwrap_err();
    assert!(matches!(
        err.kind(),
        raftengine::ErrorKind::Rejected(raftengine::RejectReason::MalformedMessage)
    ));
    assert_eq!(engine.propose_calls(), 0);
}
