//! `xl console`: follow a domain's console; Ctrl-] detaches.

use crate::client::{Client, ClientError};
use protocol::control::{Request, Response};
use std::io::{Read, Write};
use std::os::fd::AsFd;

/// The byte Ctrl-] sends.
const DETACH: u8 = 0x1D;

/// Puts the terminal in raw mode while alive, so Ctrl-] arrives at once.
struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    fn enter() -> Self {
        let stdin = std::io::stdin();
        let saved = nix::sys::termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            nix::sys::termios::cfmakeraw(&mut raw);
            // Keep output processing so "\n" still starts a new line.
            raw.output_flags |= nix::sys::termios::OutputFlags::OPOST;
            let _ = nix::sys::termios::tcsetattr(
                stdin.as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                &raw,
            );
        }
        Self { saved }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let stdin = std::io::stdin();
            let _ = nix::sys::termios::tcsetattr(
                stdin.as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// Streams the console of `domain` to stdout until the domain goes away or
/// the user types Ctrl-]. `attached` runs once `hypd` has the client
/// following the console, before any output is shown (`xl create -c` unpauses
/// the new domain there, so none of its output is missed).
pub fn attach(
    mut client: Client,
    domain: String,
    attached: impl FnOnce() -> Result<(), ClientError>,
) -> Result<(), ClientError> {
    client.send(Request::Console(domain))?;
    match client.receive()? {
        Response::Ok => attached()?,
        other => return Err(ClientError::unexpected(other)),
    }
    let _raw = RawTerminal::enter();
    let stream = client
        .stream()
        .try_clone()
        .map_err(|error| client.io(error))?;
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let detaching = std::sync::Arc::clone(&detached);
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        let mut stdin = std::io::stdin();
        // Only Ctrl-] detaches; at the end of input keep following.
        while let Ok(1) = stdin.read(&mut byte) {
            if byte[0] == DETACH {
                // Hang up, which ends the loop below.
                detaching.store(true, std::sync::atomic::Ordering::Release);
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    });
    let mut stdout = std::io::stdout();
    loop {
        match client.receive() {
            Ok(Response::ConsoleClosed) => return Ok(()),
            Ok(Response::Console(bytes)) => {
                let _ = stdout.write_all(&bytes);
                let _ = stdout.flush();
            }
            Ok(other) => return Err(ClientError::unexpected(other)),
            // The connection closed: detached, or hypd went away.
            Err(_) if detached.load(std::sync::atomic::Ordering::Acquire) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
