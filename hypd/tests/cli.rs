//! `hypd` under its real client, `xl`, on a temporary socket: every
//! command a user reaches for, the daemon's robustness, and lifecycle
//! policy. Each test starts its own daemon (and so its own Domain-0).
//!
//! `xl` is the toolstack package's binary; `cargo test --workspace` builds
//! it beside `hypd` (the toolstack has integration tests of its own).

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[test]
fn create_list_pause_console_shutdown_destroy() {
    let d = Daemon::start("lifecycle");
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is owner-only");

    let list = d.ok(&["list"]);
    assert!(
        list.starts_with(
            "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
        ),
        "{list}"
    );
    assert!(list
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("Domain-0                                     0    64     1     "));

    // More vCPUs than the host's two CPUs, the number quoted as xen-tools
    // writes it.
    let config = d.config("web", "vcpus = '4'\nextra = \"workload=spin\"");
    let created = d.xl(&["create", config.to_str().unwrap()]);
    assert!(created.status.success());
    assert!(String::from_utf8_lossy(&created.stderr).contains("Started domain web (id=1)"));
    assert_eq!(d.ok(&["domid", "web"]).trim(), "1");
    assert_eq!(d.ok(&["domname", "1"]).trim(), "web");
    wait_until(
        || d.state("web").as_deref() == Some("r-----"),
        "the spinning guest to be running",
    );
    assert_eq!(
        d.ok(&["vcpu-list", "web"]).lines().count(),
        5,
        "header and four vCPUs"
    );
    let row = d.ok(&["list", "web"]).lines().nth(1).unwrap().to_string();
    assert_eq!(row.split_whitespace().nth(3), Some("4"), "{row}");

    d.ok(&["pause", "web"]);
    assert_eq!(d.state("web").as_deref(), Some("--p---"));
    assert!(d.ok(&["vcpu-list", "web"]).contains("--p"));
    d.ok(&["unpause", "web"]);
    assert_eq!(d.state("web").as_deref(), Some("r-----"));

    let long: serde_json::Value = serde_json::from_str(&d.ok(&["list", "-l", "web"])).unwrap();
    assert_eq!(long[0]["config"]["vcpus"], 4);
    assert_eq!(long[0]["name"], "web");

    // Console: the recent output is replayed, Ctrl-] detaches.
    let mut console = Command::new(xl_binary())
        .args(["--socket", d.socket.to_str().unwrap(), "console", "web"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = console.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("workload spin") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "console closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    console.stdin.as_mut().unwrap().write_all(&[0x1D]).unwrap();
    assert!(console.wait().unwrap().success(), "Ctrl-] detaches cleanly");

    d.ok(&["rename", "web", "www"]);
    assert!(d.state("www").is_some() && d.state("web").is_none());
    d.ok(&["shutdown", "-w", "www"]);
    assert_eq!(d.state("www"), None, "on_poweroff=destroy removed it");

    let config = d.config(
        "idle",
        "extra = \"workload=idle\"\non_poweroff = \"preserve\"",
    );
    d.ok(&["create", "-q", config.to_str().unwrap()]);
    d.ok(&["shutdown", "-w", "idle"]);
    assert_eq!(
        d.state("idle").as_deref(),
        Some("---s--"),
        "preserved after poweroff"
    );
    d.ok(&["destroy", "idle"]);
    assert_eq!(d.state("idle"), None);
    assert!(d.fails(&["destroy", "idle"]).contains("does not exist"));
    assert!(d
        .fails(&["destroy", "0"])
        .contains("Domain-0 cannot be destroyed"));
    assert!(d.ok(&["dmesg"]).contains("destroyed domain idle"));
    d.ok(&["dmesg", "-c"]);
    assert!(
        !d.ok(&["dmesg"]).contains("destroyed domain idle"),
        "dmesg -c cleared the log"
    );
    assert!(d.ok(&["info"]).contains("nr_domains             : 1"));
    assert!(d.ok(&["uptime"]).contains("Domain-0"));
}

#[test]
fn lifecycle_actions_restart_and_preserve() {
    let d = Daemon::start("actions");
    // `create -p` leaves the new domain paused until `unpause`.
    let config = d.config("sleepy", "extra = \"workload=idle\"");
    d.ok(&["create", "-p", "-q", config.to_str().unwrap()]);
    assert_eq!(d.state("sleepy").as_deref(), Some("--p---"));
    d.ok(&["unpause", "sleepy"]);
    wait_until(
        || d.state("sleepy").as_deref() == Some("-b----"),
        "the unpaused guest to boot and idle",
    );
    d.ok(&["destroy", "sleepy"]);
    let config = d.config(
        "rebooter",
        "extra = \"workload=idle\"\non_reboot = \"restart\"",
    );
    d.ok(&["create", "-q", config.to_str().unwrap()]);
    wait_until(
        || d.state("rebooter").as_deref() == Some("-b----"),
        "guest up",
    );
    d.ok(&["reboot", "rebooter"]);
    // While it restarts the name is briefly gone, so `domid` may fail.
    wait_until(
        || String::from_utf8_lossy(&d.xl(&["domid", "rebooter"]).stdout).trim() == "3",
        "the restarted domain (id 2)",
    );

    let config = d.config(
        "crasher",
        "extra = \"workload=panic\"\non_crash = \"preserve\"",
    );
    d.ok(&["create", "-q", config.to_str().unwrap()]);
    wait_until(
        || d.state("crasher").as_deref() == Some("---sc-"),
        "the crash",
    );
    let long: serde_json::Value = serde_json::from_str(&d.ok(&["list", "-l", "crasher"])).unwrap();
    assert!(long[0]["message"]
        .as_str()
        .unwrap()
        .contains("guest panicked on purpose"));
    d.ok(&["destroy", "crasher"]);

    let config = d.config(
        "renamer",
        "extra = \"workload=panic\"\non_crash = \"rename-restart\"",
    );
    let created = d.xl(&["create", config.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&created.stderr);
    let first = said
        .split_once("(id=")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("xl create names the new domain's id: {said}"));
    let kept = format!("renamer-{first}");
    wait_until(
        || d.state(&kept).as_deref() == Some("---sc-"),
        "the crashed domain, kept under a new name",
    );
    // Its configuration made a new domain under the old name (which
    // crashes in turn, and is renamed in turn).
    let restarted = || {
        let long: serde_json::Value = serde_json::from_str(&d.ok(&["list", "-l"])).unwrap();
        long.as_array().unwrap().iter().any(|r| {
            let name = r["name"].as_str().unwrap_or("");
            name == "renamer" || (name.starts_with("renamer-") && name != kept)
        })
    };
    wait_until(restarted, "a domain restarted from renamer's configuration");
}

#[test]
fn bad_requests_are_refused_and_the_daemon_keeps_serving() {
    let mut d = Daemon::start("robust");
    // Dry run needs no daemon and prints the configuration.
    let config = d.config("dry", "vcpus = 2\nextra = \"workload=idle\"");
    let dry: serde_json::Value =
        serde_json::from_str(&d.ok(&["create", "-n", config.to_str().unwrap(), "memory=24"]))
            .unwrap();
    assert_eq!(
        (dry["memory_mib"].as_u64(), dry["vcpus"].as_u64()),
        (Some(24), Some(2))
    );
    assert_eq!(d.state("dry"), None, "a dry run creates nothing");

    // A create that fails part way leaves nothing behind.
    let missing = d.config("nokernel", "");
    std::fs::write(
        &missing,
        "name = \"nokernel\"\nkernel = \"/nonexistent/kernel\"\n",
    )
    .unwrap();
    assert!(d
        .fails(&["create", missing.to_str().unwrap()])
        .contains("/nonexistent/kernel"));
    let garbage = d.dir.join("garbage.elf");
    std::fs::write(&garbage, b"\x7fELF but not really").unwrap();
    let bad = d.dir.join("bad.cfg");
    std::fs::write(
        &bad,
        format!("name = \"bad\"\nkernel = \"{}\"\n", garbage.display()),
    )
    .unwrap();
    let pid = d.child.id();
    // Client connections come and go as the daemon notices hang-ups, so
    // count everything but sockets: a create leaks memfds, KVM and event fds.
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| !target.to_string_lossy().starts_with("socket:"))
            .count()
    };
    let before = fds();
    assert!(d
        .fails(&["create", bad.to_str().unwrap()])
        .contains("kernel image"));
    // Teardown may finish on another thread; a leak never settles.
    wait_until(
        || fds() == before,
        "hypd's fds to return to their count (no leak)",
    );
    assert_eq!(d.ok(&["list"]).lines().count(), 2, "only Domain-0");

    // Config errors name the file, the line and the key.
    let broken = d.dir.join("broken.cfg");
    std::fs::write(&broken, "name = \"x\"\nkernel = \"k\"\nmemory = \"lots\"\n").unwrap();
    let err = d.fails(&["create", broken.to_str().unwrap()]);
    assert!(
        err.contains("broken.cfg:3") && err.contains("memory"),
        "{err}"
    );

    // Features that do not exist yet say so.
    assert!(d.fails(&["mem-set", "0", "128"]).contains("not supported"));
    assert!(d.fails(&["vcpu-set", "0", "2"]).contains("not supported"));
    // Domain-0 takes no vif: it serves them.
    assert!(d
        .fails(&["network-attach", "0"])
        .contains("not a running guest"));

    // A malformed message gets an error reply; an oversized one too.
    let mut raw = UnixStream::connect(&d.socket).unwrap();
    raw.write_all(&5u32.to_le_bytes()).unwrap();
    // The current version (a one-byte varint), then a body that is no request.
    let version = u8::try_from(protocol::control::VERSION).unwrap();
    raw.write_all(&[version, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap();
    let reply: protocol::control::Response = protocol::control::read_frame(&mut raw).unwrap();
    assert!(
        matches!(reply, protocol::control::Response::Error(ref m) if m.contains("malformed")),
        "{reply:?}"
    );
    let mut raw = UnixStream::connect(&d.socket).unwrap();
    raw.write_all(&(64u32 << 20).to_le_bytes()).unwrap();
    let reply: protocol::control::Response = protocol::control::read_frame(&mut raw).unwrap();
    assert!(
        matches!(reply, protocol::control::Response::Error(ref m) if m.contains("exceeds")),
        "{reply:?}"
    );
    // A frame of another protocol version: the envelope's version varint
    // (99) and a body byte, written by hand.
    let mut raw = UnixStream::connect(&d.socket).unwrap();
    raw.write_all(&2u32.to_le_bytes()).unwrap();
    raw.write_all(&[99, 0]).unwrap();
    let reply: protocol::control::Response = protocol::control::read_frame(&mut raw).unwrap();
    assert!(
        matches!(reply, protocol::control::Response::Error(ref m) if m.contains("protocol version 99")),
        "{reply:?}"
    );
    assert!(d.alive(), "the daemon survived");

    // Two clients at once: a console follower and commands beside it.
    let config = d.config("pair", "extra = \"workload=idle\"");
    d.ok(&["create", "-q", config.to_str().unwrap()]);
    wait_until(
        || d.state("pair").as_deref() == Some("-b----"),
        "the guest to boot and idle",
    );
    let follower = Command::new(xl_binary())
        .args(["--socket", d.socket.to_str().unwrap(), "console", "pair"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lists: Vec<_> = (0..4)
        .map(|_| {
            let socket = d.socket.clone();
            std::thread::spawn(move || {
                Command::new(xl_binary())
                    .arg("--socket")
                    .arg(socket)
                    .arg("list")
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for list in lists {
        let out = list.join().unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("pair"));
    }
    d.ok(&["destroy", "pair"]);
    let out = follower.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the console ends when its domain goes"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("workload idle"));
}

#[test]
fn a_live_socket_is_not_stolen_and_a_stale_one_is_replaced() {
    let d = Daemon::start("socket");
    let second = Command::new(HYPD)
        .args(["--foreground", "--socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));

    // A socket file nobody listens on is stale: a new daemon takes it.
    let stale = d.dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let mut child = Command::new(HYPD)
        .args(["--foreground", "--socket"])
        .arg(&stale)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        || UnixStream::connect(&stale).is_ok(),
        "the new daemon on the stale path",
    );
    let out = Command::new(xl_binary())
        .arg("--socket")
        .arg(&stale)
        .args(["shutdown", "0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        child.wait().unwrap().success(),
        "shutting Domain-0 down stops hypd"
    );

    // A regular file in the way is left alone.
    let file = d.dir.join("file.sock");
    std::fs::write(&file, "precious").unwrap();
    let out = Command::new(HYPD)
        .args(["--foreground", "--socket"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");

    // xl demo refuses to start a second core beside a running daemon.
    let out = Command::new(xl_binary())
        .arg("--socket")
        .arg(&d.socket)
        .arg("demo")
        .output()
        .unwrap();
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("hypd is running")
    );
}

#[test]
fn an_unknown_doorbell_is_refused_before_anything_starts() {
    let out = Command::new(HYPD)
        .args(["--foreground", "--doorbell", "carrier-pigeon"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown doorbell 'carrier-pigeon'") && err.contains("sqpoll"),
        "{err}"
    );
}

#[test]
fn a_guest_with_host_placement_is_served_inside_hypd() {
    let d = Daemon::start("hostmodel");
    let image = d.dir.join("host.img");
    std::fs::write(&image, vec![0u8; 8 << 20]).unwrap();
    let disk = format!(
        "disk=['format=raw, vdev=xvda, access=rw, target={}']",
        image.display()
    );
    // examples/guest-host.cfg with its own image and name, followed from
    // its first line with -c (the domain runs once the console is attached).
    let created = d.xl(&[
        "create",
        "-c",
        "examples/guest-host.cfg",
        "name=\"hm\"",
        &disk,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let console = String::from_utf8_lossy(&created.stdout);
    assert!(
        console
            .lines()
            .next()
            .is_some_and(|l| l.contains("up, workload disk")),
        "the first line is there: {console}"
    );
    assert!(console.contains("0 bytes mismatched -> ok"), "{console}");
    wait_until(
        || d.state("hm").is_none(),
        "on_poweroff=destroy to remove it",
    );
    let image = std::fs::read(&image).unwrap();
    assert!(image.iter().any(|&b| b != 0), "the guest wrote its disk");
    // An unknown placement is refused before anything is created.
    let err = d.fails(&[
        "create",
        "examples/guest-host.cfg",
        "backend_placement=\"qemu\"",
    ]);
    assert!(err.contains("backend_placement"), "{err}");
}

#[test]
fn the_example_guest_boots_with_its_disk_served_by_dom0() {
    let d = Daemon::start("example");
    // examples/guest.cfg as shipped, from the repository root.
    let created = d.xl(&["create", "examples/guest.cfg"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let disks = d.ok(&["block-list", "guest"]);
    assert!(
        disks.starts_with("Vdev  BE  handle state evt-ch ring-ref BE-path\n"),
        "{disks}"
    );
    assert!(
        disks.contains("xvda") && disks.contains("target/images/guest.img (rw)"),
        "{disks}"
    );
    // Follow its console until it powers off and is destroyed.
    let out = Command::new(xl_binary())
        .args(["--socket", d.socket.to_str().unwrap(), "console", "guest"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(console.contains("0 bytes mismatched -> ok"), "{console}");
    assert!(console.contains("randread-4k-qd32"), "{console}");
    wait_until(
        || d.state("guest").is_none(),
        "on_poweroff=destroy to remove it",
    );
    assert!(d.fails(&["save", "0", "x"]).contains("not supported"));
}

#[test]
fn disks_attach_to_and_detach_from_a_running_guest() {
    let d = Daemon::start("hotplug");
    let image = d.dir.join("hot.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(8 << 20))
        .unwrap();
    let config = d.config("host", "extra = \"workload=idle\"");
    d.ok(&["create", "-q", config.to_str().unwrap()]);
    wait_until(
        || d.state("host").as_deref() == Some("-b----"),
        "the guest to idle",
    );
    let spec = format!(
        "format=raw, vdev=xvdb, access=rw, target={}",
        image.display()
    );
    d.ok(&["block-attach", "host", &spec]);
    assert!(d.ok(&["block-list", "host"]).contains("xvdb"));
    // The guest brings the new disk up and verifies it through Dom0.
    let console = || d.console("host");
    wait_until(
        || console().contains("xvdb: pattern"),
        "the guest to check the new disk",
    );
    assert!(console().contains("0 bytes mismatched -> ok"));
    assert!(
        std::fs::read(&image).unwrap().iter().any(|&b| b != 0),
        "the guest wrote the host image"
    );

    d.ok(&["block-detach", "host", "xvdb"]);
    assert!(!d.ok(&["block-list", "host"]).contains("xvdb"));
    wait_until(
        || console().contains("xvdb detached"),
        "the guest to see the disk go",
    );
    assert!(d
        .fails(&["block-detach", "host", "xvdb"])
        .contains("no device xvdb"));
    assert!(d
        .fails(&["block-attach", "host", "format=qcow2, vdev=xvdc, target=/x"])
        .contains("qcow2"));
    assert!(d
        .fails(&["block-attach", "host", "vdev=xvdc, target=/nonexistent.img"])
        .contains("/nonexistent.img"));
    assert_eq!(
        d.state("host").as_deref(),
        Some("-b----"),
        "the guest lives on"
    );
}

#[test]
fn kernels_that_would_sink_the_daemon_are_refused_and_domain_0_keeps_its_name_and_life() {
    let mut d = Daemon::start("hostile-inputs");
    let fifo = d.dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let big = d.dir.join("big.elf");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    // Read whole, /dev/zero would have grown hypd until the OOM killer
    // came; a FIFO would have hung xl and a hypd thread for ever.
    for (kernel, says) in [
        ("/dev/zero", "is a character device, not a regular file"),
        (fifo.to_str().unwrap(), "is a FIFO, not a regular file"),
        (
            big.to_str().unwrap(),
            "more than the 16777216 bytes of the domain's RAM",
        ),
    ] {
        let config = d.dir.join("k.cfg");
        std::fs::write(
            &config,
            format!("name = \"k\"\nkernel = \"{kernel}\"\nmemory = 16\n"),
        )
        .unwrap();
        for dry_run in [true, false] {
            let mut args = vec!["create"];
            if dry_run {
                args.push("-n");
            }
            args.push(config.to_str().unwrap());
            let err = d.fails(&args);
            assert!(err.contains(says), "{kernel} (dry run {dry_run}): {err}");
        }
    }
    assert!(d.alive() && d.state("k").is_none());
    // Domain-0 keeps its name.
    let err = d.fails(&["rename", "0", "impostor"]);
    assert!(err.contains("Domain-0 cannot be renamed"), "{err}");
    assert!(d.alive() && d.state("Domain-0").is_some());
}

#[test]
fn a_flooding_guest_and_a_stalled_console_reader_stay_bounded() {
    let d = Daemon::start("flood");
    let config = d.config(
        "flood",
        "extra = \"workload=flood count=150000\"\non_poweroff = \"preserve\"",
    );
    d.ok(&["create", "-p", "-q", config.to_str().unwrap()]);
    // A reader that stops reading.
    let reader = Command::new(xl_binary())
        .args(["--socket", d.socket.to_str().unwrap(), "console", "flood"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stop = |signal| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(reader.id() as i32), signal).unwrap()
    };
    stop(nix::sys::signal::Signal::SIGSTOP);
    let before = rss_kib(d.child.id());
    d.ok(&["unpause", "flood"]);
    let flooding = Instant::now();
    // 300,000 exits from ring 3: 10 s at the best of times here, and three
    // times that on a slow boot of this machine's PVM or under load.
    wait_until_within(
        || d.state("flood").as_deref() == Some("---s--"),
        "the flood to end (150000 refused hypercalls and 13 MB of console)",
        Duration::from_secs(120),
    );
    let flood_secs = flooding.elapsed().as_secs();
    let grown = rss_kib(d.child.id()).saturating_sub(before);
    assert!(
        grown < 8 << 10,
        "hypd grew by {grown} KiB behind a stopped reader"
    );
    // The reader, woken, is told what it missed.
    stop(nix::sys::signal::Signal::SIGCONT);
    d.ok(&["destroy", "flood"]);
    let out = reader.wait_with_output().unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(
        seen.contains("bytes of console output missed: this reader fell behind"),
        "{} bytes seen",
        seen.len()
    );
    // The daemon's log holds no console line, and a few about the refusals.
    let log = std::fs::read_to_string(d.dir.join("hypd.log")).unwrap();
    assert!(
        !log.contains("flood 000"),
        "console lines are not in the log"
    );
    let refusals = d
        .ok(&["dmesg"])
        .lines()
        .filter(|l| l.contains("refused privileged hypercall"))
        .count();
    // The core logs at most 10 lines a domain in each 10 s window.
    let most = 10 * (flood_secs / 10 + 2) as usize;
    assert!(
        (1..=most).contains(&refusals),
        "{refusals} refusal lines in {flood_secs} s"
    );
}

#[test]
fn the_socket_bounds_its_clients_and_xl_says_when_hypd_does_not_answer() {
    let d = Daemon::start("socket-limits");
    let pid = d.child.id();
    let threads = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .count()
    };
    d.ok(&["list"]);
    std::thread::sleep(Duration::from_millis(200));
    let base = threads();
    // 100 idle connections: 64 are served, a thread each; the rest are
    // told so and let go.
    let mut conns: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&d.socket).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    assert!(threads() <= base + 64 + 2, "{} threads", threads());
    let mut refused = 0;
    for conn in &mut conns {
        conn.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        if let Ok(protocol::control::Response::Error(m)) = protocol::control::read_frame(conn) {
            assert!(m.contains("serving 64 clients"), "{m}");
            refused += 1;
        }
    }
    assert_eq!(refused, 36);
    // A frame that never arrives whole is given up on, and its memory
    // with it (the body is read as it comes).
    let partial = &mut conns[0];
    partial.write_all(&(1u32 << 20).to_le_bytes()).unwrap();
    partial.write_all(&[1; 10]).unwrap();
    partial
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let started = Instant::now();
    assert_eq!(partial.read(&mut [0; 16]).unwrap(), 0, "closed");
    assert!(started.elapsed() < Duration::from_secs(7));
    // An idle client is let go too; then every slot is free again.
    let idle = &mut conns[1];
    idle.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    assert_eq!(idle.read(&mut [0; 16]).unwrap(), 0, "closed");
    drop(conns);
    wait_until(|| threads() <= base + 1, "the client threads to end");
    d.ok(&["list"]);

    // A socket where nobody answers, and one whose daemon hangs up.
    let mute = d.dir.join("mute.sock");
    let listener = std::os::unix::net::UnixListener::bind(&mute).unwrap();
    let held = std::thread::spawn(move || {
        let (first, _) = listener.accept().unwrap();
        let (second, _) = listener.accept().unwrap();
        drop(second);
        std::thread::sleep(Duration::from_secs(3));
        drop(first);
    });
    let xl = |args: &[&str]| {
        Command::new(xl_binary())
            .args(["--socket", mute.to_str().unwrap(), "--timeout", "1"])
            .args(args)
            .output()
            .unwrap()
    };
    let silent = xl(&["list"]);
    let said = String::from_utf8_lossy(&silent.stderr);
    assert!(
        !silent.status.success() && said.contains("did not answer within 1 s"),
        "{said}"
    );
    let hung_up = xl(&["list"]);
    let said = String::from_utf8_lossy(&hung_up.stderr);
    assert!(
        !hung_up.status.success() && said.contains("closed the connection before answering"),
        "{said}"
    );
    held.join().unwrap();
}

#[test]
fn the_restart_throttle_is_per_domain_and_xl_says_when_hypd_dies() {
    let mut d = Daemon::start("throttle");
    let config = d.config(
        "looper",
        "extra = \"workload=panic\"\non_crash = \"restart\"",
    );
    let first_id = |out: &Output| -> String {
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        said.split_once("(id=")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(id, _)| id.to_string())
            .unwrap_or_else(|| panic!("no id in {said}"))
    };
    // A crash loop is preserved after a few quick restarts...
    d.ok(&["create", "-q", config.to_str().unwrap()]);
    // While it restarts the name is briefly gone, so `domid` may fail.
    let domid = || {
        String::from_utf8_lossy(&d.xl(&["domid", "looper"]).stdout)
            .trim()
            .to_string()
    };
    let settled = || {
        let id = domid();
        std::thread::sleep(Duration::from_millis(500));
        !id.is_empty() && d.state("looper").as_deref() == Some("---sc-") && domid() == id
    };
    wait_until(settled, "the crash loop to be preserved");
    d.ok(&["destroy", "looper"]);
    // ...and a new domain of that name starts with a clean slate: it is
    // restarted in turn, not preserved at once.
    let created = d.xl(&["create", config.to_str().unwrap()]);
    assert!(created.status.success());
    let id = first_id(&created);
    wait_until(
        || {
            d.xl(&["domid", "looper"])
                .stdout
                .split(|&b| b == b'\n')
                .next()
                .is_some_and(|l| !l.is_empty() && String::from_utf8_lossy(l) != id)
        },
        "the new looper to be restarted",
    );

    // When hypd dies, the xl that waits on it says so and fails.
    let idle = d.config("idle", "extra = \"workload=idle\"");
    d.ok(&["create", "-q", idle.to_str().unwrap()]);
    wait_until(|| d.state("idle").as_deref() == Some("-b----"), "idle up");
    d.ok(&["pause", "idle"]);
    let waiter = Command::new(xl_binary())
        .args([
            "--socket",
            d.socket.to_str().unwrap(),
            "shutdown",
            "-w",
            "idle",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let console = Command::new(xl_binary())
        .args(["--socket", d.socket.to_str().unwrap(), "console", "idle"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.child.kill().unwrap();
    for (what, child) in [("shutdown -w", waiter), ("console", console)] {
        let out = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && said.contains("closed the connection"),
            "xl {what}: {said}"
        );
    }
}

#[test]
fn a_guests_text_cannot_forge_a_log_line_or_drive_a_terminal() {
    let d = Daemon::start("forge");
    let config = d.config(
        "forger",
        "extra = \"workload=forge\"\non_crash = \"preserve\"",
    );
    d.ok(&["create", "-q", config.to_str().unwrap()]);
    wait_until(
        || d.state("forger").as_deref() == Some("---sc-"),
        "the crash",
    );
    let dmesg = d.ok(&["dmesg"]);
    assert!(!dmesg.contains('\x1b'), "no escape reaches the terminal");
    assert!(
        !dmesg.lines().any(|l| l.starts_with("(    0.000001)")),
        "no forged line: {dmesg}"
    );
    assert!(
        dmesg.contains("oops\\n(    0.000001) INFO  destroyed domain Domain-0\\x1b[2J"),
        "the message, escaped: {dmesg}"
    );
    let log = std::fs::read_to_string(d.dir.join("hypd.log")).unwrap();
    assert!(!log.contains("\x1b[2J"), "nor the log file");
    assert!(!log.lines().any(|l| l.starts_with("(    0.000001)")));
}
