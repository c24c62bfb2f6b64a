//! One connection: opened on a new or the same simulation, spliced with the object checked
//! against the handshakes on the wire, finished with both streams byte-exact.

use common::conn::{Conn, ConnFlags, Xlate};

use super::sim::{expect_from_box, payload, stream_id, Dir, EpId, Outcome};

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
        AuthMethod::HttpBasic => sim::http_first_request(sim, seed, client, server),
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
}

/// Queues the bulk each way, closes both sides after it, runs until both have everything and
/// have closed, and checks both streams byte-exact.
pub(crate) fn finish(run: &mut Run) {
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
pub(crate) fn assert_fast_path(run: &Run, at: &AtSplice) {
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
