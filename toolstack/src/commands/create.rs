//! `xl create`: parse an xl.cfg file and ask `hypd` for the domain.

use crate::config::{self, Access, Action, DomainSpec, Placement};
use protocol::control::{self as wire, CreateRequest, DiskRequest};
use std::path::Path;

/// Turns an xl.cfg action into what `hypd` applies. Core dumps are not
/// written yet: the coredump actions behave as their plain forms.
fn action(action: Action, warnings: &mut Vec<String>) -> wire::Action {
    match action {
        Action::Destroy => wire::Action::Destroy,
        Action::Restart => wire::Action::Restart,
        Action::Preserve => wire::Action::Preserve,
        Action::RenameRestart => wire::Action::RenameRestart,
        Action::CoredumpDestroy | Action::CoredumpRestart => {
            warnings.push(format!(
                "{}: core dumps are not written yet; acting as without them",
                action.as_str()
            ));
            if action == Action::CoredumpDestroy {
                wire::Action::Destroy
            } else {
                wire::Action::Restart
            }
        }
    }
}

/// Makes a relative path absolute against the current directory (as `xl`
/// resolves the paths in a config file).
fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The request `hypd` gets for a parsed configuration; an error names
/// the vif whose spec `hypd` could not use.
pub fn request(
    spec: &DomainSpec,
    paused: bool,
    warnings: &mut Vec<String>,
) -> Result<CreateRequest, super::vif::VifError> {
    let vifs = spec
        .vifs
        .iter()
        .enumerate()
        .map(|(i, vif)| super::vif::request(vif, i + 1, warnings))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CreateRequest {
        name: spec.name.clone(),
        kernel: absolute(&spec.kernel),
        memory_mib: spec.memory_mib,
        vcpus: spec.vcpus,
        cmdline: spec.cmdline.clone(),
        paused,
        on_poweroff: action(spec.on_poweroff, warnings),
        on_reboot: action(spec.on_reboot, warnings),
        on_crash: action(spec.on_crash, warnings),
        disks: spec
            .disks
            .iter()
            .map(|d| DiskRequest {
                target: absolute(&d.target),
                vdev: d.vdev.clone(),
                readonly: d.access == Access::ReadOnly,
                direct_io: d.direct_io_safe,
            })
            .collect(),
        vifs,
        host_backends: spec.placement == Placement::Host,
        config_json: serde_json::to_string(spec).expect("a DomainSpec serializes"),
    })
}

/// Parses `file` with the command-line overrides, printing warnings.
pub fn parse(
    file: &Path,
    overrides: &[String],
    quiet: bool,
) -> Result<config::Parsed, config::ConfigError> {
    if !quiet {
        eprintln!("Parsing config from {}", file.display());
    }
    let parsed = config::parse_file(file, overrides)?;
    for warning in &parsed.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vifs_go_to_hypd_with_xls_defaults() {
        let text =
            "name = 'n'\nkernel = '/k'\nvif = [ 'bridge=xenbr1', 'mac=00:16:3e:00:00:01', '' ]\n";
        let parsed = config::parse("n.cfg", text, &[]).unwrap();
        let mut warnings = Vec::new();
        let r = request(&parsed.spec, false, &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(r.vifs.len(), 3);
        assert_eq!(r.vifs[0].bridge, "xenbr1");
        assert_eq!(r.vifs[1].mac, [0, 0x16, 0x3e, 0, 0, 1]);
        assert_eq!(
            (r.vifs[2].bridge.as_str(), r.vifs[2].mac[..3].to_vec()),
            ("xenbr0", vec![0, 0x16, 0x3e])
        );
        let text = "name = 'n'\nkernel = '/k'\nvif = [ 'ip=fe80::1' ]\n";
        let parsed = config::parse("n.cfg", text, &[]).unwrap();
        let e = request(&parsed.spec, false, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("vif 1: ip `fe80::1`"), "{e}");
    }
}
