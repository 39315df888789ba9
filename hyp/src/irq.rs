//! Interrupt routing of a domain's VM: every port's GSI is an MSI to the
//! port's vector on vCPU 0, set once when the VM is made.

use crate::error::{kvm, Error, Result};
use crate::evtchn::{port_gsi, BACKEND_GSI, CONTROL_GSI};
use kvm_bindings::{
    kvm_irq_routing_entry, kvm_irq_routing_msi, KvmIrqRouting, KVM_IRQ_ROUTING_MSI,
};
use kvm_ioctls::VmFd;
use protocol::evtchn::{port_vector, BACKEND_VECTOR, CONTROL_VECTOR, NR_PORTS};

/// MSI address of local APIC 0 (vCPU 0), fixed delivery.
const MSI_ADDRESS_VCPU0: u32 = 0xFEE0_0000;

fn msi(gsi: u32, vector: u8) -> kvm_irq_routing_entry {
    let mut entry = kvm_irq_routing_entry {
        gsi,
        type_: KVM_IRQ_ROUTING_MSI,
        ..Default::default()
    };
    entry.u.msi = kvm_irq_routing_msi {
        address_lo: MSI_ADDRESS_VCPU0,
        address_hi: 0,
        data: vector as u32,
        ..Default::default()
    };
    entry
}

/// Installs the control and backend routes and one route per port.
pub fn install_routes(vm: &VmFd) -> Result<()> {
    let mut entries = vec![
        msi(CONTROL_GSI, CONTROL_VECTOR),
        msi(BACKEND_GSI, BACKEND_VECTOR),
    ];
    entries.extend((1..NR_PORTS).map(|port| msi(port_gsi(port), port_vector(port))));
    let mut routing = KvmIrqRouting::new(entries.len()).map_err(Error::Routing)?;
    routing.as_mut_slice().copy_from_slice(&entries);
    vm.set_gsi_routing(&routing)
        .map_err(kvm("KVM_SET_GSI_ROUTING"))
}
