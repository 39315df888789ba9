//! The seams device setup uses. The core knows no device: it offers
//!
//! * MMIO ranges whose trapped accesses go to a handler
//!   ([`Hypervisor::add_mmio_handler`]), and MMIO writes that signal an
//!   eventfd inside KVM ([`Hypervisor::add_mmio_eventfd`]);
//! * event-channel ports: one wired to eventfds of the caller's
//!   ([`Hypervisor::bind_eventfd_port`]), or the two ends of an
//!   interdomain channel;
//! * Domain-0's view of a guest: foreign windows onto its RAM
//!   ([`Hypervisor::map_foreign`]), ioreq servers for its register
//!   accesses ([`Hypervisor::create_ioreq_server`]), pages of Dom0's
//!   reserved RAM ([`Hypervisor::dom0_pages`]) and the backend ring page;
//! * a guest's control vector and its console log.
//!
//! `hypd`'s device setup builds both placements from these.

use super::Hypervisor;
use crate::console::ConsoleSink;
use crate::error::{port_error, Error, Result};
use crate::foreign::ForeignWindow;
use crate::ioreq::IoreqServer;
use crate::mmio::MmioHandler;
use crate::reserved::{BackendRingPage, ReservedPages, ReservedRam};
use kvm_ioctls::IoEventAddress;
use protocol::domain::{DomId, DOM0};
use std::sync::Arc;
use vmm_sys_util::eventfd::EventFd;

impl Hypervisor {
    /// Hands the trapped accesses to `[base, base + len)` of `domid` to
    /// `handler`, on the vCPU thread that trapped them. The range must lie
    /// in the device part of the MMIO hole and overlap no other.
    pub fn add_mmio_handler(
        &self,
        domid: DomId,
        base: u64,
        len: u64,
        handler: Arc<dyn MmioHandler>,
    ) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        domain
            .mmio
            .insert(base, len, handler)
            .map_err(|why| Error::MmioRange {
                domid,
                base,
                len,
                why,
            })
    }

    /// Stops handling the range at `base` of `domid`; returns its handler.
    pub fn remove_mmio_handler(&self, domid: DomId, base: u64) -> Option<Arc<dyn MmioHandler>> {
        self.domain(domid)?.mmio.remove(base)
    }

    /// Makes a 4-byte write of `value` to `addr` in `domid` signal `fd`
    /// inside KVM (an ioeventfd): the write never leaves the kernel.
    pub fn add_mmio_eventfd(
        &self,
        domid: DomId,
        addr: u64,
        value: u32,
        fd: &EventFd,
    ) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        domain
            .vm
            .register_ioevent(fd, &IoEventAddress::Mmio(addr), value)
            .map_err(crate::error::kvm("KVM_IOEVENTFD"))
    }

    /// Undoes [`Hypervisor::add_mmio_eventfd`] (nothing if the domain is
    /// gone: its ioeventfds went with its VM).
    pub fn remove_mmio_eventfd(&self, domid: DomId, addr: u64, value: u32, fd: &EventFd) {
        if let Some(domain) = self.domain(domid) {
            let _ = domain
                .vm
                .unregister_ioevent(fd, &IoEventAddress::Mmio(addr), value);
        }
    }

    /// A new port of `domid` whose other end is the caller: writing
    /// `raise` raises the port in the domain (an irqfd), and the domain's
    /// sends on it signal `on_send` (an ioeventfd on the doorbell).
    pub fn bind_eventfd_port(
        &self,
        domid: DomId,
        raise: Option<&EventFd>,
        on_send: Option<&EventFd>,
    ) -> Result<u32> {
        self.core.evtchn().bind_eventfd(domid, raise, on_send)
    }

    /// `alloc_unbound`: a new port of `domid` that `remote` may bind.
    pub fn alloc_unbound_port(&self, domid: DomId, remote: DomId) -> Result<u32> {
        self.core
            .evtchn()
            .alloc_unbound(domid, remote)
            .map_err(|errno| port_error(domid, errno))
    }

    /// `bind_interdomain`: a new port of `domid` joined to `remote_port`
    /// of `remote`, which must have been offered to `domid`.
    pub fn bind_interdomain_port(
        &self,
        domid: DomId,
        remote: DomId,
        remote_port: u32,
    ) -> Result<u32> {
        self.core
            .evtchn()
            .bind_interdomain(domid, remote, remote_port)
            .map_err(|errno| port_error(domid, errno))
    }

    /// Closes a port of `domid` (its other end, if any, becomes unbound).
    pub fn close_port(&self, domid: DomId, port: u32) -> Result<()> {
        self.core
            .evtchn()
            .close(domid, port)
            .map_err(|errno| port_error(domid, errno))
    }

    /// Raises `domid`'s control vector: it looks at its shared page again
    /// (a control request, a changed device table).
    pub fn raise_control(&self, domid: DomId) -> Result<()> {
        let domain = self.domain(domid).ok_or(Error::NoSuchDomain(domid))?;
        domain.control_irq.write(1)?;
        Ok(())
    }

    /// Where output written for `domid` lands: its console log, as if the
    /// domain had written it there itself.
    pub fn console_sink(&self, domid: DomId) -> ConsoleSink {
        ConsoleSink::new(Arc::downgrade(&self.core), domid)
    }

    /// Dom0's reserved region.
    fn reserved(&self) -> Result<Arc<ReservedRam>> {
        let dom0 = self.domain(DOM0).ok_or(Error::NoDom0)?;
        dom0.reserved.clone().ok_or(Error::NoDom0)
    }

    /// `count` contiguous zeroed pages of Domain-0's reserved RAM, lent
    /// until dropped.
    pub fn dom0_pages(&self, count: usize) -> Result<ReservedPages> {
        self.reserved()?
            .alloc(count)
            .ok_or(Error::ReservedFull(count))
    }

    /// First byte of Domain-0's reserved region: Dom0's own RAM is below
    /// it.
    pub fn dom0_reserved_start(&self) -> Result<u64> {
        Ok(self.reserved()?.start)
    }

    /// Domain-0's backend ring page, for its one producer: the first call
    /// gets it, later ones [`Error::BackendRingTaken`].
    pub fn take_backend_ring(&self) -> Result<BackendRingPage> {
        self.reserved()?
            .take_backend_ring()
            .ok_or(Error::BackendRingTaken)
    }

    /// Maps `[start, start + len)` of `guest`'s RAM into Domain-0 (see
    /// [`ForeignWindow`]) until the window is dropped.
    pub fn map_foreign(&self, guest: DomId, start: u64, len: u64) -> Result<ForeignWindow> {
        let domain = self.domain(guest).ok_or(Error::NoSuchDomain(guest))?;
        ForeignWindow::map(&self.reserved()?, guest, &domain.ram, start, len)
    }

    /// An ioreq server that forwards `guest`'s trapped accesses to
    /// Domain-0 (register it for ranges with
    /// [`Hypervisor::add_mmio_handler`]).
    pub fn create_ioreq_server(&self, guest: DomId) -> Result<Arc<IoreqServer>> {
        let domain = self.domain(guest).ok_or(Error::NoSuchDomain(guest))?;
        let reserved = self.reserved()?;
        let server = Arc::new(IoreqServer::new(&self.core, &reserved, &domain)?);
        let requeue: Arc<dyn crate::state::Requeue> = server.clone();
        let weak = Arc::downgrade(&requeue);
        self.core.ioreq_servers().push(weak);
        Ok(server)
    }
}
