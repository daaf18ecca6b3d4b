//! The adapter's stand-in for an uncommitted-size limit, which openraft lacks: the bytes of
//! this node's proposals still awaiting an answer, bounded by `Config::max_uncommitted_bytes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use raftengine::{Error, ErrorKind, Result};

/// Holds `bytes` of the in-flight budget until dropped.
pub(crate) struct InFlight {
    counter: Arc<AtomicUsize>,
    bytes: usize,
}

impl InFlight {
    /// Reserves `bytes` unless that would exceed `limit` (then `Busy`, nothing appended).
    pub(crate) fn reserve(counter: &Arc<AtomicUsize>, bytes: usize, limit: usize) -> Result<Self> {
        let before = counter.fetch_add(bytes, Ordering::SeqCst);
        if before + bytes > limit {
            counter.fetch_sub(bytes, Ordering::SeqCst);
            return Err(Error::new(ErrorKind::Busy).with_context(format!(
                "{before} bytes of proposals are still in flight (limit {limit})"
            )));
        }
        Ok(Self {
            counter: Arc::clone(counter),
            bytes,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_released_on_drop() {
        let counter = Arc::new(AtomicUsize::new(0));
        let first = InFlight::reserve(&counter, 6, 10).unwrap();
        let err = InFlight::reserve(&counter, 5, 10).err().unwrap();
        assert_eq!(err.kind(), &ErrorKind::Busy);
        assert_eq!(counter.load(Ordering::SeqCst), 6);
        drop(first);
        let _second = InFlight::reserve(&counter, 10, 10).unwrap();
        assert_eq!(counter.load(Ordering::SeqCst), 10);
    }
}
