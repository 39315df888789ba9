//! Errors from reading an xl.cfg file, and where in the input they point.

use std::fmt;
use std::path::PathBuf;

/// The source name used for values given as command-line `KEY=VALUE` overrides.
pub const COMMAND_LINE: &str = "<command line>";

/// Where a setting or a syntax error is: a file (or [`COMMAND_LINE`]) and a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The name the input was given (a file name, or [`COMMAND_LINE`]).
    pub source: String,
    /// The 1-based line number, or `None` for command-line overrides,
    /// which have no lines worth naming.
    pub line: Option<usize>,
}

impl Location {
    /// The same source at another line (kept lineless for command-line input).
    pub(crate) fn at_line(&self, line: usize) -> Location {
        Location {
            source: self.source.clone(),
            line: self.line.map(|_| line),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.source, line),
            None => f.write_str(&self.source),
        }
    }
}

/// Everything that can make an xl.cfg file unusable.
///
/// Every message starts with the file name (and the line, where there is
/// one), so it can be shown to the user as it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read the configuration file: {error}", path.display())]
    Read {
        /// The file that could not be read.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        error: std::io::Error,
    },
    /// The text is not valid xl.cfg syntax.
    #[error("{at}: syntax error: {message}")]
    Syntax {
        /// Where the error is.
        at: Location,
        /// What was expected and what was found instead.
        message: String,
    },
    /// A key has a value of the wrong kind, out of range, or unsupported here.
    #[error("{at}: {key}: {message}")]
    Value {
        /// Where the key was set.
        at: Location,
        /// The key (for example `memory`).
        key: String,
        /// What is wrong with its value.
        message: String,
    },
    /// A key every domain needs is not given.
    #[error("{file}: {key}: {message}")]
    Missing {
        /// The configuration file's name.
        file: String,
        /// The missing key.
        key: String,
        /// What the key is for, with an example.
        message: String,
    },
}

impl ConfigError {
    /// The key the error is about, if it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Value { key, .. } | ConfigError::Missing { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }
}
