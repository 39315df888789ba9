//! Ioreq slots: a guest vCPU's trapped register access, waiting in Dom0's
//! RAM for the device model (see [`protocol::ioreq`]).
//!
//! The core writes the access into the vCPU's slot, sets the state to
//! `READY` and raises the slot's port. [`Slot::take`] moves it to
//! `INPROCESS` and copies it out; [`Slot::answer`] writes the data and then,
//! after a release fence, the flags byte with `RESP_READY`; the caller
//! sends on the same port. The core completes the guest's access and moves
//! the state back to `NONE`.

use core::ptr::addr_of;
use core::sync::atomic::{fence, AtomicU8, Ordering};

use protocol::ioreq::{
    state_of, with_state, Access, IoReq, FLAGS_OFFSET, SLOT_SIZE, STATE_INPROCESS, STATE_READY,
    STATE_RESP_READY,
};

/// One slot of a guest's ioreq page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    addr: u64,
}

/// A request taken from a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    raw: IoReq,
}

impl Request {
    /// True if the guest read (it expects data back).
    pub fn is_read(&self) -> bool {
        self.raw.is_read()
    }

    /// The access, if the request is one the device model serves (see
    /// [`IoReq::access`]).
    pub fn access(&self) -> Option<Access> {
        self.raw.access()
    }

    /// The answer to a read nothing serves ([`IoReq::all_ones`]).
    pub fn all_ones(&self) -> u64 {
        self.raw.all_ones()
    }

    /// The `data` field as the core wrote it (the value of a write).
    pub fn data(&self) -> u64 {
        self.raw.data
    }
}

impl Slot {
    /// The slot of vCPU `vcpu` in the ioreq page at Dom0-physical `page`.
    ///
    /// # Safety
    ///
    /// `page` must be the ioreq page the core gave Dom0 for a guest with
    /// more than `vcpu` vCPUs (mapped, 8-aligned, in the reserved RAM), and
    /// stay so while the slot is used.
    pub unsafe fn new(page: u64, vcpu: usize) -> Self {
        Self {
            addr: page + (vcpu * SLOT_SIZE) as u64,
        }
    }

    /// The slot's Dom0 port, as the core wrote it when it made the page.
    pub fn port(&self) -> u32 {
        // SAFETY: the slot is valid (see `new`); the core wrote `vp_eport`
        // before it announced the page, and writes the same value since.
        unsafe { addr_of!((*self.ptr()).vp_eport).read_volatile() }
    }

    fn ptr(&self) -> *mut IoReq {
        self.addr as *mut IoReq
    }

    fn flags(&self) -> &AtomicU8 {
        // SAFETY: the flags byte lies inside the slot `new` vouched for;
        // the core accesses it with atomic byte loads and stores too.
        unsafe { AtomicU8::from_ptr((self.addr + FLAGS_OFFSET as u64) as *mut u8) }
    }

    /// True if a request waits in the slot (one acquire load).
    pub fn is_ready(&self) -> bool {
        state_of(self.flags().load(Ordering::Acquire)) == STATE_READY
    }

    /// Takes the waiting request, if any, and marks the slot `INPROCESS`.
    pub fn take(&self) -> Option<Request> {
        let flags = self.flags().load(Ordering::Acquire);
        if state_of(flags) != STATE_READY {
            return None;
        }
        self.flags()
            .store(with_state(flags, STATE_INPROCESS), Ordering::Relaxed);
        // SAFETY: the slot is valid (see `new`); the acquire load above
        // ordered the core's writes of the fields before these reads, and
        // the core leaves them alone until the answer.
        let raw = unsafe {
            let p = self.ptr();
            IoReq {
                addr: addr_of!((*p).addr).read_volatile(),
                data: addr_of!((*p).data).read_volatile(),
                count: addr_of!((*p).count).read_volatile(),
                size: addr_of!((*p).size).read_volatile(),
                vp_eport: addr_of!((*p).vp_eport).read_volatile(),
                _pad: 0,
                flags,
                kind: addr_of!((*p).kind).read_volatile(),
            }
        };
        Some(Request { raw })
    }

    /// Answers the request taken from this slot with `data` (the value of
    /// a read; for a write, the value as written) and marks it
    /// `RESP_READY`. The caller then sends on the slot's port.
    pub fn answer(&self, request: &Request, data: u64) {
        // SAFETY: the slot is valid (see `new`) and in `INPROCESS`, so the
        // core does not touch `data` until it sees the new state.
        unsafe { core::ptr::addr_of_mut!((*self.ptr()).data).write_volatile(data) };
        fence(Ordering::Release);
        self.flags().store(
            with_state(request.raw.flags, STATE_RESP_READY),
            Ordering::Release,
        );
    }
}
