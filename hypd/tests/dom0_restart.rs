//! Domain-0's restarts through the real daemon and `xl`: `xl trigger 0
//! nmi` and `xl reboot 0` restart it under a running guest, `xl list` and
//! `xl dmesg` show it, and a Domain-0 that keeps stopping right after it
//! starts stops hypd with a clear message instead of looping.

mod common;
use common::*;

#[test]
fn domain_0_restarts_under_a_guest_and_xl_shows_it() {
    let mut d = Daemon::start("dom0-restart");
    let image = d.dir.join("disk.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(16 << 20))
        .unwrap();
    let config = d.config(
        "writer",
        &format!(
            "memory = 48\nextra = \"workload=disk count=30 bench=none seed=5\"\non_poweroff = \"preserve\"\ndisk = ['format=raw, vdev=xvda, access=rw, target={}']",
            image.display()
        ),
    );
    d.ok(&["create", "-q", config.to_str().unwrap()]);
    wait_until(
        || d.console("writer").contains("-> ok"),
        "the guest's first round",
    );
    d.ok(&["trigger", "0", "nmi"]);
    wait_until(
        || d.ok(&["list"]).contains("(restarted 1 time, last: crash"),
        "xl list to show the restart",
    );
    d.ok(&["reboot", "0"]);
    wait_until(
        || d.ok(&["list"]).contains("(restarted 2 times, last: reboot"),
        "xl list to show the reboot",
    );
    let dmesg = d.ok(&["dmesg"]);
    assert!(
        dmesg.contains("Domain-0 restarted (crash: Kernel panic: NMI received"),
        "{dmesg}"
    );
    assert!(d.fails(&["trigger", "0", "init"]).contains("not supported"));
    wait_until_within(
        || d.state("writer").as_deref() == Some("---s--"),
        "the guest to finish its rounds",
        std::time::Duration::from_secs(300),
    );
    let console = d.console("writer");
    assert_eq!(
        console.matches("0 bytes mismatched -> ok").count(),
        30,
        "{console}"
    );
    assert_eq!(
        protocol::pattern::mismatches(&std::fs::read(&image).unwrap(), 0, 5 + 29),
        0
    );
    let long = d.ok(&["list", "-l", "0"]);
    assert!(long.contains("\"restarts\": 2"), "{long}");

    // Six stops within two seconds of each start: hypd gives up.
    for _ in 0..20 {
        if !d.alive() {
            break;
        }
        let _ = d.xl(&["trigger", "0", "reset"]);
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    wait_until(|| !d.alive(), "hypd to stop");
    let log = std::fs::read_to_string(d.dir.join("hypd.log")).unwrap_or_default();
    assert!(log.contains("not restarting it again: hypd stops"), "{log}");
}
