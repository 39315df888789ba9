//! The kernel command line: space-separated `key=value` words.

/// What the command line asks for.
pub struct Args<'a> {
    /// The workload to run.
    pub workload: &'a str,
    /// How many iterations, for workloads that count.
    pub count: Option<u32>,
}

impl<'a> Args<'a> {
    /// Parses `cmdline`; unknown words are ignored.
    pub fn parse(cmdline: &'a str) -> Self {
        let mut args = Args {
            workload: "pingpong",
            count: None,
        };
        for word in cmdline.split_ascii_whitespace() {
            match word.split_once('=') {
                Some(("workload", value)) => args.workload = value,
                Some(("count", value)) => args.count = value.parse().ok(),
                _ => {}
            }
        }
        args
    }
}
