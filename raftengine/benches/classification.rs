//! The cost of classifying engine errors, which the lease layer pays on every failed request.
//! A regression here (say, a kind check that starts formatting text) shows up as a jump.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use raftengine::{Error, ErrorKind, RejectReason, WriteOutcome};

fn errors() -> Vec<Error> {
    vec![
        Error::not_leader(Some(2)),
        Error::transfer_in_progress(Some(3)),
        Error::leadership_lost(WriteOutcome::Unknown),
        Error::new(ErrorKind::Timeout),
        Error::new(ErrorKind::Busy),
        Error::new(ErrorKind::Unavailable),
        Error::rejected(RejectReason::TooLarge { size: 10, limit: 1 }),
        Error::shutdown(),
    ]
}

fn classification(c: &mut Criterion) {
    let errors = errors();
    c.bench_function("is_leadership_loss over 8 kinds", |b| {
        b.iter(|| {
            black_box(&errors)
                .iter()
                .filter(|e| e.is_leadership_loss())
                .count()
        })
    });
    c.bench_function("construct and classify NotLeader", |b| {
        b.iter(|| {
            let error = Error::not_leader(black_box(Some(2)));
            (
                error.is_leadership_loss(),
                error.is_safe_to_retry(),
                error.leader_hint(),
            )
        })
    });
}

criterion_group!(benches, classification);
criterion_main!(benches);
