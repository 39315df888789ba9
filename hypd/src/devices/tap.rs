//! The host's side of a vif: a tap device enslaved to a Linux bridge, as
//! Xen's `vif-bridge` script and QEMU's `-netdev tap,br=` set them up.
//!
//! [`Tap::create`] opens `/dev/net/tun` as a tap without packet
//! information (each read or write is one Ethernet frame), gives it
//! Xen's backend MAC `fe:ff:ff:ff:ff:ff` (so the bridge never takes the
//! vif's address as its own), brings it up and enslaves it to the bridge,
//! creating the bridge (and bringing it up) when it is missing, as the
//! issue of a missing `xenbr0` is what a new user hits first. The tap is
//! not persistent: closing its descriptor deletes it, so a crashed `hypd`
//! leaves no interface behind. A bridge `hypd` created stays, as Xen's
//! `xenbr0` does.
//!
//! Everything here is ioctls on the calling process's network namespace;
//! the tests run `hypd` inside a namespace of their own.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

/// `TUNSETIFF`: `_IOW('T', 202, int)`.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
/// `IFF_TAP`: an Ethernet device.
const IFF_TAP: libc::c_short = 0x0002;
/// `IFF_NO_PI`: no packet-information prefix.
const IFF_NO_PI: libc::c_short = 0x1000;
/// `SIOCBRADDBR`: create a bridge.
const SIOCBRADDBR: libc::c_ulong = 0x89a0;
/// `SIOCBRADDIF`: enslave an interface (by index) to a bridge.
const SIOCBRADDIF: libc::c_ulong = 0x89a2;
/// The MAC Xen gives every backend vif.
const BACKEND_MAC: [u8; 6] = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff];

/// Longest interface name Linux takes (`IFNAMSIZ` less the NUL).
pub const IFNAME_MAX: usize = 15;

/// What went wrong setting up a tap or its bridge.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The name is not an interface name.
    #[error("`{0}` is not an interface name (1 to 15 bytes, no `/`, `:`, spaces or NUL)")]
    BadName(String),
    /// A step failed.
    #[error("{step} {name}: {source}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// The interface.
        name: String,
        /// The error.
        source: std::io::Error,
    },
}

/// True if `name` is a name Linux accepts for an interface.
pub fn is_ifname(name: &str) -> bool {
    (1..=IFNAME_MAX).contains(&name.len())
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
}

/// An `ifreq` with the name filled in and room for any of the unions
/// used here (flags, an index, a hardware address).
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> Self {
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        req
    }

    fn set_short(&mut self, value: libc::c_short) {
        self.data[..2].copy_from_slice(&value.to_ne_bytes());
    }

    fn short(&self) -> libc::c_short {
        libc::c_short::from_ne_bytes([self.data[0], self.data[1]])
    }

    fn set_int(&mut self, value: libc::c_int) {
        self.data[..4].copy_from_slice(&value.to_ne_bytes());
    }

    /// A `sockaddr` with an Ethernet address (`ARPHRD_ETHER`).
    fn set_hwaddr(&mut self, mac: [u8; 6]) {
        self.data[..2].copy_from_slice(&libc::ARPHRD_ETHER.to_ne_bytes());
        self.data[2..8].copy_from_slice(&mac);
    }

    /// The kernel's name for the interface (it may have filled it in).
    fn name(&self) -> String {
        CStr::from_bytes_until_nul(&self.name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Runs `ioctl(fd, request, req)`.
fn ioctl(fd: &impl AsRawFd, request: libc::c_ulong, req: &mut IfReq) -> std::io::Result<()> {
    // SAFETY: every request used here reads and writes at most an
    // `ifreq` (name and a 24-byte union), which `req` is, for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request, req as *mut IfReq) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A datagram socket, the handle for interface ioctls.
fn control_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Brings interface `name` up.
fn set_up(socket: &OwnedFd, name: &str) -> std::io::Result<()> {
    let mut req = IfReq::new(name);
    ioctl(socket, libc::SIOCGIFFLAGS, &mut req)?;
    let flags = req.short() | libc::IFF_UP as libc::c_short;
    req.set_short(flags);
    ioctl(socket, libc::SIOCSIFFLAGS, &mut req)
}

/// The index of interface `name`, if it exists.
fn index(name: &str) -> Option<libc::c_int> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a NUL-terminated string alive for the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i as libc::c_int)
}

/// Makes sure bridge `bridge` exists and is up; true if it was created.
pub fn ensure_bridge(bridge: &str) -> Result<bool, TapError> {
    if !is_ifname(bridge) {
        return Err(TapError::BadName(bridge.into()));
    }
    let step = |step, source| TapError::Step {
        step,
        name: bridge.into(),
        source,
    };
    let socket = control_socket().map_err(|e| step("opening a socket for", e))?;
    let created = if index(bridge).is_some() {
        false
    } else {
        let c = std::ffi::CString::new(bridge).expect("checked: no NUL");
        // SAFETY: SIOCBRADDBR reads a NUL-terminated name, alive for the
        // call.
        let r = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCBRADDBR, c.as_ptr()) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // Another hypd (or a user) made it meanwhile.
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(step("creating bridge", e));
            }
        }
        r == 0
    };
    set_up(&socket, bridge).map_err(|e| step("bringing up bridge", e))?;
    Ok(created)
}

/// A tap device on a bridge; closing it deletes the interface.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

impl Tap {
    /// Creates tap `name`, up, on `bridge` (created if missing).
    pub fn create(name: &str, bridge: &str) -> Result<Tap, TapError> {
        if !is_ifname(name) {
            return Err(TapError::BadName(name.into()));
        }
        let step = |step, source| TapError::Step {
            step,
            name: name.into(),
            source,
        };
        let created = ensure_bridge(bridge)?;
        if created {
            tracing::info!("created bridge {bridge}");
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| step("opening /dev/net/tun for", e))?;
        let mut req = IfReq::new(name);
        req.set_short(IFF_TAP | IFF_NO_PI);
        ioctl(&file, TUNSETIFF, &mut req).map_err(|e| step("creating tap", e))?;
        let tap = Tap {
            file,
            name: req.name(),
        };
        let socket = control_socket().map_err(|e| step("opening a socket for", e))?;
        let mut req = IfReq::new(&tap.name);
        req.set_hwaddr(BACKEND_MAC);
        ioctl(&socket, libc::SIOCSIFHWADDR, &mut req).map_err(|e| step("setting the MAC of", e))?;
        set_up(&socket, &tap.name).map_err(|e| step("bringing up", e))?;
        let tap_index = index(&tap.name)
            .ok_or_else(|| step("finding", std::io::Error::from_raw_os_error(libc::ENODEV)))?;
        let mut req = IfReq::new(bridge);
        req.set_int(tap_index);
        ioctl(&socket, SIOCBRADDIF, &mut req).map_err(|e| TapError::Step {
            step: "adding a port to bridge",
            name: format!("{bridge} ({})", tap.name),
            source: e,
        })?;
        Ok(tap)
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Gives the descriptor up to whoever serves the tap (blocking, as
    /// io_uring wants it: a read with nothing to read waits in the kernel;
    /// one frame per read or write).
    pub fn into_file(self) -> File {
        self.file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for good in ["xenbr0", "vif1.0", "a", "br-lan_2", "fifteen-chars15"] {
            assert!(is_ifname(good), "{good}");
        }
        for bad in [
            "",
            "sixteen-chars-16",
            "a/b",
            "a:b",
            "a b",
            ".",
            "..",
            "a\0",
        ] {
            assert!(!is_ifname(bad), "{bad:?}");
        }
    }
}
