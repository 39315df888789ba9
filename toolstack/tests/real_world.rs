//! Golden tests of the xl.cfg parser against files as real users write
//! them (xen-tools, HVM, pygrub and unikernel configurations), and the
//! rules Xen's documentation sets for them: quoted numbers are numbers; a
//! guest this hypervisor cannot run is refused by name before anything
//! else; disks as Xen takes them; devices the guest would miss are errors;
//! vCPUs as Xen allows; xl's defaults, duplicate keys and `+=`.

use std::path::PathBuf;
use toolstack::config::{parse, Access, ConfigError, GuestType, Parsed};

/// Parses a fixture of `fixtures/real/`.
fn fixture(name: &str) -> Result<Parsed, ConfigError> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    parse(name, &text, &[])
}

/// The keys every test domain needs.
const BASE: &str = "name = \"g\"\nkernel = \"/k\"\n";

fn with(extra: &str) -> Parsed {
    parse("g.cfg", &format!("{BASE}{extra}"), &[]).unwrap_or_else(|e| panic!("{extra:?}: {e}"))
}

fn error(extra: &str) -> ConfigError {
    match parse("g.cfg", &format!("{BASE}{extra}"), &[]) {
        Ok(p) => panic!("{extra:?}: expected an error, got {p:?}"),
        Err(e) => e,
    }
}

/// Asserts that `e` is about `key` and says each of `says`.
fn assert_names(e: &ConfigError, key: &str, says: &[&str]) {
    let message = e.to_string();
    assert_eq!(e.key(), Some(key), "{message}");
    for what in says {
        assert!(message.contains(what), "{message:?} should say {what:?}");
    }
}

#[test]
fn a_xen_tools_file_with_every_number_quoted() {
    let p = fixture("xen-tools.cfg").unwrap();
    let spec = &p.spec;
    assert_eq!(
        (spec.vcpus, spec.memory_mib, spec.maxmem_mib),
        (2, 1024, 2048)
    );
    assert_eq!(spec.cmdline, "root=/dev/xvda2 ro");
    let disks: Vec<_> = spec
        .disks
        .iter()
        .map(|d| (d.target.to_str().unwrap(), d.vdev.as_str(), d.access))
        .collect();
    assert_eq!(
        disks,
        [
            ("/dev/vg0/web01-disk", "xvda2", Access::ReadWrite),
            ("/dev/vg0/web01-swap", "xvda1", Access::ReadWrite),
        ]
    );
    assert_eq!(spec.vifs.len(), 1);
    assert_eq!(
        p.warnings,
        ["xen-tools.cfg:10: ramdisk: /boot/initrd.img-6.1.0-18-amd64 is not loaded: this hypervisor's kernels boot without an initial ramdisk"]
    );
}

#[test]
fn quoted_numbers_are_read_as_strtol_reads_them() {
    for (text, mib) in [
        ("'1024'", 1024),
        ("\"0x400\"", 1024),
        ("'02000'", 1024),
        ("' 1024'", 1024),
        ("'+1024'", 1024),
    ] {
        assert_eq!(
            with(&format!("memory = {text}\n")).spec.memory_mib,
            mib,
            "{text}"
        );
    }
    assert_eq!(with("vcpus = \"4\"\nmaxvcpus = '8'\n").spec.maxvcpus, 8);
    for bad in ["'1024 '", "'1G'", "''", "'-1'"] {
        assert_names(
            &error(&format!("memory = {bad}\n")),
            "memory",
            &["a number of MiB"],
        );
    }
}

#[test]
fn an_hvm_guest_is_refused_by_name_before_anything_else() {
    // builder = "hvm" with hvmloader: never a PV guest, and the error is
    // about HVM, not about vnc, usbdevice or the memory the host lacks.
    let e = fixture("hvm-windows.cfg").unwrap_err();
    assert_names(
        &e,
        "builder",
        &[
            "\"hvm\" asks for an HVM guest",
            "not supported",
            "type = \"pv\"",
        ],
    );
    assert!(
        e.to_string().starts_with("hvm-windows.cfg:5: builder: "),
        "{e}"
    );
    let e = fixture("hvm-type.cfg").unwrap_err();
    assert_names(&e, "type", &["HVM guest", "not supported"]);
    // Even with no name and no kernel.
    let e = parse("n.cfg", "memory = 512\nbuilder = 'hvm'\n", &[]).unwrap_err();
    assert_names(&e, "builder", &["HVM guest"]);
    // Xen's prefixes: "hv" is hvm, "p" is pv, "gen" is generic.
    assert_names(&error("type = 'hv'\n"), "type", &["HVM guest"]);
    assert_eq!(with("type = 'p'\n").spec.guest_type, GuestType::Pv);
    assert_eq!(with("type = 'pvh'\n").spec.guest_type, GuestType::Pvh);
    assert_eq!(with("builder = 'gen'\n").spec.guest_type, GuestType::Pv);
    assert_eq!(
        with("builder = 'generic'\ntype = 'pv'\n").spec.guest_type,
        GuestType::Pv
    );
    assert_names(
        &error("builder = 'hvm'\ntype = 'pv'\n"),
        "type",
        &["contradicts builder \"hvm\" (line 3)"],
    );
    assert_names(
        &error("builder = 'linux'\n"),
        "builder",
        &["unknown value \"linux\""],
    );
}

#[test]
fn a_bootloader_is_refused_by_name_not_as_a_missing_kernel() {
    let e = fixture("pygrub.cfg").unwrap_err();
    assert_names(
        &e,
        "bootloader",
        &["\"pygrub\"", "inside the guest's disk", "set kernel"],
    );
    for loader in ["/usr/bin/pygrub", "/usr/lib/xen/bin/pygrub", "pvgrub"] {
        let e = error(&format!("bootloader = '{loader}'\n"));
        assert_names(&e, "bootloader", &[loader]);
    }
    assert_names(
        &error("firmware = 'pvgrub64'\n"),
        "firmware",
        &["\"pvgrub64\""],
    );
    // An empty bootloader asks for nothing.
    assert!(with("bootloader = ''\n").warnings.is_empty());
}

#[test]
fn a_unikernel_boots_as_it_is() {
    let p = fixture("unikernel.cfg").unwrap();
    assert_eq!(p.spec.guest_type, GuestType::Pvh);
    assert_eq!(p.spec.memory_mib, 64);
    assert_eq!(p.spec.vifs.len(), 1);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn disks_with_xens_prefixes_and_empty_fields() {
    let disk = |entry: &str| {
        let mut disks = with(&format!("disk = [ '{entry}' ]\n")).spec.disks;
        assert_eq!(disks.len(), 1, "{entry}");
        let d = disks.remove(0);
        (d.target.to_str().unwrap().to_string(), d.vdev, d.access)
    };
    let rw = |t: &str, v: &str| (t.to_string(), v.to_string(), Access::ReadWrite);
    let ro = |t: &str, v: &str| (t.to_string(), v.to_string(), Access::ReadOnly);
    assert_eq!(disk("phy:/dev/vg0/a,xvda,w"), rw("/dev/vg0/a", "xvda"));
    assert_eq!(disk("file:/srv/a.img,hda,w"), rw("/srv/a.img", "hda"));
    assert_eq!(disk("tap:aio:/srv/a.img,xvda,w"), rw("/srv/a.img", "xvda"));
    assert_eq!(
        disk("tap2:tapdisk:aio:/srv/a.img,xvdb,w"),
        rw("/srv/a.img", "xvdb")
    );
    assert_eq!(disk("aio:/srv/a.img,xvdc,r"), ro("/srv/a.img", "xvdc"));
    assert_eq!(disk("/srv/a.img,,xvdd,"), rw("/srv/a.img", "xvdd"));
    assert_eq!(disk("/srv/a.img,,xvde"), rw("/srv/a.img", "xvde"));
    // CD-ROMs are served read-only, whatever the access says.
    assert_eq!(
        disk("/iso/d.iso,raw,hdc,ro,devtype=cdrom"),
        ro("/iso/d.iso", "hdc")
    );
    assert_eq!(disk("file:/iso/d.iso,hdc:cdrom,r"), ro("/iso/d.iso", "hdc"));
    assert_eq!(
        disk("/iso/d.iso,raw,hdc,rw,devtype=cdrom"),
        ro("/iso/d.iso", "hdc")
    );
}

#[test]
fn disks_this_host_cannot_open_are_refused_by_name() {
    let refused = |entry: &str, says: &[&str]| {
        assert_names(&error(&format!("disk = [ '{entry}' ]\n")), "disk", says);
    };
    refused(
        ",hdc:cdrom,r",
        &["hdc is an empty CD-ROM drive (no medium)"],
    );
    refused(
        "format=raw, vdev=hdc, devtype=cdrom, target=",
        &["hdc is an empty CD-ROM drive"],
    );
    refused(
        "nbd:192.0.2.5:10809,xvda,w",
        &["nbd: targets are not supported"],
    );
    refused(
        "iscsi:iqn.2001-05.com.example:disk0,xvda,w",
        &["iscsi: targets"],
    );
    refused("drbd:resource0,xvda,w", &["drbd: targets"]);
    refused(
        "rbd:pool/image,raw,xvda,rw",
        &["rbd: targets are not supported"],
    );
    refused(
        "vdev=xvda, target=rbd:pool/image:id=admin",
        &["rbd: targets"],
    );
    refused(
        "format=raw, vdev=xvda, target=nbd://192.0.2.5/export",
        &["nbd: targets"],
    );
    refused(
        "https://example.org/disk.img,raw,xvda,ro",
        &["https: targets"],
    );
}

#[test]
fn devices_the_guest_would_miss_are_errors_naming_the_key() {
    let e = fixture("pv-devices.cfg").unwrap_err();
    assert_names(&e, "vfb", &["virtual framebuffer", "remove vfb"]);
    for (setting, key, feature) in [
        ("pci = [ '0000:03:00.0' ]", "pci", "PCI passthrough"),
        ("pci = '01:00.0'", "pci", "PCI passthrough"),
        (
            "dtdev = [ '/soc/ethernet@ff0e0000' ]",
            "dtdev",
            "device-tree passthrough",
        ),
        ("irqs = [ 10 ]", "irqs", "host interrupts"),
        ("iomem = [ 'fee00,1' ]", "iomem", "host I/O memory"),
        ("ioports = [ '2f8-2ff' ]", "ioports", "host I/O ports"),
        ("usb = 1", "usb", "USB controller"),
        ("usbctrl = [ 'version=3' ]", "usbctrl", "USB controller"),
        (
            "usbdev = [ 'hostbus=1, hostaddr=2' ]",
            "usbdev",
            "USB device passthrough",
        ),
        ("usbdevice = 'tablet'", "usbdevice", "USB device"),
        ("vkb = [ '' ]", "vkb", "virtual keyboard"),
        ("vnc = 1", "vnc", "VNC"),
        ("sdl = '1'", "sdl", "SDL"),
        ("vtpm = [ 'backend=vtpm-dom' ]", "vtpm", "virtual TPM"),
        (
            "p9 = [ 'tag=share, path=/srv/share, security_model=none' ]",
            "p9",
            "9pfs",
        ),
        ("pvcalls = [ 'backend=0' ]", "pvcalls", "PV calls"),
        (
            "channel = [ 'name=org.qemu.guest_agent.0, connection=pty' ]",
            "channel",
            "PV channel",
        ),
        (
            "vdispl = [ 'connectors=1920x1080' ]",
            "vdispl",
            "virtual display",
        ),
        (
            "vsnd = [ [ 'card, short-name=c' ] ]",
            "vsnd",
            "virtual sound",
        ),
        ("soundhw = 'hda'", "soundhw", "sound"),
        (
            "virtio = [ 'type=virtio,device' ]",
            "virtio",
            "virtio device",
        ),
    ] {
        let e = error(&format!("{setting}\n"));
        assert_names(
            &e,
            key,
            &[feature, "not supported", &format!("remove {key}")],
        );
    }
    // Keys that ask for no device keep drawing one warning naming them.
    let p = with("uuid = '6b4c7ae5-3bd4-4f0b-9a44-0d9c1fa0b7e1'\npae = 1\nacpi = 1\napic = 1\nlocaltime = 0\nseclabel = 'system_u:system_r:domU_t'\ncpus = '0-1'\ncpu_weight = 256\npci = []\nvnc = 0\nsdl = '0'\nusb = 0\n");
    assert_eq!(
        p.warnings,
        ["g.cfg: ignoring keys this hypervisor does not use: acpi, apic, cpu_weight, cpus, localtime, pae, pci, sdl, seclabel, usb, uuid, vnc"]
    );
}

#[test]
fn vcpus_up_to_the_cap_overcommitted_as_xen_allows() {
    // More vCPUs than this host's two CPUs.
    for n in [3u8, 4, 8, 16, 32] {
        let p = with(&format!("vcpus = {n}\n"));
        assert_eq!((p.spec.vcpus, p.spec.maxvcpus), (n, n));
    }
    let p = with("vcpus = 2\nmaxvcpus = 8\n");
    assert_eq!((p.spec.vcpus, p.spec.maxvcpus), (2, 8));
    // 0 vCPUs means 1 and an unset maxvcpus, as in Xen.
    let p = with("vcpus = 0\nmaxvcpus = 0\n");
    assert_eq!((p.spec.vcpus, p.spec.maxvcpus), (1, 1));
    assert_eq!(p.warnings, ["g.cfg:3: vcpus: 0 means 1, as in Xen"]);
    assert_names(&error("vcpus = 33\n"), "vcpus", &["more than the 32 vCPUs"]);
    assert_names(
        &error("vcpus = 4\nmaxvcpus = 64\n"),
        "maxvcpus",
        &["more than the 32 vCPUs"],
    );
    assert_names(
        &error("vcpus = 4\nmaxvcpus = 2\n"),
        "maxvcpus",
        &["less than vcpus (4)"],
    );
}

#[test]
fn xls_defaults_duplicates_and_additions() {
    // xl's default memory (libxl's 32 MiB).
    let p = with("");
    assert_eq!(
        (p.spec.memory_mib, p.spec.maxmem_mib, p.spec.vcpus),
        (32, 32, 1)
    );
    // A key set twice: the last wins, and both lines are named.
    let p = with("memory = 256\nvcpus = 2\nmemory = 512\n");
    assert_eq!(p.spec.memory_mib, 512);
    assert_eq!(
        p.warnings,
        ["g.cfg:5: memory is set again (first at line 3): the last setting wins, as in Xen"]
    );
    // An override replaces a file's value without a warning.
    let overrides = ["memory=64".to_string()];
    let p = parse("g.cfg", &format!("{BASE}memory = 256\n"), &overrides).unwrap();
    assert_eq!((p.spec.memory_mib, p.warnings.len()), (64, 0));
    // `+=` joins strings and appends lists, as Xen's parser does.
    let p = with("extra = 'console=hvc0'\nextra += ' quiet'\ndisk = [ '/a.img,raw,xvda' ]\ndisk += [ '/b.img,raw,xvdb' ]\n");
    assert_eq!(p.spec.cmdline, "console=hvc0 quiet");
    assert_eq!(p.spec.disks.len(), 2);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(with("extra += 'quiet'\n").spec.cmdline, "quiet");
    assert_names(
        &error("memory = 5\nmemory += 12\n"),
        "memory",
        &["`+=` cannot be used with numbers"],
    );
    let e = error("extra = 'a'\nextra += [ 'b' ]\n");
    assert!(e.to_string().contains("cannot add a list"), "{e}");
}

#[test]
fn the_dry_run_refuses_what_the_core_would() {
    // Names the core refuses: control characters (a NUL, a newline, an
    // escape), a number, more than 64 bytes.
    for (name, says) in [
        ("a\\x00b", "control characters"),
        ("a\\nb", "control characters"),
        ("\\x1b[2J", "control characters"),
        ("42", "must not be a number"),
    ] {
        let e = parse("n.cfg", &format!("name = '{name}'\nkernel = '/k'\n"), &[]).unwrap_err();
        assert_names(&e, "name", &[says]);
    }
    let long = "n".repeat(65);
    let e = parse("n.cfg", &format!("name = '{long}'\nkernel = '/k'\n"), &[]).unwrap_err();
    assert_names(&e, "name", &["at most 64 bytes"]);
    // Memory the core cannot map below its device hole.
    assert_names(&error("memory = 4096\n"), "memory", &["4 to 3584 MiB"]);
    assert_names(&error("memory = 2\n"), "memory", &["4 to 3584 MiB"]);
    assert_eq!(with("memory = 3584\n").spec.memory_mib, 3584);
    // A command line longer than the boot protocol carries.
    let long = "x".repeat(600);
    let e = error(&format!("root = '/dev/xvda1'\nextra = '{long}'\n"));
    assert_names(&e, "extra", &["616 bytes, more than the 512"]);
    assert_eq!(
        with(&format!("extra = '{}'\n", "x".repeat(512)))
            .spec
            .cmdline
            .len(),
        512
    );
}

#[test]
fn numeric_vdevs_vif_leftovers_and_the_first_syntax_error() {
    // A disk's vdev may be a raw Xen device number, as xl reads them.
    for vdev in ["51713", "0xca01", "0x301"] {
        let p = with(&format!("disk = [ 'phy:/dev/vg/a,{vdev},w' ]\n"));
        assert_eq!(p.spec.disks[0].vdev, vdev);
    }
    assert_names(
        &error("disk = [ 'phy:/dev/vg/a,99999999999,w' ]\n"),
        "disk",
        &["a device number like 51713"],
    );
    // Keys xl ignores in a vif (old xend ones, or unknown) are warnings
    // naming the entry, as xl ignores them too.
    let p = with("vif = [ 'bridge=xenbr0, gatewaydev=eth0' ]\n");
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0].starts_with("g.cfg:3: vif: entry 1: ")
            && p.warnings[0].contains("gatewaydev"),
        "{:?}",
        p.warnings
    );
    // A file in another language: the error is at its first line, not at
    // the first character the lexer cannot read.
    let e = parse("py.cfg", "import os\nname = 't'\nx = f(1)\n", &[]).unwrap_err();
    assert!(e.to_string().starts_with("py.cfg:1:"), "{e}");
    // soft-reset is in xl.cfg(5), for HVM guests only.
    assert_names(
        &error("on_crash = 'soft-reset'\n"),
        "on_crash",
        &["soft-reset is an action for HVM guests"],
    );
}
