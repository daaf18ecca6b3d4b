//! One Redis client connection: authentication, MULTI/EXEC state, WATCH, and turning data
//! commands into reads and single atomic writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use kv_lease::kv::{KvCommand, KvResponse, MAX_TXN_ITEMS};
use raftengine::Role;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::codec::Framed;

use super::exec::{DataCommand, Plan, Reply, SetCondition, plan};
use super::node::{ErrorKindLabel, Node, NodeError, read_versioned, write};
use super::resp::{self, BoundedResp2, InfoSection, Request, WireError};

/// How many times a command whose read set changed under it is retried before `-TRYAGAIN`.
const MAX_ATTEMPTS: usize = 64;
/// Bound on writing one reply to a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Shared state of the Redis front end.
#[derive(Debug)]
pub struct Front {
    /// The node commands run on.
    pub node: Arc<Node>,
    /// `requirepass`; `None` means every client is authenticated.
    pub password: Option<Bytes>,
    /// Largest request one client may send.
    pub max_request_bytes: usize,
    /// The backend name, for INFO.
    pub backend: &'static str,
    /// Connected clients now.
    pub clients: AtomicUsize,
    next_client_id: AtomicU64,
}

impl Front {
    /// A front end over `node`.
    pub fn new(
        node: Arc<Node>,
        password: Option<Bytes>,
        max_request_bytes: usize,
        backend: &'static str,
    ) -> Self {
        Self {
            node,
            password,
            max_request_bytes,
            backend,
            clients: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
        }
    }
}

/// Serves one client until it quits, breaks the protocol, or the server shuts down.
pub async fn serve_client(
    front: Arc<Front>,
    stream: TcpStream,
    mut shutdown: watch::Receiver<bool>,
) {
    front.clients.fetch_add(1, Ordering::Relaxed);
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, BoundedResp2::new(front.max_request_bytes));
    let mut session = Session {
        id: front.next_client_id.fetch_add(1, Ordering::Relaxed),
        authenticated: front.password.is_none(),
        name: None,
        watched: BTreeMap::new(),
        queued: None,
        dirty: false,
    };
    loop {
        let next = tokio::select! {
            next = framed.next() => next,
            _ = shutdown.changed() => break,
        };
        let frame = match next {
            None | Some(Err(WireError::Io(_))) => break,
            Some(Err(error)) => {
                // The stream cannot be resynchronised after a framing error: answer, then close.
                front.node.counters().error(ErrorKindLabel::Client);
                let reply = resp::frame(Reply::Error(error.to_string()));
                let _ = tokio::time::timeout(WRITE_TIMEOUT, framed.send(reply)).await;
                break;
            }
            Some(Ok(frame)) => frame,
        };
        let started = Instant::now();
        let (reply, name, close) = match resp::arguments(frame).and_then(resp::parse) {
            Ok(request) => {
                let name = request.name();
                let (reply, close) = session.handle(&front, request).await;
                (reply, name, close)
            }
            Err(reply) => {
                front.node.counters().error(ErrorKindLabel::Client);
                if session.queued.is_some() {
                    session.dirty = true;
                }
                (reply, "invalid", false)
            }
        };
        metrics::histogram!("raftkv_request_seconds", "command" => name)
            .record(started.elapsed().as_secs_f64());
        match tokio::time::timeout(WRITE_TIMEOUT, framed.send(resp::frame(reply))).await {
            Ok(Ok(())) => {}
            _ => break,
        }
        if close {
            break;
        }
    }
    front.clients.fetch_sub(1, Ordering::Relaxed);
}

struct Session {
    id: u64,
    authenticated: bool,
    name: Option<Bytes>,
    /// Watched keys and the version each had when it was watched: EXEC aborts if any was
    /// modified since, even if set back to the same value.
    watched: BTreeMap<Bytes, u64>,
    /// Commands queued since MULTI.
    queued: Option<Vec<DataCommand>>,
    /// A command queued since MULTI was invalid: EXEC answers EXECABORT.
    dirty: bool,
}

fn node_error(front: &Front, error: NodeError) -> Reply {
    front.node.counters().error(error.kind());
    match error {
        NodeError::TryAgain => {
            Reply::Error("TRYAGAIN no leader answered before the request deadline".into())
        }
        NodeError::Unknown(message) => Reply::err(format!(
            "write outcome unknown (it may have been applied): {message}"
        )),
        NodeError::Failed(message) => Reply::err(message),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Session {
    async fn handle(&mut self, front: &Front, request: Request) -> (Reply, bool) {
        if !self.authenticated && !matches!(request, Request::Auth { .. } | Request::Quit) {
            front.node.counters().error(ErrorKindLabel::Auth);
            return (
                Reply::Error("NOAUTH Authentication required.".into()),
                false,
            );
        }
        if let Some(queued) = &mut self.queued {
            return match request {
                Request::Data(command) => {
                    queued.push(command);
                    (Reply::Status("QUEUED"), false)
                }
                Request::Exec => (self.exec(front).await, false),
                Request::Discard => {
                    self.queued = None;
                    self.dirty = false;
                    self.watched.clear();
                    (Reply::Ok, false)
                }
                Request::Quit => (Reply::Ok, true),
                Request::Multi => (Reply::err("MULTI calls can not be nested"), false),
                Request::Watch(_) => (Reply::err("WATCH inside MULTI is not allowed"), false),
                other => {
                    self.dirty = true;
                    front.node.counters().error(ErrorKindLabel::Client);
                    (
                        Reply::err(format!("'{}' is not allowed inside MULTI", other.name())),
                        false,
                    )
                }
            };
        }
        let reply = match request {
            Request::Data(command) => {
                match execute(&front.node, &[command], &BTreeMap::new()).await {
                    Ok(Some(mut replies)) if replies.len() == 1 => replies.remove(0),
                    Ok(_) => Reply::err("internal error: no reply"),
                    Err(error) => node_error(front, error),
                }
            }
            Request::Auth { user, password } => self.auth(front, user, password),
            Request::Watch(keys) => self.watch(front, keys).await,
            Request::Unwatch => {
                self.watched.clear();
                Reply::Ok
            }
            Request::Multi => {
                self.queued = Some(Vec::new());
                self.dirty = false;
                Reply::Ok
            }
            Request::Exec => Reply::err("EXEC without MULTI"),
            Request::Discard => Reply::err("DISCARD without MULTI"),
            Request::Info(section) => Reply::Bulk(Some(Bytes::from(info(front, &section)))),
            Request::ClientSetName(name) => {
                self.name = Some(name).filter(|name| !name.is_empty());
                Reply::Ok
            }
            Request::ClientGetName => Reply::Bulk(self.name.clone()),
            Request::ClientId => Reply::Integer(i64::try_from(self.id).unwrap_or(i64::MAX)),
            Request::ClientNoop => Reply::Ok,
            Request::Select(db) if &db[..] == b"0" => Reply::Ok,
            Request::Select(_) => Reply::err("DB index is out of range"),
            Request::CommandDocs => Reply::Array(Vec::new()),
            Request::Quit => return (Reply::Ok, true),
        };
        (reply, false)
    }

    fn auth(&mut self, front: &Front, user: Option<Bytes>, password: Bytes) -> Reply {
        let Some(expected) = &front.password else {
            front.node.counters().error(ErrorKindLabel::Auth);
            return Reply::err(
                "AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            );
        };
        let user_ok = user.as_ref().is_none_or(|user| &user[..] == b"default");
        if user_ok && constant_time_eq(expected, &password) {
            self.authenticated = true;
            Reply::Ok
        } else {
            front.node.counters().error(ErrorKindLabel::Auth);
            Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
        }
    }

    async fn watch(&mut self, front: &Front, keys: Vec<Bytes>) -> Reply {
        let fresh: Vec<Bytes> = keys
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|key| !self.watched.contains_key(key))
            .collect();
        if self.watched.len() + fresh.len() > MAX_TXN_ITEMS {
            return Reply::err(format!("at most {MAX_TXN_ITEMS} keys can be watched"));
        }
        if fresh.is_empty() {
            return Reply::Ok;
        }
        match read_versioned(&front.node, fresh.clone(), front.node.deadline()).await {
            Ok(values) => {
                let versions = values.into_iter().map(|(_, version)| version);
                self.watched.extend(fresh.into_iter().zip(versions));
                Reply::Ok
            }
            Err(error) => node_error(front, error),
        }
    }

    async fn exec(&mut self, front: &Front) -> Reply {
        let commands = self.queued.take().unwrap_or_default();
        let watched = std::mem::take(&mut self.watched);
        if std::mem::take(&mut self.dirty) {
            return Reply::Error(
                "EXECABORT Transaction discarded because of previous errors.".into(),
            );
        }
        match execute(&front.node, &commands, &watched).await {
            Ok(Some(replies)) => {
                front.node.counters().exec(true);
                Reply::Array(replies)
            }
            Ok(None) => {
                front.node.counters().exec(false);
                Reply::NilArray
            }
            Err(error) => node_error(front, error),
        }
    }
}

/// Runs `commands` atomically: reads the value and version of what they depend on, computes
/// their replies and writes, and commits the writes as one log entry conditioned on the
/// versions of everything read and on the watched keys still having their watched versions.
/// `Ok(None)`: a watched key was modified since WATCH (EXEC nil).
///
/// An absent watched key may abort spuriously when the store pruned old tombstones in between
/// (see [`kv_lease::kv::KvStateMachine::version`]); a modification is never missed.
pub async fn execute(
    node: &Node,
    commands: &[DataCommand],
    watched: &BTreeMap<Bytes, u64>,
) -> Result<Option<Vec<Reply>>, NodeError> {
    let deadline = node.deadline();
    // The common single commands skip the general path: a blind SET is one Put.
    if let (
        [
            DataCommand::Set {
                key,
                value,
                condition: SetCondition::Always,
            },
        ],
        true,
    ) = (commands, watched.is_empty())
    {
        let command = KvCommand::Put {
            key: key.clone(),
            value: value.clone(),
        };
        return match write(node, command, deadline).await? {
            KvResponse::Done { .. } => Ok(Some(vec![Reply::Ok])),
            other => Err(NodeError::Failed(format!("unexpected answer: {other:?}"))),
        };
    }
    let mut read = BTreeSet::new();
    for command in commands {
        command.read_keys(&mut read);
    }
    read.extend(watched.keys().cloned());
    let keys: Vec<Bytes> = read.into_iter().collect();
    for _ in 0..MAX_ATTEMPTS {
        let values = if keys.is_empty() {
            Vec::new()
        } else {
            read_versioned(node, keys.clone(), deadline).await?
        };
        let read: BTreeMap<Bytes, (Option<Bytes>, u64)> =
            keys.iter().cloned().zip(values).collect();
        let (command, replies) = match plan(commands, watched, &read).map_err(NodeError::Failed)? {
            Plan::Aborted => return Ok(None),
            Plan::Read(replies) => return Ok(Some(replies)),
            Plan::Write { command, replies } => (command, replies),
        };
        match write(node, command, deadline).await? {
            KvResponse::Committed | KvResponse::Done { .. } => return Ok(Some(replies)),
            KvResponse::Conflict { key, .. } if watched.contains_key(&key) => return Ok(None),
            // A key read (not watched) changed between the read and the commit: do it again.
            KvResponse::Conflict { .. } => continue,
            other => return Err(NodeError::Failed(format!("unexpected answer: {other:?}"))),
        }
    }
    Err(NodeError::TryAgain)
}

/// The INFO text (`# Section` headers, `name:value` lines, CRLF line ends).
pub fn info(front: &Front, section: &InfoSection) -> String {
    let node = &front.node;
    let status = node.engine().status();
    let lease = node.kv().lease();
    let stats = lease.stats();
    let counters = node.counters().snapshot();
    let role = match status.role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Learner => "learner",
        Role::Shutdown => "shutdown",
    };
    let lease_state = match lease.check() {
        Ok(()) => "valid".to_owned(),
        Err(reason) => reason.label().to_owned(),
    };
    let mut sections: Vec<(&str, Vec<(String, String)>)> = Vec::new();
    let kv = |name: &str, value: String| (name.to_owned(), value);
    sections.push((
        "server",
        vec![
            kv("raftkv_version", env!("CARGO_PKG_VERSION").into()),
            kv("node_id", node.id().to_string()),
            kv("backend", front.backend.into()),
            kv(
                "fault_invalidate_lease_on_error",
                u8::from(node.fault_injection()).to_string(),
            ),
        ],
    ));
    sections.push((
        "clients",
        vec![kv(
            "connected_clients",
            front.clients.load(Ordering::Relaxed).to_string(),
        )],
    ));
    sections.push((
        "replication",
        vec![
            kv(
                "role",
                if status.role == Role::Leader {
                    "master"
                } else {
                    "slave"
                }
                .into(),
            ),
            kv("raft_role", role.into()),
            kv("raft_term", status.term.to_string()),
            kv(
                "raft_leader",
                status.leader.map_or("none".into(), |id| id.to_string()),
            ),
            kv("raft_commit_index", status.commit_index.to_string()),
            kv("raft_applied_index", status.applied_index.to_string()),
        ],
    ));
    let mut lease_lines = vec![
        kv("lease_state", lease_state),
        kv(
            "lease_duration_ms",
            lease.duration().as_millis().to_string(),
        ),
        kv("lease_hits", stats.hits.to_string()),
        kv("lease_misses", stats.misses().to_string()),
        kv("lease_hit_rate", format!("{:.6}", stats.hit_rate())),
        kv("lease_invalidations", stats.invalidations().to_string()),
        kv("lease_quorum_rounds", stats.slow_rounds.to_string()),
        kv("reads_fast", counters.reads_fast.to_string()),
        kv("reads_slow", counters.reads_slow.to_string()),
        kv("reads_forwarded", counters.reads_forwarded.to_string()),
        kv("writes_local", counters.writes_local.to_string()),
        kv("writes_forwarded", counters.writes_forwarded.to_string()),
        kv("exec_committed", counters.exec_committed.to_string()),
        kv("exec_aborted", counters.exec_aborted.to_string()),
    ];
    for reason in kv_lease::MissReason::ALL {
        lease_lines.push(kv(
            &format!("lease_misses_{}", reason.label()),
            stats.misses_for(reason).to_string(),
        ));
    }
    sections.push(("lease", lease_lines));
    sections.push((
        "errorstats",
        ErrorKindLabel::ALL
            .iter()
            .zip(counters.errors)
            .map(|(kind, count)| kv(&format!("errors_{}", kind.label()), count.to_string()))
            .collect(),
    ));
    let mut out = String::new();
    for (name, lines) in sections {
        if let InfoSection::Named(wanted) = section
            && wanted != name
        {
            continue;
        }
        let mut title = name.to_owned();
        if let Some(first) = title.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        out.push_str(&format!("# {title}\r\n"));
        for (key, value) in lines {
            out.push_str(&format!("{key}:{value}\r\n"));
        }
        out.push_str("\r\n");
    }
    out
}
