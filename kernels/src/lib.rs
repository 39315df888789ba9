//! The guest kernels, built by this crate's build script from `service-vm/`
//! and `frontends/` and embedded here, so a fresh clone needs no manual
//! step to boot a domain.

/// The service VM (Dom0) kernel: a static x86-64 ELF.
pub const SERVICE_VM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/service-vm.elf"));

/// The guest (DomU) kernel: a static x86-64 ELF.
pub const FRONTENDS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/frontends.elf"));

/// Where the build left the service VM kernel on disk.
pub const SERVICE_VM_PATH: &str = concat!(env!("OUT_DIR"), "/service-vm.elf");

/// Where the build left the guest kernel on disk.
pub const FRONTENDS_PATH: &str = concat!(env!("OUT_DIR"), "/frontends.elf");
