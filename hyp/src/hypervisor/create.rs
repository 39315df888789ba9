//! Making a domain, in named steps: check the request, build the VM (RAM,
//! kernel, vCPUs), register the domain (id and control channel), write
//! its boot info, start its vCPU threads. Each step owns what it made, so
//! an error at any step drops it again; [`Registration`] undoes the one
//! step that touches shared state unless the domain is committed.

use super::Hypervisor;
use crate::domain::{Counters, Domain, DomainConfig, Life, Status, VcpuThread};
use crate::error::{kvm, ConfigError, Error, Result};
use crate::events::LineAssembler;
use crate::evtchn::{BACKEND_GSI, CONTROL_GSI};
use crate::memory::GuestRam;
use crate::mmio::MmioMap;
use crate::reserved::{ReservedRam, RESERVED_BYTES};
use crate::state::{Core, Registry};
use crate::{boot, elf, irq, trace, vcpu};
use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{VcpuFd, VmFd};
use protocol::boot::{BootInfo, BOOT_MAGIC, BOOT_VERSION, CMDLINE_MAX, FLAG_PRIVILEGED};
use protocol::domain::NAME_MAX;
use protocol::domain::{DomId, DOM0, DOMID_MAX};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// Free RAM Dom0 needs between its kernel and its reserved region.
const DOM0_MIN_FREE: u64 = 4 << 20;

/// A VM with its RAM loaded and its vCPUs set up, not yet a domain.
pub(super) struct BuiltVm {
    vm: Arc<VmFd>,
    ram: GuestRam,
    vcpus: Vec<VcpuFd>,
    kernel_end: u64,
    tsc_khz: u64,
    /// Guest TSC minus host TSC ([`crate::trace::align_with_host`]).
    tsc_offset: i64,
    control_irq: EventFd,
}

/// A name held for a domain being made (and, for Domain-0, the one place
/// of Domain-0); given back on drop, by which time the domain (if made)
/// holds it in the registry.
struct NameReservation<'a> {
    core: &'a Core,
    name: String,
    dom0: bool,
    memory_mib: u64,
}

impl Drop for NameReservation<'_> {
    fn drop(&mut self) {
        let mut registry = self.core.registry();
        registry.reserved_names.remove(&self.name);
        registry.reserved_mib -= self.memory_mib;
        if self.dom0 {
            registry.dom0_being_made = false;
        }
    }
}

/// A domain's id and control channel, taken back on drop unless
/// [`Registration::commit`]ted.
struct Registration<'a> {
    core: &'a Core,
    domid: DomId,
    control_port: u32,
    committed: bool,
}

impl<'a> Registration<'a> {
    /// Gives the domain of `vm` an id and a port table, and a guest its
    /// control port in Dom0.
    fn new(core: &'a Core, vm: &Arc<VmFd>, privileged: bool) -> Result<Self> {
        let domid = if privileged {
            DOM0
        } else {
            allocate_domid(&mut core.registry())?
        };
        let mut evtchn = core.evtchn();
        evtchn.add_domain(domid, Arc::clone(vm));
        let mut registration = Self {
            core,
            domid,
            control_port: 0,
            committed: false,
        };
        if !privileged {
            match evtchn.alloc_unbound(DOM0, domid) {
                Ok(port) => registration.control_port = port,
                Err(errno) => {
                    drop(evtchn);
                    return Err(crate::error::port_error(DOM0, errno));
                }
            }
        }
        Ok(registration)
    }

    /// The domain is in the registry: its teardown undoes this from now on.
    fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let mut evtchn = self.core.evtchn();
        evtchn.remove_domain(self.domid);
        if self.control_port != 0 {
            let _ = evtchn.close(DOM0, self.control_port);
        }
    }
}

impl Hypervisor {
    /// Makes a domain and starts its vCPU threads (which wait while it is
    /// `held`); on failure nothing is left behind.
    pub(super) fn create(
        &self,
        config: DomainConfig,
        privileged: bool,
        held: bool,
    ) -> Result<DomId> {
        config.validate()?;
        let _admitted = self.admit(&config, privileged)?;
        let created = Instant::now();
        let built = build_vm(&self.core, &config, privileged)?;
        let reserved = if privileged {
            Some(Arc::new(reserve_dom0(&built)?))
        } else {
            None
        };
        let registration = Registration::new(&self.core, &built.vm, privileged)?;
        let info = boot_info(
            &config,
            &built,
            registration.domid,
            registration.control_port,
        );
        let info = match &reserved {
            Some(reserved) => BootInfo {
                reserved_start: reserved.start,
                backend_ring: reserved.backend_ring(),
                ..info
            },
            None => info,
        };
        boot::write_boot_info(&built.ram, &info);
        let domid = registration.domid;
        let (domain, vcpus) = built.into_domain(
            &config,
            domid,
            registration.control_port,
            reserved,
            MmioMap::default(),
            held,
            created,
        );
        let domain = Arc::new(domain);
        self.core
            .registry()
            .domains
            .insert(domid, Arc::clone(&domain));
        registration.commit();
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

    /// Refuses a second Domain-0, a guest before Domain-0, a name a live
    /// domain (or one being made) has, and RAM the host cannot spare;
    /// reserves the name and the RAM, all under the registry's lock, so
    /// concurrent creates cannot share them.
    fn admit(&self, config: &DomainConfig, privileged: bool) -> Result<NameReservation<'_>> {
        let name = config.name.as_str();
        let mut registry = self.core.registry();
        let has_dom0 = registry.domains.contains_key(&DOM0) || registry.dom0_being_made;
        match (privileged, has_dom0) {
            (true, true) => return Err(Error::Dom0Exists),
            (false, false) => return Err(Error::NoDom0),
            _ => {}
        }
        if registry.name_taken(name) {
            return Err(Error::NameTaken(name.into()));
        }
        let memory = crate::host_memory::MemoryReport::new(
            self.core.host_total_mib,
            self.core.host_reserve_mib.load(Ordering::Relaxed),
            registry.committed_mib(),
        );
        if config.memory_mib > memory.free_mib {
            return Err(Error::OutOfMemory {
                asked_mib: config.memory_mib,
                report: memory,
            });
        }
        registry.reserved_names.insert(name.to_string());
        registry.reserved_mib += config.memory_mib;
        registry.dom0_being_made |= privileged;
        Ok(NameReservation {
            core: &self.core,
            name: name.to_string(),
            dom0: privileged,
            memory_mib: config.memory_mib,
        })
    }

    pub(super) fn spawn_vcpus(&self, domain: &Arc<Domain>, vcpus: Vec<VcpuFd>) -> Result<()> {
        let mut threads = domain.threads.lock().expect("vcpu threads lock");
        for (index, vcpu) in vcpus.into_iter().enumerate() {
            let tid = Arc::new(AtomicI32::new(0));
            let (core, dom, thread_tid) =
                (Arc::clone(&self.core), Arc::clone(domain), Arc::clone(&tid));
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
}

impl BuiltVm {
    /// The domain this VM becomes (and its vCPUs, for their threads).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn into_domain(
        self,
        config: &DomainConfig,
        domid: DomId,
        control_port: u32,
        reserved: Option<Arc<ReservedRam>>,
        mmio: MmioMap,
        held: bool,
        created: Instant,
    ) -> (Domain, Vec<VcpuFd>) {
        let domain = Domain {
            id: domid,
            name: Mutex::new(config.name.clone()),
            vm: self.vm,
            ram: self.ram,
            memory_mib: config.memory_mib,
            vcpu_count: config.vcpus,
            status: Mutex::new(Status {
                life: Life::Alive,
                paused: config.start_paused,
                held,
                parked: 0,
                message: None,
            }),
            status_changed: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            control_port,
            mmio,
            reserved,
            control_irq: self.control_irq,
            counters: Counters::default(),
            log_limit: Default::default(),
            console: Mutex::new(LineAssembler::default()),
            created,
            first_output: OnceLock::new(),
            cpu_ns_retired: AtomicU64::new(0),
            tsc_offset: self.tsc_offset,
            tsc_khz: self.tsc_khz,
            nmi_pending: AtomicBool::new(false),
        };
        (domain, self.vcpus)
    }

    /// The VM's RAM.
    pub(super) fn ram(&self) -> &GuestRam {
        &self.ram
    }

    /// The VM.
    pub(super) fn vm(&self) -> &Arc<VmFd> {
        &self.vm
    }
}

/// The VM, its RAM with the kernel and boot tables in it, and its vCPUs
/// set to enter the kernel.
fn build_vm(core: &Core, config: &DomainConfig, privileged: bool) -> Result<BuiltVm> {
    let ram = GuestRam::new(&config.name, config.memory_mib << 20)?;
    build_vm_over(core, config, privileged, ram)
}

/// [`build_vm`] over RAM that exists already (a restarted Domain-0's,
/// whose core-owned pages must survive), zeroed where the kernel goes.
pub(super) fn build_vm_over(
    core: &Core,
    config: &DomainConfig,
    privileged: bool,
    ram: GuestRam,
) -> Result<BuiltVm> {
    let vm = Arc::new(create_vm(&core.kvm)?);
    vm.create_irq_chip().map_err(kvm("KVM_CREATE_IRQCHIP"))?;
    irq::install_routes(&vm)?;
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: ram.size(),
        userspace_addr: ram.host_address(),
    };
    // SAFETY: the region maps `ram`, which the domain owns for as long as
    // the VM exists (the domain holds both, and the VM fd goes first).
    unsafe { vm.set_user_memory_region(region) }.map_err(kvm("KVM_SET_USER_MEMORY_REGION"))?;
    let kernel = elf::load(&config.kernel, &ram)?;
    // The trace ring takes the top of RAM, above the kernel's.
    let kernel_room = kernel.end + trace::ring_bytes(privileged);
    if !boot::write_tables(&ram) || kernel_room > ram.size() {
        return Err(ConfigError::RamTooSmall.into());
    }
    let mut vcpus = Vec::new();
    let mut tsc_offset = 0;
    for index in 0..config.vcpus {
        let vcpu = vm
            .create_vcpu(u64::from(index))
            .map_err(kvm("KVM_CREATE_VCPU"))?;
        boot::setup_vcpu(&vcpu, index, kernel.entry, &core.cpuid)?;
        tsc_offset = trace::align_with_host(&vcpu)?;
        vcpus.push(vcpu);
    }
    let tsc_khz = u64::from(vcpus[0].get_tsc_khz().map_err(kvm("KVM_GET_TSC_KHZ"))?);
    let control_irq = EventFd::new(EFD_NONBLOCK)?;
    vm.register_irqfd(&control_irq, CONTROL_GSI)
        .map_err(kvm("KVM_IRQFD (control)"))?;
    Ok(BuiltVm {
        vm,
        ram,
        vcpus,
        kernel_end: kernel.end,
        tsc_khz,
        tsc_offset,
        control_irq,
    })
}

/// `KVM_CREATE_VM`, again if a signal interrupted it (`EINTR`, which the
/// kernel returns when a signal arrives while it sets the VM up).
fn create_vm(kvm: &kvm_ioctls::Kvm) -> Result<VmFd> {
    loop {
        match kvm.create_vm() {
            Err(e) if e.errno() == libc::EINTR => continue,
            other => return other.map_err(crate::error::kvm("KVM_CREATE_VM")),
        }
    }
}

/// Dom0's reserved region at the top of its RAM, and the backend vector's
/// irqfd.
fn reserve_dom0(built: &BuiltVm) -> Result<ReservedRam> {
    let backend_irq = EventFd::new(EFD_NONBLOCK)?;
    built
        .vm
        .register_irqfd(&backend_irq, BACKEND_GSI)
        .map_err(kvm("KVM_IRQFD (backend)"))?;
    let needed =
        built.kernel_end + DOM0_MIN_FREE + RESERVED_BYTES + protocol::trace::DOM0_RING_BYTES;
    if built.ram.size() < needed {
        return Err(Error::Dom0TooSmall {
            ram_mib: built.ram.size() >> 20,
            needed_mib: needed.div_ceil(1 << 20),
        });
    }
    let top = built.ram.size() - protocol::trace::DOM0_RING_BYTES;
    ReservedRam::new(&built.ram, top, Arc::clone(&built.vm), backend_irq).ok_or(
        Error::Dom0TooSmall {
            ram_mib: built.ram.size() >> 20,
            needed_mib: needed.div_ceil(1 << 20),
        },
    )
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
    Err(Error::NoFreeDomid)
}

/// The boot info of domain `domid` (a guest's reserved region is empty;
/// its trace ring is the top of its RAM).
pub(super) fn boot_info(
    config: &DomainConfig,
    built: &BuiltVm,
    domid: DomId,
    control_port: u32,
) -> BootInfo {
    let mut cmdline = [0u8; CMDLINE_MAX];
    cmdline[..config.cmdline.len()].copy_from_slice(config.cmdline.as_bytes());
    // Checked at admission: at most NAME_MAX bytes.
    let mut name = [0u8; NAME_MAX];
    let name_len = config.name.len().min(NAME_MAX);
    name[..name_len].copy_from_slice(&config.name.as_bytes()[..name_len]);
    let trace_ring = built.ram.size() - trace::ring_bytes(domid == DOM0);
    BootInfo {
        magic: BOOT_MAGIC,
        version: BOOT_VERSION,
        flags: if domid == DOM0 { FLAG_PRIVILEGED } else { 0 },
        domid,
        vcpus: u16::from(config.vcpus),
        cmdline_len: config.cmdline.len() as u32,
        ram_bytes: built.ram.size(),
        kernel_end: built.kernel_end,
        tsc_khz: built.tsc_khz,
        control_domid: DOM0,
        _pad: 0,
        control_port,
        cmdline,
        reserved_start: trace_ring,
        backend_ring: 0,
        name_len: name_len as u32,
        _pad2: 0,
        name,
        trace_ring,
        trace_ring_bytes: built.ram.size() - trace_ring,
    }
}
