//! The service VM kernel (Dom0).
#![no_std]
#![no_main]

use guest_runtime::{println, BootInfo};
use protocol::domain::ShutdownReason;

guest_runtime::entry!(main);

fn main(boot: &'static BootInfo) -> ! {
    println!("service-vm: domain {} up", boot.domid);
    guest_runtime::hypercall::shutdown(ShutdownReason::Poweroff, b"")
}
