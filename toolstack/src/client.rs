//! Talking to `hypd`.

use protocol::control::{read_frame, write_frame, FrameError, Request, Response};
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `xl` waits for a reply by default (but to `Wait` and
/// `Console`, which last as long as the domain does).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a conversation with `hypd` failed.
#[derive(Debug)]
pub enum ClientError {
    /// The socket is owner-only and this user may not use it.
    PermissionDenied {
        /// The daemon's socket.
        socket: PathBuf,
    },
    /// No daemon answers at the socket.
    Unreachable {
        /// The daemon's socket.
        socket: PathBuf,
        /// What connecting said.
        error: std::io::Error,
    },
    /// The daemon closed the connection before answering.
    HungUp {
        /// The daemon's socket.
        socket: PathBuf,
    },
    /// No reply within the reply timeout.
    TimedOut {
        /// The daemon's socket.
        socket: PathBuf,
        /// The timeout, in seconds.
        secs: u64,
    },
    /// The connection failed otherwise.
    Io {
        /// The daemon's socket.
        socket: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// A reply could not be read (too large, malformed, another version).
    Frame {
        /// The daemon's socket.
        socket: PathBuf,
        /// What was wrong with it.
        error: FrameError,
    },
    /// The daemon refused the request, saying why ([`Response::Error`]).
    Refused(String),
    /// A reply the request does not call for.
    UnexpectedReply(Box<Response>),
}

impl ClientError {
    /// The error for `reply`, which the request does not call for (a
    /// refusal stays a refusal).
    pub fn unexpected(reply: Response) -> Self {
        match reply {
            Response::Error(message) => Self::Refused(message),
            other => Self::UnexpectedReply(Box::new(other)),
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PermissionDenied { socket } => write!(
                f,
                "cannot use hypd's socket {}: permission denied (it is owner-only: run xl as the user hypd runs as, usually root)",
                socket.display()
            ),
            Self::Unreachable { socket, error } => write!(
                f,
                "cannot reach hypd at {}: {error} (start it with `hypd`, or pass --socket)",
                socket.display()
            ),
            Self::HungUp { socket } => write!(
                f,
                "hypd at {} closed the connection before answering (did it stop? see its log)",
                socket.display()
            ),
            Self::TimedOut { socket, secs } => write!(
                f,
                "hypd at {} did not answer within {secs} s (xl --timeout sets how long to wait)",
                socket.display()
            ),
            Self::Io { socket, error } => write!(f, "hypd at {}: {error}", socket.display()),
            Self::Frame { socket, error } => write!(f, "hypd at {}: {error}", socket.display()),
            Self::Refused(message) => f.write_str(message),
            Self::UnexpectedReply(reply) => write!(f, "unexpected reply from hypd: {reply:?}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A connection to `hypd`.
pub struct Client {
    stream: UnixStream,
    path: PathBuf,
    reply_timeout: Duration,
}

impl Client {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> Result<Self, ClientError> {
        let socket = path.to_path_buf();
        match UnixStream::connect(path) {
            Ok(stream) => Ok(Self {
                stream,
                path: socket,
                reply_timeout: REPLY_TIMEOUT,
            }),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                Err(ClientError::PermissionDenied { socket })
            }
            Err(error) => Err(ClientError::Unreachable { socket, error }),
        }
    }

    /// The same connection, waiting `timeout` for replies.
    pub fn with_reply_timeout(self, timeout: Duration) -> Self {
        Self {
            reply_timeout: timeout,
            ..self
        }
    }

    /// Sends a request and returns the reply; an error reply becomes
    /// [`ClientError::Refused`]. Waits at most the reply timeout, unless
    /// the request is `Wait` or `Console`.
    pub fn call(&mut self, request: Request) -> Result<Response, ClientError> {
        let timeout = match request {
            Request::Wait(_) | Request::Console(_) => None,
            _ => Some(self.reply_timeout),
        };
        self.stream
            .set_read_timeout(timeout)
            .map_err(|error| self.io(error))?;
        self.send(request)?;
        match self.receive()? {
            Response::Error(message) => Err(ClientError::Refused(message)),
            response => Ok(response),
        }
    }

    /// Sends a request without waiting for the reply.
    pub fn send(&mut self, request: Request) -> Result<(), ClientError> {
        write_frame(&mut self.stream, request).map_err(|e| match e {
            e if hung_up(&e) => self.hung_up(),
            error => self.io(error),
        })
    }

    /// What to say when the daemon went away mid-conversation.
    fn hung_up(&self) -> ClientError {
        ClientError::HungUp {
            socket: self.path.clone(),
        }
    }

    /// An I/O error on this connection.
    pub fn io(&self, error: std::io::Error) -> ClientError {
        ClientError::Io {
            socket: self.path.clone(),
            error,
        }
    }

    /// Reads one reply.
    pub fn receive(&mut self) -> Result<Response, ClientError> {
        read_frame(&mut self.stream).map_err(|e| match e {
            FrameError::Io(io) if hung_up(&io) => self.hung_up(),
            FrameError::Io(io)
                if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                ClientError::TimedOut {
                    socket: self.path.clone(),
                    secs: self.reply_timeout.as_secs(),
                }
            }
            error => ClientError::Frame {
                socket: self.path.clone(),
                error,
            },
        })
    }

    /// The underlying stream (to shut it down from another thread).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}

/// True if `e` says the other end hung up.
fn hung_up(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
    )
}

/// True if a daemon answers at `path`.
pub fn daemon_running(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}
