//! `shared_login_and_clear_af_packet`.

use super::*;

#[test]
fn shared_login_and_clear_af_packet() {
    // `own`: in-band http-basic on 8081 that wants a login of its own.
    let config = add_rules(
        &testbed_yaml(),
        "  - name: own\n    protocol: tcp\n    ports: [8081]\n    action: proxy\n    \
         auth: http-basic\n    http_login: in-band\n    login: rule\n    \
         splice: after-request\n\n",
    );
    let mut rig = Rig::up(
        "e2e-login-shared",
        &config,
        &[WEB_PORT, IN_BAND_PORT, OWN_PORT],
        &[LINE_PORT],
    );
    let t = Instant::now();
    let line_login = format!("line:{LINE_PORT}:{USER}:{PASSWORD}:accepted");
    let in_band_url = format!("http://{SERVER_ADDR}:{IN_BAND_PORT}/index.html");
    let own_url = format!("http://{SERVER_ADDR}:{OWN_PORT}/index.html");

    // A line login serves the virtual-HTTP rule and the in-band one.
    rig.sessions(&[&line_login]);
    let list = logins();
    assert_eq!(list.len(), 1, "auth list --json: {list:#?}");
    check_login(&list[0], USER, "line", "line-auth", "shared", "local");
    rig.curl_ok(&[], PAGE_URL, "index.html");
    rig.curl_ok(&[], &in_band_url, "index.html");
    eprintln!(
        "[shared] a line login lets web (virtual HTTP) and http-basic (in-band) through ({:.1} s)",
        t.elapsed().as_secs_f64()
    );

    // Ended by address: redirected again (the exact login URL), prompted again.
    auth_clear(&[CLIENT_ADDR], 1);
    rig.expect_redirect("after `auth clear 198.18.0.1`");
    let in_band = rig.curl(&[], &in_band_url);
    assert_eq!(
        in_band.code,
        401,
        "in-band after the clear: {}",
        in_band.describe()
    );

    // A rule with its own login asks although the shared login exists.
    rig.sessions(&[&line_login]);
    let c = rig.curl(&[], &own_url);
    assert!(
        c.code == 401
            && c.header(0, "WWW-Authenticate").as_deref() == Some("Basic realm=\"cutthrough\""),
        "`own` (login: rule) with only a shared login: 401 expected: {}\n{}",
        c.describe(),
        rig.logs()
    );
    rig.curl_ok(&["-u", ALICE], &own_url, "index.html");
    rig.curl_ok(&[], &own_url, "index.html");
    let mut list = logins();
    list.sort_by_key(|l| l["scope"].as_str().unwrap_or("").to_string());
    assert_eq!(list.len(), 2, "auth list --json: {list:#?}");
    check_login(&list[0], USER, "http-basic", "own", "own", "local");
    check_login(&list[1], USER, "line", "line-auth", "shared", "local");
    let text = cli(&["auth", "list"]);
    assert!(
        text.success() && text.stdout.contains("own[own]") && text.stdout.contains("2 login(s)"),
        "`auth list` should show the rule's own login: {}",
        text.describe()
    );
    eprintln!(
        "[shared] `own` (login: rule) asked despite the shared login, then took its own:\n{}",
        text.stdout.trim_end()
    );

    // --all ends both; each asks again. A login of `own` serves `own` only.
    auth_clear(&["--all"], 2);
    let c = rig.curl(&[], &own_url);
    assert_eq!(c.code, 401, "`own` after --all: {}", c.describe());
    rig.curl_ok(&["-u", ALICE], &own_url, "index.html");
    rig.expect_redirect("with only a login of `own` (login: rule)");
    let in_band = rig.curl(&[], &in_band_url);
    assert_eq!(
        in_band.code,
        401,
        "in-band with only a login of `own`: {}",
        in_band.describe()
    );
    rig.sessions(&[&line_login]);

    let requests = rig.nginx_never_saw_alice();
    assert_eq!(
        requests,
        5,
        "nginx: web and in-band with the line login, own three times: {:#?}",
        rig.nginx_entries()
    );
    let line_server = format!("{SERVER_ADDR}:{LINE_PORT}");
    let own_server = format!("{SERVER_ADDR}:{OWN_PORT}");
    rig.check_login_lines(&[
        (
            account("accepted", USER, &line_server, "line-auth", "line", "local"),
            3,
        ),
        (
            account("accepted", USER, &own_server, "own", "http-basic", "local"),
            2,
        ),
    ]);
    rig.stop_with_portal_counts(2, 0);
    eprintln!("[shared] done ({:.1} s)", t.elapsed().as_secs_f64());
}
