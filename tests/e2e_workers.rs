#![cfg(feature = "dpdk")]
//! Two workers on devices without RSS: `net_af_packet` with two queue pairs on veths with two
//! queues each. The kernel spreads packets over the two sockets by its own flow hash, which
//! the box cannot compute, so it steers in software (`dataplane::steer`): about half of all
//! packets arrive at the worker that does not own their flow and are handed to the one that
//! does. (`net_af_xdp` cannot open two queues on a veth; asymmetric spreading, the two
//! directions of a flow on different workers, is the simulation's `sim_workers`.)
//!
//! 1. ping, concurrent `pass` connections and `line` logins (spliced), all byte-exact at both
//!    ends;
//! 2. an ICMP error the server's host sends about a spliced connection reaches the client
//!    with its quote put back into the client's sequence space (by Δ1), whichever worker the
//!    kernel gave it to;
//! 3. the counters written on SIGTERM show packets handed over and received, both workers
//!    carrying flows, and no drop a split connection would cause (`out_of_window`,
//!    `no_flow`, `out_of_state`).
//!
//! Run as root: `cargo test --test e2e_workers` (about ten seconds).

mod net;

use std::time::Duration;

use net::{counter, ns, path_str, python, worker_sum, Background, BoxProcess, Streams, TempDir};
use net::{Testbed, CLIENT_ADDR, INSIDE, OUTSIDE, ROOT, SERVER_ADDR};

const PASS_PORT: u16 = 5201;
const LINE_PORT: u16 = 2323;
const CONNS: usize = 8;
const SPLICE_PORT: u16 = 9000;
const QUOTE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/net/icmp_quote.py");

#[test]
fn two_workers_hand_flows_to_their_owner_af_packet() {
    net::require_root();
    let _lock = net::lock();
    let tmp = TempDir::new("e2e-workers");
    let config = tmp.join("box.yaml");
    let testbed = std::fs::read_to_string(format!("{ROOT}/config/testbed.yaml")).unwrap();
    let two = testbed.replace("workers:\n  count: 1\n", "workers:\n  count: 2\n");
    assert_ne!(two, testbed, "config/testbed.yaml runs one worker");
    std::fs::write(&config, two).unwrap();

    let _testbed = Testbed::up_with_queues("af_packet", 2);
    let the_box = BoxProcess::start_config("af_packet", path_str(&config), &[]);

    net::ping(INSIDE, SERVER_ADDR, 5, "ping through two workers");
    for (port, auth, seed0) in [(PASS_PORT, "none", 1), (LINE_PORT, "line", 1001)] {
        let log = tmp.join(&format!("server-{port}.log"));
        let _server = net::traffic_server(port, &log, auth == "line");
        let mut s = Streams::new(port, auth, CONNS, 4 << 20, 4 << 20);
        s.seed0 = seed0;
        let r = s.run();
        eprintln!("{}", r.line());
        r.verify(&log, &the_box.logs());
    }
    net::expect_spliced(CONNS as u64, "the line logins through two workers");
    icmp_error_about_a_spliced_flow();

    let stats = the_box.stop();
    let handed = worker_sum(&stats, "handed_off");
    let received = worker_sum(&stats, "handoff_received");
    eprintln!("packets handed to their flow's owner: {handed} (received {received})");
    assert!(
        handed > 0,
        "no packet changed worker: is the testbed spreading?"
    );
    assert_eq!(handed, received, "every packet handed over was taken");
    let workers = stats["workers"].as_array().expect("workers");
    assert_eq!(workers.len(), 2);
    for w in workers {
        assert!(
            w["flows_created"].as_u64().unwrap_or(0) + w["flows_installed"].as_u64().unwrap_or(0)
                > 0,
            "worker {} owns no flow: {w}",
            w["id"]
        );
    }
    // A full handoff ring is a counted drop, not an error: with three lcores on two CPUs
    // an owner may be descheduled long enough (TCP resends what it lost). What a split
    // connection would cause must never show.
    eprintln!(
        "handoff_full: {}",
        counter(&stats, &["drops", "handoff_full"])
    );
    for reason in ["out_of_window", "no_flow", "out_of_state"] {
        assert_eq!(counter(&stats, &["drops", reason]), 0, "{reason}");
    }
    assert_eq!(worker_sum(&stats, "icmp_quotes_rewritten"), 1);
}

/// Step 2: a spliced connection held open (`splice-only`), an ICMP "fragmentation needed"
/// from the server's host quoting a client segment as the server sees it, and its quote at
/// the client.
fn icmp_error_about_a_spliced_flow() {
    let listen = format!("TCP-LISTEN:{SPLICE_PORT},reuseaddr");
    let mut echo = Background::ns(OUTSIDE, "socat", &[&listen, "PIPE"]);
    assert!(
        net::wait_listening(OUTSIDE, SPLICE_PORT, Duration::from_secs(10)),
        "the echo server does not listen: {}",
        echo.describe()
    );
    let port = SPLICE_PORT.to_string();
    let mut hold = Background::ns(INSIDE, python(), &[QUOTE, "hold", SERVER_ADDR, &port, "8"]);
    let mut cport = String::new();
    assert!(
        net::poll(Duration::from_secs(10), Duration::from_millis(50), || {
            cport = hold
                .stdout()
                .trim()
                .strip_prefix("held ")
                .unwrap_or("")
                .to_string();
            !cport.is_empty()
        }),
        "no connection held: {}",
        hold.describe()
    );
    let client = format!("{CLIENT_ADDR}:{cport}");
    let mut delta1 = None;
    net::poll(Duration::from_secs(10), Duration::from_millis(100), || {
        let listing = net::cli_json(&["flows", "--json", "--filter", &format!(":{port}")]);
        delta1 = listing["flows"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["client"] == client.as_str() && f["phase"] == "spliced")
            .and_then(|f| f["delta1"].as_u64());
        delta1.is_some()
    });
    let delta1 = delta1.unwrap_or_else(|| panic!("{client} was not spliced")) as u32;
    assert_ne!(
        delta1, 0,
        "the two legs' sequence spaces differ (else nothing to restore)"
    );
    let mut watch = Background::ns(INSIDE, python(), &[QUOTE, "watch", "3"]);
    std::thread::sleep(Duration::from_millis(300));
    let server_seq: u32 = 0x1234_5678;
    let seq = server_seq.to_string();
    let args = [
        QUOTE,
        "send",
        CLIENT_ADDR,
        CLIENT_ADDR,
        &cport,
        SERVER_ADDR,
        &port,
        &seq,
    ];
    ns(OUTSIDE, python(), &args, Duration::from_secs(10)).expect_success("send the ICMP error");
    assert!(watch.wait(Duration::from_secs(10)).is_some());
    let seen: serde_json::Value = serde_json::from_str(watch.stdout().trim())
        .unwrap_or_else(|e| panic!("{e}: {}", watch.describe()));
    let quotes: Vec<u64> = seen
        .as_array()
        .into_iter()
        .flatten()
        .filter(|q| q["sport"].as_u64() == cport.parse().ok())
        .filter_map(|q| q["seq"].as_u64())
        .collect();
    assert_eq!(
        quotes,
        vec![u64::from(server_seq.wrapping_sub(delta1))],
        "the quote at the client (Δ1 {delta1}): {seen}"
    );
    hold.wait(Duration::from_secs(15));
}
