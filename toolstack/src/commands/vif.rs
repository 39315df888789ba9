//! A vif as `hypd` gets it: the xl.cfg (or `xl network-attach`) spec with
//! libxl's defaults filled in (a random MAC under Xen's OUI `00:16:3e`),
//! its `ip=` and `rate=` read into numbers, and a warning for every key
//! that asks for something this hypervisor does differently.

use crate::config::{first_ipv4, rate_credit, VifSpec};
use protocol::control::VifRequest;

/// Xen's organisationally unique identifier, the first half of every MAC
/// libxl makes up.
const XEN_OUI: [u8; 3] = [0x00, 0x16, 0x3e];

/// A MAC under [`XEN_OUI`] with three random bytes, as libxl makes one
/// (the fourth byte's top bit clear).
pub fn random_mac() -> [u8; 6] {
    let mut random = [0u8; 3];
    if let Err(e) = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
    {
        // Unreachable on Linux; a clock-derived fallback keeps xl usable.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        random.copy_from_slice(&nanos.to_le_bytes()[..3]);
        eprintln!("warning: /dev/urandom: {e}; MAC made from the clock");
    }
    [
        XEN_OUI[0],
        XEN_OUI[1],
        XEN_OUI[2],
        random[0] & 0x7f,
        random[1],
        random[2],
    ]
}

/// Reads a MAC the config parser accepted (six hex pairs).
fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        *byte = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Formats a MAC as Xen prints it.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Why a vif spec the parser accepted cannot be given to `hypd`; each
/// names the vif (1-based) and its key.
#[derive(Debug, thiserror::Error)]
pub enum VifError {
    /// `mac=` is not six hex pairs.
    #[error("vif {0}: mac `{1}` is not a MAC")]
    BadMac(usize, String),
    /// `ip=` lists no IPv4 address.
    #[error("vif {0}: ip `{1}` has no IPv4 address (the guests' IP stack is IPv4 only)")]
    NoIpv4(usize, String),
    /// `rate=` is more than the credit holds.
    #[error("vif {0}: rate `{1}` gives more than 4 GiB of credit per interval")]
    RateTooLarge(usize, String),
    /// `backend=` names a driver domain.
    #[error(
        "vif {0}: backend={1}: only Domain-0 serves vifs here (driver domains are not supported)"
    )]
    DriverDomain(usize, String),
}

/// The request for `vif` (entry `index`, 1-based, for messages); warns of
/// keys that change nothing here. An error names the key.
pub fn request(
    vif: &VifSpec,
    index: usize,
    warnings: &mut Vec<String>,
) -> Result<VifRequest, VifError> {
    let at = format!("vif {index}");
    let mac = match &vif.mac {
        Some(text) => parse_mac(text).ok_or_else(|| VifError::BadMac(index, text.clone()))?,
        None => random_mac(),
    };
    let ip = match &vif.ip {
        Some(text) => Some(first_ipv4(text).ok_or_else(|| VifError::NoIpv4(index, text.clone()))?),
        None => None,
    };
    let rate = match &vif.rate {
        Some(text) => {
            Some(rate_credit(text).ok_or_else(|| VifError::RateTooLarge(index, text.clone()))?)
        }
        None => None,
    };
    if let Some(model) = &vif.model {
        warnings.push(format!(
            "{at}: model={model} is an emulated NIC of HVM guests; this guest gets virtio-net"
        ));
    }
    if vif.vif_type.as_deref() == Some("ioemu") {
        warnings.push(format!(
            "{at}: type=ioemu asks for an emulated NIC of HVM guests; this guest gets virtio-net"
        ));
    }
    if let Some(script) = &vif.script {
        warnings.push(format!(
            "{at}: script={script} is not run: hypd sets the vif up itself (a port on Domain-0's switch, or a tap on the bridge for the host model)"
        ));
    }
    if let Some(backend) = vif
        .backend
        .as_deref()
        .filter(|b| !matches!(*b, "0" | "Domain-0"))
    {
        return Err(VifError::DriverDomain(index, backend.to_string()));
    }
    if let Some(mtu) = vif
        .mtu
        .filter(|&m| m != u32::from(protocol::virtio::net::MTU))
    {
        warnings.push(format!(
            "{at}: mtu={mtu} ignored: every vif has Ethernet's MTU of {}",
            protocol::virtio::net::MTU
        ));
    }
    Ok(VifRequest {
        devid: None,
        mac,
        bridge: vif.bridge.clone(),
        vifname: vif.vifname.clone(),
        ip,
        rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_vif_entry;

    fn req(entry: &str) -> (VifRequest, Vec<String>) {
        let (spec, _) = parse_vif_entry(entry).unwrap();
        let mut warnings = Vec::new();
        let r = request(&spec, 1, &mut warnings).unwrap();
        (r, warnings)
    }

    #[test]
    fn an_empty_vif_gets_xl_defaults() {
        let (r, warnings) = req("");
        assert_eq!(r.mac[..3], XEN_OUI);
        assert_eq!(r.mac[3] & 0x80, 0);
        assert_eq!((r.bridge.as_str(), r.ip, r.rate), ("xenbr0", None, None));
        assert!(warnings.is_empty());
        assert_ne!(req("").0.mac, r.mac, "two random MACs");
    }

    #[test]
    fn the_issues_example_is_used_whole() {
        let (r, warnings) =
            req("mac=00:16:3e:01:02:03, bridge=xenbr0, ip=10.0.0.2/24, rate=10Mb/s@20ms");
        assert_eq!(r.mac, [0, 0x16, 0x3e, 1, 2, 3]);
        assert_eq!(r.ip, Some(([10, 0, 0, 2], Some(24))));
        assert_eq!(r.rate, Some((25_000, 20_000)));
        assert!(warnings.is_empty());
        assert_eq!(mac_text(&r.mac), "00:16:3e:01:02:03");
    }

    #[test]
    fn hvm_nics_scripts_and_driver_domains_are_named() {
        let (_, w) = req("model=e1000,type=ioemu,script=vif-bridge,mtu=9000");
        assert_eq!(w.len(), 4, "{w:?}");
        assert!(w[0].contains("model=e1000") && w[1].contains("type=ioemu"));
        assert!(w[2].contains("script=vif-bridge is not run"));
        assert!(w[3].contains("mtu=9000 ignored"));
        let (spec, _) = parse_vif_entry("backend=netdom").unwrap();
        let e = request(&spec, 2, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.starts_with("vif 2: backend=netdom"), "{e}");
        let (spec, _) = parse_vif_entry("ip=fe80::1").unwrap();
        assert!(request(&spec, 1, &mut Vec::new())
            .unwrap_err()
            .to_string()
            .contains("no IPv4 address"));
    }
}
