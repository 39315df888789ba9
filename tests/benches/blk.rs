//! Figures of the block I/O path: the same patterns done natively on the
//! host with io_uring, and by a guest whose disk is served by the backends
//! in the service VM. Rounds alternate native / service VM; each figure is
//! the median over rounds.
//!
//! Run: `cargo bench -p tests --bench blk`.

use io_uring::{opcode, types, IoUring};
use protocol::report::Report;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tests::*;

const DISK: u64 = 16 << 20;
const ROUNDS: usize = 3;
const RUN_TIME: Duration = Duration::from_millis(250);

struct Spec {
    name: &'static str,
    size: usize,
    depth: usize,
    random: bool,
    write: bool,
}

const SPECS: [Spec; 4] = [
    Spec {
        name: "randread-4k-qd1",
        size: 4096,
        depth: 1,
        random: true,
        write: false,
    },
    Spec {
        name: "randread-4k-qd32",
        size: 4096,
        depth: 32,
        random: true,
        write: false,
    },
    Spec {
        name: "seqread-1m-qd4",
        size: 1 << 20,
        depth: 4,
        random: false,
        write: false,
    },
    Spec {
        name: "seqwrite-1m-qd4",
        size: 1 << 20,
        depth: 4,
        random: false,
        write: true,
    },
];

#[derive(Clone, Copy, Default)]
struct Figure {
    median_us: f64,
    p99_us: f64,
    iops: f64,
    mb_s: f64,
    per_op: [f64; 3],
}

fn percentile(sorted: &[u64], q: usize) -> f64 {
    sorted[(sorted.len() - 1) * q / 100] as f64 / 1e3
}

/// One native run: `spec` on `file` through an io_uring, for RUN_TIME.
fn native(spec: &Spec, file: &std::fs::File) -> Figure {
    let mut ring = IoUring::new(64).expect("io_uring");
    let mut buffers: Vec<Vec<u8>> = (0..spec.depth).map(|_| vec![0xA5u8; spec.size]).collect();
    let blocks = DISK / spec.size as u64;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = 0u64;
    let mut offset = || {
        if spec.random {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % blocks) * spec.size as u64
        } else {
            next = (next + 1) % blocks;
            next * spec.size as u64
        }
    };
    let mut started = vec![Instant::now(); spec.depth];
    let mut samples = Vec::new();
    let (mut ops, mut enters) = (0u64, 0u64);
    let push = |ring: &mut IoUring, slot: usize, buf: &mut Vec<u8>, at: u64| {
        let fd = types::Fd(file.as_raw_fd());
        let entry = if spec.write {
            opcode::Write::new(fd, buf.as_ptr(), spec.size as u32)
                .offset(at)
                .build()
        } else {
            opcode::Read::new(fd, buf.as_mut_ptr(), spec.size as u32)
                .offset(at)
                .build()
        };
        // SAFETY: the buffer outlives the request (we wait for every
        // completion before dropping `buffers`).
        unsafe {
            ring.submission()
                .push(&entry.user_data(slot as u64))
                .expect("SQ room")
        };
    };
    let begin = Instant::now();
    for (slot, buf) in buffers.iter_mut().enumerate() {
        started[slot] = Instant::now();
        push(&mut ring, slot, buf, offset());
    }
    let mut in_flight = spec.depth;
    while in_flight > 0 {
        ring.submit_and_wait(1).expect("io_uring_enter");
        enters += 1;
        let done: Vec<(usize, i32)> = ring
            .completion()
            .map(|c| (c.user_data() as usize, c.result()))
            .collect();
        for (slot, result) in done {
            assert_eq!(result, spec.size as i32, "native I/O failed");
            samples.push(started[slot].elapsed().as_nanos() as u64);
            ops += 1;
            in_flight -= 1;
            if begin.elapsed() < RUN_TIME {
                started[slot] = Instant::now();
                push(&mut ring, slot, &mut buffers[slot], offset());
                in_flight += 1;
            }
        }
    }
    let seconds = begin.elapsed().as_secs_f64();
    samples.sort_unstable();
    Figure {
        median_us: percentile(&samples, 50),
        p99_us: percentile(&samples, 99),
        iops: ops as f64 / seconds,
        mb_s: ops as f64 * spec.size as f64 / seconds / 1e6,
        per_op: [enters as f64 / ops as f64, 0.0, 0.0],
    }
}

/// A number in Dom0's report line, e.g. `notifies` in "7997 notifies".
fn count(line: &str, what: &str) -> f64 {
    let words: Vec<&str> = line
        .split([' ', ',', ':'])
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|w| w[1] == what)
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0.0)
}

/// One service-VM round: a guest runs every spec against its disk.
fn service_vm(round: usize) -> (BTreeMap<String, Figure>, [f64; 6]) {
    let (hv, events) = with_dom0();
    let disk = TempDisk::new(&format!("bench{round}"), DISK);
    let id = hv
        .create_domain(disk_guest(
            "bench",
            "workload=disk bench=quick seed=1",
            &disk.path,
            false,
        ))
        .unwrap();
    let reports = reports_until_final(&events, id, Duration::from_secs(120));
    let domain = hv.domain(id).unwrap();
    let exits = domain
        .counters
        .user_exits
        .load(std::sync::atomic::Ordering::Relaxed) as f64;
    let ioreqs = domain
        .counters
        .ioreqs
        .load(std::sync::atomic::Ordering::Relaxed) as f64;
    drop(domain);
    hv.destroy(id).unwrap();
    let removed =
        wait_console(&events, 0, "removed xvda", Duration::from_secs(10)).unwrap_or_default();
    let queue = wait_console(&events, 0, "SQEs", Duration::from_secs(10)).unwrap_or_default();
    let requests = count(&queue, "requests").max(1.0);
    let mut figures = BTreeMap::new();
    for report in reports {
        if let Report::BlockBench(b) = report {
            let seconds = b.elapsed_ns as f64 / 1e9;
            let per = |n: u64| n as f64 / b.ops.max(1) as f64;
            figures.insert(
                b.workload.as_str().to_string(),
                Figure {
                    median_us: b.latency.median_ns as f64 / 1e3,
                    p99_us: b.latency.p99_ns as f64 / 1e3,
                    iops: b.ops as f64 / seconds,
                    mb_s: b.bytes as f64 / seconds / 1e6,
                    per_op: [0.0, per(b.interrupts), per(b.notifies)],
                },
            );
        }
    }
    // Per request over the guest's whole life (verification included).
    let path = [
        exits / requests,
        ioreqs / requests,
        count(&removed, "notifies") / requests,
        count(&removed, "interrupts") / requests,
        count(&queue, "doorbells") / requests,
        count(&queue, "SQEs") / requests,
    ];
    (figures, path)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    let dir = TempDisk::new("native", DISK);
    let mut contents = vec![0u8; DISK as usize];
    protocol::pattern::fill(&mut contents, 0, 1);
    std::fs::write(&dir.path, &contents).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dir.path)
        .unwrap();
    let mut native_runs: BTreeMap<&str, Vec<Figure>> = BTreeMap::new();
    let mut vm_runs: BTreeMap<String, Vec<Figure>> = BTreeMap::new();
    let mut paths = Vec::new();
    for round in 0..ROUNDS {
        for spec in &SPECS {
            native_runs
                .entry(spec.name)
                .or_default()
                .push(native(spec, &file));
        }
        let (figures, path) = service_vm(round);
        for (name, figure) in figures {
            vm_runs.entry(name).or_default().push(figure);
        }
        paths.push(path);
    }
    let med = |runs: &[Figure], f: fn(&Figure) -> f64| {
        median(&mut runs.iter().map(f).collect::<Vec<_>>())
    };
    println!("block I/O, native io_uring on the host vs the guest's disk through the service VM");
    println!("({ROUNDS} rounds alternating, {} ms per run, medians over rounds; 16 MiB image in the page cache)", RUN_TIME.as_millis());
    println!(
        "{:<18} {:>22} {:>22} {:>12} {:>12}",
        "workload", "native med/p99 µs", "service-VM med/p99 µs", "native IOPS", "s-VM IOPS"
    );
    for spec in &SPECS {
        let n = &native_runs[spec.name];
        let Some(v) = vm_runs.get(spec.name) else {
            continue;
        };
        println!(
            "{:<18} {:>10.1} / {:>9.1} {:>10.1} / {:>9.1} {:>12.0} {:>12.0}   MB/s {:>7.0} vs {:>7.0}   latency x{:.1}, throughput x{:.2}",
            spec.name,
            med(n, |f| f.median_us),
            med(n, |f| f.p99_us),
            med(v, |f| f.median_us),
            med(v, |f| f.p99_us),
            med(n, |f| f.iops),
            med(v, |f| f.iops),
            med(n, |f| f.mb_s),
            med(v, |f| f.mb_s),
            med(v, |f| f.median_us) / med(n, |f| f.median_us),
            med(v, |f| f.iops) / med(n, |f| f.iops),
        );
        println!(
            "{:<18} per request: native {:.2} io_uring_enter; guest {:.2} interrupts, {:.2} queue notifies",
            "",
            med(n, |f| f.per_op[0]),
            med(v, |f| f.per_op[1]),
            med(v, |f| f.per_op[2])
        );
    }
    let col = |i: usize| median(&mut paths.iter().map(|p| p[i]).collect::<Vec<_>>());
    println!("service-VM path per request, over the guest's whole run (setup and verification included):");
    println!(
        "  guest exits to hypd {:.4}, ioreqs forwarded {:.4}, Dom0 notify wake-ups {:.3}, guest interrupts sent {:.3}, doorbells (io_uring_enter by hypd) {:.3}, SQEs {:.3}",
        col(0),
        col(1),
        col(2),
        col(3),
        col(4),
        col(5)
    );
}
