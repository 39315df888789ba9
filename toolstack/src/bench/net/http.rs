//! The little HTTP the network benchmark speaks, the same as the guests'
//! (`frontends/src/net/http.rs`): `GET /bytes/N` answers `N` bytes of
//! [`protocol::stream`]'s pattern, so either side can check every byte it
//! receives.

/// Longest request or response head read.
pub const MAX_HEAD: usize = 4096;

/// The length of the head at the start of `buf` (through its blank line),
/// once it has all arrived.
pub fn head_len(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// What a request head asks for: `Some(N)` for `GET /bytes/N`, `None`
/// for anything else (answered 404).
pub fn bytes_requested(head: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(head).ok()?.lines().next()?;
    let mut words = line.split(' ');
    let (Some("GET"), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return None;
    };
    let n = target.strip_prefix("/bytes/")?;
    if !version.starts_with("HTTP/1.") || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The response head for `len` bytes of body (`None`: not found).
pub fn response_head(len: Option<u64>) -> String {
    let (status, len) = match len {
        Some(n) => ("200 OK", n),
        None => ("404 Not Found", 0),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\nConnection: close\r\nServer: xl-bench\r\n\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_as_the_guests_send_them() {
        let guest =
            b"GET /bytes/33554432 HTTP/1.1\r\nHost: 10.0.255.254\r\nConnection: close\r\n\r\n";
        assert_eq!(head_len(guest), Some(guest.len()));
        assert_eq!(bytes_requested(guest), Some(33554432));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\n"), None, "not whole yet");
        for other in [
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            b"POST /bytes/1 HTTP/1.1\r\n\r\n",
            b"GET /bytes/x1 HTTP/1.1\r\n\r\n",
            b"GET /bytes/1 SPDY/3\r\n\r\n",
        ] {
            assert_eq!(
                bytes_requested(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
        assert!(response_head(Some(5)).starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(response_head(Some(5)).contains("Content-Length: 5\r\n"));
        assert!(response_head(None).starts_with("HTTP/1.1 404"));
    }
}
