//! raft-rs driven directly: `RawNode<MemStorage>` per node, raft `Message`s moved between tasks
//! without encoding, the textbook ready loop. No raftengine code in the path; this is the
//! yardstick the raft-rs adapter's overhead is measured against.
//!
//! With [`Wire::Encoded`] it also does the work any real deployment does and the adapter's bench
//! does too: messages cross as protobuf bytes, every persisted entry is encoded into a byte log
//! beside `MemStorage`, as a store on disk must hold it (openraft's memstore, the other
//! baseline, serializes its log entries too), and the application is the one the adapter runs:
//! writers send encoded [`KvCommand`]s, every node applies them to a [`KvStateMachine`], and the
//! leader hands each writer its response. The application's cost is then the same on both
//! sides of the ratio, which measures the adapter and nothing else.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use raft::eraftpb::{Entry, EntryType, Message, MessageType};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};
use tokio::sync::{mpsc, oneshot, watch};

use bytes::Bytes;
use kv_lease::kv::{KvCommand, KvStateMachine};
use protobuf::Message as _;
use raftengine::StateMachine as _;

use super::{DirectCluster, WRITE_DEADLINE, Wire, WriteTarget};

const TICK: Duration = Duration::from_millis(10);

enum Input {
    Raft(Message),
    /// A message as bytes on the wire ([`Wire::Encoded`]).
    Encoded(Bytes),
    /// A command and where its response goes.
    Propose(Bytes, oneshot::Sender<Bytes>),
}

/// A 3-node raft-rs cluster with nothing of ours between the client and the library.
pub struct DirectRaftRs {
    leader_inbox: mpsc::UnboundedSender<Input>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    value_len: usize,
    wire: Wire,
}

impl DirectCluster for DirectRaftRs {
    /// Starts `nodes` nodes, makes node 1 campaign, and waits until it leads.
    async fn start(
        nodes: u64,
        one_way_delay: Duration,
        value_size: usize,
        wire: Wire,
    ) -> Result<Self, String> {
        let voters: Vec<u64> = (1..=nodes).collect();
        let mut inboxes = BTreeMap::new();
        let mut receivers = BTreeMap::new();
        for &id in &voters {
            let (sender, receiver) = mpsc::unbounded_channel();
            inboxes.insert(id, sender);
            receivers.insert(id, receiver);
        }
        let peers = Arc::new(inboxes);
        let (stop, stopped) = watch::channel(false);
        let (leading_tx, mut leading) = watch::channel(false);
        let mut tasks = Vec::new();
        for &id in &voters {
            let storage = MemStorage::new_with_conf_state((voters.clone(), vec![]));
            let config = Config {
                id,
                election_tick: 30,
                heartbeat_tick: 5,
                check_quorum: true,
                pre_vote: true,
                // raft-rs defaults to one entry per append message; batch like production users.
                max_size_per_msg: 1 << 20,
                max_inflight_msgs: 256,
                ..Default::default()
            };
            config.validate().map_err(|e| e.to_string())?;
            let logger = slog::Logger::root(slog::Discard, slog::o!());
            let mut node = RawNode::new(&config, storage, &logger).map_err(|e| e.to_string())?;
            if id == 1 {
                node.campaign().map_err(|e| e.to_string())?;
            }
            let driver = Driver {
                node,
                peers: Arc::clone(&peers),
                delay: one_way_delay,
                wire,
                pending: HashMap::new(),
                next_request: 0,
                app: match wire {
                    Wire::Structs => App::Bare(HashMap::new()),
                    Wire::Encoded => App::Kv(KvStateMachine::new()),
                },
                leading: (id == 1).then(|| leading_tx.clone()),
                log: Vec::new(),
                log_start: 1,
                compacted_to: 0,
                // As often as the adapters snapshot and compact in the bench's clusters (their
                // default config): a deployment must bound its log, and a log that only grows
                // costs page faults and reallocation the adapters do not pay.
                compact_every: raftengine::Config::new(id, voters.iter().copied())
                    .snapshot_after_entries,
            };
            let inbox = receivers.remove(&id).ok_or("missing inbox")?;
            tasks.push(tokio::spawn(driver.run(inbox, stopped.clone())));
        }
        tokio::time::timeout(Duration::from_secs(10), leading.wait_for(|leads| *leads))
            .await
            .map_err(|_| "node 1 did not become leader within 10s".to_string())?
            .map_err(|_| "node 1 stopped".to_string())?;
        let leader_inbox = peers.get(&1).cloned().ok_or("no node 1")?;
        Ok(Self {
            leader_inbox,
            stop,
            tasks,
            value_len: value_size,
            wire,
        })
    }

    /// Stops every node and waits for their tasks.
    async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

impl WriteTarget for DirectRaftRs {
    fn write(&self, client: usize, serial: u64) -> impl Future<Output = Result<(), String>> + Send {
        // One key per client, overwritten by each write, as in the adapter's write path.
        let key = crate::workload::put_key(client);
        let value = crate::workload::value_for(client, serial, self.value_len);
        let command = match self.wire {
            Wire::Structs => {
                let mut command = key.to_vec();
                command.push(b'=');
                command.extend_from_slice(&value);
                Bytes::from(command)
            }
            Wire::Encoded => KvCommand::Put { key, value }.encode(),
        };
        let inbox = self.leader_inbox.clone();
        async move {
            let (done, applied) = oneshot::channel();
            inbox
                .send(Input::Propose(command, done))
                .map_err(|_| "leader stopped".to_string())?;
            tokio::time::timeout(WRITE_DEADLINE, applied)
                .await
                .map_err(|_| format!("no answer within {WRITE_DEADLINE:?}"))?
                .map(drop)
                .map_err(|_| "proposal dropped".to_string())
        }
    }
}

struct Driver {
    node: RawNode<MemStorage>,
    peers: Arc<BTreeMap<u64, mpsc::UnboundedSender<Input>>>,
    delay: Duration,
    wire: Wire,
    pending: HashMap<u64, oneshot::Sender<Bytes>>,
    next_request: u64,
    app: App,
    leading: Option<watch::Sender<bool>>,
    /// Encoded entries by index, from `log_start` on ([`Wire::Encoded`] only).
    log: Vec<Bytes>,
    log_start: u64,
    /// Entries before this index were dropped from the log.
    compacted_to: u64,
    /// Applied entries between compactions.
    compact_every: u64,
}

impl Driver {
    async fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Input>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                _ = ticker.tick() => { self.node.tick(); }
                input = inbox.recv() => {
                    let Some(input) = input else { return };
                    // As the adapter does: proposals that arrived together become one raft-rs
                    // message, so they leave as one append per follower.
                    let mut proposals = Vec::new();
                    for input in std::iter::once(input).chain(std::iter::from_fn(|| inbox.try_recv().ok())) {
                        match input {
                            Input::Propose(command, done) => proposals.push((command, done)),
                            other => {
                                self.propose(std::mem::take(&mut proposals));
                                self.handle(other);
                            }
                        }
                    }
                    self.propose(proposals);
                }
            }
            self.on_ready();
            if let Some(leading) = &self.leading {
                leading.send_if_modified(|leads| {
                    let now = self.node.raft.state == StateRole::Leader;
                    std::mem::replace(leads, now) != now
                });
            }
        }
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Raft(message) => {
                let _ = self.node.step(message);
            }
            Input::Encoded(bytes) => {
                if let Ok(message) = Message::parse_from_bytes(&bytes) {
                    let _ = self.node.step(message);
                }
            }
            Input::Propose(command, done) => self.propose(vec![(command, done)]),
        }
    }

    /// One `MsgPropose` carrying every command of `batch`, as `RawNode::propose` builds for one.
    fn propose(&mut self, batch: Vec<(Bytes, oneshot::Sender<Bytes>)>) {
        if batch.is_empty() {
            return;
        }
        let first = self.next_request;
        self.next_request += batch.len() as u64;
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgPropose);
        message.from = self.node.raft.id;
        let (commands, dones): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let entries: Vec<Entry> = (first..)
            .zip(commands)
            .map(|(request, command)| Entry {
                data: command,
                context: request.to_le_bytes().to_vec().into(),
                ..Default::default()
            })
            .collect();
        message.set_entries(entries.into());
        if self.node.raft.step(message).is_ok() {
            for (request, done) in (first..).zip(dones) {
                self.pending.insert(request, done);
            }
        }
    }

    fn on_ready(&mut self) {
        if !self.node.has_ready() {
            return;
        }
        let mut ready = self.node.ready();
        self.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            let _ = self.node.mut_store().wl().apply_snapshot(snapshot);
        }
        self.apply(ready.take_committed_entries());
        let _ = self.node.mut_store().wl().append(ready.entries());
        if self.wire == Wire::Encoded {
            self.encode_entries(ready.entries());
        }
        if let Some(hard_state) = ready.hs() {
            self.node.mut_store().wl().set_hardstate(hard_state.clone());
        }
        self.send(ready.take_persisted_messages());
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.node
                .mut_store()
                .wl()
                .mut_hard_state()
                .set_commit(commit);
        }
        self.send(light.take_messages());
        self.apply(light.take_committed_entries());
        self.node.advance_apply();
        self.maybe_compact();
    }

    /// Drops applied entries every `compact_every`, keeping what a follower still needs (a
    /// leader keeps everything from the slowest follower's matched index on).
    fn maybe_compact(&mut self) {
        let raft = &self.node.raft;
        let mut keep_from = raft.raft_log.applied;
        if raft.state == StateRole::Leader {
            for (_, progress) in raft.prs().iter() {
                keep_from = keep_from.min(progress.matched);
            }
        }
        // 0 turns snapshots off in the adapters; here it turns compaction off.
        if self.compact_every == 0 || keep_from < self.compacted_to + self.compact_every {
            return;
        }
        if self.node.mut_store().wl().compact(keep_from).is_err() {
            return;
        }
        self.compacted_to = keep_from;
        if keep_from > self.log_start {
            let drop = usize::try_from(keep_from - self.log_start)
                .unwrap_or(usize::MAX)
                .min(self.log.len());
            self.log.drain(..drop);
            self.log_start += drop as u64;
        }
    }

    fn send(&self, messages: Vec<Message>) {
        for message in messages {
            let Some(peer) = self.peers.get(&message.to).cloned() else {
                continue;
            };
            let input = match self.wire {
                Wire::Structs => Input::Raft(message),
                Wire::Encoded => match message.write_to_bytes() {
                    Ok(bytes) => Input::Encoded(Bytes::from(bytes)),
                    Err(_) => continue,
                },
            };
            if self.delay.is_zero() {
                let _ = peer.send(input);
            } else {
                let delay = self.delay;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = peer.send(input);
                });
            }
        }
    }

    /// Keeps `entries` as bytes, the later replacing the earlier from their first index on.
    fn encode_entries(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else {
            return;
        };
        let keep =
            usize::try_from(first.index.saturating_sub(self.log_start)).unwrap_or(usize::MAX);
        if first.index < self.log_start || keep > self.log.len() {
            self.log.clear();
            self.log_start = first.index;
        } else {
            self.log.truncate(keep);
        }
        for entry in entries {
            if let Ok(bytes) = entry.write_to_bytes() {
                self.log.push(Bytes::from(bytes));
            }
        }
    }

    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            if entry.data.is_empty() || entry.get_entry_type() != EntryType::EntryNormal {
                continue;
            }
            let response = self.app.apply(&entry);
            if let Ok(request) = <[u8; 8]>::try_from(&entry.context[..])
                && let Some(done) = self.pending.remove(&u64::from_le_bytes(request))
            {
                let _ = done.send(response);
            }
        }
    }
}

/// What a node applies its entries to.
enum App {
    /// `key=value` commands into a map, answering nothing: the textbook loop ([`Wire::Structs`]).
    Bare(HashMap<Vec<u8>, Vec<u8>>),
    /// The adapter bench's application ([`Wire::Encoded`]).
    Kv(KvStateMachine),
}

impl App {
    fn apply(&mut self, entry: &Entry) -> Bytes {
        match self {
            Self::Bare(state) => {
                let data = entry.data.to_vec();
                let split = data.iter().position(|&b| b == b'=').unwrap_or(data.len());
                let (key, rest) = data.split_at(split);
                let value = rest.get(1..).unwrap_or_default();
                state.insert(key.to_vec(), value.to_vec());
                Bytes::new()
            }
            Self::Kv(state) => state.apply(entry.index, entry.term, &entry.data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_lease::kv::KvResponse;

    fn entry(index: u64, data: Bytes) -> Entry {
        Entry {
            index,
            term: 1,
            data,
            ..Default::default()
        }
    }

    #[test]
    fn the_encoded_form_answers_as_the_adapters_state_machine() {
        let put = |value: &'static str| {
            KvCommand::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(value.as_bytes()),
            }
            .encode()
        };
        let mut app = App::Kv(KvStateMachine::new());
        let mut reference = KvStateMachine::new();
        for (index, value) in [(1, "a"), (2, "b")] {
            let answer = app.apply(&entry(index, put(value)));
            assert_eq!(answer, reference.apply(index, 1, &put(value)));
        }
        let previous = KvResponse::decode(&app.apply(&entry(3, put("c")))).unwrap();
        assert_eq!(
            previous,
            KvResponse::Done {
                previous: Some(Bytes::from_static(b"b"))
            }
        );
    }

    #[test]
    fn the_textbook_form_stores_key_value_and_answers_nothing() {
        let mut app = App::Bare(HashMap::new());
        assert!(app.apply(&entry(1, Bytes::from_static(b"k=v"))).is_empty());
        let App::Bare(state) = app else {
            unreachable!("built as Bare")
        };
        assert_eq!(state.get(b"k".as_slice()), Some(&b"v".to_vec()));
    }

    #[tokio::test]
    async fn both_forms_commit_writes() {
        for wire in [Wire::Structs, Wire::Encoded] {
            let cluster = DirectRaftRs::start(3, Duration::ZERO, 16, wire)
                .await
                .unwrap();
            for serial in 0..20 {
                cluster.write(0, serial).await.unwrap();
            }
            cluster.shutdown().await;
        }
    }
}
