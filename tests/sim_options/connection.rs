//! One connection: opened on a new or the same simulation, spliced with the object checked
//! against the handshakes on the wire, finished with both streams byte-exact.

use common::conn::{Conn, ConnFlags, Xlate};

use super::sim::login::Handshakes;
use super::sim::{EpId, Outcome};

use super::checks::{edit_counters, EditCounters};
use super::*;

/// A simulation and its latest connection (a test may open more than one, one after the
/// other: every check is of the latest, by its client port).
pub(crate) struct Run {
    pub(crate) sim: Sim,
    pub(crate) tap: Tap,
    pub(crate) case: Case,
    pub(crate) client: EpId,
    pub(crate) server: EpId,
    pub(crate) cport: u16,
    /// The streams each endpoint must end up with.
    pub(crate) c2s: Vec<u8>,
    pub(crate) s2c: Vec<u8>,
    /// Connections opened on this simulation so far, this one included (each expected
    /// spliced).
    pub(crate) opened: u64,
    /// The fast path's edit counters when this connection was opened.
    pub(crate) edits_before: EditCounters,
}

impl Run {
    fn seed(&self) -> u64 {
        self.sim.seed
    }

    pub(crate) fn what(&self) -> String {
        let nth = if self.opened > 1 {
            format!(", connection {}", self.opened)
        } else {
            String::new()
        };
        format!("seed {}: {}{nth}", self.seed(), self.case.label())
    }

    /// `s` belongs to this connection.
    pub(crate) fn owns(&self, s: &Seg) -> bool {
        s.info.sport == self.cport || s.info.dport == self.cport
    }

    /// This connection's first SYN (SYN-ACK) on `hop`.
    pub(crate) fn syn(&self, hop: Hop) -> Seg {
        self.tap
            .borrow()
            .iter()
            .find(|s| s.hop == hop && s.syn() && self.owns(s))
            .cloned()
            .unwrap_or_else(|| panic!("{}: no SYN seen on {hop:?}", self.what()))
    }

    /// `peer` and the box negotiated timestamps: both handshake segments carried them.
    pub(crate) fn timestamps(&self, peer: Peer) -> bool {
        let (to, from) = peer.hops();
        self.syn(from).info.ts.is_some() && self.syn(to).info.ts.is_some()
    }

    /// The MSS `peer` announced in its SYN (SYN-ACK).
    pub(crate) fn mss_of(&self, peer: Peer) -> u16 {
        self.syn(peer.hops().1).mss.unwrap_or(DEFAULT_MSS)
    }

    /// The MSS the box announced to `peer`.
    pub(crate) fn box_mss_to(&self, peer: Peer) -> u16 {
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
}

/// A new simulation with the case's hosts, a listener on its rule's port and a client
/// connecting to it; the application step is driven to its end.
pub(crate) fn start(case: Case) -> Run {
    start_with(case, config())
}

/// [`start`] with the box on `config`.
pub(crate) fn start_with(case: Case, config: common::config::Config) -> Run {
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
pub(crate) fn open(run: &mut Run) {
    let case = run.case;
    let sim = &mut run.sim;
    run.opened += 1;
    run.edits_before = edit_counters(sim);
    let seed = case.seed;
    let (client, server, cport) = sim.dial(case.rule.port);
    // On `line` with `after-request` the first bytes only after the welcome, so the drain
    // waits for them; with `after-auth` in the password's segment.
    let what = format!("seed {seed}: {}", case.label());
    let after_welcome = case.rule.splice == SplicePoint::AfterRequest;
    let (c2s, s2c) =
        sim::login::application_step(sim, &what, case.rule.auth, after_welcome, client, server);
    (run.client, run.server, run.cport) = (client, server, cport);
    (run.c2s, run.s2c) = (c2s, s2c);
}

/// What the splice left: the trace length right after it, and the object.
pub(crate) struct AtSplice {
    pub(crate) trace_len: usize,
    pub(crate) forwarded: u64,
    pub(crate) conn: Conn,
}

/// Runs until the connection is spliced; checks the counters, that the legs are gone, and the
/// installed object against the handshakes on the wire.
pub(crate) fn splice(run: &mut Run) -> AtSplice {
    let n = run.opened;
    run.sim.run_until("the splice", MAX_STEPS, |s| {
        let c = s.proxy_connections();
        c.spliced + c.fallback + c.drain_timeout + c.full_proxy >= n
    });
    let conn = installed(run);
    assert_object(run, &conn);
    let sim = &run.sim;
    AtSplice {
        trace_len: sim.trace.len(),
        forwarded: sim.counters().forwarded,
        conn,
    }
}

/// Right after the splice: every connection so far spliced (no fallback, no drain timeout, no
/// failed login), the legs gone; returns the object installed for the connection.
fn installed(run: &Run) -> Conn {
    let what = run.what();
    let n = run.opened;
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
    conn
}

/// The installed object against the handshakes on the wire: its flags and `xlate` (timestamps
/// on both legs or one, the split direction), Δ1 and Δ2, the window shifts, `split_mss`.
fn assert_object(run: &Run, conn: &Conn) {
    let what = run.what();
    // Timestamps: offsets when both legs have them, removed and inserted with one.
    let (client_ts, server_ts) = (run.timestamps(Peer::Client), run.timestamps(Peer::Server));
    let flags = ConnFlags::SPLICED
        | if client_ts && server_ts {
            ConnFlags::TIMESTAMPS
        } else {
            0
        };
    assert_eq!(
        conn.flags() & (ConnFlags::SPLICED | ConnFlags::PROXIED | ConnFlags::TIMESTAMPS),
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
        conn.xlate(),
        xlate,
        "{what}: xlate of {conn:?} (timestamps: client leg {client_ts}, server leg {server_ts}; \
         MSS told the client {told_client} with what is inserted, the server accepts \
         {server_mss}; told the server {told_server}, the client accepts {client_mss})"
    );

    // Δ from the initial sequence numbers on the wire and what the box kept and added.
    let rule = run.case.rule;
    let syns = Handshakes {
        client_syn: run.syn(Hop::ClientToBox).info,
        box_synack: run.syn(Hop::BoxToClient).info,
        box_syn: run.syn(Hop::BoxToServer).info,
        server_synack: run.syn(Hop::ServerToBox).info,
    };
    syns.assert_deltas(&what, conn, rule.consumed(), rule.produced());
    // Window scaling: the shift each endpoint uses in, the shift its peer believes out.
    let (client_shift, box_to_client) = run.shifts(Peer::Client);
    let (server_shift, box_to_server) = run.shifts(Peer::Server);
    assert_eq!(
        (conn.wscale_in(), conn.wscale_out()),
        ([client_shift, server_shift], [box_to_server, box_to_client]),
        "{what}: (wscale_in, wscale_out) of {conn:?}; {syns}"
    );
    assert_eq!(
        conn.split_mss(),
        split,
        "{what}: split_mss of {conn:?}: told the client {told_client} with what is inserted, \
         the server accepts {server_mss}; told the server {told_server}, the client accepts \
         {client_mss}"
    );
}

/// Queues the bulk each way, closes both sides after it, runs until both have everything and
/// have closed, and checks both streams byte-exact.
pub(crate) fn finish(run: &mut Run) {
    let what = run.what();
    let eps = (run.client, run.server);
    let streams = (&mut run.c2s, &mut run.s2c);
    let bulk = run.case.bulk;
    sim::login::finish_both_ways(&mut run.sim, &what, eps, run.cport, streams, bulk);
}

/// Not one drop; after the splice nothing went to control and the worker forwarded the bulk.
pub(crate) fn assert_fast_path(run: &Run, at: &AtSplice) {
    let what = run.what();
    let sim = &run.sim;
    sim.assert_no_drops(&what);
    let after = sim.trace_of_since(run.cport, at.trace_len);
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
