//! Talking to `hypd`.

use protocol::control::{read_frame, write_frame, FrameError, Request, Response};
use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `xl` waits for a reply by default (but to `Wait` and
/// `Console`, which last as long as the domain does).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to `hypd`.
pub struct Client {
    stream: UnixStream,
    path: PathBuf,
    reply_timeout: Duration,
}

impl Client {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> Result<Self, String> {
        UnixStream::connect(path)
            .map(|stream| Self {
                stream,
                path: path.to_path_buf(),
                reply_timeout: REPLY_TIMEOUT,
            })
            .map_err(|e| match e.kind() {
                ErrorKind::PermissionDenied => format!(
                    "cannot use hypd's socket {}: permission denied (it is owner-only: run xl as the user hypd runs as, usually root)",
                    path.display()
                ),
                _ => format!(
                    "cannot reach hypd at {}: {e} (start it with `hypd`, or pass --socket)",
                    path.display()
                ),
            })
    }

    /// The same connection, waiting `timeout` for replies.
    pub fn with_reply_timeout(self, timeout: Duration) -> Self {
        Self {
            reply_timeout: timeout,
            ..self
        }
    }

    /// Sends a request and returns the reply; an error reply becomes `Err`.
    /// Waits at most the reply timeout, unless the request is `Wait`.
    pub fn call(&mut self, request: Request) -> Result<Response, String> {
        let timeout = match request {
            Request::Wait(_) | Request::Console(_) => None,
            _ => Some(self.reply_timeout),
        };
        self.stream
            .set_read_timeout(timeout)
            .map_err(|e| format!("hypd at {}: {e}", self.path.display()))?;
        self.send(request)?;
        match self.receive()? {
            Response::Error(message) => Err(message),
            response => Ok(response),
        }
    }

    /// Sends a request without waiting for the reply.
    pub fn send(&mut self, request: Request) -> Result<(), String> {
        write_frame(&mut self.stream, request).map_err(|e| match e {
            e if hung_up(&e) => self.hung_up(),
            e => format!("hypd at {}: {e}", self.path.display()),
        })
    }

    /// What to say when the daemon went away mid-conversation.
    fn hung_up(&self) -> String {
        format!(
            "hypd at {} closed the connection before answering (did it stop? see its log)",
            self.path.display()
        )
    }

    /// Reads one reply.
    pub fn receive(&mut self) -> Result<Response, String> {
        read_frame(&mut self.stream).map_err(|e| match e {
            FrameError::Io(io) if hung_up(&io) => self.hung_up(),
            FrameError::Io(io)
                if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                format!(
                    "hypd at {} did not answer within {} s (xl --timeout sets how long to wait)",
                    self.path.display(),
                    self.reply_timeout.as_secs()
                )
            }
            e => format!("hypd at {}: {e}", self.path.display()),
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
