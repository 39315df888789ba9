//! Requests the core leaves for the guest (`xl shutdown`, `xl reboot`).

use protocol::boot::ControlRequest;
use protocol::domain::ShutdownReason;

/// True if the core left a request (without taking it).
pub fn pending() -> bool {
    let field = &crate::hypercall::shared_info().control_request as *const u32;
    // SAFETY: a field of the shared page, written by the core.
    unsafe { field.read_volatile() != 0 }
}

/// Takes the pending control request, if any.
pub fn take_request() -> ControlRequest {
    let field = &crate::hypercall::shared_info().control_request as *const u32 as *mut u32;
    // SAFETY: the field lives in the shared page; the core writes it before
    // raising the control vector, and only this guest clears it.
    let raw = unsafe {
        let raw = field.read_volatile();
        field.write_volatile(0);
        raw
    };
    ControlRequest::from_raw(raw)
}

/// Obeys a pending control request: shuts the domain down if asked.
/// `name` prefixes the console message.
pub fn obey(name: &str) {
    let reason = match take_request() {
        ControlRequest::None => return,
        ControlRequest::Poweroff => ShutdownReason::Poweroff,
        ControlRequest::Reboot => ShutdownReason::Reboot,
    };
    crate::println!("{name}: shutting down ({})", reason.name());
    crate::hypercall::shutdown(reason, b"")
}

/// Sets the progress counter the core reports (see
/// [`protocol::boot::SharedInfo::progress`]).
pub fn set_progress(value: u64) {
    let field = &crate::hypercall::shared_info().progress as *const u64 as *mut u64;
    // SAFETY: the guest owns this field of the shared page; the core only
    // reads it.
    unsafe { field.write_volatile(value) };
}
