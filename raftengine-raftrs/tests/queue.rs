//! The driver's event queue is bounded: a burst of requests beyond it is refused with `Busy`
//! at once instead of queueing without limit.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raftengine::StateMachine;
use raftengine::sim::MemNetwork;
use raftengine::{Config, Engine, ErrorKind, MemLogStore, Role, SharedStateMachine};
use raftengine_raftrs::RaftRsEngine;

#[derive(Debug, Default)]
struct Nothing;

impl StateMachine for Nothing {
    fn apply(&mut self, _index: u64, _term: u64, _command: &[u8]) -> Bytes {
        Bytes::new()
    }
    fn snapshot(&self) -> Bytes {
        Bytes::new()
    }
    fn restore(&mut self, _snapshot: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_beyond_the_queue_is_busy_not_buffered() {
    let network = MemNetwork::new(3);
    let engine = Arc::new(
        RaftRsEngine::start(
            Config::new(1, [1]),
            SharedStateMachine::new(Nothing),
            Arc::new(MemLogStore::new()),
            Arc::new(network.transport(1)),
        )
        .await
        .unwrap(),
    );
    while engine.status().role != Role::Leader {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // All spawned before the driver runs again: every request meets the queue at once.
    let burst: Vec<_> = (0..10_000u32)
        .map(|i| {
            let engine = Arc::clone(&engine);
            tokio::spawn(async move { engine.propose(Bytes::from(i.to_le_bytes().to_vec())).await })
        })
        .collect();
    let (mut busy, mut applied) = (0, 0);
    for task in burst {
        match task.await.unwrap() {
            Ok(_) => applied += 1,
            Err(err) if err.kind() == &ErrorKind::Busy => busy += 1,
            Err(err) => panic!("unexpected error: {err}"),
        }
    }
    assert!(busy > 0, "10,000 requests at once were all queued");
    assert!(applied > 0, "nothing of the burst was applied");
    assert_eq!(busy + applied, 10_000);
    engine.shutdown().await.unwrap();
}
