//! The registry of domains and the operations on them ([`devices`]: the
//! operations on their devices).

mod devices;

use crate::devices::{reserved::Dom0Host, LocalBackends};
use crate::domain::{Counters, Domain, DomainConfig, Life, Status, VcpuThread};
use crate::error::{kvm, Error, Result};
use crate::events::{Event, EventHub, LineAssembler};
use crate::evtchn::{EventChannels, BACKEND_GSI, CONTROL_GSI};
use crate::memory::GuestRam;
use crate::{boot, elf, irq, vcpu};
use kvm_bindings::{kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, VcpuFd};
use protocol::boot::{
    BootInfo, ControlRequest, BOOT_MAGIC, BOOT_VERSION, CMDLINE_MAX, FLAG_PRIVILEGED, MAX_VCPUS,
};
use protocol::domain::{DomId, DomainState, DOM0, DOMID_MAX};
use protocol::hypercall::DomainInfo;
use protocol::memory::{MAX_RAM_MIB, MIN_RAM_MIB, SHARED_INFO_ADDR};
use std::collections::BTreeMap;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// How long `detach_device` lets a guest stop using a device.
const DETACH_GRACE: Duration = Duration::from_secs(1);

/// How long pause and destroy wait for vCPU threads to respond.
const VCPU_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

struct Registry {
    domains: BTreeMap<DomId, Arc<Domain>>,
    next_domid: DomId,
}

/// State shared by the hypervisor handle and every vCPU thread.
pub(crate) struct Inner {
    kvm: Kvm,
    cpuid: CpuId,
    registry: Mutex<Registry>,
    evtchn: Mutex<EventChannels>,
    /// The core's side of Dom0 (reserved RAM, windows, backend ring).
    dom0_host: Mutex<Option<Dom0Host>>,
    /// The host model's backends, if the process installed them.
    local_backends: OnceLock<Arc<dyn LocalBackends>>,
    pub(crate) events: EventHub,
}

impl Inner {
    pub(crate) fn evtchn(&self) -> MutexGuard<'_, EventChannels> {
        self.evtchn.lock().expect("event channel lock")
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().expect("registry lock")
    }

    pub(crate) fn console_output(&self, domain: &Domain, bytes: &[u8]) {
        let _ = domain.first_output.set(domain.created.elapsed());
        let lines = domain.console.lock().expect("console lock").push(bytes);
        for line in lines {
            tracing::info!(target: "console", domid = domain.id, "{line}");
            self.events.publish(Event::Console {
                domid: domain.id,
                line,
            });
        }
    }

    /// Puts `domain` in a final state, tells subscribers, and kicks its
    /// vCPUs out of the guest.
    pub(crate) fn finish_domain(&self, domain: &Domain, life: Life, message: Option<String>) {
        if domain.finish(life, message.clone()) {
            kick_all(domain);
            self.events.publish(Event::State {
                domid: domain.id,
                state: domain.state(),
                message,
            });
        }
    }

    /// The live domain with this id.
    pub(crate) fn find(&self, domid: DomId) -> Option<Arc<Domain>> {
        self.registry().domains.get(&domid).cloned()
    }

    pub(crate) fn domain_info(&self, domid: DomId) -> Option<DomainInfo> {
        let domain = self.find(domid)?;
        let state = match domain.state() {
            DomainState::Running => 0,
            DomainState::Blocked => 1,
            DomainState::Paused => 2,
            DomainState::Shutdown(_) => 3,
            DomainState::Crashed => 4,
            DomainState::Dying => 5,
        };
        Some(DomainInfo {
            domid,
            vcpus: domain.vcpu_count as u16,
            state,
            ram_bytes: domain.ram.size(),
            cpu_time_ns: domain.cpu_time().as_nanos() as u64,
        })
    }
}

/// Sends the kick signal to every vCPU thread of `domain` still running.
fn kick_all(domain: &Domain) {
    for thread in domain.threads.lock().expect("vcpu threads lock").iter() {
        if !thread.handle.is_finished() && thread.handle.as_pthread_t() != current_thread() {
            // SAFETY: the pthread_t belongs to a live, unjoined thread.
            unsafe { libc::pthread_kill(thread.handle.as_pthread_t(), vcpu::kick_signal()) };
        }
    }
}

fn current_thread() -> libc::pthread_t {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() }
}

/// The core: owns `/dev/kvm` and every domain.
///
/// Dropping it destroys every domain.
pub struct Hypervisor {
    inner: Arc<Inner>,
}

impl Hypervisor {
    /// Opens `/dev/kvm` and checks it has what the core needs.
    pub fn new() -> Result<Self> {
        let kvm_fd = Kvm::new().map_err(kvm("opening /dev/kvm"))?;
        for (cap, name) in [
            (Cap::Irqchip, "in-kernel irqchip"),
            (Cap::Irqfd, "irqfd"),
            (Cap::Ioeventfd, "ioeventfd"),
            (Cap::IrqRouting, "IRQ routing"),
            (Cap::UserMemory, "user memory"),
        ] {
            if !kvm_fd.check_extension(cap) {
                return Err(Error::InvalidConfig(format!("KVM lacks {name}")));
            }
        }
        let cpuid = kvm_fd
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm("KVM_GET_SUPPORTED_CPUID"))?;
        vcpu::install_kick_handler();
        let inner = Inner {
            kvm: kvm_fd,
            cpuid,
            registry: Mutex::new(Registry {
                domains: BTreeMap::new(),
                next_domid: 1,
            }),
            evtchn: Mutex::new(EventChannels::default()),
            dom0_host: Mutex::new(None),
            local_backends: OnceLock::new(),
            events: EventHub::default(),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// A receiver of every [`Event`] from now on.
    pub fn subscribe(&self) -> Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Boots the privileged service VM as domain 0. Must come first.
    pub fn create_dom0(&self, config: DomainConfig) -> Result<DomId> {
        self.create(config, true)
    }

    /// Creates an unprivileged domain; Dom0 must be running. Either the
    /// domain is created and started, or nothing is left behind.
    pub fn create_domain(&self, config: DomainConfig) -> Result<DomId> {
        self.create(config, false)
    }

    /// The domain with this id.
    pub fn domain(&self, domid: DomId) -> Option<Arc<Domain>> {
        self.inner.registry().domains.get(&domid).cloned()
    }

    /// Every domain, by id.
    pub fn domains(&self) -> Vec<Arc<Domain>> {
        self.inner.registry().domains.values().cloned().collect()
    }

    /// Number of ports `domid` has open.
    pub fn open_ports(&self, domid: DomId) -> usize {
        self.inner.evtchn().open_ports(domid)
    }

    fn create(&self, config: DomainConfig, privileged: bool) -> Result<DomId> {
        validate(&config)?;
        {
            let registry = self.inner.registry();
            let has_dom0 = registry.domains.contains_key(&DOM0);
            if privileged == has_dom0 {
                let problem = if privileged {
                    "Domain-0 already exists"
                } else {
                    "Domain-0 is not running"
                };
                return Err(Error::InvalidConfig(problem.into()));
            }
            if registry.domains.values().any(|d| d.name() == config.name) {
                return Err(Error::InvalidConfig(format!(
                    "a domain named '{}' already exists",
                    config.name
                )));
            }
        }
        let created = Instant::now();
        let vm = Arc::new(self.inner.kvm.create_vm().map_err(kvm("KVM_CREATE_VM"))?);
        vm.create_irq_chip().map_err(kvm("KVM_CREATE_IRQCHIP"))?;
        irq::install_routes(&vm)?;
        let ram = GuestRam::new(&config.name, config.memory_mib << 20)?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: ram.size(),
            userspace_addr: ram.host_address(),
        };
        // SAFETY: the region maps `ram`, which the Domain owns for as long
        // as the VM exists (the VM fd is dropped before or with it).
        unsafe { vm.set_user_memory_region(region) }.map_err(kvm("KVM_SET_USER_MEMORY_REGION"))?;
        let kernel = elf::load(&config.kernel, &ram)?;
        if !boot::write_tables(&ram) {
            return Err(Error::Memory(
                "RAM too small for the boot page tables".into(),
            ));
        }
        let mut vcpus = Vec::new();
        for index in 0..config.vcpus {
            let vcpu = vm
                .create_vcpu(index as u64)
                .map_err(kvm("KVM_CREATE_VCPU"))?;
            boot::setup_vcpu(&vcpu, index, kernel.entry, &self.inner.cpuid)?;
            vcpus.push(vcpu);
        }
        let tsc_khz = vcpus[0].get_tsc_khz().map_err(kvm("KVM_GET_TSC_KHZ"))? as u64;
        let control_irq = EventFd::new(EFD_NONBLOCK)?;
        vm.register_irqfd(&control_irq, CONTROL_GSI)
            .map_err(kvm("KVM_IRQFD (control)"))?;

        // Dom0 keeps core-owned structures in reserved RAM at its top.
        let dom0_host = if privileged {
            let backend_irq = EventFd::new(EFD_NONBLOCK)?;
            vm.register_irqfd(&backend_irq, BACKEND_GSI)
                .map_err(kvm("KVM_IRQFD (backend)"))?;
            let host = Dom0Host::new(&ram, backend_irq)
                .filter(|h| h.reserved_start >= kernel.end + (4 << 20))
                .ok_or_else(|| Error::InvalidConfig("Domain-0 needs at least 16 MiB".into()))?;
            Some(host)
        } else {
            None
        };
        let dom0 = if privileged {
            None
        } else {
            self.inner.find(DOM0)
        };

        // From here on the domain becomes visible: allocate its id, its
        // control channel and its devices, undoing all on failure.
        let domid = if privileged {
            DOM0
        } else {
            allocate_domid(&mut self.inner.registry())?
        };
        let mut evtchn = self.inner.evtchn();
        evtchn.add_domain(domid, Arc::clone(&vm));
        let control_port = if privileged {
            0
        } else {
            match evtchn.alloc_unbound(DOM0, domid) {
                Ok(port) => port,
                Err(errno) => {
                    evtchn.remove_domain(domid);
                    return Err(Error::BadState {
                        domid: DOM0,
                        message: format!("no control port: {}", errno.name()),
                    });
                }
            }
        };
        drop(evtchn);
        let undo_channels = || {
            let mut evtchn = self.inner.evtchn();
            evtchn.remove_domain(domid);
            if control_port != 0 {
                let _ = evtchn.close(DOM0, control_port);
            }
        };
        let io = OnceLock::new();
        if !config.devices.is_empty() {
            match self.attach_at_boot(dom0.as_ref(), domid, &vm, &ram, &config) {
                Ok(domain_io) => {
                    let _ = io.set(domain_io);
                }
                Err(e) => {
                    undo_channels();
                    return Err(e);
                }
            }
        }
        let mut info = boot_info(
            &config,
            domid,
            privileged,
            ram.size(),
            kernel.end,
            tsc_khz,
            control_port,
        );
        if let Some(io) = io.get() {
            let devices = io.guest_devices();
            info.device_count = devices.len() as u32;
            info.devices[..devices.len()].copy_from_slice(&devices);
            io.publish(&ram, None);
        }
        if let Some(host) = &dom0_host {
            info.reserved_start = host.reserved_start;
            info.backend_ring = host.ring_address();
        }
        boot::write_boot_info(&ram, &info);
        if let Some(host) = dom0_host {
            *self.inner.dom0_host.lock().expect("dom0 host lock") = Some(host);
        }
        let domain = Arc::new(Domain {
            id: domid,
            name: Mutex::new(config.name.clone()),
            vm,
            ram,
            memory_mib: config.memory_mib,
            vcpu_count: config.vcpus,
            status: Mutex::new(Status {
                life: Life::Alive,
                paused: config.start_paused,
                parked: 0,
                message: None,
            }),
            status_changed: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            control_port,
            io,
            placement: config.placement,
            control_irq,
            counters: Counters::default(),
            console: Mutex::new(LineAssembler::default()),
            created,
            first_output: OnceLock::new(),
            cpu_ns_retired: AtomicU64::new(0),
        });
        self.inner
            .registry()
            .domains
            .insert(domid, Arc::clone(&domain));
        if let Err(e) = self.spawn_vcpus(&domain, vcpus) {
            let _ = self.teardown(domid);
            return Err(e);
        }
        tracing::info!(
            domid,
            "created domain {} ({} MiB, {} vCPU)",
            config.name,
            config.memory_mib,
            config.vcpus
        );
        Ok(domid)
    }

    fn spawn_vcpus(&self, domain: &Arc<Domain>, vcpus: Vec<VcpuFd>) -> Result<()> {
        let mut threads = domain.threads.lock().expect("vcpu threads lock");
        for (index, vcpu) in vcpus.into_iter().enumerate() {
            let tid = Arc::new(AtomicI32::new(0));
            let (core, dom, thread_tid) = (
                Arc::clone(&self.inner),
                Arc::clone(domain),
                Arc::clone(&tid),
            );
            let handle = std::thread::Builder::new()
                .name(format!("vcpu{}.{index}", domain.id))
                .spawn(move || {
                    // SAFETY: gettid has no preconditions.
                    thread_tid.store(unsafe { libc::gettid() }, Ordering::Relaxed);
                    vcpu::run(core, dom, vcpu, index as u8);
                })?;
            threads.push(VcpuThread { tid, handle });
        }
        Ok(())
    }

    /// Stops every vCPU of `domid` until [`Hypervisor::unpause`].
    pub fn pause(&self, domid: DomId) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        let mut status = domain.status();
        if status.life != Life::Alive {
            return Err(Error::BadState {
                domid,
                message: "not running".into(),
            });
        }
        status.paused = true;
        drop(status);
        let deadline = Instant::now() + VCPU_RESPONSE_TIMEOUT;
        loop {
            let live = domain
                .threads
                .lock()
                .expect("vcpu threads lock")
                .iter()
                .filter(|t| !t.handle.is_finished())
                .count();
            let status = domain.status();
            if status.parked >= live || status.life != Life::Alive {
                break;
            }
            drop(status);
            kick_all(&domain);
            let status = domain.status();
            let _ = domain
                .status_changed
                .wait_timeout(status, Duration::from_millis(2));
            if Instant::now() > deadline {
                return Err(Error::BadState {
                    domid,
                    message: "vCPUs did not stop".into(),
                });
            }
        }
        self.inner.events.publish(Event::State {
            domid,
            state: DomainState::Paused,
            message: None,
        });
        Ok(())
    }

    /// Lets a paused domain run again.
    pub fn unpause(&self, domid: DomId) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        let mut status = domain.status();
        if !status.paused {
            return Err(Error::BadState {
                domid,
                message: "not paused".into(),
            });
        }
        status.paused = false;
        drop(status);
        domain.status_changed.notify_all();
        self.inner.events.publish(Event::State {
            domid,
            state: domain.state(),
            message: None,
        });
        Ok(())
    }

    /// Gives a domain a new name, unique among live domains.
    pub fn rename(&self, domid: DomId, name: &str) -> Result<()> {
        validate_name(name)?;
        let registry = self.inner.registry();
        let domain = registry
            .domains
            .get(&domid)
            .ok_or(Error::NoSuchDomain(domid))?;
        if registry
            .domains
            .values()
            .any(|d| d.id != domid && d.name() == name)
        {
            return Err(Error::InvalidConfig(format!(
                "a domain named '{name}' already exists"
            )));
        }
        *domain.name.lock().expect("domain name lock") = name.to_string();
        Ok(())
    }

    /// The KVM API version of `/dev/kvm`.
    pub fn kvm_api_version(&self) -> i32 {
        self.inner.kvm.get_api_version()
    }

    /// Asks the guest to shut itself down (`xl shutdown` / `xl reboot`).
    pub fn request_shutdown(&self, domid: DomId, request: ControlRequest) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        if domain.status().life != Life::Alive {
            return Err(Error::BadState {
                domid,
                message: "not running".into(),
            });
        }
        let offset = std::mem::offset_of!(protocol::boot::SharedInfo, control_request) as u64;
        domain
            .ram
            .write_u32(SHARED_INFO_ADDR + offset, request as u32);
        domain.control_irq.write(1)?;
        Ok(())
    }

    /// Waits until `domid` reaches a final state or `timeout` passes.
    pub fn wait_final(&self, domid: DomId, timeout: Duration) -> Option<DomainState> {
        let domain = self.domain(domid)?;
        let deadline = Instant::now() + timeout;
        let mut status = domain.status();
        while status.life == Life::Alive {
            let left = deadline.checked_duration_since(Instant::now())?;
            status = domain
                .status_changed
                .wait_timeout(status, left)
                .expect("domain status lock")
                .0;
        }
        drop(status);
        Some(domain.state())
    }

    /// Destroys a domain at once: stops its vCPUs, closes its ports and
    /// frees its VM, RAM and eventfds. Domain-0 goes only with the core.
    pub fn destroy(&self, domid: DomId) -> Result<()> {
        if domid == DOM0 && self.inner.registry().domains.len() > 1 {
            return Err(Error::BadState {
                domid,
                message: "Domain-0 cannot be destroyed while guests run".into(),
            });
        }
        self.teardown(domid)
    }

    fn teardown(&self, domid: DomId) -> Result<()> {
        let domain = self
            .inner
            .registry()
            .domains
            .remove(&domid)
            .ok_or(Error::NoSuchDomain(domid))?;
        domain.finish(Life::Dying, None);
        let deadline = Instant::now() + VCPU_RESPONSE_TIMEOUT;
        while domain
            .threads
            .lock()
            .expect("vcpu threads lock")
            .iter()
            .any(|t| !t.handle.is_finished())
        {
            kick_all(&domain);
            std::thread::sleep(Duration::from_millis(1));
            if Instant::now() > deadline {
                tracing::error!(domid, "vCPU threads are slow to stop; still waiting");
            }
        }
        for thread in std::mem::take(&mut *domain.threads.lock().expect("vcpu threads lock")) {
            let _ = thread.handle.join();
        }
        if let Some(io) = domain.io.get() {
            let mut host = self.inner.dom0_host.lock().expect("dom0 host lock");
            io.detach(host.as_mut(), &self.inner.evtchn);
        }
        if domid == DOM0 {
            *self.inner.dom0_host.lock().expect("dom0 host lock") = None;
        }
        let _ = domain.vm.unregister_irqfd(&domain.control_irq, CONTROL_GSI);
        let mut evtchn = self.inner.evtchn();
        evtchn.remove_domain(domid);
        if domain.control_port != 0 {
            let _ = evtchn.close(DOM0, domain.control_port);
        }
        drop(evtchn);
        self.inner.events.publish(Event::State {
            domid,
            state: DomainState::Dying,
            message: None,
        });
        if Arc::strong_count(&domain) > 1 {
            tracing::warn!(
                domid,
                "domain still referenced after destroy; freed when released"
            );
        }
        tracing::info!(domid, "destroyed domain {}", domain.name());
        Ok(())
    }
}

impl Drop for Hypervisor {
    fn drop(&mut self) {
        let ids: Vec<DomId> = self
            .inner
            .registry()
            .domains
            .keys()
            .rev()
            .copied()
            .collect();
        for domid in ids {
            let _ = self.teardown(domid);
        }
    }
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidConfig(format!(
            "name '{name}' must be 1 to 64 printable characters"
        )));
    }
    if name.parse::<u32>().is_ok() {
        return Err(Error::InvalidConfig(format!(
            "name '{name}' is a number: it would read as a domain id"
        )));
    }
    Ok(())
}

fn validate(config: &DomainConfig) -> Result<()> {
    let bad = |m: String| Err(Error::InvalidConfig(m));
    validate_name(&config.name)?;
    if !(MIN_RAM_MIB..=MAX_RAM_MIB).contains(&config.memory_mib) {
        return bad(format!(
            "memory {} MiB is outside {MIN_RAM_MIB}..={MAX_RAM_MIB} MiB",
            config.memory_mib
        ));
    }
    if config.vcpus == 0 || config.vcpus as usize > MAX_VCPUS {
        return bad(format!("vcpus {} is outside 1..={MAX_VCPUS}", config.vcpus));
    }
    if config.cmdline.len() > CMDLINE_MAX {
        return bad(format!(
            "cmdline is {} bytes, more than {CMDLINE_MAX}",
            config.cmdline.len()
        ));
    }
    Ok(())
}

fn allocate_domid(registry: &mut Registry) -> Result<DomId> {
    for _ in 0..DOMID_MAX {
        let candidate = registry.next_domid;
        registry.next_domid = if candidate >= DOMID_MAX {
            1
        } else {
            candidate + 1
        };
        if !registry.domains.contains_key(&candidate) {
            return Ok(candidate);
        }
    }
    Err(Error::InvalidConfig("no free domain id".into()))
}

fn boot_info(
    config: &DomainConfig,
    domid: DomId,
    privileged: bool,
    ram_bytes: u64,
    kernel_end: u64,
    tsc_khz: u64,
    control_port: u32,
) -> BootInfo {
    let mut cmdline = [0u8; CMDLINE_MAX];
    cmdline[..config.cmdline.len()].copy_from_slice(config.cmdline.as_bytes());
    BootInfo {
        magic: BOOT_MAGIC,
        version: BOOT_VERSION,
        flags: if privileged { FLAG_PRIVILEGED } else { 0 },
        domid,
        vcpus: config.vcpus as u16,
        cmdline_len: config.cmdline.len() as u32,
        ram_bytes,
        kernel_end,
        tsc_khz,
        control_domid: DOM0,
        _pad: 0,
        control_port,
        cmdline,
        device_count: 0,
        _pad2: 0,
        devices: Default::default(),
        reserved_start: ram_bytes,
        backend_ring: 0,
    }
}
