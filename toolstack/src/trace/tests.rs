//! `xl trace`'s analysis on synthetic dumps (one tick is one µs: the TSC
//! runs at 1000 kHz).

use protocol::control::{RingDump, TraceDump, TRACE_MAX_REQUESTS};
use protocol::trace::{Party, Record, Step, BATCH};

use super::journey::journeys;
use super::*;

/// The traced device's window page.
const DEVICE: u32 = 0x4000;
/// The traced guest.
const DOMID: u16 = 2;

/// A record of the traced device.
fn rec(tsc: u64, party: Party, step: Step, request: u32, data: u32) -> Record {
    Record {
        tsc,
        request,
        domain: DOMID,
        party: party as u8,
        step: step as u8,
        data: [DEVICE, data],
        session: 1,
        _pad: 0,
    }
}

/// A dump of `records`, one ring per party, in `placement`.
fn dump(placement: &str, records: Vec<Record>) -> TraceDump {
    let mut rings: Vec<RingDump> = Vec::new();
    for record in records {
        let party = Party::from_raw(record.party).expect("test records name a party");
        match rings.iter_mut().find(|r| r.party == party) {
            Some(ring) => ring.records.push(record),
            None => rings.push(RingDump {
                party,
                records: vec![record],
                dropped: 0,
                invalid: 0,
            }),
        }
    }
    TraceDump {
        domid: DOMID,
        name: "disk-guest".into(),
        vdev: "xvda".into(),
        kind: "vbd".into(),
        placement: placement.into(),
        device: DEVICE,
        tsc_khz: 1000,
        requested: 1000,
        timed_out: false,
        stopped: false,
        rings,
    }
}

/// The whole service-VM path of request `id`, built at `t`: published
/// alone, kicked, taken after the kick, its own doorbell and enter,
/// completed with an interrupt.
fn full_path(id: u32, t: u64) -> Vec<Record> {
    use Party::*;
    vec![
        rec(t, Guest, Step::Built, id, 0),
        rec(t + 100, Guest, Step::Published, id, 1),
        rec(t + 150, Guest, Step::Kicked, id, 1),
        rec(t + 1000, Dom0, Step::Taken, id, 0),
        rec(t + 1100, Dom0, Step::Parsed, id, 0),
        rec(t + 1200, Dom0, Step::Queued, id, 4096),
        rec(t + 1300, Dom0, Step::Doorbell, BATCH, 1),
        rec(t + 2000, Core, Step::DoorbellWoken, BATCH, 0),
        rec(t + 2100, Core, Step::EnterStart, BATCH, 0),
        rec(t + 3100, Core, Step::EnterEnd, BATCH, 1),
        rec(t + 3200, Dom0, Step::Completed, id, 4096),
        rec(t + 3300, Dom0, Step::Used, id, 0),
        rec(t + 3400, Dom0, Step::Interrupt, BATCH, 1),
        rec(t + 5000, Guest, Step::Seen, id, 1),
    ]
}

/// The steps of `journey`, in its order.
fn steps(analysis: &Analysis) -> Vec<Step> {
    analysis.median_journey.iter().map(|s| s.step).collect()
}

#[test]
fn a_service_vm_request_is_followed_through_every_party() {
    let a = analyse(&dump("service-vm", full_path(7, 1000))).unwrap();
    assert_eq!((a.requests, a.incomplete, a.median_request), (1, 0, 7));
    assert_eq!(steps(&a), protocol::trace::STEPS.to_vec());
    let what: Vec<&str> = a.median_journey.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(what[1], "published (avail index): 1 request made visible");
    assert_eq!(what[2], "kick decision: rang the doorbell");
    assert_eq!(what[3], "taken from the ring: after a notification");
    assert_eq!(what[4], "descriptors read: a read");
    assert_eq!(what[5], "SQE written: 4096 bytes");
    assert_eq!(what[10], "CQE seen: 4096 bytes");
    assert_eq!(what[12], "interrupt decision: sent");
    assert_eq!(what[13], "completion seen: after an interrupt");
    let woken = &a.median_journey[7];
    assert_eq!((woken.party, woken.us_since_prev), (Party::Core, 700.0));
    assert_eq!(a.median_journey[13].us_since_submit, 5000.0);
    assert_eq!(a.median_journey[0].us_since_prev, 0.0);
    assert_eq!(
        a.host_kernel,
        Some(KernelSpan {
            start_us: 2100.0,
            end_us: 3100.0
        })
    );
    assert_eq!(a.latency.median_us, 5000.0);
    assert_eq!(a.step_medians()[6], (Step::Doorbell, 1300.0));
}

#[test]
fn wrapped_and_reused_indices_are_told_apart_by_time() {
    use Party::*;
    let records = vec![
        // 65535 and 0 published together (the index wrapped), polled.
        rec(100, Guest, Step::Built, 65535, 0),
        rec(110, Guest, Step::Built, 0, 0),
        rec(120, Guest, Step::Published, 0, 2),
        rec(125, Guest, Step::Kicked, 0, 0),
        rec(200, Dom0, Step::Taken, 65535, 1),
        rec(210, Dom0, Step::Taken, 0, 1),
        rec(400, Guest, Step::Seen, 65535, 0),
        rec(420, Guest, Step::Seen, 0, 0),
        // Index 0 again, 65536 requests later: its own journey.
        rec(10_000, Guest, Step::Built, 0, 0),
        rec(10_010, Guest, Step::Published, 0, 1),
        rec(10_300, Dom0, Step::Taken, 0, 1),
        rec(10_700, Guest, Step::Seen, 0, 0),
    ];
    let found = journeys(&dump("service-vm", records));
    assert_eq!((found.complete.len(), found.incomplete), (3, 0));
    let [a, b, c] = &found.complete[..] else {
        panic!("three journeys")
    };
    assert_eq!((a.request, b.request, c.request), (65535, 0, 0));
    for j in [a, b] {
        assert_eq!(j.get(Step::Published).map(|p| p.tsc), Some(120));
        assert_eq!(j.get(Step::Kicked).map(|p| p.data), Some(0));
    }
    assert_eq!(b.get(Step::Taken).map(|p| p.tsc), Some(210));
    assert_eq!(b.latency_ticks(), 310);
    assert_eq!(c.get(Step::Taken).map(|p| p.tsc), Some(10_300));
    assert_eq!(c.latency_ticks(), 700);
    assert!(c.get(Step::Kicked).is_none(), "no kick after its publish");
}

#[test]
fn one_doorbell_and_enter_join_both_requests_of_a_batch() {
    use Party::*;
    let records = vec![
        rec(100, Guest, Step::Built, 1, 0),
        rec(110, Guest, Step::Built, 2, 0),
        rec(200, Dom0, Step::Queued, 1, 0),
        rec(210, Dom0, Step::Queued, 2, 0),
        rec(300, Dom0, Step::Doorbell, BATCH, 2),
        rec(400, Core, Step::DoorbellWoken, BATCH, 0),
        rec(410, Core, Step::EnterStart, BATCH, 0),
        rec(500, Core, Step::EnterEnd, BATCH, 2),
        rec(510, Dom0, Step::Completed, 1, 4096),
        rec(520, Dom0, Step::Completed, 2, 4096),
        rec(530, Dom0, Step::Used, 1, 0),
        rec(540, Dom0, Step::Used, 2, 0),
        rec(550, Dom0, Step::Interrupt, BATCH, 0),
        // A later batch: not theirs.
        rec(600, Dom0, Step::Doorbell, BATCH, 1),
        rec(650, Dom0, Step::Interrupt, BATCH, 1),
        rec(700, Guest, Step::Seen, 1, 0),
        rec(710, Guest, Step::Seen, 2, 0),
    ];
    let d = dump("service-vm", records);
    let found = journeys(&d);
    for j in &found.complete {
        assert_eq!(
            j.get(Step::Doorbell).map(|p| (p.tsc, p.data)),
            Some((300, 2))
        );
        assert_eq!(j.get(Step::EnterEnd).map(|p| p.tsc), Some(500));
        assert_eq!(
            j.get(Step::Interrupt).map(|p| (p.tsc, p.data)),
            Some((550, 0))
        );
    }
    let a = analyse(&d).unwrap();
    let doorbell = a.steps.iter().find(|s| s.step == Step::Doorbell).unwrap();
    assert_eq!(doorbell.count, 2);
    // 200 and 190 µs after their Built, 100 and 90 after their Queued;
    // the median of two is the upper.
    assert_eq!((doorbell.median_us, doorbell.p99_us), (200.0, 200.0));
    assert_eq!(
        (doorbell.median_gap_us, doorbell.p99_gap_us),
        (100.0, 100.0)
    );
    let interrupt = a.steps.iter().find(|s| s.step == Step::Interrupt).unwrap();
    assert_eq!((interrupt.count, interrupt.median_gap_us), (2, 20.0));
}

#[test]
fn missing_steps_are_absent_and_the_host_model_enters_after_queueing() {
    use Party::*;
    let records = vec![
        // Completed inline: no doorbell, the worker's enter after Queued.
        rec(100, Guest, Step::Built, 3, 0),
        rec(200, HostModel, Step::Taken, 3, 1),
        rec(210, HostModel, Step::Queued, 3, 0),
        rec(220, HostModel, Step::EnterStart, BATCH, 0),
        rec(230, HostModel, Step::EnterEnd, BATCH, 1),
        rec(240, HostModel, Step::Completed, 3, 512),
        rec(300, Guest, Step::Seen, 3, 0),
        // Built, never seen.
        rec(400, Guest, Step::Built, 4, 0),
    ];
    let a = analyse(&dump("host", records.clone())).unwrap();
    assert_eq!((a.requests, a.incomplete), (1, 1));
    use Step::*;
    assert_eq!(
        steps(&a),
        [Built, Taken, Queued, EnterStart, EnterEnd, Completed, Seen]
    );
    assert_eq!(
        a.median_journey[1].what,
        "taken from the ring: while polling"
    );
    assert_eq!(a.median_journey[6].what, "completion seen: by spinning");
    assert_eq!(a.median_journey[3].party, Party::HostModel);
    assert!(a.steps.iter().all(|s| s.count == 1));
    // In the service VM the core's steps hang off a doorbell: none here.
    let b = analyse(&dump("service-vm", records)).unwrap();
    assert_eq!(steps(&b), [Built, Taken, Queued, Completed, Seen]);
    assert_eq!(b.host_kernel, None);
}

#[test]
fn other_devices_and_domains_are_left_out() {
    let mut records = full_path(9, 1000);
    let mut other_device = rec(1500, Party::Dom0, Step::Taken, 9, 1);
    other_device.data[0] = DEVICE + 1;
    let mut other_domain = rec(1600, Party::Dom0, Step::Taken, 9, 1);
    other_domain.domain = DOMID + 1;
    let mut foreign_built = rec(1700, Party::Guest, Step::Built, 9, 0);
    foreign_built.data[0] = DEVICE + 1;
    records.extend([other_device, other_domain, foreign_built]);
    let a = analyse(&dump("service-vm", records)).unwrap();
    assert_eq!((a.requests, a.incomplete), (1, 0));
    let taken = a
        .median_journey
        .iter()
        .find(|s| s.step == Step::Taken)
        .unwrap();
    assert_eq!(taken.us_since_submit, 1000.0);
}

#[test]
fn the_median_and_p99_are_over_complete_journeys() {
    // Latencies 1..=100 µs, built in a shuffled order.
    let records = (1..=100u64)
        .flat_map(|i| {
            let (id, t) = (i as u32, ((i * 37) % 101) * 1000);
            [
                rec(t, Party::Guest, Step::Built, id, 0),
                rec(t + i, Party::Guest, Step::Seen, id, 0),
            ]
        })
        .collect();
    let a = analyse(&dump("service-vm", records)).unwrap();
    assert_eq!(a.requests, 100);
    assert_eq!((a.latency.median_us, a.latency.p99_us), (51.0, 99.0));
    assert_eq!(a.median_request, 51);
    let seen = a.steps.iter().find(|s| s.step == Step::Seen).unwrap();
    assert_eq!((seen.count, seen.median_us, seen.p99_us), (100, 51.0, 99.0));
}

#[test]
fn losses_are_summed_per_party_and_bad_dumps_are_named() {
    let mut d = dump("service-vm", full_path(1, 0));
    d.rings[0].dropped = 3;
    d.rings.push(RingDump {
        party: Party::Guest,
        records: Vec::new(),
        dropped: 1,
        invalid: 2,
    });
    let a = analyse(&d).unwrap();
    assert_eq!(
        a.dropped,
        [Losses {
            party: Party::Guest,
            dropped: 4,
            invalid: 2
        }]
    );
    assert!(a
        .to_string()
        .contains("guest: 4 records dropped (ring full), 2 invalid"));
    let mut empty = dump("service-vm", vec![rec(5, Party::Guest, Step::Built, 1, 0)]);
    empty.timed_out = true;
    let e = analyse(&empty).unwrap_err();
    assert!(matches!(
        e,
        TraceError::NoCompleteRequest {
            records: 1,
            timed_out: true
        }
    ));
    assert!(e.to_string().contains("no complete request"), "{e}");
    // A guest's forged counts saturate instead of overflowing (found by
    // the trace_ring fuzz target).
    d.rings[0].dropped = u32::MAX;
    d.rings.last_mut().expect("pushed above").invalid = u32::MAX;
    let forged = analyse(&d).unwrap();
    assert_eq!(
        (forged.dropped[0].dropped, forged.dropped[0].invalid),
        (u32::MAX, u32::MAX)
    );
    d.tsc_khz = 0;
    assert!(matches!(analyse(&d), Err(TraceError::NoTscFrequency)));
}

#[test]
fn requests_and_timeouts_are_checked() {
    let r = request("guest".into(), Some("xvdb".into()), 1000, 10).unwrap();
    assert_eq!((r.requests, r.timeout_ms), (1000, 10_000));
    assert_eq!(reply_timeout(&r).as_secs(), 25);
    for n in [0, TRACE_MAX_REQUESTS + 1] {
        let e = request("guest".into(), None, n, 10).unwrap_err();
        assert!(matches!(e, TraceError::Requests(m) if m == n));
        assert!(e.to_string().contains("1 to 2000"), "{e}");
    }
    assert!(request("guest".into(), None, TRACE_MAX_REQUESTS, 10).is_ok());
    assert!(matches!(
        request("guest".into(), None, 1, 0),
        Err(TraceError::Timeout(0))
    ));
}

#[test]
fn text_and_json_say_the_same() {
    let a = analyse(&dump("service-vm", full_path(7, 1000))).unwrap();
    let text = a.to_string();
    assert!(text.starts_with(
        "xl trace: domain disk-guest (id 2), device xvda, placement service-vm: 1 requests traced"
    ));
    assert!(text.contains("kick decision: rang the doorbell"));
    assert!(text.contains("io_uring_enter ran 1000.0 µs"));
    assert!(text.contains("latency: median 5000.0 µs, p99 5000.0 µs"));
    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["domain"], 2);
    assert_eq!(json["vdev"], "xvda");
    assert_eq!(json["requests"], 1);
    assert_eq!(json["median_journey"][2]["step"], "Kicked");
    assert_eq!(json["median_journey"][2]["party"], "Guest");
    assert_eq!(json["median_journey"][13]["us_since_submit"], 5000.0);
    assert_eq!(json["steps"][13]["median_gap_us"], 1600.0);
    assert_eq!(json["latency"]["p99_us"], 5000.0);
}

#[test]
fn the_picture_has_a_lane_per_party_and_escapes_names() {
    let mut d = dump("service-vm", full_path(7, 1000));
    d.name = "<evil> & 'co'\u{1b}[2J".into();
    let a = analyse(&d).unwrap();
    let picture = svg(&a);
    assert!(picture.starts_with("<svg") && picture.trim_end().ends_with("</svg>"));
    assert!(picture.contains("&lt;evil&gt; &amp; &apos;co&apos;\\x1b[2J"));
    assert!(!picture.contains("<evil>") && !picture.contains('\u{1b}'));
    for lane in ["guest", "Domain-0", "core", "host kernel"] {
        assert!(picture.contains(&format!(">{lane}</text>")), "{lane}");
    }
    assert_eq!(picture.matches("<circle").count(), 14);
    // guest -> Dom0, Dom0 -> core, core -> Dom0, Dom0 -> guest.
    assert_eq!(picture.matches("marker-end").count(), 4);
    assert!(picture.contains("io_uring_enter: 1000.0 µs"));
    let host = analyse(&dump(
        "host",
        vec![
            rec(0, Party::Guest, Step::Built, 1, 0),
            rec(5, Party::HostModel, Step::Taken, 1, 1),
            rec(9, Party::Guest, Step::Seen, 1, 0),
        ],
    ))
    .unwrap();
    let picture = svg(&host);
    assert!(picture.contains(">host model</text>"));
    assert!(!picture.contains(">core</text>") && !picture.contains(">host kernel</text>"));
}

/// The step labels of `picture`: each one's x, y and text.
fn step_labels(picture: &str) -> Vec<(f64, f64, &str)> {
    let attr = |text: &str, name: &str| -> f64 {
        let start = text.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        text[start..start + text[start..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    picture
        .split(r#"<text class="step" "#)
        .skip(1)
        .map(|label| {
            let open = label.find('>').unwrap() + 1;
            let close = label.find("</text>").unwrap();
            (attr(label, "x"), attr(label, "y"), &label[open..close])
        })
        .collect()
}

#[test]
fn steps_a_microsecond_apart_are_labelled_as_a_list() {
    use Party::*;
    let records = vec![
        rec(0, Guest, Step::Built, 7, 0),
        rec(1, Guest, Step::Published, 7, 1),
        rec(1, Guest, Step::Kicked, 7, 1),
        rec(2, Dom0, Step::Taken, 7, 0),
        rec(3, Dom0, Step::Parsed, 7, 0),
        rec(3, Dom0, Step::Queued, 7, 4096),
        rec(4, Dom0, Step::Doorbell, BATCH, 1),
        rec(72, Core, Step::DoorbellWoken, BATCH, 0),
        rec(73, Core, Step::EnterStart, BATCH, 0),
        rec(94, Core, Step::EnterEnd, BATCH, 1),
        rec(95, Dom0, Step::Completed, 7, 4096),
        rec(95, Dom0, Step::Used, 7, 0),
        rec(96, Dom0, Step::Interrupt, BATCH, 1),
        rec(182, Guest, Step::Seen, 7, 1),
    ];
    let a = analyse(&dump("service-vm", records)).unwrap();
    assert_eq!((a.median_request, a.median_journey.len()), (7, 14));
    let picture = svg(&a);
    let labels = step_labels(&picture);
    // Every step is labelled exactly once.
    assert_eq!(labels.len(), 14);
    for step in &a.median_journey {
        let name = step.step.describe();
        let is = |text: &str| text == name || text.starts_with(&format!("{name} (+"));
        assert_eq!(labels.iter().filter(|l| is(l.2)).count(), 1, "{name}");
    }
    // The guest's first three are one list, a line each, in order.
    let list = &labels[..3];
    assert_eq!(list[1].2, "published (avail index) (+1.0 µs)");
    assert_eq!(list[2].2, "kick decision (+0.0 µs)");
    assert!(list.iter().all(|l| l.0 == list[0].0));
    assert!(list[0].1 < list[1].1 && list[1].1 < list[2].1);
    // No two labels start at the same place; the core's last is lifted
    // above the list before it, which reaches past its dot.
    for (i, a) in labels.iter().enumerate() {
        assert!(labels[i + 1..].iter().all(|b| (a.0, a.1) != (b.0, b.1)));
    }
    let core = &labels[7..10];
    assert!(core[2].1 < core[0].1 && core[0].1 < core[1].1);
    // The last label has no room right of its dot and ends left of it.
    assert!(picture.contains(r#"text-anchor="end" "#));
}
