//! Events reach the `metrics` facade with the documented names and labels.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

use super::*;
use crate::InvalidationCause;

#[derive(Default)]
struct Capture {
    counters: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
}

#[derive(Default)]
struct Samples(AtomicU64);

impl HistogramFn for Samples {
    fn record(&self, _value: f64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn render(key: &Key) -> String {
    let mut out = key.name().to_string();
    for label in key.labels() {
        out.push_str(&format!(",{}={}", label.key(), label.value()));
    }
    out
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap();
        Counter::from_arc(Arc::clone(counters.entry(render(key)).or_default()))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self.histograms.lock().unwrap();
        Histogram::from_arc(Arc::clone(histograms.entry(render(key)).or_default()))
    }
}

impl Capture {
    fn counter(&self, key: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn samples(&self, key: &str) -> u64 {
        self.histograms
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |h| h.0.load(Ordering::Relaxed))
    }
}

#[test]
fn hits_misses_invalidations_and_latency_reach_the_facade() {
    let capture = Capture::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    metrics::with_local_recorder(&capture, || {
        runtime.block_on(async {
            let (_engine, lease) = leader();
            lease.read(|| ()).await.unwrap();
            lease.read(|| ()).await.unwrap();
            lease.read(|| ()).await.unwrap();
            lease.invalidate(InvalidationCause::LeaderLoss);
        });
    });
    assert_eq!(capture.counter("kv_lease_reads_total,path=fast"), 2);
    assert_eq!(capture.counter("kv_lease_reads_total,path=slow"), 1);
    assert_eq!(capture.counter("kv_lease_misses_total,reason=expired"), 1);
    assert_eq!(
        capture.counter("kv_lease_invalidations_total,cause=leader_loss"),
        1
    );
    assert_eq!(capture.counter("kv_lease_slow_rounds_total,result=ok"), 1);
    assert_eq!(capture.samples("kv_lease_read_seconds,path=fast"), 2);
    assert_eq!(capture.samples("kv_lease_read_seconds,path=slow"), 1);
}
