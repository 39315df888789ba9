//! One function per `xl` request.

use super::console::missed_notice;
use super::daemon::Daemon;
use super::error::ControlError;
use super::network;
use super::records::resolve;
use crate::devices::{DeviceConfig, Placement};
use crate::machine::GuestConfig;
use hyp::DomainConfig;
use protocol::boot::ControlRequest;
use protocol::control::{
    CreateRequest, DomRef, DomainRecord, Request, Response, Trigger, VcpuRecord,
};
use protocol::domain::{DomId, DomainState, DOM0};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Longest a `Wait` waits for a domain to stop.
const WAIT_LIMIT: Duration = Duration::from_secs(3600);

/// Answers a request (every one but `Console`).
pub fn handle(daemon: &Daemon, request: Request) -> Response {
    answer(daemon, request).unwrap_or_else(|e| Response::Error(e.to_string()))
}

fn answer(daemon: &Daemon, request: Request) -> Result<Response, ControlError> {
    let core = daemon.machine.core();
    Ok(match request {
        Request::Create(create) => Response::Created(self::create(daemon, create)?),
        Request::List(domains) => Response::Domains(list(daemon, &domains)?),
        Request::Destroy(domain) => with_domain(daemon, &domain, |id| destroy(daemon, id))?,
        Request::Shutdown(domain) => with_domain(daemon, &domain, |id| {
            Ok(core.request_shutdown(id, ControlRequest::Poweroff)?)
        })?,
        // Domain-0 finishes its host I/O and reboots; a new one takes
        // the guests' devices over (`Machine::restart_dom0`).
        Request::Reboot(domain) => with_domain(daemon, &domain, |id| {
            Ok(core.request_shutdown(id, ControlRequest::Reboot)?)
        })?,
        Request::Trigger { domain, trigger } => with_domain(daemon, &domain, |id| {
            match trigger {
                Trigger::Nmi => core.inject_nmi(id)?,
                Trigger::Reset => core.crash(id, "reset by xl trigger")?,
            }
            Ok(())
        })?,
        Request::Pause(domain) => with_domain(daemon, &domain, |id| Ok(core.pause(id)?))?,
        Request::Unpause(domain) => with_domain(daemon, &domain, |id| Ok(core.unpause(id)?))?,
        Request::Rename { domain, name } => {
            with_domain(daemon, &domain, |id| Ok(core.rename(id, &name)?))?
        }
        Request::Info => Response::Info(info(daemon)),
        Request::Dmesg { clear } => Response::Dmesg(daemon.log.lines(clear)),
        Request::VcpuList(domains) => Response::Vcpus(vcpus(daemon, &domains)?),
        // A domain that is already gone (destroyed by its on_poweroff
        // action, say) has finished shutting down.
        Request::Wait(domain) => {
            if let Ok(id) = resolve(core, &domain) {
                // `None`: still running at the deadline (a domain that is
                // gone meanwhile has finished, as above).
                if core.wait_final(id, WAIT_LIMIT).is_none() && core.domain(id).is_some() {
                    return Err(ControlError::StillRunning {
                        domid: id,
                        waited: WAIT_LIMIT,
                    });
                }
            }
            Response::Ok
        }
        Request::BlockList(domain) => Response::Disks(disks(daemon, resolve(core, &domain)?)),
        Request::BlockAttach { domain, disk } => with_domain(daemon, &domain, |id| {
            let device = DeviceConfig::disk(&disk.vdev, &disk.target, disk.readonly)
                .with_direct_io(disk.direct_io);
            daemon.machine.attach_device(id, device)?;
            daemon.records.update_disks(id, |disks| disks.push(disk));
            Ok(())
        })?,
        Request::BlockDetach { domain, vdev } => with_domain(daemon, &domain, |id| {
            daemon.machine.detach_device(id, &vdev)?;
            daemon
                .records
                .update_disks(id, |disks| disks.retain(|d| d.vdev != vdev));
            Ok(())
        })?,
        Request::NetworkList(domain) => {
            Response::Vifs(network::list(daemon, resolve(core, &domain)?))
        }
        Request::NetworkAttach { domain, vif } => {
            with_domain(daemon, &domain, |id| network::attach(daemon, id, vif))?
        }
        Request::NetworkDetach { domain, vif } => {
            with_domain(daemon, &domain, |id| network::detach(daemon, id, &vif))?
        }
        Request::Trace(request) => {
            let domid = resolve(core, &request.domain)?;
            Response::Trace(crate::trace::trace(&daemon.machine, domid, &request)?)
        }
        Request::Console(_) => return Err(ControlError::ConsoleIsStream),
    })
}

fn with_domain(
    daemon: &Daemon,
    domain: &DomRef,
    op: impl FnOnce(DomId) -> Result<(), ControlError>,
) -> Result<Response, ControlError> {
    op(resolve(daemon.machine.core(), domain)?).map(|()| Response::Ok)
}

/// Creates a domain from a request; on failure nothing is left behind.
pub fn create(daemon: &Daemon, mut request: CreateRequest) -> Result<DomId, ControlError> {
    network::assign_devids(&mut request.vifs);
    let ram = request.memory_mib.saturating_mul(1 << 20);
    let kernel = crate::files::read_kernel(std::path::Path::new(&request.kernel), ram)
        .map_err(ControlError::Kernel)?;
    let guest = GuestConfig {
        domain: DomainConfig {
            name: request.name.clone(),
            kernel,
            memory_mib: request.memory_mib,
            vcpus: request.vcpus,
            cmdline: request.cmdline.clone(),
            start_paused: request.paused,
        },
        devices: devices(&request),
        placement: if request.host_backends {
            Placement::Host
        } else {
            Placement::ServiceVm
        },
    };
    let domid = daemon.machine.create(guest)?;
    daemon.records.add(domid, request);
    Ok(domid)
}

/// The devices of a guest: its disks, and a console when it has disks (the
/// standard guest's console output then crosses Dom0's console backend).
fn devices(request: &CreateRequest) -> Vec<DeviceConfig> {
    let mut devices: Vec<DeviceConfig> = request
        .disks
        .iter()
        .map(|d| DeviceConfig::disk(&d.vdev, &d.target, d.readonly).with_direct_io(d.direct_io))
        .collect();
    if !devices.is_empty() {
        devices.push(DeviceConfig::console());
    }
    devices.extend(request.vifs.iter().map(network::device));
    devices
}

/// Destroys a guest and forgets it.
pub fn destroy(daemon: &Daemon, domid: DomId) -> Result<(), ControlError> {
    if domid == DOM0 {
        return Err(ControlError::Dom0Destroy);
    }
    daemon.machine.destroy(domid)?;
    daemon.records.remove(domid);
    daemon.consoles.close(domid);
    Ok(())
}

fn resolve_all(daemon: &Daemon, domains: &[DomRef]) -> Result<Vec<DomId>, ControlError> {
    let core = daemon.machine.core();
    if domains.is_empty() {
        return Ok(core.domains().iter().map(|d| d.id).collect());
    }
    domains.iter().map(|d| resolve(core, d)).collect()
}

fn list(daemon: &Daemon, domains: &[DomRef]) -> Result<Vec<DomainRecord>, ControlError> {
    let mut records = Vec::new();
    let restarts = daemon.machine.dom0_restarts();
    for domid in resolve_all(daemon, domains)? {
        let Some(domain) = daemon.machine.core().domain(domid) else {
            continue;
        };
        let record = daemon.records.get(domid);
        let state = domain.state();
        let (name, reason) = match state {
            DomainState::Running => ("running", None),
            DomainState::Blocked => ("blocked", None),
            DomainState::Paused => ("paused", None),
            DomainState::Shutdown(reason) => ("shutdown", Some(reason as u32)),
            DomainState::Crashed => (
                "crashed",
                Some(protocol::domain::ShutdownReason::Crash as u32),
            ),
            DomainState::Dying => ("dying", None),
        };
        records.push(DomainRecord {
            domid,
            name: domain.name(),
            uuid: record.as_ref().map(|r| r.uuid.clone()).unwrap_or_default(),
            memory_mib: domain.memory_mib(),
            vcpus: domain.vcpus(),
            state: name.into(),
            shutdown_reason: reason,
            cpu_seconds: domain.cpu_time().as_secs_f64(),
            uptime_seconds: domain.uptime().as_secs_f64(),
            message: domain.message(),
            config_json: record
                .and_then(|r| r.request)
                .map_or("null".into(), |r| r.config_json),
            vifs: network::list(daemon, domid),
            restarts: if domid == DOM0 { restarts.count } else { 0 },
            last_restart: if domid == DOM0 {
                restarts.last.as_ref().map(|r| r.reason.clone())
            } else {
                None
            },
        });
    }
    Ok(records)
}

fn vcpus(daemon: &Daemon, domains: &[DomRef]) -> Result<Vec<VcpuRecord>, ControlError> {
    let mut records = Vec::new();
    for domid in resolve_all(daemon, domains)? {
        let Some(domain) = daemon.machine.core().domain(domid) else {
            continue;
        };
        let paused = domain.state() == DomainState::Paused;
        for vcpu in domain.vcpu_info() {
            let state = if paused {
                "--p"
            } else if vcpu.halted {
                "-b-"
            } else {
                "r--"
            };
            records.push(VcpuRecord {
                name: domain.name(),
                domid,
                vcpu: vcpu.index,
                cpu: vcpu.host_cpu,
                state: state.into(),
                cpu_seconds: vcpu.cpu_time.as_secs_f64(),
            });
        }
    }
    Ok(records)
}

/// The disks of `domid`: its configuration joined with its devices.
fn disks(daemon: &Daemon, domid: DomId) -> Vec<protocol::control::DiskRecord> {
    let configured = daemon
        .records
        .get(domid)
        .and_then(|r| r.request)
        .map(|r| r.disks)
        .unwrap_or_default();
    daemon
        .machine
        .devices(domid)
        .iter()
        .enumerate()
        .filter_map(|(handle, device)| {
            let disk = configured.iter().find(|d| d.vdev == device.vdev())?;
            Some(protocol::control::DiskRecord {
                vdev: disk.vdev.clone(),
                handle: handle as u32,
                irq_port: device.irq_port,
                target: disk.target.clone(),
                readonly: disk.readonly,
            })
        })
        .collect()
}

fn info(daemon: &Daemon) -> Vec<(String, String)> {
    let uname = nix::sys::utsname::uname().ok();
    let text = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uname
            .as_ref()
            .map_or(String::new(), |u| f(u).to_string_lossy().into_owned())
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let core = daemon.machine.core();
    let memory = core.memory();
    vec![
        ("host".into(), text(|u| u.nodename())),
        ("release".into(), text(|u| u.release())),
        ("version".into(), text(|u| u.version())),
        ("machine".into(), text(|u| u.machine())),
        ("nr_cpus".into(), cpus.to_string()),
        ("total_memory".into(), memory.total_mib.to_string()),
        ("free_memory".into(), memory.free_mib.to_string()),
        ("domain_memory".into(), memory.domains_mib.to_string()),
        ("host_reserve_memory".into(), memory.reserve_mib.to_string()),
        ("nr_domains".into(), core.domains().len().to_string()),
        ("hyp_version".into(), env!("CARGO_PKG_VERSION").into()),
        (
            "hyp_caps".into(),
            "x86_64 kvm-irqchip ioeventfd irqfd msi-routing".into(),
        ),
        ("kvm_api_version".into(), core.kvm_api_version().to_string()),
        (
            "max_vcpus_per_domain".into(),
            protocol::domain::MAX_VCPUS.to_string(),
        ),
        ("dom0_switches".into(), switches(daemon)),
    ]
}

/// Domain-0's switches as `xl info` shows them: `bridge (uplink)`, or `-`.
fn switches(daemon: &Daemon) -> String {
    let switches = daemon.machine.dom0_switches();
    if switches.is_empty() {
        return "-".into();
    }
    let named: Vec<String> = switches
        .iter()
        .map(|(bridge, tap)| format!("{bridge} ({tap})"))
        .collect();
    named.join(", ")
}

/// Streams a domain's console until it is gone or the client leaves.
pub fn stream_console(daemon: &Daemon, domain: &DomRef, stream: &mut UnixStream) {
    use protocol::control::write_frame;
    let domid = match resolve(daemon.machine.core(), domain) {
        Ok(domid) => domid,
        Err(e) => {
            let _ = write_frame(stream, Response::Error(e.to_string()));
            return;
        }
    };
    let (recent, follow) = daemon.consoles.follow(domid);
    if write_frame(stream, Response::Ok).is_err()
        || (!recent.is_empty() && write_frame(stream, Response::Console(recent)).is_err())
    {
        return;
    }
    // Once the reader has caught up, whatever it missed and was not told
    // of (the output stopped before there was room to say so).
    let tell_missed = |stream: &mut UnixStream| {
        let missed = follow.missed.swap(0, std::sync::atomic::Ordering::AcqRel);
        missed == 0 || write_frame(stream, Response::Console(missed_notice(missed))).is_ok()
    };
    loop {
        match follow.lines.recv_timeout(Duration::from_millis(200)) {
            Ok(bytes) if bytes.is_empty() => {}
            Ok(bytes) => {
                if write_frame(stream, Response::Console(bytes)).is_err() {
                    return;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if !tell_missed(stream) {
                    return;
                }
                let alive = daemon
                    .machine
                    .core()
                    .domain(domid)
                    .is_some_and(|d| !d.state().is_final());
                if !alive {
                    let _ = write_frame(stream, Response::ConsoleClosed);
                    return;
                }
                let _ = stream.flush();
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                if tell_missed(stream) {
                    let _ = write_frame(stream, Response::ConsoleClosed);
                }
                return;
            }
        }
    }
}
