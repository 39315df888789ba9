//! Reading what others print: the guest's `net ...` console lines
//! (`frontends/src/netbench.rs`), Domain-0's removal lines
//! (`service-vm/src/backend.rs`), `ping`'s replies and `/proc/net/dev`.
//! A line that does not read as expected gives `None`, and the figure it
//! would have given is not shown.

use std::collections::HashMap;

/// The number right after the first `key` in `line`.
fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The p99 of a `net ping` or `net tcp-rr` line of the guest, in µs,
/// with the measurement it belongs to (`net-ping`, `net-tcp-rr`).
pub fn guest_p99(line: &str) -> Option<(&'static str, f64)> {
    let name = if line.starts_with("net ping ") {
        "net-ping"
    } else if line.starts_with("net tcp-rr ") {
        "net-tcp-rr"
    } else {
        return None;
    };
    Some((name, number_after(line, ", p99 ")?))
}

/// The frames the guest sent and received, from its `net: done; ...`
/// line.
pub fn guest_frames(line: &str) -> Option<f64> {
    let rest = line.strip_prefix("net: done; ")?;
    let rx = number_after(rest, "")?;
    let tx = number_after(rest, " in, ")?;
    Some(rx + tx)
}

/// What a failed check said, from the guest's `check NAME: DETAIL ->
/// FAILED` line: the check's name and the detail.
pub fn failed_check(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix("check ")?.strip_suffix(" -> FAILED")?;
    rest.split_once(": ")
}

/// The frames Domain-0 delivered into the buffers of `vdev` of domain
/// `domid`, from its line at the device's removal (`service-vm: eth0 of
/// domain 5: 10 frames sent (600 bytes), 12 received (720 bytes), ...`).
pub fn dom0_frames_received(line: &str, vdev: &str, domid: u16) -> Option<f64> {
    let rest = line.strip_prefix(&format!("service-vm: {vdev} of domain {domid}: "))?;
    rest.find(" frames sent")?;
    number_after(rest, "), ")
}

/// The round trips of `ping`'s replies (`64 bytes from ...: icmp_seq=1
/// ttl=64 time=0.045 ms`), in µs.
pub fn ping_times(output: &str) -> Vec<f64> {
    output
        .lines()
        .filter(|l| l.contains(" bytes from ") && l.ends_with(" ms"))
        .filter_map(|l| number_after(l, " time=").map(|ms| ms * 1000.0))
        .collect()
}

/// Frames each interface received and sent, from `/proc/net/dev`.
pub fn net_dev(text: &str) -> HashMap<String, (u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let (name, counts) = line.split_once(':')?;
            let fields: Vec<u64> = counts
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            // rx: bytes packets errs drop fifo frame compressed multicast;
            // tx: bytes packets ...
            Some((name.trim().to_string(), (*fields.get(1)?, *fields.get(9)?)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guests_lines_give_their_figures() {
        let ping = "net ping 10.0.0.3: 1000 ops, 0 lost in 95 ms; latency median 88 us, p99 140 us, max 310 us";
        assert_eq!(guest_p99(ping), Some(("net-ping", 140.0)));
        let rr = "net tcp-rr 10.0.0.3:7: 1000 ops in 120 ms: 8333 ops/s; latency median 110 us, p99 190 us, max 400 us";
        assert_eq!(guest_p99(rr), Some(("net-tcp-rr", 190.0)));
        let rx = "net tcp-rx 10.0.0.3:80: 33554432 bytes in 900 ms: 298 Mbit/s, 0 bytes mismatched";
        assert_eq!(guest_p99(rx), None);
        let done = "net: done; 25000 frames (30000000 bytes) in, 24000 frames (1200000 bytes) out, 0 dropped; waits: 5 answered while spinning, 7 slept, 9 interrupts; serving";
        assert_eq!(guest_frames(done), Some(49000.0));
        assert_eq!(guest_frames("net: no peer= given; serving only"), None);
        assert_eq!(
            failed_check("check net-tcp-rr: connection refused or reset -> FAILED"),
            Some(("net-tcp-rr", "connection refused or reset"))
        );
        assert_eq!(
            failed_check("check net-ping: 0 of 10 pings lost -> ok"),
            None
        );
    }

    #[test]
    fn domain_0s_removal_line_gives_the_frames_it_delivered() {
        let line = "service-vm: eth0 of domain 5: 10 frames sent (600 bytes), 12 received (720 bytes), 0 malformed sent, 0 dropped for want of a buffer, 0 bad buffers";
        assert_eq!(dom0_frames_received(line, "eth0", 5), Some(12.0));
        assert_eq!(
            dom0_frames_received(line, "eth0", 6),
            None,
            "another domain's"
        );
        assert_eq!(
            dom0_frames_received(line, "eth1", 5),
            None,
            "another device's"
        );
        let blk = "service-vm: xvda of domain 5: 10 requests, 10 SQEs, 3 doorbells, 0 fsyncs";
        assert_eq!(dom0_frames_received(blk, "xvda", 5), None);
    }

    #[test]
    fn pings_replies_and_proc_net_dev_are_read() {
        let out = "PING 10.99.0.2 (10.99.0.2) 56(84) bytes of data.\n\
                   64 bytes from 10.99.0.2: icmp_seq=1 ttl=64 time=0.045 ms\n\
                   64 bytes from 10.99.0.2: icmp_seq=2 ttl=64 time=1.50 ms\n\
                   \n--- 10.99.0.2 ping statistics ---\n\
                   2 packets transmitted, 2 received, 0% packet loss, time 1ms\n\
                   rtt min/avg/max/mdev = 0.045/0.772/1.500/0.727 ms\n";
        let times = ping_times(out);
        assert_eq!(times.len(), 2);
        assert!((times[0] - 45.0).abs() < 1e-9 && (times[1] - 1500.0).abs() < 1e-9);
        let dev = "Inter-|   Receive                                                |  Transmit\n \
                   face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
                   lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n\
                   vif3.0: 1200 20 0 0 0 0 0 0 3000 30 0 0 0 0 0 0\n";
        let counts = net_dev(dev);
        assert_eq!(counts["vif3.0"], (20, 30));
        assert_eq!(counts["lo"], (0, 0));
        assert_eq!(counts.len(), 2, "the header lines are not interfaces");
    }
}
