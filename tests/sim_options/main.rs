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

#[path = "../sim/mod.rs"]
mod sim;

mod cache;
mod checks;
mod clean;
mod connection;
mod faults;

use std::cell::RefCell;
use std::rc::Rc;

use common::config::{
    Action, AuthMethod, Cidr, HttpLogin, PortRange, Protocol, Rule, RuleLogin, SplicePoint, Zone,
};
use sim::script::*;
use sim::{Fate, Faults, Hop, HostOptions, SegInfo, Sim, MAX_STEPS};

const KIB: usize = 1024;
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
        to_zone: Zone::Any,
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
