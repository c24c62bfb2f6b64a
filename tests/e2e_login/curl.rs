//! `curl_virtual_http_af_packet`.

use super::*;

#[test]
fn curl_virtual_http_af_packet() {
    let mut rig = Rig::up("e2e-login-curl", &testbed_yaml(), &[WEB_PORT], &[]);
    let t = Instant::now();
    login_through_the_portal(&mut rig, t);
    logged_in_without_credentials(&mut rig);
    portal_refuses(&mut rig);
    let cases = credentials_removed(&mut rig, t);

    // Logged out: redirected again, to the exact login URL; the server not contacted.
    auth_clear(&["--all"], 1);
    rig.expect_redirect("after `auth clear --all`");
    check_the_end(&mut rig, cases, t);
}

/// The login: to the server, redirected to the box's origin, which has the credentials
/// (netrc: for 198.18.0.254 only), and back.
fn login_through_the_portal(rig: &mut Rig, t: Instant) {
    let index = rig.file("index.html");
    let netrc = rig.tmp.join("netrc");
    std::fs::write(
        &netrc,
        format!("machine {BOX_INSIDE_ADDR} login {USER} password {PASSWORD}\n"),
    )
    .expect("write the netrc");
    let c = rig.curl(&["-L", "--netrc-file", path_str(&netrc)], PAGE_URL);
    assert!(
        c.code == 200 && c.redirects == 2 && c.effective == PAGE_URL && c.body == index,
        "curl -L with the box's credentials: 200 with the page after 2 redirects expected: {}\n{}",
        c.describe(),
        rig.logs()
    );
    let chain = (
        c.status_line(0).to_string(),
        c.header(0, "Location"),
        c.status_line(1).to_string(),
        c.header(1, "Location"),
    );
    assert_eq!(
        chain,
        (
            "HTTP/1.1 302 Found".to_string(),
            Some(LOGIN_URL.to_string()),
            "HTTP/1.1 302 Found".to_string(),
            Some(PAGE_URL.to_string())
        ),
        "the redirects: {}",
        c.describe()
    );
    let first = rig.nginx_wait(1);
    assert!(
        first.len() == 1
            && first[0]["request"] == "GET /index.html HTTP/1.1"
            && first[0]["status"] == 200
            && first[0]["authorization"] == ""
            && first[0]["proxy_authorization"] == "",
        "nginx should have seen one request, without credentials: {first:#?}"
    );
    // One redirect, one login at the box's origin, one connection to the server (spliced).
    rig.expect_counters(
        "after the login",
        &[("auth_redirected", 1), ("portal_logins", 1), ("spliced", 1)],
    );
    eprintln!(
        "[curl] curl -L --netrc-file (198.18.0.254 only): 302 -> {LOGIN_URL} -> 302 -> \
         {PAGE_URL} -> 200, the page byte-exact ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
}

/// Logged in: no credentials needed, no redirect, spliced after the first request.
fn logged_in_without_credentials(rig: &mut Rig) {
    let spliced0 = 1;
    rig.curl_ok(&[], PAGE_URL, "index.html");
    expect_spliced(spliced0 + 1, "the page without credentials");
    rig.curl_ok(&[], &format!("http://{SERVER_ADDR}/{BIG}"), BIG);
    expect_spliced(spliced0 + 2, "big.bin without credentials");
    let list = logins();
    assert_eq!(list.len(), 1, "auth list --json: {list:#?}");
    check_login(&list[0], USER, "http-basic", "web", "shared", "local");
    eprintln!(
        "[curl] without credentials: the page and {} MiB byte-exact, spliced; auth list: {}",
        BIG_BYTES >> 20,
        list[0]
    );
}

/// The box's origin refuses a wrong password, and asks without one.
fn portal_refuses(rig: &mut Rig) {
    for (what, extra) in [
        ("a wrong password", vec!["-u", "alice:not-wonderland"]),
        ("no credentials", vec![]),
    ] {
        let c = rig.curl(&extra, LOGIN_URL);
        assert!(
            c.code == 401
                && c.header(0, "WWW-Authenticate").as_deref() == Some("Basic realm=\"cutthrough\""),
            "{what} at the box's origin: 401 with its challenge expected: {}",
            c.describe()
        );
    }
}

/// Logged in, credentials sent to the server anyway: the box removes the header carrying
/// ITS credentials, whichever header, and passes anyone else's unchanged. Returns how many
/// cases (requests to the server) it tried.
fn credentials_removed(rig: &mut Rig, t: Instant) -> usize {
    let alice = basic(ALICE);
    let bob = basic(BOB);
    let proxy_alice = format!("Proxy-Authorization: {alice}");
    let proxy_bob = format!("Proxy-Authorization: {bob}");
    let cases: [(&str, Vec<&str>, &str, &str); 5] = [
        ("alice", vec!["-u", ALICE], "", ""),
        ("proxy-alice", vec!["-H", &proxy_alice], "", ""),
        ("bob", vec!["-u", BOB], &bob, ""),
        ("proxy-bob", vec!["-H", &proxy_bob], "", &bob),
        (
            "bob-and-proxy-alice",
            vec!["-u", BOB, "-H", &proxy_alice],
            &bob,
            "",
        ),
    ];
    for (step, extra, authorization, proxy_authorization) in &cases {
        let url = format!("{PAGE_URL}?step={step}");
        rig.curl_ok(extra, &url, "index.html");
        let request = format!("GET /index.html?step={step} HTTP/1.1");
        net::poll(Duration::from_secs(5), Duration::from_millis(50), || {
            rig.nginx_entries().iter().any(|e| e["request"] == request)
        });
        let e = rig.nginx_entry(&request);
        assert_eq!(
            (
                e["authorization"].as_str(),
                e["proxy_authorization"].as_str()
            ),
            (Some(*authorization), Some(*proxy_authorization)),
            "{step}: the credential headers nginx got (sent {extra:?}): {e}"
        );
    }
    eprintln!(
        "[curl] logged in: alice's credentials removed (Authorization, Proxy-Authorization), \
         bob's passed unchanged ({:.1} s)",
        t.elapsed().as_secs_f64()
    );

    cases.len()
}

/// nginx: every request it got (the page three times, big.bin and the `cases` credential
/// cases), and none with alice's credentials; the accounting lines; the final counters.
fn check_the_end(rig: &mut Rig, cases: usize, t: Instant) {
    let requests = rig.nginx_never_saw_alice();
    assert_eq!(
        requests,
        3 + cases,
        "nginx should have got the page three times, big.bin and the {} credential cases: \
         {:#?}",
        cases,
        rig.nginx_entries()
    );
    let portal = format!("{BOX_INSIDE_ADDR}:{PORTAL_PORT}");
    rig.check_login_lines(&[
        (
            account("accepted", USER, &portal, "web", "http-basic", "local"),
            1,
        ),
        (
            account("refused", USER, &portal, "web", "http-basic", "local"),
            1,
        ),
    ]);
    let fin = rig.stop_with_portal_counts(2, 1);
    let c = |k: &str| net::counter(&fin, &["connections", k]);
    assert!(
        c("spliced") >= 3 + cases as u64,
        "final connections.spliced {}: every request that reached the server was spliced",
        c("spliced")
    );
    eprintln!(
        "[curl] done: nginx got {requests} requests, none with alice's credentials ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
}
