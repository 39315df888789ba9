//! `workload=durable`: a flush-heavy writer, for the test that kills the
//! daemon under it.
//!
//! Round `r` writes the pattern ([`crate::pattern`], seeded with `seed=`)
//! over the [`ROUND_BYTES`] at `r * ROUND_BYTES`, as [`DEPTH`] requests in
//! flight, then flushes. When the flush completes the round is on stable
//! storage, and the workload prints `durable: flushed through byte B`
//! (every byte from the start of the disk to `B`). A test that sees that
//! line may kill the host at any time after and must still find those
//! bytes in the image. At the end of the disk (or after `count=` rounds)
//! the domain powers off.

use alloc::vec::Vec;

use guest_runtime::time;
use protocol::domain::ShutdownReason;
use protocol::virtio::blk::SECTOR_SIZE;

use crate::cmdline::Args;
use crate::disk;
use crate::dma::DmaBuf;
use crate::out::Out;
use crate::outln;
use crate::pattern;
use crate::virtio::blk::{Blk, BlkError, Op, Request, TIMEOUT_NS};

/// Requests in flight in a round.
const DEPTH: usize = 4;
/// Bytes of one request.
const REQUEST_BYTES: u64 = 4096;
/// Bytes one round writes.
const ROUND_BYTES: u64 = DEPTH as u64 * REQUEST_BYTES;

/// Runs the workload.
pub fn run(args: &Args) -> ! {
    let (mut blk, mut out) = disk::open(args, Out::open());
    let seed = args.seed.unwrap_or_else(time::rdtsc);
    if !blk.info().flush {
        outln!(out, "durable: {} has no flush", blk.name());
        out.finish(ShutdownReason::Crash, b"durable needs a disk with flush")
    }
    let disk_rounds = blk.info().capacity * SECTOR_SIZE / ROUND_BYTES;
    let rounds = args
        .count
        .map_or(disk_rounds, |n| disk_rounds.min(n.into()));
    outln!(
        out,
        "durable: seed {seed:#x}, {rounds} rounds of {ROUND_BYTES} bytes"
    );
    match write_rounds(&mut out, &mut blk, seed, rounds) {
        Ok(()) => {
            outln!(out, "durable: done");
            out.finish(ShutdownReason::Poweroff, b"")
        }
        Err(e) => {
            outln!(out, "durable: stopped: {e}");
            out.finish(ShutdownReason::Crash, b"durable: a request failed")
        }
    }
}

/// Why the rounds stopped.
enum Failure {
    /// The driver or the queue failed.
    Blk(BlkError),
    /// The device completed a request with an error status.
    Status(Op, u8),
}

impl From<BlkError> for Failure {
    fn from(e: BlkError) -> Self {
        Self::Blk(e)
    }
}

impl From<crate::dma::OutOfMemory> for Failure {
    fn from(e: crate::dma::OutOfMemory) -> Self {
        Self::Blk(e.into())
    }
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Blk(e) => write!(f, "{e}"),
            Self::Status(op, status) => write!(f, "a {op:?} completed with status {status}"),
        }
    }
}

/// Writes and flushes `rounds` rounds, printing each one flushed.
fn write_rounds(out: &mut Out, blk: &mut Blk, seed: u64, rounds: u64) -> Result<(), Failure> {
    let mut bufs = Vec::with_capacity(DEPTH);
    for _ in 0..DEPTH {
        bufs.push(DmaBuf::new(REQUEST_BYTES as usize)?);
    }
    let mut done = Vec::with_capacity(DEPTH);
    for round in 0..rounds {
        for (i, buf) in bufs.iter_mut().enumerate() {
            let offset = round * ROUND_BYTES + i as u64 * REQUEST_BYTES;
            pattern::fill(buf.bytes_mut(), offset / SECTOR_SIZE, seed);
            let req = Request {
                op: Op::Write,
                sector: offset / SECTOR_SIZE,
                addr: buf.addr(0),
                len: REQUEST_BYTES as u32,
                token: i as u64,
            };
            // SAFETY: the buffer is ours, outlives the round, and is not
            // touched again until every completion of the round is in.
            unsafe { blk.submit(&req)? };
        }
        let mut completed = 0;
        while completed < DEPTH {
            done.clear();
            blk.wait(&mut done, TIMEOUT_NS)?;
            if let Some(bad) = done.iter().find(|c| !c.ok()) {
                return Err(Failure::Status(Op::Write, bad.status));
            }
            completed += done.len();
        }
        let flush = blk.flush(TIMEOUT_NS)?;
        if !flush.ok() {
            return Err(Failure::Status(Op::Flush, flush.status));
        }
        outln!(
            out,
            "durable: flushed through byte {}",
            (round + 1) * ROUND_BYTES
        );
    }
    Ok(())
}
