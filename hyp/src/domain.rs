//! One domain: a KVM VM, its RAM, its vCPU threads and its state.

use crate::error::ConfigError;
use crate::events::LineAssembler;
use crate::memory::GuestRam;
use crate::mmio::MmioMap;
use crate::reserved::ReservedRam;
use kvm_ioctls::VmFd;
use protocol::boot::CMDLINE_MAX;
use protocol::domain::{DomId, DomainState, NameProblem, ShutdownReason, MAX_VCPUS};
use protocol::memory::{MAX_RAM_MIB, MIN_RAM_MIB};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::EventFd;

/// What a domain is made from.
#[derive(Clone, Debug)]
pub struct DomainConfig {
    /// Name shown by `xl list`; unique among live domains.
    pub name: String,
    /// The kernel: a static x86-64 ELF executable.
    pub kernel: Vec<u8>,
    /// RAM in MiB.
    pub memory_mib: u64,
    /// Number of vCPUs (1 to [`protocol::domain::MAX_VCPUS`]).
    pub vcpus: u8,
    /// The kernel command line.
    pub cmdline: String,
    /// Leave the vCPUs paused after creation (`xl create -p`).
    pub start_paused: bool,
}

impl DomainConfig {
    /// A domain with one vCPU and an empty command line, started at once;
    /// set the other fields as needed.
    pub fn new(name: &str, kernel: Vec<u8>, memory_mib: u64) -> Self {
        Self {
            name: name.into(),
            kernel,
            memory_mib,
            vcpus: 1,
            cmdline: String::new(),
            start_paused: false,
        }
    }
}

impl DomainConfig {
    /// Checks the values the core takes from a configuration.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        validate_name(&self.name)?;
        if !(MIN_RAM_MIB..=MAX_RAM_MIB).contains(&self.memory_mib) {
            return Err(ConfigError::Memory {
                mib: self.memory_mib,
                min: MIN_RAM_MIB,
                max: MAX_RAM_MIB,
            });
        }
        if self.vcpus == 0 || self.vcpus as usize > MAX_VCPUS {
            return Err(ConfigError::Vcpus {
                vcpus: self.vcpus,
                max: MAX_VCPUS,
            });
        }
        if self.cmdline.len() > CMDLINE_MAX {
            return Err(ConfigError::Cmdline {
                len: self.cmdline.len(),
                max: CMDLINE_MAX,
            });
        }
        Ok(())
    }
}

/// Checks a domain name ([`protocol::domain::check_name`]).
pub(crate) fn validate_name(name: &str) -> std::result::Result<(), ConfigError> {
    match protocol::domain::check_name(name) {
        Ok(()) => Ok(()),
        Err(NameProblem::Numeric) => Err(ConfigError::NumericName(name.into())),
        Err(_) => Err(ConfigError::BadName(name.into())),
    }
}

/// Where a domain is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Life {
    Alive,
    Shutdown(ShutdownReason),
    Crashed,
    Dying,
}

pub(crate) struct Status {
    pub life: Life,
    pub paused: bool,
    /// Held by the toolstack while it sets the domain up (see
    /// [`crate::Hypervisor::create_domain_held`]); apart from `paused`, so
    /// `xl pause` and `xl unpause` meanwhile neither start the domain nor
    /// get lost.
    pub held: bool,
    /// vCPU threads waiting while paused or held.
    pub parked: usize,
    pub message: Option<String>,
}

/// Event counts kept per domain.
#[derive(Default, Debug)]
pub struct Counters {
    /// Hypercalls handled.
    pub hypercalls: AtomicU64,
    /// Privileged hypercalls refused.
    pub privileged_denied: AtomicU64,
    /// Doorbell writes that reached the core (ports with no ioeventfd).
    pub doorbell_exits: AtomicU64,
    /// Accesses to MMIO addresses nothing is behind.
    pub unassigned_mmio: AtomicU64,
    /// Exits to the core's user space, of every kind.
    pub user_exits: AtomicU64,
    /// Device register accesses forwarded to Dom0 as ioreqs.
    pub ioreqs: AtomicU64,
    /// Time the forwarded accesses took, from the exit to Dom0's answer.
    pub ioreq_ns: AtomicU64,
}

/// One vCPU as `xl vcpu-list` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInfo {
    /// vCPU index.
    pub index: u8,
    /// Halted in the guest (its thread sleeps inside `KVM_RUN`).
    pub halted: bool,
    /// Host CPU the thread last ran on.
    pub host_cpu: Option<u32>,
    /// CPU time of this vCPU.
    pub cpu_time: Duration,
}

/// A handle on one vCPU thread.
pub(crate) struct VcpuThread {
    /// The thread's kernel tid, once it started (0 before).
    pub tid: Arc<AtomicI32>,
    pub handle: JoinHandle<()>,
}

/// A domain. Shared between the registry and its vCPU threads.
pub struct Domain {
    /// The domain's id.
    pub id: DomId,
    pub(crate) name: Mutex<String>,
    pub(crate) vm: Arc<VmFd>,
    pub(crate) ram: GuestRam,
    pub(crate) memory_mib: u64,
    pub(crate) vcpu_count: u8,
    pub(crate) status: Mutex<Status>,
    pub(crate) status_changed: Condvar,
    pub(crate) threads: Mutex<Vec<VcpuThread>>,
    /// The port Dom0 holds for this domain's control channel (0 for Dom0);
    /// the core allocated it, so the core closes it.
    pub(crate) control_port: u32,
    /// The MMIO ranges whose accesses go to a handler.
    pub(crate) mmio: MmioMap,
    /// Dom0 only: the core's reserved region of its RAM.
    pub(crate) reserved: Option<Arc<ReservedRam>>,
    /// Raises the control vector (irqfd on [`crate::evtchn::CONTROL_GSI`]).
    pub(crate) control_irq: EventFd,
    /// Event counts.
    pub counters: Counters,
    /// Budget of log lines about what the domain does.
    pub(crate) log_limit: crate::log_limit::LogLimit,
    pub(crate) console: Mutex<LineAssembler>,
    pub(crate) created: Instant,
    pub(crate) first_output: OnceLock<Duration>,
    /// CPU time of vCPU threads that have exited.
    pub(crate) cpu_ns_retired: AtomicU64,
    /// Guest TSC minus host TSC (zero when the core aligned them).
    pub(crate) tsc_offset: i64,
    /// The TSC's frequency, as KVM reports it for the domain's vCPUs.
    pub(crate) tsc_khz: u64,
    /// An NMI waits for vCPU 0 (`xl trigger DOM nmi`).
    pub(crate) nmi_pending: AtomicBool,
}

impl Domain {
    pub(crate) fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().expect("domain status lock")
    }

    /// The domain's name.
    pub fn name(&self) -> String {
        self.name.lock().expect("domain name lock").clone()
    }

    /// True for Dom0.
    pub fn is_privileged(&self) -> bool {
        self.id == protocol::domain::DOM0
    }

    /// The state `xl list` shows.
    pub fn state(&self) -> DomainState {
        let status = self.status();
        match status.life {
            Life::Dying => DomainState::Dying,
            Life::Crashed => DomainState::Crashed,
            Life::Shutdown(reason) => DomainState::Shutdown(reason),
            Life::Alive if status.paused || status.held => DomainState::Paused,
            Life::Alive if self.all_vcpus_halted() => DomainState::Blocked,
            Life::Alive => DomainState::Running,
        }
    }

    /// The shutdown or crash message, if any.
    pub fn message(&self) -> Option<String> {
        self.status().message.clone()
    }

    /// A vCPU thread sleeping inside `KVM_RUN` is a vCPU halted in the guest.
    fn all_vcpus_halted(&self) -> bool {
        let vcpus = self.vcpu_info();
        !vcpus.is_empty() && vcpus.iter().all(|v| v.halted)
    }

    /// What each live vCPU thread is doing, read from `/proc`.
    pub fn vcpu_info(&self) -> Vec<VcpuInfo> {
        let threads = self.threads.lock().expect("vcpu threads lock");
        threads
            .iter()
            .enumerate()
            .filter(|(_, t)| !t.handle.is_finished())
            .map(|(index, t)| {
                let tid = t.tid.load(Ordering::Relaxed);
                let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
                    .unwrap_or_default();
                // After the command name: the state is the first field and
                // the CPU last run on the 37th (field 39 of the line).
                let fields: Vec<&str> = stat
                    .rsplit_once(") ")
                    .map_or(Vec::new(), |(_, rest)| rest.split(' ').collect());
                let schedstat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
                    .unwrap_or_default();
                VcpuInfo {
                    index: index as u8,
                    halted: fields.first() == Some(&"S"),
                    host_cpu: fields.get(36).and_then(|f| f.parse().ok()),
                    cpu_time: Duration::from_nanos(
                        schedstat
                            .split_whitespace()
                            .next()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0),
                    ),
                }
            })
            .collect()
    }

    /// CPU time used by this domain's vCPUs.
    pub fn cpu_time(&self) -> Duration {
        let retired = Duration::from_nanos(self.cpu_ns_retired.load(Ordering::Relaxed));
        retired
            + self
                .vcpu_info()
                .iter()
                .map(|v| v.cpu_time)
                .sum::<Duration>()
    }

    /// Time since the domain was created.
    pub fn uptime(&self) -> Duration {
        self.created.elapsed()
    }

    /// RAM in MiB.
    pub fn memory_mib(&self) -> u64 {
        self.memory_mib
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> u8 {
        self.vcpu_count
    }

    /// Time from creation to the first console output.
    pub fn time_to_first_output(&self) -> Option<Duration> {
        self.first_output.get().copied()
    }

    /// The guest's progress counter (see [`protocol::boot::SharedInfo`]).
    pub fn progress(&self) -> u64 {
        let offset = std::mem::offset_of!(protocol::boot::SharedInfo, progress) as u64;
        self.ram
            .read_u64(protocol::memory::SHARED_INFO_ADDR + offset)
            .unwrap_or(0)
    }

    /// The domain's RAM (a handle on the same memory).
    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    /// Asks vCPU 0 to take an NMI the next time it enters the guest.
    pub(crate) fn request_nmi(&self) {
        self.nmi_pending.store(true, Ordering::SeqCst);
    }

    /// Moves the domain to a final state, waking every vCPU thread so they
    /// exit; the first final state wins.
    pub(crate) fn finish(&self, life: Life, message: Option<String>) -> bool {
        let mut status = self.status();
        let first =
            status.life == Life::Alive || (life == Life::Dying && status.life != Life::Dying);
        if first {
            status.life = life;
            if message.is_some() {
                status.message = message;
            }
        }
        drop(status);
        self.status_changed.notify_all();
        first
    }
}
