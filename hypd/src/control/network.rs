//! The vif requests: `xl network-attach`, `network-detach`,
//! `network-list`, and the vifs of a created domain. A vif's device id is
//! fixed when it is first given (in order, from 0, as libxl numbers them)
//! and kept in the domain's record, so a restarted guest gets the same
//! ids, MACs and addresses.

use super::daemon::Daemon;
use super::error::ControlError;
use crate::devices::{DeviceConfig, NetBacking};
use protocol::control::{VifRecord, VifRequest};
use protocol::device::Ipv4Cidr;
use protocol::domain::DomId;

/// The prefix length a guest takes with an `ip=` address that has none.
pub const DEFAULT_PREFIX_LEN: u8 = 24;

/// Gives every vif without a device id the lowest free one.
pub fn assign_devids(vifs: &mut [VifRequest]) {
    for i in 0..vifs.len() {
        if vifs[i].devid.is_none() {
            let used: Vec<u32> = vifs.iter().filter_map(|v| v.devid).collect();
            vifs[i].devid = (0..).find(|d| !used.contains(d));
        }
    }
}

/// The device for a vif whose device id is assigned.
pub fn device(vif: &VifRequest) -> DeviceConfig {
    let devid = vif.devid.unwrap_or(0);
    DeviceConfig::net(NetBacking {
        devid,
        mac: vif.mac,
        bridge: vif.bridge.clone(),
        vifname: vif.vifname.clone(),
        guest_ip: vif
            .ip
            .map(|(addr, prefix)| cidr(addr, prefix.unwrap_or(DEFAULT_PREFIX_LEN))),
        allowed_ip: vif
            .ip
            .map(|(addr, prefix)| cidr(addr, prefix.unwrap_or(32))),
        rate: vif.rate,
    })
}

fn cidr(addr: [u8; 4], prefix_len: u8) -> Ipv4Cidr {
    Ipv4Cidr {
        addr,
        prefix_len,
        _pad: [0; 3],
    }
}

/// Which vif `which` names: a device id or a MAC address, as
/// `xl network-detach` takes it.
fn find(vifs: &[VifRequest], which: &str) -> Option<u32> {
    let by_mac = |v: &&VifRequest| {
        let text: Vec<String> = v.mac.iter().map(|b| format!("{b:02x}")).collect();
        text.join(":").eq_ignore_ascii_case(which)
    };
    match which.parse::<u32>() {
        Ok(devid) => vifs.iter().find(|v| v.devid == Some(devid)),
        Err(_) => vifs.iter().find(by_mac),
    }
    .and_then(|v| v.devid)
}

/// The vifs remembered for `domid`.
fn configured(daemon: &Daemon, domid: DomId) -> Vec<VifRequest> {
    daemon
        .records
        .get(domid)
        .and_then(|r| r.request)
        .map(|r| r.vifs)
        .unwrap_or_default()
}

/// `xl network-attach`: gives the running guest `domid` the vif.
pub fn attach(daemon: &Daemon, domid: DomId, mut vif: VifRequest) -> Result<(), ControlError> {
    let mut vifs = configured(daemon, domid);
    if vifs.iter().any(|v| v.mac == vif.mac) {
        return Err(ControlError::VifMacInUse(vif.mac));
    }
    vif.devid = None;
    vifs.push(vif);
    assign_devids(&mut vifs);
    let vif = vifs.pop().expect("pushed above");
    daemon.machine.attach_device(domid, device(&vif))?;
    daemon.records.update_vifs(domid, |vifs| vifs.push(vif));
    Ok(())
}

/// `xl network-detach`: takes the vif `which` (device id or MAC) away.
pub fn detach(daemon: &Daemon, domid: DomId, which: &str) -> Result<(), ControlError> {
    let devid = find(&configured(daemon, domid), which)
        .ok_or_else(|| ControlError::NoSuchVif(which.into()))?;
    daemon
        .machine
        .detach_device(domid, &format!("eth{devid}"))?;
    daemon
        .records
        .update_vifs(domid, |vifs| vifs.retain(|v| v.devid != Some(devid)));
    Ok(())
}

/// `xl network-list`: the vifs the guest has, as its devices show them.
pub fn list(daemon: &Daemon, domid: DomId) -> Vec<VifRecord> {
    let vifs = configured(daemon, domid);
    let placement = daemon.machine.placement(domid).map_or("-", |p| p.name());
    daemon
        .machine
        .devices(domid)
        .iter()
        .filter_map(|device| {
            let vif = vifs
                .iter()
                .find(|v| v.devid.is_some_and(|d| device.vdev() == format!("eth{d}")))?;
            let devid = vif.devid?;
            let ip = device.ipv4;
            let tap = match (placement, &vif.vifname) {
                ("host", Some(name)) => format!(" {name}"),
                ("host", None) => format!(" vif{domid}.{devid}"),
                _ => String::new(),
            };
            Some(VifRecord {
                devid,
                backend: protocol::domain::DOM0,
                mac: vif.mac,
                irq_port: device.irq_port,
                bridge: vif.bridge.clone(),
                ip: format!(
                    "{}.{}.{}.{}/{}",
                    ip.addr[0], ip.addr[1], ip.addr[2], ip.addr[3], ip.prefix_len
                ),
                placement: format!("{placement}{tap}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vif(devid: Option<u32>, last: u8) -> VifRequest {
        VifRequest {
            devid,
            mac: [0, 0x16, 0x3e, 0, 0, last],
            bridge: "xenbr0".into(),
            vifname: None,
            ip: None,
            rate: None,
        }
    }

    #[test]
    fn devids_fill_the_lowest_gaps_and_vifs_are_found_by_id_or_mac() {
        let mut vifs = vec![vif(Some(1), 1), vif(None, 2), vif(None, 3)];
        assign_devids(&mut vifs);
        let ids: Vec<_> = vifs.iter().map(|v| v.devid).collect();
        assert_eq!(ids, [Some(1), Some(0), Some(2)]);
        assert_eq!(find(&vifs, "2"), Some(2));
        assert_eq!(find(&vifs, "00:16:3E:00:00:01"), Some(1));
        assert_eq!(find(&vifs, "7"), None);
        assert_eq!(find(&vifs, "00:16:3e:00:00:09"), None);
    }

    #[test]
    fn ip_gives_the_guests_address_and_the_allowed_sources() {
        let mut v = vif(Some(0), 1);
        v.ip = Some(([10, 0, 0, 2], None));
        let crate::devices::Backing::Net(net) = device(&v).backing else {
            panic!("a vif is a net device")
        };
        assert_eq!(net.guest_ip.map(|c| c.prefix_len), Some(24));
        assert_eq!(net.allowed_ip.map(|c| c.prefix_len), Some(32));
    }
}
