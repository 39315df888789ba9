//! The guest kernel (DomU).
#![no_std]
#![no_main]

use guest_runtime::{println, BootInfo};
use protocol::domain::ShutdownReason;

guest_runtime::entry!(main);

fn main(boot: &'static BootInfo) -> ! {
    println!(
        "frontends: domain {} up, cmdline '{}'",
        boot.domid,
        boot.cmdline()
    );
    guest_runtime::hypercall::shutdown(ShutdownReason::Poweroff, b"")
}
