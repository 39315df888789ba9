//! `xl trace` against a real `hypd`: a running guest's reads traced in
//! both placements (text, JSON and the swim-lane picture), and what it
//! cannot trace refused with a clear error.

mod common;

use common::*;

/// A guest reading its disk at depth 1 for a while, served in `placement`.
fn reader(d: &Daemon, name: &str, placement: &str) {
    let image = d.dir.join(format!("{name}.img"));
    std::fs::write(&image, vec![7u8; 8 << 20]).unwrap();
    let cfg = d.config(
        name,
        &format!(
            "memory = 32\nbackend_placement = \"{placement}\"\n\
             extra = \"workload=disk verify_mib=0 bench=20000ms runs=randread-4k-qd1\"\n\
             disk = ['format=raw, vdev=xvda, access=rw, target={}']",
            image.display()
        ),
    );
    d.ok(&["create", cfg.to_str().unwrap()]);
}

fn trace_json(d: &Daemon, name: &str) -> serde_json::Value {
    let out = d.ok(&["trace", name, "--requests", "200", "--json"]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The parties of the median journey's steps, in order, without repeats.
fn lanes(trace: &serde_json::Value) -> Vec<String> {
    let mut lanes: Vec<String> = Vec::new();
    for step in trace["median_journey"].as_array().expect("median_journey") {
        let party = step["party"].as_str().unwrap().to_string();
        if lanes.last() != Some(&party) {
            lanes.push(party);
        }
    }
    lanes
}

#[test]
fn xl_trace_follows_a_read_through_both_placements() {
    let d = Daemon::start("trace");
    reader(&d, "svm", "service-vm");
    reader(&d, "hm", "host");
    let svm = trace_json(&d, "svm");
    assert_eq!(svm["placement"], "service-vm");
    assert_eq!(svm["requests"], 200, "{svm}");
    assert_eq!(
        lanes(&svm),
        ["Guest", "Dom0", "Core", "Dom0", "Guest"],
        "guest to Domain-0 to the core's doorbell and back: {svm}"
    );
    let hm = trace_json(&d, "hm");
    assert_eq!(hm["placement"], "host");
    assert_eq!(lanes(&hm), ["Guest", "HostModel", "Guest"], "{hm}");
    for trace in [&svm, &hm] {
        let latency = trace["latency"]["median_us"].as_f64().unwrap();
        let last = trace["median_journey"].as_array().unwrap().last().unwrap();
        assert_eq!(last["step"], "Seen");
        assert!(latency > 0.0 && last["us_since_submit"].as_f64().unwrap() > 0.0);
        let steps = trace["steps"].as_array().unwrap();
        assert!(steps
            .iter()
            .any(|s| s["step"] == "Queued" && s["count"] == 200));
    }

    let text = d.ok(&["trace", "svm", "--requests", "50"]);
    assert!(text.contains("median request"), "{text}");
    assert!(text.contains("core takes the doorbell"), "{text}");
    let picture = d.dir.join("svm.svg");
    d.ok(&[
        "trace",
        "svm",
        "--requests",
        "50",
        "--svg",
        picture.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&picture).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{svg}");
    for lane in ["guest", "Domain-0", "core", "host kernel"] {
        assert!(svg.contains(lane), "lane {lane} in the picture");
    }
}

#[test]
fn xl_trace_refuses_what_it_cannot_trace() {
    let d = Daemon::start("trace-refusals");
    let idle = d.config("idle", "extra = \"workload=idle\"");
    d.ok(&["create", idle.to_str().unwrap()]);
    reader(&d, "reader", "service-vm");
    let cases: [(&[&str], &str); 6] = [
        (&["trace", "idle"], "has no disk"),
        (&["trace", "ghost"], "does not exist"),
        (&["trace", "0"], "Domain-0"),
        (&["trace", "reader", "--device", "xvdz"], "no device xvdz"),
        (&["trace", "reader", "--requests", "5000"], "--requests"),
        (&["trace", "reader", "--timeout", "0"], "--timeout"),
    ];
    for (args, says) in cases {
        let err = d.fails(args);
        assert!(err.contains(says), "xl {args:?}: {err}");
    }
    // A guest doing no I/O on its disk: the trace ends at its timeout,
    // and says there was nothing.
    let quiet = d.dir.join("quiet.img");
    std::fs::write(&quiet, vec![0u8; 1 << 20]).unwrap();
    let cfg = d.config(
        "quiet",
        &format!(
            "extra = \"workload=idle\"\ndisk = ['format=raw, vdev=xvda, access=rw, target={}']",
            quiet.display()
        ),
    );
    d.ok(&["create", cfg.to_str().unwrap()]);
    let err = d.fails(&["trace", "quiet", "--timeout", "1"]);
    assert!(err.contains("no complete request"), "{err}");
    assert!(d.ok(&["list"]).contains("reader"), "the daemon serves on");
}
