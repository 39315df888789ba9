//! Where workloads write their human-readable lines, and how they end.
//!
//! A guest with a virtio console writes its lines there (that is how the
//! console backend gets exercised); a guest without one, or whose console
//! stopped working, uses the console hypercall (`println!`). Structured
//! results go to the toolstack as [`Report`]s either way.

use alloc::string::String;
use core::fmt::{self, Write};

use guest_runtime::{hypercall, println};
use protocol::device::kind;
use protocol::domain::ShutdownReason;
use protocol::report::{heapless_name::Name, Report};

use crate::virtio::{self, console::Console};

/// The output sink of a workload.
pub struct Out {
    console: Option<Console>,
}

impl Out {
    /// Opens the guest's virtio console if it has one.
    pub fn open() -> Self {
        let console = virtio::find(kind::CONSOLE).and_then(|dev| match Console::open(&dev) {
            Ok(console) => Some(console),
            Err(e) => {
                println!(
                    "frontends: virtio console {}: {e:?}; using the console hypercall",
                    dev.vdev()
                );
                None
            }
        });
        Self { console }
    }

    /// Writes one line, prefixed with `frontends: `.
    pub fn line(&mut self, args: fmt::Arguments) {
        let Some(console) = self.console.as_mut() else {
            println!("frontends: {args}");
            return;
        };
        let mut text = String::with_capacity(128);
        let _ = writeln!(text, "frontends: {args}");
        if let Err(e) = console.write(text.as_bytes()) {
            self.console = None;
            println!("frontends: virtio console failed ({e:?}); falling back to the hypercall");
            guest_runtime::print!("{text}");
        }
    }

    /// Reports a named check to the toolstack and prints it.
    pub fn check(&mut self, name: &str, passed: bool, value: i64, detail: fmt::Arguments) {
        self.line(format_args!(
            "check {name}: {detail} -> {}",
            if passed { "ok" } else { "FAILED" }
        ));
        self.report(&Report::Check {
            name: Name::new(name),
            passed,
            value,
        });
    }

    /// Hands a report to the toolstack, saying so if it is refused.
    pub fn report(&mut self, report: &Report) {
        if let Err(e) = hypercall::report(report) {
            self.line(format_args!("report refused: {}", e.name()));
        }
    }

    /// Waits for the console to take every line: the device reads the
    /// lines from this sink's buffers, which go when it is dropped (a
    /// line it had not read yet would be read from freed memory, and
    /// lost). Dropping drains.
    pub fn drain(&mut self) {
        if let Some(console) = self.console.as_mut() {
            if let Err(e) = console.drain() {
                println!("frontends: virtio console did not drain: {e:?}");
            }
        }
    }

    /// Waits for the console to take every line, then shuts the domain
    /// down with `reason`.
    pub fn finish(mut self, reason: ShutdownReason, message: &[u8]) -> ! {
        self.drain();
        hypercall::shutdown(reason, message)
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        self.drain();
    }
}

/// Writes a line to an [`Out`]: `outln!(out, "format", args...)`.
#[macro_export]
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => { $out.line(format_args!($($arg)*)) };
}
