//! RESP2 on the wire: frames come from `redis-protocol`'s codec (wrapped to bound a request's
//! size), and are turned into typed requests here; replies go back as frames.

use bytes::{Bytes, BytesMut};
use redis_protocol::codec::Resp2;
use redis_protocol::error::RedisProtocolError;
use redis_protocol::resp2::types::BytesFrame;
use tokio_util::codec::{Decoder, Encoder};

use super::exec::{DataCommand, Reply, SetCondition};

/// Why the connection's byte stream cannot go on; answered with an error reply, then closed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A request grew beyond the configured maximum.
    #[error("ERR Protocol error: request larger than {0} bytes")]
    TooLarge(usize),
    /// The bytes are not RESP2.
    #[error("ERR Protocol error: {0}")]
    Malformed(String),
    /// The socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<RedisProtocolError> for WireError {
    fn from(error: RedisProtocolError) -> Self {
        match error.kind() {
            redis_protocol::error::RedisProtocolErrorKind::IO(_) => {
                Self::Io(std::io::Error::other(error.details().to_owned()))
            }
            _ => Self::Malformed(error.details().to_owned()),
        }
    }
}

/// `redis-protocol`'s RESP2 codec with a bound on how many bytes one request may buffer, so a
/// client cannot make the server hold an unbounded partial frame.
#[derive(Debug, Clone)]
pub struct BoundedResp2 {
    inner: Resp2,
    max_request_bytes: usize,
}

impl BoundedResp2 {
    /// A codec refusing requests longer than `max_request_bytes`.
    pub fn new(max_request_bytes: usize) -> Self {
        Self {
            inner: Resp2::default(),
            max_request_bytes,
        }
    }
}

impl Decoder for BoundedResp2 {
    type Item = BytesFrame;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesFrame>, WireError> {
        match self.inner.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            // Incomplete: what is buffered belongs to one unfinished request.
            None if src.len() > self.max_request_bytes => {
                Err(WireError::TooLarge(self.max_request_bytes))
            }
            None => {
                // Reserve no more than the limit allows, whatever length the frame announces.
                Ok(None)
            }
        }
    }
}

impl Encoder<BytesFrame> for BoundedResp2 {
    type Error = WireError;

    fn encode(&mut self, item: BytesFrame, dst: &mut BytesMut) -> Result<(), WireError> {
        self.inner.encode(item, dst).map_err(WireError::from)
    }
}

/// Converts a reply into a frame.
pub fn frame(reply: Reply) -> BytesFrame {
    match reply {
        Reply::Ok => BytesFrame::SimpleString(Bytes::from_static(b"OK")),
        Reply::Status(text) => BytesFrame::SimpleString(Bytes::from_static(text.as_bytes())),
        Reply::Bulk(Some(value)) => BytesFrame::BulkString(value),
        Reply::Bulk(None) | Reply::NilArray => BytesFrame::Null,
        Reply::Integer(n) => BytesFrame::Integer(n),
        Reply::Array(items) => BytesFrame::Array(items.into_iter().map(frame).collect()),
        // RESP2 error lines end at CR/LF: keep a message from breaking the stream.
        Reply::Error(text) => BytesFrame::Error(text.replace(['\r', '\n'], " ").into()),
    }
}

/// `INFO [section]`: which sections to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoSection {
    /// Every section.
    All,
    /// Only the named one (lowercase).
    Named(String),
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A command that reads or writes keys (or PING/ECHO); may be queued in MULTI.
    Data(DataCommand),
    /// `AUTH [user] password`.
    Auth {
        /// The user (`default` when absent).
        user: Option<Bytes>,
        /// The password.
        password: Bytes,
    },
    /// `WATCH key...`.
    Watch(Vec<Bytes>),
    /// `UNWATCH`.
    Unwatch,
    /// `MULTI`.
    Multi,
    /// `EXEC`.
    Exec,
    /// `DISCARD`.
    Discard,
    /// `INFO [section]`.
    Info(InfoSection),
    /// `CLIENT SETNAME name`.
    ClientSetName(Bytes),
    /// `CLIENT GETNAME`.
    ClientGetName,
    /// `CLIENT SETINFO ...` and other harmless client bookkeeping answered with +OK.
    ClientNoop,
    /// `CLIENT ID`.
    ClientId,
    /// `SELECT db` (only 0 exists).
    Select(Bytes),
    /// `COMMAND ...` (redis-cli asks on start; answered with an empty list).
    CommandDocs,
    /// `QUIT`.
    Quit,
}

impl Request {
    /// The metric label of the request.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Data(command) => command.name(),
            Self::Auth { .. } => "auth",
            Self::Watch(_) => "watch",
            Self::Unwatch => "unwatch",
            Self::Multi => "multi",
            Self::Exec => "exec",
            Self::Discard => "discard",
            Self::Info(_) => "info",
            Self::ClientSetName(_) | Self::ClientGetName | Self::ClientNoop | Self::ClientId => {
                "client"
            }
            Self::Select(_) => "select",
            Self::CommandDocs => "command",
            Self::Quit => "quit",
        }
    }
}

/// Extracts the arguments of a command frame: an array of bulk (or simple) strings.
pub fn arguments(frame: BytesFrame) -> Result<Vec<Bytes>, Reply> {
    let BytesFrame::Array(items) = frame else {
        return Err(Reply::err(
            "Protocol error: expected an array of bulk strings",
        ));
    };
    items
        .into_iter()
        .map(|item| match item {
            BytesFrame::BulkString(bytes) | BytesFrame::SimpleString(bytes) => Ok(bytes),
            BytesFrame::Integer(n) => Ok(Bytes::from(n.to_string())),
            _ => Err(Reply::err(
                "Protocol error: expected an array of bulk strings",
            )),
        })
        .collect()
}

fn wrong_arity(name: &str) -> Reply {
    Reply::err(format!("wrong number of arguments for '{name}' command"))
}

fn parse_i64(value: &[u8]) -> Result<i64, Reply> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| Reply::err("value is not an integer or out of range"))
}

/// Parses one command. Errors are the replies to send (unknown command, wrong arity, syntax).
pub fn parse(args: Vec<Bytes>) -> Result<Request, Reply> {
    let Some((name, rest)) = args.split_first() else {
        return Err(Reply::err("Protocol error: empty command"));
    };
    let upper = String::from_utf8_lossy(name).to_ascii_uppercase();
    let lower = upper.to_ascii_lowercase();
    let n = rest.len();
    let arity = |ok: bool| if ok { Ok(()) } else { Err(wrong_arity(&lower)) };
    let data = |command: DataCommand| Ok(Request::Data(command));
    match upper.as_str() {
        "PING" => {
            arity(n <= 1)?;
            data(DataCommand::Ping(rest.first().cloned()))
        }
        "ECHO" => {
            arity(n == 1)?;
            data(DataCommand::Echo(rest[0].clone()))
        }
        "GET" => {
            arity(n == 1)?;
            data(DataCommand::Get(rest[0].clone()))
        }
        "MGET" => {
            arity(n >= 1)?;
            data(DataCommand::MGet(rest.to_vec()))
        }
        "EXISTS" => {
            arity(n >= 1)?;
            data(DataCommand::Exists(rest.to_vec()))
        }
        "DEL" => {
            arity(n >= 1)?;
            data(DataCommand::Del(rest.to_vec()))
        }
        "SET" => {
            arity(n >= 2)?;
            let mut condition = SetCondition::Always;
            for option in &rest[2..] {
                match String::from_utf8_lossy(option)
                    .to_ascii_uppercase()
                    .as_str()
                {
                    "NX" if condition != SetCondition::IfPresent => {
                        condition = SetCondition::IfAbsent;
                    }
                    "XX" if condition != SetCondition::IfAbsent => {
                        condition = SetCondition::IfPresent;
                    }
                    "EX" | "PX" | "EXAT" | "PXAT" | "KEEPTTL" => {
                        return Err(Reply::err(
                            "expiry (EX, PX, EXAT, PXAT, KEEPTTL) is not supported: raftkv keys do not expire",
                        ));
                    }
                    _ => return Err(Reply::err("syntax error")),
                }
            }
            data(DataCommand::Set {
                key: rest[0].clone(),
                value: rest[1].clone(),
                condition,
            })
        }
        "MSET" => {
            arity(n >= 2 && n % 2 == 0)?;
            data(DataCommand::MSet(
                rest.chunks_exact(2)
                    .map(|pair| (pair[0].clone(), pair[1].clone()))
                    .collect(),
            ))
        }
        "INCR" | "DECR" => {
            arity(n == 1)?;
            data(DataCommand::IncrBy {
                key: rest[0].clone(),
                delta: if upper == "INCR" { 1 } else { -1 },
            })
        }
        "INCRBY" | "DECRBY" => {
            arity(n == 2)?;
            let by = parse_i64(&rest[1])?;
            let delta = if upper == "INCRBY" {
                Some(by)
            } else {
                by.checked_neg()
            };
            let delta = delta.ok_or_else(|| Reply::err("decrement would overflow"))?;
            data(DataCommand::IncrBy {
                key: rest[0].clone(),
                delta,
            })
        }
        "AUTH" => match rest {
            [password] => Ok(Request::Auth {
                user: None,
                password: password.clone(),
            }),
            [user, password] => Ok(Request::Auth {
                user: Some(user.clone()),
                password: password.clone(),
            }),
            _ => Err(wrong_arity(&lower)),
        },
        "WATCH" => {
            arity(n >= 1)?;
            Ok(Request::Watch(rest.to_vec()))
        }
        "UNWATCH" => arity(n == 0).map(|()| Request::Unwatch),
        "MULTI" => arity(n == 0).map(|()| Request::Multi),
        "EXEC" => arity(n == 0).map(|()| Request::Exec),
        "DISCARD" => arity(n == 0).map(|()| Request::Discard),
        "QUIT" => Ok(Request::Quit),
        "INFO" => {
            arity(n <= 1)?;
            Ok(Request::Info(match rest.first() {
                None => InfoSection::All,
                Some(section) => {
                    let section = String::from_utf8_lossy(section).to_ascii_lowercase();
                    if section == "all" || section == "everything" || section == "default" {
                        InfoSection::All
                    } else {
                        InfoSection::Named(section)
                    }
                }
            }))
        }
        "SELECT" => {
            arity(n == 1)?;
            Ok(Request::Select(rest[0].clone()))
        }
        "COMMAND" => Ok(Request::CommandDocs),
        "CLIENT" => {
            let Some(sub) = rest.first() else {
                return Err(wrong_arity(&lower));
            };
            match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
                "SETNAME" if n == 2 => {
                    if rest[1].iter().any(|b| *b <= b' ' || *b > b'~') {
                        return Err(Reply::err(
                            "Client names cannot contain spaces, newlines or special characters.",
                        ));
                    }
                    Ok(Request::ClientSetName(rest[1].clone()))
                }
                "GETNAME" if n == 1 => Ok(Request::ClientGetName),
                "ID" if n == 1 => Ok(Request::ClientId),
                "SETINFO" if n == 3 => Ok(Request::ClientNoop),
                "SETNAME" | "GETNAME" | "ID" | "SETINFO" => Err(Reply::err(format!(
                    "wrong number of arguments for 'client|{}' command",
                    String::from_utf8_lossy(sub).to_ascii_lowercase()
                ))),
                _ => Err(Reply::err(format!(
                    "unknown subcommand '{}'. Try CLIENT HELP.",
                    String::from_utf8_lossy(sub)
                ))),
            }
        }
        _ => {
            let preview: Vec<String> = rest
                .iter()
                .take(3)
                .map(|arg| format!("'{}'", String::from_utf8_lossy(&arg[..arg.len().min(64)])))
                .collect();
            Err(Reply::err(format!(
                "unknown command '{}', with args beginning with: {}",
                String::from_utf8_lossy(&name[..name.len().min(64)]),
                preview.join(" ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn error_of(line: &str) -> String {
        match parse(args(line)) {
            Err(Reply::Error(text)) => text,
            other => panic!("expected an error for {line:?}, got {other:?}"),
        }
    }

    #[test]
    fn commands_parse_case_insensitively() {
        assert_eq!(
            parse(args("set k v nx")).unwrap(),
            Request::Data(DataCommand::Set {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
                condition: SetCondition::IfAbsent,
            })
        );
        assert_eq!(
            parse(args("DecrBy k 5")).unwrap(),
            Request::Data(DataCommand::IncrBy {
                key: Bytes::from_static(b"k"),
                delta: -5
            })
        );
        assert_eq!(parse(args("multi")).unwrap(), Request::Multi);
        assert_eq!(
            parse(args("auth secret")).unwrap(),
            Request::Auth {
                user: None,
                password: Bytes::from_static(b"secret")
            }
        );
    }

    #[test]
    fn bad_requests_get_redis_errors() {
        assert!(error_of("GET").contains("wrong number of arguments for 'get'"));
        assert!(error_of("MSET a").contains("wrong number of arguments"));
        assert!(error_of("FLUSHALL now").starts_with("ERR unknown command 'FLUSHALL'"));
        assert!(error_of("SET k v EX 10").contains("expiry"));
        assert!(error_of("SET k v NX XX").contains("syntax error"));
        assert!(error_of("INCRBY k ten").contains("not an integer"));
        assert!(error_of("CLIENT SETNAME").contains("wrong number"));
        assert!(error_of("CLIENT KILL x").contains("unknown subcommand"));
    }

    #[test]
    fn oversized_requests_are_refused_before_buffering_more() {
        let mut codec = BoundedResp2::new(64);
        let mut buffer = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1000\r\n"[..]);
        assert!(codec.decode(&mut buffer).unwrap().is_none(), "still small");
        buffer.extend_from_slice(&[b'x'; 100]);
        assert!(matches!(
            codec.decode(&mut buffer),
            Err(WireError::TooLarge(64))
        ));
        let mut garbage = BytesMut::from(&b"*x\r\n"[..]);
        assert!(matches!(
            BoundedResp2::new(64).decode(&mut garbage),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn frames_round_trip_through_the_codec() {
        let mut codec = BoundedResp2::new(1 << 20);
        let mut out = BytesMut::new();
        codec
            .encode(
                frame(Reply::Array(vec![
                    Reply::Ok,
                    Reply::Bulk(None),
                    Reply::Integer(3),
                    Reply::Error("ERR bad\r\nline".into()),
                ])),
                &mut out,
            )
            .unwrap();
        assert_eq!(&out[..], b"*4\r\n+OK\r\n$-1\r\n:3\r\n-ERR bad  line\r\n");
    }
}
