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

#[path = "../sim/mod.rs"]
mod sim;

mod clean;
mod cookies;
mod failures;
mod hostile;
mod regressions;
mod verifier;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::config::{AuthMethod, SynCookies};
use common::conn::{Conn, ConnFlags};
use dataplane::worker::WorkerCounters;
use sim::expect_from_box;
use sim::login::Handshakes;
use sim::script::*;
use sim::MAX_STEPS;
use sim::{assert_stream, payload, EpId, Fate, Faults, Hop, Outcome, SegInfo, Sim};
use smoltcp::socket::tcp::State;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// Send buffers of the hosts under faults (see `sim_forward`: smoltcp's RTO backs off to 60 s
/// when a whole transfer fits in one window).
const FAULTS_TX_BUFFER: usize = 64 * KIB;
/// The drain's limit (control/src/proxy/conn.rs).
const DRAIN_TIMEOUT_MS: u64 = control::proxy::conn::DRAIN_TIMEOUT_MS;
/// Bytes each way after the splice under faults.
const FAULTY_BULK: usize = 512 * KIB;

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

    fn auth(self) -> AuthMethod {
        match self {
            Kind::None | Kind::Never => AuthMethod::None,
            Kind::Line => AuthMethod::Line,
            Kind::Http => AuthMethod::HttpBasic,
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

    /// What starts a failure message about this connection.
    fn what(&self) -> String {
        format!("seed {}: {:?}", self.seed(), self.kind)
    }

    fn key(&self) -> common::flow::FlowKey {
        sim::flow_key(self.cport, self.kind.port())
    }

    /// The connection's trace entries from index `from` of the whole trace on.
    fn trace_after(&self, from: usize) -> Vec<&sim::TraceEntry> {
        self.sim.trace_of_since(self.cport, from)
    }

    fn last_segments(&self, n: usize) -> String {
        self.sim.last_segments(self.cport, n)
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
    let (client, server, cport) = sim.dial(kind.port());
    // On `line` the password and the first application bytes in one segment.
    let what = format!("seed {seed}: {kind:?}");
    let (c2s, s2c) =
        sim::login::application_step(&mut sim, &what, kind.auth(), false, client, server);
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
    let what = run.what();
    let eps = (run.client, run.server);
    let streams = (&mut run.c2s, &mut run.s2c);
    sim::login::finish_both_ways(&mut run.sim, &what, eps, run.cport, streams, bulk);
}

/// The proxy's connections by outcome: (proxied, spliced, full_proxy, fallback,
/// drain_timeout, auth_failed).
type Outcomes = (u64, u64, u64, u64, u64, u64);

/// Checks the proxy's connections by outcome (see [`Outcomes`]); `what` starts the message.
fn assert_outcomes(sim: &Sim, what: &str, want: Outcomes) {
    let c = sim.proxy_connections();
    assert_eq!(
        (
            c.proxied,
            c.spliced,
            c.full_proxy,
            c.fallback,
            c.drain_timeout,
            c.auth_failed
        ),
        want,
        "{what}: (proxied, spliced, full_proxy, fallback, drain_timeout, auth_failed)\n{}",
        sim.report()
    );
}

/// Panics with the evidence if the box dropped anything.
fn assert_no_drops(run: &Run) {
    run.sim.assert_no_drops(&run.what());
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
    assert_outcomes(sim, &run.what(), (1, 1, 0, 0, 0, 0));
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
        conn.flags() & (ConnFlags::SPLICED | ConnFlags::PROXIED | ConnFlags::TIMESTAMPS),
        ConnFlags::SPLICED | ConnFlags::TIMESTAMPS,
        "seed {seed}: {kind:?}: flags of the installed object {conn:?}"
    );

    // Δ from the initial sequence numbers on the wire and what the box kept and added.
    let syns = Handshakes {
        client_syn: syn_on(&run.tap, Hop::ClientToBox, seed),
        box_synack: syn_on(&run.tap, Hop::BoxToClient, seed),
        box_syn: syn_on(&run.tap, Hop::BoxToServer, seed),
        server_synack: syn_on(&run.tap, Hop::ServerToBox, seed),
    };
    syns.assert_deltas(&run.what(), &conn, kind.consumed(), kind.produced());
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
        (conn.wscale_in(), conn.wscale_out()),
        (
            [shifts(&syns.client_syn), shifts(&syns.server_synack)],
            [shifts(&syns.box_syn), shifts(&syns.box_synack)]
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
    let what = format!("{} at the end", run.what());
    assert_outcomes(&run.sim, &what, (1, 1, 0, 0, 0, 0));
    if faults != Faults::NONE {
        run.sim.assert_hostile(&format!("seed {seed}"));
    }
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
    assert_outcomes(sim, &run.what(), (1, 0, 1, 0, 0, 0));
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
