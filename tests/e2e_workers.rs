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
//! 2. the counters written on SIGTERM show packets handed over and received, both workers
//!    carrying flows, no ring full, and no drop a split connection would cause
//!    (`out_of_window`, `no_flow`).
//!
//! Run as root: `cargo test --test e2e_workers` (about ten seconds).

mod net;

use net::{counter, path_str, worker_sum, BoxProcess, Streams, TempDir, Testbed};
use net::{INSIDE, ROOT, SERVER_ADDR};

const PASS_PORT: u16 = 5201;
const LINE_PORT: u16 = 2323;
const CONNS: usize = 8;

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
    for reason in ["handoff_full", "out_of_window", "no_flow", "out_of_state"] {
        assert_eq!(counter(&stats, &["drops", reason]), 0, "{reason}");
    }
}
