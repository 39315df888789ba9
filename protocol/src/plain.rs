//! Structures that may be copied into another party's memory as bytes.
//!
//! Every `#[repr(C)]` structure here that crosses a boundary whole (the
//! boot info, a backend-ring entry, an ioreq slot, a device-table entry, a
//! hardware-queue layout, a domain-info record) is [`Plain`]: made only of
//! integer and byte-array fields, with its padding spelled out as fields,
//! so every byte of a value is initialised. The claim sits here, next to
//! the definitions it is about, and the host side writes such values into
//! guest RAM through [`Plain::as_bytes`].

/// A `repr(C)` structure made only of integer and byte-array fields (or
/// arrays of other `Plain` structures), with explicit padding fields:
/// every byte of a value is initialised.
///
/// # Safety
///
/// Implement only for types laid out so: [`Plain::as_bytes`] exposes every
/// byte of the value.
pub unsafe trait Plain: Copy {
    /// The value's bytes, in memory order.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: the implementer promises every byte of `Self` is
        // initialised (no implicit padding); the slice borrows `self`.
        unsafe {
            core::slice::from_raw_parts(
                (self as *const Self).cast::<u8>(),
                core::mem::size_of::<Self>(),
            )
        }
    }
}

// SAFETY (for each impl below): the type is `repr(C)` with only integer
// and byte-array fields (or `Plain` structures, or arrays of them) and explicit
// padding fields; the size checks after them equal the sum of the fields'
// sizes, so the compiler added no padding of its own.
// SAFETY: see above.
unsafe impl Plain for crate::boot::BootInfo {}
// SAFETY: see above.
unsafe impl Plain for crate::device::BackendEvent {}
// SAFETY: see above.
unsafe impl Plain for crate::device::GuestDevice {}
// SAFETY: see above.
unsafe impl Plain for crate::ioreq::IoReq {}
// SAFETY: see above (the sizes of `QueueLayout` and its parts are checked
// in `protocol::hwqueue`).
unsafe impl Plain for crate::hwqueue::QueueLayout {}
// SAFETY: see above.
unsafe impl Plain for crate::hypercall::DomainInfo {}

use core::mem::size_of;
// 8 + 4 + 4 + 2 + 2 + 4 + 8 + 8 + 8 + 2 + 2 + 4 + CMDLINE_MAX + 8 + 8 + 4 + 4 + NAME_MAX.
const _: () = assert!(
    size_of::<crate::boot::BootInfo>() == 96 + crate::boot::CMDLINE_MAX + crate::domain::NAME_MAX
);
// 4 + 1 + 3.
const _: () = assert!(size_of::<crate::device::Ipv4Cidr>() == 8);
// 6 + 2 + 8 + 4 + 4.
const _: () = assert!(size_of::<crate::device::NetParams>() == 24);
// 4 + 4 + 4 + 2 + 2 + 8 + 8 + 4 + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 4 + 16 + 4 + 24.
const _: () = assert!(size_of::<crate::device::BackendEvent>() == 136);
// 8 + 4 + 4 + 16 + 8.
const _: () = assert!(size_of::<crate::device::GuestDevice>() == 40);
// 8 + 8 + 4 + 4 + 4 + 2 + 1 + 1.
const _: () = assert!(size_of::<crate::ioreq::IoReq>() == 32);
// 2 + 2 + 4 + 8 + 8.
const _: () = assert!(size_of::<crate::hypercall::DomainInfo>() == 24);
