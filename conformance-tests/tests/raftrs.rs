//! The conformance suite stamped for `raftengine_raftrs::RaftRsEngine`: failures read `raftrs::case_name`.

use std::sync::Arc;

use conformance_tests::{Backend, BoxFuture, TestSm, conformance_suite};
use raftengine::{Capabilities, Clock, Config, Engine, LogStore, SharedStateMachine, Transport};

#[derive(Debug, Default)]
struct RaftRs;

impl Backend for RaftRs {
    const NAME: &'static str = "raftrs";

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            leadership_transfer: true,
            membership_change: true,
            snapshots: true,
            quorum_ack: true,
        }
    }

    fn start(
        &self,
        config: Config,
        state_machine: SharedStateMachine<TestSm>,
        store: Arc<dyn LogStore>,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
    ) -> BoxFuture<'static, raftengine::Result<Arc<dyn Engine>>> {
        Box::pin(async move {
            let engine = raftengine_raftrs::RaftRsEngine::start_with_clock(
                config,
                state_machine,
                store,
                transport,
                clock,
            )
            .await?;
            Ok(Arc::new(engine) as Arc<dyn Engine>)
        })
    }
}

conformance_suite!(raftrs, RaftRs);
