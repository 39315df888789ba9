//! `workload=netflood [count=N]`: a guest that broadcasts as fast as its
//! device takes frames, so that tests can check that a vif's `rate=`
//! holds it back and that the switch, the host and the other guests stay
//! responsive.
//!
//! Each frame is [`FRAME_BYTES`] bytes to `ff:ff:ff:ff:ff:ff` from the
//! guest's own MAC (so nothing about it is spoofed), of the local
//! experimental ethertype `0x88b5`, its payload starting with its
//! sequence number. It sends `count=` frames, or until asked to shut
//! down; meanwhile it keeps serving (the stack is polled between
//! batches) and obeys a shutdown request between frames. The console
//! shows:
//!
//! ```text
//! netflood: broadcasting 1514-byte frames from 00:16:3e:00:00:05, 100000 of them
//! netflood: 81234 frames sent
//! netflood: sent 100000 frames (151400000 bytes) in 1234 ms: 81037 frames/s, 981 Mbit/s
//! ```
//!
//! (the first line ends `until shut down` without `count=`), a progress
//! line every [`PROGRESS_NS`] (the count so far), and the last line when
//! `count=` frames are sent or a shutdown request is seen between frames,
//! which is then obeyed. After `count=` frames it serves like `idle`. The
//! progress counter of the shared page is the number of frames sent.

use guest_runtime::{control, event, time};

use crate::cmdline::Args;
use crate::net::frames::{Frame, MacText, BROADCAST};
use crate::net::{self, Stack};
use crate::netbench::deadline;
use crate::out::Out;
use crate::outln;
use crate::virtio::wait::Waitable;

/// Bytes of each frame: the largest an MTU of 1500 allows, untagged.
pub const FRAME_BYTES: usize = 1514;
/// Nanoseconds between progress lines.
pub const PROGRESS_NS: u64 = 1_000_000_000;
/// Frames between looks at the control request and the stack.
const BATCH: u64 = 64;

/// Runs the workload, then serves until shut down.
pub fn run(args: &Args) -> ! {
    let mut out = Out::open();
    if net::with(|stack| flood(&mut out, stack, args.count)).is_none() {
        outln!(out, "netflood: no network device; nothing to send");
    }
    out.drain();
    crate::idle(args)
}

/// Broadcasts `count` frames (without end if `None`), reporting as it
/// goes; a shutdown request is obeyed once the final line is out.
fn flood(out: &mut Out, stack: &mut Stack, count: Option<u32>) {
    let mac = stack.mac();
    match count {
        Some(n) => outln!(
            out,
            "netflood: broadcasting {FRAME_BYTES}-byte frames from {}, {n} of them",
            MacText(mac)
        ),
        None => outln!(
            out,
            "netflood: broadcasting {FRAME_BYTES}-byte frames from {}, until shut down",
            MacText(mac)
        ),
    }
    let limit = count.map_or(u64::MAX, u64::from);
    let start = time::rdtsc();
    let mut report_at = deadline(PROGRESS_NS);
    let mut sent = 0u64;
    let mut stop = false;
    while sent < limit && !stop {
        let frame = Frame::Filler {
            eth_src: mac,
            eth_dst: BROADCAST,
            len: FRAME_BYTES,
            seq: sent,
        };
        let net = stack.net();
        let sent_one = net
            .take_tx()
            .map(|tx| tx.send(frame.len(), |buf| frame.emit(buf)))
            .is_some();
        if !sent_one {
            // A rate limit holds buffers back: sleep until some come back,
            // a request comes or the next progress line is due (not
            // through the stack's waits, which would obey a shutdown
            // before the last line is out).
            net.flush();
            if !net.arm() {
                let _ = event::wait_until(report_at);
            }
            net.disarm();
        }
        sent += u64::from(sent_one);
        if !sent_one || sent.is_multiple_of(BATCH) {
            stop = control::pending();
            stack.poll_if_due();
            control::set_progress(sent);
            if time::rdtsc() >= report_at {
                outln!(out, "netflood: {sent} frames sent");
                report_at = deadline(PROGRESS_NS);
            }
        }
    }
    stack.net().flush();
    let ns = time::ticks_to_ns(time::rdtsc() - start).max(1);
    let bytes = sent * FRAME_BYTES as u64;
    outln!(
        out,
        "netflood: sent {sent} frames ({bytes} bytes) in {} ms: {} frames/s, {} Mbit/s",
        ns / 1_000_000,
        sent.saturating_mul(1_000_000_000) / ns,
        bytes.saturating_mul(8_000) / ns
    );
    control::set_progress(sent);
    if stop {
        out.drain();
        control::obey("frontends");
    }
}
