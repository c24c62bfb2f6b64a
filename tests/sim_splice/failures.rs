//! Failures: wrong passwords, data and a FIN during the drain, a client far ahead of the
//! server's window, a reused client port, a server gone during the drain.

use super::*;

/// The server was never contacted: no TCP segment toward it, its listener still listening.
pub(crate) fn assert_server_untouched(sim: &Sim, tap: &Tap, server: EpId) {
    let to_server = tap.borrow().tcp[Hop::BoxToServer as usize];
    assert!(
        to_server == 0 && sim.state(server) == State::Listen,
        "seed {}: the server was contacted: {to_server} segments, listener {}\n{}",
        sim.seed,
        sim.state(server),
        sim.report()
    );
}

/// After a refused login: the client closes once the box has closed, and the box forgets the
/// connection.
fn close_after_the_box(sim: &mut Sim, client: EpId, what: &str) {
    sim.run_until(what, MAX_STEPS, |s| s.state(client) == State::CloseWait);
    sim.close_when_sent(client);
    sim.run_until("the connection closed", MAX_STEPS, |s| {
        s.is_finished(client) && s.flows() == 0
    });
}

/// One connection, its login refused and counted, and the server never contacted.
fn assert_login_refused(sim: &Sim, tap: &Tap, server: EpId) {
    assert_outcomes(sim, &format!("seed {}", sim.seed), (1, 0, 0, 0, 0, 1));
    assert_server_untouched(sim, tap, server);
}

/// A clean simulation with the wiretap on and a client connecting to a listener on `port`:
/// (the simulation, the wiretap, client, server).
fn tapped(seed: u64, port: u16) -> (Sim, Tap, EpId, EpId) {
    let mut sim = Sim::clean(seed);
    let tap = wiretap(&mut sim);
    let (client, server, _) = sim.dial(port);
    (sim, tap, client, server)
}

/// Three wrong passwords on `line`: three `Login incorrect.`, then `Too many failures.` and
/// the box closes; the server never sees a SYN. The client types each line after its prompt
/// and closes once the box has closed.
#[test]
fn line_three_wrong_passwords_close_the_connection() {
    let seed = 41;
    let (mut sim, tap, client, server) = tapped(seed, 2323);
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
    close_after_the_box(&mut sim, client, "the box closed");
    assert_stream(seed, "box -> client", &expected, sim.received(client));
    assert_login_refused(&sim, &tap, server);
    assert_eq!(
        tap.borrow().rst[Hop::BoxToClient as usize],
        0,
        "seed {seed}: the box reset the client instead of closing\n{}",
        sim.report()
    );
}

/// A wrong password on `http-basic`: the client gets the 401 and the box closes; the server
/// never sees a SYN.
#[test]
fn http_basic_wrong_password_gets_401() {
    let seed = 42;
    let (mut sim, tap, client, server) = tapped(seed, 8080);
    // alice:wonderlant
    sim.send(
        client,
        b"GET /x HTTP/1.1\r\nHost: s\r\nAuthorization: Basic YWxpY2U6d29uZGVybGFudA==\r\n\r\n",
    );
    close_after_the_box(&mut sim, client, "the box answered and closed");
    let got = String::from_utf8_lossy(sim.received(client)).into_owned();
    assert!(
        got.starts_with("HTTP/1.1 401 Unauthorized\r\n")
            && got.contains("WWW-Authenticate: Basic realm=\"cutthrough\"\r\n")
            && got.contains("\r\nConnection: close\r\n")
            && got.contains("\r\n\r\n"),
        "seed {seed}: the client got {got:?}\n{}",
        sim.report()
    );
    assert_login_refused(&sim, &tap, server);
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
    // Data segments that went to control before the splice, by direction.
    let data_to_control = |hop: Hop| -> Vec<SegInfo> {
        before
            .iter()
            .filter(|e| e.of_conn(cport))
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
        assert_outcomes(&run.sim, &format!("seed {seed}"), (1, 1, 0, 0, 0, 0));
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
/// of the old one (which would bounce it between worker and control until the afterlife
/// ended, the client's SYN retransmissions timing out meanwhile).
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
pub(crate) fn server_gone(seed: u64) -> (Sim, Tap, EpId, EpId, u64) {
    server_gone_after(seed, Duration::from_millis(DRAIN_TIMEOUT_MS))
}

/// [`server_gone`] with `proxy.drain_timeout` set to `limit`.
pub(crate) fn server_gone_after(seed: u64, limit: Duration) -> (Sim, Tap, EpId, EpId, u64) {
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
    assert_outcomes(&sim, &format!("seed {seed}"), (1, 0, 0, 0, 1, 0));
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
