//! `login_decided_per_request_af_packet`.

use super::*;

#[test]
fn login_decided_per_request_af_packet() {
    let mut rig = Rig::up("e2e-login-held", &testbed_yaml(), &[WEB_PORT], &[]);
    let t = Instant::now();
    // A: connected before the login, its request sent after it.
    let before_login = "/index.html?held=opened-before-login";
    let signal_a = rig.tmp.join("go-a");
    let a = rig.held(before_login, &signal_a);
    let c = rig.curl(&["-u", ALICE], &format!("{PORTAL_ORIGIN}/login"));
    assert!(
        c.code == 200 && c.body == b"Logged in as alice.\n",
        "a login at the box's origin without a URL to go back to: {}",
        c.describe()
    );
    let ra = rig.release(a, &signal_a);
    // B: connected while logged in, its request sent after `auth clear --all`.
    let before_clear = "/index.html?held=opened-before-clear";
    let signal_b = rig.tmp.join("go-b");
    let b = rig.held(before_clear, &signal_b);
    auth_clear(&["--all"], 1);
    let rb = rig.release(b, &signal_b);
    std::thread::sleep(Duration::from_millis(300));

    let nginx_got = |path: &str| {
        let request = format!("GET {path} HTTP/1.1");
        rig.nginx_entries().iter().any(|e| e["request"] == request)
    };
    let redirect_prefix = format!("{PORTAL_ORIGIN}/login?rule=web&url=http%3A%2F%2F198.19.0.2%2F");
    let a_ok = ra["status"] == "HTTP/1.1 200 OK" && nginx_got(before_login);
    let b_ok = rb["status"] == "HTTP/1.1 302 Found"
        && rb["location"]
            .as_str()
            .is_some_and(|l| l.starts_with(&redirect_prefix))
        && !nginx_got(before_clear);
    assert!(
        a_ok && b_ok,
        "the box should decide on the request, when it reads it, by the logins then:\n\
         - a connection opened before the login, request after it: 200 from the server \
         expected, got {} ({}; nginx got it: {})\n\
         - a connection opened while logged in, request after `auth clear --all`: 302 to the \
         box's origin and nothing to the server expected, got {} ({}; nginx got it: {})\n{}",
        ra["status"],
        if a_ok { "ok" } else { "WRONG" },
        nginx_got(before_login),
        rb["status"],
        if b_ok { "ok" } else { "WRONG" },
        nginx_got(before_clear),
        rig.logs()
    );
    rig.nginx_never_saw_alice();
    let portal = format!("{BOX_INSIDE_ADDR}:{PORTAL_PORT}");
    rig.check_login_lines(&[(
        account("accepted", USER, &portal, "web", "http-basic", "local"),
        1,
    )]);
    rig.stop();
    eprintln!(
        "[held] logins are looked up when the request is read: a connection opened before the \
         login passed, one opened before `auth clear` redirected ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
}
