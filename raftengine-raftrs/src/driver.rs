//! The one task that owns the raft-rs `RawNode`.
//!
//! It waits for an event (a peer message, an API request, shutdown) or the next tick, handles
//! everything that arrived, then runs the ready loop in raft-rs's documented order:
//! 1. send the leader's messages (they may go before the local write, thesis §10.2.1);
//! 2. install a received snapshot (state machine restore, then the log store);
//! 3. collect read states;
//! 4. persist new entries, then the hard state;
//! 5. apply committed entries (raft-rs 0.7 only hands out entries that are already persisted);
//! 6. send the messages that depend on the persisted state (votes, append responses);
//! 7. advance; persist the new commit index, send and apply what the light ready holds.
//!
//! When writes are asynchronous (`crate::persist`), steps 4 and 6 move: the entries and a
//! changed term or vote go to the writer thread, the messages of step 6 wait in `in_flight`,
//! and both complete when the writer reports the ready durable (`on_persist_ready`). A ready
//! with a snapshot first waits for everything in flight and is then handled in full.
//!
//! After every iteration it detects leadership edges, resolves transfers, checks the quorum-ack
//! age and publishes [`Status`]. The synchronous part of each iteration runs under
//! `catch_unwind`: a panic inside raft-rs (or the user's state machine) fails every waiter with
//! `Fatal`, fires the leader-loss callbacks and stops the node.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeV2, Entry, EntryType, Message, MessageType, Snapshot};
use raft::{RawNode, SnapshotStatus, StateRole};
use raftengine::{
    Applied, Error, ErrorKind, LossCause, Membership, Result, Role, SharedStateMachine,
    SnapshotInfo, StateMachine, Status,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::codec::{self, RequestId, RequestKind};
use crate::errors::{NodeView, map_error};
use crate::membership::{self, Change, ConfCache};
use crate::persist::{Completions, Persisted};
use crate::proposals::{Pending, Proposals, Reply};
use crate::quorum::{AckTracker, QuorumTime};
use crate::reads::{ReadReply, Reads};
use crate::shared::{Event, PublishedAck, Shared, halt_error};
use crate::storage::RaftStorage;
use crate::transfer::{self, Observed, Transfer, TransferReply};

/// Most command bytes proposed to raft-rs as one message; a longer run of proposals is split,
/// so the uncommitted-size limit refuses a part of it, not everything that arrived together.
const PROPOSAL_BATCH_BYTES: usize = 1 << 20;

/// Where a proposal's answer goes.
type CommandReply = oneshot::Sender<Result<Applied>>;

/// Deterministic election-timeout randomness (raft-rs uses the thread RNG; we override it so a
/// seeded test replays).
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The task state.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    node: RawNode<RaftStorage>,
    state_machine: SharedStateMachine<dyn StateMachine>,
    proposals: Proposals,
    reads: Reads,
    transfer: Option<Transfer>,
    acks: AckTracker,
    incarnation: u64,
    seq: u64,
    applied: u64,
    applied_term: u64,
    /// Transfers started by this node (published as `Status::transfers_started`).
    transfers_started: u64,
    /// The term of the latest transfer this node started (published as
    /// `Status::transfer_term`). raft-rs re-sends `MsgTimeoutNow` while the transfer runs and
    /// cannot recall one in flight after an abort, so no acknowledgement of that term is
    /// published afterwards.
    transfer_term: Option<u64>,
    last_snapshot_index: u64,
    /// Vote requests are dropped until this instant (restart only).
    vote_drop_until: Option<Instant>,
    /// The term this node led in at the end of the previous iteration.
    led: Option<u64>,
    /// Acknowledgements count from this instant on: leadership start or a transfer abort.
    leader_since: Instant,
    /// The clock's reading when the current iteration woke up.
    woke_at: Instant,
    quorum_lost: bool,
    /// Whether a transfer was running at the end of the previous iteration.
    was_transferring: bool,
    last_role_term: (StateRole, u64),
    rng: SplitMix,
    election_timeout_set: usize,
    snapshots_to_report: Vec<u64>,
    /// Completions of readies handed to the store writer thread (`crate::persist`), if writes
    /// are asynchronous.
    completions: Option<Completions>,
    /// Readies handed to the writer and not yet durable, with the messages that may leave only
    /// once they are: `(ready number, messages)`, oldest first.
    in_flight: VecDeque<(u64, Vec<Message>)>,
    /// The configuration as read by every iteration; refreshed before each use.
    conf: ConfCache,
    /// The term of the last published status if it showed this node leading.
    published_leader_term: Option<u64>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("id", &self.shared.id)
            .field("applied", &self.applied)
            .finish()
    }
}

/// Inputs of a new driver.
pub(crate) struct DriverInit {
    pub(crate) shared: Arc<Shared>,
    pub(crate) node: RawNode<RaftStorage>,
    pub(crate) state_machine: SharedStateMachine<dyn StateMachine>,
    pub(crate) incarnation: u64,
    pub(crate) applied: u64,
    pub(crate) applied_term: u64,
    pub(crate) restarted: bool,
    pub(crate) completions: Option<Completions>,
}

impl Driver {
    /// Builds the driver.
    pub(crate) fn new(init: DriverInit) -> Self {
        let now = init.shared.clock.now();
        // Restart vote drop (docs/leases.md): a node that restarts has forgotten that it heard
        // from a leader, so raft-rs's check-quorum vote refusal does not protect that leader's
        // lease any more. Dropping vote requests for one election timeout after a restart
        // restores the promise the leader's lease relies on.
        let vote_drop_until = init
            .restarted
            .then(|| now + init.shared.ticks.election_timeout());
        let last_snapshot_index = init.node.store().snapshot_index();
        let seed = SplitMix(init.shared.config.seed).next()
            ^ SplitMix(init.shared.id.rotate_left(29)).next()
            ^ init.incarnation.rotate_left(47);
        let last_role_term = (init.node.raft.state, init.node.raft.term);
        let conf = ConfCache::of(init.node.raft.prs());
        let mut driver = Self {
            acks: AckTracker::new(init.incarnation),
            shared: init.shared,
            node: init.node,
            state_machine: init.state_machine,
            proposals: Proposals::default(),
            reads: Reads::default(),
            transfer: None,
            incarnation: init.incarnation,
            seq: 0,
            applied: init.applied,
            applied_term: init.applied_term,
            transfers_started: 0,
            transfer_term: None,
            last_snapshot_index,
            vote_drop_until,
            led: None,
            leader_since: now,
            woke_at: now,
            quorum_lost: false,
            was_transferring: false,
            last_role_term,
            rng: SplitMix(seed),
            election_timeout_set: 0,
            snapshots_to_report: Vec::new(),
            completions: init.completions,
            in_flight: VecDeque::new(),
            conf,
            published_leader_term: None,
        };
        driver.randomize_election_timeout(true);
        driver.publish();
        driver
    }

    /// Runs until shutdown or a fatal failure.
    pub(crate) async fn run(mut self, mut events: mpsc::Receiver<Event>) {
        let tick = self.shared.ticks.tick;
        let clock = Arc::clone(&self.shared.clock);
        let shared = Arc::clone(&self.shared);
        let stop = &shared.stop;
        let persisted = self.completions.as_ref().map(|c| Arc::clone(&c.wake));
        let mut next_tick = clock.now() + tick;
        // One stop waiter and one timer for the task's life, re-armed each iteration: a fresh
        // pair per iteration registered and deregistered both every time.
        let stopped = stop.notified();
        tokio::pin!(stopped);
        let timer = tokio::time::sleep(std::time::Duration::ZERO);
        tokio::pin!(timer);
        // The tick the timer is armed for. Re-arming costs two clock readings and a timer
        // update, so it happens only when the tick moved or the timer fired early (the clock
        // behind tokio's); a tick is taken only once the clock says it is due, whatever woke us.
        let mut armed_for = None;
        loop {
            if armed_for != Some(next_tick) || timer.is_elapsed() {
                let wait = next_tick.saturating_duration_since(clock.now());
                timer.as_mut().reset(Instant::now() + wait);
                armed_for = Some(next_tick);
            }
            let mut batch = Vec::new();
            let mut ticked = false;
            // `biased`: a deterministic branch order keeps seeded runs replayable. Ticks cannot
            // starve: the tick is checked after every wake-up, whichever branch fired.
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(event) => {
                        batch.push(event);
                        while batch.len() < 256 {
                            match events.try_recv() {
                                Ok(event) => batch.push(event),
                                Err(_) => break,
                            }
                        }
                    }
                    None => batch.push(Event::Shutdown),
                },
                () = &mut stopped => batch.push(Event::Shutdown),
                // A ready became durable: the iteration takes its completion first.
                _ = async {
                    match &persisted {
                        Some(wake) => wake.notified().await,
                        None => std::future::pending().await,
                    }
                } => {}
                () = &mut timer => {}
            }
            let now = clock.now();
            self.woke_at = now;
            if now >= next_tick {
                ticked = true;
                next_tick += tick;
                if next_tick <= now {
                    next_tick = now + tick;
                }
            }
            let shutdown = batch.iter().any(|e| matches!(e, Event::Shutdown));
            let outcome = catch_unwind(AssertUnwindSafe(|| self.iteration(batch, ticked)));
            match outcome {
                Ok(Ok(())) if !shutdown => {}
                Ok(Ok(())) => {
                    self.halt(ErrorKind::Shutdown, LossCause::Shutdown);
                    return;
                }
                Ok(Err(err)) => {
                    tracing::error!(node = self.shared.id, %err, "raft node stopped on a storage failure");
                    self.halt(ErrorKind::Storage, LossCause::Fatal);
                    return;
                }
                Err(panic) => {
                    let text = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    tracing::error!(node = self.shared.id, panic = %text, "raft node panicked; stopping");
                    self.halt(ErrorKind::Fatal, LossCause::Fatal);
                    return;
                }
            }
        }
    }

    /// Stops: records why, fails every waiter, fires loss callbacks, stops serving.
    fn halt(&mut self, kind: ErrorKind, cause: LossCause) {
        self.shared.set_halted(kind.clone());
        let err = || halt_error(kind.clone());
        self.proposals.fail_all(err);
        self.reads.fail_all(err);
        if let Some(t) = self.transfer.take() {
            t.finish(&Err(err()));
        }
        self.shared.finish(cause);
    }

    fn iteration(&mut self, batch: Vec<Event>, ticked: bool) -> Result<()> {
        // The tick goes first. A message handled before it would count that tick as its first
        // tick of silence although the tick was due before the message arrived (the driver woke
        // late), and the next grid tick could follow an instant later: the vote-refusal window
        // would shrink by almost a tick (see `timing::Ticks::timing`).
        if ticked {
            self.node.tick();
        }
        self.take_completions()?;
        // Proposals that arrived together go to raft-rs as one message, so they leave as one
        // append per follower instead of one each; anything else in between keeps its place.
        let mut run: Vec<(Bytes, CommandReply)> = Vec::new();
        let mut run_bytes = 0;
        for event in batch {
            match event {
                Event::Propose { command, reply } => {
                    if run_bytes + command.len() > PROPOSAL_BATCH_BYTES {
                        self.propose_batch(std::mem::take(&mut run));
                        run_bytes = 0;
                    }
                    run_bytes += command.len();
                    run.push((command, reply));
                }
                other => {
                    self.propose_batch(std::mem::take(&mut run));
                    run_bytes = 0;
                    self.handle(other)?;
                }
            }
        }
        self.propose_batch(run);
        self.randomize_election_timeout(false);
        self.maybe_leave_joint();
        self.issue_reads();
        while self.node.has_ready() {
            self.process_ready()?;
        }
        for to in std::mem::take(&mut self.snapshots_to_report) {
            self.node.report_snapshot(to, SnapshotStatus::Finish);
        }
        self.maybe_snapshot()?;
        self.after_iteration();
        // Reporting snapshots or leaving joint may have produced more work.
        while self.node.has_ready() {
            self.process_ready()?;
        }
        self.publish();
        Ok(())
    }

    fn handle(&mut self, event: Event) -> Result<()> {
        match event {
            Event::Message { from, bytes } => self.on_message(from, &bytes),
            Event::Propose { command, reply } => self.propose_batch(vec![(command, reply)]),
            Event::Read { reply } => self.read(reply),
            Event::Transfer { target, reply } => self.start_transfer(target, reply),
            Event::Membership { change, reply } => self.change_membership(change, reply),
            Event::Snapshot { reply } => {
                let result = self.build_snapshot();
                let answer = match &result {
                    Ok(info) => Ok(*info),
                    Err(e) => Err(Error::new(e.kind().clone())
                        .with_context(e.context().unwrap_or_default().to_owned())),
                };
                let _ = reply.send(answer);
                result.map(|_| ())?;
            }
            Event::Shutdown => {}
        }
        Ok(())
    }

    fn next_id(&mut self) -> RequestId {
        self.seq += 1;
        RequestId {
            node: self.shared.id,
            incarnation: self.incarnation,
            seq: self.seq,
        }
    }

    fn view(&self) -> NodeView {
        NodeView::of(&self.node.raft)
    }

    fn randomize_election_timeout(&mut self, force: bool) {
        let raft = &self.node.raft;
        let key = (raft.state, raft.term);
        if force
            || key != self.last_role_term
            || raft.randomized_election_timeout() != self.election_timeout_set
        {
            let ticks = self.shared.ticks;
            let span = (ticks.max_election - ticks.election) as u64;
            let value = ticks.election + (self.rng.next() % span) as usize;
            self.node.raft.set_randomized_election_timeout(value);
            self.election_timeout_set = value;
        }
    }

    fn on_message(&mut self, from: u64, bytes: &[u8]) {
        let Some(envelope) = codec::decode_envelope(bytes) else {
            tracing::warn!(
                node = self.shared.id,
                from,
                len = bytes.len(),
                "dropping a malformed message"
            );
            return;
        };
        let message = &envelope.message;
        if from == 0 || message.from != from || message.to != self.shared.id {
            tracing::warn!(
                node = self.shared.id,
                from,
                claimed = message.from,
                to = message.to,
                "dropping a misaddressed message"
            );
            return;
        }
        let msg_type = message.get_msg_type();
        if raft::raw_node::is_local_msg(msg_type) {
            tracing::warn!(
                node = self.shared.id,
                from,
                ?msg_type,
                "dropping a local-only message type from a peer"
            );
            return;
        }
        if matches!(
            msg_type,
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
        ) && let Some(until) = self.vote_drop_until
        {
            if self.shared.clock.now() < until {
                tracing::debug!(
                    node = self.shared.id,
                    from,
                    "dropping a vote request inside the restart window"
                );
                return;
            }
            self.vote_drop_until = None;
        }
        if msg_type == MessageType::MsgSnapshot {
            // raft-rs restores the snapshot's configuration while stepping it.
            self.conf.mark_stale();
        }
        self.acks.on_received(from, envelope.token);
        if matches!(
            msg_type,
            MessageType::MsgAppendResponse | MessageType::MsgHeartbeatResponse
        ) {
            self.acks.on_ack(from, message.term, envelope.echo);
        }
        if let Err(err) = self.node.step(envelope.message) {
            let err = map_error(err, &self.view());
            tracing::debug!(node = self.shared.id, from, %err, "raft-rs refused a message");
        }
    }

    /// Proposes `batch` (in order) as one raft-rs message: one entry each, one append per
    /// follower for all. If raft-rs refuses the message as a whole (no longer leading, a
    /// transfer running, the uncommitted-size limit), each proposal is tried alone, so each
    /// gets its own answer.
    fn propose_batch(&mut self, batch: Vec<(Bytes, CommandReply)>) {
        if batch.is_empty() {
            return;
        }
        if self.view().refuse_unless_leader().is_some() {
            for (_, reply) in batch {
                if let Some(err) = self.view().refuse_unless_leader() {
                    let _ = reply.send(Err(err));
                }
            }
            return;
        }
        let first = self.node.raft.raft_log.last_index() + 1;
        let term = self.node.raft.term;
        let ids: Vec<RequestId> = batch.iter().map(|_| self.next_id()).collect();
        let entries: Vec<Entry> = batch
            .iter()
            .zip(&ids)
            .map(|((command, _), id)| Entry {
                // Shares the caller's buffer: no copy of the command.
                data: command.clone(),
                context: codec::encode_request_id(RequestKind::Command, *id).into(),
                ..Default::default()
            })
            .collect();
        let mut message = Message::default();
        message.set_msg_type(MessageType::MsgPropose);
        message.from = self.node.raft.id;
        message.set_entries(entries.into());
        if let Err(err) = self.node.raft.step(message) {
            if batch.len() > 1 {
                for one in batch {
                    self.propose_batch(vec![one]);
                }
            } else {
                let error = map_error(err, &self.view());
                if let Some((_, reply)) = batch.into_iter().next() {
                    let _ = reply.send(Err(error));
                }
            }
            return;
        }
        let last = first + batch.len() as u64 - 1;
        if self.node.raft.raft_log.last_index() < last {
            for (_, reply) in batch {
                let _ =
                    reply
                        .send(Err(Error::not_leader(None)
                            .with_context("raft-rs did not append the proposal")));
            }
            return;
        }
        for (index, ((_, reply), id)) in (first..).zip(batch.into_iter().zip(ids)) {
            self.proposals.push(Pending {
                term,
                index,
                id,
                reply: Reply::Command(reply),
            });
        }
    }

    fn read(&mut self, reply: ReadReply) {
        let view = self.view();
        if view.role != StateRole::Leader || !view.in_config {
            let hint =
                (view.leader_id != 0 && view.role != StateRole::Leader).then_some(view.leader_id);
            let _ = reply.send(Err(Error::not_leader(hint)));
            return;
        }
        self.reads.enqueue(reply);
    }

    /// Issues one ReadIndex round for every queued reader, once the leader has committed an
    /// entry of its term (raft-rs drops the request silently before that).
    fn issue_reads(&mut self) {
        self.reads.prune_abandoned();
        if !self.reads.has_queued()
            || self.node.raft.state != StateRole::Leader
            || !self.node.raft.commit_to_current_term()
        {
            return;
        }
        let readers = self.reads.take_queued();
        if readers.is_empty() {
            return;
        }
        let id = self.next_id();
        let ctx = codec::encode_request_id(RequestKind::Read, id);
        let before = (
            self.node.raft.pending_read_count(),
            self.node.raft.ready_read_count(),
        );
        self.node.read_index(ctx.clone());
        let after = (
            self.node.raft.pending_read_count(),
            self.node.raft.ready_read_count(),
        );
        if before == after {
            for reader in readers {
                let _ = reader.send(Err(Error::new(ErrorKind::Unavailable)
                    .with_context("raft-rs dropped the ReadIndex request")));
            }
            return;
        }
        self.reads.issued(ctx, self.node.raft.term, readers);
    }

    fn start_transfer(&mut self, target: Option<u64>, reply: TransferReply) {
        let view = self.view();
        if view.role != StateRole::Leader {
            let hint = (view.leader_id != 0).then_some(view.leader_id);
            let _ = reply.send(Err(Error::not_leader(hint)));
            return;
        }
        let conf = self.node.raft.prs().conf().to_conf_state();
        let prs = self.node.raft.prs();
        let chosen = transfer::choose_target(target, &conf, self.shared.id, |id| {
            prs.get(id).map_or(0, |p| p.matched)
        });
        let target = match chosen {
            Ok(target) => target,
            Err(err) => {
                let _ = reply.send(Err(err));
                return;
            }
        };
        if let Some(running) = &mut self.transfer {
            if running.target == target {
                running.waiters.push(reply);
            } else {
                let _ = reply.send(Err(Error::transfer_in_progress(Some(running.target))));
            }
            return;
        }
        if let Some(other) = view.lead_transferee {
            let _ = reply.send(Err(Error::transfer_in_progress(Some(other))));
            return;
        }
        // The acknowledgement is withdrawn before raft-rs can queue MsgTimeoutNow, and the
        // transfer is published (with raft-rs' transferee set) before this iteration sends the
        // queued messages: a reader on another thread sees the transfer before any forced
        // election can start.
        self.transfers_started += 1;
        self.transfer_term = Some(self.node.raft.term);
        *self.shared.ack.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.node.transfer_leader(target);
        self.publish();
        if self.node.raft.lead_transferee != Some(target) {
            let _ = reply.send(Err(Error::new(ErrorKind::Unavailable)
                .with_context("raft-rs did not start the transfer")));
            return;
        }
        let ticks = self.shared.ticks;
        let limit = ticks.tick * ticks.max_election as u32 + self.shared.config.heartbeat_interval;
        self.transfer = Some(Transfer {
            target,
            term: self.node.raft.term,
            deadline: self.shared.clock.now() + limit,
            waiters: vec![reply],
        });
    }

    fn change_membership(&mut self, change: Change, reply: oneshot::Sender<Result<Membership>>) {
        if let Some(err) = self.view().refuse_unless_leader() {
            let _ = reply.send(Err(err));
            return;
        }
        if self.node.raft.has_pending_conf() || self.proposals.has_membership_waiter() {
            let _ = reply.send(Err(Error::rejected(
                raftengine::RejectReason::MembershipChangePending,
            )));
            return;
        }
        let conf = self.node.raft.prs().conf().to_conf_state();
        if let Err(err) = membership::validate(change, &conf, self.shared.id) {
            let _ = reply.send(Err(err));
            return;
        }
        let id = self.next_id();
        let ctx = codec::encode_request_id(RequestKind::Membership, id);
        let index = self.node.raft.raft_log.last_index() + 1;
        let term = self.node.raft.term;
        if let Err(err) = self
            .node
            .propose_conf_change(ctx, membership::conf_change(change))
        {
            let _ = reply.send(Err(map_error(err, &self.view())));
            return;
        }
        if self.node.raft.raft_log.last_index() < index {
            let _ = reply.send(Err(Error::not_leader(None)
                .with_context("raft-rs did not append the membership change")));
            return;
        }
        self.proposals.push(Pending {
            term,
            index,
            id,
            reply: Reply::Membership(reply),
        });
    }

    /// A new leader that finds the configuration still joint proposes leaving it.
    fn maybe_leave_joint(&mut self) {
        let raft = &self.node.raft;
        if raft.state != StateRole::Leader
            || raft.lead_transferee.is_some()
            || raft.has_pending_conf()
        {
            return;
        }
        self.conf.refresh(raft.prs());
        if self.conf.conf_state().get_voters_outgoing().is_empty() {
            return;
        }
        if let Err(err) = self
            .node
            .propose_conf_change(Vec::new(), ConfChangeV2::default())
        {
            tracing::warn!(node = self.shared.id, %err, "could not propose leaving the joint configuration");
        }
    }

    /// Takes the completions the writer thread reported: sends the messages that waited for
    /// them and tells raft-rs, which may then commit and apply more.
    fn take_completions(&mut self) -> Result<()> {
        let Some(completions) = &self.completions else {
            return Ok(());
        };
        let done: Vec<Persisted> = completions.queue.try_iter().collect();
        for persisted in done {
            self.on_persisted(persisted)?;
        }
        Ok(())
    }

    fn on_persisted(&mut self, persisted: Persisted) -> Result<()> {
        persisted.result?;
        while self
            .in_flight
            .front()
            .is_some_and(|(number, _)| *number <= persisted.number)
        {
            if let Some((_, messages)) = self.in_flight.pop_front() {
                self.send_messages(messages);
            }
        }
        self.node.on_persist_ready(persisted.number);
        Ok(())
    }

    /// Waits until every ready handed to the writer thread is durable.
    fn drain_persists(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            let Some(completions) = &self.completions else {
                return Ok(());
            };
            let store_blocks = || completions.queue.recv();
            let persisted = tokio::task::block_in_place(store_blocks).map_err(|_| {
                Error::new(ErrorKind::Storage)
                    .with_context("the store writer thread stopped with writes in flight")
            })?;
            self.on_persisted(persisted)?;
        }
        Ok(())
    }

    fn process_ready(&mut self) -> Result<()> {
        let mut ready = self.node.ready();
        if self.node.store().is_async() {
            if !ready.snapshot().is_empty() {
                // A snapshot replaces the log: everything handed over before must be on disk
                // first, then this ready is handled in full, as on a synchronous store.
                self.drain_persists()?;
            } else if !ready.entries().is_empty()
                || !self.in_flight.is_empty()
                || self.node.store().changes_durable_state(ready.hs())
            {
                return self.process_ready_async(ready);
            }
        }
        let messages = ready.take_messages();
        self.send_messages(messages);
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.install_snapshot(&snapshot)?;
        }
        for state in ready.take_read_states() {
            self.reads
                .on_read_state(&state.request_ctx, state.index, self.applied);
        }
        let committed = ready.take_committed_entries();
        self.node.mut_store().append(ready.entries())?;
        if let Some(hs) = ready.hs() {
            let hs = hs.clone();
            self.node.mut_store().set_hard_state(&hs)?;
        }
        self.apply_entries(committed)?;
        let persisted = ready.take_persisted_messages();
        self.send_messages(persisted);
        let mut light = self.node.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.node.mut_store().set_commit(commit);
        }
        let messages = light.take_messages();
        self.send_messages(messages);
        self.apply_entries(light.take_committed_entries())?;
        self.node.advance_apply();
        Ok(())
    }

    /// The asynchronous form of the ready loop: steps 4 and 6 of the module docs happen on the
    /// writer thread and in [`Driver::on_persisted`]; everything else happens now.
    fn process_ready_async(&mut self, mut ready: raft::Ready) -> Result<()> {
        let messages = ready.take_messages();
        self.send_messages(messages);
        for state in ready.take_read_states() {
            self.reads
                .on_read_state(&state.request_ctx, state.index, self.applied);
        }
        let committed = ready.take_committed_entries();
        let number = ready.number();
        let hard_state = ready.hs().cloned();
        self.node
            .mut_store()
            .persist_async(ready.entries(), hard_state.as_ref(), number)?;
        let after_persist = ready.take_persisted_messages();
        self.in_flight.push_back((number, after_persist));
        // raft-rs hands out only committed entries that are already persisted.
        self.apply_entries(committed)?;
        self.node.advance_append_async(ready);
        self.node.advance_apply();
        Ok(())
    }

    fn send_messages(&mut self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        // A new leader's first messages let peers act on its leadership at once (the old
        // leader's transfer returns), so its own status must say so before they leave.
        let raft = &self.node.raft;
        if raft.state == StateRole::Leader && self.published_leader_term != Some(raft.term) {
            self.publish();
        }
        let raft = &self.node.raft;
        let leading = raft.state == StateRole::Leader;
        self.acks.set_leader_term(leading.then_some(raft.term));
        let term = raft.term;
        // The iteration's wake-up time: at or before the real send time, so an acknowledgement
        // of these messages never anchors a lease later than the send.
        let now = self.woke_at;
        for message in messages {
            let to = message.to;
            let msg_type = message.get_msg_type();
            let tracked = leading
                && message.term == term
                && matches!(
                    msg_type,
                    MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot
                );
            let token = if tracked {
                self.acks.token_for_send(now)
            } else {
                0
            };
            match codec::encode_envelope(token, self.acks.echo_for(to), &message) {
                Some(bytes) => self.shared.transport.send(to, bytes),
                None => {
                    tracing::warn!(node = self.shared.id, to, "a raft message failed to encode")
                }
            }
            if msg_type == MessageType::MsgSnapshot {
                // Delivery is fire-and-forget; report success after the ready is advanced. If
                // it was lost, the follower keeps rejecting appends and raft-rs sends another.
                self.snapshots_to_report.push(to);
            }
        }
    }

    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        self.conf.mark_stale();
        let meta = snapshot.get_metadata();
        self.state_machine
            .lock()
            .restore(&snapshot.data)
            .map_err(|e| {
                Error::new(ErrorKind::Storage)
                    .with_context(format!("the state machine refused a snapshot: {e}"))
            })?;
        self.node.mut_store().install_snapshot(snapshot)?;
        self.applied = meta.index;
        self.applied_term = meta.term;
        self.last_snapshot_index = meta.index;
        self.proposals.on_snapshot(meta.index);
        self.reads.on_applied(self.applied);
        Ok(())
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<()> {
        for entry in entries {
            if entry.index <= self.applied {
                continue;
            }
            self.apply_entry(&entry);
            self.applied = entry.index;
            self.applied_term = entry.term;
        }
        self.reads.on_applied(self.applied);
        Ok(())
    }

    fn apply_entry(&mut self, entry: &Entry) {
        let decoded = codec::decode_request_id(&entry.context);
        let at = self
            .proposals
            .on_apply(entry.index, entry.term, decoded.map(|(_, id)| id));
        match entry.get_entry_type() {
            EntryType::EntryNormal => {
                let matched = at.matched;
                if !matches!(decoded, Some((RequestKind::Command, _))) {
                    // The new leader's empty entry (or a leave-joint marker): nothing to apply.
                    return;
                }
                let response =
                    self.state_machine
                        .lock()
                        .apply(entry.index, entry.term, &entry.data);
                if let Some(Pending {
                    reply: Reply::Command(tx),
                    ..
                }) = matched
                {
                    let _ = tx.send(Ok(Applied {
                        index: entry.index,
                        term: entry.term,
                        response,
                    }));
                }
            }
            EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => {
                self.conf.mark_stale();
                let applied = if entry.get_entry_type() == EntryType::EntryConfChange {
                    ConfChange::parse_from_bytes(&entry.data)
                        .map_err(raft::Error::from)
                        .and_then(|cc| self.node.apply_conf_change(&cc))
                } else {
                    ConfChangeV2::parse_from_bytes(&entry.data)
                        .map_err(raft::Error::from)
                        .and_then(|cc| self.node.apply_conf_change(&cc))
                };
                let result = match applied {
                    Ok(conf) => Ok(membership::membership_of(&conf)),
                    Err(err) => {
                        tracing::warn!(node = self.shared.id, index = entry.index, %err, "a committed membership change was refused");
                        Err(map_error(err, &self.view()))
                    }
                };
                match at.matched {
                    Some(Pending {
                        reply: Reply::Membership(tx),
                        ..
                    }) => {
                        let _ = tx.send(result);
                    }
                    Some(other) => other.reply.fail(Error::new(ErrorKind::Fatal)),
                    None => {}
                }
            }
        }
    }

    fn maybe_snapshot(&mut self) -> Result<()> {
        let requested = self.node.store().take_snapshot_request();
        let every = self.shared.config.snapshot_after_entries;
        let due = every > 0 && self.applied >= self.last_snapshot_index + every;
        if (requested || due) && self.applied > self.last_snapshot_index {
            self.build_snapshot()?;
        }
        Ok(())
    }

    /// Snapshots the state machine at the applied index, stores it and compacts the log.
    fn build_snapshot(&mut self) -> Result<SnapshotInfo> {
        let index = self.applied;
        let term = self.applied_term;
        if index > self.last_snapshot_index {
            let conf = self.node.raft.prs().conf().to_conf_state();
            let data = self.state_machine.lock().snapshot();
            self.node
                .mut_store()
                .save_local_snapshot(index, term, &conf, data)?;
            self.last_snapshot_index = index;
            tracing::debug!(
                node = self.shared.id,
                index,
                term,
                "built a snapshot and compacted the log"
            );
        }
        let term = self
            .node
            .raft
            .raft_log
            .term(self.last_snapshot_index)
            .unwrap_or(term);
        Ok(SnapshotInfo {
            last_index: self.last_snapshot_index,
            last_term: term,
        })
    }

    fn after_iteration(&mut self) {
        // The wake-up reading, as the iteration's messages carry: earlier than a fresh one,
        // so a self-proven lease anchors no later, and a loss is reported at most one
        // iteration later than it could be.
        let now = self.woke_at;
        let (role, term) = (self.node.raft.state, self.node.raft.term);
        let leading = role == StateRole::Leader;

        if let Some(led_term) = self.led
            && (!leading || term != led_term)
        {
            let cause = match &self.transfer {
                Some(t)
                    if self.node.raft.leader_id == t.target || self.node.raft.leader_id == 0 =>
                {
                    LossCause::Transferred
                }
                _ => LossCause::SteppedDown,
            };
            self.shared.tracker.lost(cause);
            let raft_log = &self.node.raft.raft_log;
            let committed = raft_log.committed;
            self.proposals
                .on_leadership_end(|i| raft_log.term(i).ok().filter(|t| *t != 0), committed);
            self.led = None;
        }
        if (role, term) != self.last_role_term {
            self.reads.on_leadership_change();
            self.last_role_term = (role, term);
        }
        if leading && self.led.is_none() {
            self.led = Some(term);
            self.leader_since = now;
            self.quorum_lost = false;
            self.shared.tracker.became_leader(term);
        }
        self.acks.set_leader_term(leading.then_some(term));
        let transferring = leading && self.node.raft.lead_transferee.is_some();
        if self.was_transferring && !transferring && leading {
            // The transfer was aborted: its forced election may still be running on the target,
            // which ignores vote refusal. Only acknowledgements of messages sent from now on
            // prove leadership again.
            self.acks.forget();
            self.leader_since = now;
        }
        self.was_transferring = transferring;

        let published = if leading {
            self.conf.refresh(self.node.raft.prs());
            let time = self
                .acks
                .quorum_time(self.conf.conf_state(), self.shared.id);
            // A single voter proves its own leadership; anchoring it at this iteration (not at
            // the reader's call) keeps the anchor at or before any later clock sample.
            let time = match time {
                QuorumTime::SelfOnly => QuorumTime::At(now),
                other => other,
            };
            let newest = match time {
                QuorumTime::At(t) => Some(t),
                QuorumTime::SelfOnly | QuorumTime::None => None,
            };
            let since = newest.map_or(self.leader_since, |t| t.max(self.leader_since));
            let limit = self.shared.ticks.election_timeout();
            if now.saturating_duration_since(since) > limit {
                if !self.quorum_lost {
                    self.quorum_lost = true;
                    tracing::info!(
                        node = self.shared.id,
                        term,
                        "no quorum acknowledgement for an election timeout; reporting leadership loss"
                    );
                    self.shared.tracker.lost(LossCause::QuorumLost);
                }
            } else if self.quorum_lost {
                // Acknowledgements resumed while raft-rs kept leading: re-arm the callbacks.
                self.quorum_lost = false;
                self.shared.tracker.became_leader(term);
            }
            // While a transfer runs, and for the rest of a term in which one started, no
            // acknowledgement proves anything for a lease: a late MsgTimeoutNow still forces an
            // election that bypasses the followers' vote refusal.
            (!transferring && self.transfer_term != Some(term))
                .then_some(PublishedAck { term, time })
        } else {
            None
        };
        *self.shared.ack.lock().unwrap_or_else(|p| p.into_inner()) = published;

        if let Some(t) = &self.transfer {
            let raft = &self.node.raft;
            let seen = Observed {
                is_leader: leading,
                term,
                leader_id: raft.leader_id,
                lead_transferee: raft.lead_transferee,
                now,
            };
            if let Some(result) = t.outcome(seen) {
                let t = self.transfer.take().expect("transfer exists");
                t.finish(&result);
            }
        }
    }

    fn publish(&mut self) {
        let raft = &self.node.raft;
        self.published_leader_term = (raft.state == StateRole::Leader).then_some(raft.term);
        self.conf.refresh(raft.prs());
        self.conf.adopt(&self.shared.status.borrow().membership);
        let membership = self.conf.membership();
        let role = match raft.state {
            StateRole::Leader => Role::Leader,
            StateRole::Candidate | StateRole::PreCandidate => Role::Candidate,
            StateRole::Follower if membership.voters.contains(&self.shared.id) => Role::Follower,
            StateRole::Follower => Role::Learner,
        };
        let status = Status {
            id: self.shared.id,
            role,
            term: raft.term,
            leader: (raft.leader_id != 0).then_some(raft.leader_id),
            commit_index: raft.raft_log.committed,
            applied_index: self.applied,
            applied_term: self.applied_term,
            last_log_index: raft.raft_log.last_index(),
            transferring_to: if raft.state == StateRole::Leader {
                raft.lead_transferee
            } else {
                None
            },
            transfers_started: self.transfers_started,
            transfer_term: self.transfer_term,
            membership: Arc::clone(membership),
        };
        self.shared.status.publish(status);
    }
}
