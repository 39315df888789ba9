//! One entry of `vif = [ ... ]`, read as xl-network-configuration(5)
//! describes: comma-separated `key=value` pairs, all optional; the empty
//! string is a vif with every default. As in xl, a key it does not know
//! is ignored with a warning, not an error; so are the documented keys
//! this hypervisor has no use for (`gatewaydev` and its old name
//! `netdev`, `accel`, `devid`).

use serde::{Deserialize, Serialize};

/// A virtual network interface of the domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VifSpec {
    /// The guest-side MAC address, lower case (`None`: one is generated).
    pub mac: Option<String>,
    /// The host bridge the interface joins (default `xenbr0`).
    pub bridge: String,
    /// The emulated device model asked for (`e1000`, `rtl8139`, ...).
    pub model: Option<String>,
    /// The backend interface's name (default `vifDOMID.DEVID`).
    pub vifname: Option<String>,
    /// The guest's IP address(es), space-separated, for the hotplug script.
    pub ip: Option<String>,
    /// The outgoing rate limit, e.g. `10Mb/s` or `10Mb/s@20ms`.
    pub rate: Option<String>,
    /// The interface's MTU.
    pub mtu: Option<u32>,
    /// The hotplug script.
    pub script: Option<String>,
    /// The domain serving the interface, if not the default.
    pub backend: Option<String>,
    /// Xen's `type` key: `vif` or `ioemu`.
    pub vif_type: Option<String>,
}

/// The bridge a vif joins unless it names another.
pub const DEFAULT_BRIDGE: &str = "xenbr0";

/// The keys a vif entry may use.
const KEYS: &[&str] = &[
    "mac", "bridge", "model", "vifname", "ip", "rate", "mtu", "script", "backend", "type",
];

/// Documented keys that have no effect here.
const IGNORED_KEYS: &[&str] = &["gatewaydev", "netdev", "accel", "devid"];

/// A parsed vif entry and what the user should be told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedVif {
    /// The interface.
    pub spec: VifSpec,
    /// One sentence per key that was ignored.
    pub ignored: Vec<String>,
}

impl Default for VifSpec {
    fn default() -> Self {
        VifSpec {
            mac: None,
            bridge: DEFAULT_BRIDGE.to_string(),
            model: None,
            vifname: None,
            ip: None,
            rate: None,
            mtu: None,
            script: None,
            backend: None,
            vif_type: None,
        }
    }
}

/// What is wrong with a vif entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VifError {
    /// An item without `=`.
    NotKeyValue(String),
    /// A key given twice.
    GivenTwice(&'static str),
    /// A key with nothing after `=`.
    EmptyValue(&'static str),
    /// A `mac=` that is not six hex pairs.
    BadMac(String),
    /// A `mac=` with the multicast bit set.
    MulticastMac(String),
    /// A `vifname=` Linux would not take as an interface name.
    BadVifname(String),
    /// An address of `ip=` that is not an IP address.
    NotAnIp(String),
    /// An address of `ip=` whose `/prefix` is out of range.
    BadPrefix(String),
    /// A `rate=` Xen would refuse, and why.
    BadRate {
        /// The rate given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An `mtu=` out of range.
    BadMtu(String),
    /// A `type=` other than vif or ioemu.
    BadType(String),
}

impl std::fmt::Display for VifError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotKeyValue(item) => write!(f, "expected key=value, found `{item}`"),
            Self::GivenTwice(key) => write!(f, "{key} is given twice"),
            Self::EmptyValue(key) => write!(f, "{key} has an empty value"),
            Self::BadMac(mac) => write!(f, "mac `{mac}` is not six hex pairs like 00:16:3e:12:34:56"),
            Self::MulticastMac(mac) => write!(
                f,
                "mac `{mac}` is a multicast address (the first byte must be even)"
            ),
            Self::BadVifname(name) => write!(
                f,
                "vifname `{name}` is not an interface name (at most 15 characters, no `/`, `:` or spaces)"
            ),
            Self::NotAnIp(addr) => write!(f, "ip `{addr}` is not an IP address"),
            Self::BadPrefix(addr) => write!(f, "ip `{addr}` has a bad prefix length"),
            Self::BadRate { value, why } => write!(
                f,
                "rate `{value}` {why} (write it like 10Mb/s, 250KB/s or 1MB/s@20ms)"
            ),
            Self::BadMtu(mtu) => write!(f, "mtu `{mtu}` is not a number from 68 to 65535"),
            Self::BadType(t) => write!(f, "type `{t}` is not vif or ioemu"),
        }
    }
}

impl std::error::Error for VifError {}

/// Parses one vif entry as `xl network-attach` takes it; returns the vif
/// and one sentence per key it ignored, or what is wrong with it.
pub fn parse_vif_entry(entry: &str) -> Result<(VifSpec, Vec<String>), VifError> {
    parse_vif(entry).map(|p| (p.spec, p.ignored))
}

/// Parses one vif entry; the error says what is wrong with it.
pub(crate) fn parse_vif(entry: &str) -> Result<ParsedVif, VifError> {
    let mut vif = VifSpec::default();
    let mut ignored = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for item in entry.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(VifError::NotKeyValue(item.to_string()));
        };
        let (key, value) = (key.trim(), value.trim());
        if IGNORED_KEYS.contains(&key) {
            ignored.push(format!("ignoring {key} (not used by this hypervisor)"));
            continue;
        }
        let Some(&key) = KEYS.iter().find(|k| **k == key) else {
            ignored.push(format!(
                "ignoring unknown key `{key}`, as xl does (known: {})",
                KEYS.join(", ")
            ));
            continue;
        };
        if seen.contains(&key) {
            return Err(VifError::GivenTwice(key));
        }
        seen.push(key);
        if value.is_empty() {
            return Err(VifError::EmptyValue(key));
        }
        let text = Some(value.to_string());
        match key {
            "mac" => vif.mac = Some(mac(value)?),
            "bridge" => vif.bridge = value.to_string(),
            "model" => vif.model = text,
            "vifname" => vif.vifname = Some(vifname(value)?),
            "ip" => vif.ip = Some(ip(value)?),
            "rate" => vif.rate = Some(rate(value)?),
            "mtu" => vif.mtu = Some(mtu(value)?),
            "script" => vif.script = text,
            "backend" => vif.backend = text,
            _ => vif.vif_type = Some(vif_type(value)?),
        }
    }
    Ok(ParsedVif { spec: vif, ignored })
}

/// Checks a MAC address (six colon-separated hex pairs, not multicast) and
/// returns it in lower case.
pub(crate) fn mac(value: &str) -> Result<String, VifError> {
    let bad = || VifError::BadMac(value.to_string());
    let pairs: Vec<&str> = value.split(':').collect();
    let ok = pairs.len() == 6
        && pairs
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(bad());
    }
    let first = pairs
        .first()
        .and_then(|p| u8::from_str_radix(p, 16).ok())
        .ok_or_else(bad)?;
    if first & 1 == 1 {
        return Err(VifError::MulticastMac(value.to_string()));
    }
    Ok(value.to_ascii_lowercase())
}

/// Checks a backend interface name (what Linux allows: 1 to 15 characters,
/// no `/`, `:` or whitespace).
fn vifname(value: &str) -> Result<String, VifError> {
    let ok =
        value.len() <= 15 && !value.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(value.to_string())
    } else {
        Err(VifError::BadVifname(value.to_string()))
    }
}

/// Checks space-separated IP addresses, each optionally with a `/prefix`.
fn ip(value: &str) -> Result<String, VifError> {
    for addr in value.split_whitespace() {
        let (host, prefix) = match addr.split_once('/') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        };
        let max = match host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => 32,
            Ok(std::net::IpAddr::V6(_)) => 128,
            Err(_) => return Err(VifError::NotAnIp(addr.to_string())),
        };
        if prefix.is_some_and(|p| !p.parse::<u8>().is_ok_and(|n| n <= max)) {
            return Err(VifError::BadPrefix(addr.to_string()));
        }
    }
    Ok(value.to_string())
}

/// Checks a rate as Xen does: `<N>[GMK](B|b)/s`, optionally followed by
/// `@<N>[s|ms|us]` (the replenishment interval).
pub(crate) fn rate(value: &str) -> Result<String, VifError> {
    let bad = |why: &'static str| VifError::BadRate {
        value: value.to_string(),
        why,
    };
    let (amount, interval) = match value.split_once('@') {
        Some((a, i)) => (a, Some(i)),
        None => (value, None),
    };
    let per_second = amount
        .strip_suffix("/s")
        .ok_or_else(|| bad("does not end in /s"))?;
    let unit = per_second.trim_start_matches(|c: char| c.is_ascii_digit());
    let number = per_second
        .get(..per_second.len() - unit.len())
        .unwrap_or("");
    if !matches!(unit, "GB" | "MB" | "KB" | "B" | "Gb" | "Mb" | "Kb" | "b") {
        return Err(bad("has no unit among GB, MB, KB, B, Gb, Mb, Kb, b"));
    }
    if !number.parse::<u32>().is_ok_and(|n| n > 0) {
        return Err(bad("needs an amount from 1 to 4294967295"));
    }
    if let Some(interval) = interval {
        let unit = interval.trim_start_matches(|c: char| c.is_ascii_digit());
        let number = interval.get(..interval.len() - unit.len()).unwrap_or("");
        let scale: u64 = match unit {
            "" | "s" => 1_000_000,
            "ms" => 1_000,
            "us" => 1,
            _ => return Err(bad("has an interval unit other than s, ms or us")),
        };
        let usecs = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale));
        if !usecs.is_some_and(|u| u > 0 && u <= u64::from(u32::MAX)) {
            return Err(bad("needs an interval from 1us to about 71 minutes"));
        }
    }
    Ok(value.to_string())
}

/// Xen's default `rate=` interval, in microseconds (50 ms).
pub const DEFAULT_RATE_INTERVAL_US: u32 = 50_000;

/// A rate that [`rate`] accepted as the credit libxl makes of it: bytes
/// per interval and the interval in microseconds (`10Mb/s@20ms` is 25000
/// bytes every 20000 µs). The units are decimal, as in xl (`K` is 1000);
/// a lower-case `b` counts bits. None if the credit does not fit in 32 bits.
pub fn rate_credit(value: &str) -> Option<(u32, u32)> {
    let (amount, interval) = match value.split_once('@') {
        Some((a, i)) => (a, Some(i)),
        None => (value, None),
    };
    let per_second = amount.strip_suffix("/s")?;
    let unit = per_second.trim_start_matches(|c: char| c.is_ascii_digit());
    let number: u64 = per_second
        .get(..per_second.len() - unit.len())?
        .parse()
        .ok()?;
    let (scale, bits) = match unit {
        "GB" | "Gb" => (1_000_000_000, unit.ends_with('b')),
        "MB" | "Mb" => (1_000_000, unit.ends_with('b')),
        "KB" | "Kb" => (1_000, unit.ends_with('b')),
        "B" | "b" => (1, unit == "b"),
        _ => return None,
    };
    let mut bytes_per_second = number.checked_mul(scale)?;
    if bits {
        bytes_per_second /= 8;
    }
    let interval_us = match interval {
        None => u64::from(DEFAULT_RATE_INTERVAL_US),
        Some(i) => {
            let unit = i.trim_start_matches(|c: char| c.is_ascii_digit());
            let n: u64 = i.get(..i.len() - unit.len())?.parse().ok()?;
            n.checked_mul(match unit {
                "" | "s" => 1_000_000,
                "ms" => 1_000,
                "us" => 1,
                _ => return None,
            })?
        }
    };
    let credit = bytes_per_second.checked_mul(interval_us)? / 1_000_000;
    Some((
        u32::try_from(credit.max(1)).ok()?,
        u32::try_from(interval_us).ok()?,
    ))
}

/// The first IPv4 address of an `ip=` value (space-separated addresses,
/// each with an optional `/prefix`), with its prefix length if given.
pub fn first_ipv4(value: &str) -> Option<([u8; 4], Option<u8>)> {
    value.split_whitespace().find_map(|addr| {
        let (host, prefix) = match addr.split_once('/') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        };
        let ip: std::net::Ipv4Addr = host.parse().ok()?;
        let prefix = match prefix {
            Some(p) => Some(p.parse::<u8>().ok().filter(|n| (1..=32).contains(n))?),
            None => None,
        };
        Some((ip.octets(), prefix))
    })
}

/// Checks an MTU (68, IPv4's minimum, to 65535).
fn mtu(value: &str) -> Result<u32, VifError> {
    match value.parse::<u32>() {
        Ok(n) if (68..=65535).contains(&n) => Ok(n),
        _ => Err(VifError::BadMtu(value.to_string())),
    }
}

/// Checks Xen's vif `type`.
fn vif_type(value: &str) -> Result<String, VifError> {
    match value {
        "vif" | "ioemu" => Ok(value.to_string()),
        _ => Err(VifError::BadType(value.to_string())),
    }
}

#[cfg(test)]
#[path = "vif_tests.rs"]
mod tests;
