//! [`MemFactory`]: the transport suite's factory for [`MemNetwork`], and an example of a
//! [`TransportFactory`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use raftengine::sim::MemNetwork;
use raftengine::{NodeId, Transport};

use super::{TestNetwork, TransportFactory};
use crate::{BoxFuture, Failure};

/// Builds a [`MemNetwork`] without faults; cases run on the paused clock.
#[derive(Debug, Default)]
pub struct MemFactory;

impl TransportFactory for MemFactory {
    const NAME: &'static str = "mem";
    const PAUSED_CLOCK: bool = true;

    fn start(&self, ids: Vec<NodeId>) -> BoxFuture<'static, Result<Box<dyn TestNetwork>, Failure>> {
        Box::pin(async move {
            let net = MemNetwork::new(1);
            let transports = ids
                .iter()
                .map(|&id| (id, Arc::new(net.transport(id)) as Arc<dyn Transport>))
                .collect();
            Ok(Box::new(MemTestNetwork {
                net,
                transports: Mutex::new(transports),
            }) as Box<dyn TestNetwork>)
        })
    }
}

struct MemTestNetwork {
    net: MemNetwork,
    transports: Mutex<HashMap<NodeId, Arc<dyn Transport>>>,
}

impl MemTestNetwork {
    fn lock(&self) -> MutexGuard<'_, HashMap<NodeId, Arc<dyn Transport>>> {
        self.transports.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TestNetwork for MemTestNetwork {
    fn transport(&self, id: NodeId) -> Arc<dyn Transport> {
        let mut transports = self.lock();
        Arc::clone(
            transports
                .entry(id)
                .or_insert_with(|| Arc::new(self.net.transport(id))),
        )
    }

    fn restart(&self, id: NodeId) -> BoxFuture<'_, Result<Arc<dyn Transport>, Failure>> {
        Box::pin(async move {
            // A process that dies stops answering; its successor starts without a handler.
            if let Some(old) = self.lock().remove(&id) {
                old.stop_serving();
            }
            Ok(self.transport(id))
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for transport in self.lock().values() {
                transport.stop_serving();
            }
        })
    }
}
