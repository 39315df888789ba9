//! Forwarding a guest's trapped register access to Dom0 through its ioreq
//! slot (see [`protocol::ioreq`]), from the guest vCPU's thread.

use crate::domain::{Domain, Life};
use protocol::ioreq::{
    IoReq, DIR_READ, DIR_WRITE, FLAGS_OFFSET, SLOT_SIZE, STATE_NONE, STATE_READY, STATE_RESP_READY,
    TYPE_MMIO,
};
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, Ordering};
use vmm_sys_util::eventfd::EventFd;

/// How long one wait for Dom0 lasts before the thread looks at the
/// domains' states again.
const WAIT_MS: i32 = 100;

/// One guest vCPU's slot in its ioreq page, and the port wiring.
pub struct IoreqSlot {
    /// Dom0-physical address of the slot.
    pub gpa: u64,
    /// Dom0's port for the slot.
    pub port: u32,
    /// Raises the port in Dom0 (its irqfd).
    pub to_dom0: EventFd,
    /// Signalled when Dom0 sends on the port (its ioeventfd).
    pub from_dom0: EventFd,
}

impl IoreqSlot {
    /// Performs a `size`-byte access at `addr` through Dom0; `write` holds
    /// the data of a write. Returns the data of a read (all-ones if Dom0
    /// does not answer before either domain stops).
    pub fn forward(
        &self,
        dom0: &Domain,
        guest: &Domain,
        addr: u64,
        size: u32,
        write: Option<u64>,
    ) -> u64 {
        let dir = if write.is_some() { DIR_WRITE } else { DIR_READ };
        let request = IoReq {
            addr,
            data: write.unwrap_or(0),
            count: 1,
            size,
            vp_eport: self.port,
            _pad: 0,
            flags: IoReq::flags_for(STATE_NONE, dir),
            kind: TYPE_MMIO,
        };
        dom0.ram.write_struct(self.gpa, &request);
        fence(Ordering::Release);
        // The state moves to READY last, after the rest of the slot.
        dom0.ram.write(
            self.gpa + FLAGS_OFFSET as u64,
            &[IoReq::flags_for(STATE_READY, dir)],
        );
        let _ = self.to_dom0.write(1);
        loop {
            let mut poll = libc::pollfd {
                fd: self.from_dom0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            let ready = unsafe { libc::poll(&mut poll, 1, WAIT_MS) };
            if ready > 0 {
                let _ = self.from_dom0.read();
            }
            fence(Ordering::Acquire);
            if let Some(slot) = dom0.ram.read(self.gpa, SLOT_SIZE as u64) {
                if slot[FLAGS_OFFSET] & 0xF == STATE_RESP_READY {
                    let data = u64::from_le_bytes(slot[8..16].try_into().expect("8 bytes"));
                    dom0.ram.write(
                        self.gpa + FLAGS_OFFSET as u64,
                        &[IoReq::flags_for(STATE_NONE, dir)],
                    );
                    return data;
                }
            }
            let alive = |d: &Domain| d.status().life == Life::Alive;
            if !alive(guest) || !alive(dom0) {
                return u64::MAX;
            }
        }
    }
}
