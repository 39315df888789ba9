//! What a file may ask for that this hypervisor cannot give, refused by
//! name before the rest of the file is read: an HVM guest, a bootloader
//! or boot firmware, and devices or passthrough the guest would miss.
//!
//! Keys that ask for no device (`uuid`, `pae`, `acpi`, `cpus`,
//! `cpu_weight`, ...) are not here: they draw one warning listing them.

use super::error::ConfigError;
use super::spec::GuestType;
use super::syntax::{parse_number, Setting, ValueKind};
use super::values::{invalid, Keys};

/// Keys that give the guest a device or pass host hardware through, and
/// what each gives. A file that sets one to something (a non-empty list
/// or string, a non-zero number) is refused: the guest would boot without
/// what it was promised.
const DEVICE_KEYS: &[(&str, &str)] = &[
    ("pci", "PCI passthrough"),
    ("dtdev", "device-tree passthrough"),
    ("irqs", "passthrough of host interrupts"),
    ("iomem", "passthrough of host I/O memory"),
    ("ioports", "passthrough of host I/O ports"),
    ("usb", "an emulated USB controller"),
    ("usbctrl", "a USB controller"),
    ("usbdev", "USB device passthrough"),
    ("usbdevice", "an emulated USB device"),
    ("vfb", "a virtual framebuffer (vfb)"),
    ("vkb", "a virtual keyboard (vkb)"),
    ("vnc", "a framebuffer (vfb and vkb) shown over VNC"),
    ("sdl", "a framebuffer (vfb and vkb) shown with SDL"),
    ("vtpm", "a virtual TPM"),
    ("p9", "a 9pfs share"),
    ("pvcalls", "a PV calls backend"),
    ("channel", "a PV channel"),
    ("vdispl", "a virtual display"),
    ("vsnd", "virtual sound"),
    ("soundhw", "emulated sound"),
    ("virtio", "a generic virtio device"),
    ("vuart", "a virtual UART"),
    ("device_tree", "a partial device tree"),
    ("tee", "a trusted execution environment"),
    ("arm_sci", "an SCI mediator"),
];

/// What this hypervisor boots, for messages.
const WHAT_BOOTS: &str = "this hypervisor boots a PV-style kernel from a file on the host \
                          (type = \"pv\" or \"pvh\", kernel = \"/path/to/kernel\")";

/// What `type` or `builder` asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An HVM guest: firmware and a device model.
    Hvm,
    /// A guest this hypervisor runs.
    Runs(GuestType),
}

/// The values of `type`, in the order Xen tries them.
const TYPES: &[(&str, Kind)] = &[
    ("hvm", Kind::Hvm),
    ("pv", Kind::Runs(GuestType::Pv)),
    ("pvh", Kind::Runs(GuestType::Pvh)),
];

/// The values of `builder`, the older spelling of `type`.
const BUILDERS: &[(&str, Kind)] = &[("hvm", Kind::Hvm), ("generic", Kind::Runs(GuestType::Pv))];

/// The guest type from `type` and `builder`, read as Xen reads them (a
/// value may be a prefix: `"p"` is `pv`); an HVM guest is refused.
pub(crate) fn guest_type(keys: &Keys<'_>) -> Result<GuestType, ConfigError> {
    let from_type = kind_of(keys, "type", TYPES, "\"pv\", \"pvh\" or \"hvm\"")?;
    let expected = "\"generic\" or \"hvm\"; builder is the older spelling of type";
    let from_builder = kind_of(keys, "builder", BUILDERS, expected)?;
    if let (Some((t, a)), Some((b, c))) = (from_type, from_builder) {
        if a != c {
            let message = format!(
                "type {:?} contradicts builder {:?} (line {}): give one of them",
                text(t),
                text(b),
                b.at.line.unwrap_or(0)
            );
            return Err(invalid(t, message));
        }
    }
    match from_type.or(from_builder) {
        None => Ok(GuestType::Pv),
        Some((_, Kind::Runs(t))) => Ok(t),
        Some((s, Kind::Hvm)) => Err(invalid(
            s,
            format!(
                "{:?} asks for an HVM guest, which is not supported: {WHAT_BOOTS}, with no firmware or device model",
                text(s)
            ),
        )),
    }
}

/// The kind `key` names, if set: the first of `names` its value is a
/// prefix of.
fn kind_of<'a>(
    keys: &Keys<'a>,
    key: &str,
    names: &[(&str, Kind)],
    expected: &str,
) -> Result<Option<(&'a Setting, Kind)>, ConfigError> {
    let Some((s, v)) = keys.string(key, "a guest type in quotes")? else {
        return Ok(None);
    };
    match names.iter().find(|(name, _)| name.starts_with(v)) {
        Some(&(_, kind)) => Ok(Some((s, kind))),
        None => Err(invalid(
            s,
            format!("unknown value {v:?} (expected {expected})"),
        )),
    }
}

/// The text of a string setting.
fn text(s: &Setting) -> &str {
    match &s.value.kind {
        ValueKind::Str(v) => v,
        _ => "",
    }
}

/// Refuses a bootloader (`pygrub`, ...) or boot firmware (`pvgrub64`):
/// they boot a kernel found inside the guest's disk.
pub(crate) fn boot_from_disk(keys: &Keys<'_>) -> Result<(), ConfigError> {
    for key in ["bootloader", "firmware"] {
        if let Some(s) = keys.settings.get(key).filter(|s| asks(s)) {
            let named = match &s.value.kind {
                ValueKind::Str(v) => format!("{v:?}"),
                other => other.describe(),
            };
            return Err(invalid(
                s,
                format!(
                    "{named} would boot a kernel from inside the guest's disk, which is not supported: {WHAT_BOOTS}; remove {key} and set kernel"
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses the first of [`DEVICE_KEYS`] the file asks for.
pub(crate) fn devices(keys: &Keys<'_>) -> Result<(), ConfigError> {
    for &(key, what) in DEVICE_KEYS {
        if let Some(s) = keys.settings.get(key).filter(|s| asks(s)) {
            return Err(invalid(
                s,
                format!("{what} is not supported: remove {key} to boot the guest without it"),
            ));
        }
    }
    Ok(())
}

/// True if a setting asks for something: a non-empty list or string that
/// is not a zero, or a non-zero number.
fn asks(s: &Setting) -> bool {
    match &s.value.kind {
        ValueKind::List(items) => !items.is_empty(),
        ValueKind::Str(v) => !v.trim().is_empty() && parse_number(v.trim()) != Ok(0),
        ValueKind::Num(n) => parse_number(n) != Ok(0),
    }
}
