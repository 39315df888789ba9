//! The kernel command line: space-separated `key=value` words.
//!
//! | key | meaning |
//! |---|---|
//! | `workload=NAME` | what to run (default: `disk` with a block device, else `pingpong`) |
//! | `count=N` | iterations (pingpong, flood; pings and round trips of net), most rounds (durable), most requests per benchmark run (disk), frames of each forged kind (netspoof, default 100), frames to broadcast (netflood, default: until shut down) or rounds of attacks (hostile, default 1) |
//! | `bench=quick\|full\|off\|MSms` | block benchmark length: ~250 ms or ~3 s per run, `MS` milliseconds, or none (`none` = `off`) |
//! | `runs=A,B,...` | only these benchmark runs (names as in the reports, e.g. `randread-4k-qd1`) |
//! | `poll_us=N` | longest adaptive spin before sleeping on a device (default 200, as Linux's `guest_halt_poll_ns`; 0: never spin) |
//! | `seed=N` | seed of the disk pattern (default: from the TSC) |
//! | `verify_mib=N` | check only the first N MiB of the disk (default: all of it) |
//! | `peer=A.B.C.D` | the address `workload=net` measures against; the victim of `workload=netspoof` |
//! | `net_mib=N` | MiB each TCP stream of `workload=net` carries (default 32) |

/// How long the block benchmark runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bench {
    /// About a quarter of a second per run.
    Quick,
    /// About three seconds per run.
    Full,
    /// This many milliseconds per run.
    Millis(u64),
    /// No benchmark.
    Off,
}

impl Bench {
    /// Wall-time budget of one run in nanoseconds (0 when off).
    pub fn run_ns(self) -> u64 {
        match self {
            Self::Quick => 250_000_000,
            Self::Full => 3_000_000_000,
            Self::Millis(ms) => ms.saturating_mul(1_000_000),
            Self::Off => 0,
        }
    }
}

/// What the command line asks for.
pub struct Args<'a> {
    /// The workload to run, if named.
    pub workload: Option<&'a str>,
    /// How many iterations, for workloads that count.
    pub count: Option<u32>,
    /// Block benchmark length.
    pub bench: Bench,
    /// Longest adaptive spin, in microseconds.
    pub poll_us: u64,
    /// Seed of the disk pattern.
    pub seed: Option<u64>,
    /// Limit of the disk pattern check, in MiB.
    pub verify_mib: Option<u64>,
    /// The benchmark runs to do (all of them when `None`), comma-separated.
    pub runs: Option<&'a str>,
    /// The peer of `workload=net` and `workload=netspoof`.
    pub peer: Option<[u8; 4]>,
    /// MiB per TCP stream of `workload=net`.
    pub net_mib: u64,
}

impl<'a> Args<'a> {
    /// Parses `cmdline`; unknown words and bad values are ignored.
    pub fn parse(cmdline: &'a str) -> Self {
        let mut args = Args {
            workload: None,
            count: None,
            bench: Bench::Quick,
            poll_us: 200,
            seed: None,
            verify_mib: None,
            runs: None,
            peer: None,
            net_mib: 32,
        };
        for word in cmdline.split_ascii_whitespace() {
            match word.split_once('=') {
                Some(("workload", value)) => args.workload = Some(value),
                Some(("count", value)) => args.count = value.parse().ok(),
                Some(("bench", "quick")) => args.bench = Bench::Quick,
                Some(("bench", "full")) => args.bench = Bench::Full,
                Some(("bench", "off" | "none")) => args.bench = Bench::Off,
                Some(("bench", value)) => {
                    if let Some(ms) = value.strip_suffix("ms").and_then(|v| v.parse().ok()) {
                        args.bench = Bench::Millis(ms);
                    }
                }
                Some(("runs", value)) => args.runs = Some(value),
                Some(("poll_us", value)) => args.poll_us = value.parse().unwrap_or(args.poll_us),
                Some(("seed", value)) => args.seed = value.parse().ok(),
                Some(("verify_mib", value)) => args.verify_mib = value.parse().ok(),
                Some(("peer", value)) => args.peer = parse_ipv4(value),
                Some(("net_mib", value)) => args.net_mib = value.parse().unwrap_or(args.net_mib),
                _ => {}
            }
        }
        args
    }

    /// True if the benchmark run `name` is wanted.
    pub fn wants_run(&self, name: &str) -> bool {
        self.runs
            .is_none_or(|runs| runs.split(',').any(|r| r == name))
    }

    /// The longest adaptive spin in nanoseconds.
    pub fn poll_ns(&self) -> u64 {
        self.poll_us.saturating_mul(1000)
    }
}

/// Parses a dotted-quad IPv4 address (`10.0.0.2`).
pub fn parse_ipv4(text: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = text.split('.');
    for byte in &mut out {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *byte = part.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}
