//! The transport suite: the [`raftengine::Transport`] contract, stamped per transport.
//!
//! A transport crate (ours, or a user's, say over their gRPC server) adds `conformance-tests` as
//! a dev-dependency, implements [`TransportFactory`] (build connected transports for a few node
//! ids, restart one, shut all down) and stamps the suite with one macro call in a test file:
//!
//! ```ignore
//! // tests/transport_suite.rs
//! #[derive(Default)]
//! struct Grpc;
//! impl conformance_tests::transport::TransportFactory for Grpc {
//!     const NAME: &'static str = "grpc";
//!     // Sockets need real time; an in-process network can run on the paused clock.
//!     const PAUSED_CLOCK: bool = false;
//!     fn start(&self, ids: Vec<raftengine::NodeId>)
//!         -> conformance_tests::BoxFuture<'static, Result<Box<dyn TestNetwork>, Failure>> {
//!         Box::pin(async move { /* bind one transport per id on 127.0.0.1:0, connect them */ })
//!     }
//! }
//! conformance_tests::transport_suite!(grpc, Grpc);
//! ```
//!
//! Every case becomes its own `#[test]` (`grpc::call_deadline_honoured`) and runs on a fresh
//! network of nodes 1, 2 and 3. Cases a transport cannot run are listed with a reason and
//! stamped `#[ignore]`, never passed silently:
//! `transport_suite!(grpc, Grpc, ignore { large_message: "limited to 4 MiB" });`.
//!
//! With [`TransportFactory::PAUSED_CLOCK`] the cases run on a current-thread runtime with
//! tokio's clock paused (deadlines cost no wall time: `MemNetwork`); without it on a
//! current-thread runtime in real time (sockets), where every case takes at most a few seconds.
//!
//! - [`cases`]: the cases, plain `async fn`s over a [`TestNetwork`].
//! - [`handlers`]: the [`raftengine::Inbound`] handlers the cases install.
//! - [`mem`]: [`mem::MemFactory`], the suite's factory for `MemNetwork`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use raftengine::{NodeId, Transport};

use crate::{BoxFuture, Failure};

pub mod cases;
pub mod handlers;
pub mod mem;

/// Builds networks of connected transports for the suite.
pub trait TransportFactory: Default + Send + Sync + 'static {
    /// Short name used in reports.
    const NAME: &'static str;
    /// Whether cases run on tokio's paused clock (in-process transports) or in real time.
    const PAUSED_CLOCK: bool;

    /// Starts one transport per id, each able to reach all the others. None serves yet.
    fn start(&self, ids: Vec<NodeId>) -> BoxFuture<'static, Result<Box<dyn TestNetwork>, Failure>>;
}

/// A running network of transports, one per node id.
pub trait TestNetwork: Send + Sync + 'static {
    /// The current transport of node `id` (the new one after [`TestNetwork::restart`]).
    fn transport(&self, id: NodeId) -> Arc<dyn Transport>;

    /// Simulates a process restart: node `id`'s transport goes away as if the process died, and
    /// a fresh one with the same id and address takes its place (not serving yet).
    fn restart(&self, id: NodeId) -> BoxFuture<'_, Result<Arc<dyn Transport>, Failure>>;

    /// The size of the large messages [`cases::large_message`] sends (default 64 MiB).
    fn large_message_len(&self) -> usize {
        64 << 20
    }

    /// Ends every transport and its tasks.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// The node ids every case's network has.
pub const NODES: [NodeId; 3] = [1, 2, 3];

/// How long one case may take, whatever the clock.
const CASE_LIMIT: Duration = Duration::from_secs(60);

/// Runs one case on a fresh network from `F`; panics with the failure (the test fails).
pub fn run_transport_case<F, C, Fut>(case_name: &str, case: C)
where
    F: TransportFactory,
    C: FnOnce(Arc<dyn TestNetwork>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let runtime = if F::PAUSED_CLOCK {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => panic!("{}::{case_name}: cannot build a runtime: {e}", F::NAME),
    };
    let outcome = runtime.block_on(async {
        let net: Arc<dyn TestNetwork> = match F::default().start(NODES.to_vec()).await {
            Ok(net) => Arc::from(net),
            Err(e) => return Err(e.context("while starting the network")),
        };
        let result = match tokio::time::timeout(CASE_LIMIT, case(Arc::clone(&net))).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(format!(
                "case did not finish within {CASE_LIMIT:?}"
            ))),
        };
        if tokio::time::timeout(Duration::from_secs(10), net.shutdown())
            .await
            .is_err()
            && result.is_ok()
        {
            return Err(Failure::new("network shutdown took longer than 10 s"));
        }
        result
    });
    // Background tasks a transport left behind must not outlive the case.
    runtime.shutdown_timeout(Duration::from_secs(5));
    if let Err(failure) = outcome {
        panic!("{}::{case_name} failed: {failure}", F::NAME);
    }
}

/// Stamps every case of the transport suite as its own `#[test]` inside `mod $module`, for
/// factory type `$factory` (a [`TransportFactory`]). Failures read `$module::case_name`.
///
/// ```ignore
/// conformance_tests::transport_suite!(mem, conformance_tests::transport::mem::MemFactory);
/// conformance_tests::transport_suite!(grpc, Grpc, ignore {
///     large_message: "messages are limited to 4 MiB",
/// });
/// ```
#[macro_export]
macro_rules! transport_suite {
    ($module:ident, $factory:ty $(,)?) => {
        $crate::transport_suite!($module, $factory, ignore {});
    };
    ($module:ident, $factory:ty, ignore { $($case:ident : $reason:literal),* $(,)? } $(,)?) => {
        $crate::__transport_suite!(($) $module, $factory, [$($case : $reason),*]);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __transport_suite {
    (($d:tt) $module:ident, $factory:ty, [$($case:ident : $reason:literal),*]) => {
        #[allow(unused_imports)]
        mod $module {
            use super::*;

            macro_rules! __stamp {
                $(
                    ($case) => {
                        #[test]
                        #[ignore = $reason]
                        fn $case() {
                            $crate::transport::run_transport_case::<$factory, _, _>(
                                stringify!($case),
                                $crate::transport::cases::$case,
                            );
                        }
                    };
                )*
                ($d name:ident) => {
                    #[test]
                    fn $d name() {
                        $crate::transport::run_transport_case::<$factory, _, _>(
                            stringify!($d name),
                            $crate::transport::cases::$d name,
                        );
                    }
                };
            }

            /// Names listed as ignored must be cases of the suite (a typo is a compile error).
            #[allow(dead_code)]
            fn __ignored_cases_exist() {
                $( let _ = $crate::transport::cases::$case; )*
            }

            __stamp!(call_and_reply);
            __stamp!(call_deadline_honoured);
            __stamp!(unreachable_peer_fails_fast);
            __stamp!(one_way_fifo_per_link);
            __stamp!(concurrent_calls_multiplexed);
            __stamp!(reconnect_after_restart);
            __stamp!(large_message);
            __stamp!(stop_serving_looks_down);
        }
    };
}
