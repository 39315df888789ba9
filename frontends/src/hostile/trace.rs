//! `workload=tracehostile`: a guest that garbles its own trace ring while
//! it does real block I/O, to show that tracing it hurts no one but its
//! own trace.
//!
//! Between reads (`count=`, default 2000) it writes into its ring, which
//! `hypd` reads: a header claiming the ring is over-full (`next` far past
//! the end, `dropped` near its limit), records that claim to be
//! Domain-0's or the core's, with steps that do not exist, and slots
//! marked as written in the current session but full of noise. Every read
//! must still complete and check out (one `Report::Check`), whatever
//! `xl trace` makes of the ring.

use guest_runtime::trace;
use protocol::domain::ShutdownReason;
use protocol::trace::{Party, Record, RingHeader, HEADER_BYTES};

use crate::cmdline::Args;
use crate::disk;
use crate::dma::DmaBuf;
use crate::out::Out;
use crate::virtio::blk::TIMEOUT_NS;

/// Bytes per read.
const BLOCK: u32 = 4096;

/// Runs the workload.
pub fn run(args: &Args) -> ! {
    let (mut blk, mut out) = disk::open(args, Out::open());
    let Ok(mut buf) = DmaBuf::new(BLOCK as usize) else {
        out.finish(ShutdownReason::Crash, b"out of memory")
    };
    let count = args.count.unwrap_or(2000);
    let mut good = 0;
    for i in 0..count {
        garble(i);
        let sector = u64::from(i % 64) * u64::from(BLOCK / 512);
        if blk
            .read(sector, &mut buf, 0, BLOCK, TIMEOUT_NS)
            .is_ok_and(|c| c.ok())
        {
            good += 1;
        }
    }
    out.check(
        "trace-hostile-reads",
        good == count,
        i64::from(good),
        format_args!("{good} of {count} reads completed while the trace ring was garbled"),
    );
    out.finish(ShutdownReason::Poweroff, b"")
}

/// Writes nonsense over the ring, round `round` of it.
fn garble(round: u32) {
    let Some(base) = trace::ring().map(|r| r.base()) else {
        return;
    };
    let header = base.cast::<RingHeader>();
    // SAFETY: the ring is this domain's own memory (the top of its RAM,
    // outside the heap); the header's words are atomics.
    let session = unsafe { &*header }
        .session
        .load(core::sync::atomic::Ordering::Relaxed);
    let noise = u64::from(round).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for slot in 0..8u64 {
        let record = Record {
            tsc: noise ^ slot,
            request: round,
            domain: (noise >> 16) as u16,
            party: match slot % 3 {
                0 => Party::Dom0 as u8,
                1 => Party::Core as u8,
                _ => 0xEE,
            },
            step: (slot * 37) as u8,
            data: [noise as u32, (noise >> 32) as u32],
            session,
            _pad: 0,
        };
        let at = HEADER_BYTES as u64 + ((noise >> 8) % 1024 + slot) * 32;
        // SAFETY: inside the ring (1032 slots are far below its capacity),
        // this domain's own memory, written volatile as the reader reads.
        unsafe {
            base.add(at as usize)
                .cast::<Record>()
                .write_volatile(record)
        };
    }
    // SAFETY: as above.
    let header = unsafe { &*header };
    header
        .next
        .store(u32::MAX - round, core::sync::atomic::Ordering::Relaxed);
    header
        .dropped
        .store(u32::MAX - 1, core::sync::atomic::Ordering::Relaxed);
}
