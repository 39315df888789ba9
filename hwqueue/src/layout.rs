//! Where a queue's rings go inside its region, and the
//! [`QueueLayout`] Dom0 is given.
//!
//! The region is carved from its start, in whole pages:
//!
//! ```text
//! region + 0            ring area: SQ and CQ heads, tails, masks, flags,
//!                       then the CQE array (the kernel's `struct io_rings`)
//! region + rings_bytes  SQE array: sq_entries x 64 bytes
//! ```
//!
//! The room for the ring area is reserved before `io_uring_setup` from a
//! generous bound on the kernel's header; the offsets the kernel reports
//! back are then checked to lie inside it.

use super::error::HwQueueError;
use super::sys::{IoUringParams, IORING_MAX_ENTRIES};
use super::{BufferRegion, QueueNotify, RingRegion};
use protocol::hwqueue::{
    CqRingOffsets, FixedBuffer, QueueLayout, SqRingOffsets, CQE_SIZE, FIXED_FILE, MAX_BUFFER_BYTES,
    MAX_FIXED_BUFFERS, SQE_SIZE,
};

/// Page size the kernel aligns the ring memory to.
const PAGE: u64 = protocol::memory::PAGE_SIZE;

/// Bytes reserved for the ring header before the CQE array. The kernel's
/// `struct io_rings` puts the CQEs at 64 on x86-64; this leaves room.
const RINGS_HEADER_RESERVE: u64 = 256;

/// The sizes a queue's memory will have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// SQ slots.
    pub sq_entries: u32,
    /// CQ slots (twice the SQ, so a full SQ of requests always fits).
    pub cq_entries: u32,
    /// Bytes of the ring area at the region's start.
    pub rings_bytes: u64,
    /// Bytes of the SQE array after it.
    pub sqes_bytes: u64,
}

impl Plan {
    /// Bytes of the region the queue uses.
    pub fn bytes(&self) -> u64 {
        self.rings_bytes + self.sqes_bytes
    }
}

fn page_up(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE) * PAGE
}

/// Sizes the rings for `entries` SQ slots and checks that `region` can
/// hold them where the kernel accepts them (page-aligned).
pub fn plan(region: &RingRegion, entries: u32) -> Result<Plan, HwQueueError> {
    if entries == 0 || entries > IORING_MAX_ENTRIES || !entries.is_power_of_two() {
        return Err(HwQueueError::BadEntries(entries));
    }
    for (what, value) in [
        ("ring region host address", region.host_addr),
        ("ring region guest address", region.guest_addr),
    ] {
        if !value.is_multiple_of(PAGE) {
            return Err(HwQueueError::Unaligned { what, value });
        }
    }
    let cq_entries = 2 * entries;
    let plan = Plan {
        sq_entries: entries,
        cq_entries,
        rings_bytes: page_up(RINGS_HEADER_RESERVE + cq_entries as u64 * CQE_SIZE as u64),
        sqes_bytes: page_up(entries as u64 * SQE_SIZE as u64),
    };
    if region.len < plan.bytes() {
        return Err(HwQueueError::RegionTooSmall {
            need: plan.bytes(),
            have: region.len,
        });
    }
    if region.host_addr.checked_add(region.len).is_none()
        || region.guest_addr.checked_add(region.len).is_none()
    {
        return Err(HwQueueError::RegionTooSmall {
            need: plan.bytes(),
            have: 0,
        });
    }
    Ok(plan)
}

/// Checks the fixed buffers and describes them for Dom0.
pub fn fixed_buffers(
    buffers: &[Option<BufferRegion>],
) -> Result<[FixedBuffer; MAX_FIXED_BUFFERS], HwQueueError> {
    if buffers.len() > MAX_FIXED_BUFFERS {
        return Err(HwQueueError::TooManyBuffers(buffers.len()));
    }
    let mut out = [FixedBuffer::default(); MAX_FIXED_BUFFERS];
    for (slot, buffer) in buffers.iter().enumerate() {
        if let Some(buffer) = buffer {
            out[slot] = fixed_buffer(slot, buffer)?;
        }
    }
    Ok(out)
}

/// Checks one fixed buffer and describes it for Dom0.
pub fn fixed_buffer(slot: usize, buffer: &BufferRegion) -> Result<FixedBuffer, HwQueueError> {
    let why = if buffer.len == 0 || buffer.host_addr == 0 {
        Some("empty (leave the slot as None instead)")
    } else if buffer.len > MAX_BUFFER_BYTES {
        Some("longer than 1 GiB, the kernel's limit: split it")
    } else if buffer.host_addr.checked_add(buffer.len).is_none()
        || buffer.guest_addr.checked_add(buffer.len).is_none()
    {
        Some("wraps around the address space")
    } else {
        None
    };
    match why {
        Some(why) => Err(HwQueueError::BadBuffer { slot, why }),
        None => Ok(FixedBuffer {
            gpa: buffer.guest_addr,
            len: buffer.len,
            io_addr: buffer.host_addr,
        }),
    }
}

/// Checks the kernel's reported ring layout against `plan` and builds
/// the description Dom0 gets. Long because it names every ring field the
/// kernel reports, once to check it and once to copy it.
pub fn describe(
    plan: &Plan,
    region: &RingRegion,
    params: &IoUringParams,
    buffers: &[Option<BufferRegion>],
    notify: &QueueNotify,
) -> Result<QueueLayout, HwQueueError> {
    if params.sq_entries != plan.sq_entries || params.cq_entries != plan.cq_entries {
        return Err(HwQueueError::KernelEntries {
            asked_sq: plan.sq_entries,
            asked_cq: plan.cq_entries,
            got_sq: params.sq_entries,
            got_cq: params.cq_entries,
        });
    }
    let s = &params.sq_off;
    let c = &params.cq_off;
    let word = |name: &'static str, off: u32| (name, off, 4, off as u64 + 4);
    let mut fields = vec![
        word("sq head", s.head),
        word("sq tail", s.tail),
        word("sq ring_mask", s.ring_mask),
        word("sq ring_entries", s.ring_entries),
        word("sq flags", s.flags),
        word("sq dropped", s.dropped),
        word("cq head", c.head),
        word("cq tail", c.tail),
        word("cq ring_mask", c.ring_mask),
        word("cq ring_entries", c.ring_entries),
        word("cq overflow", c.overflow),
        word("cq flags", c.flags),
        (
            "cqes",
            c.cqes,
            std::mem::align_of::<protocol::hwqueue::Cqe>() as u32,
            c.cqes as u64 + plan.cq_entries as u64 * CQE_SIZE as u64,
        ),
    ];
    if s.array != 0 {
        fields.push((
            "sq array",
            s.array,
            4,
            s.array as u64 + plan.sq_entries as u64 * 4,
        ));
    }
    for &(field, offset, align, end) in &fields {
        if end > plan.rings_bytes {
            return Err(HwQueueError::KernelLayout {
                field,
                end,
                reserved: plan.rings_bytes,
            });
        }
        if !offset.is_multiple_of(align) {
            return Err(HwQueueError::KernelMisaligned { field, offset });
        }
    }
    Ok(QueueLayout {
        sq_ring_gpa: region.guest_addr,
        cq_ring_gpa: region.guest_addr,
        rings_bytes: plan.rings_bytes,
        sqes_gpa: region.guest_addr + plan.rings_bytes,
        sqes_bytes: plan.sqes_bytes,
        sq_entries: plan.sq_entries,
        cq_entries: plan.cq_entries,
        sq_off: SqRingOffsets {
            head: s.head,
            tail: s.tail,
            ring_mask: s.ring_mask,
            ring_entries: s.ring_entries,
            flags: s.flags,
            dropped: s.dropped,
            array: s.array,
            _resv: 0,
        },
        cq_off: CqRingOffsets {
            head: c.head,
            tail: c.tail,
            ring_mask: c.ring_mask,
            ring_entries: c.ring_entries,
            overflow: c.overflow,
            cqes: c.cqes,
            flags: c.flags,
            _resv: 0,
        },
        fixed_file: FIXED_FILE as u32,
        nr_buffers: buffers.len() as u32,
        buffers: fixed_buffers(buffers)?,
        doorbell_addr: notify.doorbell_addr,
        doorbell_value: notify.doorbell_value,
        completion_vector: notify.completion_vector as u32,
        sq_polled: u32::from(params.flags & crate::sys::IORING_SETUP_SQPOLL != 0),
        _pad: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(host_addr: u64, len: u64) -> RingRegion {
        RingRegion {
            host_addr,
            guest_addr: 0x20_0000,
            len,
        }
    }

    #[test]
    fn plan_checks_entries_alignment_and_room() {
        let p = plan(&region(0x1000, 0x10_0000), 64).unwrap();
        assert_eq!((p.sq_entries, p.cq_entries), (64, 128));
        assert_eq!(p.rings_bytes, 0x1000, "256 + 128 x 16 fits a page");
        assert_eq!(p.sqes_bytes, 0x1000, "64 x 64");
        let p = plan(&region(0x1000, 0x10_0000), 256).unwrap();
        assert_eq!((p.rings_bytes, p.sqes_bytes), (0x3000, 0x4000));
        assert!(matches!(
            plan(&region(0x1000, 0x1000), 64),
            Err(HwQueueError::RegionTooSmall { need: 0x2000, .. })
        ));
        assert!(matches!(
            plan(&region(0x1800, 0x10_0000), 64),
            Err(HwQueueError::Unaligned { .. })
        ));
        for bad in [0, 3, 65536] {
            assert!(matches!(
                plan(&region(0x1000, 0x10_0000), bad),
                Err(HwQueueError::BadEntries(_))
            ));
        }
    }

    #[test]
    fn buffers_are_checked() {
        let ok = BufferRegion {
            host_addr: 0x7000_0000,
            guest_addr: 0,
            len: 1 << 30,
        };
        let big = BufferRegion {
            len: (1 << 30) + 1,
            ..ok
        };
        let empty = BufferRegion { len: 0, ..ok };
        assert!(fixed_buffers(&[Some(ok), None]).is_ok());
        assert!(matches!(
            fixed_buffers(&[Some(ok), Some(big)]),
            Err(HwQueueError::BadBuffer { slot: 1, .. })
        ));
        assert!(matches!(
            fixed_buffers(&[Some(empty)]),
            Err(HwQueueError::BadBuffer { slot: 0, .. })
        ));
        assert!(matches!(
            fixed_buffers(&[None; MAX_FIXED_BUFFERS + 1]),
            Err(HwQueueError::TooManyBuffers(_))
        ));
    }

    #[test]
    fn kernel_offsets_outside_the_reserved_room_are_refused() {
        let r = region(0x1000, 0x10_0000);
        let p = plan(&r, 64).unwrap();
        let mut params = IoUringParams {
            sq_entries: 64,
            cq_entries: 128,
            ..Default::default()
        };
        params.cq_off.cqes = 64;
        let notify = QueueNotify::default();
        let layout = describe(&p, &r, &params, &[], &notify).unwrap();
        assert_eq!(layout.sqes_gpa, 0x20_0000 + 0x1000);
        params.cq_off.cqes = 0x1000 - 128 * 16 + 16;
        assert!(matches!(
            describe(&p, &r, &params, &[], &notify),
            Err(HwQueueError::KernelLayout { field: "cqes", .. })
        ));
        params.cq_off.cqes = 64;
        params.sq_off.array = 0xFFC;
        assert!(matches!(
            describe(&p, &r, &params, &[], &notify),
            Err(HwQueueError::KernelLayout {
                field: "sq array",
                ..
            })
        ));
        params.sq_off.array = 0;
        params.cq_off.cqes = 68;
        assert!(matches!(
            describe(&p, &r, &params, &[], &notify),
            Err(HwQueueError::KernelMisaligned {
                field: "cqes",
                offset: 68
            })
        ));
    }
}
