//! The password verifier threads in use (`control::verifier`, as under `cutthrough run`), with
//! a check held until the test releases it.

use std::sync::{mpsc, Arc, Mutex};

use control::verifier::{CheckFn, Verifier};

use super::failures::assert_server_untouched;
use super::*;

/// A real credential check that first waits for a token from the returned sender (at most a
/// minute, so a failing test cannot hang on it).
fn held_check() -> (CheckFn, mpsc::Sender<()>) {
    let (release, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let check: CheckFn = Arc::new(move |dir, backend, name, password| {
        let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(60));
        dir.check(backend, name, password)
    });
    (check, release)
}

/// A clean simulation whose box checks passwords on one verifier thread with [`held_check`],
/// queueing at most `capacity` attempts; the sender releases one check.
fn held_verifier(seed: u64, capacity: usize) -> (Sim, mpsc::Sender<()>) {
    let mut sim = Sim::clean(seed);
    let (check, release) = held_check();
    let pool = Verifier::pool(1, 0, capacity, check).expect("verifier thread");
    sim.the_box.plane.proxy.set_verifier(pool);
    (sim, release)
}

/// A `line` client up to its password prompt; then it sends `password`.
fn line_login(sim: &mut Sim, password: &[u8]) -> (EpId, u16) {
    let cport = sim.client_port();
    let client = sim.connect(cport, 2323);
    sim::login::line_prompts(sim, client);
    sim.send(client, password);
    (client, cport)
}

/// The box lets the pool's threads finish what they hold (in real time), so the next tick
/// collects every verdict whatever the scheduling.
fn verdicts_ready(sim: &Sim) {
    assert!(
        sim.the_box
            .plane
            .proxy
            .wait_verdicts(Duration::from_secs(60)),
        "seed {}: the verifier threads did not answer",
        sim.seed
    );
}

/// A `line` login is held in the verifier: meanwhile a second login finds the pool full (one
/// pending at most) and is refused unchecked, and a whole `auth: none` connection handshakes,
/// is spliced and carries its data both ways through the fast path. Released, the held login
/// completes as usual.
#[test]
fn a_login_being_verified_does_not_stall_other_connections() {
    let seed = 47;
    let (mut sim, release) = held_verifier(seed, 1);
    let server = sim.listen(2323);
    let (client, cport) = line_login(&mut sim, &[PASSWORD_LINE, LEFTOVER].concat());
    sim.run_until("the attempt is with the verifier", MAX_STEPS, |s| {
        s.proxy_connections().auth_pending == 1
    });

    let _second_server = sim.listen(2323);
    let (second, _) = line_login(&mut sim, PASSWORD_LINE);
    expect_from_box(
        &mut sim,
        second,
        b"Username: Password: Login not checked, the box is busy.\r\nUsername: ",
        "the busy answer",
    );
    assert_eq!(sim.proxy_connections().auth_queue_full, 1, "seed {seed}");

    let t = sim.transfer(9000, 256 * KIB, 256 * KIB);
    sim.run_until("the 9000 transfer", MAX_STEPS, |s| s.transfer_done(&t));
    sim.check_transfer(&t);
    let key = sim::flow_key(cport, 2323);
    let c = sim.proxy_connections();
    assert_eq!(
        (c.spliced, c.auth_pending, c.auth_verified),
        (1, 1, 0),
        "seed {seed}: (spliced, auth_pending, auth_verified) during the held login\n{}",
        sim.report()
    );
    assert_eq!(sim.received(client), b"Username: Password: ", "seed {seed}");
    assert_eq!(
        sim.the_box.plane.proxy.phase_of(&key),
        Some("auth"),
        "seed {seed}"
    );
    assert_eq!(
        sim.state(server),
        State::Listen,
        "seed {seed}: server contacted"
    );

    release.send(()).unwrap();
    verdicts_ready(&sim);
    expect_from_box(&mut sim, client, LINE_OUTPUT, "the welcome");
    sim.run_until("the leftover at the server", MAX_STEPS, |s| {
        s.received(server).len() >= LEFTOVER.len()
    });
    assert_stream(seed, "client -> server", LEFTOVER, sim.received(server));
    sim.run_until("the login spliced", MAX_STEPS, |s| {
        s.proxy_connections().spliced == 2
    });
    let c = sim.proxy_connections();
    assert_eq!(
        (
            c.auth_verified,
            c.auth_pending,
            c.auth_failed,
            c.auth_discarded
        ),
        (1, 0, 0, 0),
        "seed {seed}: (verified, pending, failed, discarded)\n{}",
        sim.report()
    );
}

/// Eight logins at once from one address, held in the verifier: only as many are verified
/// at a time as the rate limit's budget (5 failures a minute); the others wait. Wrong
/// passwords: after five failures the waiting three are answered unchecked, and no more than
/// five guesses were ever verified. Right passwords: all eight get in, five then three.
#[test]
fn parallel_logins_of_one_address_are_verified_within_the_rate_limit() {
    for (seed, right) in [(49, false), (50, true)] {
        let (mut sim, release) = held_verifier(seed, 64);
        let password: &[u8] = if right { PASSWORD_LINE } else { b"guess\r\n" };
        let clients: Vec<EpId> = (0..8)
            .map(|_| {
                sim.listen(2323);
                line_login(&mut sim, password).0
            })
            .collect();
        sim.run_for(50);
        let c = sim.proxy_connections();
        assert_eq!(
            (c.auth_pending, c.auth_verified),
            (5, 0),
            "seed {seed}: (pending, verified) with eight attempts sent\n{}",
            sim.report()
        );
        for round in [5, 3] {
            for _ in 0..round {
                release.send(()).unwrap();
            }
            verdicts_ready(&sim);
            sim.run_for(50);
        }
        let c = sim.proxy_connections();
        let answered = |s: &Sim, text: &[u8]| {
            clients
                .iter()
                .filter(|&&ep| s.received(ep).windows(text.len()).any(|w| w == text))
                .count()
        };
        let (welcomed, incorrect, unchecked) = (
            answered(&sim, WELCOME),
            answered(&sim, b"Login incorrect."),
            answered(&sim, control::auth::NOT_CHECKED),
        );
        let want = if right { (8, 8, 0, 0) } else { (5, 0, 5, 3) };
        assert_eq!(
            (c.auth_verified, welcomed, incorrect, unchecked),
            want,
            "seed {seed}: (verified, welcomed, incorrect, unchecked)\n{}",
            sim.report()
        );
    }
}

/// A client that resets while its wrong password is verified: the connection goes at once,
/// its verdict is discarded when it comes, and nothing is sent for it.
#[test]
fn a_verdict_for_a_connection_that_reset_is_discarded() {
    let seed = 48;
    let (mut sim, release) = held_verifier(seed, 4);
    let tap = wiretap(&mut sim);
    let server = sim.listen(2323);
    let (client, cport) = line_login(&mut sim, b"wonderlant\r\n");
    sim.run_until("the attempt is with the verifier", MAX_STEPS, |s| {
        s.proxy_connections().auth_pending == 1
    });
    let e = sim.endpoint(client);
    let (host, handle) = (e.host, e.handle);
    sim.host_mut(host).socket_mut(handle).abort();
    let key = sim::flow_key(cport, 2323);
    sim.run_until("the box forgot the connection", MAX_STEPS, |s| {
        s.the_box.plane.proxy.phase_of(&key).is_none()
    });
    let to_client = tap.borrow().tcp[Hop::BoxToClient as usize];
    release.send(()).unwrap();
    verdicts_ready(&sim);
    sim.run_for(100);
    let c = sim.proxy_connections();
    assert_eq!(
        (
            c.auth_verified,
            c.auth_pending,
            c.auth_discarded,
            c.auth_failed
        ),
        (1, 0, 1, 0),
        "seed {seed}: (verified, pending, discarded, auth_failed)\n{}",
        sim.report()
    );
    assert_eq!(
        tap.borrow().tcp[Hop::BoxToClient as usize],
        to_client,
        "seed {seed}: the box answered a connection that was gone\n{}",
        sim.report()
    );
    assert_server_untouched(&sim, &tap, server);
}
