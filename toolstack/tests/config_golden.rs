//! Golden tests of the xl.cfg parser: the examples of Xen's xl.cfg(5),
//! xl-disk-configuration(5) and xl-network-configuration(5), the syntax
//! (quoting, lists, comments, overrides) and every error the parser gives.

use std::path::{Path, PathBuf};
use toolstack::config::{
    parse, parse_file, Access, Action, ConfigError, DiskFormat, DiskSpec, DomainSpec, GuestType,
    Parsed, Placement, VifSpec,
};

/// The keys every test domain needs.
const BASE: &str = "name = \"g\"\nkernel = \"/k\"\n";

fn ok(source: &str, text: &str, overrides: &[&str]) -> Parsed {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match parse(source, text, &overrides) {
        Ok(p) => p,
        Err(e) => panic!("{source}: unexpected error: {e}"),
    }
}

fn err(source: &str, text: &str, overrides: &[&str]) -> ConfigError {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match parse(source, text, &overrides) {
        Ok(p) => panic!("{source}: expected an error, got {p:?}"),
        Err(e) => e,
    }
}

/// Parses BASE plus `extra` (so `extra` starts on line 3 of `g.cfg`).
fn with(extra: &str) -> Parsed {
    ok("g.cfg", &format!("{BASE}{extra}"), &[])
}

/// The error message for BASE plus `extra`.
fn error(extra: &str) -> String {
    err("g.cfg", &format!("{BASE}{extra}"), &[]).to_string()
}

/// Asserts an error message names `location` and `key` and says `what`.
fn assert_error(message: &str, location: &str, key: &str, what: &str) {
    assert!(
        message.starts_with(&format!("{location}: {key}: ")),
        "{message:?} should start with {location}: {key}:"
    );
    assert!(
        message.contains(what),
        "{message:?} should contain {what:?}"
    );
}

fn only_disk(entry: &str) -> DiskSpec {
    let mut disks = with(&format!("disk = [ '{entry}' ]\n")).spec.disks;
    assert_eq!(disks.len(), 1, "{entry}");
    disks.remove(0)
}

fn raw(target: &str, vdev: &str, access: Access, devtype: Option<&str>) -> DiskSpec {
    DiskSpec {
        target: PathBuf::from(target),
        format: DiskFormat::Raw,
        vdev: vdev.to_string(),
        access,
        devtype: devtype.map(str::to_string),
        backend: None,
        backendtype: None,
        specification: None,
        direct_io_safe: false,
    }
}

// ---- whole files ----

#[test]
fn full_fixture_matches_its_golden_json() {
    let p = ok("fixtures/full.cfg", include_str!("fixtures/full.cfg"), &[]);
    let golden: serde_json::Value = match serde_json::from_str(include_str!("fixtures/full.json")) {
        Ok(v) => v,
        Err(e) => panic!("full.json: {e}"),
    };
    assert_eq!(serde_json::to_value(&p.spec).ok(), Some(golden));
    assert_eq!(
        p.warnings,
        vec![
            "fixtures/full.cfg: ignoring keys this hypervisor does not use: acpi, uuid, vnc"
                .to_string(),
            "fixtures/full.cfg:12: ramdisk: /var/lib/kernels/initrd.img is not loaded: this hypervisor's kernels boot without an initial ramdisk".to_string(),
        ]
    );
}

#[test]
fn pv_linux_example() {
    let p = ok("pvlinux.cfg", include_str!("fixtures/pvlinux.cfg"), &[]);
    assert_eq!(
        p.spec,
        DomainSpec {
            name: "example.pvlinux".into(),
            guest_type: GuestType::Pv,
            memory_mib: 128,
            maxmem_mib: 128,
            vcpus: 2,
            maxvcpus: 2,
            kernel: PathBuf::from("/boot/vmlinuz"),
            ramdisk: None,
            cmdline: "root=/dev/xvda1 console=hvc0".into(),
            on_poweroff: Action::Destroy,
            on_reboot: Action::Restart,
            on_crash: Action::Destroy,
            disks: vec![raw("/dev/vg/guest-volume", "xvda", Access::ReadWrite, None)],
            vifs: vec![VifSpec::default()],
            placement: Placement::ServiceVm,
        }
    );
    assert_eq!(p.warnings, Vec::<String>::new());
}

#[test]
fn json_spells_enums_as_xen_does() {
    let p =
        with("on_poweroff='preserve'\non_reboot='coredump-destroy'\non_crash='rename-restart'\n");
    let json = serde_json::to_value(&p.spec).unwrap_or_default();
    assert_eq!(json["guest_type"], "pv");
    assert_eq!(json["on_poweroff"], "preserve");
    assert_eq!(json["on_reboot"], "coredump-destroy");
    assert_eq!(json["on_crash"], "rename-restart");
    assert_eq!(json["placement"], "service-vm");
}

#[test]
fn parse_file_names_the_path() {
    let dir = std::env::temp_dir().join(format!("config-golden-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("guest.cfg");
    assert!(std::fs::write(&path, "name='f'\nkernel='/k'\nvnc=0\nmemory='x'\n").is_ok());
    let e = match parse_file(&path, &[]) {
        Ok(p) => panic!("expected an error, got {p:?}"),
        Err(e) => e.to_string(),
    };
    assert_error(
        &e,
        &format!("{}:4", path.display()),
        "memory",
        "expected a number of MiB",
    );
    let p = parse_file(&path, &["memory=64".to_string()]);
    assert_eq!(p.as_ref().map(|p| p.spec.memory_mib).ok(), Some(64));
    assert_eq!(
        p.map(|p| p.warnings).ok(),
        Some(vec![format!(
            "{}: ignoring keys this hypervisor does not use: vnc",
            path.display()
        )])
    );
    let missing = dir.join("missing.cfg");
    let e = parse_file(&missing, &[]).map(|_| ()).unwrap_err_or_panic();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(
        e.to_string().starts_with(&format!(
            "{}: cannot read the configuration file: ",
            missing.display()
        )),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `unwrap_err` that needs no `Debug` on the success value.
trait UnwrapErr<E> {
    fn unwrap_err_or_panic(self) -> E;
}

impl<E> UnwrapErr<E> for Result<(), E> {
    fn unwrap_err_or_panic(self) -> E {
        match self {
            Ok(()) => panic!("expected an error"),
            Err(e) => e,
        }
    }
}

#[test]
fn every_example_file_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the examples in {}: {e}", dir.display()));
    let mut parsed = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cfg") {
            if let Err(e) = parse_file(&path, &[]) {
                panic!("{}: {e}", path.display());
            }
            parsed += 1;
        }
    }
    assert!(
        parsed >= 7,
        "only {parsed} example files in {}",
        dir.display()
    );
}

// ---- syntax ----

#[test]
fn single_and_double_quotes_and_escapes() {
    let p = with("cmdline = 'console=hvc0 init=\"/bin/sh\"'\nextra = \"it's\"\n");
    assert_eq!(p.spec.cmdline, "console=hvc0 init=\"/bin/sh\"");
    let p = ok("q.cfg", "name = \"a\\\"b\"\nkernel = '\\x2fk\\'s'\n", &[]);
    assert_eq!(
        (p.spec.name.as_str(), p.spec.kernel.to_str()),
        ("a\"b", Some("/k's"))
    );
}

#[test]
fn lists_span_lines_with_trailing_commas_and_comments() {
    let p = with(
        "disk = [ # the disks\n\n  '/a.img,raw,xvda', # one\n  # nothing here\n  '/b.img,raw,xvdb',\n\n]\nvif = [\n]\n",
    );
    let vdevs: Vec<&str> = p.spec.disks.iter().map(|d| d.vdev.as_str()).collect();
    assert_eq!(vdevs, ["xvda", "xvdb"]);
    assert_eq!(p.spec.vifs, vec![]);
}

#[test]
fn semicolons_end_statements_as_in_the_xen_manual() {
    let p = ok("h0.cfg", "name=\"h0\"; type=\"pvh\"; kernel='/k';", &[]);
    assert_eq!(
        (p.spec.name.as_str(), p.spec.guest_type),
        ("h0", GuestType::Pvh)
    );
}

#[test]
fn numbers_in_decimal_hex_and_octal() {
    let p = with("memory = 0x200\nmaxmem = 02000\nvcpus = 0x2\n");
    assert_eq!(
        (p.spec.memory_mib, p.spec.maxmem_mib, p.spec.vcpus),
        (512, 1024, 2)
    );
}

#[test]
fn the_last_setting_of_a_key_wins() {
    let p = with("memory = 256\nmemory = 512 # this one\n");
    assert_eq!(p.spec.memory_mib, 512);
}

#[test]
fn overrides_replace_file_values_and_add_keys() {
    let file =
        format!("{BASE}memory = 256\nvcpus = 1\ndisk = [ '/a,raw,xvda' ]\nextra = 'quiet'\n");
    let p = ok(
        "o.cfg",
        &file,
        &[
            "memory=512",
            "memory = 1024",
            "disk=['/b,raw,xvdb','/c,raw,xvdc']",
            "on_crash=\"preserve\"; vcpus=2",
        ],
    );
    assert_eq!(p.spec.memory_mib, 1024);
    assert_eq!(p.spec.vcpus, 2);
    assert_eq!(p.spec.on_crash, Action::Preserve);
    assert_eq!(p.spec.disks.len(), 2);
    assert_eq!(p.spec.cmdline, "quiet");
    let p = ok("o.cfg", &file, &["cmdline='console=hvc0'", "uuid='x'"]);
    assert_eq!(p.spec.cmdline, "console=hvc0");
    assert_eq!(
        p.warnings,
        vec![
            "o.cfg: ignoring keys this hypervisor does not use: uuid".to_string(),
            "<command line>: cmdline is set, so extra is ignored".to_string(),
        ]
    );
}

#[test]
fn override_errors_are_reported_as_the_command_line() {
    let e = err("o.cfg", BASE, &["memory=lots"]).to_string();
    assert_eq!(
        e,
        "<command line>: syntax error: expected a value for `memory`, found `lots` (strings must be quoted: \"lots\") (in `memory=lots`)"
    );
    let e = err("o.cfg", BASE, &["memory='lots'"]).to_string();
    assert_eq!(
        e,
        "<command line>: memory: expected a number of MiB, found string \"lots\""
    );
    let e = err("o.cfg", BASE, &["vcpus=33"]).to_string();
    assert_error(&e, "<command line>", "vcpus", "more than the 32 vCPUs");
}

#[test]
fn ignored_keys_draw_one_sorted_warning() {
    let p = ok(
        "examples/x.cfg",
        &format!("{BASE}vnc = 1\nuuid = 'u'\nacpi = 1\nvnc = 0\n"),
        &[],
    );
    // vnc = 1 would ask for a framebuffer; the last setting, 0, does not.
    assert_eq!(
        p.warnings,
        vec![
            "examples/x.cfg:6: vnc is set again (first at line 3): the last setting wins, as in Xen"
                .to_string(),
            "examples/x.cfg: ignoring keys this hypervisor does not use: acpi, uuid, vnc"
                .to_string()
        ]
    );
    let carried = "pae=1\napic=1\nlocaltime=0\nbuilder='generic'\nsdl=0\nserial='pty'\nboot='c'\ndevice_model_version='qemu-xen'\non_watchdog='destroy'\nmade_up_key=[1,[2]]\npci=[]\n";
    assert_eq!(
        with(carried).warnings,
        vec!["g.cfg: ignoring keys this hypervisor does not use: apic, boot, device_model_version, localtime, made_up_key, on_watchdog, pae, pci, sdl, serial".to_string()]
    );
}

#[test]
fn cmdline_root_and_extra_as_in_xen() {
    assert_eq!(
        with("root='/dev/xvda1'\nextra='ro quiet'\n").spec.cmdline,
        "root=/dev/xvda1 ro quiet"
    );
    let p = with("root='/dev/xvda1'\ncmdline='console=hvc0'\nextra='x'\n");
    assert_eq!(p.spec.cmdline, "console=hvc0");
    assert_eq!(
        p.warnings,
        vec!["g.cfg:4: cmdline is set, so root and extra are ignored".to_string()]
    );
}

#[test]
fn ramdisk_is_accepted_with_a_warning() {
    let p = with("ramdisk = '/boot/initrd.img'\n");
    assert_eq!(p.spec.ramdisk, Some(PathBuf::from("/boot/initrd.img")));
    assert_eq!(
        p.warnings,
        vec!["g.cfg:3: ramdisk: /boot/initrd.img is not loaded: this hypervisor's kernels boot without an initial ramdisk".to_string()]
    );
}

#[test]
fn placement_values() {
    assert_eq!(with("").spec.placement, Placement::ServiceVm);
    assert_eq!(
        with("backend_placement = 'service-vm'").spec.placement,
        Placement::ServiceVm
    );
    assert_eq!(
        with("backend_placement = \"host\"").spec.placement,
        Placement::Host
    );
}

// ---- disks: xl-disk-configuration(5) ----

#[test]
fn disk_examples_from_the_xen_documentation() {
    let volume = raw("/dev/vg/guest-volume", "hda", Access::ReadWrite, None);
    for entry in [
        "/dev/vg/guest-volume,,hda",
        "/dev/vg/guest-volume,raw,hda,rw",
        "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
        "raw:/dev/vg/guest-volume,hda,w",
    ] {
        assert_eq!(only_disk(entry), volume, "{entry}");
    }
    let iso = raw("/root/image.iso", "hdc", Access::ReadOnly, Some("cdrom"));
    for entry in [
        "/root/image.iso,,hdc,cdrom",
        "/root/image.iso,,hdc,,cdrom",
        "/root/image.iso,raw,hdc,devtype=cdrom",
        "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
        "raw:/root/image.iso,hdc:cdrom,ro",
    ] {
        assert_eq!(only_disk(entry), iso, "{entry}");
    }
    let p = with("disk = [ '/dev/vg/guest-volume,,hda', '/root/image.iso,,hdc,cdrom' ]\n");
    assert_eq!(p.spec.disks, vec![volume, iso]);
}

#[test]
fn disk_target_last_takes_commas_and_forms_mix() {
    assert_eq!(
        only_disk("vdev=xvda, access=r, target=/srv/images/a,b,c.img"),
        raw("/srv/images/a,b,c.img", "xvda", Access::ReadOnly, None)
    );
    assert_eq!(
        only_disk("format=raw,/img/x.img,xvdb"),
        raw("/img/x.img", "xvdb", Access::ReadWrite, None)
    );
    assert_eq!(
        only_disk("  /img/x.img ,  raw ,  xvdc  ,  ro  "),
        raw("/img/x.img", "xvdc", Access::ReadOnly, None)
    );
    assert_eq!(
        only_disk("/img/x.img,raw,xvdd,w,backend=dom0,backendtype=phy,specification=xen"),
        DiskSpec {
            backend: Some("dom0".into()),
            backendtype: Some("phy".into()),
            specification: Some("xen".into()),
            ..raw("/img/x.img", "xvdd", Access::ReadWrite, None)
        }
    );
}

#[test]
fn disk_parameters_not_used_here_draw_a_warning() {
    let p = with("disk = [ '/a,raw,xvda,discard', '/b,raw,xvdb' ]\n");
    assert_eq!(
        p.warnings,
        vec!["g.cfg:3: disk: entry 1: ignoring discard (not used by this hypervisor)".to_string()]
    );
}

#[test]
fn disk_errors() {
    assert_eq!(
        error("disk = [\n  '/a.qcow2,qcow2,xvda',\n]\n"),
        "g.cfg:4: disk: entry 1 ('/a.qcow2,qcow2,xvda'): disk format qcow2 is not supported yet (only raw)"
    );
    assert_error(
        &error("disk = [ 'format=vmdk,vdev=xvda,target=/a' ]"),
        "g.cfg:3",
        "disk",
        "unknown disk format `vmdk`",
    );
    assert_error(
        &error("disk = [ '/a,raw' ]"),
        "g.cfg:3",
        "disk",
        "entry 1 ('/a,raw'): no vdev given",
    );
    assert_error(
        &error("disk = [ '/a,raw,floppy0' ]"),
        "g.cfg:3",
        "disk",
        "vdev `floppy0` is not a Xen virtual device name",
    );
    assert_error(
        &error("disk = [ '/a,raw,xvda,rx' ]"),
        "g.cfg:3",
        "disk",
        "unknown access `rx`",
    );
    assert_error(
        &error("disk = [ '/a,raw,xvda',\n '' ]"),
        "g.cfg:4",
        "disk",
        "entry 2 is empty",
    );
    assert_error(
        &error("disk = [ '/a,raw,xvda',\n\n ' ' ]"),
        "g.cfg:5",
        "disk",
        "entry 2 is empty",
    );
    assert_eq!(
        error("disk = [ '/a,raw,xvda',\n '/b,raw,xvda' ]"),
        "g.cfg:4: disk: entry 2 ('/b,raw,xvda'): vdev xvda is already used by entry 1"
    );
    assert_error(
        &error("disk = '/a,raw,xvda'"),
        "g.cfg:3",
        "disk",
        "expected a list of disk specifications",
    );
    assert_error(
        &error("disk = [ ['/a,raw,xvda'] ]"),
        "g.cfg:3",
        "disk",
        "entry 1: expected a disk specification in quotes, found a list",
    );
}

// ---- vifs: xl-network-configuration(5) ----

#[test]
fn vif_examples_from_the_xen_documentation() {
    let p = with("vif = [ 'mac=00:16:3E:74:34:32', 'mac=00:16:3e:5f:48:e4,bridge=xenbr1' ]\n");
    assert_eq!(
        p.spec.vifs,
        vec![
            VifSpec {
                mac: Some("00:16:3e:74:34:32".into()),
                ..VifSpec::default()
            },
            VifSpec {
                mac: Some("00:16:3e:5f:48:e4".into()),
                bridge: "xenbr1".into(),
                ..VifSpec::default()
            },
        ]
    );
    let p = with("vif = [ 'mac=00:16:3E:74:3d:76,model=rtl8139,bridge=xenbr0', '', 'rate=250KB/s', 'rate=1MB/s@20ms' ]\n");
    assert_eq!(p.spec.vifs[0].model.as_deref(), Some("rtl8139"));
    assert_eq!(p.spec.vifs[1], VifSpec::default());
    assert_eq!(p.spec.vifs[3].rate.as_deref(), Some("1MB/s@20ms"));
    let p = with("vif = [ 'type=vif, vifname=g-eth0, script=vif-bridge, backend=dom0, ip=10.0.0.2, mtu=1500' ]\n");
    assert_eq!(
        p.spec.vifs,
        vec![VifSpec {
            vif_type: Some("vif".into()),
            vifname: Some("g-eth0".into()),
            script: Some("vif-bridge".into()),
            backend: Some("dom0".into()),
            ip: Some("10.0.0.2".into()),
            mtu: Some(1500),
            ..VifSpec::default()
        }]
    );
}

#[test]
fn vif_errors() {
    assert_error(
        &error("vif = [ '',\n 'mac=00:16:3e:zz:00:01' ]"),
        "g.cfg:4",
        "vif",
        "entry 2 ('mac=00:16:3e:zz:00:01'): mac `00:16:3e:zz:00:01` is not six hex pairs",
    );
    assert_error(
        &error("vif = [ 'rate=10Mbit' ]"),
        "g.cfg:3",
        "vif",
        "rate `10Mbit`",
    );
    assert_eq!(
        with("vif = [ 'bridge=xenbr0,colour=blue' ]").warnings,
        ["g.cfg:3: vif: entry 1: ignoring unknown key `colour`, as xl does (known: mac, bridge, model, vifname, ip, rate, mtu, script, backend, type)"]
    );
    assert_error(&error("vif = [ 'mtu=9' ]"), "g.cfg:3", "vif", "mtu `9`");
}

// ---- errors about keys ----

#[test]
fn required_keys() {
    let e = err("g.cfg", "kernel = '/k'\n", &[]);
    assert_eq!(e.key(), Some("name"));
    assert_eq!(
        e.to_string(),
        "g.cfg: name: required but not given: every domain needs a name, e.g. name = \"guest1\""
    );
    assert_error(
        &err("g.cfg", "name = 'g'\n", &[]).to_string(),
        "g.cfg",
        "kernel",
        "required but not given",
    );
    assert_error(&error("name = ''"), "g.cfg:3", "name", "must not be empty");
    assert_error(
        &error("kernel = ''"),
        "g.cfg:3",
        "kernel",
        "must not be empty",
    );
}

#[test]
fn guest_types() {
    assert_eq!(with("type = 'pv'").spec.guest_type, GuestType::Pv);
    assert_eq!(with("type = 'pvh'").spec.guest_type, GuestType::Pvh);
    assert_eq!(
        error("type = \"hvm\""),
        "g.cfg:3: type: \"hvm\" asks for an HVM guest, which is not supported: this hypervisor boots a PV-style kernel from a file on the host (type = \"pv\" or \"pvh\", kernel = \"/path/to/kernel\"), with no firmware or device model"
    );
    assert_error(
        &error("type = 'PV'"),
        "g.cfg:3",
        "type",
        "unknown value \"PV\"",
    );
}

#[test]
fn memory_and_vcpu_limits() {
    assert_eq!(
        error("memory = 'lots'"),
        "g.cfg:3: memory: expected a number of MiB, found string \"lots\""
    );
    assert_error(
        &error("memory = 512M"),
        "g.cfg:3",
        "memory",
        "expected a number of MiB, found 512M",
    );
    assert_error(&error("memory = 0"), "g.cfg:3", "memory", "4 to 3584 MiB");
    assert_error(
        &error("memory = 4096"),
        "g.cfg:3",
        "memory",
        "4 to 3584 MiB",
    );
    assert_error(
        &error("memory = [ 512 ]"),
        "g.cfg:3",
        "memory",
        "found a list",
    );
    assert_eq!(
        error("memory = 512\nmaxmem = 256"),
        "g.cfg:4: maxmem: 256 MiB is less than memory (512 MiB)"
    );
    assert_eq!(
        error("vcpus = 33"),
        "g.cfg:3: vcpus: 33 is more than the 32 vCPUs a domain may have here (this hypervisor's cap; KVM allows more)"
    );
    assert_error(
        &error("vcpus = 99999999999999999999999"),
        "g.cfg:3",
        "vcpus",
        "too large",
    );
    assert_error(
        &error("maxvcpus = 64"),
        "g.cfg:3",
        "maxvcpus",
        "more than the 32 vCPUs",
    );
    assert_eq!(
        error("vcpus = 2\nmaxvcpus = 1"),
        "g.cfg:4: maxvcpus: 1 is less than vcpus (2)"
    );
    let p = with("vcpus = 1\nmaxvcpus = 2\nmemory = 64\nmaxmem = 96\n");
    assert_eq!(
        (
            p.spec.vcpus,
            p.spec.maxvcpus,
            p.spec.memory_mib,
            p.spec.maxmem_mib
        ),
        (1, 2, 64, 96)
    );
}

#[test]
fn wrong_kinds_of_values() {
    assert_error(
        &error("kernel = [ '/k' ]"),
        "g.cfg:3",
        "kernel",
        "expected the kernel's path in quotes, found a list",
    );
    assert_error(&error("name = 5"), "g.cfg:3", "name", "found number 5");
    assert_error(
        &error("cmdline = 1"),
        "g.cfg:3",
        "cmdline",
        "found number 1",
    );
}

#[test]
fn actions() {
    let p =
        with("on_poweroff = 'preserve'\non_reboot = 'destroy'\non_crash = 'coredump-destroy'\n");
    assert_eq!(
        (p.spec.on_poweroff, p.spec.on_reboot, p.spec.on_crash),
        (Action::Preserve, Action::Destroy, Action::CoredumpDestroy)
    );
    assert_eq!(
        error("\non_crash = 'explode'"),
        "g.cfg:4: on_crash: unknown action \"explode\" (expected one of destroy, restart, preserve, rename-restart, coredump-destroy, coredump-restart)"
    );
    assert_error(
        &error("on_reboot = 'soft-reset'"),
        "g.cfg:3",
        "on_reboot",
        "soft-reset is an action for HVM guests",
    );
}

#[test]
fn unknown_placement_lists_the_valid_values() {
    assert_eq!(
        error("backend_placement = 'dom0'"),
        "g.cfg:3: backend_placement: unknown value \"dom0\" (expected \"service-vm\" or \"host\")"
    );
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let e = err("s.cfg", "name = 'g'\nkernel '/k'\n", &[]);
    assert!(matches!(e, ConfigError::Syntax { .. }));
    assert_eq!(
        e.to_string(),
        "s.cfg:2: syntax error: expected `=` after `kernel`, found string \"/k\""
    );
    let e = err("s.cfg", "name = 'g\n", &[]).to_string();
    assert!(
        e.starts_with("s.cfg:1: syntax error: unterminated string"),
        "{e}"
    );
    let e = err("s.cfg", "disk = [\n '/a,raw,xvda'\n '/b,raw,xvdb' ]\n", &[]).to_string();
    assert!(
        e.starts_with("s.cfg:3: syntax error: expected `,` or `]`"),
        "{e}"
    );
    let e = err("s.cfg", "\n\nmemory = 5 * 1024\n", &[]).to_string();
    assert!(
        e.starts_with("s.cfg:3: syntax error: unexpected character '*'"),
        "{e}"
    );
    let e = err("s.cfg", "disk = [ '/a,raw,xvda',\n", &[]).to_string();
    assert!(e.contains("never closed"), "{e}");
}
