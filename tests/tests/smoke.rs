use std::time::Duration;
use tests::*;

#[test]
fn boots() {
    let hv = hyp::Hypervisor::new().unwrap();
    let events = hv.subscribe();
    hv.create_dom0(service_vm()).unwrap();
    let line = wait_console(&events, 0, "up", Duration::from_secs(10));
    println!("{line:?}");
    println!(
        "{:?} {:?}",
        hv.domain(0).map(|d| d.state()),
        hv.domain(0).map(|d| d.message())
    );
    while let Ok(e) = events.try_recv() {
        println!("{e:?}");
    }
}
