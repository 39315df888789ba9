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

/// A register access, decoded from a slot and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Guest-physical address accessed.
    pub addr: u64,
    /// Access size in bytes: 1, 2, 4 or 8.
    pub size: u8,
    /// `Some(value)` for a write, `None` for a read.
    pub write: Option<u64>,
}

impl Access {
    /// The access's offset in a register window of `len` bytes at `base`,
    /// if all its bytes fall inside the window.
    pub fn offset_in(&self, base: u64, len: u64) -> Option<u64> {
        let offset = self.addr.checked_sub(base)?;
        let end = offset.checked_add(u64::from(self.size))?;
        (end <= len).then_some(offset)
    }
}

impl IoReq {
    /// A slot's 32 bytes as a request.
    pub fn from_bytes(b: &[u8; SLOT_SIZE]) -> Self {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Self {
            addr: u64_at(0),
            data: u64_at(DATA_OFFSET),
            count: u32_at(16),
            size: u32_at(20),
            vp_eport: u32_at(24),
            _pad: u16::from_le_bytes([b[28], b[29]]),
            flags: b[FLAGS_OFFSET],
            kind: b[31],
        }
    }

    /// The access, if the request is one a device model serves: a single
    /// MMIO access of 1, 2, 4 or 8 bytes carrying its data by value, whose
    /// last byte's address does not wrap.
    pub fn access(&self) -> Option<Access> {
        let size = match self.size {
            1 | 2 | 4 | 8 => self.size as u8,
            _ => return None,
        };
        if self.kind != TYPE_MMIO || self.count != 1 || self.flags & DATA_IS_PTR != 0 {
            return None;
        }
        self.addr.checked_add(u64::from(size))?;
        Some(Access {
            addr: self.addr,
            size,
            write: (!self.is_read()).then_some(self.data),
        })
    }

    /// The answer to a read nothing serves: all ones of the access's size,
    /// as on a bus with nothing behind the address.
    pub fn all_ones(&self) -> u64 {
        match self.size {
            1 | 2 | 4 => (1u64 << (8 * self.size)) - 1,
            _ => u64::MAX,
        }
    }
}

const _: () = assert!(core::mem::offset_of!(IoReq, flags) == FLAGS_OFFSET);
const _: () = assert!(core::mem::offset_of!(IoReq, data) == DATA_OFFSET);

/// Size of one slot.
pub const SLOT_SIZE: usize = 32;

// One page holds a slot for each vCPU a domain may have.
const _: () = assert!(crate::domain::MAX_VCPUS * SLOT_SIZE <= crate::memory::PAGE_SIZE as usize);

/// Byte offset of [`IoReq::vp_eport`] in a slot: the Dom0 port of the slot,
/// written by the core when it makes the page.
pub const VP_EPORT_OFFSET: usize = 24;
const _: () = assert!(core::mem::offset_of!(IoReq, vp_eport) == VP_EPORT_OFFSET);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plain::Plain;

    #[test]
    fn a_slot_decodes_to_the_access_it_holds_or_to_none() {
        let write = IoReq {
            addr: 0xE000_0070,
            data: 0xF,
            count: 1,
            size: 4,
            vp_eport: 9,
            _pad: 0,
            flags: IoReq::flags_for(STATE_READY, DIR_WRITE),
            kind: TYPE_MMIO,
        };
        let bytes: [u8; SLOT_SIZE] = write.as_bytes().try_into().unwrap();
        assert_eq!(IoReq::from_bytes(&bytes), write);
        assert_eq!(
            write.access(),
            Some(Access {
                addr: 0xE000_0070,
                size: 4,
                write: Some(0xF)
            })
        );
        let read = IoReq {
            flags: IoReq::flags_for(STATE_READY, DIR_READ),
            ..write
        };
        assert_eq!(read.access().unwrap().write, None);
        let access = write.access().unwrap();
        assert_eq!(access.offset_in(0xE000_0000, 0x1000), Some(0x70));
        assert_eq!(access.offset_in(0xE000_0000, 0x73), None);
        assert_eq!(access.offset_in(0xE000_0071, 0x1000), None);
        assert_eq!(read.all_ones(), 0xFFFF_FFFF);
        for bad in [
            IoReq { size: 3, ..write },
            IoReq { count: 2, ..write },
            IoReq {
                kind: TYPE_PIO,
                ..write
            },
            IoReq {
                flags: write.flags | DATA_IS_PTR,
                ..write
            },
            IoReq {
                addr: u64::MAX - 1,
                ..write
            },
        ] {
            assert_eq!(bad.access(), None, "{bad:?}");
        }
    }
}
