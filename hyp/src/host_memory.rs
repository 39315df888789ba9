//! Every domain's RAM, accounted against the host's.
//!
//! A domain's RAM is a memfd whose pages the host gives it as it touches
//! them; nothing is allocated up front. So that guests touching their RAM
//! cannot together take more than the host has (and the host's OOM killer
//! take the daemon and every domain with it), the core counts each domain
//! at its full size from the moment its create is admitted, as Xen does,
//! and refuses a create that would not fit beside them in the host's RAM
//! less a reserve kept for the host itself ([`DEFAULT_HOST_RESERVE_MIB`],
//! adjustable with [`crate::Hypervisor::set_host_reserve_mib`]).

/// RAM kept for the host (its kernel, `hypd`, page cache): 1 GiB.
pub const DEFAULT_HOST_RESERVE_MIB: u64 = 1024;

/// How the host's RAM is shared out, as `xl info` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    /// The host's RAM (`MemTotal`).
    pub total_mib: u64,
    /// Kept for the host.
    pub reserve_mib: u64,
    /// Given to domains (and to creates in progress).
    pub domains_mib: u64,
    /// Left for new domains.
    pub free_mib: u64,
}

impl MemoryReport {
    /// The report for `domains_mib` given out of `total_mib`, `reserve_mib`
    /// kept back.
    pub(crate) fn new(total_mib: u64, reserve_mib: u64, domains_mib: u64) -> Self {
        Self {
            total_mib,
            reserve_mib,
            domains_mib,
            free_mib: total_mib
                .saturating_sub(reserve_mib)
                .saturating_sub(domains_mib),
        }
    }
}

/// The host's RAM in MiB, from `/proc/meminfo` (0 if unreadable: then no
/// domain fits, which says loudly that something is wrong).
pub(crate) fn host_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_memory_is_what_the_reserve_and_the_domains_leave() {
        let r = MemoryReport::new(24_000, 1024, 4096);
        assert_eq!(r.free_mib, 24_000 - 1024 - 4096);
        assert_eq!(MemoryReport::new(1000, 1024, 0).free_mib, 0);
        assert!(host_total_mib() > 0);
    }
}
