//! The ioreq slot: how a guest's trapped register access reaches Dom0's
//! device model (after Xen's `public/hvm/ioreq.h`).
//!
//! When a guest vCPU touches a device's MMIO window (anything but the
//! queue-notify register, which is an ioeventfd), KVM exits to that vCPU's
//! thread in the core. The core writes the access into the vCPU's slot of
//! the guest's ioreq page (which lives in Dom0's RAM), moves the state to
//! [`STATE_READY`], and raises the slot's port in Dom0. Dom0's device model
//! moves it to [`STATE_INPROCESS`], performs the access, writes the read
//! data, moves it to [`STATE_RESP_READY`] and sends on the same port; the
//! core wakes, completes the guest's access and moves it back to
//! [`STATE_NONE`]. A state only moves forward.

/// No request.
pub const STATE_NONE: u8 = 0;
/// A request waits for Dom0.
pub const STATE_READY: u8 = 1;
/// Dom0 is working on it.
pub const STATE_INPROCESS: u8 = 2;
/// Dom0 answered.
pub const STATE_RESP_READY: u8 = 3;

/// Direction: the guest wrote.
pub const DIR_WRITE: u8 = 0;
/// Direction: the guest read.
pub const DIR_READ: u8 = 1;

/// Type: port I/O.
pub const TYPE_PIO: u8 = 0;
/// Type: memory-mapped I/O (the only one used here).
pub const TYPE_MMIO: u8 = 1;

/// One slot, 32 bytes, laid out as Xen's `struct ioreq`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct IoReq {
    /// Guest-physical address accessed.
    pub addr: u64,
    /// Data written, or data to return for a read.
    pub data: u64,
    /// Repeat count (always 1 here).
    pub count: u32,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u32,
    /// Dom0 port of this slot.
    pub vp_eport: u32,
    /// Padding.
    pub _pad: u16,
    /// Bits 0-3 state, bit 4 `data_is_ptr`, bit 5 direction (1 = read),
    /// bit 6 `df`.
    pub flags: u8,
    /// [`TYPE_PIO`] or [`TYPE_MMIO`].
    pub kind: u8,
}

/// Byte offset of [`IoReq::flags`] in a slot: the state lives there. Each
/// end moves the state with a single-byte store to this offset.
pub const FLAGS_OFFSET: usize = 30;
/// Byte offset of [`IoReq::data`] in a slot: where the core reads Dom0's
/// answer once the state is [`STATE_RESP_READY`].
pub const DATA_OFFSET: usize = 8;

/// The state bits of a flags byte.
const STATE_MASK: u8 = 0xF;
/// The direction bit of a flags byte (set: the guest read).
const DIR_SHIFT: u8 = 5;
/// Flags bit: `data` is a guest address, not a value (not used here).
pub const DATA_IS_PTR: u8 = 1 << 4;

/// The state (`STATE_*`) a flags byte holds.
pub const fn state_of(flags: u8) -> u8 {
    flags & STATE_MASK
}

/// `flags` with its state replaced by `state`, every other bit kept.
pub const fn with_state(flags: u8, state: u8) -> u8 {
    (flags & !STATE_MASK) | (state & STATE_MASK)
}

impl IoReq {
    /// The state bits.
    pub fn state(&self) -> u8 {
        state_of(self.flags)
    }

    /// True if the guest read.
    pub fn is_read(&self) -> bool {
        (self.flags >> DIR_SHIFT) & 1 == DIR_READ
    }

    /// Flags for a fresh request in `state` with direction `dir`.
    pub const fn flags_for(state: u8, dir: u8) -> u8 {
        with_state((dir & 1) << DIR_SHIFT, state)
    }
}

const _: () = assert!(core::mem::offset_of!(IoReq, flags) == FLAGS_OFFSET);
const _: () = assert!(core::mem::offset_of!(IoReq, data) == DATA_OFFSET);

/// Size of one slot.
pub const SLOT_SIZE: usize = 32;
