//! Every semantic check with its exact message: `FILE:LINE: PATH: MESSAGE`. Line numbers
//! refer to `BASE` in the parent module.

use super::*;

#[test]
fn bad_cidr() {
    errs([
        (
            edit("[198.18.0.254/24]", "[198.18.0.300/24]"),
            "t.yaml:6: interfaces[0].addresses[0]: `198.18.0.300/24` is not a CIDR prefix: `198.18.0.300` is not an IPv4 address",
        ),
        (
            edit("- 198.19.0.254/24", "- 198.19.0.254/33"),
            "t.yaml:11: interfaces[1].addresses[0]: `198.19.0.254/33` is not a CIDR prefix: the length `33` is not in 0..=32",
        ),
        (
            edit("- 198.19.0.254/24", "- 198.19.0.254"),
            "t.yaml:11: interfaces[1].addresses[0]: `198.19.0.254` is not a CIDR prefix: missing `/length` (write `198.19.0.254/32` for one address)",
        ),
        (
            edit("  - to: 0.0.0.0/0", "  - to: 198.51.100.1/24"),
            "t.yaml:13: routes[0].to: `198.51.100.1/24` has host bits set (did you mean 198.51.100.0/24?)",
        ),
    ]);
}

#[test]
fn bad_interface_address() {
    errs([
        (
            edit("[198.18.0.254/24]", "[198.18.0.0/24]"),
            "t.yaml:6: interfaces[0].addresses[0]: `198.18.0.0/24` is the subnet's network address; give the box's own address, like 198.18.0.1",
        ),
        (
            edit("[198.18.0.254/24]", "[198.18.0.255/24]"),
            "t.yaml:6: interfaces[0].addresses[0]: `198.18.0.255/24` is the subnet's broadcast address",
        ),
        (
            edit("[198.18.0.254/24]", "[]"),
            "t.yaml:6: interfaces[0].addresses: needs at least one address (or VLANs that have them): the box's own address with its subnet's length, like 198.18.0.254/24",
        ),
    ]);
}

#[test]
fn bad_via() {
    errs([
        (
            edit("via: 198.19.0.1", "via: 198.19.0.999"),
            "t.yaml:14: routes[0].via: `198.19.0.999` is not an IPv4 address (a.b.c.d)",
        ),
        (
            edit("via: 198.19.0.1", "via: 198.18.0.1"),
            "t.yaml:14: routes[0].via: gateway 198.18.0.1 is not in a connected subnet of interface outside (198.19.0.0/24)",
        ),
        (
            edit("via: 198.19.0.1", "via: 198.19.0.254"),
            "t.yaml:14: routes[0].via: gateway 198.19.0.254 is the box's own address",
        ),
    ]);
}

#[test]
fn overlapping_subnets() {
    assert_eq!(
        err(&edit("- 198.19.0.254/24", "- 198.18.128.1/16")),
        "t.yaml:11: interfaces[1].addresses[0]: subnet 198.18.0.0/16 overlaps 198.18.0.0/24, a subnet of interface inside (interfaces[0].addresses[0]); each interface must have subnets of its own"
    );
}

#[test]
fn same_device_twice() {
    assert_eq!(
        err(&edit("net_af_packet1,iface=ct-out0", "net_af_packet0,iface=ct-out0")),
        "t.yaml:9: interfaces[1].device: `net_af_packet0,iface=ct-out0` is also the device of interfaces[0] (inside); each port must be a different device"
    );
}

#[test]
fn bad_device() {
    let msg = "is neither a PCI address (DDDD:BB:DD.F, like 0000:03:00.0) nor a DPDK virtual device (net_<driver><n>[,args], like net_af_packet0,iface=ct-in0)";
    for dev in [
        "eth0",
        "'03:00.0'",
        "'0000:03:00.8'",
        "'0000:03:20.0'",
        "'0000:3:00.0'",
        "net_",
        "'net_x y'",
    ] {
        let e = err(&edit("net_af_packet0,iface=ct-in0", dev));
        let shown = dev.trim_matches('\'');
        assert_eq!(
            e,
            format!("t.yaml:5: interfaces[0].device: `{shown}` {msg}"),
            "{dev}"
        );
    }
}

#[test]
fn bad_mac() {
    let with_mac = |m: &str| {
        edit(
            "    device: net_af_packet1,iface=ct-out0\n",
            &format!("    device: net_af_packet1,iface=ct-out0\n    mac: {m}\n"),
        )
    };
    errs([
        (
            with_mac("02:00:00:00:00"),
            "t.yaml:10: interfaces[1].mac: `02:00:00:00:00` is not a MAC address (like 02:00:00:00:00:01)",
        ),
        (
            with_mac("03:00:00:00:00:01"),
            "t.yaml:10: interfaces[1].mac: `03:00:00:00:00:01` is a multicast address; a port needs a unicast MAC",
        ),
        (
            with_mac("00:00:00:00:00:00"),
            "t.yaml:10: interfaces[1].mac: `00:00:00:00:00:00` is the all-zero MAC",
        ),
    ]);
}

#[test]
fn interface_numbers() {
    let set = |line: &str| {
        edit(
            "    device: net_af_packet0,iface=ct-in0\n",
            &format!("    device: net_af_packet0,iface=ct-in0\n    {line}\n"),
        )
    };
    errs([
        (
            set("mtu: 67"),
            "t.yaml:6: interfaces[0].mtu: MTU 67 is out of range 68..=9216",
        ),
        (
            set("rx_descriptors: 1000"),
            "t.yaml:6: interfaces[0].rx_descriptors: 1000 descriptors: must be a power of two in 64..=16384",
        ),
        (
            set("tx_descriptors: 32768"),
            "t.yaml:6: interfaces[0].tx_descriptors: 32768 descriptors: must be a power of two in 64..=16384",
        ),
    ]);
}

#[test]
fn queues_too_small_for_workers() {
    let four = |line: &str| {
        edit(
            "    device: net_af_packet0,iface=ct-in0\n",
            &format!("    device: net_af_packet0,iface=ct-in0\n    {line}\n"),
        )
        .replacen("  count: 1", "  count: 4", 1)
    };
    errs([
        (
            four("rx_queues: 2"),
            "t.yaml:6: interfaces[0].rx_queues: 2 is too few for 4 workers: each worker needs its own RX queue (at least 4)",
        ),
        (
            four("tx_queues: 3"),
            "t.yaml:6: interfaces[0].tx_queues: 3 is too few for 4 workers: each worker needs its own TX queue (at least 4)",
        ),
    ]);
    ok(&four("tx_queues: 4"));
}

#[test]
fn workers_and_lcores() {
    errs([
        (
            edit("  count: 1", "  count: 0"),
            "t.yaml:17: workers.count: must be at least 1",
        ),
        (
            edit("  count: 1", "  count: 2\n  lcores: [1, 1]"),
            "t.yaml:18: workers.lcores[1]: lcore 1 is listed twice (also workers.lcores[0])",
        ),
        (
            edit("  count: 1", "  count: 2\n  lcores:\n    - 3\n    - 3"),
            "t.yaml:20: workers.lcores[1]: lcore 3 is listed twice (also workers.lcores[0])",
        ),
        (
            edit("  count: 1", "  count: 2\n  lcores: [1, 2, 3]"),
            "t.yaml:18: workers.lcores: lists 3 lcores for 2 workers (give one lcore per worker, or leave `lcores` out)",
        ),
    ]);
}

#[test]
fn ports() {
    errs([
        (
            edit("[5201-5210, 8080]", "[8080, 5210-5201]"),
            "t.yaml:23: policy[1].ports[1]: `5210-5201` is an empty port range: 5210 is greater than 5201",
        ),
        (
            edit("      - 2323", "      - 0"),
            "t.yaml:27: policy[2].ports[0]: port 0 is not a destination port (ports are 1..=65535)",
        ),
        (
            edit("      - 2323", "      - \"2323-\""),
            "t.yaml:27: policy[2].ports[0]: `2323-` is not a port or a port range (LO-HI)",
        ),
        (
            edit("      - 2323", "      - 65536"),
            "t.yaml:27: policy[2].ports[0]: port 65536 is out of range (ports are 1..=65535)",
        ),
        (
            edit("[5201-5210, 8080]", "[]"),
            "t.yaml:23: policy[1].ports: an empty list would match nothing; leave `ports` out to match every port",
        ),
        (
            edit("    protocol: icmp\n", "    protocol: icmp\n    ports: [7]\n"),
            "t.yaml:21: policy[0].ports: ports are only allowed with protocol tcp or udp (this rule's protocol is icmp)",
        ),
    ]);
    err_starts(&edit("      - 2323", "      - 23.5"), "t.yaml:27:9: policy[2].ports[0]: invalid type: floating point `23.5`, expected an integer or a string");
}

#[test]
fn policy_actions() {
    errs([
        (
            edit("    auth: line\n", ""),
            "t.yaml:28: policy[2].action: action proxy needs `auth`: none, line or http-basic",
        ),
        (
            edit("  - protocol: tcp\n    ports:\n", "  - protocol: udp\n    ports:\n"),
            "t.yaml:28: policy[2].action: action proxy needs protocol tcp (this rule's protocol is udp)",
        ),
        (
            edit(
                "    action: pass\n  - protocol: tcp\n    ports:\n",
                "    action: pass\n    splice: never\n  - protocol: tcp\n    ports:\n",
            ),
            "t.yaml:25: policy[1].splice: `splice` is only allowed with action proxy",
        ),
        (
            edit("  - action: deny", "  - action: deny\n    auth: none"),
            "t.yaml:31: policy[3].auth: `auth` is only allowed with action proxy",
        ),
        (
            edit("  - action: deny", "  - action: allow"),
            "t.yaml:30:13: policy[3].action: unknown variant `allow`, expected one of `deny`, `pass`, `proxy`",
        ),
        (
            edit("  - name: icmp\n", "  - name: icmp\n    source: 198.18.0.1/24\n"),
            "t.yaml:20: policy[0].source: `198.18.0.1/24` has host bits set (did you mean 198.18.0.0/24?)",
        ),
    ]);
}

#[test]
fn proxy_auth_without_users() {
    let text = base();
    let cut = text.find("users:").unwrap();
    assert_eq!(
        err(&text[..cut]),
        "t.yaml:29: policy[2].auth: auth line with backend local needs users, but no users are configured"
    );
}

#[test]
fn users_checks() {
    let second = |s: &str| base() + s;
    errs([
        (
            second(&format!(
                "  - name: alice\n    password_hash: {}\n",
                cheap_hash()
            )),
            "t.yaml:34: users[1].name: duplicate user `alice` (also users[0])",
        ),
        (
            second("  - name: bob\n    password: hunter2\n"),
            "t.yaml:35: users[1].password: plain-text passwords are not accepted: put an argon2 hash in `password_hash` (make one with `cutthrough hash-password`)",
        ),
        (
            second("  - name: bob\n"),
            "t.yaml:34: users[1]: missing `password_hash` (make one with `cutthrough hash-password`)",
        ),
        (
            second("  - name: 'bob smith'\n    password_hash: x\n"),
            "t.yaml:34: users[1].name: `bob smith` is not a user name: names must be non-empty, without spaces, control characters or `:`",
        ),
    ]);
}

#[test]
fn bad_password_hash() {
    let h = |s: &str| err(&BASE.replace("HASH", s));
    let e = h("wonderland");
    assert!(
        e.starts_with("t.yaml:33: users[0].password_hash: not an argon2 PHC string like $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH ("),
        "{e}"
    );
    assert!(
        e.ends_with("); make one with `cutthrough hash-password`"),
        "{e}"
    );
    assert_eq!(
        h("'$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA'"),
        "t.yaml:33: users[0].password_hash: a `pbkdf2-sha256` hash: only argon2 (argon2id, argon2i, argon2d) is accepted; make one with `cutthrough hash-password`"
    );
    assert_eq!(
        h("'$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ'"),
        "t.yaml:33: users[0].password_hash: the hash has no salt or no output; make one with `cutthrough hash-password`"
    );
    assert_eq!(
        h("'$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW'"),
        "t.yaml:33: users[0].password_hash: a `2b` hash: only argon2 (argon2id, argon2i, argon2d) is accepted; make one with `cutthrough hash-password`"
    );
    let e = h("'$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA'");
    assert!(
        e.starts_with("t.yaml:33: users[0].password_hash: bad argon2 parameters ("),
        "{e}"
    );
}

#[test]
fn flow_table_and_durations() {
    let ft = |s: &str| base() + s;
    assert_eq!(
        err(&ft("flow_table:\n  capacity: 1000\n")),
        "t.yaml:35: flow_table.capacity: 1000 flows: must be from 1024 to 268435456 (like 65536 or 1000000)"
    );
    // Any size from 1024 up: the table is sized to it exactly.
    assert_eq!(
        ok(&ft("flow_table:\n  capacity: 1500\n"))
            .flow_table
            .capacity,
        1500
    );
    errs([
        (
            ft("flow_table:\n  timeouts:\n    udp: 30x\n"),
            "t.yaml:36: flow_table.timeouts.udp: `30x` is not a duration: unknown unit `x` (use ms, s, m, h or d)",
        ),
        (
            ft("flow_table:\n  timeouts:\n    established: 24d\n"),
            "t.yaml:36: flow_table.timeouts.established: `24d` is too long: durations must be below 24 days (the fast path keeps time in wrapping 32-bit milliseconds)",
        ),
        (
            ft("flow_table:\n  timeouts: {close: 0}\n"),
            "t.yaml:35: flow_table.timeouts.close: `0` is zero: durations must be greater than zero",
        ),
        (
            ft("auth:\n  cache_timeout: -5\n"),
            "t.yaml:35: auth.cache_timeout: `-5` is not a duration (write seconds as an integer, or a number with a unit: ms, s, m, h, d)",
        ),
    ]);
}

#[test]
fn drop_capture_checks() {
    let cap = |s: &str| base() + "capture:\n  drops:\n    path: /tmp/d.pcapng\n" + s;
    errs([
        (
            cap("    file_size: 16MB\n"),
            "t.yaml:37: capture.drops.file_size: `16MB` is not a size: unknown unit `MB` (use KiB, MiB or GiB)",
        ),
        (
            cap("    file_size: 65535\n"),
            "t.yaml:37: capture.drops.file_size: 65535 bytes is too small: at least 65536 (64KiB)",
        ),
        (
            cap("    file_size: 64KiB\n    snaplen: 65535\n"),
            "t.yaml:37: capture.drops.file_size: 65536 bytes cannot hold a packet of snaplen 65535 and the file's headers: at least 69631",
        ),
        (
            cap("    files: 0\n"),
            "t.yaml:37: capture.drops.files: 0 files: must be from 1 to 1000",
        ),
        (
            cap("    rate: 0\n"),
            "t.yaml:37: capture.drops.rate: 0 packets per second: must be from 1 to 100000",
        ),
        (
            cap("    rate: 100001\n"),
            "t.yaml:37: capture.drops.rate: 100001 packets per second: must be from 1 to 100000",
        ),
        (
            cap("    snaplen: 63\n"),
            "t.yaml:37: capture.drops.snaplen: 63 bytes: must be from 64 to 65535",
        ),
        (
            cap("    snaplen: 65536\n"),
            "t.yaml:37: capture.drops.snaplen: 65536 bytes: must be from 64 to 65535",
        ),
        (
            edit("  count: 1", "  count: 3")
                + "capture:\n  drops:\n    path: /tmp/d.pcapng\n    rate: 2\n",
            "t.yaml:37: capture.drops.rate: 2 packets per second is less than one per worker (3 workers share the rate)",
        ),
        (
            base() + "capture:\n  drops:\n    path: /var/log/\n",
            "t.yaml:36: capture.drops.path: `/var/log/` is not a file path (like /var/log/cutthrough/drops.pcapng)",
        ),
    ]);
    // Missing and unknown keys are serde's, with line and column.
    assert_eq!(
        err(&(base() + "capture:\n  drops:\n    files: 2\n")),
        "t.yaml:36:5: capture.drops: missing field `path`"
    );
    err_starts(
        &(base() + "capture:\n  drops:\n    path: d\n    size: 1\n"),
        "t.yaml:37:5: capture.drops: unknown field `size`, expected one of",
    );
}

#[test]
fn error_formats() {
    let e = ConfigError::Semantic {
        file: "f.yaml".into(),
        line: None,
        path: "policy[3]".into(),
        message: "m".into(),
    };
    assert_eq!(e.to_string(), "f.yaml: policy[3]: m");
    let e = ConfigError::Syntax {
        file: "f.yaml".into(),
        line: Some(3),
        column: Some(7),
        message: "m".into(),
    };
    assert_eq!(e.to_string(), "f.yaml:3:7: m");
    let e = load(std::path::Path::new("/nonexistent/x.yaml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.yaml: cannot read: "),
        "{e}"
    );
}

#[test]
fn semantic_line_inside_flow_and_fallback() {
    // `workers` written in flow style: the path inside is found on its line.
    assert_eq!(
        err(&edit("workers:\n  count: 1", "workers: {count: 0}")),
        "t.yaml:16: workers.count: must be at least 1"
    );
    // A flow list over two lines: the item's line is not known, its key's line is.
    assert_eq!(
        err(&edit("[198.18.0.254/24]", "[\n      198.18.0.300/24]")),
        "t.yaml:6: interfaces[0].addresses[0]: `198.18.0.300/24` is not a CIDR prefix: `198.18.0.300` is not an IPv4 address"
    );
}

#[test]
fn proxy_limits() {
    let px = |s: &str| base() + s;
    let c = ok(&base());
    assert_eq!(c.proxy, crate::config::types::Proxy::default());
    let c = ok(&px("proxy:\n  max_connections: 100\n  drain_timeout: 2s\n"));
    assert_eq!(c.proxy.max_connections, 100);
    assert_eq!(c.proxy.drain_timeout, std::time::Duration::from_secs(2));
    errs([
        (
            px("proxy:\n  max_connections: 0\n"),
            "t.yaml:35: proxy.max_connections: 0 connections: must be from 1 to 1000000",
        ),
        (
            px("proxy:\n  drain_timeout: 10ms\n"),
            "t.yaml:35: proxy.drain_timeout: 10ms: must be from 100ms to 10m",
        ),
    ]);
    assert!(
        err(&px("proxy:\n  drain_timeout: soon\n")).starts_with("t.yaml:35: proxy.drain_timeout: ")
    );
    assert!(err(&px("proxy:\n  max_conns: 5\n")).contains("max_conns"));
    use crate::config::SynCookies;
    assert_eq!(c.proxy.syn_cookies, SynCookies::Auto);
    for (text, want) in [
        ("auto", SynCookies::Auto),
        ("always", SynCookies::Always),
        ("never", SynCookies::Never),
    ] {
        let c = ok(&px(&format!("proxy:\n  syn_cookies: {text}\n")));
        assert_eq!(c.proxy.syn_cookies, want);
    }
    let e = err(&px("proxy:\n  syn_cookies: sometimes\n"));
    assert!(
        e.starts_with("t.yaml:35:16: proxy.syn_cookies")
            && e.contains("syn_cookies")
            && e.contains("sometimes"),
        "{e}"
    );
}
