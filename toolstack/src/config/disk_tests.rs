//! Unit tests of the disk specification parser.

use super::*;

fn disk(entry: &str) -> DiskSpec {
    match parse_disk(entry) {
        Ok(parsed) => parsed.spec,
        Err(e) => panic!("{entry:?}: unexpected error: {e}"),
    }
}

fn error(entry: &str) -> String {
    match parse_disk(entry) {
        Ok(parsed) => panic!("{entry:?}: expected an error, got {parsed:?}"),
        Err(e) => e.to_string(),
    }
}

fn plain(target: &str, vdev: &str, access: Access) -> DiskSpec {
    DiskSpec {
        target: PathBuf::from(target),
        format: DiskFormat::Raw,
        vdev: vdev.to_string(),
        access,
        devtype: None,
        backend: None,
        backendtype: None,
        specification: None,
        direct_io_safe: false,
    }
}

fn cdrom(target: &str, vdev: &str) -> DiskSpec {
    DiskSpec {
        devtype: Some("cdrom".into()),
        ..plain(target, vdev, Access::ReadOnly)
    }
}

#[test]
fn positional_forms() {
    let want = plain("/dev/vg/guest-volume", "hda", Access::ReadWrite);
    assert_eq!(disk("/dev/vg/guest-volume,,hda"), want);
    assert_eq!(disk("/dev/vg/guest-volume,raw,hda,rw"), want);
    assert_eq!(disk("/dev/vg/guest-volume,raw,hda"), want);
    assert_eq!(disk(" /dev/vg/guest-volume , raw , hda , w "), want);
    assert_eq!(
        disk("/images/a.img,raw,xvda,ro"),
        plain("/images/a.img", "xvda", Access::ReadOnly)
    );
    assert_eq!(
        disk("/images/a.img,raw,xvda,r"),
        plain("/images/a.img", "xvda", Access::ReadOnly)
    );
}

#[test]
fn key_value_forms_with_target_last() {
    let want = plain("/dev/vg/guest-volume", "hda", Access::ReadWrite);
    assert_eq!(
        disk("format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume"),
        want
    );
    assert_eq!(disk("vdev=hda,target=/dev/vg/guest-volume"), want);
    assert_eq!(
        disk("vdev=xvdb, target=/srv/a,b c.img"),
        plain("/srv/a,b c.img", "xvdb", Access::ReadWrite)
    );
    assert_eq!(
        disk("vdev=xvdb, target = /srv/x=y,z.img,"),
        plain("/srv/x=y,z.img", "xvdb", Access::ReadWrite)
    );
}

#[test]
fn mixed_forms_fill_unspecified_slots_in_order() {
    // format given by name, so the second positional is the vdev.
    assert_eq!(
        disk("format=raw,/img/a,xvda,ro"),
        plain("/img/a", "xvda", Access::ReadOnly)
    );
    assert_eq!(
        disk("access=ro,/img/a,raw,xvda"),
        plain("/img/a", "xvda", Access::ReadOnly)
    );
    // an empty positional target may be completed by `target=`.
    assert_eq!(
        disk(",raw,xvda,target=/img/a,b"),
        plain("/img/a,b", "xvda", Access::ReadWrite)
    );
}

#[test]
fn cdrom_forms_from_the_xen_documentation() {
    let want = cdrom("/root/image.iso", "hdc");
    assert_eq!(disk("/root/image.iso,,hdc,cdrom"), want);
    assert_eq!(disk("/root/image.iso,,hdc,,cdrom"), want);
    assert_eq!(disk("/root/image.iso,raw,hdc,devtype=cdrom"), want);
    assert_eq!(
        disk("format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso"),
        want
    );
    assert_eq!(disk("raw:/root/image.iso,hdc:cdrom,ro"), want);
    // Read-only whatever the access, as in Xen.
    assert_eq!(
        disk("/root/image.iso,raw,hdc,rw,devtype=cdrom").access,
        Access::ReadOnly
    );
}

#[test]
fn deprecated_prefixes() {
    let want = plain("/dev/vg/guest-volume", "hda", Access::ReadWrite);
    assert_eq!(disk("raw:/dev/vg/guest-volume,hda,w"), want);
    assert_eq!(disk("phy:/dev/vg/guest-volume,hda,w"), want);
    assert_eq!(disk("tap:aio:/dev/vg/guest-volume,hda,w"), want);
    assert_eq!(
        disk("file:/images/g.img,xvda,w"),
        plain("/images/g.img", "xvda", Access::ReadWrite)
    );
    assert_eq!(
        error("tap:qcow2:/images/g.qcow2,xvda,w"),
        "disk format qcow2 is not supported yet (only raw)"
    );
    assert!(error("nbd:host:1234,xvda").contains("not supported"));
    assert_eq!(
        error("zzz:/images/g.img,xvda"),
        "unknown deprecated disk prefix `zzz:`"
    );
}

#[test]
fn other_parameters() {
    assert_eq!(
        disk("/i,raw,xvda,backend=dom0, backendtype=qdisk,specification=virtio"),
        DiskSpec {
            backend: Some("dom0".into()),
            backendtype: Some("qdisk".into()),
            specification: Some("virtio".into()),
            ..plain("/i", "xvda", Access::ReadWrite)
        }
    );
    let parsed = parse_disk("discard,/i,raw,xvda,trusted,grant_usage=1");
    assert_eq!(
        parsed.map(|p| p.ignored),
        Ok(vec![
            "discard".into(),
            "trusted".into(),
            "grant_usage".into()
        ])
    );
    assert_eq!(
        disk("/i,raw,xvda,devtype=disk").devtype,
        Some("disk".into())
    );
    // direct-io-safe is used (the image opened O_DIRECT), not ignored.
    let direct = parse_disk("/i,raw,xvda,direct-io-safe").unwrap();
    assert!(direct.spec.direct_io_safe && direct.ignored.is_empty());
    assert!(!disk("/i,raw,xvda").direct_io_safe);
}

#[test]
fn formats_other_than_raw_are_refused() {
    for f in ["qcow", "qcow2", "vhd", "qed"] {
        assert_eq!(
            error(&format!("/i,{f},xvda")),
            format!("disk format {f} is not supported yet (only raw)")
        );
    }
    assert_eq!(
        error("format=vmdk,vdev=xvda,target=/i"),
        "unknown disk format `vmdk` (Xen knows raw, qcow, qcow2, vhd and qed; only raw is supported here)"
    );
}

#[test]
fn bad_entries_say_what_is_wrong() {
    assert_eq!(
        error("/i,raw"),
        "no vdev given: name the guest's device, e.g. xvda"
    );
    assert_eq!(
        error("format=raw,vdev=xvda"),
        "no target given: name the disk image, e.g. `/images/guest.img,raw,xvda,rw`"
    );
    assert_eq!(
        error("/i,raw,xvda,rx"),
        "unknown access `rx` (expected rw, w, ro or r)"
    );
    assert_eq!(
        error("/i,raw,disk0"),
        "vdev `disk0` is not a Xen virtual device name (like xvda, xvdb1, hdc, sda, d0p1, or a device number like 51713)"
    );
    assert_eq!(
        error("/i,raw,xvda,rw,extra"),
        "too many positional parameters at `extra` (the order is target, format, vdev, access)"
    );
    assert!(error("/i,raw,xvda,colour=blue").starts_with("unknown parameter `colour`"));
    assert_eq!(
        error("/i,raw,xvda,vdev=xvdb"),
        "vdev is given twice (`xvda` and `xvdb`)"
    );
    assert_eq!(
        error("/i,raw,xvda,devtype=floppy"),
        "unknown devtype `floppy` (expected cdrom or disk)"
    );
    assert_eq!(
        error("/i,raw,xvda,backendtype=magic"),
        "unknown backendtype `magic` (expected phy, qdisk, tap, standalone)"
    );
    assert!(error("/i,raw,xvda,script=block-iscsi").contains("not supported"));
    // Xen's empty cdrom drive has no medium to serve.
    assert_eq!(
        error(",hdc:cdrom,r"),
        "hdc is an empty CD-ROM drive (no medium): removable media are not supported here; give the image as its target, or remove the entry"
    );
}

#[test]
fn odd_input_never_panics() {
    for entry in [
        ",",
        ",,,,,",
        "=",
        "target=",
        ":",
        "a:",
        "é:/x,xvda",
        "x,y,z,w,v",
        "/é,raw,xvdé",
    ] {
        let _ = parse_disk(entry);
    }
}

#[test]
fn errors_are_typed_for_callers_that_match_on_them() {
    let err = |entry| parse_disk(entry).err();
    assert_eq!(
        err("nbd://host/export,raw,xvda"),
        Some(DiskError::NetworkTarget("nbd".into()))
    );
    assert_eq!(
        err("/i.img,raw,xvda,rw,xvdb"),
        Some(DiskError::TooManyPositional("xvdb".into()))
    );
    assert_eq!(
        err("/i.img,raw,xvda,rw,vdev=xvdb"),
        Some(DiskError::GivenTwice {
            name: "vdev",
            first: "xvda".into(),
            second: "xvdb".into()
        })
    );
    assert_eq!(
        err(",raw,hdc:cdrom,r"),
        Some(DiskError::EmptyCdrom {
            vdev: Some("hdc".into())
        })
    );
}
