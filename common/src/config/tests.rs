//! Whole-file tests: the schema, its defaults, matching, users, syntax errors; the semantic
//! checks are in `semantic`, the ports, VLANs and routes in `interfaces`.

use std::sync::OnceLock;
use std::time::Duration;

use super::*;
use crate::wire::{Ipv4Addr, MacAddr};

mod interfaces;
mod semantic;

/// Line numbers in the tests below refer to this text.
const BASE: &str = r#"eal: ["--no-pci"]
interfaces:
  - name: inside
    zone: inside
    device: net_af_packet0,iface=ct-in0
    addresses: [198.18.0.254/24]
  - name: outside
    zone: outside
    device: net_af_packet1,iface=ct-out0
    addresses:
      - 198.19.0.254/24
routes:
  - to: 0.0.0.0/0
    via: 198.19.0.1
    interface: outside
workers:
  count: 1
policy:
  - name: icmp
    protocol: icmp
    action: pass
  - protocol: tcp
    ports: [5201-5210, 8080]
    action: pass
  - protocol: tcp
    ports:
      - 2323
    action: proxy
    auth: line
  - action: deny
users:
  - name: alice
    password_hash: HASH
"#;

/// A cheap argon2id hash of `secret` (tiny parameters keep the tests fast; the parameters
/// travel in the PHC string, so `User::verify` uses them).
fn cheap_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(64, 1, 1, None).unwrap();
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        a.hash_password(b"secret", &salt).unwrap().to_string()
    })
}

fn base() -> String {
    BASE.replace("HASH", cheap_hash())
}

/// `base()` with `from` (which must occur exactly once) replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    let b = base();
    assert_eq!(
        b.matches(from).count(),
        1,
        "`{from}` must occur once in BASE"
    );
    b.replacen(from, to, 1)
}

fn ok(text: &str) -> Config {
    match parse(text, "t.yaml") {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn err(text: &str) -> String {
    match parse(text, "t.yaml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// Checks that each config text fails with exactly its error; a failure names the case by its
/// place in the list.
fn errs<const N: usize>(cases: [(String, &str); N]) {
    for (i, (text, want)) in cases.iter().enumerate() {
        assert_eq!(err(text), *want, "case {i}");
    }
}

/// Checks that the config text fails with an error that starts with `prefix` (serde's
/// messages go on with lists that may change).
fn err_starts(text: &str, prefix: &str) {
    let e = err(text);
    assert!(e.starts_with(prefix), "{e}");
}

fn ip(s: &str) -> Ipv4Addr {
    parse_ipv4(s).unwrap()
}

#[test]
fn base_parses_with_defaults() {
    let c = ok(&base());
    assert_eq!(c.eal, vec!["--no-pci".to_string()]);
    assert_eq!(c.interfaces.len(), 2);
    let i = &c.interfaces[0];
    assert_eq!((i.name.as_str(), i.zone), ("inside", Zone::Inside));
    assert_eq!(i.device, Device::Vdev("net_af_packet0,iface=ct-in0".into()));
    assert!(i.vlans.is_empty());
    assert_eq!(i.addresses, vec!["198.18.0.254/24".parse().unwrap()]);
    assert_eq!(i.mac, None);
    assert_eq!((i.mtu, i.rx_queues, i.tx_queues), (1500, 1, 1));
    assert_eq!((i.rx_descriptors, i.tx_descriptors), (1024, 1024));
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.routes[0].via, ip("198.19.0.1"));
    assert_eq!(c.routes[0].interface, Iface(1));
    assert_eq!(c.iface("outside"), Some(Iface(1)));
    assert_eq!(c.routes[0].to, Cidr::ANY);
    assert_eq!(
        c.workers,
        Workers {
            count: 1,
            lcores: vec![]
        }
    );
    assert_eq!(c.flow_table.capacity, 65536);
    assert_eq!(c.flow_table.timeouts, Timeouts::default());
    assert_eq!(
        c.flow_table.timeouts.established,
        Duration::from_secs(5 * 86400)
    );
    assert_eq!(c.auth.cache_timeout, Duration::from_secs(300));
    assert_eq!(c.capture.drops, None, "no capture unless configured");
    assert_eq!(c.policy.len(), 4);
    assert_eq!(c.policy[0].name.as_deref(), Some("icmp"));
    assert_eq!(c.policy[0].zone, Zone::Any);
    assert_eq!(c.policy[0].source, Cidr::ANY);
    assert_eq!(
        c.policy[1].ports,
        vec![
            PortRange { lo: 5201, hi: 5210 },
            PortRange { lo: 8080, hi: 8080 }
        ]
    );
    assert_eq!(
        c.policy[2].action,
        Action::Proxy {
            auth: AuthMethod::Line,
            splice: SplicePoint::AfterAuth
        }
    );
    assert_eq!(c.policy[3].action, Action::Deny);
    assert_eq!(c.users[0].name, "alice");
}

#[test]
fn minimal_file() {
    let c = ok("interfaces:
  - {name: lan, zone: inside, device: '0000:03:00.0', addresses: [198.18.0.254/24]}
  - {name: wan, zone: outside, device: '0000:03:00.1', addresses: [198.19.0.254/24]}
");
    assert!(c.policy.is_empty() && c.users.is_empty() && c.routes.is_empty());
    assert_eq!(c.interfaces[1].device, Device::Pci("0000:03:00.1".into()));
    assert_eq!(c.port("wan").map(|p| p.zone), Some(Zone::Outside));
    // One port is enough (a router on a stick, with VLANs).
    let c = ok("interfaces:\n  - {name: trunk, zone: inside, device: '0000:03:00.0', addresses: [198.18.0.254/24]}\n");
    assert_eq!(c.links().len(), 1);
    // No rules: everything is denied.
    assert!(first_match(&c.policy, &outbound(1, None)).is_none());
}

#[test]
fn queue_defaults_follow_workers() {
    let c = ok(&edit("  count: 1", "  count: 3\n  lcores: [1, 2, 3]"));
    assert_eq!(c.workers.lcores, vec![1, 2, 3]);
    let i = &c.interfaces[1];
    assert_eq!((i.rx_queues, i.tx_queues), (3, 3));
}

#[test]
fn everything_explicit() {
    let c = ok(&(edit(
        "    device: net_af_packet0,iface=ct-in0\n",
        "    device: net_af_packet0,iface=ct-in0
    mac: 02:00:00:00:00:01
    mtu: 9000
    rx_queues: 1
    tx_queues: 3
    rx_descriptors: 4096
    tx_descriptors: 512
",
    ) + "flow_table:
  capacity: 1048576
  timeouts: {syn_sent: 30s, established: 1d, udp: 45, icmp: 500ms, close: 1m, time_wait: 2h}
auth:
  cache_timeout: 10m
  cache_idle: 90s
"));
    let i = &c.interfaces[0];
    assert_eq!(i.mac, Some(MacAddr([2, 0, 0, 0, 0, 1])));
    assert_eq!((i.mtu, i.rx_queues, i.tx_queues), (9000, 1, 3));
    assert_eq!((i.rx_descriptors, i.tx_descriptors), (4096, 512));
    let t = c.flow_table.timeouts;
    assert_eq!(c.flow_table.capacity, 1 << 20);
    assert_eq!(t.syn_sent, Duration::from_secs(30));
    assert_eq!(t.established, Duration::from_secs(86400));
    assert_eq!(t.udp, Duration::from_secs(45));
    assert_eq!(t.icmp, Duration::from_millis(500));
    assert_eq!(t.close, Duration::from_secs(60));
    assert_eq!(t.time_wait, Duration::from_secs(7200));
    assert_eq!(t.syn_recv, Timeouts::default().syn_recv);
    assert_eq!(c.auth.cache_timeout, Duration::from_secs(600));
    assert_eq!(c.auth.cache_idle, Some(Duration::from_secs(90)));
}

#[test]
fn drop_capture_defaults_and_values() {
    let c = ok(&(base() + "capture:\n  drops:\n    path: /var/log/ct/drops.pcapng\n"));
    let d = c.capture.drops.expect("the drop capture");
    assert_eq!(
        d,
        DropCapture {
            path: "/var/log/ct/drops.pcapng".into(),
            file_size: 16 << 20,
            files: 4,
            rate: 100,
            snaplen: 256,
        }
    );
    assert_eq!(d.file(0), std::path::Path::new("/var/log/ct/drops.pcapng"));
    assert_eq!(
        d.file(3),
        std::path::Path::new("/var/log/ct/drops.pcapng.3")
    );
    let c = ok(&(base()
        + "capture:
  drops: {path: drops.pcapng, file_size: 64KiB, files: 1, rate: 1, snaplen: 64}
"));
    let d = c.capture.drops.unwrap();
    assert_eq!((d.file_size, d.files, d.rate, d.snaplen), (65536, 1, 1, 64));
    let c = ok(&(base() + "capture:\n  drops: {path: d, file_size: 1073741824, snaplen: 65535}\n"));
    assert_eq!(c.capture.drops.unwrap().file_size, 1 << 30);
    // An empty section is no capture.
    assert_eq!(ok(&(base() + "capture: {}\n")).capture, Capture::default());
}

#[test]
fn splice_defaults_and_overrides() {
    let c = ok(&edit(
        "  - action: deny\n",
        "  - {protocol: tcp, ports: [80], action: proxy, auth: http-basic, http_login: in-band}
  - {protocol: tcp, ports: [81], action: proxy, auth: none, splice: never}
  - {protocol: tcp, ports: [82], action: proxy, auth: http-basic, http_login: in-band, splice: after-auth}
",
    ));
    let a = |i: usize| c.policy[i].action;
    assert_eq!(
        a(3),
        Action::Proxy {
            auth: AuthMethod::HttpBasic,
            splice: SplicePoint::AfterRequest
        }
    );
    assert_eq!(
        a(4),
        Action::Proxy {
            auth: AuthMethod::None,
            splice: SplicePoint::Never
        }
    );
    assert_eq!(
        a(5),
        Action::Proxy {
            auth: AuthMethod::HttpBasic,
            splice: SplicePoint::AfterAuth
        }
    );
}

#[test]
fn login_settings_virtual_http_and_radius() {
    let text = edit(
        "  - action: deny\n",
        "  - {name: web, protocol: tcp, ports: [80], action: proxy, auth: http-basic, backend: radius-then-local}
  - {name: lab, protocol: tcp, ports: [23], action: proxy, auth: line, login: rule, backend: radius}
  - {protocol: tcp, ports: [8080], action: proxy, auth: http-basic, http_login: in-band}
  - action: deny
auth:
  virtual_http: {address: 198.18.0.254, port: 8888, host: login.example.test}
  radius:
    servers:
      - {address: 127.0.0.1, secret: s3cret}
      - {address: \"127.0.0.2:1645\", secret: other}
    timeout: 500ms
    retries: 0
",
    );
    let c = ok(&text);
    let v = c.auth.virtual_http.as_ref().expect("virtual_http");
    assert_eq!((v.address, v.port), (ip("198.18.0.254"), 8888));
    assert_eq!(v.authority(), "login.example.test:8888");
    let r = c.auth.radius.as_ref().expect("radius");
    assert_eq!(
        r.servers
            .iter()
            .map(|s| (s.address, s.port, s.secret.as_str()))
            .collect::<Vec<_>>(),
        [
            (ip("127.0.0.1"), 1812, "s3cret"),
            (ip("127.0.0.2"), 1645, "other")
        ]
    );
    assert_eq!(
        (r.timeout, r.retries, r.nas_identifier.as_str()),
        (Duration::from_millis(500), 0, "cutthrough")
    );
    assert!(
        !format!("{r:?}").contains("s3cret"),
        "the secret stays out of logs"
    );
    let login = |i: usize| c.policy[i].login;
    assert_eq!(
        login(3),
        RuleLogin {
            backend: Backend::RadiusThenLocal,
            scope: LoginScope::Shared,
            http: HttpLogin::Virtual
        }
    );
    assert_eq!(
        (login(4).backend, login(4).scope),
        (Backend::Radius, LoginScope::Rule)
    );
    assert_eq!(login(5).http, HttpLogin::InBand);
    assert_eq!(login(2), RuleLogin::default(), "a line rule: local, shared");
    assert_eq!(c.policy[5].label(5), "#5");
    // A RADIUS-only box needs no local users.
    let cut = text.find("users:").unwrap();
    let no_users = text[..cut].replace("auth: line\n", "auth: line\n    backend: radius\n");
    let c = ok(&no_users
        .replace("backend: radius-then-local", "backend: radius")
        .replace(
            "http_login: in-band}",
            "http_login: in-band, backend: radius}",
        ));
    assert!(c.users.is_empty());
}

#[test]
fn login_settings_errors() {
    let text = edit(
        "  - action: deny\n",
        "  - {protocol: tcp, ports: [80], action: proxy, auth: line}\n  - action: deny\n",
    );
    let bad = |from: &str, to: &str| err(&text.replace(from, to));
    assert_eq!(
        bad("auth: line}", "auth: line, http_login: in-band}"),
        "t.yaml:30: policy[3].http_login: `http_login` is only allowed with auth http-basic"
    );
    assert_eq!(
        bad("action: proxy, auth: line}", "action: pass, backend: local}"),
        "t.yaml:30: policy[3].backend: `backend` is only allowed with action proxy and an auth method"
    );
    assert_eq!(
        bad("auth: line}", "auth: none, login: rule}"),
        "t.yaml:30: policy[3].login: `login` is only allowed with action proxy and an auth method"
    );
    let with_auth = |auth: &str| err(&format!("{text}auth:\n{auth}"));
    assert_eq!(
        with_auth("  virtual_http: {address: 198.18.0.254, port: 0}\n"),
        "t.yaml:36: auth.virtual_http.port: 0 is not a port (1-65535)"
    );
    assert_eq!(
        with_auth("  virtual_http: {address: 198.18.0.254, host: \"bad host\"}\n"),
        "t.yaml:36: auth.virtual_http.host: \"bad host\" is not a host name (letters, digits, '-' and '.')"
    );
    assert_eq!(
        with_auth("  radius: {servers: []}\n"),
        "t.yaml:36: auth.radius.servers: list 1 to 4 servers, asked in order"
    );
    assert_eq!(
        with_auth("  radius: {servers: [{address: \"127.0.0.1:0\", secret: s}]}\n"),
        "t.yaml:36: auth.radius.servers[0].address: \"0\" is not a port (1-65535)"
    );
    assert_eq!(
        with_auth("  radius: {servers: [{address: 127.0.0.1, secret: s}], timeout: 90s}\n"),
        "t.yaml:36: auth.radius.timeout: the time to wait for an answer must be between 100ms and 60s"
    );
    assert_eq!(
        with_auth("  radius: {servers: [{address: 127.0.0.1, secret: s}], retries: 11}\n"),
        "t.yaml:36: auth.radius.retries: 11 is more than 10"
    );
}

/// A packet from the client (198.18.0.1, inside) to the server (198.19.0.2, outside).
fn outbound(protocol: u8, dport: Option<u16>) -> Traffic {
    Traffic {
        from: Zone::Inside,
        to: Zone::Outside,
        protocol,
        src: ip("198.18.0.1"),
        dst: ip("198.19.0.2"),
        dport,
    }
}

#[test]
fn match_rule_first_match_wins() {
    let c = ok(&edit(
        "  - name: icmp\n",
        "  - name: no-telnet-from-outside
    zone: outside
    protocol: tcp
    source: 203.0.113.0/24
    destination: 198.18.0.0/24
    ports: [2323]
    action: deny
  - name: icmp\n",
    ));
    let (inside, outside) = (Zone::Inside, Zone::Outside);
    // (zone, protocol, source, destination, port, the rule that matches)
    for (i, (zone, proto, src, dst, port, want)) in [
        (inside, 1, "198.18.0.1", "198.19.0.2", None, Some(1)),
        (outside, 1, "198.19.0.2", "198.18.0.1", None, Some(1)),
        (inside, 6, "198.18.0.1", "198.19.0.2", Some(5201), Some(2)),
        (inside, 6, "198.18.0.1", "198.19.0.2", Some(5210), Some(2)),
        (inside, 6, "198.18.0.1", "198.19.0.2", Some(8080), Some(2)),
        (inside, 6, "198.18.0.1", "198.19.0.2", Some(5211), Some(4)),
        (inside, 6, "198.18.0.1", "198.19.0.2", Some(2323), Some(3)),
        // The first rule only for its zone and source.
        (outside, 6, "203.0.113.9", "198.18.0.1", Some(2323), Some(0)),
        (outside, 6, "192.0.2.9", "198.18.0.1", Some(2323), Some(3)),
        (inside, 6, "203.0.113.9", "198.18.0.1", Some(2323), Some(3)),
        // A port rule never matches a packet without ports.
        (inside, 6, "198.18.0.1", "198.19.0.2", None, Some(4)),
        (inside, 17, "198.18.0.1", "198.19.0.2", Some(53), Some(4)),
    ]
    .into_iter()
    .enumerate()
    {
        let t = Traffic {
            from: zone,
            to: if zone == inside { outside } else { inside },
            protocol: proto,
            src: ip(src),
            dst: ip(dst),
            dport: port,
        };
        let got = first_match(&c.policy, &t).map(|(i, _)| i);
        assert_eq!(
            got, want,
            "case {i}: {zone:?} {proto} {src} -> {dst} {port:?}"
        );
    }
    let (_, r) = first_match(&c.policy, &outbound(6, Some(2323))).unwrap();
    assert!(matches!(r.action, Action::Proxy { .. }));
}

#[test]
fn users_verify() {
    let c = ok(&base());
    let alice = c.user("alice").unwrap();
    assert!(alice.verify(b"secret"));
    assert!(!alice.verify(b"Secret"));
    assert!(!alice.verify(b""));
    assert!(c.user("bob").is_none());
    assert!(!format!("{alice:?}").contains("argon2"), "no hash in Debug");
}

#[test]
fn hash_password_round_trip() {
    let h = hash_password(b"wonderland").unwrap();
    assert!(h.starts_with("$argon2id$v=19$"), "{h}");
    let c = ok(&BASE.replace("HASH", &h));
    assert!(c.users[0].verify(b"wonderland"));
    assert!(!c.users[0].verify(b"wonderlan"));
}

// ---- syntax errors: FILE:LINE:COLUMN: MESSAGE ----

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let e = err(&edit("  - to: 0.0.0.0/0", "  - to: 0.0.0.0/0: x"));
    assert_eq!(
        e,
        "t.yaml:13:18: mapping values are not allowed in this context"
    );
    // libyaml's context keeps its own position; only the leading one moves to the front.
    let e = err(&edit("    auth: line", "    auth: \"line"));
    assert_eq!(
        e,
        "t.yaml:34:1: found unexpected end of stream, while scanning a quoted scalar at line 29 column 11"
    );
}

#[test]
fn unknown_field() {
    assert_eq!(
        err(&edit("    device: net_af_packet1", "    devcie: net_af_packet1")),
        "t.yaml:9:5: interfaces[1]: unknown field `devcie`, expected one of `name`, `zone`, `device`, `mac`, `addresses`, `mtu`, `rx_queues`, `tx_queues`, `rx_descriptors`, `tx_descriptors`, `vlans`"
    );
    err_starts(
        &(base() + "dmz: {}\n"),
        "t.yaml:34:1: unknown field `dmz`, expected one of",
    );
}

#[test]
fn route_via_unknown_interface() {
    assert_eq!(
        err(&edit("    interface: outside", "    interface: dmz")),
        "t.yaml:15: routes[0].interface: no interface is called `dmz`: name a port, or PORT.ID for a VLAN (the box has inside, outside)"
    );
}

#[test]
fn proxy_with_unknown_auth_method() {
    assert_eq!(
        err(&edit("    auth: line", "    auth: kerberos")),
        "t.yaml:29:11: policy[2].auth: unknown variant `kerberos`, expected one of `none`, `line`, `http-basic`"
    );
}

#[test]
fn empty_and_odd_files() {
    let e = err("");
    assert!(e.starts_with("t.yaml"), "{e}");
    let e = err(&(base() + "---\nx: 1\n"));
    assert!(e.contains("more than one document"), "{e}");
    assert_eq!(
        err("interfaces: {}\n"),
        "t.yaml:1: interfaces: must be a list of ports now, not a map: write one item per port, each like `- name: inside` / `zone: inside` / `device: ...`, its other keys as before"
    );
    assert_eq!(
        err("interfaces:\n"),
        "t.yaml:1: interfaces: needs at least one port: `- name: inside` / `zone: inside` / `device: ...`"
    );
}

#[test]
fn to_zone_matches_where_the_route_leaves() {
    let c = ok(&edit(
        "  - name: icmp\n",
        "  - {name: inward, zone: any, to_zone: inside, action: deny}\n  - name: icmp\n",
    ));
    assert_eq!(
        (c.policy[0].to_zone, c.policy[1].to_zone),
        (Zone::Inside, Zone::Any)
    );
    let inbound = Traffic {
        from: Zone::Outside,
        to: Zone::Inside,
        ..outbound(1, None)
    };
    assert_eq!(first_match(&c.policy, &inbound).map(|(i, _)| i), Some(0));
    assert_eq!(
        first_match(&c.policy, &outbound(1, None)).map(|(i, _)| i),
        Some(1)
    );
    let e = err(&edit(
        "  - name: icmp\n",
        "  - {to_zone: dmz, action: deny}\n  - name: icmp\n",
    ));
    assert!(
        e.contains("policy[0].to_zone: unknown variant `dmz`"),
        "{e}"
    );
}
