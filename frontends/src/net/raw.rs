//! A stack's device used directly, bypassing smoltcp: for the workloads
//! that send frames the stack never would (forged, flooding, malformed)
//! and for finding a peer's MAC address by hand.
//!
//! Frames received while a workload reads the device itself are its own:
//! the stack does not see them.

use guest_runtime::time;

use super::frames::{arp_reply_from, Frame, BROADCAST};
use super::stack::Stack;
use crate::virtio::net::Net;

/// How long one ARP request waits for its reply.
const ARP_TIMEOUT_NS: u64 = 1_000_000_000;

impl Stack {
    /// The device.
    pub fn net(&mut self) -> &mut Net {
        &mut self.net
    }

    /// This interface's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.net.info().mac
    }

    /// Waits (adaptive spin, then sleep) until the device has a frame or
    /// returned buffers the driver is short of, or the TSC reaches
    /// `deadline`; the stack's timers do not end it.
    fn wait_device(&mut self, deadline: u64) {
        let port = self.net.irq_port();
        self.poll.wait_on(&mut self.net, port, deadline);
    }

    /// Sends `frame` straight through the driver, waiting until the TSC
    /// reaches `deadline` for a free transmit buffer (a rate limit holds
    /// buffers back); false if none came. The frame is published with
    /// the next batch or [`Net::flush`].
    pub fn send_raw(&mut self, frame: &Frame, deadline: u64) -> bool {
        loop {
            if let Some(tx) = self.net.take_tx() {
                tx.send(frame.len(), |buf| frame.emit(buf));
                return true;
            }
            self.net.flush();
            if time::rdtsc() >= deadline {
                return false;
            }
            self.wait_device(deadline);
        }
    }

    /// Asks who has `ip` with a broadcast ARP request (up to `tries`
    /// times) and returns the MAC address of the first reply. Frames
    /// that are not that reply are dropped meanwhile.
    pub fn resolve(&mut self, ip: [u8; 4], tries: u32) -> Option<[u8; 6]> {
        let (mac, own) = (self.mac(), self.id.ipv4.0);
        let request = Frame::Arp {
            eth_src: mac,
            eth_dst: BROADCAST,
            reply: false,
            sender: (mac, own),
            target: ([0; 6], ip),
        };
        for _ in 0..tries {
            let deadline = time::rdtsc() + time::ns_to_ticks(ARP_TIMEOUT_NS);
            if !self.send_raw(&request, deadline) {
                continue;
            }
            self.net.flush();
            while time::rdtsc() < deadline {
                while let Some(rx) = self.net.take_rx() {
                    if let Some(found) = arp_reply_from(rx.bytes(), ip) {
                        return Some(found);
                    }
                }
                self.net.flush();
                self.wait_device(deadline);
            }
        }
        None
    }
}
