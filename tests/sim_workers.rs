//! Several workers on NICs without symmetric RSS, in the deterministic simulation (the
//! harness is `tests/sim`): the MemNics put each packet on a queue by its sender alone, so the
//! two directions of a connection mostly reach different workers, and the box hands every
//! packet to the worker that owns its flow (`dataplane::steer`, software steering):
//!
//! 1. concurrent `pass` connections through two and three workers, with and without faults:
//!    byte-exact, each flow created once and in its owner's table only, packets handed
//!    over, no drop;
//! 2. connections through a `proxy` rule (`splice-only`, port 9000): proxied, spliced and
//!    installed in the worker that owns them, byte-exact.
//!
//! Every assertion message starts with the seed; a failing seed reruns identically.

mod sim;

use common::flow::FlowKey;
use dataplane::port::Spread;
use dataplane::steer::software_owner;
use sim::{Faults, Sim, CLIENT_IP, SERVER_IP};

const KIB: usize = 1024;
const PASS_PORT: u16 = 5201;
const SPLICE_PORT: u16 = 9000;
const MAX_STEPS: u64 = 200_000;

fn key(cport: u16, dport: u16) -> FlowKey {
    FlowKey::new(CLIENT_IP.into(), cport, SERVER_IP.into(), dport)
}

/// `conns` concurrent connections to `port` through `workers` workers, `bytes` each way;
/// returns the simulation after every one is delivered, checked and closed.
fn spread_transfers(
    seed: u64,
    workers: usize,
    faults: Faults,
    port: u16,
    conns: usize,
    bytes: usize,
) -> Sim {
    let mut sim = Sim::spreading(seed, workers, faults, Spread::BySender);
    sim.rx_buffer = 256 * KIB;
    sim.tx_buffer = 64 * KIB;
    sim.close_after_acked = faults != Faults::NONE;
    let ts: Vec<_> = (0..conns)
        .map(|_| sim.transfer(port, bytes, bytes))
        .collect();
    sim.run_until("every connection delivered and closed", MAX_STEPS, |s| {
        ts.iter().all(|t| s.transfer_done(t))
    });
    for t in &ts {
        sim.check_transfer(t);
    }
    sim.assert_no_drops(&format!("seed {seed}, {workers} workers"));
    let c = sim.counters();
    let report = sim.report();
    assert!(
        c.handed_off > 0 && c.handed_off == c.handoff_received,
        "seed {seed}: handed off {}, received {}\n{report}",
        c.handed_off,
        c.handoff_received
    );
    // Each connection is in its owner's table (closed, in TIME-WAIT) and in no other.
    for t in &ts {
        let k = key(t.cport, port);
        let owner = software_owner(&k, workers);
        let holders: Vec<usize> = (0..workers)
            .filter(|&w| sim.workers()[w].table().lookup(&k).is_some())
            .collect();
        assert_eq!(
            holders,
            vec![owner],
            "seed {seed}: the flow from port {} is in these workers' tables",
            t.cport
        );
    }
    sim
}

#[test]
fn pass_flows_through_two_workers_without_symmetric_rss() {
    let sim = spread_transfers(21, 2, Faults::NONE, PASS_PORT, 8, 128 * KIB);
    let c = sim.counters();
    assert_eq!((c.flows_created, c.flows_closed), (8, 8), "seed 21");
}

#[test]
fn pass_flows_through_three_workers_under_faults() {
    let sim = spread_transfers(22, 3, Faults::HOSTILE, PASS_PORT, 6, 64 * KIB);
    let c = sim.counters();
    assert_eq!(c.flows_created, 6, "seed 22: each flow made once");
    let per_worker: Vec<u64> = sim.flows_per_worker();
    assert!(
        per_worker.iter().filter(|&&n| n > 0).count() >= 2,
        "seed 22: flows per worker {per_worker:?}"
    );
}

#[test]
fn spliced_flows_through_two_workers_without_symmetric_rss() {
    let sim = spread_transfers(23, 2, Faults::NONE, SPLICE_PORT, 6, 128 * KIB);
    let conns = sim.proxy_connections();
    assert_eq!((conns.proxied, conns.spliced), (6, 6), "seed 23: {conns:?}");
    let c = sim.counters();
    // Per connection: its placeholder confirmed at the handshake, then its spliced object,
    // both in the worker that handed its packets to control (its owner: see above).
    assert_eq!(c.flows_installed, 2 * 6, "seed 23: installs");
}
