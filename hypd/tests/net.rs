//! Networking, end to end: guests with vifs under a `hypd` of their own in
//! a fresh network namespace, reached by real Linux clients (`ping`,
//! `curl`, netcat) through the host's bridge, in both placements.
//!
//! Each test gives the bridge `xenbr0` the address [`HOST`] and its guests
//! addresses in 10.0.0.0/24, all inside the test's namespace.

mod common;

use common::*;
use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

/// The host's address on the bridge.
const HOST: &str = "10.0.0.254/24";

/// Runs `program args` in the daemon's namespace and returns its output.
fn run(d: &Daemon, program: &str, args: &[&str]) -> Output {
    d.in_netns(program).args(args).output().unwrap()
}

/// Gives the bridge the host's address (once it exists).
fn address_the_bridge(d: &Daemon) {
    wait_until(
        || run(d, "ip", &["link", "show", "xenbr0"]).status.success(),
        "the bridge",
    );
    let out = run(d, "ip", &["addr", "replace", HOST, "dev", "xenbr0"]);
    assert!(out.status.success(), "{out:?}");
}

/// A guest `name` with one vif at `ip`, idle (serving its network).
fn guest_with_vif(d: &Daemon, name: &str, ip: &str, mac_last: u8, placement: &str) {
    let config = d.config(
        name,
        &format!(
            "memory = 32\nextra = \"workload=idle\"\nvif = [ 'mac=00:16:3e:00:00:{mac_last:02x}, ip={ip}/24' ]\nbackend_placement = \"{placement}\""
        ),
    );
    d.ok(&["create", config.to_str().unwrap()]);
}

/// Pings `ip` until it answers (the guest's stack comes up after boot),
/// then `count` more times; returns ping's summary.
fn ping(d: &Daemon, ip: &str, count: u32) -> String {
    wait_until(
        || run(d, "ping", &["-c", "1", "-W", "1", ip]).status.success(),
        "the guest to answer ping",
    );
    let out = run(
        d,
        "ping",
        &["-c", &count.to_string(), "-i", "0.2", "-W", "2", ip],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "ping {ip}: {text}");
    text
}

/// Sends `data` to TCP port 7 of `ip` with netcat and returns what came
/// back.
fn tcp_echo(d: &Daemon, ip: &str, data: &[u8]) -> Vec<u8> {
    let mut nc = d
        .in_netns("nc")
        .args(["-N", "-w", "10", ip, "7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("netcat (netcat-openbsd)");
    let mut stdin = nc.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&data).unwrap();
    });
    let out = nc.wait_with_output().unwrap();
    writer.join().unwrap();
    out.stdout
}

/// A pattern of `len` bytes no window of which repeats soon.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// What every guest with a vif serves, checked with real clients.
fn serves_ping_http_and_echo(d: &Daemon, ip: &str, domid: &str) {
    let summary = ping(d, ip, 5);
    assert!(summary.contains("5 received"), "{summary}");

    let page = run(
        d,
        "curl",
        &["-sS", "--max-time", "10", &format!("http://{ip}/")],
    );
    let page = String::from_utf8_lossy(&page.stdout).into_owned();
    assert!(page.contains(&format!("domain: {domid}")), "{page}");
    assert!(page.contains(&format!("ipv4: {ip}/24")), "{page}");

    let bytes = run(
        d,
        "curl",
        &[
            "-sS",
            "--max-time",
            "20",
            &format!("http://{ip}/bytes/3000000"),
        ],
    );
    assert_eq!(bytes.stdout.len(), 3_000_000, "{:?}", bytes.stderr);

    let data = pattern(1 << 20);
    let back = tcp_echo(d, ip, &data);
    assert_eq!(back.len(), data.len(), "the 1 MiB came back whole");
    assert!(back == data, "the 1 MiB came back byte for byte");

    let udp = d
        .in_netns("nc")
        .args(["-u", "-w", "2", ip, "7"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    udp.stdin
        .as_ref()
        .unwrap()
        .write_all(b"over udp\n")
        .unwrap();
    let out = udp.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"over udp\n", "UDP echo");
}

#[test]
fn a_host_model_guest_serves_ping_http_and_echo_through_its_tap() {
    let d = Daemon::start_in_netns("net-host");
    guest_with_vif(&d, "web", "10.0.0.2", 2, "host");
    address_the_bridge(&d);
    let links = String::from_utf8(run(&d, "ip", &["-br", "link"]).stdout).unwrap();
    assert!(
        links.contains("vif1.0"),
        "the tap is named vif<domid>.<devid>: {links}"
    );
    let list = d.ok(&["network-list", "web"]);
    let mut lines = list.lines();
    assert_eq!(
        lines.next(),
        Some("Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path")
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with("0   0  00:16:3e:00:00:02  0      4"),
        "{row}"
    );
    assert!(row.contains("(host vif1.0 xenbr0 10.0.0.2/24)"), "{row}");

    let long = d.ok(&["list", "-l", "web"]);
    assert!(long.contains("\"mac\": \"00:16:3e:00:00:02\""), "{long}");
    assert!(long.contains("\"placement\": \"host vif1.0\""), "{long}");

    serves_ping_http_and_echo(&d, "10.0.0.2", "1");

    d.ok(&["destroy", "web"]);
    wait_until(
        || {
            let links = run(&d, "ip", &["-br", "link"]).stdout;
            !String::from_utf8_lossy(&links).contains("vif1.0")
        },
        "the tap to go with its guest",
    );
}

#[test]
fn network_attach_and_detach_on_a_running_guest() {
    let d = Daemon::start_in_netns("net-hotplug");
    let config = d.config(
        "hot",
        "memory = 32\nextra = \"workload=idle\"\nbackend_placement = \"host\"",
    );
    d.ok(&["create", config.to_str().unwrap()]);
    assert_eq!(
        d.ok(&["network-list", "hot"]).lines().count(),
        1,
        "no vif yet"
    );
    d.ok(&[
        "network-attach",
        "hot",
        "mac=00:16:3e:00:00:33",
        "ip=10.0.0.3/24",
    ]);
    address_the_bridge(&d);
    ping(&d, "10.0.0.3", 3);
    let err = String::from_utf8(
        d.xl(&["network-attach", "hot", "mac=00:16:3e:00:00:33"])
            .stderr,
    )
    .unwrap();
    assert!(
        err.contains("already has a vif with mac 00:16:3e:00:00:33"),
        "{err}"
    );
    let err = d.fails(&["network-detach", "hot", "7"]);
    assert!(err.contains("no vif 7"), "{err}");
    d.ok(&["network-detach", "hot", "00:16:3E:00:00:33"]);
    assert_eq!(d.ok(&["network-list", "hot"]).lines().count(), 1);
    let out = run(&d, "ping", &["-c", "1", "-W", "1", "10.0.0.3"]);
    assert!(!out.status.success(), "a detached vif answers nothing");
    // A second attach gets the lowest free device id again.
    d.ok(&["network-attach", "hot", "ip=10.0.0.4/24"]);
    let list = d.ok(&["network-list", "hot"]);
    assert!(
        list.lines().nth(1).unwrap().starts_with("0   0  00:16:3e:"),
        "{list}"
    );
    ping(&d, "10.0.0.4", 2);
    std::thread::sleep(Duration::from_millis(10));
}

/// Bytes the kernel counted on interface `name` (rx, tx), in the
/// daemon's namespace.
fn link_bytes(d: &Daemon, name: &str) -> (u64, u64) {
    let read = |what: &str| {
        let out = run(
            d,
            "cat",
            &[&format!("/sys/class/net/{name}/statistics/{what}_bytes")],
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    (read("rx"), read("tx"))
}

/// Waits for guest `name`'s console to show the `net` workload's result
/// line starting with `prefix`, and returns it.
fn net_line(d: &Daemon, name: &str, prefix: &str) -> String {
    let mut line = String::new();
    wait_until(
        || {
            let console = d.console(name);
            let lines = console
                .lines()
                .map(|l| l.strip_prefix("frontends: ").unwrap_or(l));
            match lines.into_iter().find(|l| l.starts_with(prefix)) {
                Some(l) => {
                    line = l.to_string();
                    true
                }
                None => false,
            }
        },
        prefix,
    );
    line
}

#[test]
fn a_service_vm_guest_serves_ping_http_and_echo_through_dom0s_switch() {
    let d = Daemon::start_in_netns("net-svm");
    guest_with_vif(&d, "web", "10.0.0.2", 2, "service-vm");
    address_the_bridge(&d);
    let links = String::from_utf8(run(&d, "ip", &["-br", "link"]).stdout).unwrap();
    assert!(
        links.contains("vif0.0"),
        "Domain-0's uplink is on the bridge: {links}"
    );
    assert!(
        !links.contains("vif1.0"),
        "no tap of the guest's own: {links}"
    );
    assert!(d
        .ok(&["info"])
        .contains("dom0_switches          : xenbr0 (vif0.0)"));
    let list = d.ok(&["network-list", "web"]);
    assert!(list.contains("(service-vm xenbr0 10.0.0.2/24)"), "{list}");

    serves_ping_http_and_echo(&d, "10.0.0.2", "1");
}

#[test]
fn guests_on_dom0s_switch_talk_without_the_host_and_across_placements() {
    let d = Daemon::start_in_netns("net-g2g");
    guest_with_vif(&d, "server", "10.0.0.2", 2, "service-vm");
    guest_with_vif(&d, "hosted", "10.0.0.4", 4, "host");
    address_the_bridge(&d);
    ping(&d, "10.0.0.2", 1);
    ping(&d, "10.0.0.4", 1);
    let before = link_bytes(&d, "vif0.0");
    let client = d.config(
        "client",
        "memory = 32\nextra = \"workload=net peer=10.0.0.2 count=200 net_mib=8\"\nvif = [ 'mac=00:16:3e:00:00:03, ip=10.0.0.3/24' ]",
    );
    d.ok(&["create", client.to_str().unwrap()]);
    let rx = net_line(&d, "client", "net tcp-rx 10.0.0.2:80: 8388608 bytes");
    assert!(rx.ends_with("0 bytes mismatched"), "{rx}");
    net_line(&d, "client", "net tcp-tx 10.0.0.2:9: 8388608 bytes");
    let pings = net_line(&d, "client", "net ping 10.0.0.2:");
    assert!(pings.contains("200 ops, 0 lost"), "{pings}");
    // 16 MiB crossed Domain-0's switch; what reached the bridge is the
    // flooded ARP and little else.
    let after = link_bytes(&d, "vif0.0");
    let moved = (after.0 - before.0) + (after.1 - before.1);
    assert!(moved < 1 << 20, "{moved} bytes crossed the uplink");

    // A service-VM guest and a host-model guest reach each other through
    // the uplink and the host's bridge.
    let cross = d.config(
        "cross",
        "memory = 32\nextra = \"workload=net peer=10.0.0.4 count=100 net_mib=4\"\nvif = [ 'mac=00:16:3e:00:00:05, ip=10.0.0.5/24' ]",
    );
    d.ok(&["create", cross.to_str().unwrap()]);
    let pings = net_line(&d, "cross", "net ping 10.0.0.4:");
    assert!(pings.contains("100 ops, 0 lost"), "{pings}");
    let rx = net_line(&d, "cross", "net tcp-rx 10.0.0.4:80: 4194304 bytes");
    assert!(rx.ends_with("0 bytes mismatched"), "{rx}");
    let after_cross = link_bytes(&d, "vif0.0");
    assert!(after_cross.0 + after_cross.1 > after.0 + after.1 + (4 << 20));

    // A guest destroyed mid-stream leaves the others served.
    d.ok(&["destroy", "client"]);
    ping(&d, "10.0.0.2", 2);
}

/// Waits for the daemon's log (the host model's lines) or Domain-0's
/// console (Domain-0's) to hold a line containing every one of `parts`,
/// and returns it.
fn log_line(d: &Daemon, parts: &[&str]) -> String {
    let mut found = String::new();
    wait_until(
        || {
            let mut log = std::fs::read_to_string(d.dir.join("hypd.log")).unwrap_or_default();
            log.push_str(&d.console("0"));
            match log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                Some(l) => {
                    found = l.to_string();
                    true
                }
                None => false,
            }
        },
        &format!("a log line with {parts:?}"),
    );
    found
}

/// Waits for guest `name`'s console to show a line containing `text`.
fn console_shows(d: &Daemon, name: &str, text: &str) -> String {
    let mut found = String::new();
    wait_until(
        || match d.console(name).lines().find(|l| l.contains(text)) {
            Some(l) => {
                found = l.to_string();
                true
            }
            None => false,
        },
        text,
    );
    found
}

/// A guest `name` running `workload` with one vif (a bare `ip=`: the
/// switch then lets only that address through).
fn misbehaving_guest(
    d: &Daemon,
    name: &str,
    workload: &str,
    ip: &str,
    mac_last: u8,
    placement: &str,
) {
    let config = d.config(
        name,
        &format!(
            "memory = 32\nextra = \"workload={workload}\"\nvif = [ 'mac=00:16:3e:00:00:{mac_last:02x}, ip={ip}' ]\nbackend_placement = \"{placement}\""
        ),
    );
    d.ok(&["create", config.to_str().unwrap()]);
}

#[test]
fn spoofed_frames_are_dropped_and_counted_in_both_placements() {
    let d = Daemon::start_in_netns("net-spoof");
    for (placement, victim, spoofer, last) in [
        ("service-vm", "10.0.0.3", "10.0.0.20", 0x03),
        ("host", "10.0.0.4", "10.0.0.21", 0x04),
    ] {
        let name = format!("victim-{placement}");
        guest_with_vif(&d, &name, victim, last, placement);
        address_the_bridge(&d);
        ping(&d, victim, 1);
        let spy = format!("spoofer-{placement}");
        misbehaving_guest(
            &d,
            &spy,
            &format!("netspoof peer={victim}"),
            spoofer,
            last + 0x10,
            placement,
        );
        console_shows(&d, &spy, "netspoof: done; serving");
        let console = d.console(&spy);
        assert!(
            console.contains("netspoof: sent 100 frames with a forged source MAC")
                && console.contains("), 0 answered"),
            "{console}"
        );
        assert!(
            console.contains(&format!(
                "control: 10 pings from {spoofer} to {victim}, 10 answered"
            )),
            "the link works for honest frames: {console}"
        );
        // The victim keeps its traffic.
        ping(&d, victim, 3);
        let domid = d.ok(&["domid", &spy]);
        d.ok(&["destroy", &spy]);
        // The spoofer's port, as its placement logs it when the vif goes
        // (the victims' ports stay). Frames that reached the port before
        // its driver had posted receive buffers (the host's ARP and IPv6
        // multicast during its boot) count as "no buffer": that number
        // varies from run to run.
        let port = match placement {
            "host" => log_line(&d, &["host model:", "port: in"]),
            _ => log_line(
                &d,
                &["service-vm: port of", &format!("(domain {})", domid.trim())],
            ),
        };
        assert!(
            port.contains(": 100 spoofed MAC, 200 spoofed IP, 0 group source, 0 hairpin,")
                && port.contains(" no buffer, 0 malformed"),
            "{port}"
        );
    }
}

#[test]
fn hostile_net_rings_beside_a_healthy_guest() {
    let d = Daemon::start_in_netns("net-hostile");
    guest_with_vif(&d, "healthy", "10.0.0.2", 2, "service-vm");
    address_the_bridge(&d);
    for (placement, ip, last) in [
        ("service-vm", "10.0.0.30", 0x30),
        ("host", "10.0.0.31", 0x31),
    ] {
        let name = format!("hostile-{placement}");
        misbehaving_guest(&d, &name, "nethostile", ip, last, placement);
        console_shows(&d, &name, "nethostile: device up again; serving");
        let console = d.console(&name);
        let checks: Vec<&str> = console
            .lines()
            .filter(|l| l.contains("check net-"))
            .collect();
        assert!(checks.len() >= 13, "{console}");
        assert!(checks.iter().all(|l| l.ends_with("-> ok")), "{checks:#?}");
        // The attacker is served again once it behaves, and the healthy
        // guest never stopped.
        ping(&d, ip, 2);
        serves_ping_http_and_echo(&d, "10.0.0.2", "1");
    }
}

#[test]
fn a_broadcast_flood_leaves_two_other_guests_their_stream() {
    let d = Daemon::start_in_netns("net-flood");
    guest_with_vif(&d, "server", "10.0.0.2", 2, "service-vm");
    address_the_bridge(&d);
    ping(&d, "10.0.0.2", 1);
    let stream = |name: &str, last: u8| {
        let config = d.config(
            name,
            &format!("memory = 32\nextra = \"workload=net peer=10.0.0.2 count=50 net_mib=8\"\nvif = [ 'mac=00:16:3e:00:00:{last:02x}, ip=10.0.0.{last}/24' ]"),
        );
        d.ok(&["create", config.to_str().unwrap()]);
        let line = net_line(&d, name, "net tcp-rx 10.0.0.2:80: 8388608 bytes");
        assert!(line.ends_with("0 bytes mismatched"), "{line}");
        line
    };
    let quiet = stream("before", 3);
    misbehaving_guest(&d, "flooder", "netflood", "10.0.0.9", 9, "service-vm");
    console_shows(&d, "flooder", "netflood: broadcasting 1514-byte frames");
    let flooded = stream("during", 4);
    eprintln!("victim stream without the flood: {quiet}");
    eprintln!("victim stream during the flood:  {flooded}");
    // The flood was on: it reports its count once a second.
    console_shows(&d, "flooder", "frames sent");
    d.ok(&["shutdown", "-w", "flooder"]);
}

#[test]
fn rate_holds_a_vif_to_its_limit() {
    let d = Daemon::start_in_netns("net-rate");
    guest_with_vif(&d, "sink", "10.0.0.2", 2, "service-vm");
    address_the_bridge(&d);
    ping(&d, "10.0.0.2", 1);
    // 16 Mbit/s in 20 ms credits of 40000 bytes.
    let config = d.config(
        "limited",
        "memory = 32\nextra = \"workload=net peer=10.0.0.2 count=20 net_mib=4\"\nvif = [ 'mac=00:16:3e:00:00:05, ip=10.0.0.5/24, rate=16Mb/s@20ms' ]",
    );
    d.ok(&["create", config.to_str().unwrap()]);
    let line = net_line(&d, "limited", "net tcp-tx 10.0.0.2:9: 4194304 bytes");
    let mbit: f64 = line
        .split(": ")
        .last()
        .and_then(|t| t.strip_suffix(" Mbit/s"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {line}"));
    eprintln!("rate=16Mb/s@20ms: {line}");
    // The limit counts whole frames (headers too), the figure only the
    // payload; TCP cannot fill every interval.
    assert!(
        (12.8..=17.6).contains(&mbit),
        "{mbit} Mbit/s against a 16 Mbit/s limit: {line}"
    );
    d.ok(&["destroy", "limited"]);
    let port = log_line(&d, &["port of eth0 (domain 2)"]);
    assert!(!port.contains(" 0 delayed by rate"), "{port}");
}

/// Domain-0 restarts under two guests on its switch: the client's TCP
/// stream from the server loses no byte (TCP retransmits what
/// the restart dropped), and the uplink comes back.
#[test]
fn a_tcp_stream_between_two_guests_survives_domain_0_restarts() {
    let d = Daemon::start_in_netns("net-restart");
    guest_with_vif(&d, "server", "10.0.0.2", 2, "service-vm");
    address_the_bridge(&d);
    ping(&d, "10.0.0.2", 1);
    let client = d.config(
        "client",
        "memory = 48\nextra = \"workload=net peer=10.0.0.2 count=50 net_mib=1024\"\nvif = [ 'mac=00:16:3e:00:00:03, ip=10.0.0.3/24' ]",
    );
    d.ok(&["create", client.to_str().unwrap()]);
    // The streams start after the pings: Domain-0 (its switch, both
    // vifs and the uplink) then crashes twice, 300 ms apart, while the
    // server sends the client 1 GiB.
    net_line(&d, "client", "net ping 10.0.0.2:");
    for shown in ["1 time", "2 times"] {
        d.ok(&["trigger", "0", "nmi"]);
        wait_until(
            || d.ok(&["list"]).contains(&format!("(restarted {shown}")),
            "xl list to show the restart",
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert!(
        !d.console("client").contains("net tcp-rx"),
        "the stream from the server outlasted both restarts: {}",
        d.console("client")
    );
    let rx = net_line(&d, "client", "net tcp-rx 10.0.0.2:80: 1073741824 bytes");
    assert!(rx.ends_with("0 bytes mismatched"), "{rx}");
    let tx = net_line(&d, "client", "net tcp-tx 10.0.0.2:9: 1073741824 bytes");
    eprintln!("across two restarts: {rx}; {tx}");
    // The switch's uplink came back too: the host reaches the server.
    ping(&d, "10.0.0.2", 2);
}
