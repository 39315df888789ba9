//! The services every guest with a network device runs (ARP and ICMP
//! echo are the interface's own):
//!
//! | service | sockets | buffers (rx + tx) |
//! |---|---|---|
//! | TCP echo, port 7 | [`ECHO_SOCKETS`] | 64 + 64 KiB, and a backlog of up to [`ECHO_BACKLOG`] per connection |
//! | TCP discard, port 9 (RFC 863) | [`DISCARD_SOCKETS`] | 64 KiB + 256 B |
//! | UDP echo, port 7 | 1 | 16 datagrams, 16 KiB each way |
//! | HTTP, port 80 ([`super::http`]) | [`HTTP_SOCKETS`] | 4 + 64 KiB |
//!
//! Each TCP socket serves one connection at a time; when it closes (or
//! reaches TIME-WAIT, which is not waited out) the socket listens again.
//! The echo backlog is what lets a client send a whole megabyte before it
//! reads anything: when the send buffer is full, received bytes move to
//! the backlog (allocated only then, freed when drained), so the receive
//! window stays open; only past the backlog's limit does the echo stop
//! reading and let TCP's flow control hold the client back.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;

use super::http::{self, Status};
use crate::dma::OutOfMemory;

/// Port of the echo services (RFC 862).
pub const ECHO_PORT: u16 = 7;
/// Port of the discard service (RFC 863).
pub const DISCARD_PORT: u16 = 9;
/// Port of the HTTP service.
pub const HTTP_PORT: u16 = 80;
/// TCP echo connections served at once.
pub const ECHO_SOCKETS: usize = 4;
/// Discard connections served at once.
pub const DISCARD_SOCKETS: usize = 2;
/// HTTP connections served at once.
pub const HTTP_SOCKETS: usize = 4;
/// Most bytes an echo connection holds beyond its socket buffers.
pub const ECHO_BACKLOG: usize = 1 << 20;
/// Datagrams the UDP echo buffers each way.
const UDP_DATAGRAMS: usize = 16;
/// Payload bytes the UDP echo buffers each way.
const UDP_BYTES: usize = 16 << 10;
/// An HTTP connection idle this long is dropped.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle time between keep-alive probes of echo and discard connections.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Silence after which an echo or discard peer is given up.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);
/// Bytes moved through the stack per copy step.
const CHUNK: usize = 4096;

/// A zeroed buffer of `len` bytes, or an error if the heap has no room.
pub fn buffer(len: usize) -> Result<Vec<u8>, OutOfMemory> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| OutOfMemory(len))?;
    v.resize(len, 0);
    Ok(v)
}

/// A TCP socket with `rx` and `tx` bytes of buffers.
pub fn tcp_socket(rx: usize, tx: usize) -> Result<tcp::Socket<'static>, OutOfMemory> {
    Ok(tcp::Socket::new(
        tcp::SocketBuffer::new(buffer(rx)?),
        tcp::SocketBuffer::new(buffer(tx)?),
    ))
}

/// One HTTP connection's progress.
enum Http {
    /// Reading the request head.
    Reading(Vec<u8>),
    /// Sending the response: the head from `sent`, then `pattern` bytes
    /// from `pos`.
    Writing {
        /// What to send.
        response: http::Response,
        /// Bytes of the head queued.
        sent: usize,
        /// Pattern bytes queued.
        pos: u64,
    },
    /// Everything queued and the socket closed; waiting for it to finish.
    Done,
}

/// The service sockets and their per-connection state.
pub struct Services {
    /// TCP echo sockets, each with its backlog.
    echo: Vec<(SocketHandle, VecDeque<u8>)>,
    /// Discard sockets.
    discard: Vec<SocketHandle>,
    /// The UDP echo socket.
    udp: SocketHandle,
    /// HTTP sockets, each with its connection's progress.
    http: Vec<(SocketHandle, Http)>,
    /// HTTP requests answered.
    http_requests: u64,
}

impl Services {
    /// Adds the service sockets to `sockets`, listening.
    pub fn new(sockets: &mut SocketSet<'static>) -> Result<Self, OutOfMemory> {
        let mut echo = Vec::with_capacity(ECHO_SOCKETS);
        for _ in 0..ECHO_SOCKETS {
            let mut s = tcp_socket(64 << 10, 64 << 10)?;
            s.set_nagle_enabled(false);
            keep_alive(&mut s);
            echo.push((sockets.add(s), VecDeque::new()));
        }
        let mut discard = Vec::with_capacity(DISCARD_SOCKETS);
        for _ in 0..DISCARD_SOCKETS {
            let mut s = tcp_socket(64 << 10, 256)?;
            keep_alive(&mut s);
            discard.push(sockets.add(s));
        }
        let mut http = Vec::with_capacity(HTTP_SOCKETS);
        for _ in 0..HTTP_SOCKETS {
            let mut s = tcp_socket(4 << 10, 64 << 10)?;
            s.set_timeout(Some(HTTP_TIMEOUT));
            http.push((sockets.add(s), Http::Reading(Vec::new())));
        }
        let datagrams = || -> Result<udp::PacketBuffer<'static>, OutOfMemory> {
            let meta = alloc::vec![udp::PacketMetadata::EMPTY; UDP_DATAGRAMS];
            Ok(udp::PacketBuffer::new(meta, buffer(UDP_BYTES)?))
        };
        let mut u = udp::Socket::new(datagrams()?, datagrams()?);
        // Binding a fresh socket to a non-zero port cannot fail.
        let _ = u.bind(ECHO_PORT);
        let udp = sockets.add(u);
        Ok(Self {
            echo,
            discard,
            udp,
            http,
            http_requests: 0,
        })
    }

    /// Moves every service along; returns true if any of them queued
    /// bytes to send or opened a receive window (then poll the interface
    /// again to send them).
    pub fn run(&mut self, sockets: &mut SocketSet<'static>, status: &Status) -> bool {
        let mut sent = false;
        for (handle, backlog) in &mut self.echo {
            sent |= echo(sockets.get_mut(*handle), backlog);
        }
        for handle in &self.discard {
            sent |= discard(sockets.get_mut(*handle));
        }
        sent |= udp_echo(sockets.get_mut(self.udp));
        for (handle, conn) in &mut self.http {
            let status = Status {
                http_requests: self.http_requests,
                ..*status
            };
            let (queued, answered) = serve_http(sockets.get_mut(*handle), conn, &status);
            sent |= queued;
            self.http_requests += u64::from(answered);
        }
        sent
    }
}

/// Probes an idle connection now and then, and drops it if the peer
/// stopped answering (a client that vanished must not hold a socket).
fn keep_alive(s: &mut tcp::Socket) {
    s.set_keep_alive(Some(KEEP_ALIVE));
    s.set_timeout(Some(PEER_TIMEOUT));
}

/// Listens again on `port` if the socket's connection is over.
fn relisten(s: &mut tcp::Socket, port: u16) -> bool {
    if s.is_open() {
        return false;
    }
    // Only an open socket refuses to listen; a fresh port cannot fail.
    let _ = s.listen(port);
    true
}

/// Room left in the socket's send buffer.
fn send_room(s: &tcp::Socket) -> usize {
    s.send_capacity() - s.send_queue()
}

/// One echo connection: backlog first, then received bytes straight to
/// the send buffer, then the rest into the backlog.
fn echo(s: &mut tcp::Socket, backlog: &mut VecDeque<u8>) -> bool {
    if relisten(s, ECHO_PORT) {
        *backlog = VecDeque::new();
        return false;
    }
    let mut sent = false;
    while !backlog.is_empty() && s.can_send() {
        let n = s.send_slice(backlog.as_slices().0).unwrap_or(0);
        if n == 0 {
            break;
        }
        backlog.drain(..n);
        sent = true;
    }
    if backlog.is_empty() {
        if backlog.capacity() > CHUNK {
            *backlog = VecDeque::new();
        }
        let mut chunk = [0u8; CHUNK];
        while s.can_recv() && send_room(s) > 0 {
            let room = send_room(s).min(CHUNK);
            let n = s.recv_slice(&mut chunk[..room]).unwrap_or(0);
            if n == 0 {
                break;
            }
            // Fits: at most the room left.
            let _ = s.send_slice(&chunk[..n]);
            sent = true;
        }
    }
    while s.can_recv() && backlog.len() < ECHO_BACKLOG {
        let took = s.recv(|data| {
            let n = data.len().min(ECHO_BACKLOG - backlog.len());
            if backlog.try_reserve(n).is_err() {
                return (0, 0);
            }
            backlog.extend(&data[..n]);
            (n, n)
        });
        if took.unwrap_or(0) == 0 {
            break;
        }
    }
    if s.state() == tcp::State::CloseWait && backlog.is_empty() && !s.can_recv() {
        s.close();
    }
    sent
}

/// One discard connection: drops whatever arrives. Returns true if it
/// took bytes (the window it opened is worth announcing at once).
fn discard(s: &mut tcp::Socket) -> bool {
    if relisten(s, DISCARD_PORT) {
        return false;
    }
    let mut took = false;
    while s.recv(|data| (data.len(), data.len())).unwrap_or(0) > 0 {
        took = true;
    }
    if s.state() == tcp::State::CloseWait {
        s.close();
    }
    took
}

/// UDP echo: each datagram back to its sender, while there is room.
fn udp_echo(s: &mut udp::Socket) -> bool {
    let mut sent = false;
    let mut buf = [0u8; 2048];
    while s.can_recv() && s.can_send() {
        // A datagram too large for `buf` is dropped by `recv_slice`.
        let Ok((n, meta)) = s.recv_slice(&mut buf) else {
            continue;
        };
        sent |= s.send_slice(&buf[..n], meta.endpoint).is_ok();
    }
    sent
}

/// One HTTP connection: read the head, answer, close. Returns whether
/// bytes were queued and whether a request was answered.
fn serve_http(s: &mut tcp::Socket, conn: &mut Http, status: &Status) -> (bool, bool) {
    if relisten(s, HTTP_PORT) {
        *conn = Http::Reading(Vec::new());
        return (false, false);
    }
    let mut answered = false;
    if let Http::Reading(head) = conn {
        while s.can_recv() && head.len() < http::MAX_HEAD {
            let _ = s.recv(|data| {
                let n = data.len().min(http::MAX_HEAD - head.len());
                head.extend_from_slice(&data[..n]);
                (n, ())
            });
        }
        let parsed = http::parse(head).transpose();
        match parsed {
            Some(parsed) => {
                *conn = Http::Writing {
                    response: http::respond(parsed, status),
                    sent: 0,
                    pos: 0,
                };
                answered = true;
            }
            None if s.state() == tcp::State::CloseWait => {
                // The client closed before finishing its request.
                s.close();
                *conn = Http::Done;
            }
            None => return (false, false),
        }
    }
    let mut queued = false;
    if let Http::Writing {
        response,
        sent,
        pos,
    } = conn
    {
        if *sent < response.head.len() {
            let n = s.send_slice(&response.head[*sent..]).unwrap_or(0);
            *sent += n;
            queued |= n > 0;
        }
        while *sent == response.head.len() && *pos < response.pattern && send_room(s) > 0 {
            let left = response.pattern - *pos;
            let n = s
                .send(|buf| {
                    let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    protocol::stream::fill(&mut buf[..n], *pos);
                    (n, n)
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            *pos += n as u64;
            queued = true;
        }
        if *sent == response.head.len() && *pos == response.pattern {
            s.close();
            *conn = Http::Done;
        }
    }
    if matches!(conn, Http::Done) {
        // Whatever else the client sends is dropped.
        while s.recv(|data| (data.len(), data.len())).unwrap_or(0) > 0 {}
    }
    (queued, answered)
}
