//! Unit tests of turning settings into a domain.

use super::super::{parse, Parsed};
use super::*;
use crate::config::GuestType;

const BASE: &str = "name = 'g'\nkernel = '/k'\n";

fn ok(extra: &str) -> Parsed {
    match parse("t.cfg", &format!("{BASE}{extra}"), &[]) {
        Ok(p) => p,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn err(extra: &str) -> String {
    match parse("t.cfg", &format!("{BASE}{extra}"), &[]) {
        Ok(p) => panic!("expected an error, got {p:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults() {
    let p = ok("");
    assert_eq!(
        p.spec,
        DomainSpec {
            name: "g".into(),
            guest_type: GuestType::Pv,
            memory_mib: 32,
            maxmem_mib: 32,
            vcpus: 1,
            maxvcpus: 1,
            kernel: PathBuf::from("/k"),
            ramdisk: None,
            cmdline: String::new(),
            on_poweroff: Action::Destroy,
            on_reboot: Action::Restart,
            on_crash: Action::Destroy,
            disks: vec![],
            vifs: vec![],
            placement: Placement::ServiceVm,
        }
    );
    assert!(p.warnings.is_empty());
}

#[test]
fn maxima_follow_their_minima() {
    let p = ok("memory = 512\nvcpus = 2\n");
    assert_eq!((p.spec.maxmem_mib, p.spec.maxvcpus), (512, 2));
}

#[test]
fn numbers_in_hex_and_octal() {
    let p = ok("memory = 0x100\nmaxmem = 01000\n");
    assert_eq!((p.spec.memory_mib, p.spec.maxmem_mib), (256, 512));
}

#[test]
fn every_key_is_used_or_reported() {
    for key in USED_KEYS {
        assert!(
            !ok(&format!("{key}_x = 1\n")).warnings.is_empty(),
            "{key}_x"
        );
    }
}

#[test]
fn cmdline_composition() {
    assert_eq!(
        ok("root = '/dev/xvda1 ro'\nextra = 'console=hvc0'")
            .spec
            .cmdline,
        "root=/dev/xvda1 ro console=hvc0"
    );
    assert_eq!(ok("root = '/dev/xvda1'").spec.cmdline, "root=/dev/xvda1");
    assert_eq!(ok("extra = 'quiet'").spec.cmdline, "quiet");
    let p = ok("cmdline = 'console=hvc0'\nextra = 'quiet'");
    assert_eq!(p.spec.cmdline, "console=hvc0");
    assert_eq!(
        p.warnings,
        vec!["t.cfg:3: cmdline is set, so extra is ignored".to_string()]
    );
}

#[test]
fn range_and_kind_errors() {
    assert_eq!(
        err("memory = 0"),
        "t.cfg:3: memory: 0 MiB is outside what a domain may have here: 4 to 3584 MiB (RAM ends where the device hole starts)"
    );
    assert_eq!(
        err("memory = 99999999999999999999"),
        "t.cfg:3: memory: expected a number of MiB, found 99999999999999999999, which is too large"
    );
    assert_eq!(
        err("maxmem = 17592186044416"),
        "t.cfg:3: maxmem: 17592186044416 MiB is more than a 64-bit machine can address"
    );
    assert_eq!(
        err("memory = '512M'"),
        "t.cfg:3: memory: expected a number of MiB, found string \"512M\""
    );
    assert_eq!(
        err("memory = '-5'"),
        "t.cfg:3: memory: expected a number of MiB, found string \"-5\", which is negative"
    );
    assert_eq!(
        err("vcpus = 300"),
        "t.cfg:3: vcpus: 300 is more than the 32 vCPUs a domain may have here (this hypervisor's cap; KVM allows more)"
    );
    assert_eq!(
        err("vcpus = 2\nmaxvcpus = 1"),
        "t.cfg:4: maxvcpus: 1 is less than vcpus (2)"
    );
    assert_eq!(
        err("name = ''"),
        "t.cfg:3: name: \"\": a domain name must not be empty"
    );
    assert_eq!(
        err("kernel = ''"),
        "t.cfg:3: kernel: the kernel path must not be empty"
    );
    assert_eq!(
        err("type = 'xen'"),
        "t.cfg:3: type: unknown value \"xen\" (expected \"pv\", \"pvh\" or \"hvm\")"
    );
}

#[test]
fn list_entries_must_be_strings() {
    assert_eq!(
        err("disk = [\n'/i,raw,xvda',\n5 ]"),
        "t.cfg:5: disk: entry 2: expected a disk specification in quotes, found number 5"
    );
    assert_eq!(
        err("vif = 'bridge=xenbr0'"),
        "t.cfg:3: vif: expected a list of vif specifications, e.g. [ 'bridge=xenbr0' ], found string \"bridge=xenbr0\""
    );
}

#[test]
fn duplicate_macs_are_refused() {
    assert_eq!(
        err("vif = [ 'mac=00:16:3e:00:00:01', 'mac=00:16:3E:00:00:01' ]"),
        "t.cfg:3: vif: entry 2 ('mac=00:16:3E:00:00:01'): mac 00:16:3e:00:00:01 is already used by entry 1"
    );
}
