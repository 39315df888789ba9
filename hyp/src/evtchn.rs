//! Event channels: ports, and their wiring into KVM.
//!
//! An interdomain channel between port `pa` of domain A and port `pb` of
//! domain B is two eventfds, one per direction. The A-to-B eventfd is
//! registered as an ioeventfd in A's VM on the doorbell address with
//! `datamatch = pa`, and as an irqfd in B's VM on the GSI whose MSI route
//! raises `pb`'s vector. A guest's send is therefore handled inside KVM
//! from the doorbell write to the interrupt in the other domain: the
//! core's threads never run. The B-to-A eventfd mirrors it.
//!
//! Semantics follow Xen's `EVTCHNOP_*`: closing one end of an interdomain
//! channel returns the other end to *unbound* (its owner may close it or
//! wait for a new bind); a send on an unbound port is dropped; a send on a
//! free or invalid port is `EINVAL`.

use crate::error::{kvm, Result};
use kvm_ioctls::{IoEventAddress, VmFd};
use protocol::domain::DomId;
use protocol::evtchn::{is_valid_port, PortStatus, NR_PORTS};
use protocol::hypercall::Errno;
use protocol::memory::DOORBELL_ADDR;
use std::collections::HashMap;
use std::sync::Arc;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// The outcome of a port operation, as a hypercall reports it.
pub type PortResult<T> = std::result::Result<T, Errno>;

/// The domain id `evtchn_status` reports for a port whose other end is the
/// core (Xen's `DOMID_XEN`).
pub const DOMID_CORE: DomId = 0x7FF2;

/// GSI whose MSI route raises the backend vector (Dom0).
pub const BACKEND_GSI: u32 = 30;

/// GSI whose MSI route raises the control vector.
pub const CONTROL_GSI: u32 = 31;

/// The GSI whose MSI route raises `port`'s vector.
pub fn port_gsi(port: u32) -> u32 {
    32 + port
}

enum Port {
    Free,
    Unbound {
        remote: DomId,
    },
    Interdomain {
        remote: DomId,
        remote_port: u32,
        tx: EventFd,
    },
    /// A port whose other end is an eventfd pair in this process (the
    /// core's ioreq slots, or whatever device setup wired): writing `raise`
    /// raises the port in the domain, a send on the port signals `on_send`.
    Eventfd {
        raise: Option<EventFd>,
        on_send: Option<EventFd>,
    },
}

struct DomainPorts {
    vm: Arc<VmFd>,
    ports: Vec<Port>,
}

/// Every domain's ports, and the eventfds wiring them.
#[derive(Default)]
pub struct EventChannels {
    domains: HashMap<DomId, DomainPorts>,
}

impl EventChannels {
    /// Gives a new domain an empty port table.
    pub fn add_domain(&mut self, domid: DomId, vm: Arc<VmFd>) {
        let ports = (0..NR_PORTS).map(|_| Port::Free).collect();
        self.domains.insert(domid, DomainPorts { vm, ports });
    }

    /// Closes every port of a domain that is going away.
    pub fn remove_domain(&mut self, domid: DomId) {
        for port in 1..NR_PORTS {
            let _ = self.close(domid, port);
        }
        self.domains.remove(&domid);
    }

    /// Moves every port of `domid` to a new VM of the same domain (a
    /// restarted Domain-0): each eventfd that ends in the domain (a
    /// channel's incoming side, a raise) is wired as an irqfd into `vm`,
    /// and each that starts there (a send) as an ioeventfd on its
    /// doorbell (the irqfds leave the old VM: an eventfd drives only one).
    /// Port numbers and the other ends stay as they are, so the domain's
    /// peers notice nothing.
    pub fn move_domain(&mut self, domid: DomId, vm: Arc<VmFd>) -> Result<()> {
        let Some(table) = self.domains.get(&domid) else {
            return Ok(());
        };
        let doorbell = |fd: &EventFd, port: u32| {
            vm.register_ioevent(fd, &IoEventAddress::Mmio(DOORBELL_ADDR), port)
                .map_err(kvm("KVM_IOEVENTFD (moved port)"))
        };
        // An eventfd drives one irqfd at a time: out of the old VM first.
        let old = Arc::clone(&table.vm);
        let irq = |fd: &EventFd, port: u32| {
            let _ = old.unregister_irqfd(fd, port_gsi(port));
            vm.register_irqfd(fd, port_gsi(port))
                .map_err(kvm("KVM_IRQFD (moved port)"))
        };
        for (port, entry) in table.ports.iter().enumerate() {
            let port = port as u32;
            match entry {
                Port::Free | Port::Unbound { .. } => {}
                Port::Eventfd { raise, on_send } => {
                    if let Some(fd) = raise {
                        irq(fd, port)?;
                    }
                    if let Some(fd) = on_send {
                        doorbell(fd, port)?;
                    }
                }
                Port::Interdomain {
                    remote,
                    remote_port,
                    tx,
                } => {
                    doorbell(tx, port)?;
                    let incoming = self
                        .domains
                        .get(remote)
                        .and_then(|t| t.ports.get(*remote_port as usize));
                    if let Some(Port::Interdomain { tx: back, .. }) = incoming {
                        irq(back, port)?;
                    }
                }
            }
        }
        if let Some(table) = self.domains.get_mut(&domid) {
            table.vm = vm;
        }
        Ok(())
    }

    fn port_mut(&mut self, domid: DomId, port: u32) -> PortResult<&mut Port> {
        let table = self.domains.get_mut(&domid).ok_or(Errno::Srch)?;
        if !is_valid_port(port) {
            return Err(Errno::Inval);
        }
        Ok(&mut table.ports[port as usize])
    }

    fn free_port(&self, domid: DomId) -> PortResult<u32> {
        let table = self.domains.get(&domid).ok_or(Errno::Srch)?;
        (1..NR_PORTS)
            .find(|&p| matches!(table.ports[p as usize], Port::Free))
            .ok_or(Errno::NoSpc)
    }

    /// `alloc_unbound`: a port of `domid` that `remote` may bind.
    pub fn alloc_unbound(&mut self, domid: DomId, remote: DomId) -> PortResult<u32> {
        if !self.domains.contains_key(&remote) {
            return Err(Errno::Srch);
        }
        let port = self.free_port(domid)?;
        *self.port_mut(domid, port)? = Port::Unbound { remote };
        Ok(port)
    }

    /// `bind_interdomain`: connects a new port of `domid` to `remote_port`
    /// of `remote`, which must be unbound and offered to `domid`.
    pub fn bind_interdomain(
        &mut self,
        domid: DomId,
        remote: DomId,
        remote_port: u32,
    ) -> PortResult<u32> {
        if !self.domains.contains_key(&remote) {
            return Err(Errno::Srch);
        }
        match self.port_mut(remote, remote_port)? {
            Port::Unbound { remote: offered_to } if *offered_to == domid => {}
            _ => return Err(Errno::Inval),
        }
        let port = self.free_port(domid)?;
        let local_vm = Arc::clone(&self.domains[&domid].vm);
        let remote_vm = Arc::clone(&self.domains[&remote].vm);
        let to_remote = wire(&local_vm, port, &remote_vm, remote_port)?;
        let to_local = match wire(&remote_vm, remote_port, &local_vm, port) {
            Ok(fd) => fd,
            Err(errno) => {
                unwire(&local_vm, port, &remote_vm, remote_port, &to_remote);
                return Err(errno);
            }
        };
        *self.port_mut(domid, port)? = Port::Interdomain {
            remote,
            remote_port,
            tx: to_remote,
        };
        *self.port_mut(remote, remote_port)? = Port::Interdomain {
            remote: domid,
            remote_port: port,
            tx: to_local,
        };
        Ok(port)
    }

    /// Allocates a port of `domid` whose other end is an eventfd pair in
    /// this process: writing `raise` raises the port in the domain; the
    /// domain's sends on it signal `on_send`.
    pub fn bind_eventfd(
        &mut self,
        domid: DomId,
        raise: Option<&EventFd>,
        on_send: Option<&EventFd>,
    ) -> Result<u32> {
        let errno = |errno| crate::error::port_error(domid, errno);
        let port = self.free_port(domid).map_err(errno)?;
        let vm = Arc::clone(&self.domains[&domid].vm);
        let raise = raise.map(EventFd::try_clone).transpose()?;
        let on_send = on_send.map(EventFd::try_clone).transpose()?;
        if let Some(fd) = &raise {
            vm.register_irqfd(fd, port_gsi(port))
                .map_err(kvm("KVM_IRQFD (port)"))?;
        }
        if let Some(fd) = &on_send {
            if let Err(e) = vm.register_ioevent(fd, &IoEventAddress::Mmio(DOORBELL_ADDR), port) {
                if let Some(fd) = &raise {
                    let _ = vm.unregister_irqfd(fd, port_gsi(port));
                }
                return Err(kvm("KVM_IOEVENTFD (port)")(e));
            }
        }
        *self.port_mut(domid, port).map_err(errno)? = Port::Eventfd { raise, on_send };
        Ok(port)
    }

    /// `close`: frees a port; the remote end of a channel becomes unbound.
    pub fn close(&mut self, domid: DomId, port: u32) -> PortResult<()> {
        match std::mem::replace(self.port_mut(domid, port)?, Port::Free) {
            Port::Free => Err(Errno::Inval),
            Port::Unbound { .. } => Ok(()),
            Port::Eventfd { raise, on_send } => {
                let vm = &self.domains[&domid].vm;
                if let Some(fd) = raise {
                    let _ = vm.unregister_irqfd(&fd, port_gsi(port));
                }
                if let Some(fd) = on_send {
                    let _ = vm.unregister_ioevent(&fd, &IoEventAddress::Mmio(DOORBELL_ADDR), port);
                }
                Ok(())
            }
            Port::Interdomain {
                remote,
                remote_port,
                tx,
            } => {
                let local_vm = Arc::clone(&self.domains[&domid].vm);
                unwire(&local_vm, port, &self.domains[&remote].vm, remote_port, &tx);
                let back = std::mem::replace(
                    self.port_mut(remote, remote_port)?,
                    Port::Unbound { remote: domid },
                );
                if let Port::Interdomain { tx: back_tx, .. } = back {
                    let remote_vm = Arc::clone(&self.domains[&remote].vm);
                    unwire(&remote_vm, remote_port, &local_vm, port, &back_tx);
                }
                Ok(())
            }
        }
    }

    /// `status`: [`PortStatus::pack`] of what the port is.
    pub fn status(&mut self, domid: DomId, port: u32) -> PortResult<u64> {
        Ok(match self.port_mut(domid, port)? {
            Port::Free => PortStatus::Closed.pack(0, 0),
            Port::Eventfd { .. } => PortStatus::Interdomain.pack(DOMID_CORE, 0),
            Port::Unbound { remote } => PortStatus::Unbound.pack(*remote, 0),
            Port::Interdomain {
                remote,
                remote_port,
                ..
            } => PortStatus::Interdomain.pack(*remote, *remote_port),
        })
    }

    /// A doorbell write that KVM did not catch: the port has no ioeventfd.
    /// Returns the send status the guest is to see.
    pub fn send_slow(&mut self, domid: DomId, port: u32) -> PortResult<()> {
        match self.port_mut(domid, port)? {
            Port::Free => Err(Errno::Inval),
            Port::Unbound { .. } => Ok(()),
            Port::Interdomain { tx, .. } => tx.write(1).map_err(|_| Errno::Busy),
            Port::Eventfd {
                on_send: Some(fd), ..
            } => fd.write(1).map_err(|_| Errno::Busy),
            Port::Eventfd { on_send: None, .. } => Ok(()),
        }
    }

    /// Number of ports open in `domid` (for tests and `xl` reports).
    pub fn open_ports(&self, domid: DomId) -> usize {
        self.domains.get(&domid).map_or(0, |t| {
            t.ports.iter().filter(|p| !matches!(p, Port::Free)).count()
        })
    }
}

/// Creates the eventfd that carries `from_port`'s sends to `to_port`.
fn wire(from_vm: &VmFd, from_port: u32, to_vm: &VmFd, to_port: u32) -> PortResult<EventFd> {
    let fd = EventFd::new(EFD_NONBLOCK).map_err(|e| {
        tracing::warn!("an eventfd for port {from_port}: {e}");
        Errno::NoMem
    })?;
    if let Err(e) = from_vm.register_ioevent(&fd, &IoEventAddress::Mmio(DOORBELL_ADDR), from_port) {
        tracing::warn!("KVM_IOEVENTFD for port {from_port}: {e}");
        return Err(Errno::Busy);
    }
    if let Err(e) = to_vm.register_irqfd(&fd, port_gsi(to_port)) {
        tracing::warn!("KVM_IRQFD for port {to_port}: {e}");
        let _ = from_vm.unregister_ioevent(&fd, &IoEventAddress::Mmio(DOORBELL_ADDR), from_port);
        return Err(Errno::Busy);
    }
    Ok(fd)
}

/// Undoes [`wire`].
fn unwire(from_vm: &VmFd, from_port: u32, to_vm: &VmFd, to_port: u32, fd: &EventFd) {
    if let Err(e) = from_vm.unregister_ioevent(fd, &IoEventAddress::Mmio(DOORBELL_ADDR), from_port)
    {
        tracing::warn!("removing ioeventfd of port {from_port}: {e}");
    }
    if let Err(e) = to_vm.unregister_irqfd(fd, port_gsi(to_port)) {
        tracing::warn!("removing irqfd of port {to_port}: {e}");
    }
}
