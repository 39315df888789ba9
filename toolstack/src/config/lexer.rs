//! Splits xl.cfg text into tokens, as Xen's `libxlu` lexer does.
//!
//! * keys are identifiers (`memory`, `on_crash`); Xen allows lower case
//!   only, we also take upper case so that the key is reported as unknown
//!   rather than as a syntax error;
//! * numbers start with a digit (`512`, `0x200`, `01000`); their digits are
//!   checked when a key asks for a number, as Xen does;
//! * strings are in single or double quotes, end on the line they start on,
//!   and take the backslash escapes Xen takes (`\"`, `\'`, `\\`, `\a`, `\b`,
//!   `\f`, `\n`, `\r`, `\t`, `\v`, `\xHH` and one to three octal digits);
//! * `#` starts a comment that runs to the end of the line;
//! * `[`, `]`, `,`, `=`, `+=`, `;` and newlines are tokens of their own
//!   (`KEY += VALUE` adds to an earlier setting, as Xen's parser allows).

use std::iter::Peekable;
use std::str::Chars;

/// One token of xl.cfg text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A key name.
    Ident(String),
    /// A number, as written (its digits are checked later).
    Number(String),
    /// A quoted string, with its escapes resolved.
    Str(String),
    /// `[`
    LBracket,
    /// `]`
    RBracket,
    /// `,`
    Comma,
    /// `=`
    Equals,
    /// `+=`
    PlusEquals,
    /// `;`
    Semi,
    /// The end of a line.
    Newline,
    /// The end of the input.
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(word) => format!("`{word}`"),
            Tok::Number(n) => format!("number {n}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::LBracket => "`[`".to_string(),
            Tok::RBracket => "`]`".to_string(),
            Tok::Comma => "`,`".to_string(),
            Tok::Equals => "`=`".to_string(),
            Tok::PlusEquals => "`+=`".to_string(),
            Tok::Semi => "`;`".to_string(),
            Tok::Newline => "the end of the line".to_string(),
            Tok::Eof => "the end of the file".to_string(),
        }
    }
}

/// A token and the 1-based line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The token.
    pub tok: Tok,
    /// Its line.
    pub line: usize,
}

/// A lexical error: the line and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    /// The 1-based line of the error.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Splits `text` into tokens; the last one is always [`Tok::Eof`].
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, LexError> {
    let mut out = Vec::new();
    // Editors on some systems start files with a byte-order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        let tok = match c {
            ' ' | '\t' | '\r' => continue,
            '\n' => {
                out.push(Token {
                    tok: Tok::Newline,
                    line,
                });
                line += 1;
                continue;
            }
            '#' => {
                while chars.next_if(|&n| n != '\n').is_some() {}
                continue;
            }
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            '=' => Tok::Equals,
            '+' if chars.next_if_eq(&'=').is_some() => Tok::PlusEquals,
            ';' => Tok::Semi,
            '"' | '\'' => Tok::Str(string(&mut chars, c, line)?),
            c if c.is_ascii_alphabetic() || c == '_' => Tok::Ident(word(&mut chars, c)),
            c if c.is_ascii_digit() => Tok::Number(word(&mut chars, c)),
            other => {
                return Err(LexError {
                    line,
                    message: unexpected(other),
                })
            }
        };
        out.push(Token { tok, line });
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
    });
    Ok(out)
}

/// The message for a character that cannot start a token.
fn unexpected(c: char) -> String {
    let mut message = format!("unexpected character {c:?}");
    if "+-.():{}".contains(c) {
        message.push_str(
            " (xl.cfg is not Python: a value is a quoted string, a whole number or a [list])",
        );
    }
    message
}

/// Reads the rest of an identifier or number that starts with `first`.
fn word(chars: &mut Peekable<Chars<'_>>, first: char) -> String {
    let mut out = String::from(first);
    // Xen's keys may hold dots (`[a-z][._0-9a-z]*`).
    while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.') {
        out.push(c);
    }
    out
}

/// Reads a quoted string whose opening `quote` has been consumed.
fn string(chars: &mut Peekable<Chars<'_>>, quote: char, line: usize) -> Result<String, LexError> {
    let err = |message: String| LexError { line, message };
    let unterminated = || {
        err(format!(
            "unterminated string: add the closing {quote} (a string must end on the line it starts on)"
        ))
    };
    let mut out = String::new();
    loop {
        match chars.next() {
            None | Some('\n') => return Err(unterminated()),
            Some(c) if c == quote => return Ok(out),
            Some('\\') => match chars.next() {
                None | Some('\n') => return Err(unterminated()),
                Some(c @ ('"' | '\'' | '\\')) => out.push(c),
                Some('a') => out.push('\u{7}'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('v') => out.push('\u{b}'),
                Some('x') => out.push(numeric_escape(chars, 16, 2, 2).ok_or_else(|| {
                    err("`\\x` in a string must be followed by two hex digits".to_string())
                })?),
                Some(d @ '0'..='7') => {
                    let mut digits = String::from(d);
                    while digits.len() < 3 {
                        match chars.next_if(|c| matches!(c, '0'..='7')) {
                            Some(c) => digits.push(c),
                            None => break,
                        }
                    }
                    out.push(byte_char(&digits, 8).ok_or_else(|| {
                        err(format!(
                            "octal escape `\\{digits}` in a string is above \\377"
                        ))
                    })?);
                }
                Some(other) => {
                    return Err(err(format!(
                        "unknown escape `\\{other}` in a quoted string"
                    )))
                }
            },
            Some(c) => out.push(c),
        }
    }
}

/// Reads `min..=max` digits of `radix` and turns them into the character
/// with that code (0 to 255).
fn numeric_escape(
    chars: &mut Peekable<Chars<'_>>,
    radix: u32,
    min: usize,
    max: usize,
) -> Option<char> {
    let mut digits = String::new();
    while digits.len() < max {
        match chars.next_if(|c| c.is_digit(radix)) {
            Some(c) => digits.push(c),
            None => break,
        }
    }
    if digits.len() < min {
        return None;
    }
    byte_char(&digits, radix)
}

/// The character whose code is `digits` in `radix`, if it fits in a byte.
fn byte_char(digits: &str, radix: u32) -> Option<char> {
    u8::from_str_radix(digits, radix).ok().map(char::from)
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;
