//! The core's part of tracing: one clock for every party, and each
//! domain's trace ring at the top of its RAM (see [`protocol::trace`]).
//!
//! The clock: KVM gives each vCPU a TSC offset, by default one that makes
//! the guest's TSC start near zero. The core sets every vCPU's offset to
//! zero when it creates it (`KVM_SET_DEVICE_ATTR`, group
//! `KVM_VCPU_TSC_CTRL`, attribute `KVM_VCPU_TSC_OFFSET`), so a guest's
//! `rdtsc` and `hypd`'s read the same counter and records of every party
//! fall on one timeline. A kernel without that attribute keeps its offset:
//! the core then reads the vCPU's TSC (`MSR_IA32_TSC`) beside the host's
//! and records the difference, which `hypd` subtracts from the domain's
//! records.

use crate::domain::Domain;
use crate::error::{kvm, Result};
use kvm_bindings::{kvm_device_attr, kvm_msr_entry, Msrs, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET};
use kvm_ioctls::VcpuFd;
use protocol::trace::{self, TraceRing};
use std::marker::PhantomData;
use std::sync::OnceLock;
use vmm_sys_util::ioctl::ioctl_with_ref;

/// The time-stamp counter's MSR.
const MSR_IA32_TSC: u32 = 0x10;

/// The ioctl kvm-ioctls offers on aarch64 only.
mod ioctl {
    use kvm_bindings::kvm_device_attr;
    use vmm_sys_util::ioctl_iow_nr;
    ioctl_iow_nr!(KVM_SET_DEVICE_ATTR, 0xAE, 0xe1, kvm_device_attr);
}
use ioctl::KVM_SET_DEVICE_ATTR;

/// Bytes of a domain's trace ring.
pub(crate) fn ring_bytes(privileged: bool) -> u64 {
    if privileged {
        trace::DOM0_RING_BYTES
    } else {
        trace::GUEST_RING_BYTES
    }
}

/// Makes `vcpu`'s TSC the host's; returns the offset left (guest minus
/// host ticks): zero, unless the kernel cannot set it.
pub(crate) fn align_with_host(vcpu: &VcpuFd) -> Result<i64> {
    let offset: u64 = 0;
    let attr = kvm_device_attr {
        flags: 0,
        group: KVM_VCPU_TSC_CTRL,
        attr: u64::from(KVM_VCPU_TSC_OFFSET),
        addr: std::ptr::addr_of!(offset) as u64,
    };
    // SAFETY: a vCPU fd, and an attribute whose `addr` points at a u64
    // that lives across the call (KVM reads it, never writes it).
    let ret = unsafe { ioctl_with_ref(vcpu, KVM_SET_DEVICE_ATTR(), &attr) };
    if ret == 0 {
        return Ok(0);
    }
    let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_IA32_TSC,
        ..Default::default()
    }])
    .map_err(|_| kvm("KVM_GET_MSRS")(kvm_ioctls::Error::new(libc::E2BIG)))?;
    let before = trace::rdtsc();
    vcpu.get_msrs(&mut msrs).map_err(kvm("KVM_GET_MSRS"))?;
    let after = trace::rdtsc();
    let guest = msrs.as_slice()[0].data;
    Ok(guest as i64 - (before / 2 + after / 2) as i64)
}

/// A domain's trace ring, borrowed from the domain (its RAM stays mapped
/// while the borrow lasts).
#[derive(Debug)]
pub struct DomainRing<'a> {
    ring: TraceRing,
    _domain: PhantomData<&'a Domain>,
}

impl std::ops::Deref for DomainRing<'_> {
    type Target = TraceRing;
    fn deref(&self) -> &TraceRing {
        &self.ring
    }
}

impl Domain {
    /// The domain's trace ring: the top of its RAM, which the guest writes
    /// and the core places ([`protocol::boot::BootInfo::trace_ring`]).
    pub fn trace_ring(&self) -> DomainRing<'_> {
        let bytes = ring_bytes(self.reserved.is_some());
        let start = self.ram.size() - bytes;
        // SAFETY: the ring's pages are the top `bytes` of the domain's RAM
        // (page-aligned), which the domain maps for as long as it lives and
        // the borrow keeps it; its kernel uses them only as its trace ring.
        let ring = unsafe { TraceRing::new((self.ram.host_address() + start) as *mut u8, bytes) };
        DomainRing {
            ring,
            _domain: PhantomData,
        }
    }

    /// Guest TSC minus host TSC, in ticks: what to subtract from the
    /// domain's trace records (zero when the core could align its clock).
    pub fn tsc_offset(&self) -> i64 {
        self.tsc_offset
    }

    /// The TSC's frequency in kHz (the trace records' clock).
    pub fn tsc_khz(&self) -> u64 {
        self.tsc_khz
    }
}

/// Bytes of the core's own ring ([`core_ring`]).
pub const CORE_RING_BYTES: u64 = 1 << 20;

static CORE_RING: OnceLock<&'static TraceRing> = OnceLock::new();

/// The core's trace ring, in `hypd`'s memory, for the core's own steps:
/// the threads that take Domain-0's doorbells write it.
pub fn core_ring() -> &'static TraceRing {
    CORE_RING.get_or_init(|| TraceRing::leak(CORE_RING_BYTES))
}
