#![cfg(feature = "dpdk")]
//! Stateful UDP through the real box on the namespace testbed, with the testbed's rules
//! (`dns-ntp`: UDP 53 and 123 from the inside zone; nothing lets UDP in from the outside):
//!
//! 1. `dig` in the client's namespace asks Debian's dnsmasq in the server's: the answers
//!    arrive, although they come from the outside (they are replies of the query's flow), and
//!    `cutthrough flows` lists the flows, answered;
//! 2. a UDP answer within the flow's timeout arrives, one after it is dropped (a 3 s `udp`
//!    timeout here, so the test need not wait 30 s);
//! 3. a datagram from the outside that belongs to no flow never reaches the client;
//! 4. the counters written on SIGTERM agree: UDP flows created and expired, the stray
//!    datagrams among the `policy_deny` drops.
//!
//! Run as root: `cargo test --test e2e_udp` (about 20 s).

mod net;

use std::time::Duration;

use net::{counter, ns, path_str, python, worker_sum, Background, BoxProcess, TempDir, Testbed};
use net::{CLIENT_ADDR, INSIDE, OUTSIDE, ROOT, SERVER_ADDR};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/udp_peer.py");
/// The name dnsmasq answers for, and its address.
const NAME: &str = "www.example.test";
const NAME_ADDR: &str = "198.19.0.80";
const QUERIES: u64 = 4;
/// The `udp` timeout of this test's configuration, in seconds.
const UDP_TIMEOUT_S: u64 = 3;

#[test]
fn udp_flows_af_packet() {
    net::require_root();
    net::require_tools(&["dnsmasq", "dig"]);
    let _lock = net::lock();
    let tmp = TempDir::new("e2e-udp");
    let config = tmp.join("box.yaml");
    let testbed = std::fs::read_to_string(format!("{ROOT}/config/testbed.yaml")).unwrap();
    let short = testbed.replace("    udp: 30s", &format!("    udp: {UDP_TIMEOUT_S}s"));
    assert_ne!(short, testbed, "config/testbed.yaml sets `udp: 30s`");
    std::fs::write(&config, short).unwrap();

    let _testbed = Testbed::up("af_packet");
    let the_box = BoxProcess::start_config("af_packet", path_str(&config), &[]);

    dns_through(&tmp);
    dns_flows_listed();
    answers_within_the_timeout_only();
    strays_stay_out();
    let stats = the_box.stop();
    let created = worker_sum(&stats, "udp_flows_created");
    // dig's queries (each from a port of its own), two asks, and no flow for the strays.
    assert!(created >= QUERIES + 2, "udp_flows_created {created}");
    assert!(
        worker_sum(&stats, "datagram_flows_expired") >= 1,
        "the flow whose answer came late expired"
    );
    let denied = counter(&stats, &["drops", "policy_deny"]);
    assert!(
        denied >= 2,
        "the late answer and the stray: policy_deny {denied}"
    );
}

/// 1. Real DNS: dnsmasq in the server's namespace, dig in the client's.
fn dns_through(tmp: &TempDir) {
    let _dnsmasq = net::dnsmasq(tmp, OUTSIDE, SERVER_ADDR, NAME, NAME_ADDR);
    let server = format!("@{SERVER_ADDR}");
    for i in 0..QUERIES {
        let out = ns(
            INSIDE,
            "dig",
            &[&server, NAME, "A", "+short", "+time=2", "+tries=2"],
            Duration::from_secs(15),
        )
        .expect_success("dig through the box");
        assert_eq!(
            out.stdout.trim(),
            NAME_ADDR,
            "answer {i}: {}",
            out.describe()
        );
    }
}

/// 1b. `cutthrough flows` lists the queries' flows, answered, within their timeout.
fn dns_flows_listed() {
    let listing = net::cli_json(&["flows", "--json", "--filter", ":53"]);
    let flows = listing["flows"].as_array().cloned().unwrap_or_default();
    let udp: Vec<_> = flows.iter().filter(|f| f["phase"] == "udp").collect();
    assert!(!udp.is_empty(), "no UDP flow to port 53 listed: {listing}");
    for f in &udp {
        assert!(
            f["server"].as_str().is_some_and(|s| s.ends_with(":53")) && f["state"] == "replied",
            "{f}"
        );
    }
}

/// 2. An answer within the `udp` timeout of the query's flow passes; one after it does not.
fn answers_within_the_timeout_only() {
    for (srcport, delay, want) in [(40123, 0.0, "reply re:hello"), (40124, 4.5, "silent")] {
        let mut server = Background::ns(
            OUTSIDE,
            python(),
            &[PEER, "serve", SERVER_ADDR, "123", &delay.to_string(), "1"],
        );
        assert!(
            net::poll(Duration::from_secs(10), Duration::from_millis(50), || {
                server.stdout().contains("ready")
            }),
            "the UDP server did not start: {}",
            server.describe()
        );
        let out = ns(
            INSIDE,
            python(),
            &[PEER, "ask", &srcport.to_string(), SERVER_ADDR, "123", "7"],
            Duration::from_secs(15),
        )
        .expect_success("ask through the box");
        assert_eq!(
            out.stdout.trim(),
            want,
            "an answer {delay} s after its query (udp timeout {UDP_TIMEOUT_S} s)"
        );
        server.wait(Duration::from_secs(10));
    }
}

/// 3. A datagram from the outside that no flow expects does not reach the client.
fn strays_stay_out() {
    let mut listener = Background::ns(INSIDE, python(), &[PEER, "listen", "5353", "3"]);
    std::thread::sleep(Duration::from_millis(300));
    ns(
        OUTSIDE,
        python(),
        &[PEER, "ask", "5353", CLIENT_ADDR, "5353", "1"],
        Duration::from_secs(10),
    )
    .expect_success("a stray datagram toward the client");
    assert!(listener.wait(Duration::from_secs(10)).is_some());
    assert_eq!(listener.stdout().trim(), "got 0", "{}", listener.describe());
}
