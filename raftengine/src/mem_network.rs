//! `MemNetwork`: an in-process [`Transport`] with per-link fault injection.
//!
//! Faults behave like a real network: a lost request or reply makes the caller wait for its
//! deadline, one-way messages on a link stay in order unless reordering is switched on, and a
//! held link buffers traffic until released. Randomness comes from one seeded generator, so a
//! scenario replays exactly under tokio's paused clock.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::NodeId;
use crate::transport::{Inbound, Transport, TransportError};

/// Fault settings of one directed link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LinkFaults {
    /// Every message is lost.
    pub blocked: bool,
    /// Probability in [0, 1] that a message is lost.
    pub drop_rate: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra uniformly random delay in `[0, jitter]`.
    pub jitter: Duration,
    /// Probability that a message is delivered twice.
    pub duplicate_rate: f64,
    /// Probability that a one-way message may overtake earlier ones.
    pub reorder_rate: f64,
    /// Traffic is buffered (not lost) until the link is released.
    pub held: bool,
}

/// Counters of what the network did, for assertions and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetStats {
    /// Requests and one-way messages handed to the network.
    pub sent: u64,
    /// Messages handed to a receiver (duplicates included).
    pub delivered: u64,
    /// Messages lost to a blocked link or the drop rate.
    pub dropped: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
}

/// An in-process network of nodes. Cheap to clone; clones control the same network.
#[derive(Clone)]
pub struct MemNetwork {
    net: Arc<Net>,
}

/// The [`Transport`] of one node on a [`MemNetwork`].
#[derive(Clone)]
pub struct MemTransport {
    id: NodeId,
    net: Arc<Net>,
}

struct Net {
    state: Mutex<NetState>,
    /// Bumped whenever faults change, so deliveries waiting on a held link re-check.
    faults_changed: watch::Sender<u64>,
}

struct NetState {
    inbound: BTreeMap<NodeId, Arc<dyn Inbound>>,
    default_faults: LinkFaults,
    links: BTreeMap<(NodeId, NodeId), LinkFaults>,
    queues: BTreeMap<(NodeId, NodeId), LinkQueue>,
    rng: SplitMix64,
    stats: NetStats,
}

/// The ordered delivery queue of one link and how many messages it still holds.
#[derive(Clone)]
struct LinkQueue {
    sender: mpsc::UnboundedSender<Envelope>,
    pending: Arc<AtomicUsize>,
}

struct Envelope {
    message: Bytes,
    deliver_at: Instant,
}

/// What happens to one message, decided under the lock with one draw sequence.
enum Fate {
    Lost,
    Delivered {
        delay: Duration,
        copies: u8,
        reordered: bool,
        held: bool,
    },
}

impl MemNetwork {
    /// A network with no faults whose random choices follow `seed`.
    pub fn new(seed: u64) -> Self {
        let (faults_changed, _) = watch::channel(0);
        Self {
            net: Arc::new(Net {
                state: Mutex::new(NetState {
                    inbound: BTreeMap::new(),
                    default_faults: LinkFaults::default(),
                    links: BTreeMap::new(),
                    queues: BTreeMap::new(),
                    rng: SplitMix64::new(seed),
                    stats: NetStats::default(),
                }),
                faults_changed,
            }),
        }
    }

    /// The transport node `id` uses.
    pub fn transport(&self, id: NodeId) -> MemTransport {
        MemTransport {
            id,
            net: Arc::clone(&self.net),
        }
    }

    /// Faults applied to every link without its own settings (e.g. a uniform RTT).
    pub fn set_default_faults(&self, faults: LinkFaults) {
        self.update(|state| state.default_faults = faults);
    }

    /// Replaces the faults of the directed link `from → to`.
    pub fn set_link(&self, from: NodeId, to: NodeId, faults: LinkFaults) {
        self.update(|state| {
            state.links.insert((from, to), faults);
        });
    }

    /// The faults currently in force on `from → to`.
    pub fn link(&self, from: NodeId, to: NodeId) -> LinkFaults {
        self.net.lock().faults(from, to)
    }

    /// Loses every message from `from` to `to` (one-way partition).
    pub fn partition_one_way(&self, from: NodeId, to: NodeId) {
        self.modify_link(from, to, |f| f.blocked = true);
    }

    /// Loses every message between `a` and `b`, both ways.
    pub fn partition(&self, a: NodeId, b: NodeId) {
        self.partition_one_way(a, b);
        self.partition_one_way(b, a);
    }

    /// Splits the listed groups from each other; links inside a group are left alone.
    pub fn partition_groups(&self, groups: &[&[NodeId]]) {
        for (i, left) in groups.iter().enumerate() {
            for right in &groups[i + 1..] {
                for &a in *left {
                    for &b in *right {
                        self.partition(a, b);
                    }
                }
            }
        }
    }

    /// Cuts `node` off from every other registered node, both ways.
    pub fn isolate(&self, node: NodeId) {
        for peer in self.nodes() {
            if peer != node {
                self.partition(node, peer);
            }
        }
    }

    /// Buffers traffic from `from` to `to` until [`MemNetwork::release`].
    pub fn hold(&self, from: NodeId, to: NodeId) {
        self.modify_link(from, to, |f| f.held = true);
    }

    /// Delivers what `from → to` buffered, in order, and stops holding.
    pub fn release(&self, from: NodeId, to: NodeId) {
        self.modify_link(from, to, |f| f.held = false);
    }

    /// Removes every fault: all links behave like the default again, buffered traffic flows.
    pub fn heal(&self) {
        self.update(|state| state.links.clear());
    }

    /// Node ids currently serving.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut nodes: Vec<_> = self.net.lock().inbound.keys().copied().collect();
        nodes.sort_unstable();
        nodes
    }

    /// What the network has done so far.
    pub fn stats(&self) -> NetStats {
        self.net.lock().stats
    }

    fn modify_link(&self, from: NodeId, to: NodeId, change: impl FnOnce(&mut LinkFaults)) {
        self.update(|state| {
            let mut faults = state.faults(from, to);
            change(&mut faults);
            state.links.insert((from, to), faults);
        });
    }

    fn update(&self, change: impl FnOnce(&mut NetState)) {
        change(&mut self.net.lock());
        self.net
            .faults_changed
            .send_modify(|generation| *generation += 1);
    }
}

impl fmt::Debug for MemNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemNetwork")
            .field("nodes", &self.nodes())
            .finish()
    }
}

impl fmt::Debug for MemTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemTransport")
            .field("id", &self.id)
            .finish()
    }
}

impl Net {
    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn decide(&self, from: NodeId, to: NodeId) -> Fate {
        self.lock().decide(from, to)
    }

    /// Waits while the link is held. Returns false if the link is blocked when traffic would
    /// flow (messages in flight when a partition starts are lost).
    async fn wait_until_flowing(&self, from: NodeId, to: NodeId) -> bool {
        // Subscribing costs a lock; only held links need it, so it happens on first wait and
        // is followed by a re-check (a release between the check and the subscription would
        // otherwise be missed).
        let mut changes: Option<watch::Receiver<u64>> = None;
        loop {
            let faults = self.lock().faults(from, to);
            if faults.blocked {
                self.lock().stats.dropped += 1;
                return false;
            }
            if !faults.held {
                return true;
            }
            match &mut changes {
                None => changes = Some(self.faults_changed.subscribe()),
                Some(changes) => {
                    if changes.changed().await.is_err() {
                        return false;
                    }
                }
            }
        }
    }

    fn receiver(&self, to: NodeId) -> Option<Arc<dyn Inbound>> {
        self.lock().inbound.get(&to).cloned()
    }

    fn count_delivery(&self) {
        self.lock().stats.delivered += 1;
    }

    async fn deliver_message(&self, from: NodeId, to: NodeId, message: Bytes) {
        if !self.wait_until_flowing(from, to).await {
            return;
        }
        if let Some(receiver) = self.receiver(to) {
            self.count_delivery();
            receiver.on_message(from, message);
        }
    }

    /// Carries one request and its reply; `None` means lost (the caller's deadline decides).
    async fn round_trip(
        self: &Arc<Self>,
        from: NodeId,
        to: NodeId,
        request: Bytes,
    ) -> Option<Result<Bytes, TransportError>> {
        let (fate, now) = self.decide_and_take(from, to);
        let Fate::Delivered { delay, copies, .. } = fate else {
            return None;
        };
        // Taken at once means already counted.
        let counted = now.is_some();
        let receiver = match now {
            Some(receiver) => receiver,
            None => {
                pause(delay).await;
                if !self.wait_until_flowing(from, to).await {
                    return None;
                }
                self.receiver(to)
            }
        };
        let Some(receiver) = receiver else {
            return Some(Err(TransportError::Unreachable(to)));
        };
        if copies > 1 {
            let duplicate = Arc::clone(&receiver);
            let request = request.clone();
            let net = Arc::clone(self);
            tokio::spawn(async move {
                if !counted {
                    net.count_delivery();
                }
                duplicate.on_call(from, request).await;
            });
        }
        if !counted {
            self.count_delivery();
        }
        let reply = receiver.on_call(from, request).await;
        let Fate::Delivered { delay, held, .. } = self.decide(to, from) else {
            return None;
        };
        if !delay.is_zero() || held {
            pause(delay).await;
            if !self.wait_until_flowing(to, from).await {
                return None;
            }
        }
        Some(Ok(reply))
    }

    /// Decides a message's fate and, when nothing is in the way (no delay, a link neither
    /// held nor holding earlier messages, no overtaking), takes its receiver at once and counts
    /// the deliveries: the common case costs one lock. `Some(None)`: taken, nobody serves `to`.
    fn decide_and_take(
        &self,
        from: NodeId,
        to: NodeId,
    ) -> (Fate, Option<Option<Arc<dyn Inbound>>>) {
        let mut state = self.lock();
        let fate = state.decide(from, to);
        let now = match fate {
            Fate::Delivered {
                delay,
                copies,
                reordered: false,
                held: false,
            } => state.hand_over_now(from, to, delay, copies),
            _ => None,
        };
        (fate, now)
    }

    fn enqueue(self: &Arc<Self>, from: NodeId, to: NodeId, message: Bytes) {
        let (fate, now) = self.decide_and_take(from, to);
        let Fate::Delivered {
            delay,
            copies,
            reordered,
            ..
        } = fate
        else {
            return;
        };
        if let Some(receiver) = now {
            if let Some(receiver) = receiver {
                for _ in 1..copies {
                    receiver.on_message(from, message.clone());
                }
                receiver.on_message(from, message);
            }
            return;
        }
        let deliver_at = Instant::now() + delay;
        if reordered {
            // Overtaking: this copy skips the link's queue and may arrive before earlier ones.
            let net = Arc::downgrade(self);
            tokio::spawn(async move {
                tokio::time::sleep_until(deliver_at).await;
                if let Some(net) = net.upgrade() {
                    net.deliver_message(from, to, message).await;
                }
            });
            return;
        }
        let queue = self.queue(from, to);
        for _ in 0..copies {
            let envelope = Envelope {
                message: message.clone(),
                deliver_at,
            };
            queue.pending.fetch_add(1, Ordering::AcqRel);
            if queue.sender.send(envelope).is_err() {
                return;
            }
        }
    }

    /// The ordered delivery queue of a link, started on first use. Its task holds only a weak
    /// reference, so it ends when the network is dropped.
    fn queue(self: &Arc<Self>, from: NodeId, to: NodeId) -> LinkQueue {
        let mut state = self.lock();
        if let Some(queue) = state.queues.get(&(from, to)) {
            return queue.clone();
        }
        let (sender, mut receiver) = mpsc::unbounded_channel::<Envelope>();
        let queue = LinkQueue {
            sender,
            pending: Arc::new(AtomicUsize::new(0)),
        };
        state.queues.insert((from, to), queue.clone());
        let net: Weak<Net> = Arc::downgrade(self);
        let pending = Arc::clone(&queue.pending);
        tokio::spawn(async move {
            while let Some(envelope) = receiver.recv().await {
                if envelope.deliver_at > Instant::now() {
                    tokio::time::sleep_until(envelope.deliver_at).await;
                }
                let Some(net) = net.upgrade() else { return };
                net.deliver_message(from, to, envelope.message).await;
                pending.fetch_sub(1, Ordering::AcqRel);
            }
        });
        queue
    }
}

/// Sleeps for `delay`, but not at all for zero: tokio rounds every timer up to the next
/// millisecond, which would add a millisecond to each hop of an undelayed network.
async fn pause(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

impl NetState {
    fn decide(&mut self, from: NodeId, to: NodeId) -> Fate {
        self.stats.sent += 1;
        let faults = self.faults(from, to);
        if faults.blocked || self.rng.chance(faults.drop_rate) {
            self.stats.dropped += 1;
            return Fate::Lost;
        }
        let delay = faults.delay + self.rng.duration_up_to(faults.jitter);
        let copies = if self.rng.chance(faults.duplicate_rate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        let reordered = self.rng.chance(faults.reorder_rate);
        Fate::Delivered {
            delay,
            copies,
            reordered,
            held: faults.held,
        }
    }

    /// The receiver of a message to `to` that may be handed over now: no delay and nothing
    /// earlier still queued on the link (handing it over keeps link order and saves a task
    /// switch). Counts the deliveries.
    fn hand_over_now(
        &mut self,
        from: NodeId,
        to: NodeId,
        delay: Duration,
        copies: u8,
    ) -> Option<Option<Arc<dyn Inbound>>> {
        let queued = self
            .queues
            .get(&(from, to))
            .is_some_and(|q| q.pending.load(Ordering::Acquire) > 0);
        if !delay.is_zero() || queued {
            return None;
        }
        let receiver = self.inbound.get(&to).cloned();
        if receiver.is_some() {
            self.stats.delivered += u64::from(copies);
        }
        Some(receiver)
    }

    fn faults(&self, from: NodeId, to: NodeId) -> LinkFaults {
        self.links
            .get(&(from, to))
            .copied()
            .unwrap_or(self.default_faults)
    }
}

#[async_trait]
impl Transport for MemTransport {
    fn local_id(&self) -> NodeId {
        self.id
    }

    async fn call(
        &self,
        to: NodeId,
        request: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        let deadline = Instant::now() + timeout;
        let outcome = tokio::time::timeout_at(deadline, async {
            match self.net.round_trip(self.id, to, request).await {
                Some(result) => result,
                None => std::future::pending().await,
            }
        })
        .await;
        outcome.unwrap_or(Err(TransportError::Timeout(to)))
    }

    fn send(&self, to: NodeId, message: Bytes) {
        self.net.enqueue(self.id, to, message);
    }

    fn serve(&self, inbound: Arc<dyn Inbound>) {
        self.net.lock().inbound.insert(self.id, inbound);
    }

    fn stop_serving(&self) {
        let removed = self.net.lock().inbound.remove(&self.id);
        drop(removed);
    }
}

/// SplitMix64: tiny, fast, and good enough for fault dice; kept here so the core crate needs
/// no random-number dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.unit() < probability
    }

    fn duration_up_to(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        max.mul_f64(self.unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Default)]
    struct Recorder {
        messages: Mutex<Vec<(NodeId, Bytes)>>,
        calls: AtomicU64,
    }

    impl Recorder {
        fn received(&self) -> Vec<Bytes> {
            self.messages
                .lock()
                .unwrap()
                .iter()
                .map(|(_, m)| m.clone())
                .collect()
        }
    }

    #[async_trait]
    impl Inbound for Recorder {
        async fn on_call(&self, from: NodeId, request: Bytes) -> Bytes {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Bytes::from(format!("{from}:{}", String::from_utf8_lossy(&request)))
        }

        fn on_message(&self, from: NodeId, message: Bytes) {
            self.messages.lock().unwrap().push((from, message));
        }
    }

    fn two_nodes(seed: u64) -> (MemNetwork, MemTransport, Arc<Recorder>) {
        let net = MemNetwork::new(seed);
        let a = net.transport(1);
        let b = net.transport(2);
        let recorder = Arc::new(Recorder::default());
        a.serve(Arc::new(Recorder::default()));
        b.serve(recorder.clone());
        (net, a, recorder)
    }

    const DEADLINE: Duration = Duration::from_millis(100);

    #[tokio::test(start_paused = true)]
    async fn call_round_trips_with_delay_both_ways() {
        let (net, a, _) = two_nodes(1);
        net.set_default_faults(LinkFaults {
            delay: Duration::from_millis(5),
            ..LinkFaults::default()
        });
        let start = Instant::now();
        let reply = a
            .call(2, Bytes::from_static(b"ping"), DEADLINE)
            .await
            .unwrap();
        assert_eq!(&reply[..], b"1:ping");
        assert_eq!(start.elapsed(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_request_costs_the_caller_its_deadline() {
        let (net, a, recorder) = two_nodes(1);
        net.partition(1, 2);
        let start = Instant::now();
        let err = a.call(2, Bytes::new(), DEADLINE).await.unwrap_err();
        assert_eq!(err, TransportError::Timeout(2));
        assert_eq!(start.elapsed(), DEADLINE);
        assert_eq!(recorder.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_one_way_partition_loses_replies_but_delivers_requests() {
        let (net, a, recorder) = two_nodes(1);
        net.partition_one_way(2, 1);
        let err = a.call(2, Bytes::new(), DEADLINE).await.unwrap_err();
        assert_eq!(err, TransportError::Timeout(2));
        assert_eq!(
            recorder.calls.load(Ordering::SeqCst),
            1,
            "the request did arrive"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_that_is_not_serving_is_unreachable_at_once() {
        let net = MemNetwork::new(1);
        let a = net.transport(1);
        let start = Instant::now();
        assert_eq!(
            a.call(9, Bytes::new(), DEADLINE).await.unwrap_err(),
            TransportError::Unreachable(9)
        );
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn one_way_messages_keep_link_order_under_jitter() {
        let (net, a, recorder) = two_nodes(7);
        net.set_link(
            1,
            2,
            LinkFaults {
                delay: Duration::from_millis(1),
                jitter: Duration::from_millis(20),
                ..LinkFaults::default()
            },
        );
        for i in 0..50u8 {
            a.send(2, Bytes::from(vec![i]));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let received: Vec<u8> = recorder.received().iter().map(|m| m[0]).collect();
        assert_eq!(received, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn an_undelayed_message_never_overtakes_a_delayed_one_on_its_link() {
        let (net, a, recorder) = two_nodes(1);
        net.set_link(
            1,
            2,
            LinkFaults {
                delay: Duration::from_millis(5),
                ..LinkFaults::default()
            },
        );
        a.send(2, Bytes::from_static(b"first"));
        net.set_link(1, 2, LinkFaults::default());
        a.send(2, Bytes::from_static(b"second"));
        assert!(
            recorder.received().is_empty(),
            "second must wait behind first"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        a.send(2, Bytes::from_static(b"third"));
        let received: Vec<Bytes> = recorder.received();
        assert_eq!(received, vec!["first", "second", "third"]);
    }

    #[tokio::test(start_paused = true)]
    async fn reordering_lets_messages_overtake() {
        let (net, a, recorder) = two_nodes(3);
        net.set_link(
            1,
            2,
            LinkFaults {
                jitter: Duration::from_millis(20),
                reorder_rate: 0.5,
                ..LinkFaults::default()
            },
        );
        for i in 0..50u8 {
            a.send(2, Bytes::from(vec![i]));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let received: Vec<u8> = recorder.received().iter().map(|m| m[0]).collect();
        assert_eq!(received.len(), 50);
        assert_ne!(received, (0..50).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn held_traffic_is_released_in_order() {
        let (net, a, recorder) = two_nodes(1);
        net.hold(1, 2);
        for i in 0..3u8 {
            a.send(2, Bytes::from(vec![i]));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(recorder.received().is_empty());
        net.release(1, 2);
        tokio::time::sleep(Duration::from_millis(1)).await;
        let received: Vec<u8> = recorder.received().iter().map(|m| m[0]).collect();
        assert_eq!(received, vec![0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn drops_and_duplicates_follow_the_seed() {
        async fn run(seed: u64) -> (Vec<Bytes>, NetStats) {
            let (net, a, recorder) = two_nodes(seed);
            net.set_link(
                1,
                2,
                LinkFaults {
                    drop_rate: 0.3,
                    duplicate_rate: 0.2,
                    ..LinkFaults::default()
                },
            );
            for i in 0..200u8 {
                a.send(2, Bytes::from(vec![i]));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            (recorder.received(), net.stats())
        }
        let (first, stats) = run(42).await;
        let (second, _) = run(42).await;
        assert_eq!(first, second, "same seed, same delivery");
        assert!(stats.dropped > 30 && stats.dropped < 90, "{stats:?}");
        assert!(stats.duplicated > 10, "{stats:?}");
        assert_eq!(stats.delivered, 200 - stats.dropped + stats.duplicated);
    }

    #[tokio::test(start_paused = true)]
    async fn heal_restores_isolated_nodes_and_flushes_holds() {
        let (net, a, recorder) = two_nodes(1);
        net.isolate(2);
        assert!(a.call(2, Bytes::new(), DEADLINE).await.is_err());
        net.heal();
        assert!(a.call(2, Bytes::new(), DEADLINE).await.is_ok());
        net.hold(1, 2);
        a.send(2, Bytes::from_static(b"x"));
        net.heal();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(recorder.received().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn partition_groups_leaves_links_inside_a_group() {
        let net = MemNetwork::new(1);
        net.partition_groups(&[&[1, 2], &[3]]);
        assert!(!net.link(1, 2).blocked);
        assert!(net.link(1, 3).blocked && net.link(3, 2).blocked);
    }
}
