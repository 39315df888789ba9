//! Event channels: Xen's notification mechanism, wired through KVM.
//!
//! A port is a per-domain number in `1..NR_PORTS` (port 0 is never valid).
//! An *interdomain* channel joins a port of one domain to a port of another:
//!
//! * **send**: the guest writes the local port number (4 bytes) to
//!   [`crate::memory::DOORBELL_ADDR`]. For a bound port the core registered
//!   a `KVM_IOEVENTFD` with `datamatch = port`, so KVM signals an eventfd
//!   in the kernel and the vCPU does not leave the kernel.
//! * **receive**: that same eventfd is a `KVM_IRQFD` in the remote domain,
//!   routed as an MSI to vector [`port_vector`] of the remote port on the
//!   remote domain's vCPU 0.
//!
//! A notification from one domain to another never wakes the core's user
//! space. A write to the doorbell for a port with no ioeventfd (unbound,
//! closed or never allocated) does exit to the core, which records the
//! outcome in [`crate::boot::VcpuInfo::send_status`] so the guest can see
//! the error without a second hypercall.

use crate::domain::DomId;

/// Number of ports per domain, port 0 included (it is never valid).
pub const NR_PORTS: u32 = 128;

/// First vector used for event-channel ports: port `p` raises vector
/// `PORT_VECTOR_BASE + p`.
pub const PORT_VECTOR_BASE: u8 = 0x40;

/// Vector of the guest's local timer (x2APIC TSC-deadline mode).
pub const TIMER_VECTOR: u8 = 0x20;

/// Vector the core raises when it has put a request for the guest in
/// [`crate::boot::SharedInfo::control_request`] (Xen's control/shutdown
/// node).
pub const CONTROL_VECTOR: u8 = 0x22;

/// Vector the core raises in Dom0 when it appended to the backend ring
/// (see [`crate::device::BackendRing`]).
pub const BACKEND_VECTOR: u8 = 0x23;

/// The interrupt vector that port `port` is delivered on.
pub const fn port_vector(port: u32) -> u8 {
    PORT_VECTOR_BASE + port as u8
}

/// The port a vector belongs to, if it is a port vector.
pub const fn vector_port(vector: u8) -> Option<u32> {
    let port = vector as u32;
    if port > PORT_VECTOR_BASE as u32 && port - (PORT_VECTOR_BASE as u32) < NR_PORTS {
        Some(port - PORT_VECTOR_BASE as u32)
    } else {
        None
    }
}

/// True if `port` is a port number a domain may hold.
pub const fn is_valid_port(port: u32) -> bool {
    port != 0 && port < NR_PORTS
}

/// What a port is used for, as `EVTCHNOP_status` reports it (Xen's
/// `EVTCHNSTAT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum PortStatus {
    /// The port is not allocated.
    Closed = 0,
    /// Allocated by `alloc_unbound`, waiting for the remote domain to bind.
    Unbound = 1,
    /// Connected to a port of another domain.
    Interdomain = 2,
}

impl PortStatus {
    /// Decodes the status byte of a [`crate::hypercall::Op::EvtchnStatus`]
    /// result.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Closed),
            1 => Some(Self::Unbound),
            2 => Some(Self::Interdomain),
            _ => None,
        }
    }

    /// The [`crate::hypercall::Op::EvtchnStatus`] result for a port in this
    /// state whose other end is `remote_port` of `remote`:
    /// `status | remote << 8 | remote_port << 32`.
    pub const fn pack(self, remote: DomId, remote_port: u32) -> u64 {
        self as u64 | (remote as u64) << 8 | (remote_port as u64) << 32
    }

    /// Decodes a packed [`crate::hypercall::Op::EvtchnStatus`] result into
    /// the status, the remote domain and the remote port.
    pub fn unpack(raw: u64) -> Option<(Self, DomId, u32)> {
        let status = Self::from_raw((raw & 0xFF) as u32)?;
        Some((status, (raw >> 8) as DomId, (raw >> 32) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_has_its_own_vector_above_the_fixed_ones() {
        for port in 1..NR_PORTS {
            let vector = port_vector(port);
            assert!(vector > CONTROL_VECTOR.max(TIMER_VECTOR) && vector < 0xFF);
            assert_eq!(vector_port(vector), Some(port));
        }
        assert_eq!(vector_port(TIMER_VECTOR), None);
        assert_eq!(vector_port(PORT_VECTOR_BASE), None, "port 0 is never valid");
        assert!(!is_valid_port(0) && !is_valid_port(NR_PORTS));
    }

    #[test]
    fn a_packed_status_unpacks_to_what_was_packed() {
        let raw = PortStatus::Interdomain.pack(0x7FF2, 63);
        assert_eq!(raw, 2 | 0x7FF2 << 8 | 63 << 32);
        assert_eq!(
            PortStatus::unpack(raw),
            Some((PortStatus::Interdomain, 0x7FF2, 63))
        );
        assert_eq!(PortStatus::unpack(7), None);
    }
}
