//! What the daemon's integration tests share: a `hypd` of their own on a
//! temporary socket, driven through its real client `xl`.
//!
//! Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const HYPD: &str = env!("CARGO_BIN_EXE_hypd");

/// The `xl` binary built beside `hypd`.
pub fn xl_binary() -> PathBuf {
    let xl = Path::new(HYPD).with_file_name("xl");
    assert!(
        xl.exists(),
        "{} is missing: build it with `cargo build -p toolstack --bin xl` (or run `cargo test --workspace`)",
        xl.display()
    );
    xl
}

/// A `hypd` in the foreground on its own socket; killed on drop.
pub struct Daemon {
    /// The daemon's process.
    pub child: Child,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its directory: socket, log (`hypd.log`), configs, images.
    pub dir: PathBuf,
    /// The network namespace it runs in, if it has one of its own
    /// (deleted on drop, with every tap and bridge in it).
    pub netns: Option<String>,
}

impl Daemon {
    /// Starts a daemon in a fresh directory named after `test`.
    pub fn start(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hyp-cli-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("hypd.sock");
        let child = Self::spawn(&dir, &socket, None);
        let daemon = Self {
            child,
            socket,
            dir,
            netns: None,
        };
        daemon.wait_listening();
        daemon
    }

    /// Starts a daemon as [`Daemon::start`] does, inside a network
    /// namespace of its own (`ip netns add`, loopback up), so its taps and
    /// bridges never touch the host's interfaces. Run clients in it with
    /// [`Daemon::in_netns`].
    pub fn start_in_netns(test: &str) -> Self {
        // The clients the network tests run, named if missing (rather than
        // a guest that seems not to answer).
        for (program, package) in [("ping", "iputils-ping"), ("nc", "netcat-openbsd")] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(found, "`{program}` is missing: apt-get install {package}");
        }
        let name = format!("hyp-{test}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let made = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add (iproute2)");
        assert!(made.success(), "ip netns add {name}");
        let up = Command::new("ip")
            .args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"])
            .status()
            .unwrap();
        assert!(up.success());
        let dir = std::env::temp_dir().join(format!("hyp-cli-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("hypd.sock");
        let child = Self::spawn(&dir, &socket, Some(&name));
        let daemon = Self {
            child,
            socket,
            dir,
            netns: Some(name),
        };
        daemon.wait_listening();
        daemon
    }

    /// A command run inside the daemon's network namespace.
    pub fn in_netns(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args([
            "netns",
            "exec",
            self.netns.as_deref().expect("a netns daemon"),
            program,
        ]);
        command
    }

    /// Kills the daemon with SIGKILL, as the OOM killer or a careless
    /// operator would, and starts another on the same socket (the dead
    /// one's stale socket file is still there).
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.dir, &self.socket, self.netns.as_deref());
        self.wait_listening();
    }

    fn spawn(dir: &Path, socket: &Path, netns: Option<&str>) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("hypd.log"))
            .unwrap();
        let mut command = match netns {
            Some(name) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", name, HYPD]);
                c
            }
            None => Command::new(HYPD),
        };
        command
            .args(["--foreground", "--socket"])
            .arg(socket)
            .stderr(log)
            .spawn()
            .expect("start hypd")
    }

    fn wait_listening(&self) {
        wait_until(
            || UnixStream::connect(&self.socket).is_ok(),
            "hypd to listen",
        );
    }

    /// Runs `xl` on this daemon's socket, from the repository root.
    pub fn xl(&self, args: &[&str]) -> Output {
        Command::new(xl_binary())
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .current_dir(workspace())
            .output()
            .unwrap()
    }

    /// Runs `xl`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.xl(args);
        assert!(
            out.status.success(),
            "xl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `xl`, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.xl(args);
        assert!(!out.status.success(), "xl {args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }

    /// What domain `name` printed on its console so far (the output `hypd`
    /// keeps), read with `xl console` and Ctrl-].
    pub fn console(&self, name: &str) -> String {
        let mut child = Command::new(xl_binary())
            .args(["--socket", self.socket.to_str().unwrap(), "console", name])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // A console that ended already (the domain is gone) has hung up.
        let _ = child.stdin.as_mut().unwrap().write_all(&[0x1D]);
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).into_owned()
    }

    /// The state column of `xl list` for domain `name`, if it exists.
    pub fn state(&self, name: &str) -> Option<String> {
        let list = self.ok(&["list"]);
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().nth(4).unwrap().to_string())
    }

    /// Writes `name.cfg`: the frontends kernel, 16 MiB, then `body`.
    pub fn config(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.cfg"));
        std::fs::write(
            &path,
            format!(
                "name = \"{name}\"\nkernel = \"{}\"\nmemory = 16\n{body}\n",
                kernels::FRONTENDS_PATH
            ),
        )
        .unwrap();
        path
    }

    /// True if the process runs and answers on its socket.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none() && UnixStream::connect(&self.socket).is_ok()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(name) = &self.netns {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The repository root.
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Polls `ok` every 20 ms for up to 20 s; panics naming `what`.
pub fn wait_until(ok: impl FnMut() -> bool, what: &str) {
    wait_until_within(ok, what, Duration::from_secs(20));
}

/// Polls `ok` every 20 ms for up to `limit`; panics naming `what`.
pub fn wait_until_within(mut ok: impl FnMut() -> bool, what: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// What a process holds, read from `/proc`.
#[derive(Clone, Copy, Debug)]
pub struct Footprint {
    /// Open file descriptors.
    pub fds: usize,
    /// Threads.
    pub threads: usize,
    /// Resident anonymous and file-backed memory, KiB (the daemon's own).
    pub private_kib: u64,
    /// Resident shared memory, KiB (domains' RAM, mapped while they live).
    pub shmem_kib: u64,
}

impl Footprint {
    /// The footprint of process `pid` now.
    pub fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap()
        };
        Self {
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .count(),
            threads: field("Threads:") as usize,
            private_kib: field("RssAnon:") + field("RssFile:"),
            shmem_kib: field("RssShmem:"),
        }
    }

    /// The footprint of `pid` once it holds still: two readings 100 ms
    /// apart with the same descriptors and threads (a client's connection
    /// or a teardown may be finishing).
    pub fn settled(pid: u32) -> Self {
        let mut before = Self::of(pid);
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(100));
            let now = Self::of(pid);
            if (now.fds, now.threads) == (before.fds, before.threads) {
                return now;
            }
            before = now;
        }
        panic!("process {pid} never settled: {before:?}");
    }
}

/// Figures of [`churn`].
#[derive(Debug)]
pub struct Churn {
    /// The daemon after the warm-up cycles, and at the end.
    pub warm: Footprint,
    /// The daemon after the last cycle.
    pub end: Footprint,
    /// Wall time of each cycle (create, run or not, destroy), sorted.
    pub cycle_ms: Vec<f64>,
}

/// `cycles` creates and destroys of a guest with a disk served by
/// Domain-0: even cycles let it check its disk and power off, odd ones
/// destroy it at once, in the middle of its I/O. The footprint is taken
/// after `warm_up` cycles and at the end.
pub fn churn(d: &Daemon, cycles: usize, warm_up: usize) -> Churn {
    let image = d.dir.join("churn.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(4 << 20))
        .unwrap();
    let config = d.config(
        "churn",
        &format!(
            "extra = \"workload=disk bench=off verify_mib=1\"\ndisk = [ 'format=raw, vdev=xvda, access=rw, target={}' ]",
            image.display()
        ),
    );
    let config = config.to_str().unwrap();
    let mut warm = Footprint::settled(d.child.id());
    let mut cycle_ms = Vec::with_capacity(cycles);
    for cycle in 0..cycles {
        let started = Instant::now();
        d.ok(&["create", "-q", config]);
        if cycle % 2 == 0 {
            wait_until(|| d.state("churn").is_none(), "the guest to power off");
        } else {
            // Mid-I/O as a rule; a guest that finished first is gone
            // already, which churns as well.
            let out = d.xl(&["destroy", "churn"]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() || err.contains("does not exist"),
                "xl destroy churn: {err}"
            );
        }
        cycle_ms.push(started.elapsed().as_secs_f64() * 1e3);
        if cycle + 1 == warm_up {
            warm = Footprint::settled(d.child.id());
        }
    }
    cycle_ms.sort_by(f64::total_cmp);
    Churn {
        warm,
        end: Footprint::settled(d.child.id()),
        cycle_ms,
    }
}
