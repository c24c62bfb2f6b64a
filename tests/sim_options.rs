//! Splicing peers whose TCP options differ, in the deterministic simulation (DESIGN.md §4
//! "TCP options ... must be reconciled"; the harness is `tests/sim`, the same matrix on real
//! Linux peers is `tests/e2e_options.rs`).
//!
//! One host at a time has one setting changed from the defaults (the other host keeps them),
//! through [`HostOptions`]:
//!
//! | setting | how (smoltcp) |
//! | --- | --- |
//! | timestamps off | no TSval generator on the host's sockets |
//! | small receive buffer | 16 KiB: window shift 0, windows of at most 16 KiB |
//! | window scaling off | the option removed from every SYN the host sends and receives |
//! | MSS 536, 1220, 1360, 1400 | the host's IP MTU is MSS + 40 |
//!
//! smoltcp cannot turn SACK off or do ECN: `e2e_options` covers those.
//!
//! Each setting runs under six `proxy` rules on distinct ports ([`RULES`]: auth `none`,
//! `line`, `http-basic` × splice `after-auth`, `after-request`), one connection per
//! simulation (so no login is cached and no server's options are known beforehand). The
//! application step (as in `sim_splice`): `none` — the client says hello, the server sends a
//! banner; `line` — `alice`, `wonderland` (with `after-auth` the password and the client's
//! first bytes in one segment; with `after-request` the first bytes only after the welcome,
//! which the drain waits for); `http-basic` — a GET with credentials, answered by the server.
//! Then a bulk transfer each way after the splice, both sides close.
//!
//! Checks per connection, against what the box counted and what a wiretap saw on the links
//! (every frame put on a link, before the link's faults; a segment the box forwarded has TTL
//! 63, one the box's own legs sent TTL 64):
//! - spliced: `connections.spliced` 1, `fallback` 0 (no cause), no drain timeout, the legs
//!   freed, nothing sent to control after the splice, not one drop; both streams byte-exact;
//! - the object: Δ1 and Δ2 from the SYNs' sequence numbers and the bytes the box kept or said
//!   itself, the window shifts crossed over (0 on a link where either end did not offer
//!   scaling), `TIMESTAMPS` only when both legs negotiated them, `xlate` for timestamps on one
//!   leg, and `split_mss` when the box told the client more than the server accepts (or the
//!   server more than the client accepts: `Xlate::SPLIT_TO_CLIENT`);
//! - timestamps: a side that did not negotiate them with the box never gets the option; a
//!   side that did gets it on every segment (RSTs aside) with a TSval that never decreases
//!   from the box's leg to the fast path (PAWS holds) and a TSecr that is a TSval that side
//!   actually sent. Under faults the links reorder what the box forwards, so there the TSval
//!   order is checked only where the box makes the TSval itself (inserted), and a translated
//!   TSecr only for not coming from that side's future;
//! - MSS: no segment delivered to a side carries more data and options than the MSS that side
//!   announced in its SYN (SYN-ACK);
//! - counters: `ts_inserted` and `ts_removed` move exactly when one leg has timestamps, never
//!   `ts_insert_failed`; segments are split only when the object says so, never
//!   `split_failed`.
//!
//! A test runs its cases one after the other, prints a table of them, and then fails listing
//! every failing case, so one run shows a whole row of the matrix. Failure messages start with
//! the seed. The cases that need the fast path to split oversized segments (a server that
//! accepts less than the `line` and `http-basic` clients were told before the box reached it)
//! are in a test of their own.
//!
//! The cache of servers' options (`proxy.server_options`) needs two connections to one server
//! in one simulation: the first, checked as above and over, then the second from the next
//! client port, checked the same way (every check is of the latest connection, by its client
//! port; the edit counters by what moved during it). Logins are not remembered there
//! (`auth.cache_timeout` 0): a remembered login has the box reach the server first, which
//! would tell the client the server's MSS without the cache. Between the connections the
//! cache is turned off, the clock moved past `max_age`, or the server changed: its MTU (a new
//! smoltcp interface) or its timestamps (its next listening socket).

mod sim;

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

use common::config::{
    Action, AuthMethod, Cidr, HttpLogin, PortRange, Protocol, Rule, RuleLogin, SplicePoint, Zone,
};
use common::conn::{Conn, ConnFlags, Xlate};
use sim::expect_from_box;
use sim::script::*;
use sim::{
    assert_stream, payload, stream_id, Dir, EpId, Fate, Faults, Hop, HostOptions, Outcome, SegInfo,
    Sim, SimDevice,
};
use smoltcp::iface::{Config as IfaceConfig, Interface};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

const KIB: usize = 1024;
/// Steps allowed per phase: far more than any run takes.
const MAX_STEPS: u64 = 200_000;
/// Bytes each way after the splice on a clean network, and under faults.
const BULK: usize = 192 * KIB;
const FAULTY_BULK: usize = 128 * KIB;
/// Send buffers of the hosts under faults (see `sim_forward`: smoltcp's RTO backs off to 60 s
/// when a whole transfer fits in one window).
const FAULTS_TX_BUFFER: usize = 64 * KIB;
/// The receive buffer of the "small receive buffer" setting: window shift 0.
const SMALL_RX_BUFFER: usize = 16 * KIB;
/// A peer that did not send an MSS option accepts this (RFC 9293 §3.7.1).
const DEFAULT_MSS: u16 = 536;
/// Bytes of options beyond the 20-byte header that an inserted timestamp option adds.
const TS_ROOM: u16 = 12;
/// TTL of a segment the hosts or the box's legs send (smoltcp's default), and of one the
/// fast path forwarded.
const OWN_TTL: u8 = 64;

// ---------------------------------------------------------------------------------------------
// The matrix

/// One `proxy` rule of the test configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RuleSpec {
    auth: AuthMethod,
    splice: SplicePoint,
    port: u16,
}

/// The six rules, one per (auth, splice point), on distinct ports.
const RULES: [RuleSpec; 6] = [
    RuleSpec {
        auth: AuthMethod::None,
        splice: SplicePoint::AfterAuth,
        port: 9100,
    },
    RuleSpec {
        auth: AuthMethod::None,
        splice: SplicePoint::AfterRequest,
        port: 9101,
    },
    RuleSpec {
        auth: AuthMethod::Line,
        splice: SplicePoint::AfterAuth,
        port: 9102,
    },
    RuleSpec {
        auth: AuthMethod::Line,
        splice: SplicePoint::AfterRequest,
        port: 9103,
    },
    RuleSpec {
        auth: AuthMethod::HttpBasic,
        splice: SplicePoint::AfterAuth,
        port: 9104,
    },
    RuleSpec {
        auth: AuthMethod::HttpBasic,
        splice: SplicePoint::AfterRequest,
        port: 9105,
    },
];

impl RuleSpec {
    fn name(self) -> String {
        let splice = match self.splice {
            SplicePoint::AfterAuth => "after-auth",
            SplicePoint::AfterRequest => "after-request",
            SplicePoint::Never => "never",
        };
        format!("{}/{splice}", self.auth)
    }

    /// Bytes of the client's stream the box keeps for itself (credentials).
    fn consumed(self) -> u32 {
        match self.auth {
            AuthMethod::Line => LINE_CREDENTIALS.len() as u32,
            AuthMethod::HttpBasic => (REQUEST.len() - STRIPPED.len()) as u32,
            AuthMethod::None => 0,
        }
    }

    /// Bytes the box sends the client of its own (prompts, answers).
    fn produced(self) -> u32 {
        match self.auth {
            AuthMethod::Line => LINE_OUTPUT.len() as u32,
            AuthMethod::HttpBasic | AuthMethod::None => 0,
        }
    }

    /// The box answers the client before it has reached the server (it cannot know yet
    /// what the server accepts).
    fn answers_client_first(self) -> bool {
        self.auth != AuthMethod::None
    }
}

/// `config/testbed.yaml` with the [`RULES`] in front of its policy.
fn config() -> common::config::Config {
    let mut config = sim::testbed_config();
    config.flow_table.capacity = sim::SIM_FLOW_CAPACITY;
    let rules = RULES.iter().map(|r| Rule {
        name: Some(format!("options-{}", r.port)),
        zone: Zone::Any,
        protocol: Protocol::Tcp,
        source: Cidr::ANY,
        destination: Cidr::ANY,
        ports: vec![PortRange {
            lo: r.port,
            hi: r.port,
        }],
        action: Action::Proxy {
            auth: r.auth,
            splice: r.splice,
        },
        login: RuleLogin {
            http: HttpLogin::InBand,
            ..RuleLogin::default()
        },
    });
    config.policy.splice(0..0, rules);
    config
}

/// One change to a host's TCP from the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setting {
    Defaults,
    NoTimestamps,
    SmallReceiveBuffer,
    NoWindowScaling,
    Mss(u16),
}

impl Setting {
    fn apply(self, o: &mut HostOptions) {
        match self {
            Setting::Defaults => {}
            Setting::NoTimestamps => o.timestamps = false,
            Setting::SmallReceiveBuffer => o.rx_buffer = Some(SMALL_RX_BUFFER),
            Setting::NoWindowScaling => o.window_scaling = false,
            Setting::Mss(m) => o.mtu = usize::from(m) + 40,
        }
    }

    fn name(self) -> String {
        match self {
            Setting::Defaults => "defaults".into(),
            Setting::NoTimestamps => "timestamps off".into(),
            Setting::SmallReceiveBuffer => format!("{} KiB receive buffer", SMALL_RX_BUFFER / KIB),
            Setting::NoWindowScaling => "window scaling off".into(),
            Setting::Mss(m) => format!("MSS {m}"),
        }
    }
}

/// The host a setting is applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    Client,
    Server,
}

impl Peer {
    /// The hop toward this peer and the hop from it.
    fn hops(self) -> (Hop, Hop) {
        match self {
            Peer::Client => (Hop::BoxToClient, Hop::ClientToBox),
            Peer::Server => (Hop::BoxToServer, Hop::ServerToBox),
        }
    }

    fn other(self) -> Peer {
        match self {
            Peer::Client => Peer::Server,
            Peer::Server => Peer::Client,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Peer::Client => "client",
            Peer::Server => "server",
        }
    }
}

/// One connection of the matrix.
#[derive(Debug, Clone, Copy)]
struct Case {
    setting: Setting,
    on: Peer,
    rule: RuleSpec,
    seed: u64,
    faults: Faults,
    bulk: usize,
}

impl Case {
    fn label(&self) -> String {
        let who = match self.setting {
            Setting::Defaults => String::new(),
            _ => format!(" on the {}", self.on.name()),
        };
        format!("{}{who}, {}", self.setting.name(), self.rule.name())
    }

    fn hosts(&self) -> (HostOptions, HostOptions) {
        let (mut client, mut server) = (HostOptions::DEFAULT, HostOptions::DEFAULT);
        self.setting.apply(match self.on {
            Peer::Client => &mut client,
            Peer::Server => &mut server,
        });
        (client, server)
    }

    /// A server accepting less than a client answered first was told (`proxy.client_mss`
    /// 1380, the client's own MSS 1460): the fast path has to split that client's segments.
    fn needs_split(&self) -> bool {
        matches!((self.setting, self.on), (Setting::Mss(m), Peer::Server) if m < 1380)
            && self.rule.answers_client_first()
    }
}

/// The cases of `settings` (each on `on`) × every rule, clean network.
fn cases(settings: &[(Setting, Peer)], seed_base: u64) -> Vec<Case> {
    let mut v = Vec::new();
    for (i, &(setting, on)) in settings.iter().enumerate() {
        for (j, &rule) in RULES.iter().enumerate() {
            v.push(Case {
                setting,
                on,
                rule,
                seed: seed_base + 10 * i as u64 + j as u64,
                faults: Faults::NONE,
                bulk: BULK,
            });
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// What the links carried

/// A TCP segment as it was put on a link.
#[derive(Debug, Clone)]
struct Seg {
    hop: Hop,
    t_ms: u64,
    info: SegInfo,
    /// Bytes of options (the header beyond 20 bytes).
    opts_len: usize,
    /// The MSS option, on a SYN.
    mss: Option<u16>,
    ttl: u8,
}

impl Seg {
    fn syn(&self) -> bool {
        self.info.flags.contains('S')
    }

    fn rst(&self) -> bool {
        self.info.flags.contains('R')
    }

    /// Forwarded by the fast path (the TTL went down), not sent by the box's own legs.
    fn forwarded(&self) -> bool {
        self.ttl < OWN_TTL
    }
}

impl std::fmt::Display for Seg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "t={}ms {:?} {} options={} ttl={}",
            self.t_ms, self.hop, self.info, self.opts_len, self.ttl
        )?;
        if let Some(m) = self.mss {
            write!(f, " mss={m}")?;
        }
        Ok(())
    }
}

fn parse(hop: Hop, t_ms: u64, frame: &[u8]) -> Option<Seg> {
    let info = sim::seg_info(frame)?;
    Some(Seg {
        hop,
        t_ms,
        opts_len: info.opts_len,
        mss: info.mss,
        ttl: info.ttl,
        info,
    })
}

/// Every TCP segment put on a link, in order.
type Tap = Rc<RefCell<Vec<Seg>>>;

fn wiretap(sim: &mut Sim) -> Tap {
    let tap = Tap::default();
    let t = Rc::clone(&tap);
    sim.intercept = Some(Box::new(move |now, hop, frame| {
        if let Some(s) = parse(hop, now, frame) {
            t.borrow_mut().push(s);
        }
        Fate::Pass
    }));
    tap
}

// ---------------------------------------------------------------------------------------------
// One connection

/// A simulation and its latest connection (a test may open more than one, one after the
/// other: every check is of the latest, by its client port).
struct Run {
    sim: Sim,
    tap: Tap,
    case: Case,
    client: EpId,
    server: EpId,
    cport: u16,
    /// The streams each endpoint must end up with.
    c2s: Vec<u8>,
    s2c: Vec<u8>,
    /// Connections opened on this simulation so far, this one included (each expected
    /// spliced).
    opened: u64,
    /// The fast path's edit counters when this connection was opened.
    edits_before: EditCounters,
}

impl Run {
    fn seed(&self) -> u64 {
        self.sim.seed
    }

    fn what(&self) -> String {
        let nth = if self.opened > 1 {
            format!(", connection {}", self.opened)
        } else {
            String::new()
        };
        format!("seed {}: {}{nth}", self.seed(), self.case.label())
    }

    /// `s` belongs to this connection.
    fn owns(&self, s: &Seg) -> bool {
        s.info.sport == self.cport || s.info.dport == self.cport
    }

    /// This connection's first SYN (SYN-ACK) on `hop`.
    fn syn(&self, hop: Hop) -> Seg {
        self.tap
            .borrow()
            .iter()
            .find(|s| s.hop == hop && s.syn() && self.owns(s))
            .cloned()
            .unwrap_or_else(|| panic!("{}: no SYN seen on {hop:?}", self.what()))
    }

    /// `peer` and the box negotiated timestamps: both handshake segments carried them.
    fn timestamps(&self, peer: Peer) -> bool {
        let (to, from) = peer.hops();
        self.syn(from).info.ts.is_some() && self.syn(to).info.ts.is_some()
    }

    /// The MSS `peer` announced in its SYN (SYN-ACK).
    fn mss_of(&self, peer: Peer) -> u16 {
        self.syn(peer.hops().1).mss.unwrap_or(DEFAULT_MSS)
    }

    /// The MSS the box announced to `peer`.
    fn box_mss_to(&self, peer: Peer) -> u16 {
        self.syn(peer.hops().0).mss.unwrap_or(DEFAULT_MSS)
    }

    /// The shifts on `peer`'s link (its own, the box's): zero unless both offered scaling.
    fn shifts(&self, peer: Peer) -> (u8, u8) {
        let (to, from) = peer.hops();
        match (self.syn(from).info.wscale, self.syn(to).info.wscale) {
            (Some(p), Some(b)) => (p, b),
            _ => (0, 0),
        }
    }

    fn last_segments(&self, n: usize) -> String {
        let t = self.sim.trace_of(self.cport);
        t[t.len().saturating_sub(n)..]
            .iter()
            .map(|e| format!("  {e}\n"))
            .collect()
    }
}

/// A new simulation with the case's hosts, a listener on its rule's port and a client
/// connecting to it; the application step is driven to its end.
fn start(case: Case) -> Run {
    start_with(case, config())
}

/// [`start`] with the box on `config`.
fn start_with(case: Case, config: common::config::Config) -> Run {
    let _ = env_logger::builder().is_test(true).try_init();
    let (client_opts, server_opts) = case.hosts();
    let mut sim = Sim::with_hosts(case.seed, 1, case.faults, config, client_opts, server_opts);
    if case.faults != Faults::NONE {
        sim.tx_buffer = FAULTS_TX_BUFFER;
        sim.close_after_acked = true;
    }
    let tap = wiretap(&mut sim);
    let mut run = Run {
        sim,
        tap,
        case,
        client: EpId(usize::MAX),
        server: EpId(usize::MAX),
        cport: 0,
        c2s: Vec::new(),
        s2c: Vec::new(),
        opened: 0,
        edits_before: EditCounters::default(),
    };
    open(&mut run);
    run
}

/// A new listener on the rule's port and a new client connection to it on `run`'s
/// simulation, which becomes `run`'s connection; the application step is driven to its end.
fn open(run: &mut Run) {
    let case = run.case;
    let sim = &mut run.sim;
    run.opened += 1;
    run.edits_before = edit_counters(sim);
    let seed = case.seed;
    let port = case.rule.port;
    let server = sim.listen(port);
    let cport = sim.client_port();
    let client = sim.connect(cport, port);
    let (c2s, s2c) = match case.rule.auth {
        AuthMethod::None => {
            // Written as soon as each side is connected.
            sim.send(server, BANNER);
            sim.send(client, HELLO);
            (HELLO.to_vec(), BANNER.to_vec())
        }
        AuthMethod::Line => {
            sim.send(server, BANNER);
            expect_from_box(sim, client, b"Username: ", "the user name prompt");
            sim.send(client, b"alice\r\n");
            expect_from_box(sim, client, b"Username: Password: ", "the password prompt");
            if case.rule.splice == SplicePoint::AfterRequest {
                // The first bytes only after the welcome: the drain waits for them.
                sim.send(client, PASSWORD_LINE);
                expect_from_box(sim, client, LINE_OUTPUT, "the welcome");
                sim.send(client, LEFTOVER);
            } else {
                // The password and the first bytes in one segment.
                sim.send(client, &[PASSWORD_LINE, LEFTOVER].concat());
                expect_from_box(sim, client, LINE_OUTPUT, "the welcome");
            }
            (LEFTOVER.to_vec(), [LINE_OUTPUT, BANNER].concat())
        }
        AuthMethod::HttpBasic => {
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
        "seed {seed}: {}: authentication failed\n{}",
        case.label(),
        sim.report()
    );
    (run.client, run.server, run.cport) = (client, server, cport);
    (run.c2s, run.s2c) = (c2s, s2c);
}

/// What the splice left: the trace length right after it, and the object.
struct AtSplice {
    trace_len: usize,
    forwarded: u64,
    conn: Conn,
}

/// Runs until the connection is spliced; checks the counters, that the legs are gone, and the
/// installed object against the handshakes on the wire.
fn splice(run: &mut Run) -> AtSplice {
    let what = run.what();
    let n = run.opened;
    run.sim.run_until("the splice", MAX_STEPS, |s| {
        let c = s.proxy_connections();
        c.spliced + c.fallback + c.drain_timeout + c.full_proxy >= n
    });
    let sim = &run.sim;
    let report = sim.report();
    let c = sim.proxy_connections();
    let causes: Vec<_> = c.fallback_causes.iter().filter(|&(_, n)| n > 0).collect();
    assert_eq!(
        (
            c.proxied,
            c.spliced,
            c.fallback,
            c.drain_timeout,
            c.auth_failed
        ),
        (n, n, 0, 0, 0),
        "{what}: (proxied, spliced, fallback, drain_timeout, auth_failed); fallback causes \
         {causes:?}; MSS client {} (told {}), server {} (told {})\n{report}",
        run.mss_of(Peer::Client),
        run.box_mss_to(Peer::Client),
        run.mss_of(Peer::Server),
        run.box_mss_to(Peer::Server),
    );
    assert_eq!(
        c.fallback_causes.total(),
        0,
        "{what}: fallback causes {causes:?}"
    );
    assert_eq!(
        sim.the_box.plane.proxy.active(),
        0,
        "{what}: the legs outlive the splice\n{report}"
    );
    let key = sim::flow_key(run.cport, run.case.rule.port);
    let (_, conn) = sim
        .installed(&key)
        .unwrap_or_else(|| panic!("{what}: no object for {key} after the splice\n{report}"));

    // Timestamps: offsets when both legs have them, removed and inserted with one.
    let (client_ts, server_ts) = (run.timestamps(Peer::Client), run.timestamps(Peer::Server));
    let flags = ConnFlags::SPLICED
        | if client_ts && server_ts {
            ConnFlags::TIMESTAMPS
        } else {
            0
        };
    assert_eq!(
        conn.flags & (ConnFlags::SPLICED | ConnFlags::PROXIED | ConnFlags::TIMESTAMPS),
        flags,
        "{what}: flags of the installed object {conn:?} (timestamps: client leg {client_ts}, \
         server leg {server_ts})"
    );
    // Split: a peer told more than the other accepts (with the option the fast path inserts
    // into its segments): the client answered before the box knew the server, or the server
    // told the client's whole MSS (it was remembered with timestamps) and sending none.
    let room = |inserted: bool| if inserted { TS_ROOM } else { 0 };
    let told_client = run.box_mss_to(Peer::Client) + room(server_ts && !client_ts);
    let told_server = run.box_mss_to(Peer::Server) + room(client_ts && !server_ts);
    let (client_mss, server_mss) = (run.mss_of(Peer::Client), run.mss_of(Peer::Server));
    let (split, to_client) = if told_client > server_mss {
        ((server_mss / 8) as u8, false)
    } else if told_server > client_mss {
        ((client_mss / 8) as u8, true)
    } else {
        (0, false)
    };
    let xlate = match (client_ts, server_ts) {
        (true, false) => Xlate::TS_CLIENT_ONLY,
        (false, true) => Xlate::TS_SERVER_ONLY,
        _ => 0,
    } | if to_client { Xlate::SPLIT_TO_CLIENT } else { 0 };
    assert_eq!(
        conn.xlate, xlate,
        "{what}: xlate of {conn:?} (timestamps: client leg {client_ts}, server leg {server_ts}; \
         MSS told the client {told_client} with what is inserted, the server accepts \
         {server_mss}; told the server {told_server}, the client accepts {client_mss})"
    );

    // Δ from the initial sequence numbers on the wire and what the box kept and added.
    let rule = run.case.rule;
    let client_syn = run.syn(Hop::ClientToBox).info;
    let box_synack = run.syn(Hop::BoxToClient).info;
    let box_syn = run.syn(Hop::BoxToServer).info;
    let server_synack = run.syn(Hop::ServerToBox).info;
    let delta1 = box_syn
        .seq
        .wrapping_sub(client_syn.seq)
        .wrapping_sub(rule.consumed());
    let delta2 = box_synack
        .seq
        .wrapping_sub(server_synack.seq)
        .wrapping_add(rule.produced());
    assert_eq!(
        (conn.delta1, conn.delta2),
        (delta1, delta2),
        "{what}: (Δ1, Δ2) of {conn:?}; SYNs: client {client_syn}, box→client {box_synack}, \
         box→server {box_syn}, server {server_synack}"
    );
    // Window scaling: the shift each endpoint uses in, the shift its peer believes out.
    let (client_shift, box_to_client) = run.shifts(Peer::Client);
    let (server_shift, box_to_server) = run.shifts(Peer::Server);
    assert_eq!(
        (conn.wscale_in, conn.wscale_out),
        ([client_shift, server_shift], [box_to_server, box_to_client]),
        "{what}: (wscale_in, wscale_out) of {conn:?}; SYNs: client {client_syn}, box→client \
         {box_synack}, box→server {box_syn}, server {server_synack}"
    );
    assert_eq!(
        conn.split_mss, split,
        "{what}: split_mss of {conn:?}: told the client {told_client} with what is inserted, \
         the server accepts {server_mss}; told the server {told_server}, the client accepts \
         {client_mss}"
    );
    AtSplice {
        trace_len: sim.trace.len(),
        forwarded: sim.counters().forwarded,
        conn,
    }
}

/// Queues the bulk each way, closes both sides after it, runs until both have everything and
/// have closed, and checks both streams byte-exact.
fn finish(run: &mut Run) {
    let what = run.what();
    let (seed, bulk) = (run.seed(), run.case.bulk);
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
    for (dir, expected, got) in [
        ("client -> server", &run.c2s, run.sim.received(server)),
        ("server -> client", &run.s2c, run.sim.received(client)),
    ] {
        if expected[..] != got[..] {
            let first = expected
                .iter()
                .zip(got)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(got.len()));
            panic!(
                "{what}: {dir}: expected {} bytes, got {}; first difference at offset \
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
            "{what}: both sides did not finish closing (FIN stalled in smoltcp: {stalled:?})\n\
             {}\nlast segments:\n{}",
            run.sim.report(),
            run.last_segments(12)
        );
    }
}

/// Not one drop; after the splice nothing went to control and the worker forwarded the bulk.
fn assert_fast_path(run: &Run, at: &AtSplice) {
    let what = run.what();
    let sim = &run.sim;
    assert_eq!(
        sim.counters().drops.total(),
        0,
        "{what}: unexpected drops {:?}\n{}\n{}",
        sim.nonzero_drops(),
        sim.report(),
        sim.explain_drops(16, 5)
    );
    let cport = run.cport;
    let after: Vec<_> = sim.trace[at.trace_len..]
        .iter()
        .filter(|e| {
            e.seg
                .as_ref()
                .is_some_and(|s| s.sport == cport || s.dport == cport)
        })
        .collect();
    let to_control: Vec<_> = after
        .iter()
        .filter(|e| e.outcome == Outcome::ToControl)
        .map(|e| format!("  {e}\n"))
        .collect();
    assert!(
        to_control.is_empty(),
        "{what}: {} segments went to control after the splice:\n{}\n{}",
        to_control.len(),
        to_control[..to_control.len().min(5)].concat(),
        sim.report()
    );
    let data = after
        .iter()
        .filter(|e| e.seg.as_ref().is_some_and(|s| s.len > 0))
        .count() as u64;
    let forwarded = sim.counters().forwarded - at.forwarded;
    let min_data = (2 * run.case.bulk / 1460) as u64;
    assert!(
        data >= min_data && forwarded >= data,
        "{what}: after the splice {data} data segments (at least {min_data}), {forwarded} \
         forwarded\n{}",
        sim.report()
    );
    let c = sim.proxy_connections();
    let n = run.opened;
    assert_eq!(
        (c.proxied, c.spliced, c.fallback, c.full_proxy),
        (n, n, 0, 0),
        "{what}: (proxied, spliced, fallback, full_proxy) at the end\n{}",
        sim.report()
    );
}

/// Up to `max` of `v`, one a line, and how many there were.
fn listing(v: &[String], max: usize) -> String {
    let mut s: String = v.iter().take(max).map(|x| format!("    {x}\n")).collect();
    if v.len() > max {
        let _ = writeln!(s, "    ... and {} more", v.len() - max);
    }
    s
}

/// `a` is at or after `b` in 32-bit serial arithmetic.
fn at_or_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// The timestamps every segment toward `peer` carried (see the module docs); returns the
/// violations.
fn timestamp_violations(run: &Run, peer: Peer) -> Vec<String> {
    let (to, from) = peer.hops();
    let negotiated = run.timestamps(peer);
    // Inserted: the box makes the TSval (the other side has none), so the links' reordering
    // upstream cannot move it back.
    let inserted = negotiated && !run.timestamps(peer.other());
    let clean = run.case.faults == Faults::NONE;
    let ordered = clean || inserted;
    let exact_echo = clean || inserted;
    let tap = run.tap.borrow();
    let mut v = Vec::new();
    // The TSvals `peer` sent so far, and the latest.
    let mut sent = HashSet::new();
    let mut latest: Option<u32> = None;
    // The last TSval toward `peer`, and whether the fast path sent it.
    let mut prev: Option<(u32, bool)> = None;
    for s in tap.iter().filter(|s| run.owns(s)) {
        if s.hop == from {
            if let Some((val, _)) = s.info.ts {
                sent.insert(val);
                latest = Some(latest.map_or(val, |l| if at_or_after(val, l) { val } else { l }));
            }
            continue;
        }
        if s.hop != to {
            continue;
        }
        let Some((val, ecr)) = s.info.ts else {
            if negotiated && !s.rst() {
                v.push(format!("no timestamp option: {s}"));
            }
            continue;
        };
        if !negotiated {
            // The box's SYN to the server may offer them; nothing after it may carry them.
            let offer = s.syn() && !s.info.flags.contains('.');
            if !offer {
                v.push(format!("a timestamp option it did not negotiate: {s}"));
            }
            continue;
        }
        if ordered {
            if let Some((p, p_fwd)) = prev {
                if !at_or_after(val, p) {
                    let from = if p_fwd {
                        "the fast path"
                    } else {
                        "the box's leg"
                    };
                    v.push(format!(
                        "TSval {val} below the previous {p} (sent by {from}): {s}"
                    ));
                }
            }
        }
        if s.forwarded() && !s.syn() {
            let ok = if exact_echo {
                sent.contains(&ecr)
            } else {
                latest.is_some_and(|l| at_or_after(l, ecr))
            };
            if !ok {
                v.push(format!(
                    "TSecr {ecr} is not a TSval the {} sent (latest {latest:?}): {s}",
                    peer.name()
                ));
            }
        }
        prev = Some((val, s.forwarded()));
    }
    v
}

/// Segments toward `peer` larger than the MSS it announced.
fn mss_violations(run: &Run, peer: Peer) -> Vec<String> {
    let (to, _) = peer.hops();
    let mss = usize::from(run.mss_of(peer));
    run.tap
        .borrow()
        .iter()
        .filter(|s| s.hop == to && run.owns(s) && s.info.len + s.opts_len > mss)
        .map(|s| {
            format!(
                "{} bytes of data and options, the {} accepts {mss}: {s}",
                s.info.len + s.opts_len,
                peer.name()
            )
        })
        .collect()
}

/// Segments the fast path forwarded toward the client and toward the server.
fn forwarded_toward(run: &Run) -> [usize; 2] {
    let tap = run.tap.borrow();
    [Peer::Client, Peer::Server].map(|p| {
        let to = p.hops().0;
        tap.iter()
            .filter(|s| s.hop == to && s.forwarded() && run.owns(s))
            .count()
    })
}

/// The fast path's own counters for option edits and splits, all workers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct EditCounters {
    ts_inserted: u64,
    ts_removed: u64,
    ts_insert_failed: u64,
    segments_split: u64,
    split_pieces: u64,
    split_failed: u64,
}

impl EditCounters {
    /// What moved since `before`.
    fn since(&self, before: &EditCounters) -> EditCounters {
        EditCounters {
            ts_inserted: self.ts_inserted - before.ts_inserted,
            ts_removed: self.ts_removed - before.ts_removed,
            ts_insert_failed: self.ts_insert_failed - before.ts_insert_failed,
            segments_split: self.segments_split - before.segments_split,
            split_pieces: self.split_pieces - before.split_pieces,
            split_failed: self.split_failed - before.split_failed,
        }
    }
}

fn edit_counters(sim: &Sim) -> EditCounters {
    let mut e = EditCounters::default();
    for w in sim.workers() {
        let c = &w.counters;
        e.ts_inserted += c.ts_inserted;
        e.ts_removed += c.ts_removed;
        e.ts_insert_failed += c.ts_insert_failed;
        e.segments_split += c.segments_split;
        e.split_pieces += c.split_pieces;
        e.split_failed += c.split_failed;
    }
    e
}

/// The wire checks (timestamps both ways, MSS both ways) and the edit counters (what moved
/// since the connection was opened).
fn assert_wire(run: &Run, at: &AtSplice) -> EditCounters {
    let what = run.what();
    let mut failures = String::new();
    for peer in [Peer::Client, Peer::Server] {
        let ts = timestamp_violations(run, peer);
        if !ts.is_empty() {
            let _ = write!(
                failures,
                "  timestamps toward the {} ({} segments):\n{}",
                peer.name(),
                ts.len(),
                listing(&ts, 5)
            );
        }
        let mss = mss_violations(run, peer);
        if !mss.is_empty() {
            let _ = write!(
                failures,
                "  MSS toward the {} ({} segments; it announced {}, the box told the {} {}):\n{}",
                peer.name(),
                mss.len(),
                run.mss_of(peer),
                peer.other().name(),
                run.box_mss_to(peer.other()),
                listing(&mss, 5)
            );
        }
    }
    // The fast path carried the bulk both ways (and the TTL tells its segments from the
    // legs': the checks above depend on it).
    let forwarded = forwarded_toward(run);
    if forwarded.contains(&0) {
        let _ = writeln!(
            failures,
            "  segments with the fast path's TTL toward (client, server): {forwarded:?}"
        );
    }
    let e = edit_counters(&run.sim).since(&run.edits_before);
    let one_leg = at.conn.xlate != 0;
    let split = at.conn.split_mss != 0;
    let counted = one_leg == (e.ts_inserted > 0)
        && one_leg == (e.ts_removed > 0)
        && e.ts_insert_failed == 0
        && (split || e.segments_split == 0)
        && e.split_failed == 0;
    if !counted {
        let _ = writeln!(
            failures,
            "  counters {e:?} for xlate {:#x}, split_mss {}",
            at.conn.xlate, at.conn.split_mss
        );
    }
    assert!(
        failures.is_empty(),
        "{what}: on the wire:\n{failures}object {:?}",
        at.conn
    );
    e
}

/// One connection of the matrix with every check; a line for the table.
fn spliced(case: Case) -> String {
    let mut run = start(case);
    let at = splice(&mut run);
    finish(&mut run);
    assert_fast_path(&run, &at);
    let e = assert_wire(&run, &at);
    if case.faults != Faults::NONE {
        let faults: u64 = Hop::ALL
            .iter()
            .map(|&h| {
                let s = run.sim.hop_stats(h);
                s.dropped + s.duplicated + s.delayed
            })
            .sum();
        assert!(
            faults > 0,
            "{}: the network was not hostile\n{}",
            run.what(),
            run.sim.report()
        );
    }
    let mut s = format!(
        "MSS c {}→{} s {}→{}",
        run.mss_of(Peer::Client),
        run.box_mss_to(Peer::Client),
        run.mss_of(Peer::Server),
        run.box_mss_to(Peer::Server)
    );
    let [to_client, to_server] = forwarded_toward(&run);
    let _ = write!(s, ", fast path →c {to_client} →s {to_server}");
    let ts = |p| if run.timestamps(p) { "ts" } else { "-" };
    let _ = write!(
        s,
        ", legs {}/{}, shifts {:?}/{:?}",
        ts(Peer::Client),
        ts(Peer::Server),
        at.conn.wscale_in,
        at.conn.wscale_out
    );
    if e.ts_inserted + e.ts_removed > 0 {
        let _ = write!(
            s,
            ", ts inserted {} removed {}",
            e.ts_inserted, e.ts_removed
        );
    }
    if at.conn.split_mss != 0 {
        let _ = write!(
            s,
            ", split at {}: {} segments into {} pieces",
            u16::from(at.conn.split_mss) * 8,
            e.segments_split,
            e.split_pieces
        );
    }
    let _ = write!(s, "; {} ms virtual", run.sim.now - sim::START_MS);
    s
}

/// Runs every case (each in its own simulation), prints the table, and fails listing every
/// failing case.
fn matrix(title: &str, cases: &[Case]) {
    let mut table = String::new();
    let mut failed = Vec::new();
    for &case in cases {
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| spliced(case)));
        match r {
            Ok(line) => {
                let _ = writeln!(table, "  ok    {:<52} {line}", case.label());
            }
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let first = msg.lines().next().unwrap_or("").to_string();
                let _ = writeln!(table, "  FAIL  {:<52} {first}", case.label());
                failed.push(msg);
            }
        }
    }
    eprintln!("{title}: {} cases\n{table}", cases.len());
    assert!(
        failed.is_empty(),
        "{title}: {} of {} cases failed:\n\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n\n")
    );
}

/// The cases of `settings` × every rule that do not need segments split.
fn matrix_of(title: &str, settings: &[(Setting, Peer)], seed_base: u64) {
    let cases: Vec<Case> = cases(settings, seed_base)
        .into_iter()
        .filter(|c| !c.needs_split())
        .collect();
    matrix(title, &cases);
}

// ---------------------------------------------------------------------------------------------
// Clean network

#[test]
fn peers_with_default_options_are_spliced_under_every_rule() {
    matrix_of("defaults", &[(Setting::Defaults, Peer::Client)], 100);
}

/// The box offers the server timestamps only if the client's leg has them, so neither leg
/// has them here (and `Xlate::TS_SERVER_ONLY` is not reached): nothing toward either side
/// may carry the option.
#[test]
fn a_client_without_timestamps_is_spliced_without_them() {
    matrix_of(
        "client timestamps off",
        &[(Setting::NoTimestamps, Peer::Client)],
        200,
    );
}

/// `Xlate::TS_CLIENT_ONLY`: the client's option is removed on the way to the server, and
/// every segment to the client gets one (the box's clock continuing its leg's TSvals, the
/// client's latest TSval echoed).
#[test]
fn a_server_without_timestamps_loses_them_and_the_client_gets_them_inserted() {
    matrix_of(
        "server timestamps off",
        &[(Setting::NoTimestamps, Peer::Server)],
        300,
    );
}

#[test]
fn a_small_receive_buffer_on_either_side_is_spliced() {
    matrix_of(
        "16 KiB receive buffer",
        &[
            (Setting::SmallReceiveBuffer, Peer::Client),
            (Setting::SmallReceiveBuffer, Peer::Server),
        ],
        400,
    );
}

#[test]
fn a_peer_without_window_scaling_on_either_side_is_spliced() {
    matrix_of(
        "window scaling off",
        &[
            (Setting::NoWindowScaling, Peer::Client),
            (Setting::NoWindowScaling, Peer::Server),
        ],
        500,
    );
}

#[test]
fn a_client_never_gets_more_than_the_mss_it_announced() {
    matrix_of(
        "client MSS",
        &[
            (Setting::Mss(536), Peer::Client),
            (Setting::Mss(1220), Peer::Client),
            (Setting::Mss(1360), Peer::Client),
            (Setting::Mss(1400), Peer::Client),
        ],
        600,
    );
}

/// With `none` the box reaches the server before it answers the client, so the client is
/// told what the server accepts; a server at 1400 accepts more than the 1380 a client
/// answered first (`line`, `http-basic`) is told.
#[test]
fn a_server_never_gets_more_than_the_mss_it_announced() {
    matrix_of(
        "server MSS",
        &[
            (Setting::Mss(536), Peer::Server),
            (Setting::Mss(1220), Peer::Server),
            (Setting::Mss(1360), Peer::Server),
            (Setting::Mss(1400), Peer::Server),
        ],
        700,
    );
}

/// `line` and `http-basic` answer the client before the box reaches the server, telling it
/// `min(its MSS, proxy.client_mss = 1380)`; a server not yet in the cache of servers' options
/// that accepts 536, 1220 or 1360 then needs the client's larger segments split by the fast
/// path (`Conn::split_mss`). On a clean network, then the server at 1220 under faults with
/// the seeds of the tests below. Every check of the other cases, the MSS toward the server
/// included, and the splice itself (not a fallback).
#[test]
fn a_server_accepting_less_than_the_client_was_told_gets_split_segments() {
    let small = [
        (Setting::Mss(536), Peer::Server),
        (Setting::Mss(1220), Peer::Server),
        (Setting::Mss(1360), Peer::Server),
    ];
    let mut all: Vec<Case> = cases(&small, 700)
        .into_iter()
        .filter(|c| c.needs_split())
        .collect();
    for seed_base in FAULT_SEEDS {
        all.extend(
            cases(&[(Setting::Mss(1220), Peer::Server)], seed_base + 30)
                .into_iter()
                .filter(|c| c.needs_split())
                .map(under_hostile_faults),
        );
    }
    matrix("server MSS below what the client was told", &all);
}

// ---------------------------------------------------------------------------------------------
// Under faults

/// The seed bases of the tests under faults.
const FAULT_SEEDS: [u64; 3] = [1000, 2000, 3000];

fn under_hostile_faults(c: Case) -> Case {
    Case {
        faults: Faults::HOSTILE,
        bulk: FAULTY_BULK,
        ..c
    }
}

/// Defaults, timestamps off on either side, and the server at MSS 1220 (what needs no
/// split), × every rule under [`Faults::HOSTILE`], with `seed_base`.
fn under_faults(seed_base: u64) {
    let settings = [
        (Setting::Defaults, Peer::Client),
        (Setting::NoTimestamps, Peer::Client),
        (Setting::NoTimestamps, Peer::Server),
        (Setting::Mss(1220), Peer::Server),
    ];
    let cases: Vec<Case> = cases(&settings, seed_base)
        .into_iter()
        .filter(|c| !c.needs_split())
        .map(under_hostile_faults)
        .collect();
    matrix(&format!("under faults, seeds from {seed_base}"), &cases);
}

#[test]
fn option_mismatches_are_spliced_under_faults_seeds_1000() {
    under_faults(FAULT_SEEDS[0]);
}

#[test]
fn option_mismatches_are_spliced_under_faults_seeds_2000() {
    under_faults(FAULT_SEEDS[1]);
}

#[test]
fn option_mismatches_are_spliced_under_faults_seeds_3000() {
    under_faults(FAULT_SEEDS[2]);
}

// ---------------------------------------------------------------------------------------------
// The cache of servers' options: two connections to one server in one simulation

/// [`config`] with logins not remembered (`auth.cache_timeout` 0). A client whose login the
/// box remembers is not asked again: the box reaches the server before it answers the client
/// and tells it the server's MSS from the server's own SYN-ACK. Without it the second
/// connection is answered first like the first, and only the cache of servers' options
/// (`proxy.server_options`) can tell the box what the server accepts.
fn cache_config() -> common::config::Config {
    let mut config = config();
    config.auth.cache_timeout = Duration::ZERO;
    config
}

/// What one of the connections to a server showed.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The MSS the box's SYN-ACK told the client, and the MSS the server's SYN-ACK announced.
    told: u16,
    server_mss: u16,
    /// The server and the box negotiated timestamps.
    server_ts: bool,
    /// The object's `xlate` and `split_mss`.
    xlate: u8,
    split_mss: u8,
    /// The fast path's edit counters, what moved during this connection.
    edits: EditCounters,
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "client told {}, server MSS {}, server timestamps {}, xlate {:#x}, split_mss {}, {} \
             segments split into {} pieces",
            self.told,
            self.server_mss,
            self.server_ts,
            self.xlate,
            self.split_mss,
            self.edits.segments_split,
            self.edits.split_pieces
        )
    }
}

/// The latest connection of `run` through every check of the matrix (spliced, the object,
/// byte-exact both ways, the fast path, the wire).
fn checked(run: &mut Run) -> Seen {
    let at = splice(run);
    finish(run);
    assert_fast_path(run, &at);
    let edits = assert_wire(run, &at);
    Seen {
        told: run.box_mss_to(Peer::Client),
        server_mss: run.mss_of(Peer::Server),
        server_ts: run.timestamps(Peer::Server),
        xlate: at.conn.xlate,
        split_mss: at.conn.split_mss,
        edits,
    }
}

/// The proxy's counters of the cache of servers' options, after a tick of the box (they are
/// refreshed on each): (known, hits, changed).
fn server_options(run: &mut Run) -> (u64, u64, u64) {
    run.sim.run_for(50);
    let c = &run.sim.the_box.plane.proxy.counters;
    (
        c.server_options_known,
        c.server_options_hits,
        c.server_options_changed,
    )
}

/// The rules whose clients are answered before the box reaches the server, for `auth`.
fn rules_of(auth: AuthMethod) -> Vec<RuleSpec> {
    RULES.iter().copied().filter(|r| r.auth == auth).collect()
}

/// The server's MSS in these tests (its IP MTU 1260), below the 1380 an unknown server's
/// client is told.
const SMALL_SERVER_MSS: u16 = 1220;

/// Two connections from the client to the server of `rule` in one simulation whose server
/// has `setting`, on `config`: the first is opened, checked and over (both ends closed), then
/// `between` runs (it may change the server or move the clock), then the second is opened and
/// checked. Returns the simulation (at its second connection) and what each showed; prints
/// them.
fn two_connections(
    rule: RuleSpec,
    setting: Setting,
    seed: u64,
    config: common::config::Config,
    between: impl FnOnce(&mut Run),
) -> (Run, [Seen; 2]) {
    let case = Case {
        setting,
        on: Peer::Server,
        rule,
        seed,
        faults: Faults::NONE,
        bulk: BULK,
    };
    let mut run = start_with(case, config);
    let first = checked(&mut run);
    between(&mut run);
    open(&mut run);
    let second = checked(&mut run);
    eprintln!(
        "seed {seed}: {}\n  first:  {first}\n  second: {second}\n  server_options \
         (known, hits, changed) {:?}",
        case.label(),
        server_options(&mut run)
    );
    (run, [first, second])
}

/// `Conn::split_mss` for a server accepting `mss`.
fn split_at(mss: u16) -> u8 {
    (mss / 8) as u8
}

/// The first connection knows nothing of the server: its client is told `client_mss` and its
/// larger segments are split; the second is told the server's MSS from the cache and nothing
/// of it is split.
fn known_server_is_told_from_the_start(auth: AuthMethod, seed_base: u64) {
    for (i, rule) in rules_of(auth).into_iter().enumerate() {
        let (mut run, [first, second]) = two_connections(
            rule,
            Setting::Mss(SMALL_SERVER_MSS),
            seed_base + i as u64,
            cache_config(),
            |_| {},
        );
        let what = run.what();
        assert_eq!(
            (first.told, first.server_mss, first.split_mss),
            (1380, SMALL_SERVER_MSS, split_at(SMALL_SERVER_MSS)),
            "{what}: the first connection (told, server MSS, split_mss): {first}"
        );
        assert!(
            first.edits.segments_split > 0 && first.edits.split_pieces > first.edits.segments_split,
            "{what}: the first connection's segments were not split: {first}"
        );
        assert_eq!(
            (second.told, second.server_mss, second.split_mss),
            (SMALL_SERVER_MSS, SMALL_SERVER_MSS, 0),
            "{what}: the second connection (told, server MSS, split_mss): {second}"
        );
        assert_eq!(
            (second.edits.segments_split, second.edits.split_pieces),
            (0, 0),
            "{what}: segments of the second connection were split: {second}"
        );
        let (known, hits, _) = server_options(&mut run);
        assert!(
            known == 1 && hits >= 1,
            "{what}: server_options known {known} (1), hits {hits} (at least 1)"
        );
    }
}

#[test]
fn the_next_line_client_of_a_known_server_is_told_its_mss_and_not_split() {
    known_server_is_told_from_the_start(AuthMethod::Line, 5000);
}

#[test]
fn the_next_http_basic_client_of_a_known_server_is_told_its_mss_and_not_split() {
    known_server_is_told_from_the_start(AuthMethod::HttpBasic, 5100);
}

/// The second connection was told `client_mss` again and its segments were split like the
/// first's.
fn assert_split_again(run: &Run, first: &Seen, second: &Seen) {
    let what = run.what();
    for (nth, s) in [("first", first), ("second", second)] {
        assert_eq!(
            (s.told, s.server_mss, s.split_mss),
            (1380, SMALL_SERVER_MSS, split_at(SMALL_SERVER_MSS)),
            "{what}: the {nth} connection (told, server MSS, split_mss): {s}"
        );
        assert!(
            s.edits.segments_split > 0,
            "{what}: the {nth} connection's segments were not split: {s}"
        );
    }
}

/// `proxy.server_options.entries: 0`: nothing is remembered, every client is told
/// `client_mss` and split.
#[test]
fn with_the_cache_of_servers_options_off_every_client_is_split() {
    for (i, rule) in [RULES[2], RULES[4]].into_iter().enumerate() {
        let mut config = cache_config();
        config.proxy.server_options.entries = 0;
        let (mut run, [first, second]) = two_connections(
            rule,
            Setting::Mss(SMALL_SERVER_MSS),
            5200 + i as u64,
            config,
            |_| {},
        );
        assert_split_again(&run, &first, &second);
        let what = run.what();
        assert_eq!(
            server_options(&mut run),
            (0, 0, 0),
            "{what}: server_options (known, hits, changed) with the cache off"
        );
    }
}

/// `proxy.server_options.max_age: 1s` and the clock moved 1.5 s on while nothing happens:
/// the server learnt by the first connection is not trusted for the second.
#[test]
fn a_server_learnt_longer_ago_than_max_age_is_not_trusted() {
    const MAX_AGE_MS: u64 = 1_000;
    for (i, rule) in [RULES[2], RULES[4]].into_iter().enumerate() {
        let mut config = cache_config();
        config.proxy.server_options.max_age = Duration::from_millis(MAX_AGE_MS);
        let mut learnt_at = 0;
        let (mut run, [first, second]) = two_connections(
            rule,
            Setting::Mss(SMALL_SERVER_MSS),
            5300 + i as u64,
            config,
            |run| {
                learnt_at = run.syn(Hop::ServerToBox).t_ms;
                // Idle: `step` jumps the clock to the next timer, at most 200 ms at a time.
                run.sim.run_for(MAX_AGE_MS + 500);
            },
        );
        let what = run.what();
        let asked_at = run.syn(Hop::ClientToBox).t_ms;
        assert!(
            asked_at - learnt_at > MAX_AGE_MS,
            "{what}: the server learnt at {learnt_at} ms, the second SYN at {asked_at} ms"
        );
        assert_split_again(&run, &first, &second);
        let (known, hits, _) = server_options(&mut run);
        assert_eq!(
            (known, hits),
            (1, 0),
            "{what}: server_options (known, hits): an entry too old is not a hit"
        );
    }
}

/// Gives the server a new interface whose IP MTU is `mtu` (smoltcp fixes the MSS a host
/// announces when its `Interface` is made), as a reconfigured host: same addresses, its
/// sockets kept. Only while nothing is in flight.
fn set_server_mtu(sim: &mut Sim, mtu: usize) {
    let (now, seed) = (sim.now, sim.seed);
    let h = &mut sim.server;
    assert!(
        h.dev.rx.is_empty() && h.dev.tx.is_empty(),
        "seed {seed}: the server's NIC is busy"
    );
    let mut dev = SimDevice::with_mtu(mtu);
    let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(h.mac));
    cfg.random_seed = seed ^ 0x6d74_7500;
    let mut iface = Interface::new(cfg, &mut dev, Instant::from_millis(now as i64));
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::Ipv4(h.ip), 24))
            .expect("one address fits");
    });
    iface
        .routes_mut()
        .add_default_ipv4_route(sim::BOX_OUTSIDE_IP)
        .expect("the default route fits");
    (h.dev, h.iface) = (dev, iface);
    h.options.mtu = mtu;
}

/// The server's MSS went down from 1460 to 1220 after the box learnt it: the second client
/// is told 1460 from the cache, more than the server now accepts, and its segments are split
/// (what the cache says is a hint; the server's SYN-ACK decides). The change is counted and
/// replaces what was known.
#[test]
fn a_server_whose_mss_went_down_gets_the_next_clients_segments_split() {
    for (i, rule) in [RULES[2], RULES[4]].into_iter().enumerate() {
        let (mut run, [first, second]) = two_connections(
            rule,
            Setting::Defaults,
            5400 + i as u64,
            cache_config(),
            |run| set_server_mtu(&mut run.sim, usize::from(SMALL_SERVER_MSS) + 40),
        );
        let what = run.what();
        assert_eq!(
            (first.told, first.server_mss, first.split_mss),
            (1380, 1460, 0),
            "{what}: the first connection (told, server MSS, split_mss): {first}"
        );
        assert_eq!(
            (second.told, second.server_mss, second.split_mss),
            (1460, SMALL_SERVER_MSS, split_at(SMALL_SERVER_MSS)),
            "{what}: the second connection (told, server MSS, split_mss): {second}"
        );
        assert!(
            second.edits.segments_split > 0,
            "{what}: the second connection's segments were not split: {second}"
        );
        let (known, hits, changed) = server_options(&mut run);
        assert!(
            known == 1 && hits >= 1 && changed == 1,
            "{what}: server_options known {known} (1), hits {hits} (at least 1), changed \
             {changed} (1)"
        );
    }
}

/// The server turned timestamps on after the box learnt it without: the second connection
/// is spliced with timestamps on both legs (nothing inserted or removed), and the change is
/// counted.
#[test]
fn a_server_that_turned_timestamps_on_is_spliced_with_them() {
    for (i, rule) in [RULES[2], RULES[4]].into_iter().enumerate() {
        let (mut run, [first, second]) = two_connections(
            rule,
            Setting::NoTimestamps,
            5500 + i as u64,
            cache_config(),
            // Read by the server's next socket (its listener for the second connection).
            |run| run.sim.server.options.timestamps = true,
        );
        let what = run.what();
        assert!(
            !first.server_ts && first.edits.ts_inserted > 0,
            "{what}: the first connection: {first}, {:?}",
            first.edits
        );
        // Told the client the server's 1460 from the cache; the server, known without
        // timestamps, 12 less than the client's 1460.
        assert_eq!(
            (
                second.told,
                run.box_mss_to(Peer::Server),
                second.xlate,
                second.split_mss
            ),
            (1460, 1460 - TS_ROOM, 0, 0),
            "{what}: the second connection (told the client, told the server, xlate, \
             split_mss): {second}"
        );
        assert!(
            second.server_ts && second.edits.ts_inserted == 0 && second.edits.ts_removed == 0,
            "{what}: the second connection: {second}, {:?}",
            second.edits
        );
        let (known, hits, changed) = server_options(&mut run);
        assert!(
            known == 1 && hits >= 1 && changed == 1,
            "{what}: server_options known {known} (1), hits {hits} (at least 1), changed \
             {changed} (1)"
        );
    }
}

/// A server that answers the second connection as it answered the first (with timestamps
/// and without) has not changed: `server_options_changed` stays 0.
#[test]
fn a_server_whose_options_did_not_change_is_not_counted_changed() {
    let mut failures = Vec::new();
    for (i, setting) in [Setting::NoTimestamps, Setting::Mss(SMALL_SERVER_MSS)]
        .into_iter()
        .enumerate()
    {
        let (mut run, [first, second]) =
            two_connections(RULES[2], setting, 5600 + i as u64, cache_config(), |_| {});
        let (known, hits, changed) = server_options(&mut run);
        if (known, changed) != (1, 0) || hits < 1 {
            let syn_acks: Vec<String> = run
                .tap
                .borrow()
                .iter()
                .filter(|s| s.hop == Hop::ServerToBox && s.syn())
                .map(|s| format!("    {s}"))
                .collect();
            failures.push(format!(
                "{}: server_options known {known} (1), hits {hits} (at least 1), changed \
                 {changed} (0)\n  first:  {first}\n  second: {second}\n  the server's SYN-ACKs:\n{}",
                run.what(),
                syn_acks.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The server turned timestamps off after the box learnt it with them: the box told the
/// second server the client's whole MSS (no room for the option it inserts: the server was
/// known to send timestamps), so the server's full segments with the option inserted are
/// larger than the client accepts: the fast path splits them toward the client
/// (`Xlate::SPLIT_TO_CLIENT`). Spliced, byte-exact, never more than its MSS toward either
/// peer; the change is counted.
#[test]
fn a_server_that_turned_timestamps_off_gets_its_segments_split_toward_the_client() {
    for (i, rule) in [RULES[2], RULES[4]].into_iter().enumerate() {
        let (mut run, [first, second]) = two_connections(
            rule,
            Setting::Defaults,
            5700 + i as u64,
            cache_config(),
            // Read by the server's next socket (its listener for the second connection).
            |run| run.sim.server.options.timestamps = false,
        );
        let what = run.what();
        assert!(
            first.server_ts && first.xlate == 0 && first.split_mss == 0,
            "{what}: the first connection: {first}"
        );
        assert_eq!(
            (
                second.told,
                run.box_mss_to(Peer::Server),
                second.server_ts,
                second.xlate,
                second.split_mss
            ),
            (
                1460,
                1460,
                false,
                Xlate::TS_CLIENT_ONLY | Xlate::SPLIT_TO_CLIENT,
                split_at(1460)
            ),
            "{what}: the second connection (told the client, told the server, server \
             timestamps, xlate, split_mss): {second}"
        );
        assert!(
            second.edits.ts_inserted > 0 && second.edits.segments_split > 0,
            "{what}: the second connection: {second}, {:?}",
            second.edits
        );
        let (known, hits, changed) = server_options(&mut run);
        assert!(
            known == 1 && hits >= 1 && changed == 1,
            "{what}: server_options known {known} (1), hits {hits} (at least 1), changed \
             {changed} (1)"
        );
    }
}
