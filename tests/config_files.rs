//! The shipped configurations and the operator-facing errors, through the real binary:
//! every `config/*.yaml` passes `cutthrough check-config`, every fixture in
//! `tests/bad-configs/` fails with exit status 2 and exactly the expected one-line message,
//! and a hash made by `cutthrough hash-password` is accepted and verifies.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::config::{self, Action, AuthMethod, Protocol, SplicePoint};

const BIN: &str = env!("CARGO_BIN_EXE_cutthrough");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Fixture → the exact line `check-config` prints to stderr. Paths are relative to the
/// package root, as an operator would type them.
const BAD: &[(&str, &str)] = &[
    (
        "syntax-error.yaml",
        "tests/bad-configs/syntax-error.yaml:14:17: mapping values are not allowed in this context",
    ),
    (
        "unknown-field.yaml",
        "tests/bad-configs/unknown-field.yaml:6:5: interfaces[0]: unknown field `address`, expected one of `name`, `zone`, `device`, `mac`, `addresses`, `mtu`, `rx_queues`, `tx_queues`, `rx_descriptors`, `tx_descriptors`, `vlans`",
    ),
    (
        "interfaces-old-form.yaml",
        "tests/bad-configs/interfaces-old-form.yaml:2: interfaces: must be a list of ports now, not a map: write one item per port (inside, outside), each like `- name: inside` / `zone: inside` / `device: ...`, its other keys as before",
    ),
    (
        "bad-cidr.yaml",
        "tests/bad-configs/bad-cidr.yaml:8: interfaces[0].addresses[0]: `198.18.0.300/24` is not a CIDR prefix: `198.18.0.300` is not an IPv4 address",
    ),
    (
        "overlapping-subnets.yaml",
        "tests/bad-configs/overlapping-subnets.yaml:12: interfaces[1].addresses[1]: subnet 198.18.0.0/15 overlaps 198.18.0.0/24, a subnet of interface inside (interfaces[0].addresses[0]); each interface must have subnets of its own",
    ),
    (
        "vlan-subnet-overlaps-port.yaml",
        "tests/bad-configs/vlan-subnet-overlaps-port.yaml:14: interfaces[1].vlans[0].addresses[0]: subnet 198.18.0.0/16 overlaps 198.18.0.0/24, a subnet of interface inside (interfaces[0].addresses[0]); each interface must have subnets of its own",
    ),
    (
        "vlan-id-twice.yaml",
        "tests/bad-configs/vlan-id-twice.yaml:10: interfaces[0].vlans[1].id: VLAN 100 is listed twice (also interfaces[0].vlans[0])",
    ),
    (
        "interface-zone-any.yaml",
        "tests/bad-configs/interface-zone-any.yaml:8: interfaces[1].zone: `any` is only for policy rules: an interface is in zone inside or outside",
    ),
    (
        "route-unknown-interface.yaml",
        "tests/bad-configs/route-unknown-interface.yaml:17: routes[0].interface: no interface is called `inside.200`: name a port, or PORT.ID for a VLAN (the box has inside, inside.100, outside)",
    ),
    (
        "route-via-not-connected.yaml",
        "tests/bad-configs/route-via-not-connected.yaml:13: routes[0].via: gateway 198.18.0.1 is not in a connected subnet of interface outside (198.19.0.0/24)",
    ),
    (
        "duplicate-users.yaml",
        "tests/bad-configs/duplicate-users.yaml:16: users[2].name: duplicate user `alice` (also users[0])",
    ),
    (
        "unknown-auth.yaml",
        "tests/bad-configs/unknown-auth.yaml:15:11: policy[0].auth: unknown variant `kerberos`, expected one of `none`, `line`, `http-basic`",
    ),
    (
        "proxy-without-users.yaml",
        "tests/bad-configs/proxy-without-users.yaml:15: policy[0].auth: auth line with backend local needs users, but no users are configured",
    ),
    (
        "empty-port-range.yaml",
        "tests/bad-configs/empty-port-range.yaml:15: policy[0].ports[1]: `5210-5201` is an empty port range: 5210 is greater than 5201",
    ),
    (
        "ports-for-icmp.yaml",
        "tests/bad-configs/ports-for-icmp.yaml:13: policy[0].ports: ports are only allowed with protocol tcp or udp (this rule's protocol is icmp)",
    ),
    (
        "plain-text-password.yaml",
        "tests/bad-configs/plain-text-password.yaml:13: users[0].password: plain-text passwords are not accepted: put an argon2 hash in `password_hash` (make one with `cutthrough hash-password`)",
    ),
    (
        "bad-hash.yaml",
        "tests/bad-configs/bad-hash.yaml:13: users[0].password_hash: a `2b` hash: only argon2 (argon2id, argon2i, argon2d) is accepted; make one with `cutthrough hash-password`",
    ),
    (
        "bad-device.yaml",
        "tests/bad-configs/bad-device.yaml:5: interfaces[0].device: `eth0` is neither a PCI address (DDDD:BB:DD.F, like 0000:03:00.0) nor a DPDK virtual device (net_<driver><n>[,args], like net_af_packet0,iface=ct-in0)",
    ),
    (
        "bad-mac.yaml",
        "tests/bad-configs/bad-mac.yaml:10: interfaces[1].mac: `02:00:00:00:01` is not a MAC address (like 02:00:00:00:00:01)",
    ),
    (
        "too-few-queues.yaml",
        "tests/bad-configs/too-few-queues.yaml:7: interfaces[0].rx_queues: 2 is too few for 4 workers: each worker needs its own RX queue (at least 4)",
    ),
    (
        "rx-queues-unpolled.yaml",
        "tests/bad-configs/rx-queues-unpolled.yaml:11: interfaces[1].rx_queues: 4 RX queues for 2 workers: worker i polls queue i, so a queue beyond 2 would never be read (the packets the NIC spreads to it lost); give as many as workers, or leave it out",
    ),
    (
        "capture-file-too-small.yaml",
        "tests/bad-configs/capture-file-too-small.yaml:14: capture.drops.file_size: 65536 bytes cannot hold a packet of snaplen 65535 and the file's headers: at least 69631",
    ),
    (
        "client-mss-too-small.yaml",
        "tests/bad-configs/client-mss-too-small.yaml:12: proxy.client_mss: 500: must be from 536 to 65495 bytes",
    ),
    (
        "server-options-too-old.yaml",
        "tests/bad-configs/server-options-too-old.yaml:14: proxy.server_options.max_age: 691200s: must be from 1s to 7d",
    ),
    (
        "duplicate-lcores.yaml",
        "tests/bad-configs/duplicate-lcores.yaml:13: workers.lcores[1]: lcore 1 is listed twice (also workers.lcores[0])",
    ),
    (
        "virtual-http-not-own.yaml",
        "tests/bad-configs/virtual-http-not-own.yaml:13: auth.virtual_http.address: 198.18.0.77 is not one of the box's addresses (the `addresses` of a port or a VLAN)",
    ),
    (
        "http-basic-without-virtual-http.yaml",
        "tests/bad-configs/http-basic-without-virtual-http.yaml:15: policy[0].auth: auth http-basic asks for the password at the box's virtual HTTP origin: set auth.virtual_http (an address of the box), or `http_login: in-band` on the rule (the browser then sends the password to the server with every request)",
    ),
    (
        "radius-without-servers.yaml",
        "tests/bad-configs/radius-without-servers.yaml:16: policy[0].backend: backend radius needs auth.radius",
    ),
    (
        "radius-empty-secret.yaml",
        "tests/bad-configs/radius-empty-secret.yaml:15: auth.radius.servers[0].secret: the shared secret must have 1 to 128 bytes",
    ),
    (
        "login-rule-without-name.yaml",
        "tests/bad-configs/login-rule-without-name.yaml:16: policy[0].login: `login: rule` needs the rule's `name` (its logins are kept under it)",
    ),
];

fn cutthrough(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(ROOT)
        // Logging must not add lines to what the tests compare.
        .env("RUST_LOG", "off")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cutthrough");
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).expect("write stdin");
    }
    child.wait_with_output().expect("wait for cutthrough")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `*.yaml` files in `dir`, sorted, as paths relative to the package root.
fn yaml_files(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(Path::new(ROOT).join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_config_is_ok() {
    let files = yaml_files("config");
    assert!(
        files.iter().any(|f| f == "config/testbed.yaml"),
        "{files:?}"
    );
    for f in &files {
        let out = cutthrough(&["check-config", f], None);
        assert_eq!(
            (
                out.status.code(),
                text(&out.stdout).as_str(),
                text(&out.stderr).as_str()
            ),
            (Some(0), "ok\n", ""),
            "{f}"
        );
    }
}

#[test]
fn every_bad_config_fails_with_its_message() {
    let files = yaml_files("tests/bad-configs");
    let listed: Vec<String> = BAD
        .iter()
        .map(|(f, _)| format!("tests/bad-configs/{f}"))
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        files, sorted,
        "every fixture needs an expected message in BAD, and vice versa"
    );
    for (f, expected) in listed.iter().zip(BAD.iter().map(|(_, m)| m)) {
        let out = cutthrough(&["check-config", f], None);
        assert_eq!(out.status.code(), Some(2), "{f}");
        assert_eq!(text(&out.stdout), "", "{f}");
        assert_eq!(text(&out.stderr), format!("{expected}\n"), "{f}");
    }
}

#[test]
fn run_refuses_a_bad_config() {
    let out = cutthrough(
        &[
            "run",
            "--config",
            "tests/bad-configs/bad-cidr.yaml",
            "--",
            "--no-huge",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bad-cidr.yaml:8: interfaces[0].addresses[0]"));
}

#[test]
fn missing_file_is_an_error() {
    let out = cutthrough(&["check-config", "config/no-such-file.yaml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("config/no-such-file.yaml: cannot read: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_names_the_commit() {
    let out = cutthrough(&["--version"], None);
    assert_eq!(out.status.code(), Some(0));
    let v = text(&out.stdout);
    assert!(
        v.starts_with(&format!("cutthrough {} (", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
}

#[test]
fn hash_password_round_trip() {
    let out = cutthrough(&["hash-password"], Some(b"correct horse\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let hash = text(&out.stdout).trim_end().to_string();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");

    // The testbed config with alice's hash swapped for the new one.
    let testbed = std::fs::read_to_string(Path::new(ROOT).join("config/testbed.yaml")).unwrap();
    let line = testbed
        .lines()
        .find(|l| l.trim_start().starts_with("password_hash:"))
        .expect("a password_hash line in testbed.yaml");
    let edited = testbed.replacen(line, &format!("    password_hash: {hash}"), 1);
    let file: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hashed.yaml");
    std::fs::write(&file, edited).unwrap();

    let out = cutthrough(&["check-config", file.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let c = config::load(&file).unwrap();
    let alice = c.user("alice").unwrap();
    assert_eq!(alice.password_hash, hash);
    assert!(alice.verify(b"correct horse"));
    assert!(!alice.verify(b"correct horse\n"));
    assert!(!alice.verify(b"wonderland"));
}

#[test]
fn hash_password_rejects_empty_input() {
    for input in [&b"\n"[..], b"", b"\r\n"] {
        let out = cutthrough(&["hash-password"], Some(input));
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        assert_eq!(text(&out.stdout), "");
        assert!(text(&out.stderr).contains("empty password"));
    }
}

/// DESIGN.md §9: the testbed's policy and user, which the scripts and tests rely on.
#[test]
fn testbed_matches_the_contract() {
    let c = config::load(&Path::new(ROOT).join("config/testbed.yaml")).unwrap();
    assert!(c.user("alice").unwrap().verify(b"wonderland"));
    assert_eq!(c.workers.count, 1);
    assert!(!c.eal.iter().any(|a| a.contains("huge")));
    let ip = |s: &str| config::parse_ipv4(s).unwrap();
    // Port 0 is `inside` and port 1 `outside`, each in the zone of its name.
    let ports: Vec<(&str, config::Zone)> = c
        .interfaces
        .iter()
        .map(|p| (p.name.as_str(), p.zone))
        .collect();
    assert_eq!(
        ports,
        [
            ("inside", config::Zone::Inside),
            ("outside", config::Zone::Outside)
        ]
    );
    let links = c.links();
    assert!(links[c.iface("inside").unwrap().index()].is_own_address(ip("198.18.0.254")));
    assert!(links[c.iface("outside").unwrap().index()].is_own_address(ip("198.19.0.254")));
    let proxy = |auth, splice| Action::Proxy { auth, splice };
    let tcp = |port, action| (Protocol::Tcp, Some(port), action);
    let expect = [
        (Protocol::Icmp, None, Action::Pass),
        tcp(5201, Action::Pass),
        tcp(5210, Action::Pass),
        tcp(
            8080,
            proxy(AuthMethod::HttpBasic, SplicePoint::AfterRequest),
        ),
        tcp(2323, proxy(AuthMethod::Line, SplicePoint::AfterAuth)),
        tcp(9000, proxy(AuthMethod::None, SplicePoint::AfterAuth)),
        tcp(9001, proxy(AuthMethod::None, SplicePoint::Never)),
        tcp(80, proxy(AuthMethod::HttpBasic, SplicePoint::AfterRequest)),
        tcp(5211, Action::Deny),
        tcp(81, Action::Deny),
        (Protocol::Udp, Some(5201), Action::Deny),
        (Protocol::Udp, Some(53), Action::Pass),
        (Protocol::Udp, Some(123), Action::Pass),
    ];
    let (client, server) = (ip("198.18.0.1"), ip("198.19.0.2"));
    for (proto, port, action) in expect {
        let number = proto.number().unwrap();
        let t = config::Traffic {
            from: config::Zone::Inside,
            to: config::Zone::Outside,
            protocol: number,
            src: client,
            dst: server,
            dport: port,
        };
        let (_, rule) = config::first_match(&c.policy, &t)
            .unwrap_or_else(|| panic!("{proto} {port:?}: no rule"));
        assert_eq!(rule.action, action, "{proto} {port:?}");
    }
    // Browsers log in at the box's own origin for port 80; 8080 keeps the in-band exchange.
    let web = c.auth.virtual_http.as_ref().expect("auth.virtual_http");
    assert_eq!(web.address, ip("198.18.0.254"));
    let http = |port| {
        c.policy
            .iter()
            .find(|r| r.ports.iter().any(|p| p.contains(port)))
            .map(|r| r.login.http)
    };
    assert_eq!(http(80), Some(config::HttpLogin::Virtual));
    assert_eq!(http(8080), Some(config::HttpLogin::InBand));
    // The rules come in the order §9 lists them.
    let actions: Vec<Action> = c.policy.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        vec![
            Action::Pass,
            Action::Pass,
            proxy(AuthMethod::HttpBasic, SplicePoint::AfterRequest),
            proxy(AuthMethod::HttpBasic, SplicePoint::AfterRequest),
            proxy(AuthMethod::Line, SplicePoint::AfterAuth),
            proxy(AuthMethod::None, SplicePoint::AfterAuth),
            proxy(AuthMethod::None, SplicePoint::Never),
            Action::Pass,
            Action::Deny,
        ]
    );
}

/// The drop capture `config/testbed.yaml` shows commented out is valid once uncommented, and
/// is the defaults it says it is.
#[test]
fn testbed_capture_example_is_valid() {
    let testbed = std::fs::read_to_string(Path::new(ROOT).join("config/testbed.yaml")).unwrap();
    let example: Vec<&str> = testbed
        .lines()
        .skip_while(|l| *l != "# capture:")
        .map(|l| {
            l.strip_prefix("# ")
                .expect("the example runs to the end of the file")
        })
        .collect();
    assert_eq!(example.len(), 7, "{example:?}");
    let text = format!("{testbed}\n{}\n", example.join("\n"));
    let c = config::parse(&text, "testbed.yaml").unwrap();
    let d = c
        .capture
        .drops
        .expect("the example enables the drop capture");
    assert_eq!(d.path, Path::new("/var/log/cutthrough/drops.pcapng"));
    let defaults = (
        config::DropCapture::DEFAULT_FILE_SIZE,
        config::DropCapture::DEFAULT_FILES,
        config::DropCapture::DEFAULT_RATE,
        config::DropCapture::DEFAULT_SNAPLEN,
    );
    assert_eq!((d.file_size, d.files, d.rate, d.snaplen), defaults);
    // As shipped, nothing is captured.
    let shipped = config::load(&Path::new(ROOT).join("config/testbed.yaml")).unwrap();
    assert_eq!(shipped.capture.drops, None);
}

/// The VLAN `config/two-port.yaml` shows commented out is valid once uncommented: an
/// interface `inside.20` of its own, between its port and the next port in `Iface` order.
#[test]
fn two_port_vlan_example_is_valid() {
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("config/two-port.yaml")).unwrap();
    let example = "    # vlans:\n    #   - id: 20\n    #     zone: outside\n    #     addresses: [198.18.20.1/24]\n";
    assert!(
        shipped.contains(example),
        "the example as this test knows it"
    );
    let text = shipped.replacen(example, &example.replace("# ", ""), 1);
    let c = config::parse(&text, "two-port.yaml").unwrap();
    let names: Vec<String> = c.links().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["inside", "inside.20", "outside"]);
    let vlan = &c.links()[1];
    assert_eq!((vlan.vlan, vlan.zone), (Some(20), config::Zone::Outside));
    // The default route still goes out of `outside`, now the third interface.
    assert_eq!(c.routes[0].interface, config::Iface(2));
    assert_eq!(c.routes[1].interface, config::Iface(0));
}
