#![cfg(feature = "dpdk")]
//! Hostile input through the real box on the namespace testbed (DESIGN.md §2, §4 "Lessons",
//! §7.3, §9), over `net_af_packet`. Frames are crafted by the
//! project's own generator (`tests/net/frames.py`: Python's `AF_PACKET` sockets, no extra
//! package) and sent from the namespaces straight onto the veths, so the box sees exactly
//! those bytes.
//!
//! 1. `malformed_frames_while_a_spliced_transfer_runs`: from both namespaces, into both
//!    ports, [`MALFORMED_EACH`] frames of each malformed kind (truncated IPv4 and TCP headers,
//!    IHL below 5 and beyond the frame, version 6, total length beyond the frame and below the
//!    header, TCP data offset below 5 and beyond the segment, IP fragments, three VLAN tags,
//!    unknown EtherTypes with random bytes, random bytes as IPv4, another host's MAC, an ACK
//!    for no connection, a SYN to a denied port, TTL 0 and 1) while two `line` connections
//!    on 2323, spliced, move 64 MiB each way. The transfer arrives byte-exact, the box stays
//!    up, and every malformed frame is counted under its reason (`truncated`,
//!    `bad_ip_header`, `bad_tcp_header`, `fragment`, `vlan_tags`, `unsupported_ethertype`,
//!    `not_for_us`, `no_flow`, `policy_deny`; TTL 0/1 are answered with ICMP time exceeded).
//!    A truncated *Ethernet* header cannot be sent: the kernel pads a frame shorter than 14
//!    bytes before a veth carries it.
//! 2. `blind_injection_into_a_spliced_flow`: while a spliced `line` connection moves 384 MiB
//!    each way, forged segments with its quad, from both ends (the client's namespace as the
//!    client, the server's as the server), built on a sequence number seen on the wire: RSTs a
//!    quarter of the sequence space ahead and behind (`rst_out_of_window`), data a quarter
//!    ahead (`out_of_window`), an ACK of data never sent (`ack_beyond_data`), and pure ACKs with
//!    malformed options (length 0, 1, overrunning: forwarded untouched, counted in
//!    `options_malformed`). The connection survives, byte-exact.
//! 3. `syn_flood_toward_a_proxy_rule`: SYNs from ct-inside to 9000 (`proxy`, auth `none`) as
//!    fast as one Python raw socket sends them, for [`FLOOD_SECONDS`], from
//!    [`FLOOD_PORTS`] source ports whose answers the client host never acknowledges nor resets
//!    (half-open connections, as from spoofed sources). Meanwhile legitimate clients log in on
//!    2323 and transfer: once the flood fills the pending-handshake table the box answers
//!    SYNs with cookies, and at least 80 % of them must be served (the rate is reported). The
//!    box stays up, its resident memory stays bounded ([`RSS_GROWTH_LIMIT_MIB`]; a watchdog
//!    stops the flood before the machine runs out of memory), and a client is served normally
//!    after the flood.
//! 4. `flow_table_full`: a test configuration (`tests/configs/small-flow-table.yaml`) with the
//!    smallest table (1024 flows) and 5 s timeouts for half-open flows. An established `pass`
//!    connection echoes throughout; SYNs to a `pass` port whose server never answers fill the
//!    table; a new connection is then refused (`flow_table_full`), the established one keeps
//!    working, and new connections succeed again once the half-open flows expire.
//!
//! Run as root: `cargo test --test e2e_hostile` (about a minute here). Timings and rates are
//! printed for information; nothing asserts on speed.

mod net;

use std::path::Path;
use std::time::{Duration, Instant};

use net::{counter, ns, worker_sum, Background, BoxProcess, Streams, Testbed};
use net::{CLIENT_ADDR, FRAMES, INSIDE, OUTSIDE, ROOT, SERVER_ADDR};

const LINE_PORT: u16 = 2323;
const SPLICE_PORT: u16 = 9000;

/// The port kind of the malformed-frames test: `net_af_packet` cannot take part, because
/// the kernel reassembles IP fragments for its fanout group (PACKET_FANOUT_FLAG_DEFRAG)
/// before the box sees them, and holds a lone fragment until it times out.
const PORTS_MALFORMED: &str = "af_xdp";
/// Frames of each malformed kind, from each namespace.
const MALFORMED_EACH: u64 = 300;
/// The malformed frames' pace from each namespace (frames per second).
const MALFORMED_PPS: u64 = 3000;
/// Forged segments of each kind, from each end.
const BLIND_EACH: u64 = 100;
/// How long the SYN flood lasts.
const FLOOD_SECONDS: u64 = 10;
/// The flood's source ports (1024..=32767: below the namespaces' ephemeral range).
const FLOOD_PORTS: (u16, u16) = (1024, 32767);
/// The box's resident memory may grow this much over the flood (MiB).
const RSS_GROWTH_LIMIT_MIB: u64 = 512;
/// The watchdog stops the flood (and fails the test) past this resident size (MiB).
const RSS_HARD_LIMIT_MIB: u64 = 6144;

/// Prints the box's connection events and warnings (the first 40), stops it, and returns the
/// stats and a pretty copy.
fn stop(the_box: BoxProcess) -> (serde_json::Value, String) {
    let words = ["spliced", "kept as", "drain timed out", "WARN", "ERROR"];
    net::stop_with_events(the_box, &words, 40)
}

/// Runs `frames.py ARGS...` in `ns_name` and returns the JSON it printed.
#[track_caller]
fn frames(ns_name: &str, args: &[&str], limit: Duration) -> serde_json::Value {
    let mut full = vec![FRAMES];
    full.extend_from_slice(args);
    let out = ns(ns_name, net::python(), &full, limit).expect_success("frames.py");
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("frames.py printed no JSON ({e}): {}", out.describe()))
}

/// The client port of the first connection to `port` the box logged as spliced.
fn spliced_client_port(the_box: &BoxProcess, port: u16) -> Option<u16> {
    let needle = format!(" -> {SERVER_ADDR}:{port}: spliced");
    the_box.stderr().lines().find_map(|l| {
        let i = l.find(&needle)?;
        let head = &l[..i];
        head.rsplit(':').next()?.trim().parse().ok()
    })
}

#[test]
fn malformed_frames_while_a_spliced_transfer_runs() {
    let (_lock, tmp, _testbed, mut the_box) =
        net::box_on_testbed("e2e-malformed", PORTS_MALFORMED, &[net::python()]);
    let (mac_in, mac_out) = (net::box_mac(INSIDE), net::box_mac(OUTSIDE));
    let log = tmp.join("line.log");
    let _server = net::traffic_server(LINE_PORT, &log, true);

    let transfer = Streams::new(LINE_PORT, "line", 2, 256 << 20, 256 << 20);
    let t0 = Instant::now();
    let mut client = transfer.start();
    // Inject once the connections are spliced.
    assert!(
        net::poll(Duration::from_secs(20), Duration::from_millis(50), || {
            spliced_client_port(&the_box, LINE_PORT).is_some()
        }),
        "the transfer was not spliced within 20 s\n{}",
        the_box.logs()
    );
    let each = MALFORMED_EACH.to_string();
    let pps = MALFORMED_PPS.to_string();
    let mut senders: Vec<Background> = [
        (INSIDE, "ct-in1", &mac_in, CLIENT_ADDR, SERVER_ADDR),
        (OUTSIDE, "ct-out1", &mac_out, SERVER_ADDR, CLIENT_ADDR),
    ]
    .iter()
    .map(|(n, dev, mac, src, dst)| {
        Background::ns(
            n,
            net::python(),
            &[FRAMES, "malformed", dev, mac, src, dst, &each, &pps],
        )
    })
    .collect();
    let mut expect: std::collections::BTreeMap<String, u64> = Default::default();
    for s in &mut senders {
        let status = s.wait(Duration::from_secs(60));
        assert!(
            status.is_some_and(|st| st.success()),
            "frames.py malformed: {}",
            s.describe()
        );
        let v: serde_json::Value = serde_json::from_str(s.stdout().trim())
            .unwrap_or_else(|e| panic!("frames.py output ({e}): {}", s.describe()));
        eprintln!("malformed frames sent: {}", v["sent"]);
        for (k, n) in v["expect"].as_object().expect("expect").iter() {
            *expect.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
    }
    let injected_in = t0.elapsed().as_secs_f64();
    let r = transfer.finish(&mut client);
    eprintln!(
        "{} (malformed frames injected during the first {injected_in:.1} s)",
        r.line()
    );
    assert!(the_box.alive(), "the box died\n{}", the_box.logs());
    r.verify(&log, &the_box.logs());

    let (stats, pretty) = stop(the_box);
    let missed = counter(&stats, &["ports", "inside", "rx_missed"])
        + counter(&stats, &["ports", "outside", "rx_missed"]);
    eprintln!(
        "drops: {}; icmp time exceeded sent: {}, rate-limited {}; rx missed: {missed}",
        net::nonzero(&stats["drops"]),
        counter(&stats, &["control", "icmp_time_exceeded_sent"]),
        counter(&stats, &["control", "icmp_rate_limited"])
    );
    let mut all = 0;
    for (reason, n) in &expect {
        let got = match reason.as_str() {
            // Answered, or not because of the ICMP error rate limit.
            "icmp_time_exceeded" => {
                counter(&stats, &["control", "icmp_time_exceeded_sent"])
                    + counter(&stats, &["control", "icmp_rate_limited"])
            }
            "any_drop" => continue,
            r => counter(&stats, &["drops", r]),
        };
        all += n;
        eprintln!("  {reason}: injected {n}, counted {got}");
        assert!(
            got >= *n,
            "{n} frames injected for `{reason}`, the box counted {got} (rx missed {missed})\n{pretty}"
        );
    }
    let total_drops: u64 = stats["drops"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    let random = expect.get("any_drop").copied().unwrap_or(0);
    let ttl = expect.get("icmp_time_exceeded").copied().unwrap_or(0);
    assert!(
        total_drops >= all - ttl + random,
        "{} frames that should have been dropped, {total_drops} drops in all\n{pretty}",
        all - ttl + random
    );
    assert_eq!(
        counter(&stats, &["connections", "spliced"]),
        2,
        "the two connections were spliced\n{pretty}"
    );
}

#[test]
fn blind_injection_into_a_spliced_flow() {
    let (_lock, tmp, _testbed, mut the_box) =
        net::box_on_testbed("e2e-blind", "af_packet", &[net::python()]);
    let (mac_in, mac_out) = (net::box_mac(INSIDE), net::box_mac(OUTSIDE));
    let log = tmp.join("line.log");
    let _server = net::traffic_server(LINE_PORT, &log, true);

    let transfer = Streams::new(LINE_PORT, "line", 1, 384 << 20, 384 << 20);
    let t0 = Instant::now();
    let mut client = transfer.start();
    let mut sport = None;
    assert!(
        net::poll(Duration::from_secs(20), Duration::from_millis(20), || {
            sport = spliced_client_port(&the_box, LINE_PORT);
            sport.is_some()
        }),
        "the transfer was not spliced within 20 s\n{}",
        the_box.logs()
    );
    let sport = sport.unwrap_or_default().to_string();
    let (port, each) = (LINE_PORT.to_string(), BLIND_EACH.to_string());
    let mut forgers: Vec<Background> = [
        (
            INSIDE,
            "ct-in1",
            &mac_in,
            CLIENT_ADDR,
            &sport,
            SERVER_ADDR,
            &port,
        ),
        (
            OUTSIDE,
            "ct-out1",
            &mac_out,
            SERVER_ADDR,
            &port,
            CLIENT_ADDR,
            &sport,
        ),
    ]
    .iter()
    .map(|(n, dev, mac, src, sp, dst, dp)| {
        Background::ns(
            n,
            net::python(),
            &[FRAMES, "blind", dev, mac, src, sp, dst, dp, &each],
        )
    })
    .collect();
    let mut expect: std::collections::BTreeMap<String, u64> = Default::default();
    for (side, f) in ["client", "server"].iter().zip(&mut forgers) {
        let status = f.wait(Duration::from_secs(60));
        let v: serde_json::Value = serde_json::from_str(f.stdout().trim()).unwrap_or_default();
        assert!(
            status.is_some_and(|s| s.success()),
            "frames.py blind as the {side}: {}",
            f.describe()
        );
        eprintln!(
            "forged as the {side} at {:.1} s, after seeing {}: {}",
            t0.elapsed().as_secs_f64(),
            v["observed"],
            v["sent"]
        );
        for (k, n) in v["expect"].as_object().expect("expect").iter() {
            *expect.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0);
        }
    }
    let r = transfer.finish(&mut client);
    eprintln!("{} (the forged segments went in during it)", r.line());
    assert!(the_box.alive(), "the box died\n{}", the_box.logs());
    r.verify(&log, &the_box.logs());

    let (stats, pretty) = stop(the_box);
    eprintln!(
        "drops: {}; options_malformed {}, ignored {}",
        net::nonzero(&stats["drops"]),
        worker_sum(&stats, "options_malformed"),
        worker_sum(&stats, "ignored")
    );
    for (reason, n) in &expect {
        let got = match reason.as_str() {
            "options_malformed" => worker_sum(&stats, "options_malformed"),
            r => counter(&stats, &["drops", r]),
        };
        eprintln!("  {reason}: forged {n}, counted {got}");
        assert!(
            got >= *n,
            "{n} forged segments for `{reason}`, the box counted {got}\n{pretty}"
        );
    }
    assert_eq!(
        counter(&stats, &["connections", "spliced"]),
        1,
        "one splice\n{pretty}"
    );
}

#[test]
fn syn_flood_toward_a_proxy_rule() {
    let (_lock, tmp, _testbed, mut the_box) =
        net::box_on_testbed("e2e-flood", "af_packet", &[net::python(), "iptables"]);
    let mac_in = net::box_mac(INSIDE);
    let (line_log, none_log) = (tmp.join("line.log"), tmp.join("none.log"));
    let _line = net::traffic_server(LINE_PORT, &line_log, true);
    let _none = net::traffic_server(SPLICE_PORT, &none_log, false);

    ignore_flood_syn_acks();
    // One legitimate connection first (auth `none`, so that the first login during the flood
    // is a real one): the baseline memory includes a used connection path.
    let mut warm = Streams::new(SPLICE_PORT, "none", 1, 1 << 20, 1 << 20);
    warm.seed0 = 1;
    warm.run().verify(&none_log, &the_box.logs());
    let pid = the_box.pid();
    let rss0 = net::rss_kib(pid);

    let t0 = Instant::now();
    let mut flood = start_flood(&mac_in);
    let DuringFlood {
        tried,
        served,
        prompted,
        peak,
        killed,
        failures,
    } = clients_during_flood(&mut flood, t0, pid, rss0);
    let status = flood.wait(Duration::from_secs(30));
    let flood_out: serde_json::Value =
        serde_json::from_str(flood.stdout().trim()).unwrap_or_default();
    let rss1 = net::rss_kib(pid);
    eprintln!(
        "SYN flood to {SERVER_ADDR}:{SPLICE_PORT} from {} source ports: {}",
        FLOOD_PORTS.1 - FLOOD_PORTS.0 + 1,
        flood_out
    );
    eprintln!(
        "legitimate line logins + 1 MiB each way during the flood: {served} of {tried} \
         succeeded ({:.0}%; {prompted} asked for the password, the rest had the login \
         cached){}",
        100.0 * f64::from(served) / f64::from(tried.max(1)),
        if failures.is_empty() {
            String::new()
        } else {
            format!("; failures: {}", failures.join("; "))
        }
    );
    eprintln!(
        "box resident memory: {} MiB before, {} MiB peak, {} MiB after",
        rss0 >> 10,
        peak >> 10,
        rss1 >> 10
    );
    assert!(
        !killed,
        "the box's resident memory passed {RSS_HARD_LIMIT_MIB} MiB during the flood: the \
         watchdog stopped it\n{}",
        the_box.logs()
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the flood: {}",
        flood.describe()
    );
    assert!(
        the_box.alive(),
        "the box died in the flood\n{}",
        the_box.logs()
    );

    let rss2 = serves_after_flood(&the_box, &line_log);

    let (stats, pretty) = stop(the_box);
    eprintln!(
        "connections {}; drops: {}; proxy {}; flows active {}",
        stats["connections"],
        net::nonzero(&stats["drops"]),
        stats["proxy"],
        worker_sum(&stats, "flows_active")
    );
    let growth = peak.max(rss2).saturating_sub(rss0) >> 10;
    assert!(
        growth <= RSS_GROWTH_LIMIT_MIB,
        "the box's resident memory grew by {growth} MiB in the flood (limit \
         {RSS_GROWTH_LIMIT_MIB} MiB; {} MiB still after it): half-open proxied connections \
         are not bounded\n{pretty}",
        rss2 >> 10
    );
    // The flood fills the pending-handshake table at once; from then on SYNs get cookies
    // (`proxy.syn_cookies: auto`) and legitimate clients get in without waiting for slots.
    // (Before cookies, 0 of 3-5 got through in some runs.) A client whose SYN was lost on a
    // full ring retransmits within its 4 s, so nearly all must succeed.
    let cookies = &stats["proxy"];
    assert!(
        cookies["syn_cookies_sent"].as_u64().unwrap_or(0) > 0
            && cookies["syn_cookies_accepted"].as_u64().unwrap_or(0) >= 1,
        "the flood was not answered with cookies, or no client came back with one: {cookies}"
    );
    assert!(
        tried >= 3 && served * 10 >= tried * 8,
        "legitimate clients during the flood: {served} of {tried} served (at least 80% \
         expected); failures: {}\n{pretty}",
        failures.join("; ")
    );
}

/// The flood's source ports are the client host's own, so the box's SYN-ACKs reach it:
/// make it ignore them like a spoofed source would (no RST), so every SYN leaves a
/// half-open connection behind.
fn ignore_flood_syn_acks() {
    let (lo, hi) = (FLOOD_PORTS.0.to_string(), FLOOD_PORTS.1.to_string());
    let ports = format!("{lo}:{hi}");
    let dport = SPLICE_PORT.to_string();
    ns(
        INSIDE,
        "iptables",
        &[
            "-A", "OUTPUT", "-p", "tcp", "--sport", &ports, "--dport", &dport, "-j", "DROP",
        ],
        Duration::from_secs(10),
    )
    .expect_success("iptables in ct-inside");
}

/// Starts `frames.py flood` toward the `none` rule's port from [`FLOOD_PORTS`].
fn start_flood(mac_in: &str) -> Background {
    let (lo, hi) = (FLOOD_PORTS.0.to_string(), FLOOD_PORTS.1.to_string());
    let dport = SPLICE_PORT.to_string();
    let secs = FLOOD_SECONDS.to_string();
    Background::ns(
        INSIDE,
        net::python(),
        &[
            FRAMES,
            "flood",
            "ct-in1",
            mac_in,
            CLIENT_ADDR,
            SERVER_ADDR,
            &dport,
            &lo,
            &hi,
            &secs,
        ],
    )
}

/// What the legitimate clients during the flood got, and the box's memory meanwhile.
struct DuringFlood {
    tried: u32,
    served: u32,
    prompted: u32,
    /// The box's peak resident set (KiB).
    peak: u64,
    /// Whether the watchdog killed the flood (the box passed [`RSS_HARD_LIMIT_MIB`]).
    killed: bool,
    failures: Vec<String>,
}

/// Legitimate clients while the flood lasts, one after the other, and the watchdog.
fn clients_during_flood(flood: &mut Background, t0: Instant, pid: u32, rss0: u64) -> DuringFlood {
    let mut d = DuringFlood {
        tried: 0,
        served: 0,
        prompted: 0,
        peak: rss0,
        killed: false,
        failures: Vec::new(),
    };
    let mut seed = 100;
    while flood.try_status().is_none() && t0.elapsed() < Duration::from_secs(FLOOD_SECONDS + 30) {
        let mut s = Streams::new(LINE_PORT, "line", 1, 1 << 20, 1 << 20);
        s.seed0 = seed;
        s.timeout = Duration::from_secs(4);
        seed += 1;
        let mut c = s.start();
        // Bounded: until the client ends (its own timeouts) or 60 s.
        let started = Instant::now();
        while c.try_status().is_none() && started.elapsed() < Duration::from_secs(60) {
            let rss = net::rss_kib(pid);
            d.peak = d.peak.max(rss);
            if rss > RSS_HARD_LIMIT_MIB << 10 && !d.killed {
                let _ = net::run(
                    "kill",
                    &["-KILL", &flood.pid().to_string()],
                    Duration::from_secs(5),
                );
                d.killed = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let r = s.finish(&mut c);
        d.tried += 1;
        if r.ok && r.conns.iter().all(|c| c["error"].is_null()) {
            d.served += 1;
            if r.conns.iter().any(|c| c["auth"] == "d.prompted") {
                d.prompted += 1;
            }
        } else if d.failures.len() < 5 {
            d.failures
                .push(r.conns.first().map(|c| c.to_string()).unwrap_or_default());
        }
    }
    d
}

/// After the flood the box serves normally; returns its resident set (KiB) then.
fn serves_after_flood(the_box: &BoxProcess, line_log: &Path) -> u64 {
    let mut after = Streams::new(LINE_PORT, "line", 1, 16 << 20, 16 << 20);
    after.seed0 = 10_000;
    after.timeout = Duration::from_secs(30);
    let r = after.run();
    eprintln!("{} (after the flood)", r.line());
    r.verify(line_log, &the_box.logs());

    net::rss_kib(the_box.pid())
}

#[test]
fn flow_table_full() {
    // `flow_table.capacity` of tests/configs/small-flow-table.yaml: the table holds exactly
    // that many flows.
    const TABLE: u64 = 1024;
    net::require_root();
    net::require_tools(&[net::python(), "iptables"]);
    let _lock = net::lock();
    let _testbed = Testbed::up("af_packet");
    let config = format!("{ROOT}/tests/configs/small-flow-table.yaml");
    let mut the_box = BoxProcess::start_config("af_packet", &config, &[]);
    let mac_in = net::box_mac(INSIDE);

    let probe_secs = 12;
    let (_echo, mut probe) = start_echo_probe(probe_secs);
    // A listener for the new connections, and a port whose SYNs the server host ignores.
    let _listener = net::start_server(
        OUTSIDE,
        5203,
        "socat",
        &["TCP-LISTEN:5203,reuseaddr,fork", "OPEN:/dev/null"],
    );
    ns(
        OUTSIDE,
        "iptables",
        &["-A", "INPUT", "-p", "tcp", "--dport", "5209", "-j", "DROP"],
        Duration::from_secs(10),
    )
    .expect_success("iptables in ct-outside");
    assert!(connect_5203(), "a connection before the table is full");
    std::thread::sleep(Duration::from_secs(1));

    let (refused, back_after) = fill_and_recover(&mac_in);
    let status = probe.wait(Duration::from_secs(probe_secs + 30));
    eprintln!("the established connection: {}", probe.stdout().trim());
    assert!(
        status.is_some_and(|s| s.success()),
        "the established connection broke while the table was full: {}",
        probe.describe()
    );
    assert!(the_box.alive(), "the box died\n{}", the_box.logs());
    assert!(
        refused,
        "a new connection succeeded while the table was full\n{}",
        the_box.logs()
    );
    assert!(
        back_after.is_some(),
        "no new connection succeeded within 20 s of the fill\n{}",
        the_box.logs()
    );

    let (stats, pretty) = stop(the_box);
    eprintln!(
        "drops: {}; flows created {} expired {} active {}",
        net::nonzero(&stats["drops"]),
        worker_sum(&stats, "flows_created"),
        worker_sum(&stats, "flows_expired"),
        worker_sum(&stats, "flows_active")
    );
    let full = counter(&stats, &["drops", "flow_table_full"]);
    assert!(
        full >= 2500 - TABLE,
        "drops.flow_table_full {full} < {} (2500 SYNs, {TABLE} slots)\n{pretty}",
        2500 - TABLE
    );
    assert!(
        worker_sum(&stats, "flows_expired") >= TABLE - 16,
        "the half-open flows did not expire\n{pretty}"
    );
}

/// An established `pass` connection that echoes 16 KiB every 100 ms for `probe_secs`: the
/// echo server and the probe.
fn start_echo_probe(probe_secs: u64) -> (Background, Background) {
    let echo = net::start_server(
        OUTSIDE,
        5202,
        net::python(),
        &[net::TRAFFIC, "echo-server", SERVER_ADDR, "5202"],
    );
    let probe = Background::ns(
        INSIDE,
        net::python(),
        &[
            net::TRAFFIC,
            "echo-probe",
            SERVER_ADDR,
            "5202",
            &probe_secs.to_string(),
        ],
    );
    (echo, probe)
}

/// Whether a new connection to the listener on 5203 opens.
fn connect_5203() -> bool {
    ns(
        INSIDE,
        "nc",
        &["-z", "-w", "2", SERVER_ADDR, "5203"],
        Duration::from_secs(10),
    )
    .success()
}

/// Fills the flow table (2500 half-open flows asked for, 1024 fit, less the echoing
/// connection), then waits for new connections to work again. Returns whether a new connection
/// was refused while the table was full, and when they worked again.
fn fill_and_recover(mac_in: &str) -> (bool, Option<Duration>) {
    let connect = connect_5203;
    let t_fill = Instant::now();
    let v = frames(
        INSIDE,
        &[
            "fill",
            "ct-in1",
            mac_in,
            CLIENT_ADDR,
            SERVER_ADDR,
            "5209",
            "20000",
            "2500",
            "10000",
        ],
        Duration::from_secs(30),
    );
    eprintln!("filled the table: {v}");
    let refused = !connect();
    eprintln!(
        "a new connection while the table is full: {} ({:.1} s after the fill began)",
        if refused { "refused" } else { "CONNECTED" },
        t_fill.elapsed().as_secs_f64()
    );
    // The half-open flows expire after 5 s; new connections work again.
    let mut back_after = None;
    for _ in 0..30 {
        if connect() {
            back_after = Some(t_fill.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "new connections succeed again {:.1} s after the fill",
        back_after.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    (refused, back_after)
}
