//! How Domain-0 rings its hardware queues' doorbells ([`DoorbellMode`]),
//! and the submit register of the *exit* mode ([`Dom0Doorbells`]).
//!
//! * **thread** (Xen's split model as first built): Domain-0's write to
//!   the event-channel doorbell is an ioeventfd; it wakes the queue's
//!   doorbell thread in `hypd`, which calls `io_uring_enter`. No exit, but
//!   a third thread that needs a CPU while the guest's and Domain-0's
//!   vCPUs both spin: on two CPUs it waits for the scheduler.
//! * **sqpoll**: a kernel thread polls the queues' SQs
//!   (`IORING_SETUP_SQPOLL`, one thread shared by all of Domain-0's disks
//!   through `IORING_SETUP_ATTACH_WQ`), taking Domain-0's SQEs with no
//!   system call while it is awake; Domain-0 rings the thread doorbell
//!   only when the SQ flags say it sleeps (`IORING_SQ_NEED_WAKEUP`), and
//!   the doorbell thread wakes it. The kernel thread is the third thread
//!   again, but one that polls instead of waiting to be woken.
//! * **exit**: Domain-0 writes the queue's port to the submit register
//!   ([`QUEUE_SUBMIT_ADDR`]); the write exits to Domain-0's own vCPU
//!   thread, which submits there and then and resumes Domain-0. One exit
//!   (25–35 µs from ring 3 here, a few µs on hardware virtualization) and
//!   no other thread; a page-cache read completes inside the submit, so
//!   Domain-0 finds its CQE when it resumes.
//!
//! Measured side by side (`xl bench`: three runs of every block workload,
//! docs/io-path.md), the exit doorbell was the fastest or level in every
//! workload, so it is the default.
//!
//! All keep every DMA bounded by the kernel: the ring, its restrictions,
//! fixed file and fixed buffers are the same; only who enters the kernel
//! differs. The mode is taken per queue when the disk is attached.

use hwqueue::{HardwareQueue, QueueTrace};
use hyp::{MmioAccess, MmioHandler};
use protocol::memory::{DOORBELL_ADDR, QUEUE_SUBMIT_ADDR};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Who enters the kernel when Domain-0 rings a hardware queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DoorbellMode {
    /// Domain-0's vCPU thread, on the exit of its write (the default: the
    /// fastest of the three in `xl bench` here).
    #[default]
    Exit,
    /// The queue's doorbell thread, woken by an ioeventfd.
    Thread,
    /// A kernel thread polling the SQ, woken by the doorbell thread when
    /// it sleeps.
    SqPoll,
}

impl DoorbellMode {
    /// Every mode, the default first.
    pub const ALL: [DoorbellMode; 3] = [Self::Exit, Self::Thread, Self::SqPoll];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Thread => "thread",
            Self::Exit => "exit",
            Self::SqPoll => "sqpoll",
        }
    }

    /// The mode named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Where Domain-0 writes to ring a queue lent in this mode.
    pub fn doorbell_addr(self) -> u64 {
        match self {
            Self::Thread | Self::SqPoll => DOORBELL_ADDR,
            Self::Exit => QUEUE_SUBMIT_ADDR,
        }
    }
}

/// A queue rung on the submit register.
struct Registered {
    port: u32,
    queue: Arc<HardwareQueue>,
    trace: QueueTrace,
}

/// Domain-0's doorbells: the mode new queues are lent in (the default
/// until [`Dom0Doorbells::set_mode`]), the submit register's handler,
/// which submits the queue whose port Domain-0 wrote, and the sqpoll
/// queues whose SQ thread a new one shares.
#[derive(Default)]
pub struct Dom0Doorbells {
    mode: AtomicU8,
    queues: Mutex<Vec<Registered>>,
    /// The sqpoll queues, whose SQ thread a new one shares.
    polled: Mutex<Vec<(u32, Arc<HardwareQueue>)>>,
}

impl Dom0Doorbells {
    /// The mode queues lent from now on get.
    pub fn mode(&self) -> DoorbellMode {
        DoorbellMode::ALL[usize::from(self.mode.load(Ordering::Relaxed))]
    }

    /// Lends queues in `mode` from now on (queues lent before keep theirs).
    pub fn set_mode(&self, mode: DoorbellMode) {
        let index = DoorbellMode::ALL.iter().position(|m| *m == mode);
        self.mode.store(index.unwrap_or(0) as u8, Ordering::Relaxed);
    }

    /// A live sqpoll queue, whose SQ thread a new one shares (held by the
    /// caller while it makes the new one, so the ring stays open).
    pub(crate) fn sq_thread(&self) -> Option<Arc<HardwareQueue>> {
        let polled = self.polled.lock().expect("doorbells lock");
        polled.first().map(|(_, queue)| Arc::clone(queue))
    }

    fn queues(&self) -> MutexGuard<'_, Vec<Registered>> {
        self.queues.lock().expect("doorbells lock")
    }

    /// Makes a write of `port` to the submit register submit `queue`
    /// (exit mode), or keeps `queue` for the next sqpoll queue to share its
    /// SQ thread (sqpoll mode).
    pub(crate) fn register(
        &self,
        mode: DoorbellMode,
        port: u32,
        queue: Arc<HardwareQueue>,
        trace: QueueTrace,
    ) {
        match mode {
            DoorbellMode::Exit => self.queues().push(Registered { port, queue, trace }),
            DoorbellMode::SqPoll => self
                .polled
                .lock()
                .expect("doorbells lock")
                .push((port, queue)),
            DoorbellMode::Thread => {}
        }
    }

    /// Forgets the queue of `port` (before it is closed).
    pub(crate) fn unregister(&self, port: u32) {
        self.queues().retain(|r| r.port != port);
        let mut polled = self.polled.lock().expect("doorbells lock");
        polled.retain(|(p, _)| *p != port);
    }
}

impl MmioHandler for Dom0Doorbells {
    fn read(&self, _access: &MmioAccess) -> u64 {
        0
    }

    fn write(&self, access: &MmioAccess, value: u64) {
        if access.offset != 0 || access.size != 4 {
            return;
        }
        let found = self
            .queues()
            .iter()
            .find(|r| u64::from(r.port) == value)
            .map(|r| (Arc::clone(&r.queue), r.trace));
        // Submitted with the lock dropped: a queue unregistered meanwhile
        // lives on in `queue` until this returns.
        if let Some((queue, trace)) = found {
            hwqueue::submit_traced(&queue, Some(&trace));
        }
    }
}
