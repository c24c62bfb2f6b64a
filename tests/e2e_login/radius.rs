//! `radius_login_af_packet`.

use super::*;

#[test]
fn radius_login_af_packet() {
    net::require_root();
    // Server 1: a port the test holds and never reads. Server 2: FreeRADIUS.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind the silent RADIUS port");
    let silent_port = silent.local_addr().expect("its port").port();
    let radius_dir = TempDir::new("e2e-login-radius");
    let mut freeradius = FreeRadius::start(radius_dir.path());
    let radius_port = freeradius.port;
    let config = radius_config(silent_port, radius_port);
    let mut rig = Rig::up(
        "e2e-login-radius",
        &config,
        &[],
        &[
            LINE_PORT,
            LOCAL_LINE_PORT,
            FALLBACK_LINE_PORT,
            SPLICE_ONLY_PORT,
        ],
    );
    let t = Instant::now();
    carol_after_the_silent_server(&rig);
    refusals(&mut rig, t);
    freeradius_down(&mut rig, &mut freeradius);
    // Both servers silent (the test holds FreeRADIUS's port now, until the end).
    let _silent2 = UdpSocket::bind(("127.0.0.1", radius_port)).expect("bind FreeRADIUS's port");
    others_not_held_up(&rig);
    fallback_to_local(&rig);
    check_accounting(&rig);
    check_the_end(&mut rig, t);
    drop(silent);
}

/// `config/testbed.yaml` with `backend: radius` for `line-auth` and `web`, the rules
/// `line-local` (2324) and `line-fallback` (2325, `radius-then-local`), and `auth.radius`: the
/// silent server first, FreeRADIUS second.
fn radius_config(silent_port: u16, radius_port: u16) -> String {
    let mut config = testbed_yaml();
    config = rule_field(&config, "line-auth", "backend: radius");
    config = rule_field(&config, "web", "backend: radius");
    config = add_rules(
        &config,
        &format!(
            "  - name: line-local\n    protocol: tcp\n    ports: [{LOCAL_LINE_PORT}]\n    \
             action: proxy\n    auth: line\n    backend: local\n    splice: after-auth\n\n  \
             - name: line-fallback\n    protocol: tcp\n    ports: [{FALLBACK_LINE_PORT}]\n    \
             action: proxy\n    auth: line\n    backend: radius-then-local\n    \
             splice: after-auth\n\n"
        ),
    );
    config = add_auth(
        &config,
        &format!(
            "  radius:\n    servers:\n      - address: \"127.0.0.1:{silent_port}\"\n        \
             secret: {RADIUS_SECRET}\n      - address: \"127.0.0.1:{radius_port}\"\n        \
             secret: {RADIUS_SECRET}\n    timeout: {}ms\n    retries: {}\n    \
             nas_identifier: cutthrough\n",
            RADIUS_TIMEOUT.as_millis(),
            RADIUS_TRIES - 1
        ),
    );
    config
}

/// A `line` session for the helper's `sessions`.
fn line(port: u16, user: &str, password: &str, expect: &str) -> String {
    format!("line:{port}:{user}:{password}:{expect}")
}

/// The seconds between two of a session record's times.
fn secs(r: &serde_json::Value, from: &str, to: &str) -> f64 {
    r[to].as_f64().unwrap_or(f64::NAN) - r[from].as_f64().unwrap_or(f64::NAN)
}

/// carol: server 1 silent twice, then FreeRADIUS accepts.
fn carol_after_the_silent_server(rig: &Rig) {
    let one_try = RADIUS_TIMEOUT.as_secs_f64();
    let r = rig.sessions(&[&line(LINE_PORT, CAROL, CAROL_PASSWORD, "accepted")]);
    let waited = secs(&r[0], "t_sent", "t_answer");
    rig.expect_counters(
        "after carol's login",
        &[
            ("radius.requests", 2),
            ("radius.retransmissions", 1),
            ("radius.timeouts", 2),
            ("radius.accepts", 1),
            ("radius.rejects", 0),
        ],
    );
    assert!(
        waited >= 2.0 * one_try - 0.05,
        "carol's login took {waited:.2} s: server 1 should have been waited for twice"
    );
    let list = logins();
    assert_eq!(list.len(), 1, "auth list --json: {list:#?}");
    check_login(&list[0], CAROL, "line", "line-auth", "shared", "radius");
    auth_clear(&["--all"], 1);
    eprintln!(
        "[radius] carol accepted after {waited:.2} s (server 1 silent twice, then FreeRADIUS)"
    );
}

/// Refusals: a wrong password; alice, a YAML user only; and on radius-then-local, RADIUS's
/// reject of alice is final. carol logs in at the box's origin, for the web rule (backend:
/// radius).
fn refusals(rig: &mut Rig, t: Instant) {
    rig.sessions(&[
        &line(LINE_PORT, CAROL, "not-radius-pass", "incorrect"),
        &line(LINE_PORT, USER, PASSWORD, "incorrect"),
        &line(FALLBACK_LINE_PORT, USER, PASSWORD, "incorrect"),
    ]);
    rig.expect_counters("after three refusals", &[("radius.rejects", 3)]);
    let portal_url = format!("{PORTAL_ORIGIN}/login?rule=web");
    let carol_credentials = format!("{CAROL}:{CAROL_PASSWORD}");
    let c = rig.curl(&["-u", &carol_credentials], &portal_url);
    assert!(
        c.code == 200 && c.body == b"Logged in as carol.\n",
        "carol at the box's origin: {}",
        c.describe()
    );
    auth_clear(&["--all"], 1);
    eprintln!(
        "[radius] refused: a wrong password, alice (YAML only), alice on radius-then-local \
         (a reject is final); carol logged in at the virtual origin ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
}

/// FreeRADIUS stopped: no server answers.
fn freeradius_down(rig: &mut Rig, freeradius: &mut FreeRadius) {
    let one_try = RADIUS_TIMEOUT.as_secs_f64();
    let portal_url = format!("{PORTAL_ORIGIN}/login?rule=web");
    let carol_credentials = format!("{CAROL}:{CAROL_PASSWORD}");
    freeradius.stop();
    let r = rig.sessions(&[&line(LINE_PORT, CAROL, CAROL_PASSWORD, "unavailable")]);
    let closed_after = secs(&r[0], "t_sent", "t_eof");
    assert!(
        closed_after >= 2.0 * one_try - 0.05 && closed_after <= RADIUS_BOUND.as_secs_f64() + 1.0,
        "the box should close {closed_after:.2} s after the password: at least server 1's two \
         tries ({:.1} s), at most the bound {:.1} s and 1 s",
        2.0 * one_try,
        RADIUS_BOUND.as_secs_f64()
    );
    rig.expect_counters(
        "after one unanswered login",
        &[("auth_unavailable", 1), ("radius.unavailable", 1)],
    );
    let c = rig.curl(&["-u", &carol_credentials], &portal_url);
    assert!(
        c.code == 503 && c.body == format!("{UNAVAILABLE_LINE}\n").as_bytes(),
        "carol at the box's origin with RADIUS down: 503 expected: {}",
        c.describe()
    );
    rig.expect_counters(
        "after the 503",
        &[("auth_unavailable", 2), ("radius.unavailable", 2)],
    );
    eprintln!(
        "[radius] FreeRADIUS down: `{UNAVAILABLE_LINE}` and closed {closed_after:.2} s after \
         the password; 503 at the virtual origin"
    );
}

/// Both servers silent: a RADIUS attempt takes the whole bound; meanwhile a local login and
/// an auth-none connection are not held up.
fn others_not_held_up(rig: &Rig) {
    let mut hanging =
        rig.sessions_background(&[&line(LINE_PORT, CAROL, CAROL_PASSWORD, "unavailable")]);
    let sent = net::poll(Duration::from_secs(15), Duration::from_millis(10), || {
        hanging.stdout().contains("password-sent")
    });
    assert!(
        sent,
        "the RADIUS attempt did not get to its password: {}",
        hanging.describe()
    );
    let quick = rig.sessions(&[
        &line(LOCAL_LINE_PORT, USER, PASSWORD, "accepted"),
        &format!("plain:{SPLICE_ONLY_PORT}"),
    ]);
    let status = hanging.wait(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "the RADIUS attempt: {}",
        hanging.describe()
    );
    let slow = records(&hanging.stdout());
    assert_eq!(slow.len(), 1, "{}", hanging.describe());
    let radius_took = secs(&slow[0], "t_sent", "t_answer");
    let answered_at = slow[0]["t_answer"].as_f64().unwrap_or(0.0);
    let local_took = secs(&quick[0], "t_start", "t_end");
    let plain_took = secs(&quick[1], "t_start", "t_end");
    let quick_end = quick[1]["t_end"].as_f64().unwrap_or(f64::INFINITY);
    assert!(
        radius_took >= 1.5,
        "inconclusive: the RADIUS attempt took only {radius_took:.2} s (both servers silent: \
         {:.1} s expected)",
        RADIUS_BOUND.as_secs_f64()
    );
    assert!(
        local_took < 1.0 && plain_took < 1.0 && quick_end < answered_at,
        "a local login ({local_took:.2} s) and an auth-none connection ({plain_took:.2} s) \
         should take < 1 s and end before the RADIUS attempt's answer (they ended {:.2} s \
         after it)\n{}",
        quick_end - answered_at,
        rig.logs()
    );
    eprintln!(
        "[radius] while a RADIUS attempt hung {radius_took:.2} s: a local login took \
         {local_took:.2} s, an auth-none connection {plain_took:.2} s"
    );
}

/// radius-then-local: no server answers, so the local users decide.
fn fallback_to_local(rig: &Rig) {
    auth_clear(&["--all"], 1);
    let r = rig.sessions(&[&line(FALLBACK_LINE_PORT, USER, PASSWORD, "accepted")]);
    let fell_back = secs(&r[0], "t_sent", "t_answer");
    let list = logins();
    assert_eq!(list.len(), 1, "auth list --json: {list:#?}");
    check_login(
        &list[0],
        USER,
        "line",
        "line-fallback",
        "shared",
        "radius-then-local",
    );
    eprintln!(
        "[radius] radius-then-local: alice in through the local users after {fell_back:.2} s"
    );
}

/// The box's accounting lines, with `backend`.
fn check_accounting(rig: &Rig) {
    let server = |port: u16| format!("{SERVER_ADDR}:{port}");
    let portal = format!("{BOX_INSIDE_ADDR}:{PORTAL_PORT}");
    let unavailable = "not checked (directory unavailable)";
    // Each rule: its server, name, method and backend.
    let line = (server(LINE_PORT), "line-auth", "line", "radius");
    let fallback = (
        server(FALLBACK_LINE_PORT),
        "line-fallback",
        "line",
        "radius-then-local",
    );
    let local = (server(LOCAL_LINE_PORT), "line-local", "line", "local");
    let web = (portal, "web", "http-basic", "radius");
    let expected = [
        ("accepted", CAROL, &line, 1),
        ("refused", CAROL, &line, 1),
        ("refused", USER, &line, 1),
        ("refused", USER, &fallback, 1),
        ("accepted", CAROL, &web, 1),
        (unavailable, CAROL, &line, 2),
        (unavailable, CAROL, &web, 1),
        ("accepted", USER, &local, 1),
        ("accepted", USER, &fallback, 1),
    ];
    let expected: Vec<(String, usize)> = expected
        .iter()
        .map(|&(outcome, user, (server, rule, method, backend), n)| {
            (account(outcome, user, server, rule, method, backend), n)
        })
        .collect();
    rig.check_login_lines(&expected);
}

/// The counters, in the box's `--stats-json` file, in `cutthrough stats --json` and at the
/// end.
fn check_the_end(rig: &mut Rig, t: Instant) {
    rig.expect_counters(
        "at the end",
        &[
            ("auth_unavailable", 3),
            ("radius.accepts", 2),
            ("radius.rejects", 3),
            ("radius.unavailable", 4),
        ],
    );
    // The live report carries the RADIUS counters itself (flat, `radius_*`).
    let live = stats();
    assert!(
        net::has(&live, &["connections", "radius_accepts"]),
        "`cutthrough stats --json` has no `connections.radius_accepts`: {:#}",
        live["connections"]
    );
    let fin = rig.stop();
    let c = |k: &str| net::counter(&fin, &["connections", k]);
    let rf = |k: &str| net::counter(&fin, &["connections", "radius", k]);
    assert_eq!(
        (
            c("auth_unavailable"),
            rf("accepts"),
            rf("rejects"),
            rf("unavailable")
        ),
        (3, 2, 3, 4),
        "final auth_unavailable, radius accepts, rejects, unavailable (the fallback counts as \
         unavailable for RADIUS, not for the login): {:#}",
        fin["connections"]
    );
    eprintln!(
        "[radius] done: radius counters {} ({:.1} s)",
        fin["connections"]["radius"],
        t.elapsed().as_secs_f64()
    );
}
