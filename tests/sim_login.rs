//! Virtual HTTP in the deterministic simulation (the harness is `tests/sim`; the same through
//! real browsers and servers is `tests/e2e_login.rs`), on `config/testbed.yaml`'s `web` rule
//! (port 80, `http-basic`, logins at the box's origin 198.18.0.254:8888):
//!
//! 1. a request from a client without a login is answered `302` to the login URL carrying the
//!    original URL; the server is never contacted, even though the request carried valid
//!    credentials (a browser sends them to the server only if it was challenged in-band);
//! 2. at the virtual origin a request without credentials gets the `401` challenge (not
//!    counted as a failed login), a wrong password `401` (counted), the right one a login
//!    (listed, for rule `web`, method `http-basic`) and a `302` back to the original URL;
//! 3. the next request goes to the server without the header carrying the box's credentials
//!    (a header with other credentials stays), and the connection is spliced.

mod sim;

use smoltcp::socket::tcp;

use sim::{expect_from_box, flow_key, EpId, Faults, Sim, BOX_INSIDE_IP, MAX_STEPS};

const WEB: u16 = 80;
const PORTAL: u16 = 8888;
/// `alice:wonderland`, and another user's credentials for the server itself.
const ALICE: &str = "YWxpY2U6d29uZGVybGFuZA==";
const SERVERS_OWN: &str = "c2VydmVyOnNpZGU=";

fn text(sim: &Sim, ep: EpId) -> String {
    String::from_utf8_lossy(sim.received(ep)).into_owned()
}

/// A request on a new connection to `addr:port`; the client closes once it is sent, and the
/// run goes on until the box has answered and closed too.
fn exchange(sim: &mut Sim, addr: smoltcp::wire::Ipv4Address, port: u16, request: &str) -> String {
    let cport = sim.client_port();
    let c = sim.connect_to(cport, addr, port);
    sim.send(c, request.as_bytes());
    sim.close_when_sent(c);
    sim.run_until("the box answers and closes", MAX_STEPS, |s| {
        s.is_finished(c)
    });
    text(sim, c)
}

#[test]
fn a_login_at_the_virtual_origin_then_a_spliced_request_without_the_password() {
    let seed = 61;
    let mut sim = Sim::clean(seed);
    let server = sim.listen(WEB);
    let server_addr = sim::SERVER_IP;

    // 1. No login: sent to log in, whatever the request carries.
    let answer = exchange(
        &mut sim,
        server_addr,
        WEB,
        &format!(
            "GET /page?a=1 HTTP/1.1\r\nHost: 198.19.0.2\r\nAuthorization: Basic {ALICE}\r\n\r\n"
        ),
    );
    assert!(
        answer.starts_with(
            "HTTP/1.1 302 Found\r\nLocation: http://198.18.0.254:8888/login?rule=web&url=\
             http%3A%2F%2F198.19.0.2%2Fpage%3Fa%3D1\r\n"
        ),
        "seed {seed}: {answer}"
    );
    assert_eq!(
        sim.state(server),
        tcp::State::Listen,
        "the server was contacted"
    );
    let c = sim.proxy_connections();
    assert_eq!(
        (c.auth_redirected, c.auth_failed, c.portal_logins),
        (1, 0, 0)
    );

    // 2. The virtual origin: a wrong password, then the right one.
    let login = "GET /login?rule=web&url=http%3A%2F%2F198.19.0.2%2Fpage%3Fa%3D1 HTTP/1.1\r\n\
                 Host: 198.18.0.254:8888\r\n";
    // A browser asks without credentials first: challenged, not a failed login.
    let answer = exchange(&mut sim, BOX_INSIDE_IP, PORTAL, &format!("{login}\r\n"));
    assert!(
        answer.starts_with("HTTP/1.1 401 Unauthorized\r\n"),
        "seed {seed}: {answer}"
    );
    assert_eq!(
        sim.proxy_connections().auth_failed,
        0,
        "a challenge is no failure"
    );
    let wrong = base64_of("alice:not-it");
    let answer = exchange(
        &mut sim,
        BOX_INSIDE_IP,
        PORTAL,
        &format!("{login}Authorization: Basic {wrong}\r\n\r\n"),
    );
    assert!(
        answer.starts_with(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"cutthrough\"\r\n"
        ),
        "seed {seed}: {answer}"
    );
    let answer = exchange(
        &mut sim,
        BOX_INSIDE_IP,
        PORTAL,
        &format!("{login}Authorization: Basic {ALICE}\r\n\r\n"),
    );
    assert!(
        answer.starts_with("HTTP/1.1 302 Found\r\nLocation: http://198.19.0.2/page?a=1\r\n"),
        "seed {seed}: {answer}"
    );
    let logins = sim.the_box.plane.proxy.logins(sim.the_box.plane.clock());
    assert_eq!(logins.len(), 1, "{logins:?}");
    let l = &logins[0];
    assert_eq!(
        (
            l.user.as_str(),
            l.client.as_str(),
            l.method.as_str(),
            l.rule.as_str()
        ),
        ("alice", "198.18.0.1", "http-basic", "web")
    );
    let c = sim.proxy_connections();
    assert_eq!((c.portal_logins, c.auth_failed), (1, 1));
    assert_eq!(sim.state(server), tcp::State::Listen);

    // 3. Logged in: the request goes on without the box's credentials, and is spliced.
    let cport = sim.client_port();
    let client = sim.connect(cport, WEB);
    sim.send(
        client,
        format!(
            "GET /page?a=1 HTTP/1.1\r\nHost: 198.19.0.2\r\nProxy-Authorization: Basic {ALICE}\r\n\
             Authorization: Basic {SERVERS_OWN}\r\n\r\n"
        )
        .as_bytes(),
    );
    let want = format!(
        "GET /page?a=1 HTTP/1.1\r\nHost: 198.19.0.2\r\nAuthorization: Basic {SERVERS_OWN}\r\n\r\n"
    );
    sim.run_until("the request reaches the server", MAX_STEPS, |s| {
        s.received(server).len() >= want.len()
    });
    assert_eq!(text(&sim, server), want, "seed {seed}");
    let page = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    sim.send(server, page);
    expect_from_box(&mut sim, client, page, "the server's answer");
    let key = flow_key(cport, WEB);
    sim.run_until("the connection is spliced", MAX_STEPS, |s| {
        s.installed(&key).is_some()
    });
    let c = sim.proxy_connections();
    assert_eq!((c.spliced, c.auth_redirected, c.portal_logins), (1, 1, 1));
    assert_eq!(logins_used(&sim), 1, "the login served one connection");
}

fn logins_used(sim: &Sim) -> u64 {
    let logins = sim.the_box.plane.proxy.logins(sim.the_box.plane.clock());
    logins.iter().map(|l| l.connections).sum()
}

/// Standard base64: a deliberate oracle, the test's own so that it does not lean on the box's
/// decoder.
fn base64_of(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, &x| acc << 8 | u32::from(x)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Whether a client is logged in is decided when its request comes, not when its connection
/// opened: a browser opens connections ahead of its requests, and a login may begin or end
/// in between.
#[test]
fn a_request_is_judged_by_the_login_when_it_comes() {
    let seed = 62;
    let mut sim = Sim::new(seed, 1, Faults::NONE);
    let server = sim.listen(WEB);
    let request = "GET / HTTP/1.1\r\nHost: 198.19.0.2\r\n\r\n";
    // Opened before the login, asked after it: passed on.
    let early_port = sim.client_port();
    let early = sim.connect(early_port, WEB);
    sim.run_until("the early connection is up", MAX_STEPS, |s| {
        s.state(early) == tcp::State::Established
    });
    let login = format!(
        "GET /login?rule=web HTTP/1.1\r\nHost: 198.18.0.254:8888\r\nAuthorization: Basic {ALICE}\r\n\r\n"
    );
    let answer = exchange(&mut sim, BOX_INSIDE_IP, PORTAL, &login);
    assert!(
        answer.starts_with("HTTP/1.1 200 OK\r\n"),
        "seed {seed}: {answer}"
    );
    sim.send(early, request.as_bytes());
    sim.run_until("the early request reaches the server", MAX_STEPS, |s| {
        s.received(server).len() >= request.len()
    });
    assert_eq!(text(&sim, server), request, "seed {seed}");
    assert_eq!(logins_used(&sim), 1);

    // Opened while logged in, asked after the login ended: sent to log in again.
    let late_port = sim.client_port();
    let late = sim.connect(late_port, WEB);
    sim.run_until("the late connection is up", MAX_STEPS, |s| {
        s.state(late) == tcp::State::Established
    });
    let now = sim.the_box.plane.clock();
    let ended = sim
        .the_box
        .plane
        .proxy
        .clear_logins(&control::auth::Clear::All, now);
    assert_eq!(ended, 1);
    sim.send(late, request.as_bytes());
    expect_from_box(
        &mut sim,
        late,
        b"HTTP/1.1 302 Found\r\n",
        "the redirect after the clear",
    );
    assert_eq!(sim.proxy_connections().auth_redirected, 1);
}
