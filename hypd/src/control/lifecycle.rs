//! Lifecycle policy: what happens when a domain powers off, reboots or
//! crashes (`on_poweroff`, `on_reboot`, `on_crash`).

use super::daemon::Daemon;
use super::error::ControlError;
use super::handlers;
use hyp::Event;
use protocol::control::Action;
use protocol::domain::{DomId, DomainState, ShutdownReason, DOM0};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// A domain that stops again within this time after a restart counts
/// towards [`MAX_QUICK_RESTARTS`].
const QUICK: Duration = Duration::from_secs(2);
/// Quick restarts in a row after which a domain is preserved instead.
const MAX_QUICK_RESTARTS: u32 = 5;

/// Quick restarts in a row, per chain of restarts: the count passes from a
/// domain to the one restarted from it, and goes when the chain ends. A new
/// domain that happens to reuse a name starts afresh.
type QuickRestarts = std::collections::HashMap<DomId, u32>;

/// Follows the core's events until Domain-0 stops: keeps consoles, applies
/// each guest's lifecycle actions.
pub fn watch(daemon: &Daemon, events: Receiver<Event>) {
    let mut quick_restarts = QuickRestarts::default();
    let mut dom0_quick = 0;
    for event in events {
        match event {
            Event::State {
                domid,
                state: DomainState::Dying,
                ..
            } => {
                quick_restarts.remove(&domid);
            }
            Event::Console { domid, line } => daemon.consoles.line(domid, &line),
            Event::State {
                domid,
                state,
                message,
            } if state.is_final() && state != DomainState::Dying => {
                let reason = match state {
                    DomainState::Shutdown(reason) => reason.name(),
                    _ => "crash",
                };
                let name = daemon
                    .machine
                    .core()
                    .domain(domid)
                    .map(|d| d.name())
                    .unwrap_or_default();
                tracing::info!(
                    domid,
                    "domain {name} stopped: {reason}{}",
                    message
                        .as_ref()
                        .map(|m| format!(": {}", protocol::text::escape_controls(m)))
                        .unwrap_or_default()
                );
                if domid == DOM0 {
                    let why =
                        message.map_or_else(|| reason.to_string(), |m| format!("{reason}: {m}"));
                    if state == DomainState::Shutdown(ShutdownReason::Poweroff)
                        || !restart_dom0(daemon, &why, &mut dom0_quick)
                    {
                        stop_all(daemon);
                        return;
                    }
                    continue;
                }
                let action = daemon.records.action(domid, reason);
                apply(daemon, domid, &name, action, &mut quick_restarts);
            }
            _ => {}
        }
    }
}

fn apply(daemon: &Daemon, domid: DomId, name: &str, action: Action, quick: &mut QuickRestarts) {
    let lived = daemon
        .machine
        .core()
        .domain(domid)
        .map_or(Duration::MAX, |d| d.uptime());
    let result = match action {
        Action::Preserve => Ok(()),
        Action::Destroy => handlers::destroy(daemon, domid),
        Action::Restart | Action::RenameRestart => {
            let before = quick.remove(&domid).unwrap_or(0);
            let count = if lived < QUICK { before + 1 } else { 0 };
            if count > MAX_QUICK_RESTARTS {
                tracing::warn!(domid, "domain {name} keeps stopping right after start; preserving it instead of restarting");
                return;
            }
            restart(daemon, domid, name, action == Action::RenameRestart).map(|new| {
                quick.insert(new, count);
            })
        }
    };
    if let Err(e) = result {
        tracing::error!(domid, "lifecycle action {action:?} for {name} failed: {e}");
    }
}

/// Restarts a domain from its configuration; with `rename`, the old one is
/// kept under a new name. The new domain runs even if the first was created
/// paused (`xl create -p`, or `-c` until its console was attached).
fn restart(daemon: &Daemon, domid: DomId, name: &str, rename: bool) -> Result<DomId, ControlError> {
    let mut request = daemon
        .records
        .get(domid)
        .and_then(|r| r.request)
        .ok_or(ControlError::NoRecord(domid))?;
    request.paused = false;
    if rename {
        daemon
            .machine
            .core()
            .rename(domid, &format!("{name}-{domid}"))?;
    } else {
        handlers::destroy(daemon, domid)?;
    }
    let new = handlers::create(daemon, request)?;
    tracing::info!(domid = new, "restarted {name} as domain {new}");
    Ok(new)
}

/// Domain-0 stopped for `why` (anything but a power-off): boots a new one
/// under the guests, unless it keeps stopping right after it starts
/// (throttled as a guest's restarts are). False if Domain-0 cannot come
/// back: then hypd stops.
fn restart_dom0(daemon: &Daemon, why: &str, quick: &mut u32) -> bool {
    let lived = daemon
        .machine
        .core()
        .domain(DOM0)
        .map_or(Duration::MAX, |d| d.uptime());
    *quick = if lived < QUICK { *quick + 1 } else { 0 };
    if *quick > MAX_QUICK_RESTARTS {
        tracing::error!(
            domid = DOM0,
            "Domain-0 stopped {} times in a row within {} s of starting; not restarting it again: hypd stops",
            *quick,
            QUICK.as_secs()
        );
        return false;
    }
    match daemon.machine.restart_dom0(why) {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(
                domid = DOM0,
                "Domain-0 could not be restarted: {e}; hypd stops"
            );
            false
        }
    }
}

/// Domain-0 stopped: the guests lose their backends, so they go too.
fn stop_all(daemon: &Daemon) {
    for domain in daemon.machine.core().domains().iter().rev() {
        if domain.id != DOM0 {
            let _ = handlers::destroy(daemon, domain.id);
        }
    }
    let _ = daemon.machine.destroy(DOM0);
}
