//! The block benchmark: 4 KiB random reads at depth 1 and 32, 4 KiB random
//! writes at depth 1 (alone, and each followed by a flush), 1 MiB
//! sequential reads and writes at depth 4. Each run is bounded by the
//! `bench=` time budget and by `count=` requests, and is reported as a
//! [`Report::BlockBench`] with per-request latency (submit to harvest, by
//! the guest's TSC; for a write with a flush, the write's submission to
//! the flush's completion), its histogram, the device interrupts the guest
//! took and the doorbells it rang. `runs=` picks some of the runs.
//!
//! Completions are harvested in batches and their replacements submitted
//! together, so one doorbell (if the device asks for one at all) covers
//! several requests.

use alloc::vec::Vec;

use guest_runtime::{control, time};
use protocol::bench::{Workload, WORKLOADS};
use protocol::report::{heapless_name::Name, BlockBench, LatencyHistogram, Report};
use protocol::virtio::blk::SECTOR_SIZE;

use crate::cmdline::Args;
use crate::dma::DmaBuf;
use crate::out::Out;
use crate::outln;
use crate::stats::{summarize, Rng};
use crate::virtio::blk::TIMEOUT_NS;
use crate::virtio::blk::{Blk, BlkError, Op, Request};

/// Most latency samples kept per run.
const MAX_SAMPLES: usize = 1 << 20;

/// Runs every benchmark the device allows (no writes on a read-only disk).
pub fn run_all(out: &mut Out, blk: &mut Blk, args: &Args) {
    let budget = args.bench.run_ns();
    if budget == 0 {
        return;
    }
    let max_ops = args.count.map_or(u64::MAX, u64::from);
    for spec in WORKLOADS.iter().filter(|spec| args.wants_run(spec.name)) {
        if spec.write && blk.info().read_only {
            outln!(out, "bench {}: skipped, the disk is read-only", spec.name);
            continue;
        }
        match run(blk, spec, max_ops, budget) {
            Ok(Some((result, failed))) => {
                print(out, &result);
                if failed > 0 {
                    outln!(out, "bench {}: {failed} requests FAILED", spec.name);
                }
                out.report(&Report::BlockBench(result));
            }
            Ok(None) => outln!(out, "bench {}: skipped, the disk is too small", spec.name),
            Err(e) => {
                outln!(out, "bench {}: {e}", spec.name);
                if let Err(e) = blk.reinit() {
                    outln!(out, "bench: device lost: {e}");
                    return;
                }
            }
        }
        control::set_progress(time::rdtsc());
    }
    let poll = blk.poll_stats();
    outln!(
        out,
        "bench: adaptive poll now spins {} us; {} waits answered while spinning, {} slept",
        poll.spin_ns() / 1000,
        poll.spin_hits,
        poll.sleeps
    );
}

fn print(out: &mut Out, r: &BlockBench) {
    let us = r.elapsed_ns.max(1) / 1000;
    outln!(
        out,
        "bench {}: {} ops, {} KiB in {} ms: {} IOPS, {} MiB/s; latency median {} us, p99 {} us, max {} us; {} interrupts, {} notifies",
        r.workload.as_str(),
        r.ops,
        r.bytes >> 10,
        us / 1000,
        r.ops * 1_000_000 / us.max(1),
        (r.bytes.saturating_mul(1_000_000) / us.max(1)) >> 20,
        r.latency.median_ns / 1000,
        r.latency.p99_ns / 1000,
        r.latency.max_ns / 1000,
        r.interrupts,
        r.notifies
    );
}

/// Runs `spec`; `None` if the disk holds not even one request's worth.
/// Also returns how many requests completed with an error status. One
/// function because the submit-and-reap loop is the hot path being
/// measured: split across calls, its timing would include their cost.
fn run(
    blk: &mut Blk,
    spec: &Workload,
    max_ops: u64,
    budget_ns: u64,
) -> Result<Option<(BlockBench, u64)>, BlkError> {
    let per_req = u64::from(spec.size) / SECTOR_SIZE;
    let blocks = blk.info().capacity / per_req;
    if blocks == 0 || max_ops == 0 {
        return Ok(None);
    }
    let depth = spec.depth.min(blk.room()).max(1);
    let mut bufs = Vec::with_capacity(depth);
    for i in 0..depth {
        let mut buf = DmaBuf::new(spec.size as usize)?;
        buf.bytes_mut().fill(i as u8 ^ 0x5A);
        bufs.push(buf);
    }
    let mut rng = Rng::new(time::rdtsc());
    let mut next_block = 0u64;
    let mut pick = |rng: &mut Rng| {
        if spec.random {
            rng.below(blocks)
        } else {
            let b = next_block % blocks;
            next_block += 1;
            b
        }
    };
    let mut samples = Vec::with_capacity((max_ops as usize).min(4096));
    let mut done = Vec::with_capacity(depth);
    blk.collect_interrupts();
    let (irq0, notify0) = (blk.poll_stats().interrupts, blk.notifies());
    let start = time::rdtsc();
    let end = start + time::ns_to_ticks(budget_ns);
    let (mut submitted, mut completed, mut errors) = (0u64, 0u64, 0u64);
    let mut free: Vec<usize> = (0..depth).collect();
    let mut flushing = alloc::vec![false; depth];
    let mut pair_ticks = alloc::vec![0u64; depth];
    let mut histogram = LatencyHistogram::default();
    loop {
        let stop = submitted >= max_ops || time::rdtsc() >= end;
        while !stop && submitted < max_ops {
            let Some(i) = free.pop() else { break };
            let req = Request {
                op: if spec.write { Op::Write } else { Op::Read },
                sector: pick(&mut rng) * per_req,
                addr: bufs[i].addr(0),
                len: spec.size,
                token: i as u64,
            };
            // SAFETY: the buffer belongs to this run, stays allocated until
            // every request is harvested, and is not read meanwhile.
            unsafe { blk.submit(&req)? };
            submitted += 1;
        }
        if blk.in_flight() == 0 {
            break;
        }
        done.clear();
        blk.wait(&mut done, TIMEOUT_NS)?;
        for c in &done {
            if !c.ok() {
                errors += 1;
            }
            let slot = c.token as usize;
            pair_ticks[slot] += c.ticks;
            if spec.flush && !flushing[slot] {
                flushing[slot] = true;
                let flush = Request {
                    op: Op::Flush,
                    sector: 0,
                    addr: 0,
                    len: 0,
                    token: c.token,
                };
                // SAFETY: a flush carries no data buffer.
                unsafe { blk.submit(&flush)? };
                continue;
            }
            flushing[slot] = false;
            let ns = time::ticks_to_ns(core::mem::take(&mut pair_ticks[slot]));
            completed += 1;
            histogram.add(ns);
            if samples.len() < MAX_SAMPLES {
                samples.push(ns);
            }
            free.push(slot);
        }
    }
    let elapsed_ns = time::ticks_to_ns(time::rdtsc() - start);
    blk.collect_interrupts();
    let result = BlockBench {
        workload: Name::new(spec.name),
        ops: completed,
        bytes: completed * u64::from(spec.size),
        elapsed_ns,
        latency: summarize(&mut samples),
        interrupts: blk.poll_stats().interrupts - irq0,
        notifies: blk.notifies() - notify0,
        histogram,
    };
    Ok(Some((result, errors)))
}
