//! Console output through the console-write hypercall.

use core::fmt::{self, Write};

/// Formats into a stack buffer and writes it out in as few hypercalls as
/// possible (each one is an exit to the core).
struct BufferedConsole {
    buf: [u8; 256],
    len: usize,
}

impl BufferedConsole {
    fn flush(&mut self) {
        if self.len > 0 {
            crate::hypercall::console_write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Write for BufferedConsole {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = byte;
            self.len += 1;
        }
        Ok(())
    }
}

/// Writes formatted text to the console (use [`crate::println!`]).
pub fn print(args: fmt::Arguments) {
    let mut console = BufferedConsole {
        buf: [0; 256],
        len: 0,
    };
    let _ = console.write_fmt(args);
    console.flush();
}

/// Prints to the domain's console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print(format_args!($($arg)*)) };
}

/// Prints a line to the domain's console.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::console::print(format_args!("{}\n", format_args!($($arg)*))) };
}
