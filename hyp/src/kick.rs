//! Kicking vCPU threads out of `KVM_RUN`: a real-time signal whose handler
//! does nothing, so the ioctl returns `EINTR` and the thread looks at its
//! domain's state again.

use crate::domain::Domain;
use std::os::unix::thread::JoinHandleExt;
use std::sync::Once;

/// The signal that kicks a vCPU thread out of `KVM_RUN`.
fn kick_signal() -> i32 {
    libc::SIGRTMIN() + 2
}

/// Installs a handler for the kick signal that does nothing, so the signal
/// only interrupts `KVM_RUN` (with `EINTR`) and never kills the process.
pub(crate) fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        extern "C" fn on_kick(_: libc::c_int) {}
        // SAFETY: a zeroed sigaction with a handler that touches nothing is
        // valid; no SA_RESTART, so KVM_RUN returns EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_kick as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(kick_signal(), &action, std::ptr::null_mut());
        }
    });
}

/// Sends the kick signal to every vCPU thread of `domain` still running
/// (but the calling thread).
pub(crate) fn kick_all(domain: &Domain) {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    for thread in domain.threads.lock().expect("vcpu threads lock").iter() {
        if !thread.handle.is_finished() && thread.handle.as_pthread_t() != me {
            // SAFETY: the pthread_t belongs to a live, unjoined thread.
            unsafe { libc::pthread_kill(thread.handle.as_pthread_t(), kick_signal()) };
        }
    }
}
