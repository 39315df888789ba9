use std::time::Duration;
use tests::*;

#[test]
fn boots() {
    let (hv, events) = with_dom0();
    wait_console(&events, 0, "up", Duration::from_secs(10)).expect("dom0 up");
    let t = std::time::Instant::now();
    let id = hv
        .create_domain(guest("g1", "workload=pingpong count=1000"))
        .unwrap();
    let st = hv.wait_final(id, Duration::from_secs(30));
    println!(
        "final {st:?} msg {:?} in {:?}",
        hv.domain(id).and_then(|d| d.message()),
        t.elapsed()
    );
    while let Ok(e) = events.try_recv() {
        println!("{e:?}");
    }
    let d = hv.domain(id).unwrap();
    println!(
        "boot {:?} cpu {:?} counters {:?}",
        d.time_to_first_output(),
        d.cpu_time(),
        d.counters
    );
}
