//! `workload=disk`: write a pattern across the whole disk, flush, read it
//! all back and compare ([`Report::DiskVerify`]), `count=` times (round
//! `r` with seed `seed + r`; once by default), then run the block
//! benchmark ([`crate::bench`]) and power off.
//!
//! Requests are 1 MiB (the last one shorter), four in flight.

use alloc::vec::Vec;

use guest_runtime::time;
use protocol::device::kind;
use protocol::domain::ShutdownReason;
use protocol::report::Report;
use protocol::virtio::blk::SECTOR_SIZE;

use crate::cmdline::Args;
use crate::dma::DmaBuf;
use crate::out::Out;
use crate::outln;
use crate::pattern;
use crate::virtio::{
    self,
    blk::{Blk, BlkError, Op, Request, TIMEOUT_NS},
};

/// Bytes per request of the pattern check.
const CHUNK: u64 = 1 << 20;
/// Requests in flight during the pattern check.
const DEPTH: usize = 4;

/// Opens the guest's first block device, or ends the domain with a crash
/// saying why.
pub fn open(args: &Args, out: Out) -> (Blk, Out) {
    let Some(dev) = virtio::find(kind::BLOCK) else {
        let mut out = out;
        outln!(out, "no block device");
        out.finish(ShutdownReason::Crash, b"workload needs a block device")
    };
    match Blk::open(&dev, args.poll_ns()) {
        Ok(blk) => (blk, out),
        Err(e) => {
            let mut out = out;
            outln!(out, "block device {}: {e}", dev.vdev());
            out.finish(ShutdownReason::Crash, b"block device bring-up failed")
        }
    }
}

/// Prints what the device offers, and its id.
pub fn describe(out: &mut Out, blk: &mut Blk) {
    let info = blk.info();
    let id = match blk.get_id(TIMEOUT_NS) {
        Ok((id, c)) if c.ok() => {
            let len = id.iter().position(|&b| b == 0).unwrap_or(id.len());
            alloc::string::String::from_utf8_lossy(&id[..len]).into_owned()
        }
        Ok((_, c)) => alloc::format!("(get-id status {})", c.status),
        Err(e) => alloc::format!("(get-id failed: {e})"),
    };
    let accesses = blk.transport().accesses();
    let features = blk.transport().features();
    outln!(
        out,
        "{}: {} sectors ({} MiB), id '{}', features {:#x}, queue {}, {}{}{}{}seg_max {}, {} register accesses to set up",
        blk.name(),
        info.capacity,
        info.capacity.saturating_mul(SECTOR_SIZE) >> 20,
        id,
        features,
        info.queue_size,
        if info.read_only { "read-only, " } else { "" },
        if info.flush { "flush, " } else { "" },
        if info.indirect { "indirect, " } else { "" },
        if info.event_idx { "event-idx, " } else { "" },
        info.seg_max,
        accesses
    );
}

/// Runs the workload.
pub fn run(args: &Args) -> ! {
    let (mut blk, mut out) = open(args, Out::open());
    describe(&mut out, &mut blk);
    let seed = args.seed.unwrap_or_else(time::rdtsc);
    for round in 0..args.count.unwrap_or(1).max(1) {
        if blk.info().read_only {
            outln!(out, "{}: read-only, no pattern written", blk.name());
            break;
        }
        if let Err(e) = verify(
            &mut out,
            &mut blk,
            args,
            seed.wrapping_add(u64::from(round)),
        ) {
            outln!(out, "pattern check stopped: {e}");
            out.report(&Report::DiskVerify {
                bytes: 0,
                mismatches: 0,
                ok: false,
            });
            if blk.reinit().is_err() {
                out.finish(ShutdownReason::Crash, b"block device failed")
            }
        }
    }
    crate::bench::run_all(&mut out, &mut blk, args);
    out.finish(ShutdownReason::Poweroff, b"")
}

/// One pass over the disk: write the pattern or read and compare it.
struct Pass {
    op: Op,
    seed: u64,
    total: u64,
    next: u64,
    errors: u64,
    mismatches: u64,
    first_bad: Option<u64>,
}

/// Writes the pattern of `seed` over the disk (or `verify_mib` of it),
/// flushes, reads it back and compares; reports a [`Report::DiskVerify`].
pub fn verify(out: &mut Out, blk: &mut Blk, args: &Args, seed: u64) -> Result<(), BlkError> {
    let mut total = blk.info().capacity;
    if let Some(mib) = args.verify_mib {
        total = total.min(mib.saturating_mul(1 << 20) / SECTOR_SIZE);
    }
    let mut bufs = Vec::with_capacity(DEPTH);
    for _ in 0..DEPTH {
        bufs.push(DmaBuf::new(CHUNK as usize)?);
    }
    let start = time::rdtsc();
    let mut pass = Pass {
        op: Op::Write,
        seed,
        total,
        next: 0,
        errors: 0,
        mismatches: 0,
        first_bad: None,
    };
    pass.run(blk, &mut bufs)?;
    let written_ns = time::ticks_to_ns(time::rdtsc() - start);
    let flushed = if blk.info().flush {
        let c = blk.flush(TIMEOUT_NS)?;
        if !c.ok() {
            pass.errors += 1;
        }
        c.ok()
    } else {
        true
    };
    let read_start = time::rdtsc();
    pass.op = Op::Read;
    pass.next = 0;
    pass.run(blk, &mut bufs)?;
    let read_ns = time::ticks_to_ns(time::rdtsc() - read_start);
    let bytes = total.saturating_mul(SECTOR_SIZE);
    let ok = pass.errors == 0 && pass.mismatches == 0 && flushed;
    outln!(
        out,
        "{}: pattern (seed {seed:#x}) over {} MiB: written in {} ms, read back in {} ms, {} failed requests, {} bytes mismatched{} -> {}",
        blk.name(),
        bytes >> 20,
        written_ns / 1_000_000,
        read_ns / 1_000_000,
        pass.errors,
        pass.mismatches,
        match pass.first_bad {
            Some(s) => alloc::format!(" (first at sector {s})"),
            None => alloc::string::String::new(),
        },
        if ok { "ok" } else { "FAILED" }
    );
    out.report(&Report::DiskVerify {
        bytes,
        mismatches: pass.mismatches,
        ok,
    });
    Ok(())
}

impl Pass {
    /// Streams the whole range through `bufs`, `bufs.len()` requests in
    /// flight; the token of a request is the index of its buffer.
    fn run(&mut self, blk: &mut Blk, bufs: &mut [DmaBuf]) -> Result<(), BlkError> {
        let mut free: Vec<usize> = (0..bufs.len()).collect();
        let mut at: Vec<(u64, u64)> = alloc::vec![(0, 0); bufs.len()];
        let mut done = Vec::with_capacity(bufs.len());
        loop {
            while self.next < self.total {
                let Some(i) = free.pop() else { break };
                let sectors = (self.total - self.next).min(CHUNK / SECTOR_SIZE);
                let len = (sectors * SECTOR_SIZE) as usize;
                let buf = &mut bufs[i];
                match self.op {
                    Op::Write => pattern::fill(&mut buf.bytes_mut()[..len], self.next, self.seed),
                    // Junk, so a read that moves no data cannot pass.
                    _ => buf.bytes_mut()[..len].fill(0xA5),
                }
                let req = Request {
                    op: self.op,
                    sector: self.next,
                    addr: buf.addr(0),
                    len: len as u32,
                    token: i as u64,
                };
                // SAFETY: the buffer is ours, stays allocated for the whole
                // pass, and is not touched until its completion comes back.
                unsafe { blk.submit(&req)? };
                at[i] = (self.next, sectors);
                self.next += sectors;
            }
            if blk.in_flight() == 0 {
                return Ok(());
            }
            done.clear();
            blk.wait(&mut done, TIMEOUT_NS)?;
            // The host sees requests complete (the time of the last).
            guest_runtime::control::set_progress(time::rdtsc());
            for c in &done {
                let i = c.token as usize;
                let (sector, sectors) = at.get(i).copied().unwrap_or((0, 0));
                if !c.ok() {
                    self.errors += 1;
                } else if self.op == Op::Read {
                    let len = (sectors * SECTOR_SIZE) as usize;
                    let m = pattern::verify(&bufs[i].bytes()[..len], sector, self.seed);
                    self.mismatches += m.bytes;
                    if self.first_bad.is_none() {
                        self.first_bad = m.first_sector;
                    }
                }
                free.push(i);
            }
        }
    }
}
