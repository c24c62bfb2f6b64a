#![cfg(feature = "dpdk")]
//! Splicing between peers whose TCP options differ, through the real box on the namespace
//! testbed (DESIGN.md §4 "TCP options ... must be reconciled", §7.3, §8, §9, §10 "Peers
//! differ; the box reconciles"), over `net_af_packet`.
//!
//! Real Linux peers: the client in ct-inside, the server in ct-outside. One side at a time has
//! one setting changed from the kernel's defaults, in its own network namespace (these sysctls
//! are per namespace on this kernel; the matrix test checks that first):
//!
//! | setting | how |
//! | --- | --- |
//! | timestamps off | `net.ipv4.tcp_timestamps=0` |
//! | SACK off | `net.ipv4.tcp_sack=0` |
//! | window scaling off | `net.ipv4.tcp_window_scaling=0` |
//! | MSS 536 / 1220 / 1360 / 1400 | `ip route change default ... advmss N`: both hosts reach the other side through their default route, so their SYN (SYN-ACK) carries that MSS |
//! | ECN on | `net.ipv4.tcp_ecn=1` (on the server a no-op for its listener unless the client asks: the default 2 already accepts) |
//! | small receive buffers | `net.ipv4.tcp_rmem="4096 8192 16384"` |
//!
//! Each setting is read first and put back after its connections (a guard, so also when the
//! test panics); the namespaces are torn down at the end of every test anyway.
//!
//! The box runs a configuration written to a temp dir (`config/testbed.yaml`'s interfaces and
//! user): six `proxy` rules, one per auth method (`none`, `line`, `http-basic`) and splice
//! point (`after-auth`, `after-request`), each on a range of [`PORTS_PER_RULE`] server ports
//! ([`RULES`]); `auth.cache_timeout` is 1 ms so every `line` and `http-basic` connection really
//! authenticates (a cached login would let the box reach the server before answering the
//! client, as with auth `none`).
//!
//! The box remembers what each server port's SYN-ACK announced (`proxy.server_options`), and
//! the server's SYN-ACK only answers what the box offered it, so a connection's outcome can
//! depend on the connections before it. In the first two tests each group of connections (one
//! setting on one side) therefore uses its own port of every rule: every connection there is
//! the box's first to that server port, whatever the order. The third test is the opposite.
//!
//! The peers: for `none` and `line` a threaded echo server (Python, `tests/net/options_helper.py`)
//! and a client that logs in (`line`: `Username:`/`Password:` as `alice`/`wonderland`), then
//! sends [`BYTES`] while it reads the echo, and compares every byte; the server logs the
//! SHA-256 of what it received, compared with what the client sent. For `http-basic`: curl
//! `-u alice:wonderland` POSTs [`BYTES`] to a Python HTTP server, which logs the SHA-256 of the
//! body and answers with [`BYTES`] of a random file; the download is compared byte for byte.
//!
//! A connection passes when its bytes are exact both ways, the box's statistics
//! (`--stats-json`, cumulative, compared before and after the connection) count one splice and
//! no fallback and no drain timeout for it, and the box logged `<quad>: spliced` for its quad.
//! Every test collects all its connections into a table, prints it, and then fails listing
//! every failing connection, so one run shows the whole matrix.
//!
//! 1. `every_option_mismatch_is_spliced_byte_exact`: defaults, then every setting on the
//!    client and on the server, × the six rules: 114 connections of [`BYTES`] each way.
//! 2. `option_mismatches_are_spliced_byte_exact_under_wire_faults`: a subset (defaults,
//!    timestamps off on each side, MSS 1220 on the server, SACK off on the client) × the six
//!    rules under [`FaultSpec::LOSSY`] (about 1% loss, 5% reordering, 1% duplication per path;
//!    the injector is started per group, as its iptables rules take at most 15 ports): 30
//!    connections of [`FAULT_BYTES`] each way. The injectors must have dropped, held and
//!    duplicated packets.
//! 3. `server_options_may_change_between_connections`: the same ports (`none` after-auth,
//!    `line` after-auth, `http-basic` after-request) again and again while the server's
//!    timestamps and MSS change between connections, so what the box learnt from the server's
//!    last SYN-ACK mostly no longer holds (a setting repeated at once checks that it still
//!    splices when it does): 30 connections of 1 MiB each way.
//!
//! Run as root: `cargo test --test e2e_options -- --test-threads=1 --nocapture` (about four
//! minutes here with a healthy box; every connection, every test and every wait is bounded,
//! and a test that runs out of its time budget fails the connections it did not run).
//! `CT_OPTIONS_KIB=N` changes the bytes each way per connection.
//! `CUTTHROUGH_TEST_BOX_LOG=info,control=debug` sets the box's `RUST_LOG`.

#[path = "../net/mod.rs"]
mod net;

mod bench;
mod report;
mod tweaks;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use net::{counter, path_str, python, Background, BoxProcess, FaultSpec, Faults, TempDir, Testbed};
use net::{CLIENT_ADDR, INSIDE, OUTSIDE, ROOT, SERVER_ADDR};

use bench::*;
use report::*;
use tweaks::*;

/// Bytes each way per connection (`CT_OPTIONS_KIB` overrides, in KiB).
const BYTES: u64 = 2 << 20;
/// Bytes each way per connection under wire faults.
const FAULT_BYTES: u64 = 1 << 20;

/// One `proxy` rule of the test configuration, and the server port a connection uses.
#[derive(Debug, Clone, Copy)]
struct Rule {
    auth: &'static str,
    splice: &'static str,
    /// In [`RULES`] the first of the rule's [`PORTS_PER_RULE`] ports; in a case, its port.
    port: u16,
}

/// Server ports per rule: each group of connections (a setting on one side) uses its own
/// port of every rule, so no group inherits what the box learnt of a server port in another
/// (the box remembers each server port's handshake options).
const PORTS_PER_RULE: u16 = 20;

impl Rule {
    /// The rule with group `group`'s port.
    fn at(self, group: u16) -> Rule {
        assert!(group < PORTS_PER_RULE, "group {group} has no port");
        Rule {
            port: self.port + group,
            ..self
        }
    }
}

/// The six rules for group `group`.
fn rules(group: u16) -> Vec<Rule> {
    RULES.iter().map(|r| r.at(group)).collect()
}

/// The six rules, one per (auth, splice point), each on its own range of ports.
const RULES: [Rule; 6] = [
    Rule {
        auth: "none",
        splice: "after-auth",
        port: 10000,
    },
    Rule {
        auth: "none",
        splice: "after-request",
        port: 10100,
    },
    Rule {
        auth: "line",
        splice: "after-auth",
        port: 10200,
    },
    Rule {
        auth: "line",
        splice: "after-request",
        port: 10300,
    },
    Rule {
        auth: "http-basic",
        splice: "after-auth",
        port: 10400,
    },
    Rule {
        auth: "http-basic",
        splice: "after-request",
        port: 10500,
    },
];

/// How long a helper command (reading or writing a setting) may take.
const CMD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the statistics may take to show a connection's splice or fallback (the box
/// rewrites the file every second).
const STATS_SETTLE: Duration = Duration::from_secs(5);
/// How long a server may take to log a connection after its client finished.
const SERVER_LOG_WAIT: Duration = Duration::from_secs(5);

fn bytes_per_conn(default: u64) -> u64 {
    std::env::var("CT_OPTIONS_KIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&k| k > 0)
        .map_or(default, |k| k << 10)
}

/// Lock, testbed and the tools: what every test here starts with.
macro_rules! testbed {
    ($lock:ident, $testbed:ident) => {
        net::require_root();
        net::require_tools(&["curl", python(), "iptables", "cat", "sh"]);
        let $lock = net::lock();
        let $testbed = Testbed::up("af_packet");
    };
}

#[test]
fn every_option_mismatch_is_spliced_byte_exact() {
    testbed!(_lock, _testbed);
    check_sysctls_are_per_namespace();
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(480);
    let mut bench = Bench::start(
        "e2e-options",
        bytes_per_conn(BYTES),
        Duration::from_secs(10),
    );
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    let mut groups: Vec<(&Setting, Side)> = vec![(&DEFAULTS, Side::Neither)];
    for setting in SETTINGS {
        groups.extend([(setting, Side::Client), (setting, Side::Server)]);
    }
    for (group, (setting, side)) in groups.into_iter().enumerate() {
        let rules = rules(group as u16);
        bench.run_group(setting, side, &rules, deadline, &mut results, &mut errors);
    }
    bench.box_health(&mut errors);
    report(
        "TCP option mismatches, one side at a time",
        &results,
        &errors,
        t0.elapsed(),
    );
}

#[test]
fn option_mismatches_are_spliced_byte_exact_under_wire_faults() {
    testbed!(_lock, _testbed);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(300);
    let mut bench = Bench::start(
        "e2e-options-faults",
        bytes_per_conn(FAULT_BYTES),
        Duration::from_secs(20),
    );
    let spec = FaultSpec::LOSSY;
    let (loss, reorder, _) = spec.per_path();
    eprintln!(
        "faults per path: {:.1}% loss, {:.1}% reordering, {:.1}% duplication",
        loss * 100.0,
        reorder * 100.0,
        spec.dup * 100.0
    );
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    let groups: [(&Setting, Side); 5] = [
        (&DEFAULTS, Side::Neither),
        (&TIMESTAMPS_OFF, Side::Client),
        (&TIMESTAMPS_OFF, Side::Server),
        (&MSS_1220, Side::Server),
        (&SACK_OFF_SETTING, Side::Client),
    ];
    let (mut dropped, mut held, mut dups) = (0, 0, 0);
    for (group, (setting, side)) in groups.into_iter().enumerate() {
        let rules = rules(group as u16);
        // The injector's iptables rules take at most 15 ports: one group's six at a time.
        let ports: Vec<u16> = rules.iter().map(|r| r.port).collect();
        let faults = Faults::start(spec, &ports);
        bench.run_group(setting, side, &rules, deadline, &mut results, &mut errors);
        let fault_report = faults.stop();
        eprintln!(
            "faults during {} on the {}: {}",
            setting.name,
            side.name(),
            fault_report.summary()
        );
        dropped += fault_report.dropped();
        held += fault_report.held();
        dups += fault_report.dups();
    }
    if dropped == 0 || held == 0 || dups == 0 {
        errors.push(format!(
            "the faults did not all happen: {dropped} dropped, {held} held, {dups} duplicated"
        ));
    }
    bench.box_health(&mut errors);
    report(
        "TCP option mismatches under wire faults",
        &results,
        &errors,
        t0.elapsed(),
    );
}

#[test]
fn server_options_may_change_between_connections() {
    testbed!(_lock, _testbed);
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(180);
    let mut bench = Bench::start(
        "e2e-options-toggle",
        bytes_per_conn(1 << 20),
        Duration::from_secs(10),
    );
    // The server as it is at each connection, in turn, always on the same ports: mostly
    // what the box saw of it the last time is wrong this time; a setting repeated right away
    // checks the case where it is right.
    const STATES: &[Setting] = &[
        DEFAULTS,
        TIMESTAMPS_OFF,
        TIMESTAMPS_OFF,
        DEFAULTS,
        MSS_1220,
        MSS_1220,
        Setting {
            name: "TS off+MSS 1360",
            tweaks: &[TS_OFF, Tweak::AdvMss(1360)],
        },
        Setting {
            name: "MSS 536",
            tweaks: &[Tweak::AdvMss(536)],
        },
        TIMESTAMPS_OFF,
        DEFAULTS,
    ];
    let rules = [RULES[0].at(0), RULES[2].at(0), RULES[5].at(0)];
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for state in STATES {
        let side = if state.tweaks.is_empty() {
            Side::Neither
        } else {
            Side::Server
        };
        bench.run_group(state, side, &rules, deadline, &mut results, &mut errors);
    }
    bench.box_health(&mut errors);
    report(
        "the server's options change between connections",
        &results,
        &errors,
        t0.elapsed(),
    );
}
