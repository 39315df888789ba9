//! The generic xl.cfg syntax: `KEY = VALUE` statements into a map of values.
//!
//! The grammar is Xen's: a statement ends at a newline or a `;` (the last
//! one may also end at the end of the file); a value is a quoted string, a
//! number, or a list `[ v, v, ... ]` that may span lines, end with a
//! trailing comma and hold nested lists. The value must start on the line
//! of its key. When a key is set twice the last setting wins, as in Xen,
//! and a file that does so draws a warning naming both lines. `KEY +=
//! VALUE` adds to an earlier setting instead (strings are joined, lists
//! appended; a number cannot be added to), or sets the key if there is
//! none, as in Xen.

use super::error::{ConfigError, Location};
use super::lexer::{tokenize, Tok, Token};
use std::collections::BTreeMap;

/// How deeply lists may nest (Xen's own keys use two levels at most).
const MAX_DEPTH: usize = 8;

/// A value and the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    /// The 1-based line of the value's first token.
    pub line: usize,
    /// What the value is.
    pub kind: ValueKind,
}

/// The three kinds of xl.cfg values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// A quoted string, escapes resolved.
    Str(String),
    /// A number as written; see [`parse_number`].
    Num(String),
    /// A list of values.
    List(Vec<Value>),
}

impl ValueKind {
    /// How the value is named in error messages (`string "lots"`, `number 5`, `a list`).
    pub(crate) fn describe(&self) -> String {
        match self {
            ValueKind::Str(s) => format!("string {s:?}"),
            ValueKind::Num(n) => format!("number {n}"),
            ValueKind::List(_) => "a list".to_string(),
        }
    }
}

/// One `KEY = VALUE` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Setting {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: Value,
    /// Where the statement is.
    pub at: Location,
    /// Set (or added to) with `+=`: not a number, whatever its digits.
    pub added: bool,
}

/// The settings of a file and its overrides: the last one of each key.
pub(crate) type Settings = BTreeMap<String, Setting>;

/// Parses `text` and stores its statements into `settings`, replacing (or,
/// with `+=`, adding to) earlier settings of the same keys. `source` names
/// the text in locations; `numbered` says whether its line numbers mean
/// anything (they don't for command-line overrides, which replace the
/// file's values on purpose). Returns the warnings: keys a file sets twice.
pub(crate) fn parse_into(
    settings: &mut Settings,
    source: &str,
    numbered: bool,
    text: &str,
) -> Result<Vec<String>, ConfigError> {
    let at = |line: usize| Location {
        source: source.to_string(),
        line: numbered.then_some(line),
    };
    let tokens = match tokenize(text) {
        Ok(tokens) => tokens,
        Err(e) => {
            // The first error of the file is the one to name: the lines
            // before the bad character may hold a grammar error of their
            // own (`import os` before `x = f(1)`).
            let before: String = text.split_inclusive('\n').take(e.line - 1).collect();
            let earlier = match tokenize(&before) {
                Ok(tokens) => Parser { tokens, pos: 0 }.statements().err(),
                Err(_) => None,
            };
            let (line, message) = earlier.unwrap_or((e.line, e.message));
            return Err(ConfigError::Syntax {
                at: at(line),
                message,
            });
        }
    };
    let mut parser = Parser { tokens, pos: 0 };
    let mut warnings = Vec::new();
    while let Some(statement) =
        parser
            .statement()
            .map_err(|(line, message)| ConfigError::Syntax {
                at: at(line),
                message,
            })?
    {
        let Statement {
            key,
            mut value,
            line,
            add,
        } = statement;
        let earlier = settings.get(&key);
        if let (true, Some(old)) = (add, earlier) {
            value = joined(&old.value, value).ok_or_else(|| ConfigError::Syntax {
                at: at(line),
                message: format!(
                    "`{key} +=`: cannot add a list to a single value, or a single value to a list"
                ),
            })?;
        } else if let Some(old) = earlier.filter(|old| numbered && old.at.source == source) {
            warnings.push(format!(
                "{}: {key} is set again (first at line {}): the last setting wins, as in Xen",
                at(line),
                old.at.line.unwrap_or(0)
            ));
        }
        settings.insert(
            key.clone(),
            Setting {
                key,
                value,
                at: at(line),
                added: add,
            },
        );
    }
    Ok(warnings)
}

/// `old` with `new` added to it (`+=`): strings joined, lists appended;
/// None if one is a list and the other is not.
fn joined(old: &Value, new: Value) -> Option<Value> {
    let kind = match (&old.kind, new.kind) {
        (ValueKind::List(items), ValueKind::List(more)) => {
            ValueKind::List(items.iter().cloned().chain(more).collect())
        }
        (ValueKind::Str(a) | ValueKind::Num(a), ValueKind::Str(b) | ValueKind::Num(b)) => {
            ValueKind::Str(format!("{a}{b}"))
        }
        (ValueKind::List(_), _) | (_, ValueKind::List(_)) => return None,
    };
    Some(Value {
        line: old.line,
        kind,
    })
}

/// One parsed statement.
struct Statement {
    key: String,
    value: Value,
    line: usize,
    /// Written with `+=`.
    add: bool,
}

/// A syntax error: the line and what was expected.
type SyntaxError = (usize, String);

/// A recursive-descent parser over the tokens of one input.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    /// The next token, without consuming it.
    fn peek(&self) -> Token {
        match self.tokens.get(self.pos) {
            Some(t) => t.clone(),
            None => Token {
                tok: Tok::Eof,
                line: self.tokens.last().map_or(1, |t| t.line),
            },
        }
    }

    /// Consumes and returns the next token (`Eof` forever at the end).
    fn next(&mut self) -> Token {
        let t = self.peek();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    /// Skips newlines (allowed anywhere inside a list).
    fn skip_newlines(&mut self) {
        while self.peek().tok == Tok::Newline {
            self.pos += 1;
        }
    }

    /// Parses every statement, for the first syntax error only.
    fn statements(&mut self) -> Result<(), SyntaxError> {
        while self.statement()?.is_some() {}
        Ok(())
    }

    /// Parses the next statement: `Ok(None)` at the end of the input.
    fn statement(&mut self) -> Result<Option<Statement>, SyntaxError> {
        loop {
            let t = self.next();
            let key = match t.tok {
                Tok::Eof => return Ok(None),
                Tok::Newline | Tok::Semi => continue,
                Tok::Ident(key) => key,
                other => {
                    return Err((
                        t.line,
                        format!(
                            "expected a key name (like `memory`), found {}",
                            other.describe()
                        ),
                    ))
                }
            };
            let eq = self.next();
            let add = match eq.tok {
                Tok::Equals => false,
                Tok::PlusEquals => true,
                other => {
                    return Err((
                        eq.line,
                        format!("expected `=` after `{key}`, found {}", other.describe()),
                    ))
                }
            };
            let value = self.value(&key, 0)?;
            let end = self.next();
            return match end.tok {
                Tok::Newline | Tok::Semi | Tok::Eof => Ok(Some(Statement {
                    key,
                    value,
                    line: t.line,
                    add,
                })),
                other => Err((
                    end.line,
                    format!(
                        "expected the end of the line or `;` after the value of `{key}`, found {}",
                        other.describe()
                    ),
                )),
            };
        }
    }

    /// Parses a value of `key`, `depth` lists deep.
    fn value(&mut self, key: &str, depth: usize) -> Result<Value, SyntaxError> {
        let t = self.next();
        let kind = match t.tok {
            Tok::Str(s) => ValueKind::Str(s),
            Tok::Number(n) => ValueKind::Num(n),
            Tok::LBracket if depth >= MAX_DEPTH => {
                return Err((t.line, format!("lists nest more than {MAX_DEPTH} deep in `{key}`")))
            }
            Tok::LBracket => ValueKind::List(self.list_items(key, depth, t.line)?),
            Tok::Ident(word) => {
                return Err((
                    t.line,
                    format!(
                        "expected a value for `{key}`, found `{word}` (strings must be quoted: \"{word}\")"
                    ),
                ))
            }
            other => {
                return Err((
                    t.line,
                    format!(
                        "expected a value for `{key}` (a quoted string, a number or a [list]), found {}",
                        other.describe()
                    ),
                ))
            }
        };
        Ok(Value { line: t.line, kind })
    }

    /// Parses the items of a list whose `[` (on line `open`) was consumed.
    fn list_items(
        &mut self,
        key: &str,
        depth: usize,
        open: usize,
    ) -> Result<Vec<Value>, SyntaxError> {
        let mut items = Vec::new();
        loop {
            self.skip_newlines();
            let t = self.peek();
            match t.tok {
                Tok::RBracket => {
                    self.pos += 1;
                    return Ok(items);
                }
                Tok::Eof => return Err(unclosed(key, open, t.line)),
                _ => items.push(self.value(key, depth + 1)?),
            }
            self.skip_newlines();
            let sep = self.next();
            match sep.tok {
                Tok::Comma => continue,
                Tok::RBracket => return Ok(items),
                Tok::Eof => return Err(unclosed(key, open, sep.line)),
                other => {
                    return Err((
                        sep.line,
                        format!(
                            "expected `,` or `]` in the list of `{key}` (opened on line {open}), found {}",
                            other.describe()
                        ),
                    ))
                }
            }
        }
    }
}

/// The error for a list still open at the end of the input.
fn unclosed(key: &str, open: usize, line: usize) -> SyntaxError {
    (
        line,
        format!("the list of `{key}` opened on line {open} is never closed with `]`"),
    )
}

/// Reads a number token as Xen does (C's `strtol` with base 0): decimal,
/// hexadecimal after `0x`, octal after a leading `0`. `Err(true)` if the
/// digits are right but the number does not fit in 64 bits, `Err(false)`
/// if it is not a number at all.
pub(crate) fn parse_number(token: &str) -> Result<u64, bool> {
    let (digits, radix) = if let Some(hex) = token
        .strip_prefix("0x")
        .or_else(|| token.strip_prefix("0X"))
    {
        (hex, 16)
    } else if let Some(octal) = token.strip_prefix('0').filter(|rest| !rest.is_empty()) {
        (octal, 8)
    } else {
        (token, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(false);
    }
    u64::from_str_radix(digits, radix).map_err(|_| true)
}

#[cfg(test)]
#[path = "syntax_tests.rs"]
mod tests;
