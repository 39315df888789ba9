//! Unit tests of the vif specification parser.

use super::*;

fn vif(entry: &str) -> VifSpec {
    match parse_vif(entry) {
        Ok(v) => v.spec,
        Err(e) => panic!("{entry:?}: unexpected error: {e}"),
    }
}

fn error(entry: &str) -> String {
    match parse_vif(entry) {
        Ok(v) => panic!("{entry:?}: expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_empty_string_is_a_default_vif() {
    let want = VifSpec {
        mac: None,
        bridge: "xenbr0".into(),
        model: None,
        vifname: None,
        ip: None,
        rate: None,
        mtu: None,
        script: None,
        backend: None,
        vif_type: None,
    };
    assert_eq!(vif(""), want);
    assert_eq!(vif("  "), want);
    assert_eq!(vif(","), want);
}

#[test]
fn documentation_examples() {
    assert_eq!(
        vif("mac=00:16:3E:74:3d:76,model=rtl8139,bridge=xenbr0"),
        VifSpec {
            mac: Some("00:16:3e:74:3d:76".into()),
            model: Some("rtl8139".into()),
            ..VifSpec::default()
        }
    );
    assert_eq!(
        vif("mac=00:16:3e:5f:48:e4,bridge=xenbr1"),
        VifSpec {
            mac: Some("00:16:3e:5f:48:e4".into()),
            bridge: "xenbr1".into(),
            ..VifSpec::default()
        }
    );
    for r in [
        "10Mb/s",
        "250KB/s",
        "1MB/s@20ms",
        "5Gb/s@1s",
        "8b/s@500us",
        "1B/s@2",
    ] {
        assert_eq!(vif(&format!("rate={r}")).rate.as_deref(), Some(r));
    }
}

#[test]
fn every_key() {
    assert_eq!(
        vif(" mac=02:00:00:00:00:01 , bridge=br1, model=e1000, vifname=guest-eth0, ip=10.0.0.2 fd00::2/64, rate=10Mb/s@20ms, mtu=9000, script=vif-route, backend=dom0, type=vif "),
        VifSpec {
            mac: Some("02:00:00:00:00:01".into()),
            bridge: "br1".into(),
            model: Some("e1000".into()),
            vifname: Some("guest-eth0".into()),
            ip: Some("10.0.0.2 fd00::2/64".into()),
            rate: Some("10Mb/s@20ms".into()),
            mtu: Some(9000),
            script: Some("vif-route".into()),
            backend: Some("dom0".into()),
            vif_type: Some("vif".into()),
        }
    );
}

#[test]
fn bad_values_are_refused() {
    assert_eq!(
        error("mac=00:16:3e:74:3d"),
        "mac `00:16:3e:74:3d` is not six hex pairs like 00:16:3e:12:34:56"
    );
    assert!(error("mac=00:16:3e:74:3d:7g").contains("not six hex pairs"));
    assert!(error("mac=0:16:3e:74:3d:76:").contains("not six hex pairs"));
    assert!(error("mac=01:16:3e:74:3d:76").contains("multicast"));
    for r in [
        "10Mb",
        "10/s",
        "0Mb/s",
        "10Mb/s@",
        "10Mb/s@5h",
        "10Mb/s@0ms",
        "99999999999Mb/s",
        "-1Mb/s",
        "10Tb/s",
    ] {
        assert!(
            error(&format!("rate={r}")).starts_with(&format!("rate `{r}`")),
            "{r}"
        );
    }
    assert_eq!(error("mtu=12"), "mtu `12` is not a number from 68 to 65535");
    assert!(error("mtu=big").starts_with("mtu `big`"));
    assert!(error("ip=10.0.0.256").contains("not an IP address"));
    assert!(error("ip=10.0.0.1/33").contains("prefix"));
    assert!(error("vifname=a-very-long-interface-name").contains("not an interface name"));
    assert_eq!(error("type=tap"), "type `tap` is not vif or ioemu");
}

#[test]
fn unknown_and_unused_keys_are_ignored_as_xl_does() {
    let parsed = parse_vif("bridge=xenbr1,colour=red,gatewaydev=eth0,netdev=eth1,devid=2").unwrap();
    assert_eq!(parsed.spec.bridge, "xenbr1");
    assert_eq!(
        parsed.ignored,
        [
            "ignoring unknown key `colour`, as xl does (known: mac, bridge, model, vifname, ip, rate, mtu, script, backend, type)",
            "ignoring gatewaydev (not used by this hypervisor)",
            "ignoring netdev (not used by this hypervisor)",
            "ignoring devid (not used by this hypervisor)",
        ]
    );
}

#[test]
fn malformed_items_are_refused() {
    assert_eq!(error("bridge"), "expected key=value, found `bridge`");
    assert_eq!(error("bridge=a,bridge=b"), "bridge is given twice");
    assert_eq!(error("bridge="), "bridge has an empty value");
}

#[test]
fn rates_become_libxls_credits() {
    assert_eq!(rate_credit("10Mb/s@20ms"), Some((25_000, 20_000)));
    assert_eq!(rate_credit("10Mb/s"), Some((62_500, 50_000)));
    assert_eq!(rate_credit("1MB/s@1s"), Some((1_000_000, 1_000_000)));
    assert_eq!(rate_credit("250KB/s@100us"), Some((25, 100)));
    assert_eq!(rate_credit("8b/s@1us"), Some((1, 1)));
    assert_eq!(rate_credit("100GB/s@1s"), None);
    assert_eq!(rate_credit("10Mb"), None);
}

#[test]
fn the_first_ipv4_address_of_ip() {
    assert_eq!(first_ipv4("10.0.0.2/24"), Some(([10, 0, 0, 2], Some(24))));
    assert_eq!(
        first_ipv4("fe80::1 192.0.2.7"),
        Some(([192, 0, 2, 7], None))
    );
    assert_eq!(first_ipv4("fe80::1/64"), None);
    assert_eq!(first_ipv4("10.0.0.2/0"), None);
}

#[test]
fn errors_are_typed_for_callers_that_match_on_them() {
    let err = |entry| parse_vif(entry).err();
    assert_eq!(
        err("mac=01:00:5e:00:00:01"),
        Some(VifError::MulticastMac("01:00:5e:00:00:01".into()))
    );
    assert_eq!(err("mtu=67"), Some(VifError::BadMtu("67".into())));
    assert_eq!(
        err("ip=10.0.0.2,ip=10.0.0.3"),
        Some(VifError::GivenTwice("ip"))
    );
    assert_eq!(
        err("rate=10Mb"),
        Some(VifError::BadRate {
            value: "10Mb".into(),
            why: "does not end in /s"
        })
    );
}
