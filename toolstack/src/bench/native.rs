//! The native baseline: a workload run by a host thread directly on the
//! disk image with io_uring, no VM. The requests are the ones the backends
//! make (reads and writes at the guest's offsets, `fdatasync` for a
//! flush), from a page-aligned buffer in this process (as `O_DIRECT`
//! needs, with `xl bench --direct`).

use io_uring::{opcode, types, IoUring};
use protocol::bench::Workload;
use protocol::report::LatencyHistogram;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::sample::{Counters, Sample};

/// Offsets a workload visits: random (xorshift) or sequential, aligned to
/// the request size, within `disk_bytes`.
struct Offsets {
    random: bool,
    size: u64,
    blocks: u64,
    state: u64,
    next: u64,
}

impl Offsets {
    fn new(w: &Workload, disk_bytes: u64) -> Self {
        let size = u64::from(w.size);
        Self {
            random: w.random,
            size,
            blocks: (disk_bytes / size).max(1),
            state: 0x2545_F491_4F6C_DD1D,
            next: 0,
        }
    }

    fn next(&mut self) -> u64 {
        let block = if self.random {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            self.state % self.blocks
        } else {
            self.next = (self.next + 1) % self.blocks;
            self.next
        };
        block * self.size
    }
}

/// Alignment of the requests' buffers: what `O_DIRECT` asks of them (a
/// page covers every device's logical block).
const BUFFER_ALIGN: usize = 4096;

/// One slot of the workload's depth: its buffer (`BUFFER_ALIGN` more than
/// a request, so an aligned start fits) and where it is.
struct Slot {
    buffer: Vec<u8>,
    started: Instant,
    /// The write is done and its flush is out.
    flushing: bool,
}

impl Slot {
    /// The request's bytes: the aligned part of the buffer.
    fn data(&mut self) -> *mut u8 {
        let pad = self.buffer.as_ptr().align_offset(BUFFER_ALIGN);
        self.buffer[pad..].as_mut_ptr()
    }
}

/// Runs `w` on `file` for `run` and returns what it measured. One function
/// because its submit-and-reap loop is the baseline being measured, to be
/// compared with the guest's loop (`frontends/src/bench.rs`) line by line.
pub fn run(w: &Workload, file: &File, disk_bytes: u64, run: Duration) -> Result<Sample, String> {
    let mut ring = IoUring::new(64).map_err(|e| format!("io_uring_setup: {e}"))?;
    let fd = types::Fd(file.as_raw_fd());
    let mut offsets = Offsets::new(w, disk_bytes);
    let mut slots: Vec<Slot> = (0..w.depth)
        .map(|i| Slot {
            buffer: vec![i as u8 ^ 0x5A; w.size as usize + BUFFER_ALIGN],
            started: Instant::now(),
            flushing: false,
        })
        .collect();
    let mut samples = Vec::new();
    let mut histogram = LatencyHistogram::default();
    let mut enters = 0u64;
    let push = |ring: &mut IoUring, index: usize, slot: &mut Slot, at: u64| {
        let entry = if slot.flushing {
            opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build()
        } else if w.write {
            opcode::Write::new(fd, slot.data(), w.size)
                .offset(at)
                .build()
        } else {
            opcode::Read::new(fd, slot.data(), w.size)
                .offset(at)
                .build()
        };
        // SAFETY: the buffer lives in `slots`, which outlives every
        // request: the loop below waits for all of them.
        unsafe { ring.submission().push(&entry.user_data(index as u64)) }
            .map_err(|_| "the io_uring SQ is full".to_string())
    };
    let begin = Instant::now();
    for (index, slot) in slots.iter_mut().enumerate() {
        slot.started = Instant::now();
        push(&mut ring, index, slot, offsets.next())?;
    }
    let mut in_flight = w.depth;
    let mut failure = None;
    while in_flight > 0 {
        ring.submit_and_wait(1)
            .map_err(|e| format!("io_uring_enter: {e}"))?;
        enters += 1;
        let done: Vec<(usize, i32)> = ring
            .completion()
            .map(|c| (c.user_data() as usize, c.result()))
            .collect();
        for (index, result) in done {
            let slot = &mut slots[index];
            let expected = if slot.flushing { 0 } else { w.size as i32 };
            if result != expected && failure.is_none() {
                failure = Some(format!("native {}: request returned {result}", w.name));
            }
            in_flight -= 1;
            if w.flush && !slot.flushing {
                slot.flushing = true;
                push(&mut ring, index, slot, 0)?;
                in_flight += 1;
                continue;
            }
            slot.flushing = false;
            let ns = slot.started.elapsed().as_nanos() as u64;
            samples.push(ns);
            histogram.add(ns);
            if begin.elapsed() < run && failure.is_none() {
                slot.started = Instant::now();
                push(&mut ring, index, slot, offsets.next())?;
                in_flight += 1;
            }
        }
    }
    let elapsed_ns = begin.elapsed().as_nanos() as u64;
    if let Some(failure) = failure {
        return Err(failure);
    }
    samples.sort_unstable();
    let at = |q: usize| samples[(samples.len() - 1) * q / 100];
    Ok(Sample {
        median_ns: at(50),
        p99_ns: at(99),
        ops: samples.len() as u64,
        bytes: samples.len() as u64 * u64::from(w.size),
        elapsed_ns,
        histogram,
        counters: Counters {
            host_syscalls: enters as f64,
            ..Counters::default()
        },
    })
}
