//! The control socket's server side: accepting clients, and serving each
//! on a thread of its own, within limits no client can stretch.
//!
//! * at most [`MAX_CLIENTS`] at once: the next is told so and let go;
//! * a client silent for [`IDLE_TIMEOUT`] between requests is let go, and
//!   a request must arrive whole within [`FRAME_TIMEOUT`] of its first
//!   byte (its body is read as it comes, never allocated up front);
//! * a reply must be taken within [`WRITE_TIMEOUT`];
//! * out of file descriptors, the accept loop backs off instead of
//!   spinning.

use super::daemon::Daemon;
use super::handlers;
use hyp::LogLimit;
use protocol::control::{read_frame, write_frame, FrameError, Request, Response};
use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Clients served at once.
pub const MAX_CLIENTS: usize = 64;
/// How long a client may stay silent between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take to arrive, from its first byte.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to read a reply (or a console's output).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the accept loop rests when the daemon is out of descriptors.
const BACKOFF: Duration = Duration::from_millis(100);

/// Accepts clients until the listener fails for good.
pub fn accept(listener: &UnixListener, daemon: &Arc<Daemon>) {
    let clients = Arc::new(AtomicUsize::new(0));
    let limit = LogLimit::default();
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                if let Some(admitted) = limit.admit() {
                    tracing::warn!("accepting a client: {e}; backing off{admitted}");
                }
                std::thread::sleep(BACKOFF);
                continue;
            }
        };
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        if clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
            clients.fetch_sub(1, Ordering::AcqRel);
            let busy = format!("hypd is serving {MAX_CLIENTS} clients already; try again");
            let _ = write_frame(&mut stream, Response::Error(busy));
            continue;
        }
        let (daemon, clients) = (Arc::clone(daemon), Arc::clone(&clients));
        let spawned = std::thread::Builder::new()
            .name("client".into())
            .spawn(move || {
                serve_client(&daemon, stream);
                clients.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            // The closure, its stream and its slot went with the error.
            tracing::warn!("no thread for a client: {e}");
            std::thread::sleep(BACKOFF);
        }
    }
}

/// Reads from a client's stream within the limits: [`IDLE_TIMEOUT`] for
/// the first byte of a request, then [`FRAME_TIMEOUT`] for the rest.
struct Deadlines<'a> {
    stream: &'a UnixStream,
    frame_ends: Option<Instant>,
}

impl Read for Deadlines<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let timeout = match self.frame_ends {
            None => IDLE_TIMEOUT,
            Some(end) => end
                .checked_duration_since(Instant::now())
                .filter(|left| !left.is_zero())
                .ok_or(std::io::ErrorKind::TimedOut)?,
        };
        self.stream.set_read_timeout(Some(timeout))?;
        let n = (&mut &*self.stream).read(buf)?;
        if n > 0 && self.frame_ends.is_none() {
            self.frame_ends = Some(Instant::now() + FRAME_TIMEOUT);
        }
        Ok(n)
    }
}

/// Answers one client's requests until it hangs up or breaks a limit. A
/// malformed frame gets an error reply; an oversized one, or one of
/// another version, also closes the connection (its framing is lost).
/// None of it affects other clients.
fn serve_client(daemon: &Daemon, mut stream: UnixStream) {
    let limit = LogLimit::default();
    loop {
        let mut reader = Deadlines {
            stream: &stream,
            frame_ends: None,
        };
        let request = match read_frame::<Request>(&mut reader) {
            Ok(request) => request,
            Err(FrameError::Io(_)) => return,
            Err(e @ (FrameError::TooLarge(_) | FrameError::Version(_))) => {
                if let Some(admitted) = limit.admit() {
                    tracing::warn!("refused a control message: {e}{admitted}");
                }
                let _ = write_frame(&mut stream, Response::Error(e.to_string()));
                return;
            }
            Err(e) => {
                if let Some(admitted) = limit.admit() {
                    tracing::warn!("refused a control message: {e}{admitted}");
                }
                let _ = write_frame(&mut stream, Response::Error(e.to_string()));
                continue;
            }
        };
        if let Request::Console(domain) = &request {
            handlers::stream_console(daemon, domain, &mut stream);
            return;
        }
        let response = handlers::handle(daemon, request);
        if write_frame(&mut stream, response).is_err() {
            return;
        }
    }
}
