//! `hypd` killed with SIGKILL under a guest that writes and flushes: every
//! byte the guest saw flushed is in the image, and a new daemon takes over
//! the dead one's stale socket and its image lock.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

/// How many times the daemon is killed.
const TRIALS: u64 = 20;
/// The image: large enough that the guest is never done when killed.
const IMAGE_BYTES: u64 = 32 << 20;

/// A small generator for the kill points (xorshift), seeded from the
/// clock or `HYP_KILL_SEED` and printed, so a failing run can be
/// repeated.
struct Points(u64);

impl Points {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// The byte count of a `durable: flushed through byte B` line.
fn flushed_through(line: &str) -> Option<u64> {
    line.split_once("durable: flushed through byte ")?
        .1
        .trim()
        .parse()
        .ok()
}

#[test]
fn every_write_flushed_before_a_kill_9_is_in_the_image() {
    let mut d = Daemon::start("durability");
    let image = d.dir.join("durable.img");
    let clock = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let from_env = std::env::var("HYP_KILL_SEED").ok();
    let mut points = Points(from_env.map_or(clock, |s| s.parse().expect("HYP_KILL_SEED")) | 1);
    eprintln!("kill points from HYP_KILL_SEED={}", points.0);
    for trial in 0..TRIALS {
        // The same image path every time: the dead daemon's lock on it
        // must be gone. A new seed: nothing left from a trial before can
        // pass for this one's data.
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(IMAGE_BYTES).unwrap();
        drop(file);
        let seed = clock.wrapping_add(trial);
        let config = d.config(
            "writer",
            &format!(
                "extra = \"workload=durable seed={seed}\"\ndisk = [ 'format=raw, vdev=xvda, access=rw, target={}' ]",
                image.display()
            ),
        );
        d.ok(&["create", "-q", config.to_str().unwrap()]);
        let mut console = Command::new(xl_binary())
            .args(["--socket", d.socket.to_str().unwrap(), "console", "writer"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (lines_tx, lines) = mpsc::channel();
        let stdout = console.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        // Kill at a random point: after a random number of flushed rounds
        // (up to about a quarter of the image), then a random delay
        // inside the next rounds.
        let kill_after = 16384 * (1 + points.next(512));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = 0;
        let mut transcript = Vec::new();
        while seen < kill_after {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("trial {trial}: no progress past {seen}: {transcript:#?}")
            });
            seen = seen.max(flushed_through(&line).unwrap_or(0));
            transcript.push(line);
        }
        std::thread::sleep(Duration::from_micros(points.next(3000)));
        d.kill_and_restart();
        // The console follower ends with the daemon; what it saw before
        // the kill counts too.
        let _ = console.wait();
        reader.join().unwrap();
        transcript.extend(lines.try_iter());
        let flushed = transcript
            .iter()
            .filter_map(|l| flushed_through(l))
            .max()
            .unwrap();
        assert!(
            !transcript.iter().any(|l| l.contains("durable: done")),
            "trial {trial}: the guest finished before the kill"
        );
        let bytes = std::fs::read(&image).unwrap();
        let bad = protocol::pattern::mismatches(&bytes[..flushed as usize], 0, seed);
        assert_eq!(
            bad, 0,
            "trial {trial}: {bad} bytes of the {flushed} flushed are not in the image"
        );
        eprintln!("trial {trial}: killed after {flushed} bytes flushed; all there");
    }
}
