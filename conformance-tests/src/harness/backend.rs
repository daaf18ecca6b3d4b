//! The backend factory a backend crate implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use raftengine::{Capabilities, Config, Engine, EngineParts};

use crate::sm::TestSm;

/// A boxed, sendable future: what [`Backend::start`] returns, so the trait stays usable behind
/// generics without async-trait.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A backend under test: a factory of engines. A backend crate implements this on a small
/// (usually zero-sized, `Default`) type in its tests and stamps the suite with
/// [`crate::conformance_suite!`].
///
/// ```ignore
/// #[derive(Default)]
/// struct RaftRs;
/// impl conformance_tests::Backend for RaftRs {
///     const NAME: &'static str = "raftrs";
///     fn capabilities(&self) -> raftengine::Capabilities { /* ... */ }
///     fn start(&self, parts: EngineParts<TestSm>)
///         -> conformance_tests::BoxFuture<'static, raftengine::Result<Arc<dyn Engine>>> {
///         Box::pin(async move {
///             let engine = RaftRsEngine::start(parts).await?;
///             Ok(Arc::new(engine) as Arc<dyn Engine>)
///         })
///     }
/// }
/// conformance_tests::conformance_suite!(raftrs, RaftRs);
/// ```
pub trait Backend: Send + Sync + 'static {
    /// Short name used in reports ("openraft", "raftrs").
    const NAME: &'static str;

    /// What the engines this backend starts support. Cases that need more fail with an
    /// instruction to list them as ignored (they never pass silently).
    fn capabilities(&self) -> Capabilities;

    /// Adjusts a node's configuration before start (e.g. tick granularity). Default: none.
    fn configure(&self, config: &mut Config) {
        let _ = config;
    }

    /// Starts one node. The store and clock outlive the engine: a restart gets the same store
    /// (what the crashed engine persisted) and clock, and a fresh state machine.
    fn start(
        &self,
        parts: EngineParts<TestSm>,
    ) -> BoxFuture<'static, raftengine::Result<Arc<dyn Engine>>>;
}
