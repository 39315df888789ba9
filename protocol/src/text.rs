//! Text a domain wrote, made safe to show: every control character
//! escaped, so a guest can neither forge a line of a log (with a newline)
//! nor drive the terminal of whoever reads it (with an escape sequence).

use alloc::borrow::Cow;
use alloc::string::String;
use core::fmt::Write;

/// `text` with every control character (C0, DEL, C1) written as an
/// escape: `\n`, `\r`, `\t`, or `\x1b`-style hex (`\u{85}` for C1).
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_nothing_else() {
        assert!(matches!(
            escape_controls("plain, ünïcode"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("oops\n(    0.1) INFO  destroyed domain Domain-0\x1b[2J\u{85}"),
            "oops\\n(    0.1) INFO  destroyed domain Domain-0\\x1b[2J\\u{85}"
        );
        assert_eq!(escape_controls("a\tb\r\x7f"), "a\\tb\\r\\x7f");
    }
}
