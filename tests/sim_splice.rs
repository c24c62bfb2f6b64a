//! `proxy` flows through the box's real worker and control-plane code in the deterministic
//! simulation (DESIGN.md §4, §7 item 2; the harness is `tests/sim`): the participating stack
//! terminates the connection, runs the application step, drains and splices it into the fast
//! path, which then rewrites every packet with Δ1/Δ2, the timestamp offsets and the window
//! scale translation.
//!
//! For each rule of `config/testbed.yaml`:
//!
//! | port | auth | splice | application step driven from the client host |
//! | --- | --- | --- | --- |
//! | 9000 | none | after-auth | none; the client says hello at once, the server sends a banner |
//! | 2323 | line | after-auth | reads the prompts, types `alice`, `wonderland` and more bytes |
//! | 8080 | http-basic | after-request | a GET with `Authorization: Basic`, answered by the server |
//! | 9001 | none | never | as 9000, relayed by the box to the end (a full proxy) |
//!
//! then megabytes each way after the splice, and the checks: both streams byte-exact (the box's
//! own bytes included, the credentials never reaching the server), not one drop, the object
//! installed with Δ1 = ISS(box→server) − ISN(client) − the bytes the box consumed and
//! Δ2 = ISS(box→client) − ISN(server) + the bytes the box sent of its own (read from the SYNs
//! on the wire), the window shifts crossed over, the legs freed, and every segment after the
//! splice carried by the fast path (none handed to control). 9001 instead counts `full_proxy`
//! at its close, with every segment through control.
//!
//! Under [`Faults::HOSTILE`] the same for none, line and http-basic, three seeds each, with
//! the hosts tuned as in `sim_forward` (close only once everything is acknowledged, 64 KiB
//! send buffers). Then the failures: three wrong passwords on `line` and one on `http-basic`
//! close the connection without the server ever seeing a SYN, counted in `auth_failed`; and a
//! server that vanishes during the drain makes it time out, both legs reset.
//!
//! With the password verifier threads in use (`control::verifier`, as under `cutthrough run`)
//! and a check held until the test releases it: a login being verified stalls no other
//! connection, an attempt beyond the pool's capacity is refused at once, and a verdict for a
//! connection that reset is discarded.
//!
//! Every assertion message starts with the seed. `RUST_LOG=control=debug` (or `trace`, for
//! every segment of every leg) shows the participating stack at work.

mod sim;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::config::SynCookies;
use common::conn::{Conn, ConnFlags};
use control::verifier::{CheckFn, Verifier};
use dataplane::worker::WorkerCounters;
use sim::expect_from_box;
use sim::script::*;
use sim::{assert_stream, payload, stream_id, Dir, EpId, Fate, Faults, Hop, Outcome, SegInfo, Sim};
use smoltcp::socket::tcp::State;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Steps allowed per phase: far more than any run takes.
const MAX_STEPS: u64 = 200_000;
/// Send buffers of the hosts under faults (see `sim_forward`: smoltcp's RTO backs off to 60 s
/// when a whole transfer fits in one window).
const FAULTS_TX_BUFFER: usize = 64 * KIB;
/// The drain's limit (control/src/proxy/conn.rs).
const DRAIN_TIMEOUT_MS: u64 = control::proxy::conn::DRAIN_TIMEOUT_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 9000: auth none, splice after-auth.
    None,
    /// 2323: auth line, splice after-auth.
    Line,
    /// 8080: auth http-basic, splice after-request.
    Http,
    /// 9001: auth none, splice never.
    Never,
}

impl Kind {
    fn port(self) -> u16 {
        match self {
            Kind::None => 9000,
            Kind::Line => 2323,
            Kind::Http => 8080,
            Kind::Never => 9001,
        }
    }

    /// Bytes of the client's stream the box keeps for itself (credentials).
    fn consumed(self) -> u32 {
        match self {
            Kind::Line => LINE_CREDENTIALS.len() as u32,
            Kind::Http => (REQUEST.len() - STRIPPED.len()) as u32,
            Kind::None | Kind::Never => 0,
        }
    }

    /// Bytes the box sends the client of its own (prompts, answers).
    fn produced(self) -> u32 {
        match self {
            Kind::Line => LINE_OUTPUT.len() as u32,
            Kind::Http | Kind::None | Kind::Never => 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the links carried

/// Recorded by an intercept on every frame put on a link, before the random faults.
#[derive(Debug, Default)]
struct Wiretap {
    /// The first SYN or SYN-ACK on each hop (`Hop as usize`).
    syn: [Option<SegInfo>; 4],
    /// TCP frames, RSTs, and the time of the first RST, on each hop.
    tcp: [u64; 4],
    rst: [u64; 4],
    first_rst_ms: [Option<u64>; 4],
    /// When the server's SYN-ACK was sent.
    server_synack_ms: Option<u64>,
    /// The server is gone: every segment from it but its SYN-ACK is lost.
    cut_server: bool,
    /// Once the box sent the client `Authenticated as alice.`, everything from the client is
    /// held back this long (ms) and then delivered in order: the drain waits for the client's
    /// acknowledgement meanwhile.
    hold_client_after_welcome: Option<u64>,
    /// Until when the client is held.
    hold_until: Option<u64>,
    /// From this time (ms) on, everything from the server is lost.
    cut_server_from: Option<u64>,
    /// Data segments put on the link to the client: (ms, seq, len), the first 100 000.
    to_client: Vec<(u64, u32, usize)>,
}

type Tap = Rc<RefCell<Wiretap>>;

fn wiretap(sim: &mut Sim) -> Tap {
    let tap = Tap::default();
    let t = Rc::clone(&tap);
    sim.intercept = Some(Box::new(move |now, hop, frame| {
        let Some(seg) = sim::seg_info(frame) else {
            return Fate::Pass;
        };
        let mut w = t.borrow_mut();
        let i = hop as usize;
        w.tcp[i] += 1;
        if seg.flags.contains('R') {
            w.rst[i] += 1;
            w.first_rst_ms[i].get_or_insert(now);
        }
        let syn = seg.flags.contains('S');
        if syn && hop == Hop::ServerToBox {
            w.server_synack_ms.get_or_insert(now);
        }
        if hop == Hop::BoxToClient && seg.len > 0 && w.to_client.len() < 100_000 {
            w.to_client.push((now, seg.seq, seg.len));
        }
        if syn && w.syn[i].is_none() {
            w.syn[i] = Some(seg);
        }
        if w.cut_server && hop == Hop::ServerToBox && !syn {
            return Fate::Drop;
        }
        if hop == Hop::ServerToBox && w.cut_server_from.is_some_and(|t| now >= t) {
            return Fate::Drop;
        }
        if let Some(hold) = w.hold_client_after_welcome {
            if hop == Hop::BoxToClient
                && w.hold_until.is_none()
                && frame.windows(WELCOME.len()).any(|x| x == WELCOME)
            {
                w.hold_until = Some(now + hold);
            }
        }
        match w.hold_until {
            Some(until) if hop == Hop::ClientToBox && now < until => Fate::Delay(until - now),
            _ => Fate::Pass,
        }
    }));
    tap
}

fn syn_on(tap: &Tap, hop: Hop, seed: u64) -> SegInfo {
    tap.borrow().syn[hop as usize]
        .clone()
        .unwrap_or_else(|| panic!("seed {seed}: no SYN seen on {hop:?}"))
}

// ---------------------------------------------------------------------------------------------
// One proxied connection

struct Run {
    sim: Sim,
    tap: Tap,
    kind: Kind,
    client: EpId,
    server: EpId,
    cport: u16,
    /// The streams each endpoint must end up with.
    c2s: Vec<u8>,
    s2c: Vec<u8>,
}

impl Run {
    fn seed(&self) -> u64 {
        self.sim.seed
    }

    fn key(&self) -> common::flow::FlowKey {
        sim::flow_key(self.cport, self.kind.port())
    }

    /// The connection's trace entries from index `from` of the whole trace on.
    fn trace_after(&self, from: usize) -> Vec<&sim::TraceEntry> {
        let cport = self.cport;
        self.sim.trace[from..]
            .iter()
            .filter(|e| {
                e.seg
                    .as_ref()
                    .is_some_and(|s| s.sport == cport || s.dport == cport)
            })
            .collect()
    }

    fn last_segments(&self, n: usize) -> String {
        let t = self.sim.trace_of(self.cport);
        t[t.len().saturating_sub(n)..]
            .iter()
            .map(|e| format!("  {e}\n"))
            .collect()
    }
}

/// A new simulation with a listener on `kind`'s port and a client connecting to it; the
/// application step is driven to its end (authenticated, request delivered).
fn start(kind: Kind, seed: u64, faults: Faults) -> Run {
    start_with(kind, seed, faults, |_| {})
}

/// [`start`], with the wiretap set up by `prepare` first.
fn start_with(kind: Kind, seed: u64, faults: Faults, prepare: impl FnOnce(&mut Wiretap)) -> Run {
    start_on(kind, seed, faults, |_| {}, |_| {}, prepare)
}

/// [`start_with`], with the box's configuration changed by `configure` (from the testbed's)
/// and the simulation adjusted by `adjust` before any socket exists.
fn start_on(
    kind: Kind,
    seed: u64,
    faults: Faults,
    configure: impl FnOnce(&mut common::config::Config),
    adjust: impl FnOnce(&mut Sim),
    prepare: impl FnOnce(&mut Wiretap),
) -> Run {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut config = sim::testbed_config();
    config.flow_table.capacity = sim::SIM_FLOW_CAPACITY;
    configure(&mut config);
    let mut sim = Sim::with_config(seed, 1, faults, config);
    if faults != Faults::NONE {
        sim.tx_buffer = FAULTS_TX_BUFFER;
        sim.close_after_acked = true;
    }
    adjust(&mut sim);
    let tap = wiretap(&mut sim);
    prepare(&mut tap.borrow_mut());
    let port = kind.port();
    let server = sim.listen(port);
    let cport = sim.client_port();
    let client = sim.connect(cport, port);
    let (c2s, s2c) = match kind {
        Kind::None | Kind::Never => {
            // Written as soon as each side is connected.
            sim.send(server, BANNER);
            sim.send(client, HELLO);
            (HELLO.to_vec(), BANNER.to_vec())
        }
        Kind::Line => {
            sim.send(server, BANNER);
            expect_from_box(&mut sim, client, b"Username: ", "the user name prompt");
            sim.send(client, b"alice\r\n");
            expect_from_box(
                &mut sim,
                client,
                b"Username: Password: ",
                "the password prompt",
            );
            // The password and the first application bytes in one segment.
            sim.send(client, &[PASSWORD_LINE, LEFTOVER].concat());
            expect_from_box(&mut sim, client, LINE_OUTPUT, "the welcome");
            (LEFTOVER.to_vec(), [LINE_OUTPUT, BANNER].concat())
        }
        Kind::Http => {
            sim.send(client, REQUEST);
            sim.run_until("the server has the request", MAX_STEPS, |s| {
                s.received(server).len() >= STRIPPED.len()
            });
            assert_stream(
                seed,
                "the request as the server got it (without Authorization)",
                STRIPPED,
                sim.received(server),
            );
            sim.send(server, RESPONSE_HEAD);
            (STRIPPED.to_vec(), RESPONSE_HEAD.to_vec())
        }
    };
    assert_eq!(
        sim.proxy_connections().auth_failed,
        0,
        "seed {seed}: {kind:?}: authentication failed\n{}",
        sim.report()
    );
    Run {
        sim,
        tap,
        kind,
        client,
        server,
        cport,
        c2s,
        s2c,
    }
}

/// Queues `bulk` bytes each way, closes both sides after them, runs until both have
/// everything and have closed, and checks both streams byte-exact.
fn finish(run: &mut Run, bulk: usize) {
    let seed = run.seed();
    let bc = payload(seed, stream_id(run.cport, Dir::ClientToServer), bulk);
    let bs = payload(seed, stream_id(run.cport, Dir::ServerToClient), bulk);
    let (client, server) = (run.client, run.server);
    run.sim.send(client, &bc);
    run.sim.send(server, &bs);
    run.sim.close_when_sent(client);
    run.sim.close_when_sent(server);
    run.c2s.extend_from_slice(&bc);
    run.s2c.extend_from_slice(&bs);
    let (nc, ns) = (run.s2c.len(), run.c2s.len());
    let done = run.sim.try_run_until(MAX_STEPS, |s| {
        s.received(client).len() >= nc
            && s.received(server).len() >= ns
            && s.is_finished(client)
            && s.is_finished(server)
    });
    // Bytes first: a wrong byte explains more than a stuck close.
    let port = run.kind.port();
    for (what, expected, got) in [
        (
            format!("client:{} -> server:{port}", run.cport),
            &run.c2s,
            run.sim.received(server),
        ),
        (
            format!("server:{port} -> client:{}", run.cport),
            &run.s2c,
            run.sim.received(client),
        ),
    ] {
        if expected[..] != got[..] {
            let first = expected
                .iter()
                .zip(got)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(got.len()));
            panic!(
                "seed {seed}: {what}: expected {} bytes, got {}; first difference at offset \
                 {first}{}\n{}\nlast segments:\n{}",
                expected.len(),
                got.len(),
                if done.is_err() { " (not finished)" } else { "" },
                run.sim.report(),
                run.last_segments(12)
            );
        }
    }
    if done.is_err() {
        let stalled: Vec<&str> = [(client, "client"), (server, "server")]
            .into_iter()
            .filter(|&(ep, _)| run.sim.fin_stalled(ep))
            .map(|(_, name)| name)
            .collect();
        panic!(
            "seed {seed}: {:?}: both sides did not finish closing (FIN stalled in smoltcp: \
             {stalled:?})\n{}\nlast segments:\n{}",
            run.kind,
            run.sim.report(),
            run.last_segments(12)
        );
    }
}

/// Panics with the evidence if the box dropped anything.
fn assert_no_drops(run: &Run) {
    let sim = &run.sim;
    assert_eq!(
        sim.counters().drops.total(),
        0,
        "seed {}: {:?}: unexpected drops {:?}\n{}\n{}",
        sim.seed,
        run.kind,
        sim.nonzero_drops(),
        sim.report(),
        sim.explain_drops(16, 5)
    );
}

/// What the splice left: the counters and the trace length right after it, and the object.
struct AtSplice {
    counters: WorkerCounters,
    trace_len: usize,
    conn: Conn,
}

/// Runs until the connection is spliced; checks the counters, that the legs are gone, and the
/// installed object against the SYNs on the wire.
fn splice(run: &mut Run) -> AtSplice {
    let seed = run.seed();
    let kind = run.kind;
    run.sim.run_until("the splice", MAX_STEPS, |s| {
        let c = s.proxy_connections();
        c.spliced + c.fallback + c.drain_timeout + c.full_proxy > 0
    });
    let sim = &run.sim;
    let report = sim.report();
    let c = sim.proxy_connections();
    assert_eq!(
        (
            c.proxied,
            c.spliced,
            c.fallback,
            c.drain_timeout,
            c.auth_failed
        ),
        (1, 1, 0, 0, 0),
        "seed {seed}: {kind:?}: (proxied, spliced, fallback, drain_timeout, auth_failed)\n{report}"
    );
    assert_eq!(
        sim.the_box.plane.proxy.active(),
        0,
        "seed {seed}: {kind:?}: the legs outlive the splice\n{report}"
    );
    let key = run.key();
    let (_, conn) = sim.installed(&key).unwrap_or_else(|| {
        panic!("seed {seed}: {kind:?}: no object for {key} after the splice\n{report}")
    });
    assert_eq!(
        conn.flags & (ConnFlags::SPLICED | ConnFlags::PROXIED | ConnFlags::TIMESTAMPS),
        ConnFlags::SPLICED | ConnFlags::TIMESTAMPS,
        "seed {seed}: {kind:?}: flags of the installed object {conn:?}"
    );

    // Δ from the initial sequence numbers on the wire and what the box kept and added.
    let client_syn = syn_on(&run.tap, Hop::ClientToBox, seed);
    let box_synack = syn_on(&run.tap, Hop::BoxToClient, seed);
    let box_syn = syn_on(&run.tap, Hop::BoxToServer, seed);
    let server_synack = syn_on(&run.tap, Hop::ServerToBox, seed);
    let delta1 = box_syn
        .seq
        .wrapping_sub(client_syn.seq)
        .wrapping_sub(kind.consumed());
    let delta2 = box_synack
        .seq
        .wrapping_sub(server_synack.seq)
        .wrapping_add(kind.produced());
    assert_eq!(
        (conn.delta1, conn.delta2),
        (delta1, delta2),
        "seed {seed}: {kind:?}: (Δ1, Δ2) of {conn:?}; SYNs: client {client_syn}, box→client \
         {box_synack}, box→server {box_syn}, server {server_synack}"
    );
    assert!(
        conn.delta1 != 0 && conn.delta2 != 0,
        "seed {seed}: {kind:?}: a zero Δ: {conn:?}"
    );
    // Window scaling: the shift each endpoint uses in, the shift its peer believes out.
    let shifts = |s: &SegInfo| {
        s.wscale
            .unwrap_or_else(|| panic!("seed {seed}: no window scale in {s}"))
    };
    assert_eq!(
        (conn.wscale_in, conn.wscale_out),
        (
            [shifts(&client_syn), shifts(&server_synack)],
            [shifts(&box_syn), shifts(&box_synack)]
        ),
        "seed {seed}: {kind:?}: (wscale_in, wscale_out) of {conn:?}"
    );
    AtSplice {
        counters: sim.counters(),
        trace_len: sim.trace.len(),
        conn,
    }
}

/// After the splice the fast path carried every segment of the connection: none went to
/// control, the worker forwarded at least every data segment.
fn assert_fast_path(run: &Run, at: &AtSplice, bulk: usize) {
    let seed = run.seed();
    let kind = run.kind;
    let after = run.trace_after(at.trace_len);
    let to_control: Vec<_> = after
        .iter()
        .filter(|e| e.outcome == Outcome::ToControl)
        .map(|e| format!("  {e}\n"))
        .collect();
    let data = after
        .iter()
        .filter(|e| e.seg.as_ref().is_some_and(|s| s.len > 0))
        .count() as u64;
    let c = run.sim.counters();
    let forwarded = c.forwarded - at.counters.forwarded;
    let to_ctl = c.to_control - at.counters.to_control;
    let min_data = (2 * bulk / 1448) as u64;
    // (The counter also counts the hosts' ARP refreshes, every minute of virtual time.)
    assert!(
        to_control.is_empty(),
        "seed {seed}: {kind:?}: {} segments went to control after the splice:\n{}\n{}",
        to_control.len(),
        to_control[..to_control.len().min(5)].concat(),
        run.sim.report()
    );
    assert!(
        data >= min_data && forwarded >= data,
        "seed {seed}: {kind:?}: after the splice {data} data segments (at least {min_data}), \
         {forwarded} forwarded\n{}",
        run.sim.report()
    );
    eprintln!(
        "seed {seed}: {kind:?}: spliced with Δ1={:#010x} Δ2={:#010x} ts_offset={:x?}; after it \
         {forwarded} forwarded ({data} data segments), {to_ctl} packets to control (ARP \
         included); {} ms virtual, {} steps",
        at.conn.delta1,
        at.conn.delta2,
        at.conn.ts_offset,
        run.sim.now - sim::START_MS,
        run.sim.steps
    );
}

/// One proxied connection of `kind` (not `never`): application step, splice, `bulk` each way.
fn spliced(kind: Kind, seed: u64, faults: Faults, bulk: usize) {
    spliced_on(kind, seed, faults, bulk, SynCookies::Auto)
}

/// [`spliced`] with `proxy.syn_cookies` set to `cookies`.
fn spliced_on(kind: Kind, seed: u64, faults: Faults, bulk: usize, cookies: SynCookies) {
    let configure = |c: &mut common::config::Config| c.proxy.syn_cookies = cookies;
    let mut run = start_on(kind, seed, faults, configure, |_| {}, |_| {});
    let at = splice(&mut run);
    assert_cookies(&run, cookies);
    finish(&mut run, bulk);
    assert_no_drops(&run);
    assert_fast_path(&run, &at, bulk);
    let c = run.sim.proxy_connections();
    assert_eq!(
        (c.proxied, c.spliced, c.full_proxy),
        (1, 1, 0),
        "seed {seed}: {kind:?}: (proxied, spliced, full_proxy) at the end\n{}",
        run.sim.report()
    );
    if faults != Faults::NONE {
        let faults: u64 = Hop::ALL
            .iter()
            .map(|&h| {
                let s = run.sim.hop_stats(h);
                s.dropped + s.duplicated + s.delayed
            })
            .sum();
        assert!(
            faults > 0,
            "seed {seed}: the network was not hostile\n{}",
            run.sim.report()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Clean network

#[test]
fn none_splices_after_the_handshakes() {
    spliced(Kind::None, 1, Faults::NONE, 2 * MIB);
}

#[test]
fn line_splices_after_authentication() {
    spliced(Kind::Line, 2, Faults::NONE, 2 * MIB);
}

#[test]
fn http_basic_splices_after_the_request() {
    spliced(Kind::Http, 3, Faults::NONE, 2 * MIB);
}

/// 9001 (`splice: never`): the box relays everything itself; `full_proxy` is counted at the
/// close, nothing is spliced and not one segment takes the fast path.
#[test]
fn never_relays_everything_as_a_full_proxy() {
    full_proxy(4, Faults::NONE, 2 * MIB);
}

fn full_proxy(seed: u64, faults: Faults, bulk: usize) {
    full_proxy_on(seed, faults, bulk, SynCookies::Auto)
}

/// With `always`, one connection came from the ACK of a cookie (a client whose ACK was lost
/// may have its next segment judged a wrong cookie first); otherwise none was sent.
fn assert_cookies(run: &Run, cookies: SynCookies) {
    let p = &run.sim.the_box.plane.proxy.counters;
    let counts = (
        p.syn_cookies_sent,
        p.syn_cookies_accepted,
        p.syn_cookies_invalid,
    );
    let ok = match cookies {
        SynCookies::Always => {
            p.syn_cookies_sent >= 1
                && p.syn_cookies_accepted == 1
                && (run.sim.faults != [Faults::NONE; 2] || p.syn_cookies_invalid == 0)
        }
        _ => counts == (0, 0, 0),
    };
    assert!(
        ok,
        "seed {}: {:?}: syn_cookies {cookies:?}: (sent, accepted, invalid) {counts:?}\n{}",
        run.seed(),
        run.kind,
        run.sim.report()
    );
}

fn full_proxy_on(seed: u64, faults: Faults, bulk: usize, cookies: SynCookies) {
    let configure = |c: &mut common::config::Config| c.proxy.syn_cookies = cookies;
    let mut run = start_on(Kind::Never, seed, faults, configure, |_| {}, |_| {});
    let (client, server) = (run.client, run.server);
    let (nc, ns) = (run.s2c.len(), run.c2s.len());
    run.sim
        .run_until("the first bytes relayed both ways", MAX_STEPS, |s| {
            s.received(client).len() >= nc && s.received(server).len() >= ns
        });
    finish(&mut run, bulk);
    assert_no_drops(&run);
    assert_cookies(&run, cookies);
    let (cport, port) = (run.cport, Kind::Never.port());
    run.sim
        .run_until("the box closed both legs", MAX_STEPS, |s| {
            s.proxy_connections().full_proxy > 0
        });
    let sim = &run.sim;
    let report = sim.report();
    let c = sim.proxy_connections();
    assert_eq!(
        (
            c.proxied,
            c.spliced,
            c.full_proxy,
            c.fallback,
            c.drain_timeout
        ),
        (1, 0, 1, 0, 0),
        "seed {seed}: (proxied, spliced, full_proxy, fallback, drain_timeout)\n{report}"
    );
    let trace = sim.trace_of(cport);
    let forwarded = trace
        .iter()
        .filter(|e| e.outcome != Outcome::ToControl)
        .count();
    let data = trace
        .iter()
        .filter(|e| e.seg.as_ref().is_some_and(|s| s.len > 0))
        .count();
    assert_eq!(
        forwarded, 0,
        "seed {seed}: segments of a full proxy that did not go to control\n{report}"
    );
    assert!(
        data >= 2 * bulk / 1448,
        "seed {seed}: {data} data segments\n{report}"
    );
    let segments = trace.len();
    // A leg that closed at the same time as its peer waits in TIME-WAIT (10 s) first.
    let key = sim::flow_key(cport, port);
    run.sim
        .run_until("the placeholder and the legs gone", MAX_STEPS, |s| {
            s.installed(&key).is_none() && s.the_box.plane.proxy.active() == 0
        });
    let sim = &run.sim;
    eprintln!(
        "seed {seed}: Never: {segments} segments through control, {} ms virtual, {} steps",
        sim.now - sim::START_MS,
        sim.steps
    );
}

// ---------------------------------------------------------------------------------------------
// SYN cookies (`proxy.syn_cookies: always`): the box answers the SYN without keeping anything
// and builds the legs from the client's ACK; the splice's Δ must still match the wire.

#[test]
fn every_rule_splices_after_a_syn_cookie() {
    for (kind, seed) in [(Kind::None, 61), (Kind::Line, 62), (Kind::Http, 63)] {
        spliced_on(kind, seed, Faults::NONE, MIB, SynCookies::Always);
    }
    full_proxy_on(64, Faults::NONE, MIB, SynCookies::Always);
}

#[test]
fn every_rule_splices_after_a_syn_cookie_under_faults() {
    for (kind, seed) in [(Kind::None, 65), (Kind::Line, 66), (Kind::Http, 67)] {
        spliced_on(kind, seed, Faults::HOSTILE, FAULTY_BULK, SynCookies::Always);
    }
    full_proxy_on(68, Faults::HOSTILE, FAULTY_BULK, SynCookies::Always);
}

/// A SYN flood toward the `line` rule whose senders never answer the SYN-ACK fills the
/// pending-handshake table; then a real client connects. Returns it, when it connected, and
/// the flood's client ports (the box's SYN-ACKs to them are lost).
type Ports = Rc<RefCell<std::collections::HashSet<u16>>>;
fn flood_then_connect(seed: u64, cookies: SynCookies) -> (Sim, EpId, u64, Ports) {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut config = sim::testbed_config();
    config.flow_table.capacity = sim::SIM_FLOW_CAPACITY;
    config.proxy.syn_cookies = cookies;
    let mut sim = Sim::with_config(seed, 1, Faults::NONE, config);
    let flooders = Rc::new(RefCell::new(std::collections::HashSet::new()));
    let f = Rc::clone(&flooders);
    sim.intercept = Some(Box::new(move |_, hop, frame| match sim::seg_info(frame) {
        Some(s) if hop == Hop::BoxToClient && s.flags.contains('S') => {
            if f.borrow().contains(&s.dport) {
                Fate::Drop
            } else {
                Fate::Pass
            }
        }
        _ => Fate::Pass,
    }));
    let port = Kind::Line.port();
    sim.listen(port);
    let embryonic = control::proxy::MAX_EMBRYONIC;
    for _ in 0..embryonic {
        let p = sim.client_port();
        flooders.borrow_mut().insert(p);
        sim.connect(p, port);
    }
    sim.run_for(200);
    assert_eq!(
        sim.the_box.plane.proxy.active(),
        embryonic,
        "seed {seed}: the flood's handshakes pending\n{}",
        sim.report()
    );
    let p = sim.client_port();
    let t0 = sim.now;
    let ep = sim.connect(p, port);
    (sim, ep, t0, flooders)
}

/// `syn_cookies: auto`: with the pending-handshake table full, the next SYN gets a cookie and
/// the client logs in at once, long before the flood's handshakes time out.
#[test]
fn a_client_logs_in_with_a_cookie_while_a_syn_flood_fills_the_handshake_table() {
    let seed = 71;
    let (mut sim, client, t0, ports) = flood_then_connect(seed, SynCookies::Auto);
    // More of the flood while the table is full: answered with cookies, nothing kept (the
    // flooders' own retransmissions still find their placeholders).
    let flows = sim.flows();
    let flooders: Vec<EpId> = (0..64)
        .map(|_| {
            let p = sim.client_port();
            ports.borrow_mut().insert(p);
            sim.connect(p, Kind::Line.port())
        })
        .collect();
    expect_from_box(&mut sim, client, b"Username: ", "the user name prompt");
    assert!(
        sim.flows() <= flows + 1 && flooders.iter().all(|&f| sim.state(f) == State::SynSent),
        "seed {seed}: {} flows before the last 64 SYNs, {} after (one is the client's)\n{}",
        flows,
        sim.flows(),
        sim.report()
    );
    sim.send(client, b"alice\r\n");
    sim.send(client, PASSWORD_LINE);
    expect_from_box(&mut sim, client, LINE_OUTPUT, "the welcome");
    let waited = sim.now - t0;
    let p = &sim.the_box.plane.proxy.counters;
    let counts = (
        p.syn_cookies_sent,
        p.syn_cookies_accepted,
        p.syn_cookies_invalid,
    );
    assert!(
        waited < control::proxy::EMBRYONIC_MS / 2 && counts.0 >= 65 && counts.1 == 1 && counts.2 == 0,
        "seed {seed}: logged in after {waited} ms; cookies (sent, accepted, invalid) {counts:?}\n{}",
        sim.report()
    );
    eprintln!("seed {seed}: logged in {waited} ms after connecting; cookies {counts:?}");
}

/// The same flood with `syn_cookies: never`: the client is refused until the pending
/// handshakes time out (the test above would fail without cookies).
#[test]
fn without_cookies_a_syn_flood_locks_clients_out() {
    let seed = 72;
    let (mut sim, client, _, _) = flood_then_connect(seed, SynCookies::Never);
    sim.run_for(2_000);
    let p = &sim.the_box.plane.proxy.counters;
    assert!(
        sim.state(client) == State::SynSent && p.embryonic_refused >= 1 && p.syn_cookies_sent == 0,
        "seed {seed}: client {}, refused {}\n{}",
        sim.state(client),
        p.embryonic_refused,
        sim.report()
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile network

/// The client leg finishes its orderly close (CLOSED) while the server leg still waits for
/// the acknowledgement of its last segment: the box must not take the CLOSED client leg for a
/// vanished client and reset the server leg (it once did: the server's late segments were then
/// dropped as `no_flow`).
#[test]
fn never_relays_under_faults_seed_51() {
    full_proxy(51, Faults::HOSTILE, FAULTY_BULK);
}

const FAULTY_BULK: usize = 512 * KIB;

#[test]
fn none_splices_under_faults_seed_11() {
    spliced(Kind::None, 11, Faults::HOSTILE, FAULTY_BULK);
}

#[test]
fn none_splices_under_faults_seed_12() {
    spliced(Kind::None, 12, Faults::HOSTILE, FAULTY_BULK);
}

#[test]
fn none_splices_under_faults_seed_13() {
    spliced(Kind::None, 13, Faults::HOSTILE, FAULTY_BULK);
}

#[test]
fn line_splices_under_faults_seed_21() {
    spliced(Kind::Line, 21, Faults::HOSTILE, FAULTY_BULK);
}

#[test]
fn line_splices_under_faults_seed_22() {
    spliced(Kind::Line, 22, Faults::HOSTILE, FAULTY_BULK);
}

#[test]
fn line_splices_under_faults_seed_23() {
    spliced(Kind::Line, 23, Faults::HOSTILE, FAULTY_BULK);
}

#[test]
fn http_basic_splices_under_faults_seed_31() {
    spliced(Kind::Http, 31, Faults::HOSTILE, FAULTY_BULK);
}

#[test]
fn http_basic_splices_under_faults_seed_32() {
    spliced(Kind::Http, 32, Faults::HOSTILE, FAULTY_BULK);
}

#[test]
fn http_basic_splices_under_faults_seed_33() {
    spliced(Kind::Http, 33, Faults::HOSTILE, FAULTY_BULK);
}

/// A sweep over many seeds (`SIM_SEEDS` per rule, default 50; `SIM_KINDS` a comma-separated
/// subset of none, line, http, never) under the hostile faults, 128 KiB each way after the
/// splice, every check of the single runs; lists every failing seed with its message
/// (`SIM_SEEDS=1000 cargo test --test sim_splice -- --ignored many_seeds`: about a minute per
/// rule; `SIM_COOKIES=always` answers every SYN with a SYN cookie: up to 5 % of the `line`
/// runs may then hang at the prompt, their ACK of the cookie lost).
#[test]
#[ignore]
fn many_seeds_under_faults() {
    let n: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let (mut failed, mut unclean, mut lost_ack) = (Vec::new(), Vec::new(), Vec::new());
    let kinds: Vec<Kind> = match std::env::var("SIM_KINDS") {
        Ok(v) => v
            .split(',')
            .map(|k| match k {
                "none" => Kind::None,
                "line" => Kind::Line,
                "http" => Kind::Http,
                "never" => Kind::Never,
                _ => panic!("SIM_KINDS: none, line, http, never"),
            })
            .collect(),
        Err(_) => vec![Kind::None, Kind::Line, Kind::Http, Kind::Never],
    };
    let cookies = match std::env::var("SIM_COOKIES").as_deref() {
        Ok("always") => SynCookies::Always,
        Ok("never") => SynCookies::Never,
        Ok("auto") | Err(_) => SynCookies::Auto,
        Ok(_) => panic!("SIM_COOKIES: auto, always, never"),
    };
    for &kind in &kinds {
        for i in 1..=n {
            let seed = 10_000 * kind.port() as u64 + i;
            let r = std::panic::catch_unwind(|| match kind {
                Kind::Never => full_proxy_on(seed, Faults::HOSTILE, 128 * KIB, cookies),
                _ => spliced_on(kind, seed, Faults::HOSTILE, 128 * KIB, cookies),
            });
            if let Err(e) = r {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let line = format!("{kind:?} {}", msg.lines().next().unwrap_or(""));
                if msg.contains("did not finish closing") {
                    unclean.push(line);
                } else if cookies == SynCookies::Always
                    && kind == Kind::Line
                    && msg.contains("`the user name prompt` not reached")
                {
                    // SYN cookies' known limit (RFC 4987 §3.6): the client's ACK of the
                    // cookie is lost and the box, keeping nothing, cannot retransmit its
                    // SYN-ACK; a client that waits for the box to speak first then waits.
                    lost_ack.push(line);
                } else {
                    failed.push(line);
                }
            }
        }
    }
    let runs = kinds.len() as u64 * n;
    eprintln!(
        "{runs} runs: {} failed, {} unclean closes, {} cookie ACKs lost before a prompt:\n{}\n{}",
        failed.len(),
        unclean.len(),
        lost_ack.len(),
        unclean.join("\n"),
        lost_ack.join("\n")
    );
    // Hard failures: a byte missing or wrong, a drop, a segment through control after the
    // splice, a wrong Δ. A close that does not complete is tolerated up to 1 % of the runs:
    // the hosts' smoltcp can lose its own FIN (see `Sim::fin_stalled`).
    assert!(
        failed.is_empty() && unclean.len() as u64 * 100 <= runs && lost_ack.len() as u64 * 20 <= n,
        "{} of {runs} runs failed, {} did not close:\n{}\n{}",
        failed.len(),
        unclean.len(),
        failed.join("\n"),
        unclean.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Failures

/// The server was never contacted: no TCP segment toward it, its listener still listening.
fn assert_server_untouched(sim: &Sim, tap: &Tap, server: EpId) {
    let to_server = tap.borrow().tcp[Hop::BoxToServer as usize];
    assert!(
        to_server == 0 && sim.state(server) == State::Listen,
        "seed {}: the server was contacted: {to_server} segments, listener {}\n{}",
        sim.seed,
        sim.state(server),
        sim.report()
    );
}

/// Three wrong passwords on `line`: three `Login incorrect.`, then `Too many failures.` and
/// the box closes; the server never sees a SYN. The client types each line after its prompt
/// and closes once the box has closed.
#[test]
fn line_three_wrong_passwords_close_the_connection() {
    let seed = 41;
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let tap = wiretap(&mut sim);
    let server = sim.listen(2323);
    let cport = sim.client_port();
    let client = sim.connect(cport, 2323);
    let mut expected = Vec::new();
    for i in 0..3 {
        if i > 0 {
            expected.extend_from_slice(b"Login incorrect.\r\n");
        }
        expected.extend_from_slice(b"Username: ");
        expect_from_box(&mut sim, client, &expected, "the user name prompt");
        sim.send(client, b"alice\r\n");
        expected.extend_from_slice(b"Password: ");
        expect_from_box(&mut sim, client, &expected, "the password prompt");
        sim.send(client, format!("wonderlant{i}\r\n").as_bytes());
    }
    expected.extend_from_slice(b"Login incorrect.\r\nToo many failures.\r\n");
    expect_from_box(&mut sim, client, &expected, "the last refusal");
    sim.run_until("the box closed", MAX_STEPS, |s| {
        s.state(client) == State::CloseWait
    });
    sim.close_when_sent(client);
    sim.run_until("the connection closed", MAX_STEPS, |s| {
        s.is_finished(client) && s.flows() == 0
    });
    assert_stream(seed, "box -> client", &expected, sim.received(client));
    let c = sim.proxy_connections();
    assert_eq!(
        (c.proxied, c.auth_failed, c.spliced, c.full_proxy),
        (1, 1, 0, 0),
        "seed {seed}: (proxied, auth_failed, spliced, full_proxy)\n{}",
        sim.report()
    );
    assert_eq!(
        tap.borrow().rst[Hop::BoxToClient as usize],
        0,
        "seed {seed}: the box reset the client instead of closing\n{}",
        sim.report()
    );
    assert_server_untouched(&sim, &tap, server);
}

/// A wrong password on `http-basic`: the client gets the 401 and the box closes; the server
/// never sees a SYN.
#[test]
fn http_basic_wrong_password_gets_401() {
    let seed = 42;
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let tap = wiretap(&mut sim);
    let server = sim.listen(8080);
    let cport = sim.client_port();
    let client = sim.connect(cport, 8080);
    // alice:wonderlant
    sim.send(
        client,
        b"GET /x HTTP/1.1\r\nHost: s\r\nAuthorization: Basic YWxpY2U6d29uZGVybGFudA==\r\n\r\n",
    );
    sim.run_until("the box answered and closed", MAX_STEPS, |s| {
        s.state(client) == State::CloseWait
    });
    sim.close_when_sent(client);
    sim.run_until("the connection closed", MAX_STEPS, |s| {
        s.is_finished(client) && s.flows() == 0
    });
    let got = String::from_utf8_lossy(sim.received(client)).into_owned();
    assert!(
        got.starts_with("HTTP/1.1 401 Unauthorized\r\n")
            && got.contains("WWW-Authenticate: Basic realm=\"cutthrough\"\r\n")
            && got.contains("\r\nConnection: close\r\n")
            && got.contains("\r\n\r\n"),
        "seed {seed}: the client got {got:?}\n{}",
        sim.report()
    );
    let c = sim.proxy_connections();
    assert_eq!(
        (c.proxied, c.auth_failed, c.spliced, c.full_proxy),
        (1, 1, 0, 0),
        "seed {seed}: (proxied, auth_failed, spliced, full_proxy)\n{}",
        sim.report()
    );
    assert_server_untouched(&sim, &tap, server);
}

/// Data that reaches the box during the drain is stripped (not acknowledged), sent again by
/// its sender and carried by the fast path; segments queued toward control behind the one
/// that completed the drain are handed back to the worker and rewritten (DESIGN.md §4).
///
/// `line`: once the box sent the welcome, everything from the client is held back 300 ms, so
/// the drain waits for the client's acknowledgement. Meanwhile the server's banner arrives and
/// is stripped; the client writes two segments of its own, which arrive behind its
/// acknowledgement: the first is stripped as the drain completes, the second is already queued
/// toward control when the object is installed.
#[test]
fn data_during_the_drain_is_stripped_and_resent_through_the_fast_path() {
    let seed = 44;
    let bulk = 256 * KIB;
    let mut run = start_with(Kind::Line, seed, Faults::NONE, |w| {
        w.hold_client_after_welcome = Some(300)
    });
    let during = payload(seed, 99, 2500);
    let client = run.client;
    // Both segments at once, not the second after the first is acknowledged.
    let handle = run.sim.endpoint(client).handle;
    run.sim
        .host_mut(sim::HostId::Client)
        .socket_mut(handle)
        .set_nagle_enabled(false);
    run.sim.send(client, &during);
    run.c2s.extend_from_slice(&during);
    let at = splice(&mut run);
    let seed = run.seed();
    let before = &run.sim.trace[..at.trace_len];
    let cport = run.cport;
    let of_conn = |e: &&sim::TraceEntry| {
        e.seg
            .as_ref()
            .is_some_and(|s| s.sport == cport || s.dport == cport)
    };
    // Data segments that went to control before the splice, by direction.
    let data_to_control = |hop: Hop| -> Vec<SegInfo> {
        before
            .iter()
            .filter(of_conn)
            .filter(|e| e.hop == hop && e.outcome == Outcome::ToControl)
            .filter_map(|e| e.seg.clone())
            .filter(|s| s.len > 0)
            .collect()
    };
    let banner = data_to_control(Hop::ServerToBox);
    assert!(
        banner.iter().any(|s| s.len == BANNER.len()),
        "seed {seed}: the banner did not reach the box during the drain: {banner:?}"
    );
    let stripped_client = data_to_control(Hop::ClientToBox)
        .into_iter()
        .filter(|s| s.len != PASSWORD_LINE.len() + LEFTOVER.len() && s.len != 7)
        .count();
    let stragglers = run.sim.the_box.plane.proxy.counters.stragglers_forwarded;
    assert!(
        stripped_client >= 1 && stragglers >= 1,
        "seed {seed}: client data during the drain: {stripped_client} segments to control, \
         {stragglers} stragglers handed back\n{}\n{}",
        run.sim.report(),
        run.last_segments(30)
    );
    finish(&mut run, bulk);
    assert_no_drops(&run);
    // The banner the drain stripped went on at the splice, from control through the fast
    // path (rewritten into the client's space), not after the server's retransmission timeout.
    let banner_seq = banner[0].seq;
    let spliced_ms = run.sim.trace[at.trace_len - 1].t_ms;
    let at_client = banner_seq.wrapping_add(at.conn.delta2);
    let after = run.trace_after(at.trace_len);
    let resend_ms = run
        .tap
        .borrow()
        .to_client
        .iter()
        .find(|&&(t, seq, len)| t >= spliced_ms && seq == at_client && len == BANNER.len())
        .map(|&(t, _, _)| t - spliced_ms);
    assert!(
        resend_ms.is_some_and(|ms| ms < 200),
        "seed {seed}: the stripped banner did not reach the client within 200 ms of the splice \
         ({resend_ms:?} ms)\n{}",
        run.last_segments(30)
    );
    let by_server = after.iter().any(|e| {
        e.hop == Hop::ServerToBox
            && e.seg
                .as_ref()
                .is_some_and(|s| s.seq == banner_seq && s.len > 0)
    });
    assert!(
        !by_server,
        "seed {seed}: the server had to resend its banner"
    );
    let resent = run.sim.the_box.plane.proxy.counters.drain_resent;
    assert!(
        resent >= 2,
        "seed {seed}: {resent} stripped segments sent on at the splice (the banner and the \
         client's first segment at least)"
    );
    eprintln!(
        "seed {seed}: drain: banner stripped, {stripped_client} client segments to control, \
         {stragglers} stragglers; {} ms virtual",
        run.sim.now - sim::START_MS
    );
}

/// A client that sends its first data and closes while the box drains (`line`: its segments
/// are held back 300 ms after the welcome, so they meet the drain): the FIN is held back like
/// the data, the connection is still spliced (not kept as a full proxy), and data and FIN
/// reach the server through the fast path; the server closes too, and both ends finish.
#[test]
fn a_fin_during_the_drain_is_held_back_and_the_connection_still_spliced() {
    for seed in [45, 46, 47] {
        let mut run = start_with(Kind::Line, seed, Faults::NONE, |w| {
            w.hold_client_after_welcome = Some(300)
        });
        // Small enough to go with the FIN in the segment that also acknowledges the welcome:
        // the drain is waiting for that acknowledgement, so the FIN meets it.
        let during = payload(seed, 98, 100);
        let (client, server) = (run.client, run.server);
        run.sim.send(client, &during);
        run.sim.close_when_sent(client);
        run.c2s.extend_from_slice(&during);
        let at = splice(&mut run);
        let fin_to_control = run.sim.trace[..at.trace_len].iter().any(|e| {
            e.hop == Hop::ClientToBox
                && e.outcome == Outcome::ToControl
                && e.seg.as_ref().is_some_and(|s| s.flags.contains('F'))
        });
        assert!(
            fin_to_control,
            "seed {seed}: the client's FIN did not meet the drain\n{}",
            run.last_segments(30)
        );
        let want = run.c2s.clone();
        run.sim
            .run_until("the server gets the data and the FIN", MAX_STEPS, |s| {
                s.received(server).len() >= want.len()
                    && s.state(server) == smoltcp::socket::tcp::State::CloseWait
            });
        assert_eq!(run.sim.received(server), &want[..], "seed {seed}");
        run.sim.close_when_sent(server);
        run.sim.run_until("both ends finish", MAX_STEPS, |s| {
            s.is_finished(client) && s.is_finished(server)
        });
        let c = run.sim.proxy_connections();
        assert_eq!(
            (c.spliced, c.fallback, c.full_proxy, c.drain_timeout),
            (1, 0, 0, 0),
            "seed {seed}: (spliced, fallback, full_proxy, drain_timeout)\n{}",
            run.sim.report()
        );
        assert_no_drops(&run);
    }
}

/// The box's client leg lets the client have up to 128 KiB in flight, the server's own window
/// is 16 KiB: a client that keeps writing through the drain is still far ahead of the server
/// once spliced, and the server's first answers acknowledge data more than its window behind
/// what the client sent. The tracker must take that answer as new data (the installed object
/// allows for the box's window) so that the client's acknowledgements of it pass: seen on the
/// testbed as a spliced upload that stalled with every client segment dropped as
/// `ack_beyond_data`.
#[test]
fn a_client_far_ahead_of_the_server_window_is_tracked_after_the_splice() {
    for seed in [61, 62, 63] {
        let mut run = start_on(
            Kind::None,
            seed,
            Faults::NONE,
            |_| {},
            |sim| sim.rx_buffer = 16 * KIB,
            |_| {},
        );
        // Written at once: the drain strips what the client leg has no room for.
        let ahead = payload(seed, 98, 512 * KIB);
        run.sim.send(run.client, &ahead);
        run.c2s.extend_from_slice(&ahead);
        let at = splice(&mut run);
        let stripped = run.sim.trace[..at.trace_len]
            .iter()
            .filter(|e| e.hop == Hop::ClientToBox && e.outcome == Outcome::ToControl)
            .filter(|e| e.seg.as_ref().is_some_and(|s| s.len > 0))
            .count();
        finish(&mut run, 256 * KIB);
        assert_no_drops(&run);
        eprintln!(
            "seed {seed}: {stripped} client data segments reached control before the splice; \
             server window {} bytes",
            16 * KIB
        );
    }
}

/// A client that reuses its port at once (its last connection on it spliced and reset a
/// moment ago, well within the afterlife in which control still hands that quad's late
/// segments back to the worker) gets a new connection: its SYN is not taken for a straggler
/// of the old one (it was, and bounced between worker and control until the afterlife ended,
/// the client's SYN retransmissions timing out meanwhile).
#[test]
fn a_reused_client_port_gets_a_new_connection_at_once() {
    let seed = 71;
    let mut run = start(Kind::None, seed, Faults::NONE);
    splice(&mut run);
    let (client, cport) = (run.client, run.cport);
    let h = run.sim.endpoint(client).handle;
    run.sim.host_mut(sim::HostId::Client).socket_mut(h).abort();
    run.sim.run_for(5);
    // Smoltcp listens with one socket per connection.
    run.sim.listen(Kind::None.port());
    let t0 = run.sim.now;
    let again = run.sim.connect(cport, Kind::None.port());
    run.sim.send(again, HELLO);
    run.sim
        .run_until("the second connection is spliced", MAX_STEPS, |s| {
            s.proxy_connections().spliced >= 2
        });
    let took = run.sim.now - t0;
    assert!(
        took < 900,
        "seed {seed}: the second connection on port {cport} took {took} ms to splice (a SYN \
         retransmission or more)\n{}",
        run.last_segments(20)
    );
    assert_eq!(
        run.sim.the_box.plane.proxy.counters.superseded, 1,
        "seed {seed}: the new SYN ended the old connection's afterlife"
    );
    eprintln!("seed {seed}: port {cport} reused: spliced again after {took} ms virtual");
}

/// Cuts the server off after its SYN-ACK during a `line` login with bytes after the password:
/// returns the simulation run until the drain timed out and both hosts' sockets are closed, with
/// the time from the server's SYN-ACK (when the drain began) to the box's reset of the client.
fn server_gone(seed: u64) -> (Sim, Tap, EpId, EpId, u64) {
    server_gone_after(seed, Duration::from_millis(DRAIN_TIMEOUT_MS))
}

/// [`server_gone`] with `proxy.drain_timeout` set to `limit`.
fn server_gone_after(seed: u64, limit: Duration) -> (Sim, Tap, EpId, EpId, u64) {
    let mut run = start_on(
        Kind::Line,
        seed,
        Faults::NONE,
        |c| c.proxy.drain_timeout = limit,
        |_| {},
        |w| w.cut_server = true,
    );
    let (client, server) = (run.client, run.server);
    run.sim.run_until("the drain timed out", MAX_STEPS, |s| {
        s.proxy_connections().drain_timeout > 0
            && s.state(client) == State::Closed
            && s.state(server) == State::Closed
    });
    let took = {
        let w = run.tap.borrow();
        let began = w.server_synack_ms.expect("the server answered the SYN");
        let reset = w.first_rst_ms[Hop::BoxToClient as usize].expect("a reset");
        reset - began
    };
    (run.sim, run.tap, client, server, took)
}

/// The server vanishes right after its SYN-ACK (every later segment from it is lost): the
/// leftover the box relayed after the login is never acknowledged, so the drain cannot finish;
/// it times out, both legs are reset and `drain_timeout` counted.
///
/// (`line` is the rule where this can happen: the box owes the server the bytes typed after the
/// password. With `http-basic` the drain only starts once the server acknowledged the request,
/// and with `none` the box owes nobody anything.)
#[test]
fn server_gone_during_the_drain_times_out() {
    let seed = 43;
    let (mut sim, tap, client, server, took) = server_gone(seed);
    let report = sim.report();
    let c = sim.proxy_connections();
    assert_eq!(
        (
            c.proxied,
            c.drain_timeout,
            c.spliced,
            c.fallback,
            c.auth_failed
        ),
        (1, 1, 0, 0, 0),
        "seed {seed}: (proxied, drain_timeout, spliced, fallback, auth_failed)\n{report}"
    );
    let (to_client, to_server) = {
        let w = tap.borrow();
        (
            w.rst[Hop::BoxToClient as usize],
            w.rst[Hop::BoxToServer as usize],
        )
    };
    assert!(
        to_client >= 1 && to_server >= 1,
        "seed {seed}: RSTs to the client {to_client}, to the server {to_server}\n{report}"
    );
    assert_eq!(
        sim.received(server),
        LEFTOVER,
        "seed {seed}: the server got the leftover (only its ACKs were lost)"
    );
    assert_stream(seed, "box -> client", LINE_OUTPUT, sim.received(client));
    eprintln!("seed {seed}: the drain was given up after {took} ms");
    // Never before the limit (the exact moment: see `drain_timeout_fires_at_its_deadline`).
    assert!(
        took > DRAIN_TIMEOUT_MS,
        "seed {seed}: the drain was given up after {took} ms, before the limit\n{report}"
    );
    sim.run_until("the placeholder removed", 1_000, |s| s.flows() == 0);
}

// ---------------------------------------------------------------------------------------------
// Defects these simulations found in the participating stack, each kept as a regression test.

/// The drain's limit is a timer of its own (`ProxyConn::poll_at`), not only the legs'
/// retransmission timers: with the server gone those back off 1 s, 2 s, 4 s, and the reset once
/// came about 7 s after the drain began instead of 5 s.
#[test]
fn drain_timeout_fires_at_its_deadline() {
    let seed = 43;
    let (sim, _, _, _, took) = server_gone(seed);
    assert!(
        took > DRAIN_TIMEOUT_MS && took <= DRAIN_TIMEOUT_MS + 50,
        "seed {seed}: the drain was given up {took} ms after it began (limit \
         {DRAIN_TIMEOUT_MS} ms)\n{}",
        sim.report()
    );
}

/// `proxy.drain_timeout` sets that deadline.
#[test]
fn the_drain_timeout_is_configured() {
    let seed = 43;
    let (sim, _, _, _, took) = server_gone_after(seed, Duration::from_millis(1500));
    // Measured from the server's SYN-ACK, as above. (It once came about 100 ms late: the
    // simulation skipped idle time past the box's own timers; it now stops at them.)
    assert!(
        (1501..=1550).contains(&took),
        "seed {seed}: the drain was given up {took} ms after it began (configured: 1500 ms)\n{}",
        sim.report()
    );
}

/// A fully proxied connection whose server vanishes while the box has data for it: the server
/// leg gives up after `LEG_TIMEOUT_SECS` without an acknowledgement, the client is reset, and
/// control lets the connection go (before, the leg retransmitted for good and the connection
/// was never released).
#[test]
fn a_vanished_server_ends_a_full_proxy() {
    let seed = 91;
    let mut run = start(Kind::Never, seed, Faults::NONE);
    run.sim.run_for(50);
    let cut = run.sim.now;
    run.tap.borrow_mut().cut_server_from = Some(cut);
    let bulk = payload(seed, 97, 64 * KIB);
    run.sim.send(run.client, &bulk);
    let limit = control::proxy::leg::LEG_TIMEOUT_SECS * 1000;
    run.sim.run_until("the client reset", MAX_STEPS, |s| {
        s.proxy_connections().in_proxy == 0 && s.the_box.plane.proxy.active() == 0
    });
    let reset_ms = run.tap.borrow().first_rst_ms[Hop::BoxToClient as usize];
    let after = reset_ms.map(|t| t - cut);
    assert!(
        after.is_some_and(|ms| ms >= limit && ms <= limit + 30_000),
        "seed {seed}: the client was reset {after:?} ms after the server vanished (limit \
         {limit} ms)\n{}",
        run.sim.report()
    );
    eprintln!("seed {seed}: server gone; the client was reset after {after:?} ms");
}

/// `proxy.max_connections`: a SYN beyond it is refused (counted, its placeholder gone), and
/// the client's retransmission gets in once a connection has left.
#[test]
fn max_connections_refuses_then_admits() {
    let seed = 81;
    // `splice: never`: control holds the first connection for as long as it lasts.
    let mut run = start_on(
        Kind::Never,
        seed,
        Faults::NONE,
        |c| c.proxy.max_connections = 1,
        |_| {},
        |_| {},
    );
    let port = Kind::Never.port();
    run.sim.run_for(50);
    run.sim.listen(port);
    let p2 = run.sim.client_port();
    let second = run.sim.connect(p2, port);
    run.sim.run_for(300);
    let refused = run.sim.the_box.plane.proxy.counters.max_connections_refused;
    assert!(
        refused >= 1,
        "seed {seed}: the second SYN was not refused\n{}",
        run.sim.report()
    );
    assert_eq!(
        run.sim.state(second),
        State::SynSent,
        "seed {seed}: the second connection"
    );
    assert_eq!(
        run.sim.flows(),
        1,
        "seed {seed}: the refused SYN's placeholder is gone"
    );
    // The first leaves: the second's retransmitted SYN gets in.
    let h = run.sim.endpoint(run.client).handle;
    run.sim.host_mut(sim::HostId::Client).socket_mut(h).abort();
    run.sim.send(second, HELLO);
    run.sim.run_until(
        "the second connection's data at the server",
        MAX_STEPS,
        |s| {
            let got =
                |e: &&sim::Endpoint| e.host == sim::HostId::Server && e.received.starts_with(HELLO);
            s.endpoints.iter().filter(got).count() >= 2
        },
    );
    eprintln!("seed {seed}: {refused} SYNs refused while one connection was held");
}

/// A client that sends its request and at once shuts its sending side down (`printf 'GET ..'
/// | nc -N`, HTTP/1.0 clients): the request arrives with FIN, the client leg goes to
/// CLOSE-WAIT, and `ProxyConn::auth_step` reads nothing unless the leg is ESTABLISHED; then
/// `close_step` sees the FIN and closes. The request is acknowledged and never answered, the
/// server never contacted, nothing counted (a wrong password the same: no 401, no
/// `auth_failed`).
#[test]
fn http_request_with_fin_is_answered() {
    let seed = 45;
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let server = sim.listen(8080);
    let cport = sim.client_port();
    let client = sim.connect(cport, 8080);
    sim.send(client, REQUEST);
    sim.close_when_sent(client);
    let got = sim.try_run_until(20_000, |s| {
        s.received(server).len() >= STRIPPED.len() && s.state(server) == State::CloseWait
    });
    assert!(
        got.is_ok() && sim.received(server) == STRIPPED,
        "seed {seed}: the server got {:?} (state {}), the client {:?}\n{}",
        String::from_utf8_lossy(sim.received(server)),
        sim.state(server),
        String::from_utf8_lossy(sim.received(client)),
        sim.report()
    );
}

/// The same on `line`: `printf 'alice\r\nwonderland\r\ncmd\r\n' | nc -N box 2323` gets the
/// prompts, but the password line arrives with FIN and is never read: no answer, the server
/// never contacted.
#[test]
fn line_password_with_fin_is_checked() {
    let seed = 46;
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let server = sim.listen(2323);
    let cport = sim.client_port();
    let client = sim.connect(cport, 2323);
    expect_from_box(&mut sim, client, b"Username: ", "the user name prompt");
    sim.send(client, b"alice\r\n");
    expect_from_box(
        &mut sim,
        client,
        b"Username: Password: ",
        "the password prompt",
    );
    sim.send(client, &[PASSWORD_LINE, LEFTOVER].concat());
    sim.close_when_sent(client);
    let got = sim.try_run_until(20_000, |s| {
        s.received(server).len() >= LEFTOVER.len() && s.state(server) == State::CloseWait
    });
    assert!(
        got.is_ok() && sim.received(server) == LEFTOVER && sim.received(client) == LINE_OUTPUT,
        "seed {seed}: the server got {:?} (state {}), the client {:?}\n{}",
        String::from_utf8_lossy(sim.received(server)),
        sim.state(server),
        String::from_utf8_lossy(sim.received(client)),
        sim.report()
    );
}

/// `splice: never`, both sides close at once, and the box's segment carrying the client's last
/// bytes and its FIN to the server is lost. The client leg is the passive closer: once the
/// client acknowledges the box's FIN it is CLOSED, and `ProxyConn::app_step` takes a CLOSED
/// client leg for "a client that reset or vanished" and aborts the server leg — whose last
/// bytes are still waiting for their retransmission. The server gets a RST instead of the
/// bytes the box had already acknowledged to the client: silent data loss. (Under random
/// faults the same happens: seed 51 of the full proxy resets the server this way.)
#[test]
fn full_proxy_delivers_the_last_bytes_when_the_client_leg_closes_first() {
    let seed = 52;
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let server = sim.listen(9001);
    let cport = sim.client_port();
    let client = sim.connect(cport, 9001);
    sim.run_until("connected", 10_000, |s| {
        s.state(client) == State::Established && s.state(server) == State::Established
    });
    let mut dropped = false;
    sim.intercept = Some(Box::new(move |_, hop, frame| match sim::seg_info(frame) {
        Some(s) if hop == Hop::BoxToServer && s.flags.contains('F') && !dropped => {
            dropped = true;
            Fate::Drop
        }
        _ => Fate::Pass,
    }));
    let last = payload(seed, 1, 1000);
    sim.send(client, &last);
    sim.close_when_sent(client);
    sim.close_when_sent(server);
    let done = sim.try_run_until(20_000, |s| {
        s.received(server).len() >= last.len() && s.is_finished(server) && s.is_finished(client)
    });
    assert!(
        done.is_ok() && sim.received(server) == last,
        "seed {seed}: the server got {} of the client's last {} bytes (server {}, client {})\n{}\n{}",
        sim.received(server).len(),
        last.len(),
        sim.state(server),
        sim.state(client),
        sim.report(),
        sim.trace_of(cport)
            .iter()
            .map(|e| format!("  {e}\n"))
            .collect::<String>()
    );
}

/// A real credential check that first waits for a token from the returned sender (at most a
/// minute, so a failing test cannot hang on it).
fn held_check() -> (CheckFn, mpsc::Sender<()>) {
    let (release, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let check: CheckFn = Arc::new(move |dir, backend, name, password| {
        let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(60));
        dir.check(backend, name, password)
    });
    (check, release)
}

/// A `line` client up to its password prompt; then it sends `password`.
fn line_login(sim: &mut Sim, password: &[u8]) -> (EpId, u16) {
    let cport = sim.client_port();
    let client = sim.connect(cport, 2323);
    expect_from_box(sim, client, b"Username: ", "the user name prompt");
    sim.send(client, b"alice\r\n");
    expect_from_box(sim, client, b"Username: Password: ", "the password prompt");
    sim.send(client, password);
    (client, cport)
}

/// The box lets the pool's threads finish what they hold (in real time), so the next tick
/// collects every verdict whatever the scheduling.
fn verdicts_ready(sim: &Sim) {
    assert!(
        sim.the_box
            .plane
            .proxy
            .wait_verdicts(Duration::from_secs(60)),
        "seed {}: the verifier threads did not answer",
        sim.seed
    );
}

/// A `line` login is held in the verifier: meanwhile a second login finds the pool full (one
/// pending at most) and is refused unchecked, and a whole `auth: none` connection handshakes,
/// is spliced and carries its data both ways through the fast path. Released, the held login
/// completes as usual.
#[test]
fn a_login_being_verified_does_not_stall_other_connections() {
    let seed = 47;
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let (check, release) = held_check();
    let pool = Verifier::pool(1, 0, 1, check).expect("verifier thread");
    sim.the_box.plane.proxy.set_verifier(pool);
    let server = sim.listen(2323);
    let (client, cport) = line_login(&mut sim, &[PASSWORD_LINE, LEFTOVER].concat());
    sim.run_until("the attempt is with the verifier", MAX_STEPS, |s| {
        s.proxy_connections().auth_pending == 1
    });

    let _second_server = sim.listen(2323);
    let (second, _) = line_login(&mut sim, PASSWORD_LINE);
    expect_from_box(
        &mut sim,
        second,
        b"Username: Password: Login not checked, the box is busy.\r\nUsername: ",
        "the busy answer",
    );
    assert_eq!(sim.proxy_connections().auth_queue_full, 1, "seed {seed}");

    let t = sim.transfer(9000, 256 * KIB, 256 * KIB);
    sim.run_until("the 9000 transfer", MAX_STEPS, |s| s.transfer_done(&t));
    sim.check_transfer(&t);
    let key = sim::flow_key(cport, 2323);
    let c = sim.proxy_connections();
    assert_eq!(
        (c.spliced, c.auth_pending, c.auth_verified),
        (1, 1, 0),
        "seed {seed}: (spliced, auth_pending, auth_verified) during the held login\n{}",
        sim.report()
    );
    assert_eq!(sim.received(client), b"Username: Password: ", "seed {seed}");
    assert_eq!(
        sim.the_box.plane.proxy.phase_of(&key),
        Some("auth"),
        "seed {seed}"
    );
    assert_eq!(
        sim.state(server),
        State::Listen,
        "seed {seed}: server contacted"
    );

    release.send(()).unwrap();
    verdicts_ready(&sim);
    expect_from_box(&mut sim, client, LINE_OUTPUT, "the welcome");
    sim.run_until("the leftover at the server", MAX_STEPS, |s| {
        s.received(server).len() >= LEFTOVER.len()
    });
    assert_stream(seed, "client -> server", LEFTOVER, sim.received(server));
    sim.run_until("the login spliced", MAX_STEPS, |s| {
        s.proxy_connections().spliced == 2
    });
    let c = sim.proxy_connections();
    assert_eq!(
        (
            c.auth_verified,
            c.auth_pending,
            c.auth_failed,
            c.auth_discarded
        ),
        (1, 0, 0, 0),
        "seed {seed}: (verified, pending, failed, discarded)\n{}",
        sim.report()
    );
}

/// Eight logins at once from one address, held in the verifier: only as many are verified
/// at a time as the rate limit's budget (5 failures a minute); the others wait. Wrong
/// passwords: after five failures the waiting three are answered unchecked, and no more than
/// five guesses were ever verified. Right passwords: all eight get in, five then three.
#[test]
fn parallel_logins_of_one_address_are_verified_within_the_rate_limit() {
    for (seed, right) in [(49, false), (50, true)] {
        let _ = env_logger::builder().is_test(true).try_init();
        let mut sim = Sim::new(seed, 1, Faults::NONE);
        let (check, release) = held_check();
        let pool = Verifier::pool(1, 0, 64, check).expect("verifier thread");
        sim.the_box.plane.proxy.set_verifier(pool);
        let password: &[u8] = if right { PASSWORD_LINE } else { b"guess\r\n" };
        let clients: Vec<EpId> = (0..8)
            .map(|_| {
                sim.listen(2323);
                line_login(&mut sim, password).0
            })
            .collect();
        sim.run_for(50);
        let c = sim.proxy_connections();
        assert_eq!(
            (c.auth_pending, c.auth_verified),
            (5, 0),
            "seed {seed}: (pending, verified) with eight attempts sent\n{}",
            sim.report()
        );
        for round in [5, 3] {
            for _ in 0..round {
                release.send(()).unwrap();
            }
            verdicts_ready(&sim);
            sim.run_for(50);
        }
        let c = sim.proxy_connections();
        let answered = |s: &Sim, text: &[u8]| {
            clients
                .iter()
                .filter(|&&ep| s.received(ep).windows(text.len()).any(|w| w == text))
                .count()
        };
        let (welcomed, incorrect, unchecked) = (
            answered(&sim, WELCOME),
            answered(&sim, b"Login incorrect."),
            answered(&sim, control::auth::NOT_CHECKED),
        );
        let want = if right { (8, 8, 0, 0) } else { (5, 0, 5, 3) };
        assert_eq!(
            (c.auth_verified, welcomed, incorrect, unchecked),
            want,
            "seed {seed}: (verified, welcomed, incorrect, unchecked)\n{}",
            sim.report()
        );
    }
}

/// A client that resets while its wrong password is verified: the connection goes at once,
/// its verdict is discarded when it comes, and nothing is sent for it.
#[test]
fn a_verdict_for_a_connection_that_reset_is_discarded() {
    let seed = 48;
    let _ = env_logger::builder().is_test(true).try_init();
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let (check, release) = held_check();
    let pool = Verifier::pool(1, 0, 4, check).expect("verifier thread");
    sim.the_box.plane.proxy.set_verifier(pool);
    let tap = wiretap(&mut sim);
    let server = sim.listen(2323);
    let (client, cport) = line_login(&mut sim, b"wonderlant\r\n");
    sim.run_until("the attempt is with the verifier", MAX_STEPS, |s| {
        s.proxy_connections().auth_pending == 1
    });
    let e = sim.endpoint(client);
    let (host, handle) = (e.host, e.handle);
    sim.host_mut(host).socket_mut(handle).abort();
    let key = sim::flow_key(cport, 2323);
    sim.run_until("the box forgot the connection", MAX_STEPS, |s| {
        s.the_box.plane.proxy.phase_of(&key).is_none()
    });
    let to_client = tap.borrow().tcp[Hop::BoxToClient as usize];
    release.send(()).unwrap();
    verdicts_ready(&sim);
    sim.run_for(100);
    let c = sim.proxy_connections();
    assert_eq!(
        (
            c.auth_verified,
            c.auth_pending,
            c.auth_discarded,
            c.auth_failed
        ),
        (1, 0, 1, 0),
        "seed {seed}: (verified, pending, discarded, auth_failed)\n{}",
        sim.report()
    );
    assert_eq!(
        tap.borrow().tcp[Hop::BoxToClient as usize],
        to_client,
        "seed {seed}: the box answered a connection that was gone\n{}",
        sim.report()
    );
    assert_server_untouched(&sim, &tap, server);
}
