//! Typed access to parsed settings, and the errors about their values.

use super::error::{ConfigError, Location};
use super::spec::Action;
use super::syntax::{parse_number, Setting, Settings, Value, ValueKind};

/// An error about the value of setting `s`.
pub(crate) fn invalid(s: &Setting, message: impl Into<String>) -> ConfigError {
    value_error(&s.at, &s.key, message)
}

/// An error about the value of `key` at `at`.
pub(crate) fn value_error(at: &Location, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        at: at.clone(),
        key: key.to_string(),
        message: message.into(),
    }
}

/// The error for a required key that is not given.
pub(crate) fn missing(source: &str, key: &str, message: &str) -> ConfigError {
    ConfigError::Missing {
        file: source.to_string(),
        key: key.to_string(),
        message: format!("required but not given: {message}"),
    }
}

/// Typed access to the settings.
pub(crate) struct Keys<'a> {
    /// The settings (the last one of each key).
    pub settings: &'a Settings,
}

impl<'a> Keys<'a> {
    /// The string value of `key`, if set; `what` describes the value expected.
    pub(crate) fn string(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<(&'a Setting, &'a str)>, ConfigError> {
        let Some(s) = self.settings.get(key) else {
            return Ok(None);
        };
        match &s.value.kind {
            ValueKind::Str(v) => Ok(Some((s, v))),
            other => Err(invalid(
                s,
                format!("expected {what}, found {}", other.describe()),
            )),
        }
    }

    /// The number value of `key`, if set. As in Xen, a number may be
    /// written in quotes (`memory = '1024'`, as xen-tools writes them): its
    /// text is read as C's `strtol` reads it, leading blanks and a `+`
    /// allowed, nothing after the digits.
    pub(crate) fn number(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<(&'a Setting, u64)>, ConfigError> {
        let Some(s) = self.settings.get(key) else {
            return Ok(None);
        };
        if s.added {
            let message = format!("expected {what}: `+=` cannot be used with numbers");
            return Err(invalid(s, message));
        }
        let text = match &s.value.kind {
            ValueKind::Num(n) => n.as_str(),
            ValueKind::Str(v) => v.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']),
            other => {
                let message = format!("expected {what}, found {}", other.describe());
                return Err(invalid(s, message));
            }
        };
        let digits = text.strip_prefix('+').unwrap_or(text);
        let found = match &s.value.kind {
            ValueKind::Num(n) => n.clone(),
            other => other.describe(),
        };
        let message = match parse_number(digits) {
            Ok(v) => return Ok(Some((s, v))),
            Err(_) if digits.starts_with('-') => {
                format!("expected {what}, found {found}, which is negative")
            }
            Err(true) => format!("expected {what}, found {found}, which is too large"),
            Err(false) => format!("expected {what}, found {found}"),
        };
        Err(invalid(s, message))
    }

    /// The action `key` names, or `default`.
    pub(crate) fn action(&self, key: &str, default: Action) -> Result<Action, ConfigError> {
        match self.string(key, "an action in quotes")? {
            None => Ok(default),
            Some((s, v)) => Action::from_name(v).ok_or_else(|| {
                let valid: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
                let valid = valid.join(", ");
                if v == "soft-reset" {
                    // xl.cfg(5) lists it, but only HVM guests can do it.
                    invalid(
                        s,
                        format!("soft-reset is an action for HVM guests, which this hypervisor does not run (expected one of {valid})"),
                    )
                } else {
                    invalid(s, format!("unknown action {v:?} (expected one of {valid})"))
                }
            }),
        }
    }

    /// The entries of list `key` (each with its location and 1-based
    /// index), which must all be strings; `what` names an entry and
    /// `example` shows one.
    pub(crate) fn entries(
        &self,
        key: &str,
        what: &str,
        example: &str,
    ) -> Result<Vec<(Location, usize, &'a str)>, ConfigError> {
        let Some(s) = self.settings.get(key) else {
            return Ok(Vec::new());
        };
        let ValueKind::List(items) = &s.value.kind else {
            return Err(invalid(
                s,
                format!(
                    "expected a list of {what}s, e.g. [ '{example}' ], found {}",
                    s.value.kind.describe()
                ),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, Value { line, kind })| {
                let at = s.at.at_line(*line);
                match kind {
                    ValueKind::Str(v) => Ok((at, i + 1, v.as_str())),
                    other => Err(value_error(
                        &at,
                        key,
                        format!(
                            "entry {}: expected a {what} in quotes, found {}",
                            i + 1,
                            other.describe()
                        ),
                    )),
                }
            })
            .collect()
    }
}
