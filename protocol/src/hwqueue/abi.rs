//! The hardware queue's formats: SQEs and CQEs as the host kernel reads and
//! writes them, the opcodes and flags the restrictions allow, where the
//! ring fields lie, and the [`QueueLayout`] Dom0 is given (see the
//! [module documentation](super)).

/// Bytes of one submission queue entry (`struct io_uring_sqe`).
pub const SQE_SIZE: usize = 64;
/// Bytes of one completion queue entry (`struct io_uring_cqe`).
pub const CQE_SIZE: usize = 16;

/// Most fixed-buffer slots a queue describes in [`QueueLayout::buffers`].
pub const MAX_FIXED_BUFFERS: usize = 16;

/// The fixed-file index of the queue's backing file (the disk image or
/// tap device): put it in [`Sqe::fd`] with [`SQE_FIXED_FILE`] set.
pub const FIXED_FILE: i32 = 0;

/// The fixed-buffer slot that covers Dom0's RAM.
pub const RAM_BUFFER: u16 = 0;
/// The fixed-buffer slot of Dom0's first foreign window; window `w` (in
/// the order they are registered) is slot `FIRST_WINDOW_BUFFER + w`.
pub const FIRST_WINDOW_BUFFER: u16 = 1;

/// Largest fixed buffer the host kernel accepts (1 GiB); a larger area
/// needs several slots.
pub const MAX_BUFFER_BYTES: u64 = 1 << 30;

/// SQE opcodes (`IORING_OP_*`) a queue may use.
pub mod op {
    /// Does nothing and completes with 0: measures the queue itself.
    pub const NOP: u8 = 0;
    /// Flushes the file (`fsync`, or `fdatasync` with
    /// [`super::FSYNC_DATASYNC`] in [`super::Sqe::op_flags`]).
    pub const FSYNC: u8 = 3;
    /// Reads [`super::Sqe::len`] bytes at file offset [`super::Sqe::off`]
    /// into fixed buffer [`super::Sqe::buf_index`] at [`super::Sqe::addr`].
    pub const READ_FIXED: u8 = 4;
    /// Writes [`super::Sqe::len`] bytes from fixed buffer
    /// [`super::Sqe::buf_index`] at [`super::Sqe::addr`] to file offset
    /// [`super::Sqe::off`].
    pub const WRITE_FIXED: u8 = 5;
    /// Vectored read with iovecs in host memory: **not allowed** (the iovec
    /// addresses would not be checked against the fixed buffers).
    pub const READV: u8 = 1;
    /// Opens a file by path: **not allowed**; shown for tests.
    pub const OPENAT: u8 = 18;
}

/// The opcodes a hardware queue allows; any other completes
/// with `-EACCES`. Vectored and non-fixed reads and writes are left out
/// on purpose: their addresses are host pointers the kernel would not
/// bound by the fixed buffers.
pub const ALLOWED_OPCODES: [u8; 4] = [op::NOP, op::FSYNC, op::READ_FIXED, op::WRITE_FIXED];

/// [`Sqe::flags`] bit: [`Sqe::fd`] is an index into the fixed files.
/// Required on every SQE.
pub const SQE_FIXED_FILE: u8 = 1 << 0;
/// [`Sqe::flags`] bit: start this request after every earlier one has
/// completed (`IOSQE_IO_DRAIN`), e.g. a flush after writes.
pub const SQE_IO_DRAIN: u8 = 1 << 1;
/// [`Sqe::flags`] bit: start the next SQE only after this one succeeded
/// (`IOSQE_IO_LINK`).
pub const SQE_IO_LINK: u8 = 1 << 2;
/// The [`Sqe::flags`] bits a queue accepts besides [`SQE_FIXED_FILE`];
/// any other bit completes with `-EACCES`.
pub const ALLOWED_SQE_FLAGS: u8 = SQE_IO_DRAIN | SQE_IO_LINK;

/// [`Sqe::op_flags`] bit for [`op::FSYNC`]: data only (`fdatasync`).
pub const FSYNC_DATASYNC: u32 = 1;

/// Bit of the CQ ring's flags word ([`CqRingOffsets::flags`]): while Dom0
/// sets it, completions do not signal the eventfd, so no interrupt is
/// raised (`IORING_CQ_EVENTFD_DISABLED`). For polling on the hot path.
pub const CQ_EVENTFD_DISABLED: u32 = 1;

/// Bit of the SQ ring's flags word: the CQ ring overflowed and the kernel
/// holds completions back (`IORING_SQ_CQ_OVERFLOW`); reap CQEs and ring
/// the doorbell.
pub const SQ_CQ_OVERFLOW: u32 = 1 << 1;
/// SQ flag: the kernel thread polling the SQ went to sleep
/// (`IORING_SQ_NEED_WAKEUP`); SQEs published now wait for the doorbell.
pub const SQ_NEED_WAKEUP: u32 = 1 << 0;

/// Linux error numbers a CQE's [`Cqe::res`] may carry (negated).
pub mod errno {
    /// The fixed-file index is not registered.
    pub const EBADF: i32 = 9;
    /// An opcode or SQE flag the restrictions do not allow.
    pub const EACCES: i32 = 13;
    /// The transfer is not inside the fixed buffer, or the buffer index is
    /// not registered.
    pub const EFAULT: i32 = 14;
    /// A malformed SQE (a reserved field set, a bad length).
    pub const EINVAL: i32 = 22;
    /// An I/O error from the backing device.
    pub const EIO: i32 = 5;
}

/// A submission queue entry (`struct io_uring_sqe`), as the host kernel
/// reads it. Fields the allowed opcodes do not use must be zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Sqe {
    /// One of [`ALLOWED_OPCODES`].
    pub opcode: u8,
    /// `SQE_*` bits; [`SQE_FIXED_FILE`] must be set.
    pub flags: u8,
    /// I/O priority (0: the default).
    pub ioprio: u16,
    /// Fixed-file index: [`FIXED_FILE`].
    pub fd: i32,
    /// Byte offset in the file (for [`op::FSYNC`]: start of the range,
    /// 0 for the whole file).
    pub off: u64,
    /// Address of the data: [`FixedBuffer::io_addr`] plus the offset into
    /// the buffer (0 for [`op::FSYNC`] and [`op::NOP`]).
    pub addr: u64,
    /// Bytes to transfer (for [`op::FSYNC`]: length of the range, 0 for the
    /// whole file).
    pub len: u32,
    /// Per-opcode flags (`rw_flags`, `fsync_flags`).
    pub op_flags: u32,
    /// Returned untouched in [`Cqe::user_data`].
    pub user_data: u64,
    /// Fixed-buffer slot of [`Sqe::addr`].
    pub buf_index: u16,
    /// Credentials index: must be 0.
    pub personality: u16,
    /// Must be 0.
    pub file_index: u32,
    /// Must be 0.
    pub _resv: [u64; 2],
}

impl Sqe {
    /// A [`op::READ_FIXED`] of `len` bytes at file offset `off` into
    /// `io_addr` of fixed buffer `buf_index`.
    pub const fn read_fixed(
        buf_index: u16,
        io_addr: u64,
        len: u32,
        off: u64,
        user_data: u64,
    ) -> Self {
        Self::rw(op::READ_FIXED, buf_index, io_addr, len, off, user_data)
    }

    /// A [`op::WRITE_FIXED`] of `len` bytes from `io_addr` of fixed buffer
    /// `buf_index` to file offset `off`.
    pub const fn write_fixed(
        buf_index: u16,
        io_addr: u64,
        len: u32,
        off: u64,
        user_data: u64,
    ) -> Self {
        Self::rw(op::WRITE_FIXED, buf_index, io_addr, len, off, user_data)
    }

    /// An [`op::FSYNC`] of the whole file (`fdatasync` if `datasync`).
    pub const fn fsync(datasync: bool, user_data: u64) -> Self {
        let mut sqe = Self::zeroed(op::FSYNC, user_data);
        if datasync {
            sqe.op_flags = FSYNC_DATASYNC;
        }
        sqe
    }

    /// An [`op::NOP`].
    pub const fn nop(user_data: u64) -> Self {
        Self::zeroed(op::NOP, user_data)
    }

    const fn rw(opcode: u8, buf_index: u16, addr: u64, len: u32, off: u64, user_data: u64) -> Self {
        let mut sqe = Self::zeroed(opcode, user_data);
        sqe.buf_index = buf_index;
        sqe.addr = addr;
        sqe.len = len;
        sqe.off = off;
        sqe
    }

    const fn zeroed(opcode: u8, user_data: u64) -> Self {
        Self {
            opcode,
            flags: SQE_FIXED_FILE,
            ioprio: 0,
            fd: FIXED_FILE,
            off: 0,
            addr: 0,
            len: 0,
            op_flags: 0,
            user_data,
            buf_index: 0,
            personality: 0,
            file_index: 0,
            _resv: [0; 2],
        }
    }
}

/// A completion queue entry (`struct io_uring_cqe`), as the host kernel
/// writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Cqe {
    /// [`Sqe::user_data`] of the request.
    pub user_data: u64,
    /// Bytes transferred (or 0), or a negated [`errno`] value.
    pub res: i32,
    /// `IORING_CQE_F_*` bits (none are used by the allowed opcodes).
    pub flags: u32,
}

/// Where the SQ ring's fields are, in bytes from [`QueueLayout::sq_ring_gpa`]
/// (`struct io_sqring_offsets`, as the host kernel reported it).
///
/// Why a second definition beside the kernel's (`hwqueue`'s `sys.rs`):
/// that one is the host kernel's ABI, an input and output of
/// `io_uring_setup`, and carries `user_addr`, `hypd`'s own mapping of
/// the ring (an `IORING_SETUP_NO_MMAP` input); this one is the contract
/// handed to Dom0: offsets only, in a layout that stays put if the
/// kernel's struct grows. The hardware-queue crate checks each offset the
/// kernel reported and copies it across, field by field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct SqRingOffsets {
    /// `u32` head: the next SQE the kernel will read (kernel writes it).
    pub head: u32,
    /// `u32` tail: one past the last SQE Dom0 published (Dom0 writes it).
    pub tail: u32,
    /// `u32` ring mask (`entries - 1`).
    pub ring_mask: u32,
    /// `u32` number of SQ slots.
    pub ring_entries: u32,
    /// `u32` flags ([`SQ_CQ_OVERFLOW`]).
    pub flags: u32,
    /// `u32` count of SQEs the kernel dropped as invalid.
    pub dropped: u32,
    /// `u32` index array, or 0 when the queue has none
    /// (`IORING_SETUP_NO_SQARRAY`): then slot `i` of the SQ ring *is* SQE
    /// `i`. With an array, Dom0 writes the SQE's index into
    /// `array[tail & mask]` too.
    pub array: u32,
    /// Reserved.
    pub _resv: u32,
}

/// Where the CQ ring's fields are, in bytes from [`QueueLayout::cq_ring_gpa`]
/// (`struct io_cqring_offsets`, as the host kernel reported it; see
/// [`SqRingOffsets`] for why it is defined apart from the kernel's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct CqRingOffsets {
    /// `u32` head: the next CQE Dom0 will read (Dom0 writes it).
    pub head: u32,
    /// `u32` tail: one past the last CQE the kernel posted (kernel writes it).
    pub tail: u32,
    /// `u32` ring mask (`entries - 1`).
    pub ring_mask: u32,
    /// `u32` number of CQ slots.
    pub ring_entries: u32,
    /// `u32` count of completions lost to overflow.
    pub overflow: u32,
    /// The [`Cqe`] array.
    pub cqes: u32,
    /// `u32` flags Dom0 may set ([`CQ_EVENTFD_DISABLED`]).
    pub flags: u32,
    /// Reserved.
    pub _resv: u32,
}

/// One fixed-buffer slot: a range of Dom0's guest-physical space the host
/// kernel lets this queue transfer to and from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct FixedBuffer {
    /// Guest-physical address of the buffer's first byte in Dom0.
    pub gpa: u64,
    /// Bytes; 0 for an empty slot (any transfer through it fails).
    pub len: u64,
    /// The address [`Sqe::addr`] uses for the buffer's first byte (where
    /// `hypd` maps it).
    pub io_addr: u64,
}

impl FixedBuffer {
    /// The [`Sqe::addr`] for `len` bytes at guest-physical `gpa`, if they
    /// lie inside this buffer.
    pub const fn io_addr_of(&self, gpa: u64, len: u64) -> Option<u64> {
        if self.len == 0 || gpa < self.gpa {
            return None;
        }
        let offset = gpa - self.gpa;
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Some(self.io_addr + offset),
            _ => None,
        }
    }
}

/// Everything Dom0 needs to drive one hardware queue. Written by `hypd`'s
/// device setup into a page of Dom0's reserved RAM (named in the device's
/// [`crate::device::BackendEvent`]), read-only for Dom0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct QueueLayout {
    /// Guest-physical address the [`SqRingOffsets`] count from.
    pub sq_ring_gpa: u64,
    /// Guest-physical address the [`CqRingOffsets`] count from (the same
    /// as [`QueueLayout::sq_ring_gpa`] on current kernels: both rings
    /// share one area).
    pub cq_ring_gpa: u64,
    /// Bytes of the ring area at [`QueueLayout::cq_ring_gpa`].
    pub rings_bytes: u64,
    /// Guest-physical address of the SQE array ([`QueueLayout::sq_entries`]
    /// [`Sqe`]s).
    pub sqes_gpa: u64,
    /// Bytes of the SQE area (a whole number of pages).
    pub sqes_bytes: u64,
    /// SQ slots (a power of two).
    pub sq_entries: u32,
    /// CQ slots (a power of two).
    pub cq_entries: u32,
    /// The SQ ring's fields.
    pub sq_off: SqRingOffsets,
    /// The CQ ring's fields.
    pub cq_off: CqRingOffsets,
    /// The fixed-file index to put in [`Sqe::fd`] ([`FIXED_FILE`]).
    pub fixed_file: u32,
    /// Fixed-buffer slots in use: `buffers[..nr_buffers]`.
    pub nr_buffers: u32,
    /// The fixed buffers by slot: [`RAM_BUFFER`] is Dom0's RAM, then the
    /// foreign windows from [`FIRST_WINDOW_BUFFER`].
    pub buffers: [FixedBuffer; MAX_FIXED_BUFFERS],
    /// Guest-physical MMIO address of the doorbell: a 4-byte write of
    /// [`QueueLayout::doorbell_value`] there asks `hypd` to consume the
    /// published SQEs. Either the event-channel doorbell
    /// ([`crate::memory::DOORBELL_ADDR`]: a KVM ioeventfd that wakes the
    /// queue's doorbell thread, so the write does not exit), or the submit
    /// register ([`crate::memory::QUEUE_SUBMIT_ADDR`]: the write exits and
    /// Domain-0's own vCPU thread submits).
    pub doorbell_addr: u64,
    /// The value to write to the doorbell (the ioeventfd's datamatch).
    pub doorbell_value: u32,
    /// The interrupt vector completions raise in Dom0 (unless Dom0 set
    /// [`CQ_EVENTFD_DISABLED`]).
    pub completion_vector: u32,
    /// Non-zero if a kernel thread polls the SQ (`IORING_SETUP_SQPOLL`):
    /// Dom0 then rings the doorbell only when that thread went to sleep
    /// ([`SQ_NEED_WAKEUP`] in the SQ flags), and the doorbell wakes it.
    pub sq_polled: u32,
    /// Padding.
    pub _pad: u32,
}

impl QueueLayout {
    /// The fixed-buffer slot and [`Sqe::addr`] for `len` bytes at
    /// guest-physical `gpa`, if one buffer holds them all.
    pub fn io_addr(&self, gpa: u64, len: u64) -> Option<(u16, u64)> {
        let used = (self.nr_buffers as usize).min(MAX_FIXED_BUFFERS);
        self.buffers[..used]
            .iter()
            .enumerate()
            .find_map(|(slot, buf)| buf.io_addr_of(gpa, len).map(|a| (slot as u16, a)))
    }
}

const _: () = assert!(core::mem::size_of::<Sqe>() == SQE_SIZE);
const _: () = assert!(core::mem::size_of::<Cqe>() == CQE_SIZE);
const _: () = assert!(core::mem::size_of::<SqRingOffsets>() == 32);
const _: () = assert!(core::mem::size_of::<CqRingOffsets>() == 32);
const _: () = assert!(core::mem::size_of::<FixedBuffer>() == 24);
const _: () = assert!(core::mem::size_of::<QueueLayout>() == 120 + 24 * MAX_FIXED_BUFFERS + 24);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqe_fields_sit_where_the_kernel_reads_them() {
        let sqe = Sqe::write_fixed(3, 0x1122, 0x33, 0x44, 0x55);
        let base = &sqe as *const Sqe as usize;
        let at = |p: *const u8| p as usize - base;
        assert_eq!(at(&sqe.fd as *const i32 as *const u8), 4);
        assert_eq!(at(&sqe.off as *const u64 as *const u8), 8);
        assert_eq!(at(&sqe.addr as *const u64 as *const u8), 16);
        assert_eq!(at(&sqe.len as *const u32 as *const u8), 24);
        assert_eq!(at(&sqe.op_flags as *const u32 as *const u8), 28);
        assert_eq!(at(&sqe.user_data as *const u64 as *const u8), 32);
        assert_eq!(at(&sqe.buf_index as *const u16 as *const u8), 40);
        assert_eq!(sqe.flags, SQE_FIXED_FILE);
        assert_eq!(sqe.opcode, op::WRITE_FIXED);
    }

    #[test]
    fn io_addr_translates_only_inside_a_buffer() {
        let mut layout = QueueLayout {
            nr_buffers: 2,
            ..Default::default()
        };
        layout.buffers[0] = FixedBuffer {
            gpa: 0,
            len: 0x10_0000,
            io_addr: 0x7f00_0000_0000,
        };
        layout.buffers[1] = FixedBuffer {
            gpa: 0x1_0000_0000,
            len: 0x1000,
            io_addr: 0x7e00_0000_0000,
        };
        assert_eq!(layout.io_addr(0x2000, 0x200), Some((0, 0x7f00_0000_2000)));
        assert_eq!(
            layout.io_addr(0x1_0000_0800, 0x800),
            Some((1, 0x7e00_0000_0800))
        );
        assert_eq!(layout.io_addr(0x1_0000_0800, 0x801), None);
        assert_eq!(layout.io_addr(0x0f_ffff, 2), None);
        assert_eq!(layout.io_addr(u64::MAX, 2), None);
        layout.nr_buffers = 1;
        assert_eq!(layout.io_addr(0x1_0000_0000, 1), None);
    }
}
