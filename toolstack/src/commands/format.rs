//! Output formats, as Xen's `xl` prints them.

use protocol::control::{DomainRecord, VcpuRecord};

/// Xen's shutdown-reason letters, indexed by reason code.
const REASON_LETTERS: &[u8] = b"-rscwS";

/// The six-letter state column: `r b p s <reason> d`.
pub fn state_letters(record: &DomainRecord) -> String {
    let flag = |on: bool, letter: char| if on { letter } else { '-' };
    let shut = matches!(record.state.as_str(), "shutdown" | "crashed");
    let reason = match record.shutdown_reason {
        Some(code) if shut => REASON_LETTERS
            .get(code as usize)
            .map_or('?', |&b| b as char),
        _ => '-',
    };
    [
        flag(record.state == "running", 'r'),
        flag(record.state == "blocked", 'b'),
        flag(record.state == "paused", 'p'),
        flag(shut, 's'),
        reason,
        flag(record.state == "dying", 'd'),
    ]
    .iter()
    .collect()
}

/// `xl list`, with `-v` columns when `verbose`.
pub fn list(records: &[DomainRecord], verbose: bool) -> String {
    let mut out =
        String::from("Name                                        ID   Mem VCPUs\tState\tTime(s)");
    if verbose {
        out.push_str("   UUID                            Reason-Code\tSecurity Label");
    }
    out.push('\n');
    for r in records {
        out.push_str(&format!(
            "{:<40} {:>5} {:>5} {:>5}     {}  {:>8.1}",
            r.name,
            r.domid,
            r.memory_mib,
            r.vcpus,
            state_letters(r),
            r.cpu_seconds
        ));
        if verbose {
            out.push_str(&format!(
                " {} {:>8x}     -",
                r.uuid,
                r.shutdown_reason.unwrap_or(0)
            ));
        }
        if r.restarts > 0 {
            // After Xen's columns, so tools that read those still do.
            out.push_str(&format!(
                "  (restarted {} time{}, last: {})",
                r.restarts,
                if r.restarts == 1 { "" } else { "s" },
                protocol::text::escape_controls(r.last_restart.as_deref().unwrap_or("?"))
            ));
        }
        out.push('\n');
    }
    out
}

/// `xl uptime`.
pub fn uptime(records: &[DomainRecord]) -> String {
    let mut out = format!("{:<33} {:>4} {}\n", "Name", "ID", "Uptime");
    for r in records {
        let total = r.uptime_seconds as u64;
        let (days, hours, minutes, seconds) = (
            total / 86400,
            total / 3600 % 24,
            total / 60 % 60,
            total % 60,
        );
        let time = if days > 0 {
            format!(
                "{days} day{}, {hours:2}:{minutes:02}:{seconds:02}",
                if days == 1 { "" } else { "s" }
            )
        } else {
            format!("{hours:2}:{minutes:02}:{seconds:02}")
        };
        out.push_str(&format!("{:<33} {:>4} {}\n", r.name, r.domid, time));
    }
    out
}

/// `xl vcpu-list`.
pub fn vcpus(records: &[VcpuRecord]) -> String {
    let mut out = String::from("Name                                ID  VCPU   CPU State   Time(s) Affinity (Hard / Soft)\n");
    for v in records {
        let cpu = v.cpu.map_or("-".to_string(), |c| c.to_string());
        out.push_str(&format!(
            "{:<32} {:>5} {:>5} {:>5}   {:<3} {:>9.1}  all / all\n",
            v.name, v.domid, v.vcpu, cpu, v.state, v.cpu_seconds
        ));
    }
    out
}

/// `xl block-list`, with Xen's columns; the backend is Domain-0's blk
/// backend and its "path" the image it serves.
pub fn disks(records: &[protocol::control::DiskRecord]) -> String {
    let mut out = String::from("Vdev  BE  handle state evt-ch ring-ref BE-path\n");
    for d in records {
        let access = if d.readonly { "ro" } else { "rw" };
        out.push_str(&format!(
            "{:<5} {:<3} {:<6} {:<5} {:<6} {:<8} {} ({access})\n",
            d.vdev, 0, d.handle, 4, d.irq_port, "-", d.target
        ));
    }
    out
}

/// `xl network-list`, with Xen's columns (fields with no meaning here
/// print as Xen prints unknowns) and, after the BE-path, where the
/// backend runs, its bridge and the guest's address.
pub fn vifs(records: &[protocol::control::VifRecord]) -> String {
    let mut out =
        String::from("Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path\n");
    for v in records {
        let mac = super::vif::mac_text(&v.mac);
        let path = format!("/local/domain/{}/backend/vif/{}", v.backend, v.devid);
        out.push_str(&format!(
            "{:<3} {:<2} {mac}  {:<6} {:<5} {:<8} {:<15} {path} ({} {} {})\n",
            v.devid, v.backend, v.devid, 4, v.irq_port, "-1/-1", v.placement, v.bridge, v.ip
        ));
    }
    out
}

/// `xl info`.
pub fn info(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<23}: {v}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, domid: u16, state: &str, reason: Option<u32>) -> DomainRecord {
        DomainRecord {
            domid,
            name: name.into(),
            uuid: "00000000-0000-0000-0000-000000000000".into(),
            memory_mib: 64,
            vcpus: 1,
            state: state.into(),
            shutdown_reason: reason,
            cpu_seconds: 12.34,
            uptime_seconds: 90061.0,
            message: None,
            config_json: "null".into(),
            vifs: Vec::new(),
            restarts: 0,
            last_restart: None,
        }
    }

    #[test]
    fn list_matches_xens_layout() {
        let records = [
            record("Domain-0", 0, "running", None),
            record("guest", 3, "blocked", None),
            record("crashed", 4, "crashed", Some(3)),
            record("rebooted", 5, "shutdown", Some(1)),
            record("off", 6, "shutdown", Some(0)),
            record("stopped", 7, "paused", None),
        ];
        let expected =
            "Name                                        ID   Mem VCPUs\tState\tTime(s)\n\
Domain-0                                     0    64     1     r-----      12.3\n\
guest                                        3    64     1     -b----      12.3\n\
crashed                                      4    64     1     ---sc-      12.3\n\
rebooted                                     5    64     1     ---sr-      12.3\n\
off                                          6    64     1     ---s--      12.3\n\
stopped                                      7    64     1     --p---      12.3\n";
        assert_eq!(list(&records, false), expected);
        assert!(list(&records[..1], true).contains("Reason-Code"));
    }

    #[test]
    fn a_restarted_domain_0_says_how_often_and_why_after_xens_columns() {
        let mut dom0 = record("Domain-0", 0, "running", None);
        dom0.restarts = 3;
        dom0.last_restart = Some("crash: NMI\x1b[2J".into());
        let out = list(&[dom0], false);
        let row = out.lines().nth(1).unwrap();
        assert!(row.starts_with(
            "Domain-0                                     0    64     1     r-----      12.3"
        ));
        assert!(
            row.ends_with("(restarted 3 times, last: crash: NMI\\x1b[2J)"),
            "{row}"
        );
    }

    #[test]
    fn uptime_counts_days() {
        assert_eq!(
            uptime(&[record("g", 1, "running", None)])
                .lines()
                .nth(1)
                .unwrap()
                .trim_end(),
            format!("{:<33} {:>4} 1 day,  1:01:01", "g", 1)
        );
    }
}
