//! What the toolstack remembers about each domain beyond the core's view:
//! its configuration (to restart it), its UUID and its lifecycle actions.

use super::error::ControlError;
use protocol::control::{Action, CreateRequest, DomRef};
use protocol::domain::{DomId, DOM0};
use std::collections::HashMap;
use std::sync::Mutex;

/// The toolstack's record of one domain.
#[derive(Clone, Debug)]
pub struct Record {
    /// Random UUID given at creation.
    pub uuid: String,
    /// The request it was created from (`None` for Domain-0).
    pub request: Option<CreateRequest>,
}

/// Records by domain id.
#[derive(Default)]
pub struct Records {
    records: Mutex<HashMap<DomId, Record>>,
}

/// A random version-4 UUID.
fn new_uuid() -> String {
    let mut bytes = [0u8; 16];
    if let Ok(mut urandom) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut urandom, &mut bytes);
    }
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Records {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DomId, Record>> {
        self.records.lock().expect("records lock")
    }

    /// Records Domain-0.
    pub fn add_dom0(&self) {
        self.lock().insert(
            DOM0,
            Record {
                uuid: "00000000-0000-0000-0000-000000000000".into(),
                request: None,
            },
        );
    }

    /// Records a created domain.
    pub fn add(&self, domid: DomId, request: CreateRequest) {
        self.lock().insert(
            domid,
            Record {
                uuid: new_uuid(),
                request: Some(request),
            },
        );
    }

    /// Changes the disks remembered for `domid` (hotplug), so `xl
    /// block-list` and a restart see them.
    pub fn update_disks(
        &self,
        domid: DomId,
        change: impl FnOnce(&mut Vec<protocol::control::DiskRequest>),
    ) {
        if let Some(request) = self.lock().get_mut(&domid).and_then(|r| r.request.as_mut()) {
            change(&mut request.disks);
        }
    }

    /// Changes the vifs remembered for `domid` (hotplug), as
    /// [`Records::update_disks`] does for disks.
    pub fn update_vifs(
        &self,
        domid: DomId,
        change: impl FnOnce(&mut Vec<protocol::control::VifRequest>),
    ) {
        if let Some(request) = self.lock().get_mut(&domid).and_then(|r| r.request.as_mut()) {
            change(&mut request.vifs);
        }
    }

    /// Forgets a destroyed domain.
    pub fn remove(&self, domid: DomId) -> Option<Record> {
        self.lock().remove(&domid)
    }

    /// The record of `domid`.
    pub fn get(&self, domid: DomId) -> Option<Record> {
        self.lock().get(&domid).cloned()
    }

    /// The action configured for a domain's shutdown `reason`
    /// (`poweroff`, `reboot`, `crash`), with Xen's defaults.
    pub fn action(&self, domid: DomId, reason: &str) -> Action {
        let request = self.get(domid).and_then(|r| r.request);
        match (reason, request) {
            ("poweroff", Some(r)) => r.on_poweroff,
            ("reboot", Some(r)) => r.on_reboot,
            ("crash", Some(r)) => r.on_crash,
            ("reboot", None) => Action::Restart,
            _ => Action::Destroy,
        }
    }
}

/// Resolves `xl`'s way of naming a domain (an id or a name).
pub fn resolve(core: &hyp::Hypervisor, domain: &DomRef) -> Result<DomId, ControlError> {
    if let Ok(id) = domain.parse::<DomId>() {
        return core
            .domain(id)
            .map(|d| d.id)
            .ok_or(ControlError::NoSuchId(id));
    }
    core.domains()
        .iter()
        .find(|d| d.name() == *domain)
        .map(|d| d.id)
        .ok_or_else(|| ControlError::NoSuchName(domain.clone()))
}
