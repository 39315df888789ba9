//! `workload=net peer=A.B.C.D`: measures the network path to a peer that
//! runs the same services (another of these guests, in any workload),
//! one thing at a time, then keeps serving like `idle` (so it can be
//! another guest's peer):
//!
//! | run | what | figures |
//! |---|---|---|
//! | `ping` | `count=` ICMP echo requests (default 1000), 56 bytes, one at a time | RTT median, p99, max; lost |
//! | `tcp-rr` | `count=` 1-byte requests to the peer's TCP echo (port 7), each waiting for its echo | round trip median, p99, max; rate |
//! | `tcp-rx` | `GET /bytes/N` from the peer's HTTP (port 80), `N` = `net_mib=` MiB (default 32), every byte checked | Mbit/s from request to last byte |
//! | `tcp-tx` | `N` bytes to the peer's discard service (port 9) | Mbit/s until the peer acknowledged the last byte |
//!
//! A first ping (up to [`WARMUP_TRIES`] tries) resolves the peer's MAC and
//! is not counted; a peer that never answers it fails every check at once. Each run prints one line, `net NAME PEER: ...`, in the
//! style of the block benchmark's `bench NAME: ...` lines:
//!
//! ```text
//! net ping 10.0.0.3: 1000 ops, 0 lost in 95 ms; latency median 88 us, p99 140 us, max 310 us
//! net tcp-rr 10.0.0.3:7: 1000 ops in 120 ms: 8333 ops/s; latency median 110 us, p99 190 us, max 400 us
//! net tcp-rx 10.0.0.3:80: 33554432 bytes in 900 ms: 298 Mbit/s, 0 bytes mismatched
//! net tcp-tx 10.0.0.3:9: 33554432 bytes in 800 ms: 335 Mbit/s
//! ```
//!
//! and one [`protocol::report::Report::Check`] (`net-ping`, `net-tcp-rr`,
//! `net-tcp-rx`, `net-tcp-tx`): passed if nothing was lost, cut short or
//! mismatched; the value is the median in nanoseconds (ping, tcp-rr) or
//! the throughput in bits per second (tcp-rx, tcp-tx).

use alloc::vec::Vec;

use guest_runtime::{control, time};
use smoltcp::iface::SocketHandle;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::socket::{icmp, tcp};
use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, IpAddress, IpEndpoint, Ipv4Address};

use crate::cmdline::Args;
use crate::net::{self, Stack};
use crate::out::Out;
use crate::outln;
use crate::stats::summarize;

/// Tries of the first, uncounted ping.
const WARMUP_TRIES: u32 = 3;
/// How long one ping or one request may take.
const ROUND_TRIP_TIMEOUT_NS: u64 = 1_000_000_000;
/// How long a connection may take to open.
const CONNECT_TIMEOUT_NS: u64 = 5_000_000_000;
/// How long a stream may take.
const STREAM_TIMEOUT_NS: u64 = 120_000_000_000;
/// Bytes of an echo request's payload (as `ping` sends).
const PING_PAYLOAD: usize = 56;

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The heap had no room for the run's socket.
    Memory,
    /// The connection did not open, or was reset.
    Connect,
    /// Nothing came back in time.
    Timeout,
    /// The peer answered something else than asked.
    BadAnswer,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Memory => "out of memory",
            Self::Connect => "connection refused or reset",
            Self::Timeout => "timed out",
            Self::BadAnswer => "unexpected answer",
        })
    }
}

impl From<crate::dma::OutOfMemory> for Failure {
    fn from(_: crate::dma::OutOfMemory) -> Self {
        Self::Memory
    }
}

/// Runs the workload, then serves until shut down.
pub fn run(args: &Args) -> ! {
    let mut out = Out::open();
    match args.peer {
        None => outln!(out, "net: no peer= given; serving only"),
        Some(peer) => {
            if net::with(|stack| measure(&mut out, stack, peer, args)).is_none() {
                outln!(out, "net: no network device; nothing to measure");
            }
        }
    }
    out.drain();
    crate::idle(args)
}

/// Polls the stack and waits until `done` gives an answer or the TSC
/// passes `deadline`.
pub fn until<R>(
    stack: &mut Stack,
    deadline: u64,
    mut done: impl FnMut(&mut Stack) -> Option<R>,
) -> Option<R> {
    loop {
        stack.poll();
        if let Some(r) = done(stack) {
            return Some(r);
        }
        if time::rdtsc() >= deadline {
            return None;
        }
        stack.wait(deadline);
    }
}

/// The TSC `ns` nanoseconds from now.
pub fn deadline(ns: u64) -> u64 {
    time::rdtsc() + time::ns_to_ticks(ns)
}

/// Every run, in order, each reported.
fn measure(out: &mut Out, stack: &mut Stack, peer: [u8; 4], args: &Args) {
    let [a, b, c, d] = peer;
    let addr: IpAddress = Ipv4Address::new(a, b, c, d).into();
    let count = args.count.unwrap_or(1000).max(1);
    let bytes = args.net_mib.max(1) << 20;
    if !warm_up(stack, addr) {
        for name in ["net-ping", "net-tcp-rr", "net-tcp-rx", "net-tcp-tx"] {
            out.check(
                name,
                false,
                -1,
                format_args!("peer {a}.{b}.{c}.{d} does not answer pings"),
            );
        }
        return;
    }
    match ping(stack, addr, count) {
        Ok((mut samples, lost, elapsed_ns)) => {
            let s = summarize(&mut samples);
            outln!(
                out,
                "net ping {a}.{b}.{c}.{d}: {count} ops, {lost} lost in {} ms; latency median {} us, p99 {} us, max {} us",
                elapsed_ns / 1_000_000,
                s.median_ns / 1000,
                s.p99_ns / 1000,
                s.max_ns / 1000
            );
            let ok = lost == 0;
            out.check(
                "net-ping",
                ok,
                s.median_ns as i64,
                format_args!("{lost} of {count} pings lost"),
            );
        }
        Err(e) => out.check("net-ping", false, -1, format_args!("{e}")),
    }
    control::set_progress(time::rdtsc());
    match request_response(stack, IpEndpoint::new(addr, net::ECHO_PORT), count) {
        Ok((mut samples, elapsed_ns)) => {
            let s = summarize(&mut samples);
            outln!(
                out,
                "net tcp-rr {a}.{b}.{c}.{d}:{}: {count} ops in {} ms: {} ops/s; latency median {} us, p99 {} us, max {} us",
                net::ECHO_PORT,
                elapsed_ns / 1_000_000,
                u64::from(count) * 1_000_000_000 / elapsed_ns.max(1),
                s.median_ns / 1000,
                s.p99_ns / 1000,
                s.max_ns / 1000
            );
            out.check(
                "net-tcp-rr",
                true,
                s.median_ns as i64,
                format_args!("{count} round trips"),
            );
        }
        Err(e) => out.check("net-tcp-rr", false, -1, format_args!("{e}")),
    }
    control::set_progress(time::rdtsc());
    let rx = receive_stream(stack, IpEndpoint::new(addr, net::HTTP_PORT), bytes);
    stream_report(out, "tcp-rx", peer, net::HTTP_PORT, bytes, rx);
    control::set_progress(time::rdtsc());
    let tx = send_stream(stack, IpEndpoint::new(addr, net::DISCARD_PORT), bytes);
    stream_report(out, "tcp-tx", peer, net::DISCARD_PORT, bytes, tx);
    control::set_progress(time::rdtsc());
    let c = stack.counters();
    let poll = stack.poll_stats();
    outln!(
        out,
        "net: done; {} frames ({} bytes) in, {} frames ({} bytes) out, {} dropped; waits: {} answered while spinning, {} slept, {} interrupts; serving",
        c.rx_frames,
        c.rx_bytes,
        c.tx_frames,
        c.tx_bytes,
        c.rx_dropped + c.tx_dropped,
        poll.spin_hits,
        poll.sleeps,
        poll.interrupts
    );
}

/// What a stream run moved: bytes, nanoseconds, mismatched bytes.
type Stream = Result<(u64, u64, u64), Failure>;

/// Prints a stream run's line and reports its check.
fn stream_report(out: &mut Out, name: &str, peer: [u8; 4], port: u16, want: u64, r: Stream) {
    let [a, b, c, d] = peer;
    let check = alloc::format!("net-{name}");
    match r {
        Ok((moved, ns, bad)) => {
            let bits_per_s = moved.saturating_mul(8_000_000_000) / ns.max(1);
            let mismatched = if name == "tcp-rx" {
                alloc::format!(", {bad} bytes mismatched")
            } else {
                alloc::string::String::new()
            };
            outln!(
                out,
                "net {name} {a}.{b}.{c}.{d}:{port}: {moved} bytes in {} ms: {} Mbit/s{mismatched}",
                ns / 1_000_000,
                bits_per_s / 1_000_000
            );
            let ok = moved == want && bad == 0;
            out.check(
                &check,
                ok,
                bits_per_s as i64,
                format_args!("{moved} of {want} bytes"),
            );
        }
        Err(e) => out.check(&check, false, -1, format_args!("{e}")),
    }
}

/// An ICMP socket in `stack` bound to echo identifier `ident`: it takes
/// in the echo replies to requests carrying it.
pub fn icmp_socket(stack: &mut Stack, ident: u16) -> Result<SocketHandle, Failure> {
    let packets = || -> Result<icmp::PacketBuffer<'static>, Failure> {
        let meta = alloc::vec![icmp::PacketMetadata::EMPTY; 4];
        Ok(icmp::PacketBuffer::new(meta, net::buffer(1024)?))
    };
    let mut socket = icmp::Socket::new(packets()?, packets()?);
    socket
        .bind(icmp::Endpoint::Ident(ident))
        .map_err(|_| Failure::BadAnswer)?;
    Ok(stack.sockets().add(socket))
}

/// One uncounted ping, up to [`WARMUP_TRIES`] tries; true once `peer`
/// answered. It puts the peer's MAC in the stack's neighbor cache, so that
/// no counted ping waits for ARP: smoltcp sends at most one ARP request a
/// second, whatever the address, so a first request sent within a second
/// of another ARP (the guest answering some other host) waits that second
/// and outlives its round-trip timeout.
pub fn warm_up(stack: &mut Stack, peer: IpAddress) -> bool {
    (0..WARMUP_TRIES).any(|_| ping(stack, peer, 1).is_ok_and(|(_, lost, _)| lost == 0))
}

/// `count` pings, one at a time: the round trips of the answered ones
/// (ns), how many were lost, and the time of them all (ns).
pub fn ping(
    stack: &mut Stack,
    peer: IpAddress,
    count: u32,
) -> Result<(Vec<u64>, u32, u64), Failure> {
    let ident = time::rdtsc() as u16;
    let handle = icmp_socket(stack, ident)?;
    let mut samples = Vec::with_capacity(count as usize);
    let mut lost = 0;
    let payload = [0x5Au8; PING_PAYLOAD];
    let first = time::rdtsc();
    for seq in 0..count {
        let seq_no = seq as u16;
        let repr = Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data: &payload,
        };
        let start = time::rdtsc();
        let s = stack.sockets().get_mut::<icmp::Socket>(handle);
        match s.send(repr.buffer_len(), peer) {
            Ok(buf) => repr.emit(
                &mut Icmpv4Packet::new_unchecked(buf),
                &ChecksumCapabilities::default(),
            ),
            Err(_) => {
                lost += 1;
                continue;
            }
        }
        let answered = until(stack, deadline(ROUND_TRIP_TIMEOUT_NS), |stack| {
            let s = stack.sockets().get_mut::<icmp::Socket>(handle);
            while let Ok((data, _)) = s.recv() {
                if is_reply(data, ident, seq_no) {
                    return Some(());
                }
            }
            None
        });
        match answered {
            Some(()) => samples.push(time::ticks_to_ns(time::rdtsc() - start)),
            None => lost += 1,
        }
    }
    let elapsed = time::ticks_to_ns(time::rdtsc() - first);
    stack.sockets().remove(handle);
    Ok((samples, lost, elapsed))
}

/// True if `data` is the echo reply to request `seq_no` of `ident`.
fn is_reply(data: &[u8], ident: u16, seq_no: u16) -> bool {
    echo_reply_seq(data, ident) == Some(seq_no)
}

/// The sequence number of `data` if it is an echo reply to a request of
/// `ident`.
pub fn echo_reply_seq(data: &[u8], ident: u16) -> Option<u16> {
    let packet = Icmpv4Packet::new_checked(data).ok()?;
    match Icmpv4Repr::parse(&packet, &ChecksumCapabilities::default()).ok()? {
        Icmpv4Repr::EchoReply {
            ident: i, seq_no, ..
        } if i == ident => Some(seq_no),
        _ => None,
    }
}

/// Opens a TCP connection to `remote` with the given buffer sizes.
fn open(
    stack: &mut Stack,
    remote: IpEndpoint,
    rx: usize,
    tx: usize,
) -> Result<SocketHandle, Failure> {
    let mut socket = net::tcp_socket(rx, tx)?;
    socket.set_nagle_enabled(false);
    let handle = stack.sockets().add(socket);
    if stack.connect(handle, remote).is_err() {
        stack.sockets().remove(handle);
        return Err(Failure::Connect);
    }
    let state = until(stack, deadline(CONNECT_TIMEOUT_NS), |stack| {
        match stack.sockets().get_mut::<tcp::Socket>(handle).state() {
            tcp::State::SynSent | tcp::State::SynReceived => None,
            state => Some(state),
        }
    });
    if state != Some(tcp::State::Established) {
        stack.sockets().remove(handle);
        return Err(if state.is_none() {
            Failure::Timeout
        } else {
            Failure::Connect
        });
    }
    Ok(handle)
}

/// Closes the connection, lets the close finish (briefly), and drops the
/// socket.
fn close(stack: &mut Stack, handle: SocketHandle) {
    stack.sockets().get_mut::<tcp::Socket>(handle).close();
    until(stack, deadline(ROUND_TRIP_TIMEOUT_NS), |stack| {
        let s = stack.sockets().get_mut::<tcp::Socket>(handle);
        // Drop whatever still arrives.
        while s.can_recv() {
            let _ = s.recv(|d| (d.len(), ()));
        }
        matches!(s.state(), tcp::State::TimeWait | tcp::State::Closed).then_some(())
    });
    stack.sockets().remove(handle);
}

/// `count` 1-byte round trips through the peer's echo: each one's time
/// (ns), and the time of them all.
fn request_response(
    stack: &mut Stack,
    remote: IpEndpoint,
    count: u32,
) -> Result<(Vec<u64>, u64), Failure> {
    let handle = open(stack, remote, 4096, 4096)?;
    let mut samples = Vec::with_capacity(count as usize);
    let first = time::rdtsc();
    let mut result = Ok(());
    for _ in 0..count {
        let start = time::rdtsc();
        if stack
            .sockets()
            .get_mut::<tcp::Socket>(handle)
            .send_slice(b"x")
            != Ok(1)
        {
            result = Err(Failure::Connect);
            break;
        }
        let answer = until(stack, deadline(ROUND_TRIP_TIMEOUT_NS), |stack| {
            let s = stack.sockets().get_mut::<tcp::Socket>(handle);
            let mut byte = [0u8; 1];
            match s.recv_slice(&mut byte) {
                Ok(1) => Some(if byte == *b"x" {
                    Ok(())
                } else {
                    Err(Failure::BadAnswer)
                }),
                _ if !s.may_recv() => Some(Err(Failure::Connect)),
                _ => None,
            }
        });
        match answer {
            Some(Ok(())) => samples.push(time::ticks_to_ns(time::rdtsc() - start)),
            Some(Err(e)) => {
                result = Err(e);
                break;
            }
            None => {
                result = Err(Failure::Timeout);
                break;
            }
        }
    }
    let elapsed = time::ticks_to_ns(time::rdtsc() - first);
    close(stack, handle);
    result.map(|()| (samples, elapsed))
}

/// Reads `GET /bytes/N` from `remote`, checking every byte.
fn receive_stream(stack: &mut Stack, remote: IpEndpoint, bytes: u64) -> Stream {
    let handle = open(stack, remote, 256 << 10, 4096)?;
    let IpAddress::Ipv4(host) = remote.addr;
    let request =
        alloc::format!("GET /bytes/{bytes} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let start = time::rdtsc();
    let mut head: Vec<u8> = Vec::new();
    let (mut got, mut bad) = (0u64, 0u64);
    let mut in_body = false;
    let sent = stack
        .sockets()
        .get_mut::<tcp::Socket>(handle)
        .send_slice(request.as_bytes());
    let result = if sent != Ok(request.len()) {
        Err(Failure::Connect)
    } else {
        until(stack, deadline(STREAM_TIMEOUT_NS), |stack| {
            let s = stack.sockets().get_mut::<tcp::Socket>(handle);
            while s.can_recv() {
                let _ = s.recv(|data| {
                    let mut used = 0;
                    if !in_body {
                        let room = net::MAX_HEAD.saturating_sub(head.len());
                        used = data.len().min(room);
                        head.extend_from_slice(&data[..used]);
                        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            // Give back what followed the head: it is body.
                            let extra = head.len() - (end + 4);
                            head.truncate(end + 4);
                            used -= extra;
                            in_body = true;
                        }
                    }
                    if in_body {
                        let body = &data[used..];
                        bad += protocol::stream::mismatches(body, got);
                        got += body.len() as u64;
                        used = data.len();
                    }
                    (used, ())
                });
                if !in_body && head.len() >= net::MAX_HEAD {
                    return Some(Err(Failure::BadAnswer));
                }
            }
            if in_body && got >= bytes {
                Some(Ok(()))
            } else if !s.may_recv() {
                Some(if in_body {
                    Ok(())
                } else {
                    Err(Failure::Connect)
                })
            } else {
                None
            }
        })
        .unwrap_or(Err(Failure::Timeout))
    };
    let elapsed = time::ticks_to_ns(time::rdtsc() - start);
    close(stack, handle);
    result?;
    if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
        return Err(Failure::BadAnswer);
    }
    Ok((got, elapsed, bad))
}

/// Sends `bytes` of the pattern to `remote` and waits until the peer has
/// acknowledged all of them.
fn send_stream(stack: &mut Stack, remote: IpEndpoint, bytes: u64) -> Stream {
    let handle = open(stack, remote, 4096, 256 << 10)?;
    let start = time::rdtsc();
    let mut sent = 0u64;
    let result = until(stack, deadline(STREAM_TIMEOUT_NS), |stack| {
        let s = stack.sockets().get_mut::<tcp::Socket>(handle);
        if !s.may_send() {
            return Some(Err(Failure::Connect));
        }
        while sent < bytes && s.can_send() {
            let left = bytes - sent;
            let n = s
                .send(|buf| {
                    let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    protocol::stream::fill(&mut buf[..n], sent);
                    (n, n)
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            sent += n as u64;
        }
        (sent == bytes && s.send_queue() == 0).then_some(Ok(()))
    })
    .unwrap_or(Err(Failure::Timeout));
    let elapsed = time::ticks_to_ns(time::rdtsc() - start);
    close(stack, handle);
    result.map(|()| (sent, elapsed, 0))
}
