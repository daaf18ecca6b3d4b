//! raft-rs driven directly: `RawNode<MemStorage>` per node, raft `Message`s moved between tasks
//! without encoding, the textbook ready loop. No raftengine code in the path; this is the
//! yardstick the raft-rs adapter's overhead is measured against.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use raft::eraftpb::{Entry, EntryType, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};
use tokio::sync::{mpsc, oneshot, watch};

use bytes::Bytes;
use protobuf::Message as _;

use super::{DirectCluster, WRITE_DEADLINE, Wire, WriteTarget};

const TICK: Duration = Duration::from_millis(10);

enum Input {
    Raft(Message),
    /// A message as bytes on the wire ([`Wire::Encoded`]).
    Encoded(Bytes),
    Propose(Vec<u8>, oneshot::Sender<()>),
}

/// A 3-node raft-rs cluster with nothing of ours between the client and the library.
pub struct DirectRaftRs {
    leader_inbox: mpsc::UnboundedSender<Input>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    value: Vec<u8>,
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
                state: HashMap::new(),
                leading: (id == 1).then(|| leading_tx.clone()),
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
            value: vec![b'v'; value_size],
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
        let mut command = format!("{client}/{serial}=").into_bytes();
        command.extend_from_slice(&self.value);
        let inbox = self.leader_inbox.clone();
        async move {
            let (done, applied) = oneshot::channel();
            inbox
                .send(Input::Propose(command, done))
                .map_err(|_| "leader stopped".to_string())?;
            tokio::time::timeout(WRITE_DEADLINE, applied)
                .await
                .map_err(|_| format!("no answer within {WRITE_DEADLINE:?}"))?
                .map_err(|_| "proposal dropped".to_string())
        }
    }
}

struct Driver {
    node: RawNode<MemStorage>,
    peers: Arc<BTreeMap<u64, mpsc::UnboundedSender<Input>>>,
    delay: Duration,
    wire: Wire,
    pending: HashMap<u64, oneshot::Sender<()>>,
    next_request: u64,
    state: HashMap<Vec<u8>, Vec<u8>>,
    leading: Option<watch::Sender<bool>>,
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
                    self.handle(input);
                    while let Ok(more) = inbox.try_recv() {
                        self.handle(more);
                    }
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
            Input::Propose(command, done) => {
                let request = self.next_request;
                self.next_request += 1;
                if self
                    .node
                    .propose(request.to_le_bytes().to_vec(), command)
                    .is_ok()
                {
                    self.pending.insert(request, done);
                }
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

    fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            if entry.data.is_empty() || entry.get_entry_type() != EntryType::EntryNormal {
                continue;
            }
            let data = entry.data.to_vec();
            let split = data.iter().position(|&b| b == b'=').unwrap_or(data.len());
            let (key, value) = data.split_at(split);
            self.state.insert(key.to_vec(), value.to_vec());
            if let Ok(request) = <[u8; 8]>::try_from(&entry.context[..])
                && let Some(done) = self.pending.remove(&u64::from_le_bytes(request))
            {
                let _ = done.send(());
            }
        }
    }
}
