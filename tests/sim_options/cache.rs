//! The cache of servers' options: two connections to one server in one simulation.

use std::time::Duration;

use common::conn::Xlate;
use smoltcp::iface::{Config as IfaceConfig, Interface};
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

use super::sim::SimDevice;

use super::checks::{assert_wire, EditCounters};
use super::connection::{assert_fast_path, finish, open, splice, start_with, Run};
use super::*;

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
        xlate: at.conn.xlate(),
        split_mss: at.conn.split_mss(),
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

/// The server is known once, was a hit for the second connection, and its change is counted
/// once.
fn assert_server_changed_once(run: &mut Run) {
    let (known, hits, changed) = server_options(run);
    assert!(
        known == 1 && hits >= 1 && changed == 1,
        "{}: server_options known {known} (1), hits {hits} (at least 1), changed {changed} (1)",
        run.what()
    );
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
        assert_server_changed_once(&mut run);
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
        assert_server_changed_once(&mut run);
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
        assert_server_changed_once(&mut run);
    }
}
