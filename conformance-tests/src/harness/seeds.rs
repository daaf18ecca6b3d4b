//! Seeds and the per-case [`Harness`] handle.

use std::fmt;
use std::sync::Arc;

use super::*;

/// The default seed of deterministic cases and the first seed of randomized ones.
pub const DEFAULT_SEED: u64 = 0x5EED;

/// Seeds a randomized case runs: `SEED=<n>` replays exactly one; otherwise
/// `CONFORMANCE_SEEDS=<n>` seeds (default `default_count`) starting at [`DEFAULT_SEED`].
pub fn seeds(default_count: u64) -> Vec<u64> {
    if let Some(seed) = env_u64("SEED") {
        return vec![seed];
    }
    let count = env_u64("CONFORMANCE_SEEDS").unwrap_or(default_count).max(1);
    (0..count).map(|i| DEFAULT_SEED + i).collect()
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    match parsed {
        Ok(value) => Some(value),
        Err(_) => panic!("{name}={text:?} is not a number"),
    }
}

/// What a case receives: the backend, the case's name and its seed. Build clusters from it.
pub struct Harness<B: Backend> {
    backend: Arc<B>,
    case: &'static str,
    seed: u64,
}

impl<B: Backend> fmt::Debug for Harness<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("backend", &B::NAME)
            .field("case", &self.case)
            .field("seed", &self.seed)
            .finish()
    }
}

impl<B: Backend> Harness<B> {
    /// A harness for `case` on `backend`; the seed comes from `SEED` or [`DEFAULT_SEED`].
    pub fn new(backend: B, case: &'static str) -> Self {
        Self {
            backend: Arc::new(backend),
            case,
            seed: env_u64("SEED").unwrap_or(DEFAULT_SEED),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The case being run.
    pub fn case(&self) -> &'static str {
        self.case
    }

    /// The seed of deterministic cases (network dice, node seeds).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Starts a cluster of `voters` nodes (ids 1..=voters) with default settings.
    pub async fn cluster(&self, voters: u64) -> Result<Cluster<B>, Failure> {
        self.cluster_with(ClusterSpec::new(voters), self.seed).await
    }

    /// Starts a cluster as `spec` says, with `seed` for the network and the nodes.
    pub async fn cluster_with(&self, spec: ClusterSpec, seed: u64) -> Result<Cluster<B>, Failure> {
        Cluster::start(Arc::clone(&self.backend), spec, seed).await
    }
}
