//! `pass` flows through the box's real worker and control-plane code in the deterministic
//! simulation (DESIGN.md §7 item 2; the harness is `tests/sim`):
//!
//! 1. one connection to port 5201 (`iperf3: pass`), no faults: 1 MiB each way byte-exact,
//!    the flow created and closed once, not one packet dropped;
//! 2. the same under a hostile network (drop 2 %, duplicate 1 %, reorder 5 % by up to 5 ms on
//!    both links, both directions) for six seeds and window shifts 5, 3 and 1, 512 KiB each
//!    way: byte-exact, closed once, and not one drop — in particular no `out_of_window` or
//!    `ack_beyond_data`: legitimate traffic never trips the tracker;
//! 3. two workers (MemNics with two queues, symmetric RSS): several concurrent connections,
//!    with and without faults, all byte-exact, each flow on one worker, both workers used.
//!
//! Under faults the hosts are tuned around two smoltcp 0.14 weaknesses that are not the
//! box's: applications close only once everything they wrote is acknowledged
//! (`Sim::close_after_acked`), because smoltcp can lose its own FIN for good when it closes
//! with data in flight; and send buffers are 64 KiB (see [`FAULTS_TX_BUFFER`]). The
//! clean-network test closes right after writing, so the FIN rides on the last data segment.
//!
//! Every assertion message starts with the seed; a failing seed reruns identically. Ignored:
//! a seed sweep (`SIM_SEEDS=300 cargo test --test sim_forward -- --ignored many_seeds`) and
//! a known smoltcp issue, a scripted reproduction that fails today.

mod sim;

use std::cell::Cell;
use std::rc::Rc;

use dataplane::verdict::DropReason;
use sim::{Fate, Faults, Hop, Outcome, Sim};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
const PASS_PORT: u16 = 5201;

/// Steps allowed per scenario: far more than any run takes (a few thousand; idle time is
/// skipped by fast-forward, so even minutes of RTO backoff cost few steps).
const MAX_STEPS: u64 = 200_000;

/// The tracker must never drop legitimate traffic for these reasons.
const TRACKER_BUGS: [DropReason; 2] = [DropReason::OutOfWindow, DropReason::AckBeyondData];

/// Panics with the evidence (each drop with its connection's handshake and the segments
/// before it) if the tracker dropped legitimate traffic.
fn assert_no_tracker_drops(sim: &Sim) {
    let tracker: Vec<_> = TRACKER_BUGS
        .iter()
        .map(|&r| (r.name(), sim.drops(r)))
        .filter(|&(_, n)| n > 0)
        .collect();
    assert!(
        tracker.is_empty(),
        "seed {}: the tracker dropped legitimate traffic: {tracker:?}\n{}\n{}",
        sim.seed,
        sim.report(),
        sim.explain_drops(16, 5)
    );
}

/// Panics with the evidence if the box dropped anything (the tracker's drops named first).
fn assert_no_drops(sim: &Sim) {
    assert_no_tracker_drops(sim);
    sim.assert_no_drops(&format!("seed {}", sim.seed));
}

/// Runs a pass flow's transfer `t` to its end (`what`): both ways byte-exact, not one drop,
/// the flow created and closed once. Returns the steps it took.
fn run_pass_flow(sim: &mut Sim, t: &sim::Transfer, what: &str) -> u64 {
    let steps = sim.run_until(what, MAX_STEPS, |s| s.transfer_done(t));
    sim.check_transfer(t);
    assert_no_drops(sim);
    let (seed, c, report) = (sim.seed, sim.counters(), sim.report());
    assert_eq!(c.flows_created, 1, "seed {seed}: flows created\n{report}");
    assert_eq!(c.flows_closed, 1, "seed {seed}: flows closed\n{report}");
    steps
}

#[test]
fn pass_flow_one_mib_each_way_without_faults() {
    let seed = 1;
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let t = sim.transfer(PASS_PORT, MIB, MIB);
    let steps = run_pass_flow(&mut sim, &t, "1 MiB each way and both closed");
    let c = sim.counters();
    let report = sim.report();
    assert_eq!(
        c.ignored, 0,
        "seed {seed}: nothing old on a clean network\n{report}"
    );
    // Every data segment crossed the fast path (at most 1448 bytes each with timestamps)...
    let min_segments = (2 * MIB / 1448) as u64;
    assert!(
        c.forwarded >= min_segments,
        "seed {seed}: forwarded {} < {min_segments}\n{report}",
        c.forwarded
    );
    // ...and of the TCP segments only the first SYN went to control (its next hop, the
    // server, was not resolved yet).
    let tcp_to_control = sim
        .trace_of(t.cport)
        .iter()
        .filter(|e| e.outcome == Outcome::ToControl)
        .count();
    assert_eq!(
        tcp_to_control, 1,
        "seed {seed}: TCP segments of a pass flow that went to control\n{report}"
    );
    // The FIN rode on the last data segment both ways, and TIME-WAIT keeps the object.
    assert_eq!(
        sim.flows(),
        1,
        "seed {seed}: the flow waits out TIME-WAIT\n{report}"
    );
    eprintln!(
        "seed {seed}: {steps} steps, {} ms virtual, {} frames through the box",
        sim.now - sim::START_MS,
        c.rx
    );
}

/// Send buffer of the hosts under faults. smoltcp has no SACK-based recovery and takes no
/// RTT sample after a go-back-N retransmission, so when a whole transfer fits in one window
/// its RTO doubles up to 60 s at the tail; the box's `last_ack` timeout (30 s) can then cut
/// the flow. A send buffer
/// smaller than the transfer keeps new data flowing and the RTO near its 1 s floor.
const FAULTS_TX_BUFFER: usize = 64 * KIB;

/// One connection, `bytes` each way under the hostile faults on both links, with receive
/// buffers of `rx_buffer` bytes: 1 MiB announces window shift 5, 256 KiB 3, 64 KiB 1.
fn faulty_transfer(seed: u64, rx_buffer: usize, bytes: usize) -> (Sim, sim::Transfer) {
    let mut sim = Sim::new(seed, 1, Faults::HOSTILE);
    sim.rx_buffer = rx_buffer;
    sim.tx_buffer = FAULTS_TX_BUFFER;
    sim.close_after_acked = true;
    let t = sim.transfer(PASS_PORT, bytes, bytes);
    (sim, t)
}

/// [`faulty_transfer`] run to the end: byte-exact, no drop, created and closed once.
fn pass_flow_under_faults(seed: u64, rx_buffer: usize, bytes: usize) -> Sim {
    let (mut sim, t) = faulty_transfer(seed, rx_buffer, bytes);
    let steps = run_pass_flow(&mut sim, &t, "both ways delivered and closed");
    sim.assert_hostile(&format!("seed {seed}"));
    let c = sim.counters();
    let faults = sim.faults_injected();
    eprintln!(
        "seed {seed}: {steps} steps, {} ms virtual, {} frames through the box, {} ignored, \
         {faults} faults",
        sim.now - sim::START_MS,
        c.rx,
        c.ignored
    );
    sim
}

#[test]
fn pass_flow_under_faults_seed_1_shift_5() {
    pass_flow_under_faults(1, MIB, 512 * KIB);
}

#[test]
fn pass_flow_under_faults_seed_2_shift_5() {
    pass_flow_under_faults(2, MIB, 512 * KIB);
}

#[test]
fn pass_flow_under_faults_seed_3_shift_5() {
    pass_flow_under_faults(3, MIB, 512 * KIB);
}

#[test]
fn pass_flow_under_faults_seed_4_shift_1() {
    pass_flow_under_faults(4, 64 * KIB, 512 * KIB);
}

#[test]
fn pass_flow_under_faults_seed_5_shift_1() {
    pass_flow_under_faults(5, 64 * KIB, 512 * KIB);
}

#[test]
fn pass_flow_under_faults_seed_6_shift_3() {
    pass_flow_under_faults(0x5eed_cafe, 256 * KIB, 512 * KIB);
}

/// A sweep over many seeds (`SIM_SEEDS`, default 100), alternating the window shift, 256 KiB
/// each way. Hard failures: a byte missing or wrong, or any `out_of_window` or
/// `ack_beyond_data` drop. A close that does not complete is listed, and tolerated up to 1 %
/// of the seeds: the hosts cause those (smoltcp keeps TIME-WAIT 10 s while the peer's RTO
/// may have backed off to 60 s, so a lost last ACK leaves the peer in LAST-ACK for good, and
/// the box's LAST-ACK object expires meanwhile).
#[test]
#[ignore]
fn many_seeds_under_faults() {
    let n = sim::sweep_seeds(100);
    let mut unclean = Vec::new();
    for i in 1..=n {
        let rx = [MIB, 64 * KIB, 256 * KIB][(i % 3) as usize];
        let (mut sim, t) = faulty_transfer(1000 + i, rx, 256 * KIB);
        let closed = sim
            .try_run_until(MAX_STEPS, |s| s.transfer_done(&t))
            .is_ok();
        sim.check_transfer(&t);
        assert_no_tracker_drops(&sim);
        if !closed {
            let server = sim.server_of(&t).map(|e| sim.state(e).to_string());
            unclean.push(format!(
                "seed {} (rx {rx}): client {} server {server:?}, drops {:?}",
                sim.seed,
                sim.state(t.client),
                sim.nonzero_drops()
            ));
        }
    }
    eprintln!(
        "{n} seeds: all byte-exact, no tracker drop; {} unclean closes:\n{}",
        unclean.len(),
        unclean.join("\n")
    );
    assert!(
        unclean.len() as u64 * 100 <= n,
        "too many unclean closes:\n{}",
        unclean.join("\n")
    );
}

/// Same seed, same run: the box sees the same frames in the same order with the same
/// verdicts, and ends with the same counters.
#[test]
fn same_seed_same_run() {
    let run = || {
        let sim = pass_flow_under_faults(3, 256 * KIB, 128 * KIB);
        let trace: Vec<String> = sim.trace.iter().map(|e| e.to_string()).collect();
        (trace, sim.report())
    };
    let (a, b) = (run(), run());
    assert_eq!(a.1, b.1, "seed 3: two runs ended differently");
    assert!(a.0 == b.0, "seed 3: two runs saw different traces");
}

/// `conns` concurrent connections through two workers, `bytes` each way.
fn two_workers(seed: u64, faults: Faults, conns: usize, bytes: usize) {
    let mut sim = Sim::new(seed, 2, faults);
    sim.rx_buffer = 256 * KIB;
    sim.tx_buffer = FAULTS_TX_BUFFER;
    sim.close_after_acked = faults != Faults::NONE;
    let ts: Vec<_> = (0..conns)
        .map(|i| sim.transfer(PASS_PORT + (i % 10) as u16, bytes, bytes))
        .collect();
    sim.run_until("every connection delivered and closed", MAX_STEPS, |s| {
        ts.iter().all(|t| s.transfer_done(t))
    });
    for t in &ts {
        sim.check_transfer(t);
    }
    assert_no_drops(&sim);

    let report = sim.report();
    let c = sim.counters();
    assert_eq!(
        c.flows_created, conns as u64,
        "seed {seed}: flows created\n{report}"
    );
    assert_eq!(
        c.flows_closed, conns as u64,
        "seed {seed}: flows closed\n{report}"
    );
    // Symmetric RSS: both directions of every connection on one worker, and both workers used.
    for t in &ts {
        let workers: std::collections::BTreeSet<_> =
            sim.trace_of(t.cport).iter().map(|e| e.worker).collect();
        assert_eq!(
            workers.len(),
            1,
            "seed {seed}: connection from port {} seen by workers {workers:?}",
            t.cport
        );
    }
    let per_worker: Vec<u64> = sim.flows_per_worker();
    assert!(
        per_worker.iter().all(|&n| n > 0),
        "seed {seed}: RSS left a worker idle: flows per worker {per_worker:?}\n{report}"
    );
    eprintln!(
        "seed {seed}: {} steps, {} ms virtual, flows per worker {per_worker:?}",
        sim.steps,
        sim.now - sim::START_MS
    );
}

#[test]
fn two_workers_concurrent_connections_without_faults() {
    two_workers(11, Faults::NONE, 8, 256 * KIB);
}

#[test]
fn two_workers_concurrent_connections_under_faults() {
    two_workers(12, Faults::HOSTILE, 6, 128 * KIB);
}

// ---------------------------------------------------------------------------------------------
// Known issues, scripted. Each asserts the behaviour that would be right and fails today.

/// Flags of a frame's TCP segment, with its sequence, acknowledgement and payload length.
fn tcp_of(frame: &[u8]) -> Option<(String, u32, u32, usize)> {
    sim::seg_info(frame).map(|s| (s.flags, s.seq, s.ack, s.len))
}

/// smoltcp 0.14 (not the box): a socket that closes with data in flight can lose its FIN for
/// good. The client writes 20 KB and closes at once, so its FIN rides on the last segment.
/// The first data segment is lost: the server keeps the rest but discards the FIN (it
/// follows a hole). The retransmission fills the hole and the server acknowledges all the
/// data but not the FIN. If that ACK then arrives four times (here duplicated by the link;
/// in the random runs three old duplicate segments do the same), the client counts three
/// duplicate ACKs, its fast-retransmit path finds the send buffer empty, sends nothing and
/// leaves the retransmission timer idle: the FIN is never sent again and the server never
/// leaves ESTABLISHED.
#[test]
#[ignore = "known issue in smoltcp 0.14: a FIN lost after a fast retransmit is never resent"]
fn smoltcp_loses_a_fin_after_a_fast_retransmit() {
    let mut sim = Sim::new(7, 1, Faults::NONE);
    sim.rx_buffer = 64 * KIB;
    sim.tx_buffer = 64 * KIB;
    let server = sim.listen(PASS_PORT);
    let cport = sim.client_port();
    let client = sim.connect(cport, PASS_PORT);
    let data = sim::payload(7, 0, 20_000);
    sim.send(client, &data);
    sim.close_when_sent(client);
    let fin_seq = Rc::new(Cell::new(None::<u32>));
    let (mut dropped_first, mut duplicated) = (false, false);
    let fin = Rc::clone(&fin_seq);
    sim.intercept = Some(Box::new(move |_, hop, frame| {
        let Some((flags, seq, ack, len)) = tcp_of(frame) else {
            return Fate::Pass;
        };
        match hop {
            Hop::ClientToBox if len > 0 && !dropped_first => {
                dropped_first = true;
                Fate::Drop
            }
            Hop::ClientToBox if flags.contains('F') => {
                fin.set(Some(seq.wrapping_add(len as u32)));
                Fate::Pass
            }
            Hop::ServerToBox if flags == "." && !duplicated && Some(ack) == fin.get() => {
                duplicated = true;
                Fate::Copies(4)
            }
            _ => Fate::Pass,
        }
    }));
    sim.run_until("the server has the data", 10_000, |s| {
        s.received(server).len() == data.len()
    });
    let got_fin = sim.try_run_until(10_000, |s| {
        s.state(server) == smoltcp::socket::tcp::State::CloseWait
    });
    let stalled = sim.fin_stalled(client);
    assert!(
        got_fin.is_ok(),
        "seed 7: the client's FIN never reached the server (client stalled: {stalled}, \
         FIN at {:?})\n{}\n{}",
        fin_seq.get(),
        sim.report(),
        sim.trace_of(cport)
            .iter()
            .rev()
            .take(12)
            .rev()
            .map(|e| format!("  {e}\n"))
            .collect::<String>()
    );
}

/// A half-closed connection survives a long silence: the client sends a request and shuts
/// its side down (FIN); the server thinks for 90 s and then answers — `ssh host 'sleep 90;
/// date' < /dev/null` does this. With conntrack's 60 s CLOSE-WAIT timeout the object would be
/// gone and the answer dropped as `no_flow` (the box has no mid-stream pick-up), so the box's
/// default `close_wait` is as long as `established`.
#[test]
fn half_closed_flow_survives_a_long_silence() {
    let seed = 9;
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let server = sim.listen(PASS_PORT);
    let cport = sim.client_port();
    let client = sim.connect(cport, PASS_PORT);
    let request = sim::payload(seed, 0, 100);
    let answer = sim::payload(seed, 1, 1000);
    sim.send(client, &request);
    sim.close_when_sent(client);
    sim.run_until("the server has the request and the FIN", 10_000, |s| {
        s.received(server).len() == request.len()
            && s.state(server) == smoltcp::socket::tcp::State::CloseWait
    });
    sim.run_for(90_000);
    sim.send(server, &answer);
    sim.close_when_sent(server);
    let done = sim.try_run_until(20_000, |s| {
        s.received(client).len() == answer.len() && s.is_finished(client)
    });
    assert!(
        done.is_ok() && sim.drops(DropReason::NoFlow) == 0,
        "seed {seed}: the answer after 90 s was dropped: {:?}\n{}\n{}",
        sim.nonzero_drops(),
        sim.report(),
        sim.explain_drops(6, 1)
    );
    sim::assert_stream(seed, "server -> client", &answer, sim.received(client));
}
