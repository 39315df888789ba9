//! The host side's services, the guests' own (`frontends/src/net/`) done
//! with Linux sockets: TCP echo on port 7, discard on port 9 and HTTP
//! `/bytes/N` on port 80, each connection served by a thread of its own.
//! The native baseline's server and the peer of the guest-to-host runs.
//!
//! The listeners are opened by the thread that calls [`Server::start`],
//! so in its network namespace, and their accept threads block (a
//! connection is served at once, as a guest's is). Dropping the server
//! tells them to stop and wakes each with a connection of its own, made
//! from the dropping thread's namespace: drop it there. A connection's
//! thread ends when its client closes, or after [`IDLE_TIMEOUT`] without
//! a byte from a client that went away (a guest destroyed mid-stream).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::http;

/// The echo service's port.
pub const ECHO_PORT: u16 = 7;
/// The discard service's port.
pub const DISCARD_PORT: u16 = 9;
/// The HTTP service's port.
pub const HTTP_PORT: u16 = 80;
/// How long a connection may stay silent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes a service reads or writes at once (a multiple of the pattern's
/// length, so every write of the HTTP body starts at its phase 0).
const CHUNK: usize = 64 << 10;

/// The three services, listening on one address.
pub struct Server {
    /// The address they listen on.
    ip: Ipv4Addr,
    /// Set to stop the accept threads.
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Starts the services on `ip` in the calling thread's namespace.
    pub fn start(ip: Ipv4Addr) -> Result<Self, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let services: [(u16, fn(TcpStream)); 3] = [
            (ECHO_PORT, echo),
            (DISCARD_PORT, discard),
            (HTTP_PORT, serve_http),
        ];
        for (port, service) in services {
            let listener = TcpListener::bind((ip, port))
                .map_err(|e| format!("listening on {ip}:{port}: {e}"))?;
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || accept(&listener, &stop, service));
        }
        Ok(Self { ip, stop })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for port in [ECHO_PORT, DISCARD_PORT, HTTP_PORT] {
            let wake = (self.ip, port).into();
            let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(100));
        }
    }
}

/// Accepts connections until `stop`, each served by `service` on a
/// thread of its own.
fn accept(listener: &TcpListener, stop: &AtomicBool, service: fn(TcpStream)) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or the like: let it pass.
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let ready = stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(IDLE_TIMEOUT)))
            .and_then(|()| stream.set_write_timeout(Some(IDLE_TIMEOUT)));
        if ready.is_ok() {
            std::thread::spawn(move || service(stream));
        }
    }
}

/// Port 7: sends back what comes, until the client closes.
fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; CHUNK];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// Port 9: reads and drops what comes; closes once the client has.
fn discard(mut stream: TcpStream) {
    let mut buf = vec![0u8; CHUNK];
    while let Ok(1..) = stream.read(&mut buf) {}
}

/// Port 80: one request, `GET /bytes/N` answered with `N` bytes of the
/// pattern, anything else with 404; then closes.
fn serve_http(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let len = loop {
        match stream.read(&mut buf) {
            Ok(n @ 1..) => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
        if let Some(len) = http::head_len(&head) {
            break len;
        }
        if head.len() > http::MAX_HEAD {
            return;
        }
    };
    let wanted = http::bytes_requested(&head[..len]);
    if stream
        .write_all(http::response_head(wanted).as_bytes())
        .is_err()
    {
        return;
    }
    let mut body = vec![0u8; CHUNK];
    protocol::stream::fill(&mut body, 0);
    let mut left = wanted.unwrap_or(0);
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        if stream.write_all(&body[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
    let _ = stream.shutdown(Shutdown::Write);
    // Let the client read to the end before the socket goes.
    while let Ok(1..) = stream.read(&mut buf) {}
}
