//! xl.cfg files, parsed as Xen documents them (xl.cfg(5),
//! xl-disk-configuration(5), xl-network-configuration(5)).
//!
//! [`parse`] turns the text of a domain configuration file, plus any
//! command-line `KEY=VALUE` overrides, into a [`DomainSpec`] and a list of
//! warnings. Keys Xen users carry that this hypervisor does not use draw
//! one warning naming them all; anything wrong is a [`ConfigError`] whose
//! message names the file, the line and the key.
//!
//! ```
//! let text = "name = 'g1'\nkernel = '/k'\nmemory = 256\ndisk = [ '/img/g1.img,raw,xvda,rw' ]\n";
//! let parsed = toolstack::config::parse("g1.cfg", text, &["vcpus=2".to_string()]).unwrap();
//! assert_eq!(parsed.spec.memory_mib, 256);
//! assert_eq!(parsed.spec.vcpus, 2);
//! assert_eq!(parsed.spec.disks[0].vdev, "xvda");
//! ```

mod disk;
mod error;
mod keys;
mod lexer;
mod refused;
mod spec;
mod syntax;
mod values;
mod vif;

pub use disk::{Access, DiskError, DiskFormat, DiskSpec};
pub use error::{ConfigError, Location, COMMAND_LINE};
pub use spec::{Action, DomainSpec, GuestType, Parsed, Placement, MAX_VCPUS};
pub use vif::{
    first_ipv4, parse_vif_entry, rate_credit, VifError, VifSpec, DEFAULT_BRIDGE,
    DEFAULT_RATE_INTERVAL_US,
};

use std::path::Path;

/// Parses xl.cfg text. `source` names the file in messages (e.g.
/// `"examples/guest.cfg"`). `overrides` are command-line `KEY=VALUE`
/// strings, applied after the file: each has the syntax of a line of the
/// file and replaces the file's value of its key. They are named
/// [`COMMAND_LINE`] in messages.
pub fn parse(source: &str, text: &str, overrides: &[String]) -> Result<Parsed, ConfigError> {
    let mut settings = syntax::Settings::new();
    let twice = syntax::parse_into(&mut settings, source, true, text)?;
    for line in overrides {
        syntax::parse_into(&mut settings, COMMAND_LINE, false, line).map_err(|e| match e {
            ConfigError::Syntax { at, message } => ConfigError::Syntax {
                at,
                message: format!("{message} (in `{line}`)"),
            },
            other => other,
        })?;
    }
    let mut parsed = keys::build(source, &settings)?;
    parsed.warnings.splice(0..0, twice);
    Ok(parsed)
}

/// Reads and parses a file (see [`parse`]); the error names the path when
/// it can't be read.
pub fn parse_file(path: &Path, overrides: &[String]) -> Result<Parsed, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse(&path.display().to_string(), &text, overrides)
}

/// Parses a disk specification as `xl block-attach` takes it: the same
/// syntax as one entry of `disk = [...]`, its components possibly given as
/// separate arguments (joined with commas).
pub fn parse_disk_spec(components: &[String]) -> Result<DiskSpec, DiskError> {
    disk::parse_disk(&components.join(",")).map(|parsed| parsed.spec)
}
