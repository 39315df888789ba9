//! Talking to `hypd`.

use protocol::control::{read_frame, write_frame, Request, Response};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// A connection to `hypd`.
pub struct Client {
    stream: UnixStream,
    path: PathBuf,
}

impl Client {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> Result<Self, String> {
        UnixStream::connect(path)
            .map(|stream| Self {
                stream,
                path: path.to_path_buf(),
            })
            .map_err(|e| {
                format!(
                    "cannot reach hypd at {}: {e} (start it with `hypd`, or pass --socket)",
                    path.display()
                )
            })
    }

    /// Sends a request and returns the reply; an error reply becomes `Err`.
    pub fn call(&mut self, request: Request) -> Result<Response, String> {
        self.send(request)?;
        match self.receive()? {
            Response::Error(message) => Err(message),
            response => Ok(response),
        }
    }

    /// Sends a request without waiting for the reply.
    pub fn send(&mut self, request: Request) -> Result<(), String> {
        write_frame(&mut self.stream, request)
            .map_err(|e| format!("hypd at {}: {e}", self.path.display()))
    }

    /// Reads one reply.
    pub fn receive(&mut self) -> Result<Response, String> {
        read_frame(&mut self.stream).map_err(|e| format!("hypd at {}: {e}", self.path.display()))
    }

    /// The underlying stream (to shut it down from another thread).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}

/// True if a daemon answers at `path`.
pub fn daemon_running(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}
