//! Helpers shared by the integration tests, which boot real domains under
//! KVM: the core alone ([`with_dom0`]) or with device setup
//! ([`machine_with_dom0`]).

use hyp::{DomainConfig, Event, Hypervisor};
use hypd::{DeviceConfig, GuestConfig, Machine, Placement};
use protocol::domain::DomId;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A configuration for the standard guest kernel.
pub fn guest(name: &str, cmdline: &str) -> DomainConfig {
    DomainConfig {
        cmdline: cmdline.into(),
        ..DomainConfig::new(name, kernels::FRONTENDS.to_vec(), 32)
    }
}

/// A configuration for the service VM kernel.
pub fn service_vm() -> DomainConfig {
    DomainConfig::new("Domain-0", kernels::SERVICE_VM.to_vec(), 64)
}

/// Waits up to `timeout` for an event matching `pred`; returns it.
pub fn wait_for(
    events: &Receiver<Event>,
    timeout: Duration,
    mut pred: impl FnMut(&Event) -> bool,
) -> Option<Event> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match events.recv_timeout(left) {
            Ok(event) if pred(&event) => return Some(event),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Waits for a console line of `domid` containing `text`.
pub fn wait_console(
    events: &Receiver<Event>,
    domid: DomId,
    text: &str,
    timeout: Duration,
) -> Option<String> {
    match wait_for(
        events,
        timeout,
        |e| matches!(e, Event::Console { domid: d, line } if *d == domid && line.contains(text)),
    ) {
        Some(Event::Console { line, .. }) => Some(line),
        _ => None,
    }
}

/// The core alone, with Dom0 booted (no device setup).
pub fn with_dom0() -> (Hypervisor, Receiver<Event>) {
    let hv = Hypervisor::new().expect("open /dev/kvm");
    let events = hv.subscribe();
    hv.create_dom0(service_vm()).expect("boot Dom0");
    (hv, events)
}

/// The core with device setup for both placements (`hypd`'s
/// [`Machine`]), with Dom0 booted.
pub fn machine_with_dom0() -> (Machine, Receiver<Event>) {
    let machine = Machine::new().expect("open /dev/kvm");
    let events = machine.core().subscribe();
    machine.boot_dom0(service_vm()).expect("boot Dom0");
    (machine, events)
}

/// Collects the reports `domid` hands over until it reaches a final state.
pub fn reports_until_final(
    events: &Receiver<Event>,
    domid: DomId,
    timeout: Duration,
) -> Vec<protocol::report::Report> {
    let mut reports = Vec::new();
    wait_for(events, timeout, |e| match e {
        Event::Report { domid: d, bytes } if *d == domid => {
            reports.extend(protocol::report::Report::decode(bytes));
            false
        }
        Event::State {
            domid: d, state, ..
        } => *d == domid && state.is_final(),
        _ => false,
    })
    .expect("domain reached a final state in time");
    reports
}

/// A minimal static x86-64 ELF executable: one `PT_LOAD` segment at
/// `load_addr` holding `code` (entry at its first byte), `memsz` bytes long.
pub fn tiny_elf(code: &[u8], load_addr: u64, memsz: u64) -> Vec<u8> {
    const EHDR: usize = 64;
    const PHDR: usize = 56;
    let mut elf = vec![0u8; EHDR + PHDR];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2; // 64-bit
    elf[5] = 1; // little-endian
    elf[6] = 1; // version
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    elf[20..24].copy_from_slice(&1u32.to_le_bytes());
    elf[24..32].copy_from_slice(&load_addr.to_le_bytes()); // entry
    elf[32..40].copy_from_slice(&(EHDR as u64).to_le_bytes()); // phoff
    elf[52..54].copy_from_slice(&(EHDR as u16).to_le_bytes());
    elf[54..56].copy_from_slice(&(PHDR as u16).to_le_bytes());
    elf[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
    let ph = EHDR;
    elf[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf[ph + 4..ph + 8].copy_from_slice(&5u32.to_le_bytes()); // R+X
    elf[ph + 8..ph + 16].copy_from_slice(&((EHDR + PHDR) as u64).to_le_bytes()); // offset
    elf[ph + 16..ph + 24].copy_from_slice(&load_addr.to_le_bytes()); // vaddr
    elf[ph + 24..ph + 32].copy_from_slice(&load_addr.to_le_bytes()); // paddr
    elf[ph + 32..ph + 40].copy_from_slice(&(code.len() as u64).to_le_bytes()); // filesz
    elf[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes()); // memsz
    elf.extend_from_slice(code);
    elf
}

/// Open file descriptors of this process.
pub fn open_fds() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

/// A zero-filled raw disk image of `bytes` in a fresh temporary directory
/// (removed with the returned guard).
pub struct TempDisk {
    /// The image.
    pub path: std::path::PathBuf,
    dir: std::path::PathBuf,
}

impl TempDisk {
    /// Makes the image. Every call gets its own directory (process id and a
    /// counter), so parallel tests never share one; `name` only labels it.
    pub fn new(name: &str, bytes: u64) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hyp-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("disk.img");
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(bytes))
            .expect("disk image");
        Self { path, dir }
    }
}

impl Drop for TempDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A guest with a disk (and a console) served by Domain-0, running
/// `cmdline`.
pub fn disk_guest(
    name: &str,
    cmdline: &str,
    disk: &std::path::Path,
    readonly: bool,
) -> GuestConfig {
    let mut domain = guest(name, cmdline);
    domain.memory_mib = 64;
    GuestConfig {
        domain,
        devices: DeviceConfig::disk_and_console(disk, readonly),
        placement: Placement::ServiceVm,
    }
}

/// Asserts every `Report::Check` passed and returns their names.
pub fn passed_checks(reports: &[protocol::report::Report]) -> Vec<String> {
    reports
        .iter()
        .filter_map(|r| match r {
            protocol::report::Report::Check {
                name,
                passed,
                value,
            } => {
                assert!(passed, "check {} failed ({value})", name.as_str());
                Some(name.as_str().to_string())
            }
            _ => None,
        })
        .collect()
}
