//! Ioreq forwarding, the mechanism: a guest's trapped register accesses
//! carried to Domain-0 through ioreq slots (see [`protocol::ioreq`]), as
//! Xen's ioreq servers carry an HVM guest's to its device model.
//!
//! An [`IoreqServer`] is one guest's ioreq page in Dom0's reserved RAM
//! (one slot per guest vCPU) and one Dom0 port per slot. It is an
//! [`MmioHandler`]: whoever sets the guest's devices up registers it for
//! the ranges Dom0 serves, and an access there is written into the vCPU's
//! slot, the slot's port is raised in Dom0, and the vCPU thread waits for
//! Dom0's answer. The core never decodes the access.

use crate::domain::{Domain, Life};
use crate::error::{Error, Result};
use crate::mmio::{MmioAccess, MmioHandler};
use crate::reserved::{ReservedPages, ReservedRam};
use crate::state::{Core, Requeue};
use protocol::domain::DOM0;
use protocol::ioreq::{
    state_of, with_state, IoReq, DATA_OFFSET, DIR_READ, DIR_WRITE, FLAGS_OFFSET, SLOT_SIZE,
    STATE_INPROCESS, STATE_NONE, STATE_READY, STATE_RESP_READY, TYPE_MMIO, VP_EPORT_OFFSET,
};
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// How long one wait for Dom0 lasts before the thread looks at the
/// domains' states again.
const WAIT_MS: i32 = 100;

/// One guest vCPU's slot in the ioreq page, and its port's wiring.
struct IoreqSlot {
    /// Dom0-physical address of the slot.
    gpa: u64,
    /// Dom0's port for the slot.
    port: u32,
    /// Raises the port in Dom0 (its irqfd).
    to_dom0: EventFd,
    /// Signalled when Dom0 sends on the port (its ioeventfd).
    from_dom0: EventFd,
}

/// Forwards a guest's accesses to Dom0 through ioreq slots. Dropping it
/// closes Dom0's slot ports and gives the page back.
///
/// The server outlives a Domain-0 restart: its page and ports are the
/// core's, and a vCPU waiting for an answer keeps waiting while a Domain-0
/// exists. When Domain-0 restarts, the core holds every access the old
/// one had not answered, and each new one, until the new one has heard of
/// every device again: then they are made ready for it to serve. (Served
/// earlier, an access to a device not yet replayed would meet no device.)
pub struct IoreqServer {
    core: Weak<Core>,
    /// Dom0's reserved RAM, where the page is.
    reserved: Arc<ReservedRam>,
    /// The guest (its ranges hold this server: a strong reference back
    /// would keep both alive for ever).
    guest: Weak<Domain>,
    page: ReservedPages,
    slots: Vec<IoreqSlot>,
    /// While Domain-0 restarts, the slots whose access waits to be handed
    /// to the new one; `None` hands each access over at once.
    held: Mutex<Option<Vec<usize>>>,
}

impl IoreqServer {
    /// A server for `guest`: a page of Dom0's reserved RAM and a Dom0 port
    /// per guest vCPU.
    pub(crate) fn new(
        core: &Arc<Core>,
        reserved: &Arc<ReservedRam>,
        guest: &Arc<Domain>,
    ) -> Result<Self> {
        let page = reserved.alloc(1).ok_or(Error::ReservedFull(1))?;
        let mut server = Self {
            core: Arc::downgrade(core),
            reserved: Arc::clone(reserved),
            guest: Arc::downgrade(guest),
            page,
            slots: Vec::new(),
            held: Mutex::new(None),
        };
        for vcpu in 0..guest.vcpu_count as usize {
            let to_dom0 = EventFd::new(EFD_NONBLOCK)?;
            let from_dom0 = EventFd::new(EFD_NONBLOCK)?;
            // On failure `server` drops and closes the ports made so far.
            let port = core
                .evtchn()
                .bind_eventfd(DOM0, Some(&to_dom0), Some(&from_dom0))?;
            let gpa = server.page.gpa() + (vcpu * SLOT_SIZE) as u64;
            // Dom0 learns each slot's port from the slot, as in Xen. The
            // page is Dom0's reserved RAM, so the write cannot miss.
            let written = server
                .reserved
                .ram
                .write_u32(gpa + VP_EPORT_OFFSET as u64, port);
            debug_assert!(written, "ioreq slot outside Dom0's RAM");
            server.slots.push(IoreqSlot {
                gpa,
                port,
                to_dom0,
                from_dom0,
            });
        }
        Ok(server)
    }

    /// Dom0-physical address of the ioreq page (slot `i` for vCPU `i`).
    pub fn page_gpa(&self) -> u64 {
        self.page.gpa()
    }

    /// Slots in the page: one per guest vCPU, each holding its Dom0 port
    /// in `vp_eport`.
    pub fn slot_count(&self) -> u32 {
        self.slots.len() as u32
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<Vec<usize>>> {
        self.held.lock().expect("held ioreqs lock")
    }

    /// Makes slot `index` ready (its request written) and raises its port
    /// in Domain-0.
    fn hand_over(&self, index: usize) {
        let slot = &self.slots[index];
        let flags_at = slot.gpa + FLAGS_OFFSET as u64;
        let flags = self.reserved.ram.read(flags_at, 1).map_or(0, |b| b[0]);
        fence(Ordering::Release);
        // The state moves to READY last, after the rest of the slot.
        self.reserved
            .ram
            .write(flags_at, &[with_state(flags, STATE_READY)]);
        let _ = slot.to_dom0.write(1);
    }

    /// Domain-0 stopped and a new one is being made: every slot whose
    /// access the old one had not answered (ready, or taken and in
    /// process) is taken back from Domain-0's view, and accesses are held
    /// until [`IoreqServer::hand_over_held`]. The old Domain-0 is stopped
    /// and the new one not yet running, so neither reads the page
    /// meanwhile. Returns how many accesses were waiting.
    fn hold_slots(&self) -> usize {
        let ram = &self.reserved.ram;
        let mut held = self.held();
        let list = held.get_or_insert_with(Vec::new);
        let before = list.len();
        for (index, slot) in self.slots.iter().enumerate() {
            let flags_at = slot.gpa + FLAGS_OFFSET as u64;
            let flags = ram.read(flags_at, 1).map_or(0, |b| b[0]);
            ram.write_u32(slot.gpa + VP_EPORT_OFFSET as u64, slot.port);
            if matches!(state_of(flags), STATE_READY | STATE_INPROCESS) {
                ram.write(flags_at, &[with_state(flags, STATE_NONE)]);
                if !list.contains(&index) {
                    list.push(index);
                }
            }
        }
        list.len() - before
    }

    /// Hands every held access to Domain-0, and each new one from now on.
    fn hand_over_held(&self) {
        let mut held = self.held();
        for index in held.take().unwrap_or_default() {
            self.hand_over(index);
        }
    }

    /// Forwards `access` (a write of `write`, or a read) and counts it and
    /// its time in the guest's counters. Returns the data of a read
    /// (all-ones if the guest stops, or no Domain-0 is left to answer).
    fn forward_counted(&self, access: &MmioAccess, write: Option<u64>) -> u64 {
        let index = access.vcpu as usize;
        let Some(guest) = self.guest.upgrade().filter(|_| index < self.slots.len()) else {
            return u64::MAX;
        };
        guest.counters.ioreqs.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let value = self.forward(index, &guest, access, write);
        let took = started.elapsed().as_nanos() as u64;
        guest.counters.ioreq_ns.fetch_add(took, Ordering::Relaxed);
        value
    }

    /// Writes `guest`'s access into `slot`, raises its port and waits for
    /// Dom0.
    fn forward(
        &self,
        index: usize,
        guest: &Domain,
        access: &MmioAccess,
        write: Option<u64>,
    ) -> u64 {
        let ram = &self.reserved.ram;
        let slot = &self.slots[index];
        let dir = if write.is_some() { DIR_WRITE } else { DIR_READ };
        let request = IoReq {
            addr: access.addr,
            data: write.unwrap_or(0),
            count: 1,
            size: u32::from(access.size),
            vp_eport: slot.port,
            _pad: 0,
            flags: IoReq::flags_for(STATE_NONE, dir),
            kind: TYPE_MMIO,
        };
        let flags_at = slot.gpa + FLAGS_OFFSET as u64;
        ram.write_struct(slot.gpa, &request);
        {
            let mut held = self.held();
            match held.as_mut() {
                Some(list) => list.push(index),
                None => self.hand_over(index),
            }
        }
        loop {
            let mut poll = libc::pollfd {
                fd: slot.from_dom0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            let ready = unsafe { libc::poll(&mut poll, 1, WAIT_MS) };
            if ready > 0 {
                let _ = slot.from_dom0.read();
            }
            fence(Ordering::Acquire);
            let flags = ram.read(flags_at, 1).map_or(0, |b| b[0]);
            if state_of(flags) == STATE_RESP_READY {
                let data = ram.read_u64(slot.gpa + DATA_OFFSET as u64).unwrap_or(0);
                ram.write(flags_at, &[IoReq::flags_for(STATE_NONE, dir)]);
                return data;
            }
            // While Domain-0 restarts, the access waits for the new one.
            let dom0_exists = self.core.upgrade().is_some_and(|c| c.find(DOM0).is_some());
            if guest.status().life != Life::Alive || !dom0_exists {
                return u64::MAX;
            }
        }
    }
}

impl MmioHandler for IoreqServer {
    fn read(&self, access: &MmioAccess) -> u64 {
        self.forward_counted(access, None)
    }

    fn write(&self, access: &MmioAccess, value: u64) {
        self.forward_counted(access, Some(value));
    }
}

impl Requeue for IoreqServer {
    fn hold(&self) -> usize {
        self.hold_slots()
    }

    fn requeue(&self) {
        self.hand_over_held();
    }
}

impl Drop for IoreqServer {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade() {
            let mut channels = core.evtchn();
            for slot in &self.slots {
                let _ = channels.close(DOM0, slot.port);
            }
        }
    }
}
