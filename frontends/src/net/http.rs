//! The HTTP service on port 80: one request per connection
//! (`Connection: close`), HTTP/1.0 or 1.1, `GET` and `HEAD`.
//!
//! | path | answer |
//! |---|---|
//! | `/` | the status page ([`Status`]), `text/plain`, one `key: value` a line |
//! | `/bytes/N` | `N` bytes (up to [`MAX_BYTES`]) of [`STREAM_PATTERN`](protocol::stream::STREAM_PATTERN), streamed |
//! | anything else | 404; other methods 405; a malformed request 400; a head over [`MAX_HEAD`] bytes 431 |
//!
//! Byte `i` of a `/bytes/N` body is `STREAM_PATTERN[i % 64]` ([`protocol::stream`]): 62 letters and
//! digits, `+` and a newline, so the body reads as lines of 63 characters.
//! It is generated as the send buffer drains, never held whole.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// Largest `N` of `/bytes/N`: 1 TiB.
pub const MAX_BYTES: u64 = 1 << 40;
/// Longest request head (request line and headers) read.
pub const MAX_HEAD: usize = 4096;

/// What the status page shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct Status<'a> {
    /// This domain's id.
    pub domid: u16,
    /// Its name, as the core gave it at creation (not shown if empty).
    pub name: &'a str,
    /// Milliseconds since the network came up.
    pub uptime_ms: u64,
    /// The interface's address and prefix length.
    pub ipv4: ([u8; 4], u8),
    /// True if the address is the default (none was given).
    pub default_ipv4: bool,
    /// The MAC address.
    pub mac: [u8; 6],
    /// The MTU.
    pub mtu: u16,
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes of frames received.
    pub rx_bytes: u64,
    /// Frames sent.
    pub tx_frames: u64,
    /// Bytes of frames sent.
    pub tx_bytes: u64,
    /// Received buffers dropped as malformed.
    pub rx_dropped: u64,
    /// HTTP requests answered before this one.
    pub http_requests: u64,
}

/// A request's method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`: head and body.
    Get,
    /// `HEAD`: the head only.
    Head,
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/`: the status page.
    Status,
    /// `/bytes/N`: this many bytes of the pattern.
    Bytes(u64),
}

/// An HTTP error answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// 400: the request line or the number is malformed.
    BadRequest,
    /// 404: no such path.
    NotFound,
    /// 405: a method other than GET and HEAD.
    MethodNotAllowed,
    /// 431: the head is longer than [`MAX_HEAD`].
    HeadTooLarge,
}

impl HttpError {
    /// Status code and reason phrase.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Self::BadRequest => (400, "Bad Request"),
            Self::NotFound => (404, "Not Found"),
            Self::MethodNotAllowed => (405, "Method Not Allowed"),
            Self::HeadTooLarge => (431, "Request Header Fields Too Large"),
        }
    }
}

/// A parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// What it asks for.
    pub target: Target,
}

/// Parses a request head from the bytes received so far: `Ok(None)`
/// while the blank line ending the head has not arrived.
pub fn parse(buf: &[u8]) -> Result<Option<Request>, HttpError> {
    let ends = |i: usize| buf[i..].starts_with(b"\r\n\r\n") || buf[i..].starts_with(b"\n\n");
    if !(0..buf.len()).any(ends) {
        return if buf.len() >= MAX_HEAD {
            Err(HttpError::HeadTooLarge)
        } else {
            Ok(None)
        };
    }
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = core::str::from_utf8(&buf[..line_end]).map_err(|_| HttpError::BadRequest)?;
    let mut words = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(HttpError::BadRequest);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::BadRequest);
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => return Err(HttpError::MethodNotAllowed),
    };
    let path = target.split('?').next().unwrap_or(target);
    let target = if path == "/" {
        Target::Status
    } else if let Some(n) = path.strip_prefix("/bytes/") {
        let all_digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        match n.parse::<u64>() {
            Ok(n) if all_digits && n <= MAX_BYTES => Target::Bytes(n),
            _ => return Err(HttpError::BadRequest),
        }
    } else {
        return Err(HttpError::NotFound);
    };
    Ok(Some(Request { method, target }))
}

/// A response: the head (and a small body) in memory, then `pattern`
/// bytes of the pattern.
pub struct Response {
    /// Head, and the whole body of pages and errors.
    pub head: Vec<u8>,
    /// Pattern bytes that follow the head.
    pub pattern: u64,
}

/// A response head for `len` bytes of body.
fn head(code: u16, reason: &str, len: u64) -> String {
    let mut h = String::with_capacity(160);
    let _ = write!(
        h,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\nConnection: close\r\nServer: frontends\r\n\r\n"
    );
    h
}

/// The response to what [`parse`] made of a request.
pub fn respond(parsed: Result<Request, HttpError>, status: &Status) -> Response {
    let (code, reason, body, pattern, with_body) = match parsed {
        Ok(Request { method, target }) => {
            let (body, pattern) = match target {
                Target::Status => (status_page(status), 0),
                Target::Bytes(n) => (String::new(), n),
            };
            (200, "OK", body, pattern, method == Method::Get)
        }
        Err(e) => {
            let (code, reason) = e.status();
            (code, reason, alloc::format!("{code} {reason}\n"), 0, true)
        }
    };
    let mut text = head(code, reason, body.len() as u64 + pattern);
    if with_body {
        text.push_str(&body);
    }
    Response {
        head: text.into_bytes(),
        pattern: if with_body { pattern } else { 0 },
    }
}

/// The status page: `key: value` lines.
fn status_page(s: &Status) -> String {
    let mut p = String::with_capacity(512);
    let _ = writeln!(p, "domain: {}", s.domid);
    if !s.name.is_empty() {
        let _ = writeln!(p, "name: {}", s.name);
    }
    let [a, b, c, d] = s.ipv4.0;
    let m = s.mac;
    let _ = write!(
        p,
        "uptime_ms: {}\nipv4: {a}.{b}.{c}.{d}/{}{}\nmac: {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}\nmtu: {}\n",
        s.uptime_ms,
        s.ipv4.1,
        if s.default_ipv4 { " (default)" } else { "" },
        m[0], m[1], m[2], m[3], m[4], m[5],
        s.mtu
    );
    let _ = write!(
        p,
        "frames_in: {}\nbytes_in: {}\nframes_out: {}\nbytes_out: {}\nframes_dropped: {}\nhttp_requests: {}\n",
        s.rx_frames, s.rx_bytes, s.tx_frames, s.tx_bytes, s.rx_dropped, s.http_requests
    );
    p.push_str("services: icmp-echo tcp-echo/7 udp-echo/7 tcp-discard/9 http/80\n");
    p
}
