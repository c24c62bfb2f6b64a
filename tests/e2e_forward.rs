#![cfg(feature = "dpdk")]
//! Plain stateful forwarding through the real box on the namespace testbed (DESIGN.md §7.3,
//! §9), once over `net_af_packet` and once over `net_af_xdp`:
//!
//! 1. ping from the client to the server passes (`icmp: pass`), and `traceroute` sees the box
//!    (its time exceeded) and then the server;
//! 2. a short TCP connection to port 5202 opens and closes, and a 100 MiB TCP upload to port
//!    5201 (both `iperf3: pass`) arrives byte-exact (SHA-256);
//! 3. a SYN to port 7000 (`default-deny`) gets nothing through: the client's connect fails
//!    and the server's listener never sees a connection (while a local connect reaches it);
//! 4. the counters written on SIGTERM agree: echo exchanges and a time exceeded, the two TCP
//!    flows created and closed, a `policy_deny` drop, the 100 MiB seen on the inside port, no
//!    `out_of_window` drop.
//!
//! Run as root: `cargo test --test e2e_forward` (seconds per port kind here; bounded at a few
//! minutes by the timeouts).
//! Timings and throughput are printed for information only; nothing asserts on speed.

mod net;

use std::path::Path;
use std::time::Duration;

use net::{counter, has, ns, worker_sum, BoxProcess, TempDir, Testbed};
use net::{BOX_INSIDE_ADDR, INSIDE, OUTSIDE, SERVER_ADDR};

const TRANSFER_BYTES: u64 = 100 * 1024 * 1024;
const TRANSFER_PORT: u16 = 5201;
const SHORT_PORT: u16 = 5202;
const DENIED_PORT: u16 = 7000;

/// net_af_packet without hugepages, net_af_xdp with them: both memory modes of the box.
#[test]
fn forward_af_packet() {
    forward("af_packet", &["--no-huge"]);
}

#[test]
fn forward_af_xdp() {
    forward("af_xdp", &[]);
}

fn forward(ports: &str, extra_eal: &[&str]) {
    net::require_root();
    let _lock = net::lock();
    let tmp = TempDir::new(&format!("e2e-forward-{ports}"));
    let (src, dst, marker) = (tmp.join("in"), tmp.join("out"), tmp.join("marker"));
    net::random_file(&src, TRANSFER_BYTES);
    let src_sha = net::sha256(&src);

    let _testbed = Testbed::up(ports);
    let the_box = BoxProcess::start_with(ports, extra_eal);

    net::ping(
        INSIDE,
        SERVER_ADDR,
        3,
        "ping client -> server through the box",
    );
    traceroute_through();
    short_connection();
    upload(ports, &src, &dst, &src_sha);
    denied_port(&marker);
    check_counters(ports, the_box.stop());
}

/// 1b. `traceroute` (ICMP probes): the box answers the probe whose TTL runs out there with
/// time exceeded from its inside address, the server answers the next.
fn traceroute_through() {
    let (hops, out) = net::traceroute_hops(INSIDE, SERVER_ADDR, "through the box");
    assert_eq!(hops, [BOX_INSIDE_ADDR, SERVER_ADDR], "{out}");
}

/// 2a. A short TCP connection on a `pass` port: connect, close both ways.
fn short_connection() {
    let short_port = SHORT_PORT.to_string();
    let listen = format!("TCP-LISTEN:{SHORT_PORT},reuseaddr");
    let mut short = net::start_server(
        OUTSIDE,
        SHORT_PORT,
        "socat",
        &["-u", &listen, "OPEN:/dev/null"],
    );
    nc_connect(INSIDE, &short_port, 5)
        .expect_success("a TCP connect through the box to a `pass` port");
    let short_status = short.wait(Duration::from_secs(10));
    assert!(
        short_status.is_some_and(|s| s.success()),
        "the short-connection server did not see its connection end: {}",
        short.describe()
    );
}

/// 2b. 100 MiB upload on a `pass` port, byte-exact.
fn upload(ports: &str, src: &Path, dst: &Path, src_sha: &str) {
    let limit = Duration::from_secs(120);
    net::socat_upload(
        ports,
        TRANSFER_PORT,
        src,
        TRANSFER_BYTES,
        src_sha,
        dst,
        limit,
    );
}

/// `nc -z` (connect, then close) from `ns_name` to the server's `port`, waiting `wait_s`
/// seconds at the most for the connection.
fn nc_connect(ns_name: &str, port: &str, wait_s: u64) -> net::Output {
    let wait = wait_s.to_string();
    let args = ["-z", "-w", &wait, SERVER_ADDR, port];
    ns(ns_name, "nc", &args, Duration::from_secs(wait_s + 10))
}

/// 3. A SYN to a denied port gets nothing through.
fn denied_port(marker: &Path) {
    let listen = format!("TCP-LISTEN:{DENIED_PORT},reuseaddr");
    let touch = format!("OPEN:{},creat", marker.display());
    let mut denied = net::start_server(OUTSIDE, DENIED_PORT, "socat", &["-u", &listen, &touch]);
    let port = DENIED_PORT.to_string();
    let nc = nc_connect(INSIDE, &port, 2);
    assert!(
        !nc.success(),
        "a connect to the denied port {DENIED_PORT} succeeded: {}",
        nc.describe()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !marker.exists(),
        "the server saw a connection on the denied port {DENIED_PORT}"
    );
    // The control: the listener was there, and a connection that does not cross the box
    // reaches it (so the marker would have shown a connection through the box).
    nc_connect(OUTSIDE, &port, 2).expect_success("a local connect to the denied-port listener");
    assert!(
        net::poll(Duration::from_secs(5), Duration::from_millis(50), || marker
            .exists()),
        "the denied-port listener did not record a local connection: {}",
        denied.describe()
    );
}

/// 4. The counters.
fn check_counters(ports: &str, stats: serde_json::Value) {
    let pretty = serde_json::to_string_pretty(&stats).unwrap_or_default();
    eprintln!("[{ports}] stats: {pretty}");
    for key in ["ports", "workers", "connections", "drops"] {
        assert!(has(&stats, &[key]), "no `{key}` in the stats:\n{pretty}");
    }
    let created = worker_sum(&stats, "flows_created");
    let closed = worker_sum(&stats, "flows_closed");
    let denied_drops = counter(&stats, &["drops", "policy_deny"]);
    let inside_rx = counter(&stats, &["ports", "inside", "rx_packets"]);
    let out_of_window = counter(&stats, &["drops", "out_of_window"]);
    // `flows_created` counts TCP connections: the short connection and the upload. The pings
    // and the traceroute's probes are echo exchanges, counted apart.
    let echo = worker_sum(&stats, "icmp_flows_created");
    assert!(
        echo >= 1,
        "icmp_flows_created {echo}: no echo exchange\n{pretty}"
    );
    let exceeded = counter(&stats, &["control", "icmp_time_exceeded_sent"]);
    assert!(
        exceeded >= 1,
        "no time exceeded sent for the traceroute\n{pretty}"
    );
    assert!(
        created >= 2,
        "flows_created {created} < 2 (the short connection and the upload)\n{pretty}"
    );
    assert!(
        closed >= 2,
        "flows_closed {closed} < 2 (both TCP connections ended with FIN both ways)\n{pretty}"
    );
    assert!(
        denied_drops >= 1,
        "drops.policy_deny {denied_drops} < 1 (the SYN to port {DENIED_PORT})\n{pretty}"
    );
    assert!(
        inside_rx > 70_000,
        "ports.inside.rx_packets {inside_rx} <= 70000 (100 MiB in <= 1500-byte frames)\n{pretty}"
    );
    assert_eq!(
        out_of_window, 0,
        "out_of_window drops on a clean wire\n{pretty}"
    );
}
