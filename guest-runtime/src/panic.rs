//! Fatal errors: a Rust panic or a CPU exception ends the domain with a
//! crash hypercall that carries the message.
//!
//! A panic in ring 3 formats its message normally. Ring 0 must not run the
//! formatting machinery (it may use SSE, which stops the VM here), so
//! exceptions and ring-0 panics build their message with [`Ring0Message`],
//! a byte writer made of volatile stores.

use core::ptr::addr_of_mut;
use protocol::domain::ShutdownReason;

const MESSAGE_CAPACITY: usize = 512;
static mut MESSAGE: [u8; MESSAGE_CAPACITY] = [0; MESSAGE_CAPACITY];

/// A message built without SSE, in a static buffer.
struct Ring0Message {
    len: usize,
}

impl Ring0Message {
    #[link_section = ".text.ring0"]
    fn byte(&mut self, byte: u8) {
        if self.len < MESSAGE_CAPACITY {
            // SAFETY: in bounds; only the crashing vCPU writes the buffer.
            unsafe {
                (addr_of_mut!(MESSAGE) as *mut u8)
                    .add(self.len)
                    .write_volatile(byte)
            };
            self.len += 1;
        }
    }

    #[link_section = ".text.ring0"]
    fn text(&mut self, text: &[u8]) {
        let mut i = 0;
        while i < text.len() {
            // SAFETY: in bounds of `text`.
            self.byte(unsafe { text.as_ptr().add(i).read_volatile() });
            i += 1;
        }
    }

    #[link_section = ".text.ring0"]
    fn hex(&mut self, value: u64) {
        self.text(b"0x");
        let mut shift = 64;
        while shift > 0 {
            shift -= 4;
            let digit = (value >> shift) as u8 & 0xF;
            self.byte(if digit < 10 {
                b'0' + digit
            } else {
                b'a' + digit - 10
            });
        }
    }

    #[link_section = ".text.ring0"]
    fn decimal(&mut self, mut value: u64) {
        // Uninitialised, not zeroed: zeroing may compile to SSE stores.
        let mut digits = core::mem::MaybeUninit::<[u8; 20]>::uninit();
        let digits = digits.as_mut_ptr() as *mut u8;
        let mut count = 0;
        loop {
            // SAFETY: at most 20 decimal digits in a u64.
            unsafe { digits.add(count).write_volatile(b'0' + (value % 10) as u8) };
            count += 1;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        while count > 0 {
            count -= 1;
            // SAFETY: `count` < 20.
            self.byte(unsafe { digits.add(count).read_volatile() });
        }
    }

    #[link_section = ".text.ring0"]
    fn crash(&self) -> ! {
        crate::hypercall::raw(
            protocol::hypercall::Op::SchedShutdown,
            ShutdownReason::Crash as u64,
            addr_of_mut!(MESSAGE) as u64,
            self.len as u64,
            0,
        );
        loop {
            // SAFETY: halting with interrupts off stops this vCPU for good.
            unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
        }
    }
}

const EXCEPTION_NAMES: [&[u8]; 21] = [
    b"#DE divide error",
    b"#DB debug",
    b"NMI",
    b"#BP breakpoint",
    b"#OF overflow",
    b"#BR bound range",
    b"#UD invalid opcode",
    b"#NM device not available",
    b"#DF double fault",
    b"coprocessor overrun",
    b"#TS invalid TSS",
    b"#NP segment not present",
    b"#SS stack fault",
    b"#GP general protection",
    b"#PF page fault",
    b"reserved",
    b"#MF x87 error",
    b"#AC alignment check",
    b"#MC machine check",
    b"#XM SIMD error",
    b"#VE virtualization",
];

/// Called by the exception stubs with a pointer to `[vector, error code,
/// rip, cs, rflags, rsp, ss]`: reports the fault as a crash.
#[link_section = ".text.ring0"]
pub(crate) unsafe extern "C" fn exception_handler(frame: *const u64) -> ! {
    // SAFETY: the stub passes its stack pointer, below which the CPU and
    // the stub pushed these seven words.
    let word = |i: usize| unsafe { frame.add(i).read_volatile() };
    let (vector, error, rip, cs) = (word(0), word(1), word(2), word(3));
    let cr2: u64;
    // SAFETY: reading CR2 in ring 0 has no side effects.
    unsafe { core::arch::asm!("mov {0}, cr2", out(reg) cr2, options(nomem, nostack)) };
    let mut message = Ring0Message { len: 0 };
    if vector == 2 {
        // As Linux with panic_on_unrecovered_nmi: an NMI nobody claims
        // (`xl trigger DOM nmi`) is fatal, and says so.
        message.text(b"Kernel panic: NMI received for unknown reason (unrecovered NMI) at rip ");
        message.hex(rip);
        message.crash()
    }
    message.text(b"CPU exception ");
    if (vector as usize) < EXCEPTION_NAMES.len() {
        message.text(EXCEPTION_NAMES[vector as usize]);
    } else {
        message.decimal(vector);
    }
    message.text(b" in ring ");
    message.decimal(cs & 3);
    message.text(b" at rip ");
    message.hex(rip);
    message.text(b", error code ");
    message.hex(error);
    if vector == 14 {
        message.text(b", address ");
        message.hex(cr2);
    }
    message.crash()
}

/// Ends the domain from ring 0 with a fixed message.
#[link_section = ".text.ring0"]
pub(crate) fn ring0_fatal(text: &[u8]) -> ! {
    let mut message = Ring0Message { len: 0 };
    message.text(text);
    message.crash()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    if crate::arch::current_ring() == 0 {
        let mut message = Ring0Message { len: 0 };
        message.text(b"panic in ring 0");
        if let Some(location) = info.location() {
            message.text(b" at ");
            message.text(location.file().as_bytes());
            message.byte(b':');
            message.decimal(location.line() as u64);
        }
        message.crash();
    }
    let mut text = FixedText {
        buf: [0; MESSAGE_CAPACITY],
        len: 0,
    };
    let _ = core::fmt::write(&mut text, format_args!("{info}"));
    crate::hypercall::shutdown(ShutdownReason::Crash, &text.buf[..text.len])
}

/// A formatting target that keeps the first bytes and drops the rest.
struct FixedText {
    buf: [u8; MESSAGE_CAPACITY],
    len: usize,
}

impl core::fmt::Write for FixedText {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        let take = text.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// The precompiled `alloc` library was built for unwinding and names the
/// personality routine; with `panic = "abort"` nothing ever unwinds, so it
/// is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

/// Also named by the precompiled `alloc` library's landing pads; never
/// reached with `panic = "abort"`. If it ever were, the domain ends.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    crate::hypercall::shutdown(ShutdownReason::Crash, b"unwinding is not supported")
}
