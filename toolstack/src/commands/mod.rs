//! `xl`'s commands that talk to `hypd`.

pub mod console;
pub mod create;
pub mod format;
pub mod vif;

use crate::client::{Client, ClientError};
use protocol::control::{Request, Response};

/// Runs a request that answers `Ok`.
pub fn simple(client: &mut Client, request: Request) -> Result<(), ClientError> {
    match client.call(request)? {
        Response::Ok => Ok(()),
        other => Err(ClientError::unexpected(other)),
    }
}

/// The domain records for `domains` (all when empty).
pub fn records(
    client: &mut Client,
    domains: Vec<String>,
) -> Result<Vec<protocol::control::DomainRecord>, ClientError> {
    match client.call(Request::List(domains))? {
        Response::Domains(records) => Ok(records),
        other => Err(ClientError::unexpected(other)),
    }
}

/// `xl list -l`: detailed JSON, one object per domain.
pub fn list_long(records: &[protocol::control::DomainRecord]) -> String {
    let detailed: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "domid": r.domid,
                "name": r.name,
                "uuid": r.uuid,
                "state": r.state,
                "shutdown_reason": r.shutdown_reason,
                "message": r.message,
                "memory_mib": r.memory_mib,
                "vcpus": r.vcpus,
                "cpu_seconds": r.cpu_seconds,
                "uptime_seconds": r.uptime_seconds,
                "restarts": r.restarts,
                "last_restart": r.last_restart,
                "config": serde_json::from_str::<serde_json::Value>(&r.config_json).unwrap_or(serde_json::Value::Null),
                "vifs": r.vifs.iter().map(|v| serde_json::json!({
                    "devid": v.devid,
                    "backend": v.backend,
                    "mac": vif::mac_text(&v.mac),
                    "bridge": v.bridge,
                    "ip": v.ip,
                    "evtchn": v.irq_port,
                    "placement": v.placement,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_string_pretty(&detailed).expect("JSON values serialize")
}
