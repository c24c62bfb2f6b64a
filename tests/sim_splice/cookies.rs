//! SYN cookies (`proxy.syn_cookies: always`): the box answers the SYN without keeping anything
//! and builds the legs from the client's ACK; the splice's Δ must still match the wire.

use super::*;

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

type Ports = Rc<RefCell<std::collections::HashSet<u16>>>;

/// A SYN flood toward the `line` rule whose senders never answer the SYN-ACK fills the
/// pending-handshake table; then a real client connects. Returns it, when it connected, and
/// the flood's client ports (the box's SYN-ACKs to them are lost).
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
