//! The ports, their VLANs and the routes that name them. Line numbers refer to `PORTS`.

use super::*;

/// Three ports: one with two VLANs, a plain one, and one that only carries a VLAN.
const PORTS: &str = "interfaces:
  - name: inside
    zone: inside
    device: net_af_packet0,iface=ct-in0
    addresses: [198.18.0.254/24]
    vlans:
      - id: 100
        addresses: [198.18.1.254/24]
      - id: 200
        zone: outside
        addresses: [198.18.2.254/24]
  - name: outside
    zone: outside
    device: net_af_packet1,iface=ct-out0
    addresses: [198.19.0.254/24]
  - name: trunk
    zone: inside
    device: '0000:03:00.0'
    vlans:
      - {id: 7, addresses: [10.7.0.1/16]}
routes:
  - to: 0.0.0.0/0
    via: 198.19.0.1
    interface: outside
  - to: 10.8.0.0/16
    via: 10.7.0.2
    interface: trunk.7
  - to: 172.16.0.0/12
    via: 198.18.2.1
    interface: inside.200
";

/// `PORTS` with `from` (which must occur exactly once) replaced by `to`.
fn ports(from: &str, to: &str) -> String {
    assert_eq!(
        PORTS.matches(from).count(),
        1,
        "`{from}` must occur once in PORTS"
    );
    PORTS.replacen(from, to, 1)
}

fn cidr(s: &str) -> Cidr {
    s.parse().unwrap()
}

#[test]
fn links_in_iface_order() {
    let c = ok(PORTS);
    let links = c.links();
    let got: Vec<(&str, u16, Option<u16>, Zone)> = links
        .iter()
        .map(|l| (l.name.as_str(), l.port, l.vlan, l.zone))
        .collect();
    assert_eq!(
        got,
        [
            ("inside", 0, None, Zone::Inside),
            // A VLAN is in its port's zone unless it says otherwise.
            ("inside.100", 0, Some(100), Zone::Inside),
            ("inside.200", 0, Some(200), Zone::Outside),
            ("outside", 1, None, Zone::Outside),
            ("trunk", 2, None, Zone::Inside),
            ("trunk.7", 2, Some(7), Zone::Inside),
        ]
    );
    assert_eq!(links[1].addresses, [cidr("198.18.1.254/24")]);
    assert!(links[4].addresses.is_empty(), "a port with only VLANs");
    assert!(links[5].is_connected(ip("10.7.200.1")));
    assert!(links[5].is_own_address(ip("10.7.0.1")));
    assert_eq!(c.iface("trunk.7"), Some(Iface(5)));
    assert_eq!(c.iface("trunk.8"), None);
    assert_eq!(c.port("trunk").map(|p| p.vlans.len()), Some(1));
    assert_eq!(c.port("inside.100"), None, "a VLAN is not a port");
}

#[test]
fn routes_name_ports_and_vlans() {
    let c = ok(PORTS);
    let to: Vec<(Cidr, Iface)> = c.routes.iter().map(|r| (r.to, r.interface)).collect();
    assert_eq!(
        to,
        [
            (Cidr::ANY, Iface(3)),
            (cidr("10.8.0.0/16"), Iface(5)),
            (cidr("172.16.0.0/12"), Iface(2)),
        ]
    );
    assert_eq!(c.links()[c.routes[2].interface.index()].name, "inside.200");
    errs([
        (
            ports("interface: trunk.7", "interface: trunk.8"),
            "t.yaml:27: routes[1].interface: no interface is called `trunk.8`: name a port, or PORT.ID for a VLAN (the box has inside, inside.100, inside.200, outside, trunk, trunk.7)",
        ),
        // The gateway must be on the VLAN's subnet, not just its port's.
        (
            ports("via: 10.7.0.2", "via: 198.18.0.1"),
            "t.yaml:26: routes[1].via: gateway 198.18.0.1 is not in a connected subnet of interface trunk.7 (10.7.0.0/16)",
        ),
        (
            ports("interface: trunk.7", "interface: trunk"),
            "t.yaml:26: routes[1].via: gateway 10.7.0.2 is not in a connected subnet of interface trunk (it has no addresses)",
        ),
        (
            ports("via: 198.18.2.1", "via: 198.18.2.254"),
            "t.yaml:29: routes[2].via: gateway 198.18.2.254 is the box's own address",
        ),
    ]);
}

#[test]
fn virtual_http_on_a_vlan() {
    let c = ok(&format!(
        "{PORTS}auth:\n  virtual_http: {{address: 198.18.1.254}}\n"
    ));
    let v = c.auth.virtual_http.unwrap();
    assert_eq!(v.address, ip("198.18.1.254"));
    assert_eq!(
        err(&format!(
            "{PORTS}auth:\n  virtual_http:\n    address: 10.7.0.2\n"
        )),
        "t.yaml:33: auth.virtual_http.address: 10.7.0.2 is not one of the box's addresses (the `addresses` of a port or a VLAN)"
    );
}

#[test]
fn port_names() {
    let msg = "is not a port name: 1 to 15 letters, digits, '-' or '_' (a VLAN is named PORT.ID after its port, so no '.')";
    for (name, shown) in [
        ("''", ""),
        ("in.side", "in.side"),
        // Not even one that looks like another port's VLAN.
        ("inside.100", "inside.100"),
        ("'lan 1'", "lan 1"),
        ("a234567890123456", "a234567890123456"),
        ("lån", "lån"),
    ] {
        assert_eq!(
            err(&ports("  - name: trunk", &format!("  - name: {name}"))),
            format!("t.yaml:16: interfaces[2].name: `{shown}` {msg}"),
            "{name}"
        );
    }
    let c = ok(&ports("  - name: trunk", "  - name: Port_2-b1234567")
        .replace("trunk.7", "Port_2-b1234567.7"));
    assert_eq!(c.interfaces[2].name, "Port_2-b1234567");
    assert_eq!(
        err(&ports("  - name: trunk", "  - name: drops")),
        "t.yaml:16: interfaces[2].name: `drops` is a key of the statistics report, where the \
         ports are listed by name: choose another name"
    );
}

#[test]
fn ports_must_differ() {
    errs([
        (
            ports("  - name: trunk", "  - name: inside"),
            "t.yaml:16: interfaces[2].name: duplicate port name `inside` (also interfaces[0])",
        ),
        (
            ports("'0000:03:00.0'", "net_af_packet1,iface=ct-x"),
            "t.yaml:18: interfaces[2].device: `net_af_packet1,iface=ct-x` is also the device of interfaces[1] (outside); each port must be a different device",
        ),
        (
            ports("'0000:03:00.0'", "'0000:03:00.1'").replace(
                "net_af_packet1,iface=ct-out0",
                "'0000:03:00.1'",
            ),
            "t.yaml:18: interfaces[2].device: `0000:03:00.1` is also the device of interfaces[1] (outside); each port must be a different device",
        ),
    ]);
}

#[test]
fn zones() {
    let e = "`any` is only for policy rules: an interface is in zone inside or outside";
    errs([
        (
            ports(
                "    zone: inside\n    device: '0000",
                "    zone: any\n    device: '0000",
            ),
            &format!("t.yaml:17: interfaces[2].zone: {e}"),
        ),
        (
            ports("        zone: outside", "        zone: any"),
            &format!("t.yaml:10: interfaces[0].vlans[1].zone: {e}"),
        ),
    ]);
    let missing = err(&ports(
        "    zone: inside\n    device: '0000",
        "    device: '0000",
    ));
    assert_eq!(missing, "t.yaml:16:5: interfaces[2]: missing field `zone`");
    err_starts(
        &ports("        zone: outside", "        zone: dmz"),
        "t.yaml:10:15: interfaces[0].vlans[1].zone: unknown variant `dmz`, expected one of",
    );
}

#[test]
fn vlan_ids() {
    errs([
        (
            ports("id: 100", "id: 0"),
            "t.yaml:7: interfaces[0].vlans[0].id: VLAN id 0 is out of range 1..=4094",
        ),
        (
            ports("id: 200", "id: 4095"),
            "t.yaml:9: interfaces[0].vlans[1].id: VLAN id 4095 is out of range 1..=4094",
        ),
        (
            ports("id: 200", "id: 100"),
            "t.yaml:9: interfaces[0].vlans[1].id: VLAN 100 is listed twice (also interfaces[0].vlans[0])",
        ),
    ]);
    // The same id on another port is another VLAN.
    let c = ok(&ports("{id: 7,", "{id: 100,").replace("trunk.7", "trunk.100"));
    assert_eq!(c.iface("trunk.100"), Some(Iface(5)));
    err_starts(
        &ports("id: 100", "id: -1"),
        "t.yaml:7:13: interfaces[0].vlans[0].id: invalid type: integer `-1`, expected u64",
    );
    err_starts(
        &ports("        zone: outside", "        zone: outside\n        mtu: 1500"),
        "t.yaml:11:9: interfaces[0].vlans[1]: unknown field `mtu`, expected one of `id`, `zone`, `addresses`",
    );
}

#[test]
fn addresses_of_ports_and_vlans() {
    errs([
        (
            ports("[10.7.0.1/16]", "[]"),
            "t.yaml:20: interfaces[2].vlans[0].addresses: needs at least one address: the box's own address on the VLAN with its subnet's length, like 198.18.1.254/24",
        ),
        (
            ports("[198.18.2.254/24]", "[198.18.2.0/24]"),
            "t.yaml:11: interfaces[0].vlans[1].addresses[0]: `198.18.2.0/24` is the subnet's network address; give the box's own address, like 198.18.2.1",
        ),
        // Neither addresses nor VLANs (the error comes before the routes to trunk.7).
        (
            ports("    vlans:\n      - {id: 7, addresses: [10.7.0.1/16]}\n", ""),
            "t.yaml:16: interfaces[2].addresses: needs at least one address (or VLANs that have them): the box's own address with its subnet's length, like 198.18.0.254/24",
        ),
    ]);
}

#[test]
fn overlapping_subnets_between_interfaces() {
    errs([
        // A VLAN and another port.
        (
            ports("[10.7.0.1/16]", "[198.19.0.1/16]"),
            "t.yaml:20: interfaces[2].vlans[0].addresses[0]: subnet 198.19.0.0/16 overlaps 198.19.0.0/24, a subnet of interface outside (interfaces[1].addresses[0]); each interface must have subnets of its own",
        ),
        // A VLAN and its own port's untagged interface.
        (
            ports("[198.18.1.254/24]", "[198.18.0.1/23]"),
            "t.yaml:8: interfaces[0].vlans[0].addresses[0]: subnet 198.18.0.0/23 overlaps 198.18.0.0/24, a subnet of interface inside (interfaces[0].addresses[0]); each interface must have subnets of its own",
        ),
        // A port and an earlier port's VLAN.
        (
            ports("[198.19.0.254/24]", "[198.19.0.254/24, 198.18.2.1/30]"),
            "t.yaml:15: interfaces[1].addresses[1]: subnet 198.18.2.0/30 overlaps 198.18.2.0/24, a subnet of interface inside.200 (interfaces[0].vlans[1].addresses[0]); each interface must have subnets of its own",
        ),
    ]);
    // Two subnets on one interface may overlap (a /32 inside a /24, say).
    ok(&ports(
        "[198.19.0.254/24]",
        "[198.19.0.254/24, 198.19.0.7/32]",
    ));
}

#[test]
fn how_many_ports_and_interfaces() {
    let port = |i: usize| {
        format!(
            "  - {{name: p{i}, zone: inside, device: 'net_null{i}', addresses: [10.{i}.0.1/24]}}\n"
        )
    };
    let text = |n: usize| format!("interfaces:\n{}", (0..n).map(port).collect::<String>());
    assert_eq!(ok(&text(32)).interfaces.len(), 32);
    assert_eq!(
        err(&text(33)),
        "t.yaml:34: interfaces[32]: a port beyond the 32 DPDK handles (RTE_MAX_ETHPORTS)"
    );
    // 2 ports and 253 VLANs are the 255 interfaces an `Iface` can tell apart.
    let vlans = |n: u16| {
        (1..=n)
            .map(|id| {
                format!(
                    "      - {{id: {id}, addresses: [172.16.{}.{}/32]}}\n",
                    id / 256,
                    id % 256 + 1
                )
            })
            .collect::<String>()
    };
    let with = |n: u16| {
        format!(
            "{}  - name: p1\n    zone: inside\n    device: net_null1\n    vlans:\n{}",
            text(1),
            vlans(n)
        )
    };
    let c = ok(&with(253));
    assert_eq!(c.links().len(), MAX_LINKS);
    assert_eq!(c.iface("p1.253"), Some(Iface(254)));
    assert_eq!(
        err(&with(254)),
        "t.yaml:260: interfaces[1].vlans[253]: one interface too many: the box has at most 255, ports and VLANs together"
    );
}

#[test]
fn the_old_map_form() {
    let old = "eal: []\ninterfaces:\n  inside:\n    device: net_af_packet0,iface=ct-in0\n    addresses: [198.18.0.254/24]\n  outside:\n    device: net_af_packet1,iface=ct-out0\n    addresses: [198.19.0.254/24]\n";
    assert_eq!(
        err(old),
        "t.yaml:2: interfaces: must be a list of ports now, not a map: write one item per port (inside, outside), each like `- name: inside` / `zone: inside` / `device: ...`, its other keys as before"
    );
    // Whatever the map holds.
    assert!(err("interfaces: {1: x, inside: {mtu: x}}\n").contains("(inside), each like"));
    err_starts(
        "interfaces: eth0\n",
        "t.yaml:1:13: interfaces: invalid type: string \"eth0\", expected a list of ports",
    );
}
