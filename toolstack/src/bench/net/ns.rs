//! Network namespaces, so the network benchmark never touches the host's
//! interfaces.
//!
//! `xl bench` moves its main thread into a namespace of its own before the
//! core or any thread exists ([`unshare_net`]): every thread the core and
//! `hypd`'s device setup start later inherits it, so the bridge, the
//! guests' taps and Domain-0's uplink are made there, and all of it goes
//! when the process ends (nothing to clean up after a crash, unlike a
//! named `ip netns add` namespace). The native baseline's two namespaces
//! are made the same way, each by a short-lived thread, and kept alive by
//! a descriptor of them ([`NetNs`]); a thread enters one with `setns`
//! before it opens its sockets or runs `ip` or `ping` (a child process
//! starts in its parent thread's namespace).
//!
//! `unshare` and `setns` are declared here rather than taken from `nix`:
//! this crate's `nix` is built without its `sched` feature.

use std::ffi::c_int;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

/// `CLONE_NEWNET` from `<sched.h>`.
const CLONE_NEWNET: c_int = 0x4000_0000;

extern "C" {
    /// `unshare(2)`, from the C library.
    fn unshare(flags: c_int) -> c_int;
    /// `setns(2)`, from the C library.
    fn setns(fd: c_int, nstype: c_int) -> c_int;
}

/// Moves the calling thread, and every thread it starts from now on, into
/// a new network namespace with its loopback up.
pub fn unshare_net() -> Result<(), String> {
    // SAFETY: unshare(2) takes a flag word and touches no memory of ours;
    // a network namespace is per thread, so no other thread is affected.
    if unsafe { unshare(CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET): {} (the network benchmark needs root)",
            std::io::Error::last_os_error()
        ));
    }
    ip(&["link", "set", "lo", "up"])
}

/// Runs `ip ARGS` in the calling thread's network namespace.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip (iproute2): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// A network namespace, alive while this descriptor of it is open.
pub struct NetNs {
    /// `/proc/thread-self/ns/net` of a thread that was in it.
    file: File,
}

impl NetNs {
    /// A new namespace with its loopback up (made by a thread of its own,
    /// so the caller stays where it is).
    pub fn new() -> Result<Self, String> {
        std::thread::spawn(|| {
            unshare_net()?;
            File::open("/proc/thread-self/ns/net")
                .map(|file| NetNs { file })
                .map_err(|e| format!("/proc/thread-self/ns/net: {e}"))
        })
        .join()
        .map_err(|_| "the namespace thread panicked".to_string())?
    }

    /// A path that names the namespace to another process while it
    /// lives (`ip link ... netns PATH`).
    pub fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.file.as_raw_fd())
    }

    /// Runs `f` on a thread inside the namespace and returns its result.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> Result<R, String> + Send) -> Result<R, String> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns(2) reads a descriptor this struct keeps
                    // open; it moves only this new thread.
                    if unsafe { setns(self.file.as_raw_fd(), CLONE_NEWNET) } != 0 {
                        return Err(format!("setns: {}", std::io::Error::last_os_error()));
                    }
                    f()
                })
                .join()
                .unwrap_or_else(|_| Err("a thread in a namespace panicked".into()))
        })
    }
}
