//! A block device's backing: its image file behind a hardware queue in
//! Dom0, and the doorbell thread that submits what Dom0 queued.

use super::reserved::Dom0Host;
use crate::hwqueue::{BufferRegion, HardwareQueue, HwQueueConfig, QueueNotify, RingRegion};
use crate::memory::GuestRam;
use protocol::evtchn::port_vector;
use protocol::memory::{DOORBELL_ADDR, PAGE_SIZE};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Longest wait for a removed queue's requests to finish.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Entries in each hardware queue's submission ring.
pub const QUEUE_ENTRIES: u32 = 128;

/// A disk's hardware queue, living until the device is removed.
pub struct Disk {
    pub(super) queue: Arc<HardwareQueue>,
    /// Signalled when Dom0 rings the doorbell (a send on the queue port).
    pub(super) doorbell: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Dom0-physical address of the ring region and its page count.
    pub(super) region: (u64, usize),
    /// Dom0-physical address of the page holding the queue layout.
    pub(super) layout_page: u64,
}

/// Where the foreign window of the disk's guest sits.
pub struct WindowBuffer {
    /// Host address of the guest's RAM.
    pub host: u64,
    /// Its Dom0-physical base.
    pub dom0: u64,
    /// Its length.
    pub len: u64,
}

impl Disk {
    /// Builds the hardware queue for `file` in Dom0's reserved RAM, with
    /// Dom0's RAM and the guest's window as its fixed buffers.
    pub fn new(
        host: &mut Dom0Host,
        dom0: &GuestRam,
        file: OwnedFd,
        window: &WindowBuffer,
    ) -> Result<Self, String> {
        let bytes = HardwareQueue::region_bytes_for(QUEUE_ENTRIES).map_err(|e| e.to_string())?;
        let pages = bytes.div_ceil(PAGE_SIZE) as usize;
        let region = host
            .alloc_pages(dom0, pages)
            .ok_or("Domain-0's reserved RAM is full")?;
        let Some(layout_page) = host.alloc_pages(dom0, 1) else {
            host.free(region, pages);
            return Err("Domain-0's reserved RAM is full".into());
        };
        let config = HwQueueConfig {
            region: RingRegion {
                host_addr: dom0.host_address() + region,
                guest_addr: region,
                len: bytes,
            },
            entries: QUEUE_ENTRIES,
            file,
            buffers: vec![
                Some(BufferRegion {
                    host_addr: dom0.host_address(),
                    guest_addr: 0,
                    len: host.reserved_start,
                }),
                Some(BufferRegion {
                    host_addr: window.host,
                    guest_addr: window.dom0,
                    len: window.len,
                }),
            ],
            notify: QueueNotify {
                doorbell_addr: DOORBELL_ADDR,
                doorbell_value: 0,
                completion_vector: 0,
            },
        };
        // SAFETY: the ring region is reserved Dom0 RAM nothing else uses, and
        // both buffers are guest memory that no Rust reference covers; they
        // outlive the queue (it is dropped before either domain's RAM).
        let queue = match unsafe { HardwareQueue::new(config) } {
            Ok(queue) => Arc::new(queue),
            Err(e) => {
                host.free(region, pages);
                host.free(layout_page, 1);
                return Err(format!("hardware queue: {e}"));
            }
        };
        let doorbell = Arc::new(EventFd::new(EFD_NONBLOCK).map_err(|e| e.to_string())?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (queue, doorbell, stop) =
                (Arc::clone(&queue), Arc::clone(&doorbell), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("hwq-doorbell".into())
                .spawn(move || ring_doorbells(&queue, &doorbell, &stop))
                .map_err(|e| e.to_string())?
        };
        Ok(Self {
            queue,
            doorbell,
            stop,
            thread: Some(thread),
            region: (region, pages),
            layout_page,
        })
    }

    /// Writes the queue's layout into Dom0's RAM, naming `port` as its
    /// doorbell and completion port.
    pub fn publish_layout(&self, dom0: &GuestRam, port: u32) {
        let mut layout = self.queue.layout();
        layout.doorbell_value = port;
        layout.completion_vector = port_vector(port) as u32;
        dom0.write_struct(self.layout_page, &layout);
    }

    /// Stops the doorbell thread, lets the requests the kernel already
    /// took finish, closes the queue and gives its pages back.
    ///
    /// An io_uring is torn down asynchronously: requests still in flight
    /// when it closes post their completions into the ring memory later.
    /// Waiting for them here (bounded), and quarantining the pages for a
    /// moment, keeps a closing queue from writing into the next queue that
    /// gets the same pages.
    pub fn remove(mut self, host: &mut Dom0Host, dom0: &GuestRam) {
        self.stop.store(true, Ordering::Release);
        let _ = self.doorbell.write(1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let layout = self.queue.layout();
        let read = |gpa: u64| dom0.read_u32(gpa).unwrap_or(0);
        let in_flight = || {
            let taken = read(layout.sq_ring_gpa + layout.sq_off.head as u64);
            let done = read(layout.cq_ring_gpa + layout.cq_off.tail as u64);
            let lost = read(layout.cq_ring_gpa + layout.cq_off.overflow as u64);
            taken.wrapping_sub(done).wrapping_sub(lost)
        };
        let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
        while in_flight() != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if in_flight() != 0 {
            tracing::warn!(
                "hardware queue closed with {} requests in flight",
                in_flight()
            );
        }
        drop(self.queue);
        host.quarantine(self.region.0, self.region.1);
        host.quarantine(self.layout_page, 1);
    }
}

/// The doorbell thread: each time Dom0 rings, submit what it queued. This
/// host thread is the "hardware" of Dom0's disk.
fn ring_doorbells(queue: &HardwareQueue, doorbell: &EventFd, stop: &AtomicBool) {
    use std::os::fd::AsRawFd;
    loop {
        let mut poll = libc::pollfd {
            fd: doorbell.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut poll, 1, -1) };
        let _ = doorbell.read();
        if stop.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = queue.submit() {
            tracing::warn!("hardware queue submit: {e}");
        }
    }
}
