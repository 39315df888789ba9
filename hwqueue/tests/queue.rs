//! Dom0's hardware queues, without a VM: a memfd stands for Dom0's RAM, a
//! temporary file for the disk. Every request goes through the ring memory
//! only ([`QueueView`], the same code Dom0's kernel uses), as Dom0 would.

use hwqueue::{
    BufferRegion, HardwareQueue, HwQueueConfig, HwQueueError, LentQueue, QueueNotify, RingRegion,
};
use protocol::hwqueue::{
    errno, op, Cqe, QueueLayout, QueueView, Sqe, FIRST_WINDOW_BUFFER, RAM_BUFFER, SQE_FIXED_FILE,
};
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Bytes of the stand-in for Dom0's RAM.
const RAM: u64 = 1 << 20;
/// Where the rings go in it.
const RINGS_GPA: u64 = 0x1000;
const RINGS_LEN: u64 = 0x1_0000;
/// Where the stand-in for a foreign window sits in Dom0's space.
const WINDOW_GPA: u64 = 0x1_0000_0000;
const WINDOW_LEN: u64 = 64 << 10;
const DISK_LEN: u64 = 256 << 10;

/// A shared memfd mapping: guest memory, touched only through raw pointers.
struct Memory {
    ptr: *mut u8,
    len: u64,
    _fd: OwnedFd,
}

impl Memory {
    fn new(name: &str, len: u64) -> Self {
        let fd =
            nix::sys::memfd::memfd_create(name, nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
        let file = File::from(fd);
        file.set_len(len).unwrap();
        // SAFETY: a fresh shared mapping of the whole memfd; nothing else
        // refers to the address range it returns.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap memfd");
        Self {
            ptr: ptr.cast(),
            len,
            _fd: file.into(),
        }
    }

    fn host(&self, offset: u64) -> u64 {
        assert!(offset < self.len);
        self.ptr as u64 + offset
    }

    fn fill(&self, offset: u64, bytes: &[u8]) {
        assert!(offset + bytes.len() as u64 <= self.len);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: inside the mapping (checked above).
            unsafe { std::ptr::write_volatile(self.ptr.add(offset as usize + i), *b) };
        }
    }

    fn read(&self, offset: u64, len: usize) -> Vec<u8> {
        assert!(offset + len as u64 <= self.len);
        // SAFETY: inside the mapping (checked above).
        (0..len)
            .map(|i| unsafe { std::ptr::read_volatile(self.ptr.add(offset as usize + i)) })
            .collect()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`; the queues using it are dropped
        // first (the kernel holds its own page references anyway).
        unsafe { libc::munmap(self.ptr.cast(), self.len as usize) };
    }
}

/// A temporary disk image, removed on drop.
struct Disk {
    path: PathBuf,
}

impl Disk {
    fn new() -> (Self, OwnedFd) {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "hyp-hwqueue-test-{}-{}.img",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.set_len(DISK_LEN).unwrap();
        (Self { path }, file.into())
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Dom0's RAM, a window, a disk and a queue over them. Field order is drop
/// order: the queue goes before the memory it uses.
struct Rig {
    queue: HardwareQueue,
    view: QueueView,
    ram: Memory,
    window: Memory,
    disk: Disk,
}

fn ram_buffer(ram: &Memory) -> BufferRegion {
    BufferRegion {
        host_addr: ram.host(0),
        guest_addr: 0,
        len: RAM,
    }
}

/// A queue of `entries` over `file`, its rings in `ram`: RAM in buffer
/// slot 0, an empty window slot 1.
fn queue_config(ram: &Memory, entries: u32, file: OwnedFd) -> HwQueueConfig {
    HwQueueConfig {
        region: RingRegion {
            host_addr: ram.host(RINGS_GPA),
            guest_addr: RINGS_GPA,
            len: RINGS_LEN,
        },
        entries,
        file,
        buffers: vec![Some(ram_buffer(ram)), None],
        notify: QueueNotify {
            doorbell_addr: 0xF000_2000,
            doorbell_value: 7,
            completion_vector: 0x30,
        },
        sq_poll: None,
    }
}

/// Dom0's view of the queue `layout` describes, its rings in `ram`.
///
/// # Safety
///
/// `ram` must outlive the view, and the view be the queue's only one.
unsafe fn view_of(layout: &QueueLayout, ram: &Memory) -> QueueView {
    let at = |gpa: u64| ram.host(gpa) as *mut u8;
    // SAFETY: the layout's areas are inside the RAM mapping (the caller
    // keeps it alive and makes no other view).
    unsafe {
        QueueView::new(
            layout,
            at(layout.sq_ring_gpa),
            at(layout.cq_ring_gpa),
            at(layout.sqes_gpa),
        )
    }
}

impl Rig {
    /// RAM in slot 0, an empty window slot 1, 32 entries.
    fn new() -> Self {
        Self::with_entries(32)
    }

    fn with_entries(entries: u32) -> Self {
        let ram = Memory::new("dom0-ram", RAM);
        let window = Memory::new("foreign-window", WINDOW_LEN);
        let (disk, file) = Disk::new();
        // SAFETY: the ring region and the buffer are the RAM mapping, guest
        // memory reached only through raw pointers, and outlive the queue.
        let queue = unsafe { HardwareQueue::new(queue_config(&ram, entries, file)) }
            .expect("hardware queue");
        // SAFETY: the RAM mapping outlives the view; the only view.
        let view = unsafe { view_of(&queue.layout(), &ram) };
        Self {
            queue,
            view,
            ram,
            window,
            disk,
        }
    }

    fn layout(&self) -> QueueLayout {
        self.queue.layout()
    }

    /// Pushes `sqe`, rings the "doorbell" and waits for its completion.
    fn run(&mut self, sqe: Sqe) -> Cqe {
        self.view.push(&sqe).expect("SQ has room");
        assert_eq!(self.queue.submit().expect("io_uring_enter"), 1);
        self.wait_cqe()
    }

    /// Waits for the next CQE, sleeping on the completion eventfd.
    fn wait_cqe(&mut self) -> Cqe {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(cqe) = self.view.pop() {
                return cqe;
            }
            assert!(Instant::now() < deadline, "no completion within 10 s");
            wait_readable(self.queue.completion_eventfd().as_raw_fd(), 100);
        }
    }

    /// The [`Sqe::addr`] for `len` bytes at `gpa`, and its buffer slot.
    fn io(&self, gpa: u64, len: u64) -> (u16, u64) {
        self.layout()
            .io_addr(gpa, len)
            .expect("inside a fixed buffer")
    }
}

/// Waits up to `ms` for `fd` to become readable; true if it did.
fn wait_readable(fd: i32, ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n == 1 && pfd.revents & libc::POLLIN != 0
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn a_lent_queue_submits_only_when_rung_and_drains_when_taken_back() {
    let ram = Memory::new("dom0-ram", RAM);
    let (disk, file) = Disk::new();
    let data = pattern(8 * 4096, 9);
    std::fs::write(&disk.path, &data).unwrap();
    // SAFETY: the rings and the buffer are the RAM mapping, reached only
    // through raw pointers; it outlives the queue (closed below).
    let lent = unsafe { LentQueue::new(queue_config(&ram, 32, file)) }.expect("lent queue");
    let layout = lent.layout();
    // SAFETY: the RAM mapping outlives the view; the only view.
    let mut view = unsafe { view_of(&layout, &ram) };
    let dst = 0x4_0000;
    for i in 0..8u64 {
        let (slot, addr) = layout.io_addr(dst + i * 4096, 4096).unwrap();
        view.push(&Sqe::read_fixed(slot, addr, 4096, i * 4096, i))
            .unwrap();
    }
    let completions = lent.completion_eventfd().as_raw_fd();
    assert!(
        !wait_readable(completions, 50),
        "nothing is submitted before Dom0 rings"
    );
    assert_eq!(view.cq_ready(), 0);
    lent.doorbell_eventfd().write(1).unwrap();
    let mut done = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while done.len() < 8 {
        assert!(Instant::now() < deadline, "the doorbell thread submitted");
        match view.pop() {
            Some(cqe) => done.push((cqe.user_data, cqe.res)),
            None => {
                wait_readable(completions, 100);
            }
        }
    }
    done.sort_unstable();
    assert_eq!(done, (0..8).map(|i| (i, 4096)).collect::<Vec<_>>());
    assert_eq!(ram.read(dst, data.len()), data);
    assert_eq!(lent.close(), 0, "nothing was left in flight");
}

#[test]
fn write_fsync_read_round_trip_through_ring_memory() {
    let mut rig = Rig::new();
    let data = pattern(8192, 5);
    let (src, dst) = (0x4_0000, 0x8_0000);
    rig.ram.fill(src, &data);

    let (slot, addr) = rig.io(src, data.len() as u64);
    assert_eq!(slot, RAM_BUFFER);
    let cqe = rig.run(Sqe::write_fixed(slot, addr, data.len() as u32, 4096, 11));
    assert_eq!((cqe.user_data, cqe.res), (11, 8192), "write");

    let cqe = rig.run(Sqe::fsync(false, 12));
    assert_eq!((cqe.user_data, cqe.res), (12, 0), "fsync");
    let on_disk = std::fs::read(&rig.disk.path).unwrap();
    assert_eq!(
        &on_disk[4096..4096 + 8192],
        &data[..],
        "the bytes reached the file"
    );

    let (slot, addr) = rig.io(dst, data.len() as u64);
    let cqe = rig.run(Sqe::read_fixed(slot, addr, data.len() as u32, 4096, 13));
    assert_eq!((cqe.user_data, cqe.res), (13, 8192), "read");
    assert_eq!(
        rig.ram.read(dst, data.len()),
        data,
        "read back what was written"
    );

    let cqe = rig.run(Sqe::fsync(true, 14));
    assert_eq!((cqe.user_data, cqe.res), (14, 0), "fdatasync");
}

#[test]
fn a_batch_of_requests_completes_once_each() {
    let mut rig = Rig::new();
    let n = 16u64;
    for i in 0..n {
        rig.ram.fill(0x4_0000 + i * 512, &pattern(512, i as u8));
        let (slot, addr) = rig.io(0x4_0000 + i * 512, 512);
        rig.view
            .push(&Sqe::write_fixed(slot, addr, 512, i * 512, 100 + i))
            .unwrap();
    }
    assert_eq!(
        rig.queue.submit().unwrap(),
        n as u32,
        "one doorbell consumes the batch"
    );
    let mut seen: Vec<u64> = (0..n)
        .map(|_| {
            let cqe = rig.wait_cqe();
            assert_eq!(cqe.res, 512);
            cqe.user_data
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (100..100 + n).collect::<Vec<_>>());
    let on_disk = std::fs::read(&rig.disk.path).unwrap();
    for i in 0..n as usize {
        assert_eq!(&on_disk[i * 512..(i + 1) * 512], &pattern(512, i as u8)[..]);
    }
}

#[test]
fn a_queue_of_many_pages_wraps_around() {
    // 256 entries: a 3-page ring area and a 4-page SQE array, in memfd
    // pages the kernel maps contiguously for itself. Three times round the
    // SQ, with every slot in use each time.
    let mut rig = Rig::with_entries(256);
    let l = rig.layout();
    assert!(l.rings_bytes >= 3 * 4096 && l.sqes_bytes == 256 * 64);
    for round in 0..3u64 {
        for i in 0..256 {
            rig.view.push(&Sqe::nop(round << 16 | i)).unwrap();
        }
        assert!(rig.view.push(&Sqe::nop(0)).is_err(), "SQ full");
        assert_eq!(rig.queue.submit().unwrap(), 256);
        for i in 0..256 {
            let cqe = rig.wait_cqe();
            assert_eq!((cqe.user_data, cqe.res), (round << 16 | i, 0));
        }
    }
}

#[test]
fn disallowed_opcodes_complete_with_eacces() {
    let mut rig = Rig::new();
    let path = b"/etc/hostname\0";
    rig.ram.fill(0x4_0000, path);
    let openat = Sqe {
        opcode: op::OPENAT,
        fd: libc::AT_FDCWD,
        addr: rig.ram.host(0x4_0000),
        user_data: 21,
        ..Sqe::nop(0)
    };
    assert_eq!(rig.run(openat).res, -errno::EACCES, "openat");

    // A vectored read with its iovec in host memory: the kernel would not
    // bound the iovec's address by the fixed buffers, so it is refused.
    let iovec = [rig.ram.host(0x8_0000).to_le_bytes(), 512u64.to_le_bytes()].concat();
    rig.ram.fill(0x5_0000, &iovec);
    let readv = Sqe {
        opcode: op::READV,
        addr: rig.ram.host(0x5_0000),
        len: 1,
        user_data: 22,
        ..Sqe::nop(0)
    };
    let cqe = rig.run(readv);
    assert_eq!((cqe.user_data, cqe.res), (22, -errno::EACCES), "readv");

    const IORING_OP_READ: u8 = 22;
    let read = Sqe {
        opcode: IORING_OP_READ,
        addr: rig.ram.host(0x8_0000),
        len: 512,
        user_data: 23,
        ..Sqe::nop(0)
    };
    assert_eq!(rig.run(read).res, -errno::EACCES, "non-fixed read");

    // The queue still works afterwards.
    assert_eq!(rig.run(Sqe::nop(24)).res, 0);
}

#[test]
fn sqes_must_use_the_fixed_file_and_allowed_flags() {
    let mut rig = Rig::new();
    let (slot, addr) = rig.io(0x4_0000, 512);
    // A raw descriptor (stdin, or the disk's old number) instead of fixed file 0.
    let raw_fd = Sqe {
        flags: 0,
        fd: 0,
        ..Sqe::read_fixed(slot, addr, 512, 0, 31)
    };
    assert_eq!(rig.run(raw_fd).res, -errno::EACCES, "no IOSQE_FIXED_FILE");

    const IOSQE_ASYNC: u8 = 1 << 4;
    const IOSQE_IO_HARDLINK: u8 = 1 << 3;
    const IOSQE_CQE_SKIP_SUCCESS: u8 = 1 << 6;
    for (i, flag) in [IOSQE_ASYNC, IOSQE_IO_HARDLINK, IOSQE_CQE_SKIP_SUCCESS]
        .into_iter()
        .enumerate()
    {
        let sqe = Sqe {
            flags: SQE_FIXED_FILE | flag,
            ..Sqe::read_fixed(slot, addr, 512, 0, 32 + i as u64)
        };
        assert_eq!(rig.run(sqe).res, -errno::EACCES, "flag {flag:#x}");
    }

    let other_file = Sqe {
        fd: 1,
        ..Sqe::read_fixed(slot, addr, 512, 0, 38)
    };
    let res = rig.run(other_file).res;
    assert_eq!(res, -errno::EBADF, "fixed file 1 was never registered");

    assert_eq!(rig.run(Sqe::read_fixed(slot, addr, 512, 0, 39)).res, 512);
}

#[test]
fn transfers_outside_the_fixed_buffers_fail() {
    let mut rig = Rig::new();
    let ram = rig.layout().buffers[RAM_BUFFER as usize];
    let cases = [
        (
            "buffer index past the table",
            Sqe::read_fixed(9, ram.io_addr, 512, 0, 41),
        ),
        (
            "empty window slot",
            Sqe::read_fixed(FIRST_WINDOW_BUFFER, ram.io_addr, 512, 0, 42),
        ),
        (
            "runs past the end of RAM",
            Sqe::read_fixed(RAM_BUFFER, ram.io_addr + RAM - 256, 512, 0, 43),
        ),
        (
            "starts before RAM",
            Sqe::read_fixed(RAM_BUFFER, ram.io_addr - 4096, 512, 0, 44),
        ),
        (
            "host memory elsewhere",
            Sqe::read_fixed(RAM_BUFFER, rig.window.host(0), 512, 0, 45),
        ),
    ];
    for (what, sqe) in cases {
        let cqe = rig.run(sqe);
        assert_eq!(cqe.user_data, sqe.user_data);
        assert!(cqe.res < 0, "{what}: completed with {}", cqe.res);
        assert_eq!(cqe.res, -errno::EFAULT, "{what}");
    }
    assert_eq!(
        rig.window.read(0, 512),
        vec![0; 512],
        "nothing was written outside the buffers"
    );
}

#[test]
fn completions_signal_the_eventfd_unless_dom0_turns_it_off() {
    let mut rig = Rig::new();
    let efd = rig.queue.completion_eventfd().try_clone().unwrap();
    assert!(
        efd.read().is_err(),
        "nothing signalled before any completion"
    );

    assert_eq!(rig.run(Sqe::nop(51)).res, 0);
    assert!(
        wait_readable(efd.as_raw_fd(), 1000),
        "completion signalled the eventfd"
    );
    assert!(rig.queue.completion_eventfd().read().unwrap() >= 1);

    rig.view.set_completion_interrupts(false);
    rig.view.push(&Sqe::nop(52)).unwrap();
    rig.queue.submit().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let cqe = loop {
        if let Some(cqe) = rig.view.pop() {
            break cqe;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(cqe.user_data, 52);
    assert!(
        !wait_readable(rig.queue.completion_eventfd().as_raw_fd(), 100),
        "suppressed"
    );

    rig.view.set_completion_interrupts(true);
    assert_eq!(rig.run(Sqe::nop(53)).res, 0);
    assert!(wait_readable(
        rig.queue.completion_eventfd().as_raw_fd(),
        1000
    ));
}

#[test]
fn a_window_slot_can_be_filled_and_emptied_later() {
    let mut rig = Rig::new();
    let window = BufferRegion {
        host_addr: rig.window.host(0),
        guest_addr: WINDOW_GPA,
        len: WINDOW_LEN,
    };
    // SAFETY: the window mapping is guest memory reached only by raw
    // pointers, and outlives the queue.
    unsafe { rig.queue.set_buffer(FIRST_WINDOW_BUFFER, Some(window)) }.unwrap();
    let data = pattern(4096, 77);
    rig.window.fill(0x1000, &data);
    let (slot, addr) = rig.io(WINDOW_GPA + 0x1000, 4096);
    assert_eq!(slot, FIRST_WINDOW_BUFFER);
    assert_eq!(rig.run(Sqe::write_fixed(slot, addr, 4096, 0, 61)).res, 4096);
    let (slot, addr) = rig.io(0x6_0000, 4096);
    assert_eq!(rig.run(Sqe::read_fixed(slot, addr, 4096, 0, 62)).res, 4096);
    assert_eq!(rig.ram.read(0x6_0000, 4096), data, "window -> disk -> RAM");

    // SAFETY: emptying a slot hands the kernel nothing.
    unsafe { rig.queue.set_buffer(FIRST_WINDOW_BUFFER, None) }.unwrap();
    assert_eq!(rig.layout().io_addr(WINDOW_GPA, 512), None);
    let res = rig
        .run(Sqe::read_fixed(
            FIRST_WINDOW_BUFFER,
            window.host_addr,
            512,
            0,
            63,
        ))
        .res;
    assert_eq!(res, -errno::EFAULT, "the unmapped window is gone");

    // SAFETY: as above.
    let past = unsafe { rig.queue.set_buffer(5, Some(window)) };
    assert!(matches!(past, Err(HwQueueError::BadBuffer { slot: 5, .. })));
}

#[test]
fn the_layout_describes_the_region_and_notification() {
    fn doorbell_thread_can_share<T: Send + Sync>() {}
    doorbell_thread_can_share::<HardwareQueue>();
    let rig = Rig::new();
    let l = rig.layout();
    assert_eq!((l.sq_entries, l.cq_entries), (32, 64));
    assert_eq!((l.sq_ring_gpa, l.cq_ring_gpa), (RINGS_GPA, RINGS_GPA));
    assert_eq!(l.sqes_gpa, RINGS_GPA + l.rings_bytes);
    assert!(l.sqes_gpa + l.sqes_bytes <= RINGS_GPA + RINGS_LEN);
    assert_eq!(rig.queue.region_bytes(), l.rings_bytes + l.sqes_bytes);
    assert_eq!(
        HardwareQueue::region_bytes_for(32).unwrap(),
        rig.queue.region_bytes()
    );
    assert_eq!(l.sq_off.array, 0, "no SQ index array");
    assert_eq!(
        (l.doorbell_addr, l.doorbell_value, l.completion_vector),
        (0xF000_2000, 7, 0x30)
    );
    assert_eq!(l.nr_buffers, 2);
    assert_eq!(
        (l.buffers[0].gpa, l.buffers[0].len, l.buffers[0].io_addr),
        (0, RAM, rig.ram.host(0))
    );
    assert_eq!(l.buffers[1].len, 0);
    // The kernel wrote the ring sizes into the ring memory itself.
    let word =
        |off: u32| u32::from_le_bytes(rig.ram.read(RINGS_GPA + off as u64, 4).try_into().unwrap());
    assert_eq!(word(l.sq_off.ring_entries), 32);
    assert_eq!(word(l.sq_off.ring_mask), 31);
    assert_eq!(word(l.cq_off.ring_entries), 64);
}

#[test]
fn bad_regions_are_refused_before_the_kernel_sees_them() {
    let ram = Memory::new("dom0-ram", RAM);
    let make = |region: RingRegion, entries: u32, buffers: Vec<Option<BufferRegion>>| {
        let (_disk, file) = Disk::new();
        let config = HwQueueConfig {
            region,
            entries,
            file,
            buffers,
            notify: QueueNotify::default(),
            sq_poll: None,
        };
        // SAFETY: every region is inside the RAM mapping, reached only by
        // raw pointers, which outlives any queue made here.
        unsafe { HardwareQueue::new(config) }
    };
    let good = RingRegion {
        host_addr: ram.host(RINGS_GPA),
        guest_addr: RINGS_GPA,
        len: RINGS_LEN,
    };
    let unaligned = RingRegion {
        host_addr: ram.host(RINGS_GPA + 64),
        ..good
    };
    assert!(matches!(
        make(unaligned, 32, vec![]),
        Err(HwQueueError::Unaligned { .. })
    ));
    let small = RingRegion {
        len: 0x1000,
        ..good
    };
    assert!(matches!(
        make(small, 32, vec![]),
        Err(HwQueueError::RegionTooSmall { .. })
    ));
    assert!(matches!(
        make(good, 48, vec![]),
        Err(HwQueueError::BadEntries(48))
    ));
    let huge = BufferRegion {
        len: (1 << 30) + 4096,
        ..ram_buffer(&ram)
    };
    assert!(matches!(
        make(good, 32, vec![Some(huge)]),
        Err(HwQueueError::BadBuffer { .. })
    ));
    assert!(
        make(good, 32, vec![]).is_ok(),
        "a queue without buffers is allowed (it can only nop and fsync)"
    );
}

#[test]
fn anonymous_memory_with_leftovers_works_for_the_rings_too() {
    // Not what the core uses, but the kernel accepts it: the rings need
    // page-aligned memory, not a memfd or a huge page.
    let len = RINGS_LEN as usize;
    // SAFETY: a fresh private anonymous mapping nothing else refers to.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED);
    // Leftovers in the region (Dom0 reusing RAM) must not confuse the
    // queue: the core zeroes the rings before the kernel reads them.
    // SAFETY: the whole mapping is ours and nothing refers to it.
    unsafe { std::ptr::write_bytes(ptr as *mut u8, 0xA5, len) };
    let (_disk, file) = Disk::new();
    let config = HwQueueConfig {
        region: RingRegion {
            host_addr: ptr as u64,
            guest_addr: 0,
            len: RINGS_LEN,
        },
        entries: 8,
        file,
        buffers: vec![],
        notify: QueueNotify::default(),
        sq_poll: None,
    };
    // SAFETY: the mapping is reached only by raw pointers and is unmapped
    // after the queue is dropped.
    let queue = unsafe { HardwareQueue::new(config) }.unwrap();
    let layout = queue.layout();
    let base = ptr as *mut u8;
    // SAFETY: the layout's areas are inside the mapping (gpa 0 = `base`).
    let mut view = unsafe {
        QueueView::new(
            &layout,
            base.add(layout.sq_ring_gpa as usize),
            base.add(layout.cq_ring_gpa as usize),
            base.add(layout.sqes_gpa as usize),
        )
    };
    view.push(&Sqe::nop(1)).unwrap();
    assert_eq!(queue.submit().unwrap(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    let cqe = loop {
        if let Some(cqe) = view.pop() {
            break cqe;
        }
        assert!(Instant::now() < deadline);
        wait_readable(queue.completion_eventfd().as_raw_fd(), 100);
    };
    assert_eq!((cqe.user_data, cqe.res), (1, 0));
    drop(queue);
    // SAFETY: the mapping made above; the queue is gone.
    unsafe { libc::munmap(ptr, len) };
}
