#![cfg(feature = "dpdk")]
//! The box on four ports (`config/testbed-multiport.yaml` on `scripts/testbed.sh up
//! --multiport`): two inside ports, one of them carrying only VLAN 100, and two outside ports.
//! From each client (ct-inside on `inside`, ct-inside2 on `inside2.100`) to each server
//! (ct-outside on `outside`, ct-outside2 on `outside2`):
//!
//! 1. ping passes (`icmp`), and `traceroute -I` sees the box's address on the client's own
//!    interface as the first hop, then the server;
//! 2. a few MiB of iperf3 (`iperf3: pass`) go through, and as many with socat arrive
//!    byte-exact (SHA-256);
//! 3. a `line` login on 2323 (`line-auth`) is spliced and echoes 16 KiB byte-exact: the first
//!    server asks for the password, the second does not (one login per client address);
//! 4. `dig` asks dnsmasq in the server's namespace (`dns-ntp`) and gets that server's answer.
//!
//! Then nothing comes in from the outside without a rule: TCP connects (port 7000) from each
//! server to each client fail, with the client's listener idle and `policy_deny` counted, and a
//! UDP datagram from ct-outside2 does not reach ct-inside2. Finally the counters written on
//! SIGTERM show traffic on all four ports.
//!
//! Once over net_af_packet, once over net_af_xdp. Run as root: `cargo test --test
//! e2e_multiport` (about 40 s per port kind).

mod net;

use std::path::Path;
use std::time::Duration;

use net::{counter, ns, python, worker_sum, Background, BoxProcess, TempDir, Testbed};
use net::{BOX_INSIDE_ADDR, CLIENT_ADDR, INSIDE, OUTSIDE, SERVER_ADDR};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/testbed-multiport.yaml");
const LOGIN_HELPER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/login_helper.py");
const UDP_PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/udp_peer.py");

const LINE_PORT: u16 = 2323;
const IPERF_PORT: u16 = 5201;
const IPERF_BYTES: u64 = 4 * 1024 * 1024;
/// In `iperf3`'s range of `pass` ports.
const UPLOAD_PORT: u16 = 5202;
/// Denied by `default-deny` in both directions.
const DENIED_PORT: u16 = 7000;
const DNS_NAME: &str = "www.example.test";

/// A client namespace and the box's address on the interface it is on (its gateway, and
/// what the box answers a TTL running out with).
struct Client {
    ns: &'static str,
    addr: &'static str,
    gateway: &'static str,
}

/// A server namespace and the address its dnsmasq gives for [`DNS_NAME`], so that an
/// answer shows which server gave it.
struct Server {
    ns: &'static str,
    addr: &'static str,
    dns_answer: &'static str,
}

const CLIENTS: [Client; 2] = [
    Client {
        ns: INSIDE,
        addr: CLIENT_ADDR,
        gateway: BOX_INSIDE_ADDR,
    },
    Client {
        ns: "ct-inside2",
        addr: "198.18.1.1",
        gateway: "198.18.1.254",
    },
];

const SERVERS: [Server; 2] = [
    Server {
        ns: OUTSIDE,
        addr: SERVER_ADDR,
        dns_answer: "198.19.0.80",
    },
    Server {
        ns: "ct-outside2",
        addr: "198.19.1.2",
        dns_answer: "198.19.1.80",
    },
];

/// The box's ports, by the names the configuration gives them.
const PORTS: [&str; 4] = ["inside", "outside", "inside2", "outside2"];

/// net_af_packet gets the tag from the kernel beside the frame and puts it back into it;
/// net_af_xdp sees the frame's bytes only, and needs the tag to be in them on the veth (which
/// `scripts/testbed.sh` sees to): both ways must give the box the tag in the frame.
#[test]
fn four_ports_af_packet() {
    four_ports("af_packet");
}

#[test]
fn four_ports_af_xdp() {
    four_ports("af_xdp");
}

fn four_ports(ports: &str) {
    net::require_root();
    net::require_tools(&["iperf3", "dig", "dnsmasq", "traceroute"]);
    let _lock = net::lock();
    let tmp = TempDir::new(&format!("e2e-multiport-{ports}"));
    let _testbed = Testbed::up_multiport(ports);
    // The configuration names net_af_packet devices; the testbed's --vdev for the same
    // iface replaces each.
    let the_box = BoxProcess::start_config(ports, CONFIG, &[]);
    let _servers = start_servers(&tmp);
    let src = tmp.join("upload");
    net::random_file(&src, IPERF_BYTES);
    let sha = net::sha256(&src);

    for c in &CLIENTS {
        box_answers(c);
    }
    for c in &CLIENTS {
        for s in &SERVERS {
            let what = format!("{} -> {}", c.ns, s.ns);
            net::ping(c.ns, s.addr, 3, &format!("ping {what} through the box"));
            traceroute(c, s, &what);
            iperf(c, s, &what);
            upload(c, s, &src, &sha, &tmp);
            dig(c, s, &what);
        }
        line_logins(c);
    }
    net::expect_spliced(4, "a line login from each client to each server");
    logins_listed();
    outside_stays_out(&tmp);
    strays_stay_out();
    check_counters(the_box.stop());
}

/// The servers in both outside namespaces: the echo server behind the `line` rule, iperf3,
/// dnsmasq. Dropping them stops them.
fn start_servers(tmp: &TempDir) -> Vec<Background> {
    let mut servers = Vec::new();
    for s in &SERVERS {
        let port = LINE_PORT.to_string();
        servers.push(net::start_server(
            s.ns,
            LINE_PORT,
            python(),
            &[LOGIN_HELPER, "echo-server", s.addr, &port],
        ));
        let port = IPERF_PORT.to_string();
        servers.push(net::start_server(
            s.ns,
            IPERF_PORT,
            "iperf3",
            &["-s", "-B", s.addr, "-p", &port],
        ));
        servers.push(dnsmasq(tmp, s));
    }
    servers
}

/// dnsmasq on the server's address, answering [`DNS_NAME`] with the server's own record.
fn dnsmasq(tmp: &TempDir, s: &Server) -> Background {
    net::dnsmasq(tmp, s.ns, s.addr, DNS_NAME, s.dns_answer)
}

/// The box answers ping on the client's gateway. On the VLAN that also means it answered the
/// client's ARP on VLAN 100 and tagged its replies; the box's readiness check (ping from
/// ct-inside) does not show that, so this waits (≤ 10 s) rather than failing on the first try.
fn box_answers(c: &Client) {
    let ok = net::poll(Duration::from_secs(10), Duration::from_millis(200), || {
        ns(
            c.ns,
            "ping",
            &["-c", "1", "-W", "1", c.gateway],
            Duration::from_secs(3),
        )
        .success()
    });
    assert!(
        ok,
        "the box does not answer ping on {} from {}",
        c.gateway, c.ns
    );
    net::ping(c.ns, c.gateway, 3, &format!("ping the box from {}", c.ns));
}

/// Step 1b: The probe whose TTL runs out at the box is answered from the box's address on the
/// client's interface (the VLAN's, for ct-inside2), the next by the server.
fn traceroute(c: &Client, s: &Server, what: &str) {
    let (hops, out) = net::traceroute_hops(c.ns, s.addr, what);
    assert_eq!(hops, [c.gateway, s.addr], "{what}: {out}");
}

/// Step 2: A few MiB of iperf3, client → server, on a `pass` port. iperf3's server stops
/// counting when the client says the test is over, with the last segments still in flight (on
/// the testbed up to half of the 4 MiB), so what it reports received is only a lower bound:
/// [`upload`] checks the bytes.
fn iperf(c: &Client, s: &Server, what: &str) {
    let bytes = IPERF_BYTES.to_string();
    let port = IPERF_PORT.to_string();
    let args = [
        "-c",
        s.addr,
        "-p",
        &port,
        "-n",
        &bytes,
        "-J",
        "--connect-timeout",
        "5000",
    ];
    let out = ns(c.ns, "iperf3", &args, Duration::from_secs(40))
        .expect_success(&format!("iperf3 {what}"));
    let json: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("iperf3 {what}: not JSON ({e}): {}", out.describe()));
    let sent = counter(&json, &["end", "sum_sent", "bytes"]);
    let received = counter(&json, &["end", "sum_received", "bytes"]);
    assert!(
        sent >= IPERF_BYTES && received > 0 && received <= sent,
        "iperf3 {what}: sent {sent}, the server received {received} (of {IPERF_BYTES} asked)"
    );
    eprintln!("[{what}] iperf3: {sent} bytes sent, {received} counted by the server");
}

/// Step 2b: The same amount with socat on the next `pass` port, byte-exact (SHA-256).
fn upload(c: &Client, s: &Server, src: &Path, sha: &str, tmp: &TempDir) {
    let what = format!("{} -> {}", c.ns, s.ns);
    let dst = tmp.join(&format!("upload-{}-{}", c.ns, s.ns));
    let listen = format!("TCP-LISTEN:{UPLOAD_PORT},reuseaddr");
    let sink = format!("OPEN:{},creat,trunc", dst.display());
    let mut server = net::start_server(s.ns, UPLOAD_PORT, "socat", &["-u", &listen, &sink]);
    let source = format!("OPEN:{}", src.display());
    let connect = format!("TCP:{}:{UPLOAD_PORT}", s.addr);
    let client = ns(
        c.ns,
        "socat",
        &["-u", &source, &connect],
        Duration::from_secs(60),
    );
    assert!(
        client.success(),
        "upload {what}: {}\nserver: {}",
        client.describe(),
        server.describe()
    );
    // The server exits once it has read the client's FIN and written everything out.
    let status = server.wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|st| st.success()),
        "upload {what}: the server did not finish: {}",
        server.describe()
    );
    let got = std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0);
    assert_eq!(got, IPERF_BYTES, "upload {what}: bytes received");
    assert_eq!(net::sha256(&dst), sha, "upload {what}: arrived corrupted");
}

/// Step 4: dig at the server's dnsmasq: the answer is that server's record.
fn dig(c: &Client, s: &Server, what: &str) {
    let server = format!("@{}", s.addr);
    let out = ns(
        c.ns,
        "dig",
        &[&server, DNS_NAME, "A", "+short", "+time=2", "+tries=2"],
        Duration::from_secs(15),
    )
    .expect_success(&format!("dig {what}"));
    assert_eq!(
        out.stdout.trim(),
        s.dns_answer,
        "dig {what}: {}",
        out.describe()
    );
}

/// Step 3: `line` logins from client `c`: alice logs in at the first server, and the second, asked
/// by the same address, greets at once with its banner. Each echoes 16 KiB byte-exact.
fn line_logins(c: &Client) {
    let accepted = format!("line:{LINE_PORT}:alice:wonderland:accepted");
    let cached = format!("line:{LINE_PORT}:alice:wonderland:banner");
    for (s, spec) in SERVERS.iter().zip([&accepted, &cached]) {
        let out = ns(
            c.ns,
            python(),
            &[LOGIN_HELPER, "sessions", s.addr, spec],
            Duration::from_secs(60),
        );
        assert!(
            out.success(),
            "{} -> {}: {spec}: {}",
            c.ns,
            s.ns,
            out.describe()
        );
        let records = out
            .stdout
            .lines()
            .filter(|l| l.contains("\"kind\""))
            .count();
        assert_eq!(records, 1, "{} -> {}: {}", c.ns, s.ns, out.describe());
    }
}

/// Step 3b: One login per client, each from its own address.
fn logins_listed() {
    let list = net::logins();
    let mut clients: Vec<&str> = list.iter().filter_map(|l| l["client"].as_str()).collect();
    clients.sort_unstable();
    assert_eq!(
        clients,
        [CLIENTS[0].addr, CLIENTS[1].addr],
        "`auth list --json`: {list:?}"
    );
    assert!(
        list.iter()
            .all(|l| l["user"] == "alice" && l["method"] == "line"),
        "`auth list --json`: {list:?}"
    );
}

/// Step 5: A TCP connect from each server to each client fails, the client's listener sees nothing,
/// and the box counts the SYNs as `policy_deny`.
fn outside_stays_out(tmp: &TempDir) {
    let denied_before = live_policy_deny();
    for c in &CLIENTS {
        let marker = tmp.join(&format!("marker-{}", c.ns));
        let listen = format!("TCP-LISTEN:{DENIED_PORT},reuseaddr");
        let touch = format!("OPEN:{},creat", marker.display());
        let mut listener = net::start_server(c.ns, DENIED_PORT, "socat", &["-u", &listen, &touch]);
        for s in &SERVERS {
            let nc = nc_connect(s.ns, c.addr, 2);
            assert!(
                !nc.success(),
                "{} connected to {}:{DENIED_PORT} through the box: {}",
                s.ns,
                c.addr,
                nc.describe()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !marker.exists(),
            "{} saw a connection from the outside on {DENIED_PORT}",
            c.ns
        );
        // The control: the listener was there, so the marker would have shown a connection.
        nc_connect(c.ns, c.addr, 2).expect_success("a local connect to the listener");
        wait_for(&marker, &mut listener);
    }
    let denied = live_policy_deny() - denied_before;
    assert!(
        denied >= 4,
        "policy_deny moved by {denied}: fewer than the 4 refused connects"
    );
}

/// `drops.policy_deny` of the running box.
fn live_policy_deny() -> u64 {
    counter(&net::stats(), &["drops", "policy_deny"])
}

/// `nc -z` from `ns_name` to `addr`:[`DENIED_PORT`], waiting `wait_s` seconds at the most.
fn nc_connect(ns_name: &str, addr: &str, wait_s: u64) -> net::Output {
    let (wait, port) = (wait_s.to_string(), DENIED_PORT.to_string());
    let args = ["-z", "-w", &wait, addr, &port];
    ns(ns_name, "nc", &args, Duration::from_secs(wait_s + 10))
}

fn wait_for(marker: &Path, listener: &mut Background) {
    let seen = net::poll(Duration::from_secs(5), Duration::from_millis(50), || {
        marker.exists()
    });
    assert!(
        seen,
        "the listener recorded no local connection: {}",
        listener.describe()
    );
}

/// Step 5b: A datagram from ct-outside2 that no flow expects does not reach ct-inside2 on its VLAN.
fn strays_stay_out() {
    let (client, server) = (&CLIENTS[1], &SERVERS[1]);
    let mut listener = Background::ns(client.ns, python(), &[UDP_PEER, "listen", "5353", "3"]);
    std::thread::sleep(Duration::from_millis(300));
    ns(
        server.ns,
        python(),
        &[UDP_PEER, "ask", "5353", client.addr, "5353", "1"],
        Duration::from_secs(10),
    )
    .expect_success("a stray datagram toward ct-inside2");
    assert!(listener.wait(Duration::from_secs(10)).is_some());
    assert_eq!(listener.stdout().trim(), "got 0", "{}", listener.describe());
}

/// Step 6: The counters: every port carried traffic both ways, and the flows, time exceeded and
/// denials of the steps above are there.
fn check_counters(stats: serde_json::Value) {
    let pretty = serde_json::to_string_pretty(&stats).unwrap_or_default();
    for port in PORTS {
        let rx = counter(&stats, &["ports", port, "rx_packets"]);
        let tx = counter(&stats, &["ports", port, "tx_packets"]);
        assert!(
            rx > 100 && tx > 100,
            "ports.{port}: rx_packets {rx}, tx_packets {tx}: too little traffic\n{pretty}"
        );
    }
    let exceeded = counter(&stats, &["control", "icmp_time_exceeded_sent"]);
    assert!(
        exceeded >= 4,
        "icmp_time_exceeded_sent {exceeded}\n{pretty}"
    );
    // iperf3's control and data connections and the upload, for each pair.
    let created = worker_sum(&stats, "flows_created");
    assert!(created >= 12, "flows_created {created}\n{pretty}");
    let udp = worker_sum(&stats, "udp_flows_created");
    assert!(
        udp >= 4,
        "udp_flows_created {udp} (a dig per pair)\n{pretty}"
    );
    let denied = counter(&stats, &["drops", "policy_deny"]);
    assert!(denied >= 5, "policy_deny {denied}\n{pretty}");
}
