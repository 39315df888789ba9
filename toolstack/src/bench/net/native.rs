//! The native baseline: the same four measurements between two host
//! network stacks joined by a virtual wire and nothing else. A client in
//! one namespace, the [`Server`] in another, a veth pair between them.
//!
//! That is the fair baseline for guest to guest: each guest is a network
//! stack of its own and the switch or bridge between them is a wire, so
//! the pair keeps two stacks and a wire and takes away only the
//! virtualisation. (Loopback would not: one stack, no device, a 64 KiB
//! MTU.) The wire has the guests' MTU, 1500, and is otherwise left as
//! Linux makes it. What differs is the stacks and what the wire offers
//! them: Linux's TCP (CUBIC, window scaling, delayed ACKs) on both ends
//! here, smoltcp in the guests; and the veth's offloads (segmentation,
//! GRO, no checksums), where the guests' virtio-net offers none, so a
//! native stream crosses in 64 KiB segments and a guest's in 1500-byte
//! frames. Taking the offloads away would not make it fairer: on this
//! machine a veth with `gso_max_segs 1` carries 0.43 Gbit/s instead of
//! 10.6 (iperf3), below the guests, so it would measure a Linux path
//! nobody runs rather than the cost of virtualisation.
//!
//! Pings are `ping -i 0` (the next request as soon as the reply is in,
//! as the guest does), the round trips taken from its replies; the
//! streams stop the clock at the last byte received (rx) or once the
//! server has read everything and closed (tx; the guest stops it when
//! the last byte is acknowledged, half a round trip sooner).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use super::http;
use super::ns::{ip, NetNs};
use super::parse::ping_times;
use super::sample::{Figure, NetRun};
use super::server::{Server, DISCARD_PORT, ECHO_PORT, HTTP_PORT};

/// The client's address on the wire.
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
/// The server's address on the wire.
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
/// The client's end of the veth pair.
const CLIENT_IF: &str = "xlbench-c";
/// The server's end.
const SERVER_IF: &str = "xlbench-s";
/// How long a connection, a round trip or a read may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The two namespaces, the wire and the server, for every round.
pub struct Native {
    /// The client's namespace.
    client: NetNs,
    /// The server's namespace.
    server_ns: NetNs,
    /// The server (stopped from its namespace).
    server: Option<Server>,
}

impl Drop for Native {
    fn drop(&mut self) {
        let server = self.server.take();
        let _ = self.server_ns.run(move || {
            drop(server);
            Ok(())
        });
    }
}

impl Native {
    /// Makes the namespaces, joins them with a veth pair and starts the
    /// server.
    pub fn new() -> Result<Self, String> {
        let (client, server_ns) = (NetNs::new()?, NetNs::new()?);
        let (client_path, server_path) = (client.path(), server_ns.path());
        ip(&[
            "link",
            "add",
            "name",
            CLIENT_IF,
            "netns",
            &client_path,
            "type",
            "veth",
            "peer",
            "name",
            SERVER_IF,
            "netns",
            &server_path,
        ])?;
        for (ns, dev, addr) in [
            (&client, CLIENT_IF, CLIENT_IP),
            (&server_ns, SERVER_IF, SERVER_IP),
        ] {
            ns.run(|| {
                ip(&["link", "set", "dev", dev, "mtu", "1500", "up"])?;
                ip(&["addr", "add", &format!("{addr}/24"), "dev", dev])
            })?;
        }
        let server = server_ns.run(|| Server::start(SERVER_IP))?;
        Ok(Self {
            client,
            server_ns,
            server: Some(server),
        })
    }

    /// One run: `count` pings and round trips, streams of `bytes` each
    /// way.
    pub fn run(&self, count: u32, bytes: u64) -> NetRun {
        let run = self
            .client
            .run(|| Ok([ping(count), round_trips(count), receive(bytes), send(bytes)]));
        match run {
            Ok(figures) => NetRun {
                figures,
                counters: None,
            },
            Err(e) => NetRun::failed(&e),
        }
    }
}

/// The median and 99th percentile of `samples` (µs) as a figure.
fn latency(mut samples: Vec<f64>) -> Figure {
    samples.sort_by(f64::total_cmp);
    let at = |q: usize| samples[(samples.len() - 1) * q / 100];
    Figure::Latency {
        median_us: at(50),
        p99_us: Some(at(99)),
    }
}

/// `count` pings of the server, one at a time, after one uncounted (it
/// resolves the server's MAC, as the guest's first ping does).
fn ping(count: u32) -> Result<Figure, String> {
    let server = SERVER_IP.to_string();
    let ping = |args: &[&str]| {
        Command::new("ping")
            .args(["-n", "-W", "1"])
            .args(args)
            .arg(&server)
            .output()
            .map_err(|e| format!("ping: {e}"))
    };
    ping(&["-q", "-c", "1"])?;
    let out = ping(&["-i", "0", "-s", "56", "-c", &count.to_string()])?;
    let times = ping_times(&String::from_utf8_lossy(&out.stdout));
    if times.len() < count as usize {
        return Err(format!(
            "{} of {count} pings lost",
            count as usize - times.len()
        ));
    }
    Ok(latency(times))
}

/// A connection to the server's `port`.
fn connect(port: u16) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&(SERVER_IP, port).into(), IO_TIMEOUT)
        .map_err(|e| format!("connecting to {SERVER_IP}:{port}: {e}"))?;
    stream
        .set_nodelay(true)
        .and_then(|()| stream.set_read_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| format!("{SERVER_IP}:{port}: {e}"))?;
    Ok(stream)
}

/// `count` 1-byte round trips through the server's echo.
fn round_trips(count: u32) -> Result<Figure, String> {
    let mut stream = connect(ECHO_PORT)?;
    let mut samples = Vec::with_capacity(count as usize);
    let mut byte = [0u8; 1];
    for _ in 0..count {
        let start = Instant::now();
        stream
            .write_all(b"x")
            .and_then(|()| stream.read_exact(&mut byte))
            .map_err(|e| format!("echo: {e}"))?;
        samples.push(start.elapsed().as_nanos() as f64 / 1e3);
        if byte != *b"x" {
            return Err("the echo answered another byte".into());
        }
    }
    Ok(latency(samples))
}

/// A stream's figure: `bytes` in `elapsed`.
fn gbit_s(bytes: u64, elapsed: Duration) -> Figure {
    Figure::Stream {
        gbit_s: bytes as f64 * 8.0 / elapsed.as_secs_f64().max(1e-9) / 1e9,
    }
}

/// `GET /bytes/N` from the server, every byte checked; timed from the
/// request to the last byte.
fn receive(bytes: u64) -> Result<Figure, String> {
    let mut stream = connect(HTTP_PORT)?;
    let start = Instant::now();
    let request =
        format!("GET /bytes/{bytes} HTTP/1.1\r\nHost: {SERVER_IP}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("http: {e}"))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut head = Vec::new();
    let (mut got, mut bad) = (0u64, 0u64);
    loop {
        let n = stream.read(&mut buf).map_err(|e| format!("http: {e}"))?;
        if n == 0 {
            break;
        }
        let mut body = &buf[..n];
        if head.len() < http::MAX_HEAD && http::head_len(&head).is_none() {
            head.extend_from_slice(body);
            let Some(len) = http::head_len(&head) else {
                continue;
            };
            body = &buf[n - (head.len() - len)..n];
            head.truncate(len);
        }
        bad += protocol::stream::mismatches(body, got);
        got += body.len() as u64;
        if got >= bytes {
            break;
        }
    }
    let elapsed = start.elapsed();
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err("http: no 200 answer".into());
    }
    if got != bytes || bad != 0 {
        return Err(format!("http: {got} of {bytes} bytes, {bad} mismatched"));
    }
    Ok(gbit_s(bytes, elapsed))
}

/// `bytes` of the pattern to the server's discard service; timed until
/// the server, having read them all, closes.
fn send(bytes: u64) -> Result<Figure, String> {
    let mut stream = connect(DISCARD_PORT)?;
    let mut chunk = vec![0u8; 64 << 10];
    protocol::stream::fill(&mut chunk, 0);
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream
            .write_all(&chunk[..n])
            .map_err(|e| format!("discard: {e}"))?;
        left -= n as u64;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| format!("discard: {e}"))?;
    let mut end = [0u8; 1];
    match stream.read(&mut end) {
        Ok(0) => Ok(gbit_s(bytes, start.elapsed())),
        Ok(_) => Err("discard: the server sent something".into()),
        Err(e) => Err(format!("discard: {e}")),
    }
}
